//! The janitor's state in PostgreSQL and MySQL (issue 23), through the real binary: two
//! janitors (two state directories, two `BAILEYS_JANITOR_HOSTNAME`s) on ONE database see the
//! same holds, cooldowns, runs and trash; the state's schema is private, refused when it cannot
//! be created or is newer than the binary, and never created by `status` or a dry run; and a
//! `kill -9` at every step of a cleanup leaves every row in the table or in the trash.
//!
//! PostgreSQL: a database of the test's own (`stores::TestDb`), state in its `baileys_janitor`
//! schema. MySQL: a database and a state database of the test's own (`mysql_store::TestMy`,
//! `store.state_schema` through BAILEYS_JANITOR_STATE_SCHEMA). All dropped afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use mysql::prelude::Queryable;

use crate::layers::{
    NEW_OLD_SESSION, OTHER_LAYERS, SMALL_FLEET_LEVELS, STATUS, cooldown_cases,
    status_cooldown_and_holds,
};
use crate::mysql_store::{MYSQL_BAILEYS_TABLE, TestMy};
use crate::stores::{TestDb, session};
use crate::testenv::*;

const TENANTS: [&str; 2] = ["company_1", "company_2"];

/// (tenant, key) → value; the key is the store's own (`type␟id` on PostgreSQL, `type-id` on
/// MySQL), as the trash spells it too.
type Rows = BTreeMap<(String, String), String>;

enum Db {
    Pg(TestDb),
    My(TestMy),
}

impl Db {
    /// Two tenants of the per-type layout, keys 20 days old: each cleanup removes rows of both.
    fn pg() -> Option<Db> {
        let db = TestDb::new()?;
        db.per_type_schema();
        for t in TENANTS {
            db.per_type_tenant(t, 20);
        }
        Some(Db::Pg(db))
    }

    /// Two mysql-baileys accounts in a MyISAM `auth` table (what mysql-baileys creates).
    fn my() -> Option<Db> {
        let mut my = TestMy::new()?;
        my.exec(MYSQL_BAILEYS_TABLE);
        for t in TENANTS {
            my.account(t);
        }
        Some(Db::My(my))
    }

