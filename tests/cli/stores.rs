//! Database stores through the real binary: Baileys' SQLite files and PostgreSQL tables.
//! PostgreSQL tests use the server at BAILEYS_JANITOR_TEST_PG (default 127.0.0.1:5432, user
//! postgres), each in a database of its own that is dropped afterwards; without a server they
//! say SKIPPED (scripts/test.sh starts a throwaway cluster when it can), or fail with
//! REQUIRE_SERVICES=1 (`.ci/run`).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::testenv::*;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn session(days_unused: i64) -> String {
    let used = now_ms() - days_unused * 86_400_000;
    format!(
        r#"{{"_sessions":{{"BQ==":{{"registrationId":1,"indexInfo":{{"baseKey":"BQ==","baseKeyType":1,"closed":-1,"used":{used},"created":{used},"remoteIdentityKey":"BQ=="}},"_chains":{{}}}}}},"version":"v1"}}"#
    )
}

pub const CREDS: &str = r#"{"me":{"id":"5511999999999:7@s.whatsapp.net","lid":"123456789012345:7@lid"},"account":{"details":{"type":"Buffer","data":"eA=="}},"nextPreKeyId":121,"firstUnuploadedPreKeyId":121}"#;
const PRE_KEY: &str =
    r#"{"private":{"type":"Buffer","data":"AQ=="},"public":{"type":"Buffer","data":"Ag=="}}"#;

/// Rows of one account: 120 pre-keys, an old and a fresh session with identity keys, sender
/// keys, and every protected type.
pub fn account_rows() -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = vec![
        ("session".into(), "5511888888888.0".into(), session(30)),
        ("session".into(), "5511777777777.0".into(), session(1)),
        (
            "identity-key".into(),
            "5511888888888.0".into(),
            r#"{"type":"Buffer","data":"BQ=="}"#.into(),
        ),
        (
            "identity-key".into(),
            "5511777777777.0".into(),
            r#"{"type":"Buffer","data":"Bg=="}"#.into(),
        ),
        (
            "sender-key".into(),
            "120363@g.us::5511666666666::0".into(),
            r#"[{"senderKeyId":1}]"#.into(),
        ),
        (
            "sender-key-memory".into(),
            "120363@g.us".into(),
            r#"{"x":true}"#.into(),
        ),
        (
            "app-state-sync-key".into(),
            "AAAAAOb5".into(),
            r#"{"keyData":{"type":"Buffer","data":"AA=="}}"#.into(),
        ),
        (
            "app-state-sync-version".into(),
            "regular_high".into(),
            r#"{"version":3}"#.into(),
        ),
        (
            "lid-mapping".into(),
            "5511888888888".into(),
            r#""123456789012345""#.into(),
        ),
        (
            "lid-mapping".into(),
            "123456789012345_reverse".into(),
            r#""5511888888888""#.into(),
        ),
        (
            "tctoken".into(),
            "123@lid".into(),
            r#"{"timestamp":"1"}"#.into(),
        ),
        (
            "device-list".into(),
            "5511888888888".into(),
            r#"["0"]"#.into(),
        ),
    ];
    for i in 1..=120 {
        v.push(("pre-key".into(), i.to_string(), PRE_KEY.into()));
    }
    v
}

pub fn make_sqlite(path: &Path, creds: &str) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS creds (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS signal_keys (type TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (type, id));
         CREATE INDEX IF NOT EXISTS signal_keys_type_idx ON signal_keys(type);",
    )
    .unwrap();
    c.execute(
        "INSERT INTO creds (key, value) VALUES ('__creds__', ?1)",
        [creds],
    )
    .unwrap();
    for (t, id, v) in account_rows() {
        c.execute(
            "INSERT INTO signal_keys (type, id, value) VALUES (?1, ?2, ?3)",
            [t, id, v],
        )
        .unwrap();
    }
}

