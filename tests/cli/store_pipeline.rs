//! Issue 21: every guarantee the folders give holds on the stores too. Each test is named after
//! what broke on a store (SQLite here: no server needed; the same code serves every store).

use std::path::{Path, PathBuf};

use crate::stores::{CREDS, make_sqlite, sqlite_rows};
use crate::testenv::*;

/// A fleet folder of SQLite files and a state directory beside it.
struct Fleet {
    dir: tempfile::TempDir,
}

impl Fleet {
    fn new() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("auth")).unwrap();
        Fleet { dir }
    }

    fn db(&self, tenant: &str) -> PathBuf {
        self.dir.path().join("auth").join(format!("{tenant}.db"))
    }

    fn add(&self, tenant: &str) -> PathBuf {
        make_sqlite(&self.db(tenant), CREDS);
        self.db(tenant)
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn store(&self) -> String {
        format!("sqlite:{}", self.dir.path().join("auth").display())
    }

    fn cmd(&self) -> assert_cmd::Command {
        let mut c = bare_cmd();
        c.arg("--store")
            .arg(self.store())
            .arg("--state-dir")
            .arg(self.state());
        c
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd().args(args).output().unwrap()
    }
}

fn exec(db: &Path, sql: &str) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

/// This host's runs: a SQLite store keeps them in its folder's `.baileys-janitor` (issue 23).
fn runs_json(f: &Fleet) -> serde_json::Value {
    let c = rusqlite::Connection::open(f.dir.path().join("auth/.baileys-janitor")).unwrap();
    let body: Vec<u8> = c
        .query_row("SELECT body FROM docs WHERE space = 'runs'", [], |r| {
            r.get(0)
        })
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// Broke: `status` on a store exited 0 with tenants at danger level (folders exit 1).
#[test]
fn store_status_exits_1_with_danger_tenants() {
    let f = Fleet::new();
    let db = f.add("company_1");
    let ok = f.run(&["status"]);
    assert_code(&ok, 0);
    let mut sql = String::new();
    // Sessions (counted by the level; reserved pre-keys would not be).
    for i in 200..400 {
        sql.push_str(&format!(
            "INSERT INTO signal_keys (type, id, value) VALUES ('session', '55{i}.0', '{{}}');"
        ));
    }
    exec(&db, &sql);
    let out = f.run(&["status", "--json"]);
    assert_code(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tenants"][0]["level"], "danger", "{v}");
}

/// Broke: a store cleanup that found no tenant recorded no failed run (no `/fail` ping, no
/// metrics, the monitor's cron watch saw nothing).
#[test]
fn store_cleanup_that_finds_no_tenant_records_a_failed_run() {
    let f = Fleet::new();
    let sink = HttpSink::start(Answer::Ok);
    let metrics = f.dir.path().join("m.prom");
    let out = f
        .cmd()
        .env("BAILEYS_JANITOR_PING_URL", format!("{}/ping", sink.url))
        .args(["cleanup", "--metrics-file", metrics.to_str().unwrap()])
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(
        text(&out.stderr).contains("no tenant"),
        "{}",
        text(&out.stderr)
    );
    let runs = runs_json(&f);
    assert!(runs["cleanup"]["last_failure"].is_string(), "{runs}");
    assert!(runs["cleanup"]["last_success"].is_null(), "{runs}");
    assert!(
        sink.paths().iter().any(|p| p.ends_with("/fail")),
        "{:?}",
        sink.paths()
    );
    let m = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        m.contains("baileys_janitor_run_success{command=\"cleanup\"} 0"),
        "{m}"
    );

    let out = f.run(&["trigger"]);
    assert_code(&out, 1);
    let runs = runs_json(&f);
    assert!(runs["trigger"]["last_failure"].is_string(), "{runs}");
}

/// Broke: a tenant that failed on a store raised no `cleanup_failed` event.
#[test]
fn store_cleanup_failure_raises_cleanup_failed() {
    let f = Fleet::new();
    f.add("company_1");
    let bad = f.add("company_2");
    exec(
        &bad,
        "UPDATE creds SET value = '{not json' WHERE key = '__creds__'",
    );
    let sink = HttpSink::start(Answer::Ok);
    let out = f
        .cmd()
        .env("NOTIFICATION_WEBHOOK", &sink.url)
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&out, 1);
    let failed: Vec<_> = sink
        .flat_events()
        .into_iter()
        .filter(|e| e["event"] == "cleanup_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", sink.bodies());
    assert!(
        failed[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("company_2"),
        "{:?}",
        failed[0]
    );
    assert_eq!(sqlite_rows(&bad).len(), crate::stores::account_rows().len());
}

/// Broke: two stores with a tenant of the same name (`auth.db` twice) cleaned with one state
/// directory: restore on store A inserted store B's rows (exit 0) and emptied B's trash.
#[test]
fn a_state_directory_serves_one_store_only() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut dbs = Vec::new();
    for side in ["a", "b"] {
        std::fs::create_dir(dir.path().join(side)).unwrap();
        let db = dir.path().join(side).join("auth.db");
        make_sqlite(&db, CREDS);
        dbs.push(db);
    }
    let run = |db: &Path, args: &[&str]| {
        bare_cmd()
            .arg("--store")
            .arg(format!("sqlite:{}", db.display()))
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .output()
            .unwrap()
    };
    assert_code(&run(&dbs[0], &["cleanup"]), 0);
    let a_after = sqlite_rows(&dbs[0]);
    let b_before = sqlite_rows(&dbs[1]);
    for args in [
        &["cleanup"][..],
        &["status"][..],
        &["restore", "--company", "auth"][..],
        &["trigger"][..],
        &["monitor", "--once"][..],
    ] {
        let out = run(&dbs[1], args);
        assert_code(&out, 2);
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("a{}auth.db", std::path::MAIN_SEPARATOR))
                && err.contains(&format!("b{}auth.db", std::path::MAIN_SEPARATOR)),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_eq!(sqlite_rows(&dbs[1]), b_before, "store B untouched");
    assert_eq!(sqlite_rows(&dbs[0]), a_after);
    // Store A's trash is still there, and restores into A.
    assert_code(&run(&dbs[0], &["restore", "--company", "auth"]), 0);
    assert_eq!(
        sqlite_rows(&dbs[0]).len(),
        crate::stores::account_rows().len()
    );
    // A folder root is not a store either.
    let t = Tree::new();
    company_with(&t, "company_1", 10, days(20));
    let out = t
        .cmd()
        .arg("--state-dir")
        .arg(&state)
        .arg("status")
        .output()
        .unwrap();
    assert_code(&out, 2);
}