    fn prefix(&self) -> &'static str {
        match self {
            Db::Pg(_) => "pg",
            Db::My(_) => "mysql",
        }
    }

    /// The binary on this database as host `host`, with its own state directory `state`.
    fn cmd(&self, state: &Path, host: &str) -> assert_cmd::Command {
        self.cmd_with(state, host, "")
    }

    /// [`Db::cmd`] with `more` (TOML) in its config file.
    fn cmd_with(&self, state: &Path, host: &str, more: &str) -> assert_cmd::Command {
        let mut c = match self {
            Db::Pg(d) => d.cmd_with(state, more),
            Db::My(m) => m.cmd_with(state, more),
        };
        c.env("BAILEYS_JANITOR_HOSTNAME", host);
        c
    }

    /// Adds a key row `(type, id)` with `value` to `tenant`, its clock (where the table has
    /// one) as old as the value says.
    fn put(&mut self, tenant: &str, (ty, id): (&str, &str), value: &str) {
        match self {
            Db::Pg(d) => {
                d.client()
                    .execute(
                        "INSERT INTO whatsapp_keys (company_id, key_type, key_id, value, updated_at)
                         VALUES ($1, $2, $3, $4::text::jsonb, now() - interval '30 days')",
                        &[&tenant, &ty, &id, &value],
                    )
                    .unwrap();
            }
            Db::My(m) => m.put(tenant, &format!("{ty}-{id}"), value),
        }
    }

    /// The key of `(type, id)` as [`Db::keys`] spells it.
    fn key(&self, tenant: &str, (ty, id): (&str, &str)) -> (String, String) {
        let k = match self {
            Db::Pg(_) => format!("{ty}\u{1f}{id}"),
            Db::My(_) => format!("{ty}-{id}"),
        };
        (tenant.to_owned(), k)
    }

    /// `schema.table` of the janitor's state.
    fn state_table(&self, table: &str) -> String {
        match self {
            Db::Pg(_) => format!("baileys_janitor.{table}"),
            Db::My(m) => format!("{}.{table}", m.state_db),
        }
    }

    fn count(&mut self, sql: &str) -> i64 {
        match self {
            Db::Pg(d) => d.count(sql),
            Db::My(m) => m.count(sql),
        }
    }

    fn pairs(&mut self, sql: &str) -> Rows {
        match self {
            Db::Pg(d) => d
                .client()
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| ((r.get(0), r.get(1)), r.get(2)))
                .collect(),
            Db::My(m) => m
                .admin()
                .query::<(Vec<u8>, Vec<u8>, String), _>(sql)
                .unwrap()
                .into_iter()
                .map(|(t, k, v)| {
                    (
                        (String::from_utf8(t).unwrap(), String::from_utf8(k).unwrap()),
                        v,
                    )
                })
                .collect(),
        }
    }

    /// Every key row of the app's table (creds excluded).
    fn keys(&mut self) -> Rows {
        let sql = match self {
            Db::Pg(_) => {
                "SELECT company_id, key_type || chr(31) || key_id, value::text FROM whatsapp_keys"
                    .to_owned()
            }
            Db::My(m) => format!(
                "SELECT CAST(session AS BINARY), CAST(id AS BINARY), HEX(value) FROM {}.auth WHERE id <> 'creds'",
                m.db
            ),
        };
        self.pairs(&sql)
    }

    /// Every row in the janitor's trash, as [`Db::keys`] spells it.
    fn trash(&mut self) -> Rows {
        if !self.state_exists() {
            return Rows::new();
        }
        let trash = self.state_table("trash");
        let sql = match self {
            Db::Pg(_) => {
                format!("SELECT tenant, key_type || chr(31) || key_id, value FROM {trash}")
            }
            Db::My(_) => format!(
                "SELECT tenant, IF(key_type = '', key_id, CONCAT(key_type, '-', key_id)), HEX(value) FROM {trash}"
            ),
        };
        self.pairs(&sql)
    }

    fn state_exists(&mut self) -> bool {
        let sql = match self {
            Db::Pg(_) => {
                "SELECT count(*) FROM pg_namespace WHERE nspname = 'baileys_janitor'".to_owned()
            }
            Db::My(m) => format!(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{}'",
                m.state_db
            ),
        };
        self.count(&sql) == 1
    }

    /// Never neither: each row of `before` is in the table or in the trash, with its value.
    fn assert_nothing_lost(&mut self, before: &Rows, when: &str) {
        let (now, trash) = (self.keys(), self.trash());
        for (k, v) in before {
            assert!(
                now.get(k) == Some(v) || trash.get(k) == Some(v),
                "{when}: {k:?} is neither in the table nor in the trash"
            );
        }
    }
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&o.stdout), text(&o.stderr)))
}

fn removed(v: &serde_json::Value, tenant: &str) -> u64 {
    company_report(v, tenant)["removed"].as_u64().unwrap()
}

// ---------------------------------------------------------------- two hosts, one truth