pub fn sqlite_rows(path: &Path) -> Vec<(String, String, String)> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut s = c
        .prepare("SELECT type, id, value FROM signal_keys ORDER BY type, id")
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn sqlite_fleet_cleanup_dry_run_verbose_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("auth");
    std::fs::create_dir(&fleet).unwrap();
    make_sqlite(&fleet.join("company_1.db"), CREDS);
    make_sqlite(&fleet.join("company_2.db"), CREDS);
    std::fs::write(fleet.join("notes.txt"), "x").unwrap();
    let before = std::fs::read(fleet.join("company_1.db")).unwrap();
    let rows_before = sqlite_rows(&fleet.join("company_1.db"));
    let store = format!("sqlite:{}", fleet.display());
    let state = dir.path().join("state");
    let run = |args: &[&str]| {
        bare_cmd()
            .arg("--store")
            .arg(&store)
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .output()
            .unwrap()
    };

    let dry = run(&["cleanup", "--dry-run", "--json", "-v", "--company", "1"]);
    assert_code(&dry, 0);
    let v: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    let c = company_report(&v, "company_1");
    let mut removed: Vec<&str> = c["removed_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    removed.sort();
    assert_eq!(
        removed,
        ["identity-key-5511888888888.0", "session-5511888888888.0"]
    );
    let why = c["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["file"] == "session-5511888888888.0")
        .unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(why.contains("session's last use"), "{why}");
    assert!(
        v["companies"].as_array().unwrap().len() == 1,
        "--company selects"
    );
    assert_eq!(std::fs::read(fleet.join("company_1.db")).unwrap(), before);
    assert!(!state.exists(), "a dry run writes no state");

    let real = run(&["cleanup", "--json"]);
    assert_code(&real, 0);
    let v: serde_json::Value = serde_json::from_slice(&real.stdout).unwrap();
    assert_eq!(v["totals"]["removed"], 4);
    let left = sqlite_rows(&fleet.join("company_1.db"));
    assert_eq!(left.len(), account_rows().len() - 2);

    let status = run(&["status", "--json"]);
    assert_code(&status, 0);
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["tenants"].as_array().unwrap().len(), 2);
    assert_eq!(s["tenants"][0]["keys"], account_rows().len() - 2 + 1);

    let restore = run(&["restore", "--company", "company_1"]);
    assert_code(&restore, 0);
    let back = sqlite_rows(&fleet.join("company_1.db"));
    assert_eq!(back, rows_before, "restored byte-exact");
}

#[test]
fn sqlite_errors_are_one_line_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let out = bare_cmd()
        .arg("--store")
        .arg(format!("sqlite:{}", other.display()))
        .args(["--state-dir"])
        .arg(dir.path().join("s"))
        .args(["cleanup"])
        .output()
        .unwrap();
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(err.contains("not a Baileys SQLite auth store"), "{err}");

    let out = bare_cmd()
        .arg("--store")
        .arg(format!("sqlite:{}", dir.path().join("missing").display()))
        .args(["--state-dir"])
        .arg(dir.path().join("s"))
        .args(["cleanup"])
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert_eq!(
        text(&out.stderr).trim().lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );

    let out = bare_cmd()
        .args([
            "--store",
            "postgres://u:pw@127.0.0.1:1/db",
            "--layout",
            "nope",
            "status",
        ])
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(
        text(&out.stderr).contains("per-type, waha"),
        "{}",
        text(&out.stderr)
    );
}

// ---------------------------------------------------------------- PostgreSQL