fn removed_of(out: &std::process::Output) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut r: Vec<String> = v["companies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["removed_files"].as_array().unwrap().clone())
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    r.sort();
    r
}

const OLD: [&str; 2] = ["identity-key-5511888888888.0", "session-5511888888888.0"];

/// Broke: restore on a store set no hold (the next cleanup removed the rows again), and
/// `--release` restored instead of releasing.
#[test]
fn store_restore_puts_rows_on_hold_and_release_ends_it() {
    let f = Fleet::new();
    let db = f.add("company_1");
    let out = f.run(&["cleanup", "--json"]);
    assert_code(&out, 0);
    assert_eq!(removed_of(&out), OLD);
    let restored = f.run(&["restore", "--company", "company_1", "--json"]);
    assert_code(&restored, 0);
    let v: serde_json::Value = serde_json::from_slice(&restored.stdout).unwrap();
    assert!(v["on_hold_until"].is_string(), "{v}");
    assert_eq!(sqlite_rows(&db).len(), crate::stores::account_rows().len());

    let again = f.run(&["cleanup", "--json", "-v"]);
    assert_code(&again, 0);
    assert!(removed_of(&again).is_empty(), "restored rows are on hold");
    assert!(
        text(&again.stdout).contains("on hold"),
        "{}",
        text(&again.stdout)
    );
    // Trigger and a dry run see the hold too.
    assert!(removed_of(&f.run(&["cleanup", "--json", "--dry-run"])).is_empty());

    let rel = f.run(&["restore", "--company", "company_1", "--release"]);
    assert_code(&rel, 0);
    assert!(
        text(&rel.stdout).contains("released 2"),
        "{}",
        text(&rel.stdout)
    );
    assert_eq!(
        sqlite_rows(&db).len(),
        crate::stores::account_rows().len(),
        "--release restores nothing and removes nothing"
    );
    let after = f.run(&["cleanup", "--json"]);
    assert_eq!(removed_of(&after), OLD, "the hold ended");
}