/// A cleans and restores; B's cleanup keeps what A restored (the hold is in the store); `status`
/// on either host lists both hosts' runs.
fn holds_and_runs_are_shared(make: fn() -> Option<Db>) {
    let Some(mut db) = make() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let before = db.keys();
    let clean = run(&mut db.cmd(&a, "host-a"), &["cleanup", "--json"], 0);
    let gone = removed(&json(&clean), "company_1");
    assert!(gone > 0, "{}", text(&clean.stdout));
    run(
        &mut db.cmd(&a, "host-a"),
        &["restore", "--company", "company_1"],
        0,
    );
    assert_eq!(
        db.keys().iter().filter(|(k, _)| k.0 == "company_1").count(),
        before.keys().filter(|k| k.0 == "company_1").count(),
        "restored"
    );
    let on_b = run(&mut db.cmd(&b, "host-b"), &["cleanup", "--json"], 0);
    assert_eq!(
        removed(&json(&on_b), "company_1"),
        0,
        "host B removed rows host A restored: {}",
        text(&on_b.stdout)
    );
    for state in [&a, &b] {
        let st = run(&mut db.cmd(state, "host-x"), &["status", "--json"], 0);
        let v = json(&st);
        let hosts: BTreeSet<&str> = v["runs_by_host"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .filter(|r| r["command"] == "cleanup" && !r["last_success"].is_null())
            .map(|r| r["host"].as_str().unwrap())
            .collect();
        assert_eq!(hosts, BTreeSet::from(["host-a", "host-b"]), "{v}");
        let text_out = run(&mut db.cmd(state, "host-x"), &["status"], 0);
        let s = text(&text_out.stdout);
        assert!(s.contains("host-a") && s.contains("host-b"), "{s}");
    }
}

#[test]
fn postgres_a_hold_set_on_one_host_is_kept_by_the_other_and_status_shows_both() {
    holds_and_runs_are_shared(Db::pg);
}

#[test]
fn mysql_a_hold_set_on_one_host_is_kept_by_the_other_and_status_shows_both() {
    holds_and_runs_are_shared(Db::my);
}

/// A trigger on A sets the cooldown; B's trigger honours it.
fn cooldown_is_shared(make: fn() -> Option<Db>) {
    let Some(db) = make() else { return };
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "trigger",
        "--threshold",
        "5",
        "--emergency-threshold",
        "100000",
        "--json",
    ];
    let on_a = run(&mut db.cmd(&dir.path().join("a"), "host-a"), &args, 0);
    assert_eq!(row(&json(&on_a), "company_1")["action"], "cleanup");
    let on_b = run(&mut db.cmd(&dir.path().join("b"), "host-b"), &args, 0);
    let v = json(&on_b);
    for t in TENANTS {
        assert_eq!(row(&v, t)["action"], "cooldown", "{v}");
    }
}

#[test]
fn postgres_a_trigger_on_one_host_puts_the_other_in_cooldown() {
    cooldown_is_shared(Db::pg);
}

#[test]
fn mysql_a_trigger_on_one_host_puts_the_other_in_cooldown() {
    cooldown_is_shared(Db::my);
}

/// A cleans, then its state directory is lost: B lists A's run and puts its rows back.
fn restore_survives_the_host(make: fn() -> Option<Db>) {
    let Some(mut db) = make() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let before = db.keys();
    run(&mut db.cmd(&a, "host-a"), &["cleanup"], 0);
    assert!(db.keys().len() < before.len());
    std::fs::remove_dir_all(&a).unwrap();
    let list = run(
        &mut db.cmd(&b, "host-b"),
        &["restore", "--list", "--company", "company_1", "--json"],
        0,
    );
    assert!(
        text(&list.stdout).contains("host-a"),
        "{}",
        text(&list.stdout)
    );
    for t in TENANTS {
        run(&mut db.cmd(&b, "host-b"), &["restore", "--company", t], 0);
    }
    assert_eq!(
        db.keys(),
        before,
        "restored byte for byte from the other host"
    );
}

#[test]
fn postgres_restore_on_another_host_after_the_first_is_gone() {
    restore_survives_the_host(Db::pg);
}

#[test]
fn mysql_restore_on_another_host_after_the_first_is_gone() {
    restore_survives_the_host(Db::my);
}

// ---------------------------------------------------------------- every other layer