/// A database of its own on the test server, dropped on drop.
pub struct TestDb {
    admin: String,
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn new() -> Option<TestDb> {
        let admin = std::env::var("BAILEYS_JANITOR_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut c = match postgres::Client::connect(&admin, postgres::NoTls) {
            Ok(c) => c,
            Err(e) => {
                crate::testenv::service_missing("postgres", &e);
                return None;
            }
        };
        let name = format!(
            "janitor_test_{}_{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let mut cfg: postgres::Config = admin.parse().unwrap();
        cfg.dbname(&name);
        // Trust auth accepts any password: one is in the URL to prove it never leaks.
        cfg.password("hunter2-secret");
        let host = match &cfg.get_hosts()[0] {
            postgres::config::Host::Tcp(h) => h.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        };
        let url = format!(
            "postgres://{}:hunter2-secret@{}:{}/{}",
            cfg.get_user().unwrap_or("postgres"),
            host,
            cfg.get_ports().first().copied().unwrap_or(5432),
            name
        );
        Some(TestDb { admin, name, url })
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }

    /// The spec's own tables (ai_admin_v2 migration 20251007), with its update triggers.
    pub fn per_type_schema(&self) {
        self.client()
            .batch_execute(
                "CREATE TABLE whatsapp_auth (company_id TEXT PRIMARY KEY, creds JSONB NOT NULL,
                   created_at TIMESTAMPTZ DEFAULT NOW(), updated_at TIMESTAMPTZ DEFAULT NOW());
                 CREATE TABLE whatsapp_keys (company_id TEXT NOT NULL, key_type TEXT NOT NULL,
                   key_id TEXT NOT NULL, value JSONB NOT NULL, created_at TIMESTAMPTZ DEFAULT NOW(),
                   updated_at TIMESTAMPTZ DEFAULT NOW(), expires_at TIMESTAMPTZ,
                   PRIMARY KEY (company_id, key_type, key_id));
                 CREATE FUNCTION upd() RETURNS TRIGGER AS $$ BEGIN NEW.updated_at = NOW(); RETURN NEW; END; $$ LANGUAGE plpgsql;
                 CREATE TRIGGER t BEFORE UPDATE ON whatsapp_keys FOR EACH ROW EXECUTE FUNCTION upd();",
            )
            .unwrap();
    }

