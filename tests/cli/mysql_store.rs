//! MySQL / MariaDB (mysql-baileys' `auth` table) through the real binary. The server is
//! BAILEYS_JANITOR_TEST_MYSQL (default mysql://root@127.0.0.1:3306); each test makes a database
//! and a user (with a password, to prove it never leaks) of its own and drops both afterwards.
//! Without a server the tests say SKIPPED (scripts/test.sh starts a throwaway one when it can),
//! unless REQUIRE_SERVICES=1: then they fail.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use mysql::prelude::Queryable;

use crate::stores::{CREDS, TestDb, account_rows, assert_no_secret, keep50, keep50_with, session};
use crate::testenv::*;

fn admin_url() -> String {
    std::env::var("BAILEYS_JANITOR_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// mysql-baileys 1.5.4's own `CREATE TABLE` (lib/Mysql/index.js).
pub const MYSQL_BAILEYS_TABLE: &str = "CREATE TABLE IF NOT EXISTS `auth` (`session` varchar(50) NOT NULL, `id` varchar(80) NOT NULL, `value` LONGTEXT DEFAULT NULL, UNIQUE KEY `idxunique` (`session`,`id`), KEY `idxsession` (`session`), KEY `idxid` (`id`)) ENGINE=MyISAM;";

/// A database and a user of its own on the test server, both dropped on drop.
pub struct TestMy {
    admin: mysql::Conn,
    pub db: String,
    user: String,
    /// The janitor's connection string: the test user, with its password.
    pub url: String,
    /// The database of the janitor's state (`store.state_schema`), the test's own: the
    /// default one is server-wide.
    pub state_db: String,
}

impl TestMy {
    pub fn new() -> Option<TestMy> {
        let admin_url = admin_url();
        let opts = mysql::Opts::from_url(&admin_url).expect("BAILEYS_JANITOR_TEST_MYSQL");
        let mut admin = match mysql::Conn::new(
            mysql::OptsBuilder::from_opts(opts.clone())
                .tcp_connect_timeout(Some(std::time::Duration::from_secs(2))),
        ) {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    std::env::var("REQUIRE_SERVICES").map_or(true, |v| v != "1"),
                    "REQUIRE_SERVICES=1 but no MySQL answers ({e})"
                );
                eprintln!("SKIPPED: mysql tests ({e})");
                return None;
            }
        };
        let tag = format!(
            "{}_{:x}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let db = format!("bj_test_{tag}");
        let state_db = format!("bj_state_{tag}");
        let user = format!("bj_{tag}");
        admin.query_drop(format!("CREATE DATABASE {db}")).unwrap();
        for host in ["%", "localhost"] {
            admin
                .query_drop(format!(
                    "CREATE USER '{user}'@'{host}' IDENTIFIED BY 'hunter2-secret'"
                ))
                .unwrap();
            admin
                .query_drop(format!("GRANT ALL ON {db}.* TO '{user}'@'{host}'"))
                .unwrap();
            admin
                .query_drop(format!("GRANT ALL ON {state_db}.* TO '{user}'@'{host}'"))
                .unwrap();
        }
        let url = format!(
            "mysql://{user}:hunter2-secret@{}:{}/{db}",
            opts.get_ip_or_hostname(),
            opts.get_tcp_port()
        );
        Some(TestMy {
            admin,
            db,
            user,
            url,
            state_db,
        })
    }

    pub fn put(&mut self, session: &str, id: &str, value: &str) {
        self.admin
            .exec_drop(
                format!(
                    "INSERT INTO {}.auth (session, id, value) VALUES (?, ?, ?)",
                    self.db
                ),
                (session, id, value),
            )
            .unwrap();
    }

    /// One account as mysql-baileys writes it: the creds row and every key of the fixture.
    pub fn account(&mut self, tenant: &str) {
        self.put(tenant, "creds", CREDS);
        for (t, id, v) in account_rows() {
            self.put(tenant, &format!("{t}-{id}"), &v);
        }
    }

    pub fn count(&mut self, sql: &str) -> i64 {
        self.admin.query_drop(format!("USE {}", self.db)).unwrap();
        self.admin.query_first(sql).unwrap().unwrap()
    }

    /// The administrator's connection (the state database's tables, grants).
    pub fn admin(&mut self) -> &mut mysql::Conn {
        &mut self.admin
    }

    pub fn exec(&mut self, sql: &str) {
        self.admin.query_drop(format!("USE {}", self.db)).unwrap();
        self.admin.query_drop(sql).unwrap();
    }

    /// Every row of the table, values as hex: what a byte-exact restore must give back.
    pub fn dump(&mut self) -> BTreeMap<(String, String), String> {
        self.admin.query_drop(format!("USE {}", self.db)).unwrap();
        self.admin
            .query::<(Vec<u8>, Vec<u8>, String), _>(
                "SELECT CAST(session AS BINARY), CAST(id AS BINARY), HEX(value) FROM auth",
            )
            .unwrap()
            .into_iter()
            .map(|(s, i, v)| {
                (
                    (String::from_utf8(s).unwrap(), String::from_utf8(i).unwrap()),
                    v,
                )
            })
            .collect()
    }

    /// The binary on this database with the spec's keep-50 pre-key rule.
    pub fn cmd(&self, state: &Path) -> assert_cmd::Command {
        self.cmd_with(state, "")
    }

    /// [`TestMy::cmd`] with `more` (TOML) after the keep-50 rule in its config file.
    pub fn cmd_with(&self, state: &Path, more: &str) -> assert_cmd::Command {
        let mut c = bare_cmd();
        c.arg("--store")
            .arg(&self.url)
            .arg("--state-dir")
            .arg(state)
            .arg("--config")
            .arg(keep50_with(state, more))
            .env("BAILEYS_JANITOR_STATE_SCHEMA", &self.state_db);
        c
    }
}

impl Drop for TestMy {
    fn drop(&mut self) {
        let _ = self
            .admin
            .query_drop(format!("DROP DATABASE IF EXISTS {}", self.db));
        let _ = self
            .admin
            .query_drop(format!("DROP DATABASE IF EXISTS {}", self.state_db));
        for host in ["%", "localhost"] {
            let _ = self
                .admin
                .query_drop(format!("DROP USER IF EXISTS '{}'@'{host}'", self.user));
        }
    }
}

/// The janitor's `GET_LOCK` names, spelled out: janitors of different versions on different
/// hosts must keep agreeing on them (64-bit FNV-1a of `db.table`, and of `db.table\0tenant`).
fn lock_name(scope: &str, tenant: Option<&str>) -> String {
    let fnv = |b: &[u8]| {
        b.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &x| {
            (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    match tenant {
        Some(t) => format!(
            "baileys-janitor:t:{:016x}",
            fnv(format!("{scope}\0{t}").as_bytes())
        ),
        None => format!("baileys-janitor:g:{:016x}", fnv(scope.as_bytes())),
    }
}

fn json_of(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&o.stdout), text(&o.stderr)))
}

fn removed_sorted(v: &serde_json::Value, tenant: &str) -> Vec<String> {
    let mut r: Vec<String> = company_report(v, tenant)["removed_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    r.sort();
    r
}

#[test]
fn mysql_baileys_status_monitor_trigger_cleanup_and_byte_exact_restore() {
    let Some(mut my) = TestMy::new() else { return };
    my.exec(MYSQL_BAILEYS_TABLE);
    my.account("acme");
    my.account("small");
    my.exec("DELETE FROM auth WHERE session = 'small' AND id LIKE 'pre-key-%'");
    // Levels count keys less the pre-keys the server may still hand out: acme is big by its
    // 100 more sessions unused for 30 days.
    for n in 0..100 {
        my.put("acme", &format!("session-55330000{n:05}.0"), &session(30));
    }
    let before = my.dump();
    let keys = account_rows().len() + 1;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");

    let status = my.cmd(&state).args(["status", "--json"]).output().unwrap();
    assert_code(&status, 0);
    let s = json_of(&status);
    assert!(
        s["store"].as_str().unwrap().contains("(mysql-baileys)"),
        "{s}"
    );
    let t = s["tenants"].as_array().unwrap();
    let acme = t.iter().find(|x| x["tenant"] == "acme").unwrap();
    assert_eq!(acme["creds"], "paired", "{acme}");

    let mon = my
        .cmd(&state)
        .args(["monitor", "--once", "--json"])
        .output()
        .unwrap();
    let v = json_of(&mon);
    let files = |name: &str| {
        v.as_array()
            .or_else(|| v["companies"].as_array())
            .unwrap()
            .iter()
            .find(|r| r["company"] == name)
            .unwrap()["files"]
            .clone()
    };
    assert_eq!(files("acme"), keys + 100);
    assert_eq!(files("small"), keys - 120);

    let dry = my
        .cmd(&state)
        .args(["cleanup", "--dry-run", "--json", "-v"])
        .output()
        .unwrap();
    assert_code(&dry, 0);
    assert_eq!(my.dump(), before, "a dry run changes nothing");

    // The trigger cleans only the tenant over the threshold: the old sessions and the identity
    // key of one of them (no clock but the sessions' own on a first run).
    let trig = my
        .cmd(&state)
        .args([
            "trigger",
            "--threshold",
            "100",
            "--emergency-threshold",
            "1000",
            "--json",
        ])
        .output()
        .unwrap();
    assert_code(&trig, 0);
    let v = json_of(&trig);
    let rows = v["companies"]
        .as_array()
        .or_else(|| v["rows"].as_array())
        .unwrap();
    let big = rows.iter().find(|r| r["company"] == "acme").unwrap();
    assert_eq!(big["action"], "cleanup", "{big}");
    assert_eq!(big["removed"], 102, "{big}");
    assert!(
        !rows
            .iter()
            .any(|r| r["company"] == "small" && r["action"] == "cleanup")
    );
    let after = my.dump();
    assert_eq!(after.len(), before.len() - 102);
    assert!(!after.contains_key(&("acme".into(), "session-5511888888888.0".into())));
    assert!(after.contains_key(&("small".into(), "session-5511888888888.0".into())));

    let clean = my.cmd(&state).args(["cleanup", "--json"]).output().unwrap();
    assert_code(&clean, 0);
    let v = json_of(&clean);
    assert_eq!(
        removed_sorted(&v, "small"),
        ["identity-key-5511888888888.0", "session-5511888888888.0"]
    );
    assert_eq!(company_report(&v, "acme")["removed"], 0);

    for tenant in ["acme", "small"] {
        let restore = my
            .cmd(&state)
            .args(["restore", "--company", tenant])
            .output()
            .unwrap();
        assert_code(&restore, 0);
    }
    assert_eq!(my.dump(), before, "restored byte for byte");
    assert_no_secret(dir.path(), &[&status, &mon, &dry, &trig, &clean]);
}

#[test]
fn mysql_gives_the_same_decisions_as_postgres_for_the_same_fixture() {
    let Some(mut my) = TestMy::new() else { return };
    let Some(pg) = TestDb::new() else { return };
    my.exec(MYSQL_BAILEYS_TABLE);
    my.account("s1");
    let mut c = pg.client();
    c.batch_execute(
        "CREATE TABLE auth_data (session_key VARCHAR(255) PRIMARY KEY, data TEXT NOT NULL)",
    )
    .unwrap();
    c.execute(
        "INSERT INTO auth_data VALUES ('s1:auth_creds', $1)",
        &[&CREDS],
    )
    .unwrap();
    for (t, id, v) in account_rows() {
        c.execute(
            "INSERT INTO auth_data VALUES ($1, $2)",
            &[&format!("s1:{t}-{id}"), &v],
        )
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let decisions = |out: &std::process::Output| {
        assert_code(out, 0);
        let v = json_of(out);
        let mut d: Vec<(String, String, String)> = company_report(&v, "s1")["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["file"].as_str().unwrap().to_owned(),
                    d["action"].as_str().unwrap().to_owned(),
                    d["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        d.sort();
        d
    };
    let args = ["cleanup", "--dry-run", "--json", "-v"];
    // One clock for both runs: the reasons carry rounded ages ("1d old"), and two runs a moment
    // apart can round across a boundary ("23h 59m old"). Two minutes ahead: each store's fixture
    // stamps its sessions' `used` from the real clock a few ms apart, and a clock truncated to the
    // second could fall before one of them (23h 59m) and after the other (1d).
    let now = (chrono::Utc::now() + chrono::Duration::minutes(2))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let on_mysql = my
        .cmd(&dir.path().join("my"))
        .env("BAILEYS_JANITOR_NOW", &now)
        .args(args)
        .output()
        .unwrap();
    let on_pg = bare_cmd()
        .env("BAILEYS_JANITOR_NOW", &now)
        .arg("--store")
        .arg(&pg.url)
        .args(["--layout", "postgres-baileys", "--state-dir"])
        .arg(dir.path().join("pg"))
        .arg("--config")
        .arg(keep50(&dir.path().join("pg")))
        .args(args)
        .output()
        .unwrap();
    let (m, p) = (decisions(&on_mysql), decisions(&on_pg));
    assert_eq!(m.len(), account_rows().len());
    assert_eq!(m, p);
    // And the same real removals.
    let real_my = my
        .cmd(&dir.path().join("my"))
        .args(["cleanup", "--json"])
        .output()
        .unwrap();
    let real_pg = bare_cmd()
        .arg("--store")
        .arg(&pg.url)
        .args(["--layout", "postgres-baileys", "--state-dir"])
        .arg(dir.path().join("pg"))
        .arg("--config")
        .arg(keep50(&dir.path().join("pg")))
        .args(["cleanup", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        removed_sorted(&json_of(&real_my), "s1"),
        removed_sorted(&json_of(&real_pg), "s1")
    );
    assert_no_secret(dir.path(), &[&on_mysql, &on_pg, &real_my, &real_pg]);
}

#[test]
fn mysql_two_processes_handle_every_row_once() {
    let Some(mut my) = TestMy::new() else { return };
    my.exec(MYSQL_BAILEYS_TABLE);
    let tenants = 12;
    let old_sessions = 40;
    for i in 0..tenants {
        let t = format!("company_{i}");
        my.account(&t);
        for n in 0..old_sessions {
            my.put(&t, &format!("session-55110000{n:05}.0"), &session(30));
        }
    }
    let per_tenant = 2 + old_sessions;
    let before = my.count("SELECT COUNT(*) FROM auth");
    let dir = tempfile::tempdir().unwrap();
    let spawn = |state: &str| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("baileys-janitor"))
            .env_clear()
            .env("BAILEYS_JANITOR_SYSTEM_CONFIG", NO_SYSTEM_CONFIG)
            .arg("--store")
            .arg(&my.url)
            .env("BAILEYS_JANITOR_STATE_SCHEMA", &my.state_db)
            .arg("--state-dir")
            .arg(dir.path().join(state))
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
        for c in json_of(o)["companies"].as_array().unwrap() {
            for f in c["removed_files"].as_array().unwrap() {
                *removed
                    .entry(format!("{}/{}", c["company"], f))
                    .or_default() += 1;
                total += 1;
            }
        }
    }
    assert!(removed.values().all(|&n| n == 1), "a row removed twice");
    let left = my.count("SELECT COUNT(*) FROM auth");
    assert_eq!(left, before - total as i64, "every removal reported once");
    // Busy tenants are reported, and a rerun finishes them: every removable row once.
    let again = bare_cmd()
        .arg("--store")
        .arg(&my.url)
        .env("BAILEYS_JANITOR_STATE_SCHEMA", &my.state_db)
        .arg("--state-dir")
        .arg(dir.path().join("host_a"))
        .args(["cleanup", "--json"])
        .output()
        .unwrap();
    assert_code(&again, 0);
    let rest = json_of(&again)["totals"]["removed"].as_u64().unwrap() as usize;
    assert_eq!(total + rest, tenants * per_tenant);
    assert_eq!(
        my.count("SELECT COUNT(*) FROM auth"),
        before - (tenants * per_tenant) as i64
    );
}

#[test]
fn mysql_tenant_locked_by_another_host_is_busy_and_untouched() {
    let Some(mut my) = TestMy::new() else { return };
    my.exec(MYSQL_BAILEYS_TABLE);
    my.account("acme");
    let before = my.dump();
    let name = lock_name(&format!("{}.auth", my.db), Some("acme"));
    let got: Option<i64> = my
        .admin
        .exec_first("SELECT GET_LOCK(?, 0)", (name.as_str(),))
        .unwrap();
    assert_eq!(got, Some(1));
    let dir = tempfile::tempdir().unwrap();
    // The daily cleanup waits `cleanup.lock_wait` for a held tenant, then reports it busy.
    let out = my
        .cmd(&dir.path().join("state"))
        .args(["cleanup", "--json", "--lock-wait", "1s"])
        .output()
        .unwrap();
    assert_code(&out, 75);
    let v = json_of(&out);
    let c = company_report(&v, "acme");
    assert_eq!(c["status"], "busy", "{c}");
    assert_eq!(my.dump(), before);
    // The server's lock is the only one: none in the state directory.
    assert!(!dir.path().join("state/locks").exists());
    // The trigger's own lock, held elsewhere: exit 75 too.
    let global = lock_name(&format!("{}.auth", my.db), None);
    let _: Option<i64> = my
        .admin
        .exec_first("SELECT GET_LOCK(?, 0)", (global.as_str(),))
        .unwrap();
    let trig = my
        .cmd(&dir.path().join("state"))
        .args(["trigger", "--threshold", "1", "--json"])
        .output()
        .unwrap();
    assert_code(&trig, 75);
    assert_eq!(my.dump(), before);
}

#[test]
fn mysql_failures_are_one_line_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        bare_cmd()
            .arg("--state-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    // From the environment: one line. (On the command line a warning comes first.)
    let down = bare_cmd()
        .env(
            "BAILEYS_JANITOR_STORE",
            "mysql://app:hunter2-secret@127.0.0.1:1/wa",
        )
        .arg("--state-dir")
        .arg(dir.path())
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&down, 1);
    let err = text(&down.stderr);
    assert!(
        err.contains("cannot connect to mysql://app@127.0.0.1:1/wa"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let no_db = run(&[
        "--store",
        "mariadb://app:hunter2-secret@127.0.0.1",
        "status",
    ]);
    assert_code(&no_db, 2);
    assert!(text(&no_db.stderr).contains("names no database"));
    let layout = run(&[
        "--store",
        "mysql://app:hunter2-secret@127.0.0.1/wa",
        "--layout",
        "waha",
        "status",
    ]);
    assert_code(&layout, 2);
    assert!(
        text(&layout.stderr).contains("not a mysql layout (one of mysql-baileys)"),
        "{}",
        text(&layout.stderr)
    );
    let mut outputs = vec![down, no_db, layout];
    if let Some(my) = TestMy::new() {
        // A database without mysql-baileys' table: exit 2, nothing created.
        let out = my
            .cmd(&dir.path().join("s"))
            .arg("cleanup")
            .output()
            .unwrap();
        assert_code(&out, 2);
        assert!(
            text(&out.stderr).contains("table auth not found"),
            "{}",
            text(&out.stderr)
        );
        outputs.push(out);
    }
    assert_no_secret(dir.path(), &outputs.iter().collect::<Vec<_>>());
}

#[test]
fn mysql_monitor_auto_cleanup_respects_a_held_lock_then_cleans_an_emergency_tenant() {
    let Some(mut my) = TestMy::new() else { return };
    my.exec(MYSQL_BAILEYS_TABLE);
    my.account("acme");
    // Emergency (180) by keys less reserved pre-keys: 170 more sessions unused for 30 days.
    for n in 0..170 {
        my.put("acme", &format!("session-55220000{n:05}.0"), &session(30));
    }
    let before = my.dump();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let monitor = |my: &TestMy| {
        bare_cmd()
            .arg("--store")
            .arg(&my.url)
            .env("BAILEYS_JANITOR_STATE_SCHEMA", &my.state_db)
            .arg("--state-dir")
            .arg(&state)
            .args(["monitor", "--once", "--auto-cleanup", "--json"])
            .output()
            .unwrap()
    };
    // Another host holds the tenant: the monitor's cleanup waits its turn, nothing changes.
    let name = lock_name(&format!("{}.auth", my.db), Some("acme"));
    let got: Option<i64> = my
        .admin
        .exec_first("SELECT GET_LOCK(?, 0)", (name.as_str(),))
        .unwrap();
    assert_eq!(got, Some(1));
    let held = monitor(&my);
    assert_code(&held, 1);
    assert_eq!(my.dump(), before);
    let _: Option<i64> = my
        .admin
        .exec_first("SELECT RELEASE_LOCK(?)", (name.as_str(),))
        .unwrap();

    let out = monitor(&my);
    assert_code(&out, 0);
    let v = json_of(&out);
    let row = v
        .as_array()
        .or_else(|| v["companies"].as_array())
        .unwrap()
        .iter()
        .find(|r| r["company"] == "acme")
        .unwrap()
        .clone();
    // The 171 old sessions and the identity key of one of them went, through the cleanup path.
    assert_eq!(row["files"], before.len() - 172, "{row}");
    assert_eq!(my.dump().len(), before.len() - 172);
    // It went through the cleanup path: trashed, and restored byte for byte.
    let restore = bare_cmd()
        .arg("--store")
        .arg(&my.url)
        .env("BAILEYS_JANITOR_STATE_SCHEMA", &my.state_db)
        .arg("--state-dir")
        .arg(&state)
        .args(["restore", "--company", "acme"])
        .output()
        .unwrap();
    assert_code(&restore, 0);
    assert_eq!(my.dump(), before);
    assert_no_secret(dir.path(), &[&held, &out, &restore]);
}

#[test]
fn mysql_baileys_table_name_option_cleans_that_table_only() {
    let Some(mut my) = TestMy::new() else { return };
    my.exec(MYSQL_BAILEYS_TABLE);
    my.exec(&MYSQL_BAILEYS_TABLE.replace("`auth`", "`wa_auth`"));
    my.account("acme");
    my.exec("INSERT INTO wa_auth SELECT * FROM auth");
    let dir = tempfile::tempdir().unwrap();
    let out = bare_cmd()
        .arg("--store")
        .arg(format!("{}?table=wa_auth", my.url))
        .env("BAILEYS_JANITOR_STATE_SCHEMA", &my.state_db)
        .arg("--state-dir")
        .arg(dir.path())
        .args(["cleanup", "--json"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let v = json_of(&out);
    assert_eq!(
        removed_sorted(&v, "acme"),
        ["identity-key-5511888888888.0", "session-5511888888888.0"]
    );
    let keys = account_rows().len() as i64 + 1;
    assert_eq!(my.count("SELECT COUNT(*) FROM wa_auth"), keys - 2);
    assert_eq!(
        my.count("SELECT COUNT(*) FROM auth"),
        keys,
        "the other table is untouched"
    );
    let status = bare_cmd()
        .arg("--store")
        .arg(format!("{}?table=wa_auth", my.url))
        .env("BAILEYS_JANITOR_STATE_SCHEMA", &my.state_db)
        .arg("--state-dir")
        .arg(dir.path())
        .arg("status")
        .output()
        .unwrap();
    assert!(
        text(&status.stdout).contains("(mysql-baileys, table wa_auth)"),
        "{}",
        text(&status.stdout)
    );
    assert_no_secret(dir.path(), &[&out, &status]);
}

/// The server drops the janitor's connection between planning and removal (restart, failover,
/// `KILL`): its locks go with it, so nothing may be removed any more. The batch fails, the run
/// says so, nothing changes, and the next run finds no stale lock.
#[test]
fn mysql_connection_lost_before_removal_removes_nothing_and_leaves_no_lock() {
    let Some(mut my) = TestMy::new() else { return };
    my.exec(MYSQL_BAILEYS_TABLE);
    my.account("acme");
    let before = my.dump();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("baileys-janitor"))
        .env_clear()
        .env("BAILEYS_JANITOR_SYSTEM_CONFIG", NO_SYSTEM_CONFIG)
        .arg("--store")
        .arg(&my.url)
        .env("BAILEYS_JANITOR_STATE_SCHEMA", &my.state_db)
        .arg("--state-dir")
        .arg(&state)
        .args(["cleanup", "--json", "--debug-pause-before-remove", "2s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Planned once the tenant lock is held (then the 2 s pause): kill the holder's connection.
    let name = lock_name(&format!("{}.auth", my.db), Some("acme"));
    let mut holder = None;
    assert!(wait_for(10, || {
        holder = my
            .admin
            .exec_first::<Option<u64>, _, _>("SELECT IS_USED_LOCK(?)", (name.as_str(),))
            .unwrap()
            .flatten();
        holder.is_some()
    }));
    std::thread::sleep(std::time::Duration::from_millis(700));
    my.admin
        .query_drop(format!("KILL CONNECTION {}", holder.unwrap()))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 1);
    assert_eq!(my.dump(), before, "nothing removed without the connection");
    let failed = company_report(&json_of(&out), "acme")["failed_files"].to_string();
    assert!(failed.contains("session-5511888888888.0"), "{failed}");
    let again = my.cmd(&state).args(["cleanup", "--json"]).output().unwrap();
    assert_code(&again, 0);
    assert_eq!(
        removed_sorted(&json_of(&again), "acme"),
        ["identity-key-5511888888888.0", "session-5511888888888.0"]
    );
}

/// The password outside argv: `MYSQL_PWD` or `store.password_file` (owner-only) fill a
/// connection string that has none; a password in `--store` still works with one warning; none
/// of them ever shows.
#[test]
fn mysql_password_from_mysql_pwd_or_a_password_file_never_from_argv() {
    let Some(mut my) = TestMy::new() else { return };
    my.exec(MYSQL_BAILEYS_TABLE);
    my.account("acme");
    let dir = tempfile::tempdir().unwrap();
    let bare_url = my.url.replace(":hunter2-secret@", "@");
    assert!(!bare_url.contains("hunter2"));
    let status = |envs: &[(&str, &str)], args: &[&str]| {
        let mut c = bare_cmd();
        c.env("BAILEYS_JANITOR_STATE_SCHEMA", &my.state_db);
        for (k, v) in envs {
            c.env(k, v);
        }
        c.arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(args)
            .args(["status", "--json"])
            .output()
            .unwrap()
    };
    // No password anywhere: the server refuses (exit 1), in one line.
    let none = status(&[], &["--store", &bare_url]);
    assert_code(&none, 1);
    let from_env = status(&[("MYSQL_PWD", "hunter2-secret")], &["--store", &bare_url]);
    assert_code(&from_env, 0);
    assert!(text(&from_env.stdout).contains("\"acme\""));
    let pw = dir.path().join("mysql.password");
    std::fs::write(&pw, "hunter2-secret\n").unwrap();
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\nurl = {bare_url:?}\npassword_file = {:?}\n",
            pw.display().to_string()
        ),
    )
    .unwrap();
    let from_file = status(&[], &["--config", cfg.to_str().unwrap()]);
    assert_code(&from_file, 0);
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let readable = status(&[], &["--config", cfg.to_str().unwrap()]);
    assert_code(&readable, 2);
    // On the command line: it works, and says once that others can read it.
    let argv = status(&[], &["--store", &my.url]);
    assert_code(&argv, 0);
    assert_eq!(
        text(&argv.stderr).matches("carries a password").count(),
        1,
        "{}",
        text(&argv.stderr)
    );
    assert!(
        text(&argv.stderr).contains("MYSQL_PWD"),
        "{}",
        text(&argv.stderr)
    );
    assert_no_secret(
        &dir.path().join("state"),
        &[&none, &from_env, &from_file, &readable, &argv],
    );
}

/// Each company's status and removed keys (sorted), in the report's order.
fn reports(v: &serde_json::Value) -> Vec<(String, String, Vec<String>)> {
    v["companies"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|c| {
            let company = c["company"].as_str().unwrap().to_owned();
            (
                company.clone(),
                c["status"].to_string(),
                removed_sorted(v, &company),
            )
        })
        .collect()
}

#[test]
fn mysql_tenants_are_cleaned_on_several_workers_with_the_result_of_one() {
    let tenants = ["company_1", "company_2", "company_3", "company_4"];
    let fleet = || {
        let mut my = TestMy::new()?;
        my.exec(MYSQL_BAILEYS_TABLE);
        for t in tenants {
            my.account(t);
            for n in 0..3 {
                my.put(t, &format!("session-55110000{n:05}.0"), &session(30));
            }
        }
        Some(my)
    };
    let (Some(mut one), Some(mut two)) = (fleet(), fleet()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("two");
    // Two workers: two tenants are locked (and paused before their removal) at the same time,
    // each by a connection of its own.
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("baileys-janitor"))
        .env_clear()
        .env("BAILEYS_JANITOR_SYSTEM_CONFIG", NO_SYSTEM_CONFIG)
        .env("BAILEYS_JANITOR_LOG", "warn")
        .env("BAILEYS_JANITOR_STATE_SCHEMA", &two.state_db)
        .arg("--store")
        .arg(&two.url)
        .arg("--state-dir")
        .arg(&state)
        .arg("--config")
        .arg(keep50(&state))
        .args(["cleanup", "--jobs", "2", "--json"])
        .args(["--debug-pause-before-remove", "2s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let scope = format!("{}.auth", two.db);
    let (first, second) = (
        lock_name(&scope, Some("company_1")),
        lock_name(&scope, Some("company_2")),
    );
    let mut holders = None;
    let together = wait_for(20, || {
        let held: Option<(Option<u64>, Option<u64>)> = two
            .admin
            .exec_first(
                "SELECT IS_USED_LOCK(?), IS_USED_LOCK(?)",
                (first.as_str(), second.as_str()),
            )
            .unwrap();
        holders = held;
        matches!(holders, Some((Some(_), Some(_))))
    });
    let parallel = child.wait_with_output().unwrap();
    assert!(
        together,
        "the two first tenants were never cleaned at the same time: {holders:?}\n{}",
        text(&parallel.stderr)
    );
    let (a, b) = holders.unwrap();
    assert_ne!(a, b, "one connection held both tenants");
    assert_code(&parallel, 0);
    let parallel = json_of(&parallel);
    let serial = json_of(&run(
        &mut one.cmd(&dir.path().join("one")),
        &["cleanup", "--jobs", "1", "--json"],
        0,
    ));
    // The same reports (rows removed, statuses), in tenant order.
    assert_eq!(reports(&parallel), reports(&serial));
    assert_eq!(
        reports(&parallel)
            .iter()
            .map(|r| r.0.as_str())
            .collect::<Vec<_>>(),
        tenants
    );
    // Four old sessions a tenant, and the one identity key among them.
    assert_eq!(parallel["totals"]["removed"], serde_json::json!(5 * 4));
    assert_eq!(parallel["totals"]["removed"], serial["totals"]["removed"]);
    // The same rows left (keys only: the fixtures' session clocks differ by milliseconds), and
    // the same trash.
    let keys = |my: &mut TestMy| my.dump().into_keys().collect::<Vec<_>>();
    assert_eq!(keys(&mut two), keys(&mut one));
    let trash = |my: &mut TestMy| -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        let sql = format!(
            "SELECT tenant, key_type, key_id FROM {}.trash ORDER BY tenant, key_type, key_id",
            my.state_db
        );
        my.admin.query(sql).unwrap()
    };
    let trashed = trash(&mut two);
    assert_eq!(trashed, trash(&mut one));
    assert_eq!(trashed.len(), 5 * 4);
}