/// The rows of `tenant` in `rows`.
fn of(rows: &Rows, tenant: &str) -> Rows {
    rows.iter()
        .filter(|(k, _)| k.0 == tenant)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A cleans company_1 and restores it (its rows are on hold, in the store); then each layer
/// that cleans besides the daily cleanup, on B with a state directory of its own and a fresh
/// database each, cleans company_1 and removes none of them.
fn held_rows_survive_every_other_layer(make: fn() -> Option<Db>) {
    for layer in OTHER_LAYERS {
        let Some(mut db) = make() else { return };
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let clean = run(&mut db.cmd(&a, "host-a"), &["cleanup", "--json"], 0);
        assert!(removed(&json(&clean), "company_1") > 0);
        run(
            &mut db.cmd(&a, "host-a"),
            &["restore", "--company", "company_1"],
            0,
        );
        let held = of(&db.keys(), "company_1");
        let on_b = run(
            &mut db.cmd_with(&b, "host-b", SMALL_FLEET_LEVELS),
            layer.args,
            layer.exit,
        );
        let now = of(&db.keys(), "company_1");
        layer.assert_kept(&json(&on_b), "company_1", &now, &held);
        if layer.name == STATUS.name {
            let (_, on_hold) = status_cooldown_and_holds(&json(&on_b), "company_1");
            assert!(on_hold > 0, "status on host B: {}", text(&on_b.stdout));
        }
    }
}

#[test]
fn postgres_every_other_layer_keeps_the_rows_a_restore_on_another_host_holds() {
    held_rows_survive_every_other_layer(Db::pg);
}

#[test]
fn mysql_every_other_layer_keeps_the_rows_a_restore_on_another_host_holds() {
    held_rows_survive_every_other_layer(Db::my);
}

/// For each pair of layers that clean on their own (a fresh database each): `first` on A
/// cleans; within the cooldown `then`, on B (a state directory of its own) or on A again,
/// leaves an old row that came since (the mark is in the store), which `cleanup --emergency`
/// then removes.
fn one_cooldown_for_every_automatic_layer(make: fn() -> Option<Db>) {
    for (first, then, host) in cooldown_cases() {
        let case = format!("{} on host-a, then {} on {host}", first.name, then.name);
        let Some(mut db) = make() else { return };
        let dir = tempfile::tempdir().unwrap();
        let state = |host: &str| dir.path().join(host);
        let on_a = run(
            &mut db.cmd_with(&state("host-a"), "host-a", SMALL_FLEET_LEVELS),
            first.args,
            first.exit,
        );
        let v = json(&on_a);
        for t in TENANTS {
            assert!(first.removed(&v, t) > Some(0), "{case}: {v}");
        }
        db.put("company_1", NEW_OLD_SESSION, &session(30));
        let new = db.key("company_1", NEW_OLD_SESSION);
        let second = run(
            &mut db.cmd_with(&state(host), host, SMALL_FLEET_LEVELS),
            then.args,
            then.exit,
        );
        let v = json(&second);
        for t in TENANTS {
            assert!(then.cooling_down(&v, t), "{case}: {v}");
        }
        assert!(db.keys().contains_key(&new), "{case}: removed the new row");
        let st = run(
            &mut db.cmd_with(&state(host), host, SMALL_FLEET_LEVELS),
            STATUS.args,
            STATUS.exit,
        );
        for t in TENANTS {
            let (cooldown, _) = status_cooldown_and_holds(&json(&st), t);
            assert!(
                cooldown.is_some(),
                "{case}: status shows no cooldown: {}",
                text(&st.stdout)
            );
        }
        // Not kept for another reason: a cleanup removes it.
        let clean = run(
            &mut db.cmd(&state(host), host),
            &["cleanup", "--emergency", "--json"],
            0,
        );
        assert_eq!(removed(&json(&clean), "company_1"), 1, "{case}");
        assert!(!db.keys().contains_key(&new));
    }
}

#[test]
fn postgres_a_cleanup_by_one_automatic_layer_is_a_cooldown_for_every_other_on_either_host() {
    one_cooldown_for_every_automatic_layer(Db::pg);
}

#[test]
fn mysql_a_cleanup_by_one_automatic_layer_is_a_cooldown_for_every_other_on_either_host() {
    one_cooldown_for_every_automatic_layer(Db::my);
}

// ---------------------------------------------------------------- the schema

/// `status` and a dry run on a fresh database create nothing; a real run creates the schema,
/// with no grant to anyone else; one written by a newer binary is refused (exit 2).
fn schema_lifecycle(make: fn() -> Option<Db>) {
    let Some(mut db) = make() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    run(&mut db.cmd(&a, "host-a"), &["status"], 0);
    run(&mut db.cmd(&a, "host-a"), &["cleanup", "--dry-run"], 0);
    run(&mut db.cmd(&a, "host-a"), &["restore", "--list"], 0);
    assert!(!db.state_exists(), "a read-only command created the state");
    run(&mut db.cmd(&a, "host-a"), &["cleanup"], 0);
    assert!(db.state_exists());
    let others = match &db {
        Db::Pg(_) => "SELECT count(*) FROM information_schema.role_table_grants \
                      WHERE table_schema = 'baileys_janitor' AND grantee <> current_user"
            .to_owned(),
        Db::My(m) => format!(
            "SELECT COUNT(*) FROM information_schema.TABLE_PRIVILEGES WHERE TABLE_SCHEMA = '{}'",
            m.state_db
        ),
    };
    assert_eq!(db.count(&others), 0, "grants on the state to others");
    let st = run(&mut db.cmd(&a, "host-a"), &["status"], 0);
    assert!(!text(&st.stderr).contains("grants"), "{}", text(&st.stderr));

    let meta = db.state_table("meta");
    let key = match db {
        Db::Pg(_) => "key",
        Db::My(_) => "k",
    };
    let newer = format!("UPDATE {meta} SET value = '99' WHERE {key} = 'schema_version'");
    match &mut db {
        Db::Pg(d) => {
            d.client().batch_execute(&newer).unwrap();
        }
        Db::My(m) => m.admin().query_drop(newer).unwrap(),
    }
    let before = db.keys();
    for args in [&["cleanup"][..], &["status"], &["restore", "--list"]] {
        let o = run(&mut db.cmd(&a, "host-a"), args, 2);
        let e = text(&o.stderr);
        assert!(
            e.contains(
                "written by a newer baileys-janitor (schema 99, this binary knows 1): upgrade"
            ),
            "{args:?}: {e}"
        );
        // One line, the last, and the only error.
        assert!(
            e.lines().last().unwrap().contains("newer baileys-janitor"),
            "{e}"
        );
        assert_eq!(e.matches("newer baileys-janitor").count(), 1, "{e}");
    }
    assert_eq!(db.keys(), before, "nothing removed");
}

#[test]
fn postgres_state_schema_created_private_by_real_runs_only_and_newer_refused() {
    schema_lifecycle(Db::pg);
}

#[test]
fn mysql_state_database_created_private_by_real_runs_only_and_newer_refused() {
    schema_lifecycle(Db::my);
}

/// Drops a login role after the database that granted it something is gone.
struct Role {
    name: String,
}

impl Drop for Role {
    fn drop(&mut self) {
        let admin = std::env::var("BAILEYS_JANITOR_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name));
        }
    }
}

#[test]
fn postgres_a_role_that_cannot_create_the_schema_gets_exit_2_with_the_sql() {
    let role = Role {
        name: format!("bj_app_{}", std::process::id()),
    };
    let Some(mut db) = Db::pg() else { return };
    let Db::Pg(pg) = &db else { unreachable!() };
    let mut c = pg.client();
    c.batch_execute(&format!(
        "DROP ROLE IF EXISTS {r}; CREATE ROLE {r} LOGIN; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON whatsapp_auth, whatsapp_keys TO {r}",
        r = role.name
    ))
    .unwrap();
    let url = pg
        .url
        .replacen("//postgres:", &format!("//{}:", role.name), 1);
    let dir = tempfile::tempdir().unwrap();
    let before = db.keys();
    let o = bare_cmd()
        .env("BAILEYS_JANITOR_STORE", &url)
        .env("BAILEYS_JANITOR_HOSTNAME", "host-a")
        .arg("--state-dir")
        .arg(dir.path())
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&o, 2);
    let e = text(&o.stderr);
    assert_eq!(e.matches("cannot create schema").count(), 1, "{e}");
    assert!(
        e.lines().last().unwrap().contains(&format!(
            "role {r} cannot create schema baileys_janitor for the janitor's state: have an owner of the database run `CREATE SCHEMA \"baileys_janitor\" AUTHORIZATION \"{r}\";`",
            r = role.name
        )),
        "{e}"
    );
    assert!(!e.contains("hunter2"));
    assert_eq!(db.keys(), before);
    assert!(!db.state_exists());
    // A grant to PUBLIC is warned about at start-up.
    c.batch_execute(&format!(
        "CREATE SCHEMA baileys_janitor AUTHORIZATION {r}",
        r = role.name
    ))
    .unwrap();
    let mut cmd = bare_cmd();
    cmd.env("BAILEYS_JANITOR_STORE", &url)
        .env("BAILEYS_JANITOR_HOSTNAME", "host-a")
        .arg("--state-dir")
        .arg(dir.path());
    run(&mut cmd, &["cleanup"], 0);
    c.batch_execute("GRANT SELECT ON baileys_janitor.trash TO PUBLIC")
        .unwrap();
    let mut cmd = bare_cmd();
    cmd.env("BAILEYS_JANITOR_STORE", &url)
        .arg("--state-dir")
        .arg(dir.path());
    let st = run(&mut cmd, &["status"], 0);
    assert!(
        text(&st.stderr).contains("table baileys_janitor.trash (the janitor's state, removed keys included) grants SELECT to PUBLIC"),
        "{}",
        text(&st.stderr)
    );
    c.batch_execute("DROP SCHEMA baileys_janitor CASCADE")
        .unwrap();
}

