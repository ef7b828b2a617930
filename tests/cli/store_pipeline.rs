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

fn runs_json(state: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(state.join("runs.json")).unwrap()).unwrap()
}

/// Broke: `status` on a store exited 0 with tenants at danger level (folders exit 1).
#[test]
fn store_status_exits_1_with_danger_tenants() {
    let f = Fleet::new();
    let db = f.add("company_1");
    let ok = f.run(&["status"]);
    assert_code(&ok, 0);
    let mut sql = String::new();
    for i in 200..280 {
        sql.push_str(&format!(
            "INSERT INTO signal_keys (type, id, value) VALUES ('pre-key', '{i}', '{{}}');"
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
    let runs = runs_json(&f.state());
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
    let runs = runs_json(&f.state());
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