/// Broke: restore on a store never read the creds: an old account's sessions went into a
/// re-paired account, exit 0.
#[test]
fn store_restore_refuses_a_re_paired_account() {
    let f = Fleet::new();
    let db = f.add("company_1");
    assert_code(&f.run(&["cleanup"]), 0);
    let left = sqlite_rows(&db);
    let repaired = CREDS.replace("5511999999999:7", "5511000000000:3");
    exec(
        &db,
        &format!("UPDATE creds SET value = '{repaired}' WHERE key = '__creds__'"),
    );
    let out = f.run(&["restore", "--company", "company_1"]);
    assert_code(&out, 1);
    let err = text(&out.stderr);
    assert!(
        err.contains("re-paired") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(sqlite_rows(&db), left, "nothing put back");
    let forced = f.run(&["restore", "--company", "company_1", "--force"]);
    assert_code(&forced, 0);
    assert_eq!(sqlite_rows(&db).len(), crate::stores::account_rows().len());
}

/// Broke: restore on a store ignored the pairs cleanup keeps together: an old session went
/// back beside the identity key the app wrote since for the same address.
#[test]
fn store_restore_keeps_pairs_together() {
    let f = Fleet::new();
    let db = f.add("company_1");
    assert_code(&f.run(&["cleanup"]), 0);
    exec(
        &db,
        "INSERT INTO signal_keys (type, id, value) VALUES ('identity-key', '5511888888888.0', '{\"type\":\"Buffer\",\"data\":\"new=\"}')",
    );
    let out = f.run(&["restore", "--company", "company_1", "--json"]);
    assert_code(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped: Vec<String> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}: {}", s["file"], s["reason"]))
        .collect();
    assert!(
        skipped
            .iter()
            .any(|s| s.contains("session-5511888888888.0") && s.contains("partner")),
        "{skipped:?}"
    );
    assert!(
        !sqlite_rows(&db)
            .iter()
            .any(|(t, id, _)| t == "session" && id == "5511888888888.0"),
        "the old session stays in the trash"
    );
}

/// Broke: a trash append cut short (disk full) left half a line, and the whole run could no
/// longer be restored.
#[test]
fn a_torn_trash_line_does_not_make_the_run_unrestorable() {
    let f = Fleet::new();
    let db = f.add("company_1");
    assert_code(&f.run(&["cleanup"]), 0);
    // The trash as a janitor before issue 23 left it in the state directory (the upgrade path):
    // the run's rows move from the sibling file to `rows.jsonl`, and its last line is torn.
    let sibling =
        rusqlite::Connection::open(f.dir.path().join("auth/company_1.db-janitor")).unwrap();
    let (run_id, mut text) = {
        let mut s = sibling
            .prepare("SELECT run_id, type, id, value FROM trash ORDER BY rowid")
            .unwrap();
        let rows: Vec<(String, String, String, String)> = s
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(!rows.is_empty());
        let lines: String = rows
            .iter()
            .map(|(_, t, id, v)| {
                format!("{}\n", serde_json::json!({"type": t, "id": id, "value": v}))
            })
            .collect();
        (rows[0].0.clone(), lines)
    };
    sibling.execute("DELETE FROM trash", []).unwrap();
    let run = f.state().join("trash/company_1").join(&run_id);
    std::fs::create_dir_all(&run).unwrap();
    let rows = run.join("rows.jsonl");
    text.push_str("{\"type\":\"pre-key\",\"id\":\"7\",\"val");
    std::fs::write(&rows, text).unwrap();
    let out = f.run(&["restore", "--company", "company_1"]);
    assert_code(&out, 0);
    assert_eq!(sqlite_rows(&db).len(), crate::stores::account_rows().len());
    assert!(!rows.exists(), "nothing left to restore");
}

/// Broke: a tenant with a 91-byte non-ASCII name hit "File name too long" on its lock file
/// and was never cleaned.
#[test]
fn a_long_non_ascii_tenant_name_and_its_twin_are_each_locked_and_cleaned() {
    let f = Fleet::new();
    let name = "ñ".repeat(46);
    let db = f.add(&name);
    let out = f.run(&["cleanup", "--json"]);
    assert_code(&out, 0);
    assert_eq!(removed_of(&out), OLD);
    assert_eq!(
        sqlite_rows(&db).len(),
        crate::stores::account_rows().len() - 2
    );
    // A second name sharing the first 40 characters is locked on its own file (the lock
    // lives beside each account, not in the state directory) and cleaned too.
    let twin = format!("{}x", "ñ".repeat(45));
    let twin_db = f.add(&twin);
    assert_code(&f.run(&["cleanup"]), 0);
    assert_eq!(
        sqlite_rows(&twin_db).len(),
        crate::stores::account_rows().len() - 2
    );
    assert!(!f.state().join("locks").exists());
}

/// Broke: a SQLite `signal_keys` without a primary key was cleaned, but its rows could never be
/// restored (`ON CONFLICT (type, id)` needs the key).
#[test]
fn sqlite_signal_keys_without_a_primary_key_is_refused() {
    let f = Fleet::new();
    let db = f.db("company_1");
    exec(
        &db,
        "CREATE TABLE creds (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE signal_keys (type TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL);",
    );
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute("INSERT INTO creds VALUES ('__creds__', ?1)", [CREDS])
        .unwrap();
    for (t, id, v) in crate::stores::account_rows() {
        c.execute("INSERT INTO signal_keys VALUES (?1, ?2, ?3)", [t, id, v])
            .unwrap();
    }
    drop(c);
    let before = sqlite_rows(&db);
    // The file named alone: a configuration error.
    let out = bare_cmd()
        .arg("--store")
        .arg(format!("sqlite:{}", db.display()))
        .arg("--state-dir")
        .arg(f.dir.path().join("state-single"))
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("primary key") && err.contains("company_1.db"),
        "{err}"
    );
    assert_eq!(sqlite_rows(&db), before);
    // In a fleet of files: that tenant fails (exit 1) and the others are cleaned.
    f.add("company_2");
    let out = f.run(&["cleanup"]);
    assert_code(&out, 1);
    assert!(
        text(&out.stdout).contains("primary key"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(sqlite_rows(&db), before);
    assert_eq!(
        sqlite_rows(&f.db("company_2")).len(),
        crate::stores::account_rows().len() - 2
    );
}

/// Broke: the summary called every skip "changed since planned", also a row that was simply
/// gone already.
#[test]
fn a_skip_says_its_real_reason() {
    let f = Fleet::new();
    let db = f.add("company_1");
    let mut child = f.cmd();
    child
        .args(["cleanup", "-v", "--debug-pause-before-remove", "1500ms"])
        .timeout(std::time::Duration::from_secs(30));
    let handle = std::thread::spawn(move || child.output().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(700));
    exec(
        &db,
        "DELETE FROM signal_keys WHERE type = 'session' AND id = '5511888888888.0'",
    );
    let out = handle.join().unwrap();
    assert_code(&out, 0);
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("changed since planned"), "{stdout}");
    assert!(
        stdout.contains("skipped: session-5511888888888.0: already gone")
            && stdout.contains("1 skipped"),
        "{stdout}"
    );
}

/// Broke: restored `timestamp without time zone` columns shifted by the database's UTC offset.
#[test]
fn postgres_restore_keeps_timestamp_without_time_zone_byte_exact() {
    let Some(db) = crate::stores::TestDb::new() else {
        return;
    };
    let mut c = db.client();
    c.batch_execute(&format!(
        "ALTER DATABASE {} SET timezone TO 'America/Sao_Paulo';",
        db.name
    ))
    .unwrap();
    drop(c);
    let mut c = db.client();
    c.batch_execute(
        "CREATE TABLE whatsapp_auth (company_id TEXT PRIMARY KEY, creds JSONB NOT NULL);
         CREATE TABLE whatsapp_keys (company_id TEXT NOT NULL, key_type TEXT NOT NULL,
           key_id TEXT NOT NULL, value JSONB NOT NULL,
           created_at TIMESTAMP WITHOUT TIME ZONE, updated_at TIMESTAMP WITHOUT TIME ZONE,
           expires_at TIMESTAMP WITHOUT TIME ZONE,
           PRIMARY KEY (company_id, key_type, key_id));",
    )
    .unwrap();
    c.execute(
        "INSERT INTO whatsapp_auth VALUES ('company_1', $1::text::jsonb)",
        &[&CREDS],
    )
    .unwrap();
    for (ty, id, v) in crate::stores::account_rows() {
        c.execute(
            "INSERT INTO whatsapp_keys VALUES ('company_1', $1, $2, $3::text::jsonb,
               '2026-01-02 03:04:05.123456', '2026-02-03 04:05:06.654321', '2027-01-01 00:00:00')",
            &[&ty, &id, &v],
        )
        .unwrap();
    }
    let snapshot = |c: &mut postgres::Client| -> Vec<String> {
        c.query(
            "SELECT key_type || key_id || created_at::text || updated_at::text || expires_at::text FROM whatsapp_keys ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    let before = snapshot(&mut c);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = db.cmd(&state).args(["cleanup", "--json"]).output().unwrap();
    assert_code(&out, 0);
    assert!(!removed_of(&out).is_empty());
    assert!(snapshot(&mut c).len() < before.len());
    let out = db
        .cmd(&state)
        .args(["restore", "--company", "company_1"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(snapshot(&mut c), before);
}

/// One fixture as a folder and as a SQLite file: the same decisions, the same undo guarantees.
#[test]
fn parity_a_folder_and_a_sqlite_store_decide_and_undo_alike() {
    use std::time::{Duration, SystemTime};
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("keep50.toml");
    std::fs::write(&conf, "[pre_keys]\nkeep = 50\n").unwrap();
    let real_now = SystemTime::now();
    let later = chrono::DateTime::<chrono::Utc>::from(real_now + Duration::from_secs(20 * 86_400));
    let later = later.to_rfc3339();
    // The young session and its identity key were last used a day before `later`.
    let young =
        |t: &str, id: &str| id == "5511777777777.0" && (t == "session" || t == "identity-key");
    let fix = |id: &str| id.replace('/', "__").replace(':', "-");

    // The folder: every file written now, the young pair 19 days from now.
    let root = dir.path().join("sessions");
    let company = root.join("company_1");
    std::fs::create_dir_all(&company).unwrap();
    std::fs::write(company.join("creds.json"), CREDS).unwrap();
    let mut rows = crate::stores::account_rows();
    for r in rows.iter_mut() {
        if r.0 == "session" {
            let days_ago = if young(&r.0, &r.1) { -19 } else { 10 };
            let used = crate::stores::now_ms() - days_ago * 86_400_000;
            r.2 = r.2.replace(
                &r.2[r.2.find("\"used\":").unwrap()..r.2.find(",\"created\"").unwrap()],
                &format!("\"used\":{used}"),
            );
        }
        let p = company.join(format!("{}-{}.json", r.0, fix(&r.1)));
        std::fs::write(&p, &r.2).unwrap();
        let mtime = if young(&r.0, &r.1) {
            real_now + Duration::from_secs(19 * 86_400)
        } else {
            real_now
        };
        filetime::set_file_mtime(&p, filetime::FileTime::from_system_time(mtime)).unwrap();
    }
    // The store: the same rows.
    let db = dir.path().join("auth").join("company_1.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE creds (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE signal_keys (type TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (type, id));",
        )
        .unwrap();
        c.execute("INSERT INTO creds VALUES ('__creds__', ?1)", [CREDS])
            .unwrap();
        for (t, id, v) in &rows {
            c.execute("INSERT INTO signal_keys VALUES (?1, ?2, ?3)", [t, id, v])
                .unwrap();
        }
    }
    let folder = |now: Option<&str>, args: &[&str]| {
        let mut c = bare_cmd();
        if let Some(n) = now {
            c.env("BAILEYS_JANITOR_NOW", n);
        }
        c.arg("--config")
            .arg(&conf)
            .arg("--sessions-path")
            .arg(&root);
        c.arg("--state-dir").arg(dir.path().join("state-folder"));
        c.args(args).output().unwrap()
    };
    let store = |now: Option<&str>, args: &[&str]| {
        let mut c = bare_cmd();
        if let Some(n) = now {
            c.env("BAILEYS_JANITOR_NOW", n);
        }
        c.arg("--config").arg(&conf).arg("--store");
        c.arg(format!("sqlite:{}", db.parent().unwrap().display()));
        c.arg("--state-dir").arg(dir.path().join("state-store"));
        c.args(args).output().unwrap()
    };
    // The store's ledger starts watching today (the folder has its mtimes).
    assert_code(&store(None, &["cleanup"]), 0);
    let f = folder(Some(&later), &["cleanup", "--json"]);
    let s = store(Some(&later), &["cleanup", "--json"]);
    assert_code(&f, 0);
    assert_code(&s, 0);
    let from_folder: Vec<String> = removed_of(&f)
        .into_iter()
        .map(|n| n.trim_end_matches(".json").to_owned())
        .collect();
    let mut from_store: Vec<String> = removed_of(&s).into_iter().map(|n| fix(&n)).collect();
    from_store.sort();
    assert_eq!(from_folder, from_store, "the same decisions");
    assert!(from_folder.contains(&"session-5511888888888.0".to_owned()));
    assert!(from_folder.iter().any(|n| n.starts_with("pre-key-")));
    assert!(
        from_folder
            .iter()
            .any(|n| n.starts_with("sender-key-memory-"))
    );
    assert!(!from_folder.contains(&"session-5511777777777.0".to_owned()));

    // Undo: everything back, on hold: the next cleanup removes nothing in either.
    assert_code(
        &folder(Some(&later), &["restore", "--company", "company_1"]),
        0,
    );
    assert_code(
        &store(Some(&later), &["restore", "--company", "company_1"]),
        0,
    );
    assert_eq!(std::fs::read_dir(&company).unwrap().count(), rows.len() + 1);
    assert_eq!(sqlite_rows(&db).len(), rows.len());
    assert!(removed_of(&folder(Some(&later), &["cleanup", "--json"])).is_empty());
    assert!(removed_of(&store(Some(&later), &["cleanup", "--json"])).is_empty());
}