#[test]
fn mysql_an_account_that_cannot_create_the_database_gets_exit_2_with_the_sql() {
    let Some(mut db) = Db::my() else { return };
    let Db::My(my) = &db else { unreachable!() };
    // A state database the test's account has no grant on.
    let other = format!("{}_x", my.state_db);
    let dir = tempfile::tempdir().unwrap();
    let before = db.keys();
    let o = db
        .cmd(dir.path(), "host-a")
        .env("BAILEYS_JANITOR_STATE_SCHEMA", &other)
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&o, 2);
    let e = text(&o.stderr);
    let last = e.lines().last().unwrap();
    assert!(
        last.contains(&format!("cannot create database {other} for the janitor's state"))
            && last.contains(&format!(
                "`CREATE DATABASE `{other}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin; GRANT ALL ON `{other}`.* TO "
            )),
        "{e}"
    );
    assert!(!e.contains("hunter2"));
    assert_eq!(db.keys(), before);
}

// ---------------------------------------------------------------- kill -9 at every step

fn kill_at_every_step(make: fn() -> Option<Db>) {
    let Some(db) = make() else { return };
    let dir = tempfile::tempdir().unwrap();
    let listed = db
        .cmd(&dir.path().join("s"), "host-a")
        .env("BAILEYS_JANITOR_DEBUG_KILL_AT", "list")
        .args(["cleanup", "--json"])
        .output()
        .unwrap();
    assert_code(&listed, 0);
    let mut seen: Vec<(String, usize)> = Vec::new();
    for line in text(&listed.stderr).lines() {
        let Some(p) = line.split("fault point: ").nth(1) else {
            continue;
        };
        match seen.iter_mut().find(|(q, _)| q == p) {
            Some((_, n)) => *n += 1,
            None => seen.push((p.to_owned(), 1)),
        }
    }
    let prefix = db.prefix();
    // PostgreSQL removes a batch in one statement (trash and delete commit together): the only
    // step between batches is after its commit. MySQL's transaction has its steps.
    let steps: &[&str] = match db {
        Db::Pg(_) => &["after_commit"],
        Db::My(_) => &[
            "after_select",
            "after_trash_insert",
            "after_delete",
            "after_commit",
        ],
    };
    for step in steps {
        let p = format!("{prefix}.{step}");
        assert!(
            seen.iter().any(|(q, n)| *q == p && *n >= 2),
            "{p} not passed once per batch: {seen:?}"
        );
    }
    drop(db);
    let mut targets = Vec::new();
    for (p, n) in &seen {
        targets.push(p.clone());
        if *n >= 2 {
            targets.push(format!("{p}:2"));
        }
    }
    eprintln!("{prefix}: killing at {targets:?}");
    for target in targets {
        let Some(mut db) = make() else { return };
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s");
        let before = db.keys();
        let killed = db
            .cmd(&state, "host-a")
            .env("BAILEYS_JANITOR_DEBUG_KILL_AT", &target)
            .args(["cleanup", "--json"])
            .output()
            .unwrap();
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "{target}: not killed: {}",
            text(&killed.stderr)
        );
        db.assert_nothing_lost(&before, &format!("killed at {target}"));
        // No stale lock: the next run works, and still nothing is lost.
        let again = run(&mut db.cmd(&state, "host-a"), &["cleanup", "--json"], 0);
        db.assert_nothing_lost(&before, &format!("after {target}, the next run"));
        assert!(
            db.keys().len() < before.len(),
            "{target}: the next run removed nothing: {}",
            text(&again.stdout)
        );
    }
}