    /// One tenant's rows in the per-type tables, `updated_at` `days` ago (sessions: their own
    /// age), plus legacy rows of the bad migration.
    pub fn per_type_tenant(&self, tenant: &str, days: i64) {
        let mut c = self.client();
        c.execute(
            "INSERT INTO whatsapp_auth (company_id, creds) VALUES ($1, $2::text::jsonb)",
            &[&tenant, &CREDS],
        )
        .unwrap();
        let mut t = c.transaction().unwrap();
        for (ty, id, v) in account_rows() {
            let age = match (ty.as_str(), id.as_str()) {
                ("session", "5511777777777.0") | ("identity-key", "5511777777777.0") => 1,
                _ => days,
            };
            t.execute(
                "INSERT INTO whatsapp_keys (company_id, key_type, key_id, value, created_at, updated_at, expires_at)
                 VALUES ($1, $2, $3, $4::text::jsonb, now() - make_interval(days => $5::int), now() - make_interval(days => $5::int), now())",
                &[&tenant, &ty, &id, &v, &(age as i32)],
            )
            .unwrap();
        }
        for (ty, id) in [
            ("pre", "key-5"),
            ("app", "state-sync-key-AAAA"),
            ("lid", "mapping-1"),
        ] {
            t.execute(
                "INSERT INTO whatsapp_keys (company_id, key_type, key_id, value, updated_at) VALUES ($1, $2, $3, '{}'::jsonb, now() - interval '90 days')",
                &[&tenant, &ty, &id],
            )
            .unwrap();
        }
        t.commit().unwrap();
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).unwrap().get(0)
    }

    /// The binary on this database, with the spec's keep-50 pre-key rule (so the small
    /// fixtures have pre-keys to remove; the default server window keeps all 120).
    pub fn cmd(&self, state: &Path) -> assert_cmd::Command {
        self.cmd_with(state, "")
    }

    /// [`TestDb::cmd`] with `more` (TOML) after the keep-50 rule in its config file.
    pub fn cmd_with(&self, state: &Path, more: &str) -> assert_cmd::Command {
        let mut c = bare_cmd();
        c.arg("--store")
            .arg(&self.url)
            .arg("--state-dir")
            .arg(state)
            .arg("--config")
            .arg(keep50_with(state, more));
        c
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A config file beside `state` with `[pre_keys] keep = 50` (the PostgreSQL and MySQL tests').
pub fn keep50(state: &Path) -> std::path::PathBuf {
    keep50_with(state, "")
}

/// [`keep50`], then `more` (TOML sections of a test's own).
pub fn keep50_with(state: &Path, more: &str) -> std::path::PathBuf {
    let p = state.with_extension("keep50.toml");
    std::fs::write(&p, format!("[pre_keys]\nkeep = 50\n{more}")).unwrap();
    p
}

pub fn assert_no_secret(dir: &Path, outputs: &[&std::process::Output]) {
    for o in outputs {
        assert!(!text(&o.stdout).contains("hunter2"), "{}", text(&o.stdout));
        assert!(!text(&o.stderr).contains("hunter2"), "{}", text(&o.stderr));
    }
    for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if e.file_type().is_file() {
            let b = std::fs::read(e.path()).unwrap();
            assert!(
                !text(&b).contains("hunter2"),
                "{} holds the password",
                e.path().display()
            );
        }
    }
}

#[test]
fn postgres_per_type_cleanup_legacy_rows_and_restore() {
    let Some(db) = TestDb::new() else { return };
    db.per_type_schema();
    db.per_type_tenant("company_1", 20);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let total = db.count("SELECT count(*) FROM whatsapp_keys");

    let dry = db
        .cmd(&state)
        .args(["cleanup", "--dry-run", "--json", "-v"])
        .output()
        .unwrap();
    assert_code(&dry, 0);
    let v: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    let c = company_report(&v, "company_1");
    // 20 days by updated_at: old session + identity, 70 pre-keys, sender key + memory.
    assert_eq!(c["removed"], 2 + 70 + 2, "{c}");
    let legacy = c["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["file"] == "pre/key-5")
        .unwrap();
    assert_eq!(legacy["action"], "keep");
    assert!(legacy["reason"].as_str().unwrap().contains("--legacy-rows"));
    let aged = c["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["file"] == "session-5511888888888.0")
        .unwrap();
    assert!(
        aged["reason"].as_str().unwrap().contains("updated_at"),
        "{aged}"
    );
    assert_eq!(db.count("SELECT count(*) FROM whatsapp_keys"), total);

    let real = db.cmd(&state).args(["cleanup", "--json"]).output().unwrap();
    assert_code(&real, 0);
    assert_eq!(db.count("SELECT count(*) FROM whatsapp_keys"), total - 74);
    assert_eq!(
        db.count("SELECT count(*) FROM whatsapp_keys WHERE key_type IN ('app','lid','pre')"),
        3
    );
    assert_eq!(db.count("SELECT count(*) FROM whatsapp_keys WHERE key_type IN ('lid-mapping','app-state-sync-key','app-state-sync-version','tctoken','device-list')"), 6);
    assert_eq!(db.count("SELECT count(*) FROM whatsapp_auth"), 1);

    let legacy = db
        .cmd(&state)
        .args(["cleanup", "--legacy-rows", "--json"])
        .output()
        .unwrap();
    assert_code(&legacy, 0);
    assert_eq!(
        db.count("SELECT count(*) FROM whatsapp_keys WHERE key_type IN ('app','lid','pre')"),
        0
    );

    // Restore the first run: rows back with their values and timestamps. The trash is in the
    // store (the janitor's schema), not in the state directory.
    assert!(!state.join("trash").exists());
    let runs: Vec<String> = db
        .client()
        .query(
            "SELECT DISTINCT run_id FROM baileys_janitor.trash WHERE tenant = 'company_1'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let first = runs.iter().min().unwrap();
    // The app writes one of the removed pre-keys again: restore must not overwrite it.
    db.client()
        .execute("INSERT INTO whatsapp_keys (company_id, key_type, key_id, value) VALUES ('company_1', 'pre-key', '1', '{\"new\":1}')", &[])
        .unwrap();
    let restore = db
        .cmd(&state)
        .args([
            "restore",
            "--company",
            "company_1",
            "--run",
            first,
            "--json",
        ])
        .output()
        .unwrap();
    // A row not put back fails the run (exit 1), as for folders.
    assert_code(&restore, 1);
    let r: serde_json::Value = serde_json::from_slice(&restore.stdout).unwrap();
    assert_eq!(r["restored"].as_array().unwrap().len(), 73);
    assert_eq!(r["skipped"].as_array().unwrap().len(), 1);
    assert_eq!(db.count("SELECT count(*) FROM whatsapp_keys WHERE key_type = 'pre-key' AND key_id = '1' AND value = '{\"new\":1}'::jsonb"), 1);
    // Said in words that fit a store: the row is kept, not "the folder holds something else".
    let again = db
        .cmd(&state)
        .args(["restore", "--company", "company_1", "--run", first])
        .output()
        .unwrap();
    assert_code(&again, 1);
    let said = text(&again.stdout);
    assert!(
        said.contains("1 files were NOT restored: each is kept as it is now"),
        "{said}"
    );
    assert!(!said.contains("folder"), "{said}");
    assert_eq!(
        db.count("SELECT count(*) FROM whatsapp_keys WHERE key_type = 'session' AND key_id = '5511888888888.0' AND updated_at < now() - interval '19 days' AND created_at < now() - interval '19 days'"),
        1,
        "timestamps restored as they were"
    );
    assert_no_secret(dir.path(), &[&dry, &real, &legacy, &restore]);
}

#[test]
fn postgres_two_processes_handle_every_row_once() {
    let Some(db) = TestDb::new() else { return };
    db.per_type_schema();
    let tenants = 12;
    for i in 0..tenants {
        db.per_type_tenant(&format!("company_{i}"), 20);
    }
    let dir = tempfile::tempdir().unwrap();
    let before = db.count("SELECT count(*) FROM whatsapp_keys");
    let spawn = |state: &str| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("baileys-janitor"))
            .env_clear()
            .arg("--store")
            .arg(&db.url)
            .arg("--state-dir")
            .arg(dir.path().join(state))
            .arg("--config")
            .arg(keep50(&dir.path().join(state)))
            .args(["cleanup", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Two hosts: two state directories, one database.
    let a = spawn("host_a");
    let b = spawn("host_b");
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut removed = std::collections::HashMap::<String, usize>::new();
    let mut total = 0;
    for o in [&a, &b] {
        assert!(matches!(code(o), 0 | 75), "{}", text(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        for c in v["companies"].as_array().unwrap() {
            for f in c["removed_files"].as_array().unwrap() {
                *removed
                    .entry(format!("{}/{}", c["company"], f))
                    .or_default() += 1;
                total += 1;
            }
        }
    }
    assert!(removed.values().all(|&n| n == 1), "a row removed twice");
    assert_eq!(total, tenants * 74);
    assert_eq!(
        db.count("SELECT count(*) FROM whatsapp_keys"),
        before - total as i64
    );
    // Busy tenants are reported, and a rerun finishes them: nothing left to remove.
    let again = db
        .cmd(&dir.path().join("host_a"))
        .args(["cleanup", "--json"])
        .output()
        .unwrap();
    assert_code(&again, 0);
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["totals"]["removed"], 0);
}

#[test]
fn postgres_kv_layouts_waha_and_postgres_baileys() {
    let Some(db) = TestDb::new() else { return };
    db.client()
        .batch_execute(
            "CREATE TABLE waha_auth (session_id TEXT, key TEXT, value JSONB, PRIMARY KEY (session_id, key));
             CREATE TABLE auth_data (session_key VARCHAR(255) PRIMARY KEY, data TEXT NOT NULL);",
        )
        .unwrap();
    let mut c = db.client();
    c.execute(
        "INSERT INTO waha_auth VALUES ('default', 'creds', $1::text::jsonb)",
        &[&CREDS],
    )
    .unwrap();
    c.execute(
        "INSERT INTO auth_data VALUES ('s1:auth_creds', $1)",
        &[&CREDS],
    )
    .unwrap();
    for (t, id, v) in account_rows() {
        c.execute(
            "INSERT INTO waha_auth VALUES ('default', $1, $2::text::jsonb)",
            &[&format!("{t}-{id}"), &v],
        )
        .unwrap();
        c.execute(
            "INSERT INTO auth_data VALUES ($1, $2)",
            &[&format!("s1:{t}-{id}"), &v],
        )
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    for (layout, table, tenant) in [
        ("waha", "waha_auth", "default"),
        ("postgres-baileys", "auth_data", "s1"),
    ] {
        let out = db
            .cmd(&dir.path().join(layout))
            .args(["--layout", layout, "cleanup", "--json"])
            .output()
            .unwrap();
        assert_code(&out, 0);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let removed = removed_files(&v, tenant);
        // No clock but the session's own: the old session and its identity key go.
        assert_eq!(
            removed,
            ["identity-key-5511888888888.0", "session-5511888888888.0"],
            "{layout}"
        );
        assert_eq!(
            db.count(&format!("SELECT count(*) FROM {table}")),
            account_rows().len() as i64 - 1,
            "{layout}"
        );
    }
    // The wrong layout for these tables: one line, exit 2, nothing touched.
    let out = db
        .cmd(&dir.path().join("x"))
        .args(["cleanup"])
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(
        text(&out.stderr).contains("table whatsapp_auth not found"),
        "{}",
        text(&out.stderr)
    );
    assert_no_secret(dir.path(), &[&out]);
}

/// postgres-baileys keys are `<sid>:<type>-<id>`, and nothing stops a session id from holding
/// `:` itself. Splitting at the first `:` made `bot:1` part of tenant `bot`: its keys were
/// counted as `bot`'s unknown keys and `bot:1` was never cleaned.
#[test]
fn postgres_baileys_session_ids_with_a_colon_are_their_own_tenant() {
    let Some(db) = TestDb::new() else { return };
    let mut c = db.client();
    c.batch_execute(
        "CREATE TABLE auth_data (session_key VARCHAR(255) PRIMARY KEY, data TEXT NOT NULL)",
    )
    .unwrap();
    for sid in ["bot", "bot:1"] {
        c.execute(
            "INSERT INTO auth_data VALUES ($1, $2)",
            &[&format!("{sid}:auth_creds"), &CREDS],
        )
        .unwrap();
        for (t, id, v) in account_rows() {
            c.execute(
                "INSERT INTO auth_data VALUES ($1, $2)",
                &[&format!("{sid}:{t}-{id}"), &v],
            )
            .unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let status = db
        .cmd(&dir.path().join("s"))
        .args(["--layout", "postgres-baileys", "status", "--json"])
        .output()
        .unwrap();
    assert_code(&status, 0);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let tenants = v["tenants"].as_array().unwrap();
    let names: Vec<&str> = tenants
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bot", "bot:1"]);
    for t in tenants {
        assert_eq!(t["creds"], "paired", "{t}");
        assert_eq!(t["keys"], account_rows().len() + 1, "{t}");
    }
    let out = db
        .cmd(&dir.path().join("s"))
        .args(["--layout", "postgres-baileys", "cleanup", "--json"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for sid in ["bot", "bot:1"] {
        assert_eq!(company_report(&v, sid)["removed"], 2, "{sid}");
    }
    assert_eq!(
        db.count("SELECT count(*) FROM auth_data WHERE session_key LIKE 'bot:1:session-%'"),
        1
    );
}

#[test]
fn postgres_unreachable_is_one_line_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // From the environment (a password on the command line adds a warning line).
    let out = bare_cmd()
        .env(
            "BAILEYS_JANITOR_STORE",
            "postgres://app:hunter2-secret@127.0.0.1:1/wa",
        )
        .arg("--state-dir")
        .arg(dir.path())
        .args(["cleanup"])
        .output()
        .unwrap();
    assert_code(&out, 1);
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot connect to postgres://app@127.0.0.1:1/wa"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // From the environment too, and `config` shows it redacted.
    let shown = bare_cmd()
        .env(
            "BAILEYS_JANITOR_STORE",
            "postgres://app:hunter2-secret@127.0.0.1:1/wa",
        )
        .arg("--state-dir")
        .arg(dir.path())
        .args(["config"])
        .output()
        .unwrap();
    assert_code(&shown, 0);
    assert!(
        text(&shown.stdout).contains("BAILEYS_JANITOR_STORE"),
        "{}",
        text(&shown.stdout)
    );
    assert_no_secret(dir.path(), &[&out, &shown]);
}

#[test]
fn trigger_and_monitor_count_keys_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("auth");
    std::fs::create_dir(&fleet).unwrap();
    make_sqlite(&fleet.join("big.db"), CREDS);
    let small = fleet.join("small.db");
    make_sqlite(&small, CREDS);
    rusqlite::Connection::open(&small)
        .unwrap()
        .execute(
            "DELETE FROM signal_keys WHERE type = 'pre-key' OR type = 'tctoken'",
            [],
        )
        .unwrap();
    let keys = account_rows().len() + 1;
    let run = |args: &[&str]| {
        bare_cmd()
            .arg("--store")
            .arg(format!("sqlite:{}", fleet.display()))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(args)
            .output()
            .unwrap()
    };

    let mon = run(&["monitor", "--once", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&mon.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&mon.stdout), text(&mon.stderr)));
    let files = |v: &serde_json::Value, name: &str| {
        v.as_array()
            .or_else(|| v["companies"].as_array())
            .unwrap()
            .iter()
            .find(|r| r["company"] == name)
            .unwrap()["files"]
            .clone()
    };
    assert_eq!(files(&v, "big"), keys);
    assert_eq!(files(&v, "small"), keys - 121);
    let big = v["companies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["company"] == "big")
        .unwrap();
    assert_eq!(big["reserved_pre_keys"], 120, "{big}");
    assert_eq!(big["counted"], keys - 120, "{big}");

    // big's 120 pre-keys are the server window (creds: nextPreKeyId 121): reserved, not counted
    // (issue 20: the store trigger used to count them and clean).
    let trig = run(&[
        "trigger",
        "--threshold",
        "100",
        "--emergency-threshold",
        "1000",
        "--json",
    ]);
    assert_code(&trig, 0);
    let v: serde_json::Value = serde_json::from_slice(&trig.stdout).unwrap();
    let big = v["companies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["company"] == "big")
        .unwrap()
        .clone();
    assert_eq!(big["action"], "none", "{big}");
    assert_eq!(big["files"], keys, "{big}");
    assert_eq!(big["reserved_pre_keys"], 120, "{big}");
    assert_eq!(big["counted"], keys - 120, "{big}");

    let threshold = (keys - 120).to_string();
    let trig = run(&[
        "trigger",
        "--threshold",
        &threshold,
        "--emergency-threshold",
        "1000",
        "--json",
    ]);
    assert_code(&trig, 0);
    let v: serde_json::Value = serde_json::from_slice(&trig.stdout).unwrap();
    let rows = v["companies"]
        .as_array()
        .or_else(|| v["rows"].as_array())
        .unwrap();
    let big = rows.iter().find(|r| r["company"] == "big").unwrap();
    assert_eq!(big["action"], "cleanup", "{big}");
    assert_eq!(big["removed"], 2, "{big}");
    assert!(
        !rows
            .iter()
            .any(|r| r["company"] == "small" && r["action"] == "cleanup")
    );
    assert_eq!(
        sqlite_rows(&fleet.join("big.db")).len(),
        account_rows().len() - 2
    );
}