#[test]
fn postgres_kill_at_every_step_loses_no_row() {
    kill_at_every_step(Db::pg);
}

#[test]
fn mysql_kill_at_every_step_loses_no_row() {
    kill_at_every_step(Db::my);
}

// ---------------------------------------------------------------- tenants on several workers

/// How many tenants' locks the janitor holds on the server now (not its fleet lock).
fn tenants_locked(db: &mut Db) -> i64 {
    match db {
        Db::Pg(d) => d.count(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid <> 0 AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        ),
        Db::My(_) => unreachable!("the MySQL workers' test counts its own locks"),
    }
}

fn workers_clean_with_the_result_of_one(make: fn() -> Option<Db>) {
    let (Some(mut two), Some(mut one)) = (make(), make()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let before = two.keys();
    // Two workers, two connections: both tenants locked (and paused before removing) at once.
    let cmd = two.cmd(&dir.path().join("two"), "host-a");
    let parallel = cleanup_on_two_workers(cmd, || tenants_locked(&mut two) == 2);
    let serial = run(
        &mut one.cmd(&dir.path().join("one"), "host-a"),
        &["cleanup", "--jobs", "1", "--json"],
        0,
    );
    let (parallel, serial) = (json(&parallel), json(&serial));
    // The same keys removed, reported in tenant order; the same rows left and trashed.
    assert_eq!(removed_by_company(&parallel), removed_by_company(&serial));
    let order: Vec<String> = removed_by_company(&parallel)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(order, TENANTS);
    assert!(TENANTS.iter().all(|t| removed(&parallel, t) > 0));
    // (Keys only: the fixtures' session clocks differ by the milliseconds between them.)
    let names = |rows: Rows| rows.into_keys().collect::<BTreeSet<_>>();
    assert_eq!(names(two.keys()), names(one.keys()));
    assert_eq!(names(two.trash()), names(one.trash()));
    two.assert_nothing_lost(&before, "after the workers");
    assert_eq!(
        tenants_locked(&mut two),
        0,
        "a worker left its tenant locked"
    );
}

#[test]
fn postgres_tenants_are_cleaned_on_several_workers_with_the_result_of_one() {
    workers_clean_with_the_result_of_one(Db::pg);
}

/// A dry run plans exactly the rows and bytes the real run then removes, clock-less rows and
/// values whose text is not ASCII included (the bytes are the UTF-8 text's, both times).
fn a_dry_run_plans_what_the_real_run_removes(make: fn() -> Option<Db>) {
    let Some(mut db) = make() else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s");
    // A clock-less row and a value whose text is not ASCII, beside the fixture's rows.
    db.put(
        TENANTS[0],
        ("sender-key", "g@g.us::5511::0"),
        r#"{"n": "ü é"}"#,
    );
    if let Db::Pg(d) = &db {
        d.client()
            .execute(
                "UPDATE whatsapp_keys SET updated_at = NULL WHERE key_type = 'lid-mapping'",
                &[],
            )
            .unwrap();
    }
    let dry = json(&run(
        &mut db.cmd(&state, "host-a"),
        &["cleanup", "--dry-run", "--json"],
        0,
    ));
    let real = json(&run(
        &mut db.cmd(&state, "host-a"),
        &["cleanup", "--json"],
        0,
    ));
    assert_eq!(removed_by_company(&dry), removed_by_company(&real));
    assert!(TENANTS.iter().all(|t| removed(&real, t) > 0));
    let bytes = |v: &serde_json::Value| -> Vec<u64> {
        v["companies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["bytes_freed"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(bytes(&dry), bytes(&real));
    assert!(bytes(&real).iter().all(|b| *b > 0));
}

#[test]
fn postgres_a_dry_run_plans_the_rows_and_bytes_the_real_run_removes() {
    a_dry_run_plans_what_the_real_run_removes(Db::pg);
}

/// Two janitors with one state directory (a cron run and a manual one) exclude each other
/// through the server's lock alone: the state directory gets no lock file.
#[test]
fn postgres_a_second_janitor_with_the_same_state_directory_is_busy_without_a_lock_file() {
    let Some(mut db) = Db::pg() else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let before = db.keys();
    let mut first = db.cmd(&state, "host-a");
    first.args([
        "cleanup",
        "--jobs",
        "1",
        "--json",
        "--debug-pause-before-remove",
        "2s",
    ]);
    let first = std::thread::spawn(move || first.output().unwrap());
    assert!(
        wait_for(20, || tenants_locked(&mut db) == 1),
        "the first janitor never locked a tenant"
    );
    let second = run(
        &mut db.cmd(&state, "host-a"),
        &["cleanup", "--json", "--lock-wait", "0s"],
        75,
    );
    assert!(
        text(&second.stdout).contains("\"busy\""),
        "{}",
        text(&second.stdout)
    );
    assert_code(&first.join().unwrap(), 0);
    assert!(db.keys().len() < before.len(), "the first run removed rows");
    db.assert_nothing_lost(&before, "after two janitors");
    assert!(
        !state.join("locks").exists(),
        "no lock file in the state directory"
    );
}

/// One state directory, one store: a real run records which (the state directory is made for
/// it, though the store keeps the locks and the state), and another database is refused with
/// it before anything changes there.
#[test]
fn postgres_a_state_directory_serves_one_store_only() {
    let (Some(one), Some(mut other)) = (Db::pg(), Db::pg()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    run(&mut one.cmd(&state, "host-a"), &["cleanup"], 0);
    assert!(state.exists(), "made by the real run");
    let before = other.keys();
    for args in [&["cleanup"][..], &["status"][..], &["trigger"][..]] {
        let out = run(&mut other.cmd(&state, "host-a"), args, 2);
        let err = text(&out.stderr);
        assert!(err.contains("state directory"), "{args:?}: {err}");
    }
    assert_eq!(other.keys(), before, "the other store untouched");
}
