//! Issue 23 tried the way a hostile operator would: the janitor's state in the store, met with
//! a symlinked or corrupt SQLite sibling and a state directory written before the upgrade.
//! Each test is a defect found that way (it failed before its fix). No server needed.

use std::collections::BTreeSet;
use std::path::Path;

use crate::shared_sqlite::{Fleet, OLD};
use crate::stores::{CREDS, account_rows, make_sqlite, sqlite_rows};
use crate::testenv::*;

/// The run ids `restore --list --json` shows, with their companies.
fn listed(v: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    v["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("no runs: {v}"))
        .iter()
        .map(|r| {
            let companies = r["companies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect();
            (r["run_id"].as_str().unwrap().to_owned(), companies)
        })
        .collect()
}

/// A sibling that is a symbolic link (to a file anyone can read, outside the folder) is never
/// followed: removed private keys would land wherever the link points. The account is refused
/// with one line, none of its rows is removed, the target stays untouched; other accounts are
/// cleaned as usual.
#[test]
fn a_symlinked_sibling_is_refused_and_no_removed_key_is_written_through_it() {
    let f = Fleet::new(&["company_1", "company_2"]);
    let outside = f.dir.path().join("outside.db");
    std::fs::write(&outside, b"").unwrap();
    std::os::unix::fs::symlink(&outside, f.sibling("company_1")).unwrap();
    // And a link that points nowhere (yet): never created through.
    let nowhere = f.dir.path().join("nowhere.db");
    make_sqlite(&f.db("company_3"), CREDS);
    std::os::unix::fs::symlink(&nowhere, f.sibling("company_3")).unwrap();
    let before = sqlite_rows(&f.db("company_1"));

    let out = f.run("host-a", &["cleanup"]);
    assert_code(&out, 1);
    let err = text(&out.stderr);
    assert!(
        err.contains("company_1.db-janitor") && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(sqlite_rows(&f.db("company_1")), before, "nothing removed");
    assert_eq!(std::fs::metadata(&outside).unwrap().len(), 0, "untouched");
    assert!(!nowhere.exists(), "nothing created through a dangling link");
    assert_eq!(
        sqlite_rows(&f.db("company_3")).len(),
        account_rows().len(),
        "nothing removed"
    );
    assert_eq!(
        sqlite_rows(&f.db("company_2")).len(),
        account_rows().len() - OLD.len(),
        "the other account is cleaned"
    );

    // status names it too (read-only: never opened through the link either).
    let st = f.run("host-a", &["status"]);
    assert!(
        text(&st.stdout).contains("symbolic link"),
        "{}",
        text(&st.stdout)
    );
}

/// One corrupt sibling hides no other account's run: `restore --list` still lists them (and
/// warns about the file it cannot read), and `restore --run` without `--company` puts back the
/// rows of every account it can read.
#[test]
fn a_corrupt_sibling_hides_no_other_accounts_run() {
    let f = Fleet::new(&["company_1", "company_2"]);
    let before = sqlite_rows(&f.db("company_1"));
    let v = f.json("host-a", &["cleanup", "--json"]);
    let run = v["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned();
    std::fs::write(f.sibling("company_2"), b"not a database at all").unwrap();

    let out = f.run("host-a", &["restore", "--list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listed(&list),
        vec![(run.clone(), vec!["company_1".to_owned()])],
        "{list}"
    );
    assert!(
        text(&out.stderr).contains("company_2.db-janitor"),
        "the file it cannot read is named: {}",
        text(&out.stderr)
    );

    let out = f.run("host-a", &["restore", "--run", &run]);
    assert_code(&out, 0);
    assert_eq!(sqlite_rows(&f.db("company_1")), before, "put back");
}

/// A host upgrading from the state directory: until its first write moves them into the store,
/// its runs are in `runs.json`, and `status` shows them (as `read_runs` does), not "none yet".
#[test]
fn status_shows_this_hosts_runs_from_before_the_upgrade() {
    let f = Fleet::new(&["company_1"]);
    std::fs::create_dir_all(f.state("old")).unwrap();
    std::fs::write(
        f.state("old").join("runs.json"),
        r#"{"cleanup":{"last_start":"2026-01-01T03:00:00Z","last_success":"2026-01-01T03:00:05Z","last_failure":null,"summary":"1 tenant, 2 keys removed"},"trigger":{"last_start":null,"last_success":null,"last_failure":null,"summary":""}}"#,
    )
    .unwrap();
    // Another host already keeps its runs in the store.
    assert_code(&f.run("new", &["cleanup"]), 0);

    let st = f.json("old", &["status", "--json"]);
    let hosts: BTreeSet<String> = st["runs_by_host"]
        .as_array()
        .unwrap_or_else(|| panic!("{st}"))
        .iter()
        .map(|r| r["host"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        hosts,
        BTreeSet::from(["new".to_owned(), "old".to_owned()]),
        "{st}"
    );
    assert!(!Path::new(&f.state("new")).join("runs.json").exists());
}

/// Two hosts start a cleanup of one Redis at the same moment: each tenant is cleaned by one of
/// them (the other says busy or finds nothing left), every field removed is in the trash exactly
/// once with its value, and nothing else moved.
#[test]
fn redis_two_hosts_racing_remove_each_field_once_and_trash_it() {
    use crate::redis_store::Scratch;
    let Some(mut r) = Scratch::new() else {
        return;
    };
    let tenants: Vec<String> = (0..6)
        .map(|i| format!("0c0ffee0-aaaa-4c55-9a0e-1b2c3d4e5f6{i}"))
        .collect();
    let mut before = std::collections::BTreeMap::new();
    for t in &tenants {
        r.evolution_instance(t, true);
        for (k, v) in r.hgetall(&r.hash(t)) {
            before.insert((t.clone(), k), v);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let cmds: Vec<assert_cmd::Command> = ["host-a", "host-b"]
        .into_iter()
        .map(|h| {
            let mut c = r.cmd(&dir.path().join(h));
            c.env("BAILEYS_JANITOR_HOSTNAME", h)
                .args(["cleanup", "--json"]);
            c
        })
        .collect();
    let outs: Vec<std::process::Output> = std::thread::scope(|s| {
        let hs: Vec<_> = cmds
            .into_iter()
            .map(|mut c| s.spawn(move || c.output().unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut removed = 0;
    for o in &outs {
        assert!(
            matches!(code(o), 0 | 75),
            "{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        for c in v["companies"].as_array().unwrap() {
            removed += c["removed_files"].as_array().map_or(0, Vec::len);
        }
    }

    let mut after = std::collections::BTreeMap::new();
    for t in &tenants {
        for (k, v) in r.hgetall(&r.hash(t)) {
            after.insert((t.clone(), k), v);
        }
    }
    // The trash: every `<prefix>:janitor:trash:<tenant>:<run>` hash of fields.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:janitor:trash:*", r.prefix))
        .query(&mut r.con)
        .unwrap();
    let mut trashed = Vec::new();
    for k in keys {
        if k.ends_with(":meta") || k.ends_with(":restored") || k.ends_with(":cols") {
            continue;
        }
        let tenant = tenants
            .iter()
            .find(|t| k.contains(t.as_str()))
            .unwrap_or_else(|| panic!("{k}"))
            .clone();
        for (field, value) in r.hgetall(&k) {
            let (ty, id): (String, String) = serde_json::from_str(&field).unwrap();
            trashed.push(((tenant.clone(), format!("{ty}-{id}")), value));
        }
    }
    assert!(removed > 0, "something was removed");
    assert_eq!(trashed.len(), removed, "each removed field trashed once");
    let mut whole = after.clone();
    for (k, v) in trashed {
        assert!(
            whole.insert(k.clone(), v).is_none(),
            "{k:?} in the hash and the trash"
        );
    }
    assert_eq!(
        whole, before,
        "every field in the hash or in the trash, as it was"
    );
}

/// A role of the test's own on the PostgreSQL server, dropped afterwards (after the database).
struct PgRole {
    name: String,
}

impl Drop for PgRole {
    fn drop(&mut self) {
        let admin = std::env::var("BAILEYS_JANITOR_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name));
        }
    }
}

/// A state table another role owns (made before the janitor's first run, or handed over) is
/// readable by that role without any grant: the start-up check says so, as it does for grants.
#[test]
fn postgres_a_state_table_owned_by_another_role_is_warned_about() {
    let pid = std::process::id();
    let (janitor, other) = (
        PgRole {
            name: format!("bj_hostile_j_{pid}"),
        },
        PgRole {
            name: format!("bj_hostile_o_{pid}"),
        },
    );
    let Some(db) = crate::stores::TestDb::new() else {
        return;
    };
    db.per_type_schema();
    db.per_type_tenant("company_1", 20);
    let mut c = db.client();
    c.batch_execute(&format!(
        "DROP ROLE IF EXISTS {j}; CREATE ROLE {j} LOGIN; DROP ROLE IF EXISTS {o}; CREATE ROLE {o}; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON whatsapp_auth, whatsapp_keys TO {j}; \
         CREATE SCHEMA baileys_janitor AUTHORIZATION {j}",
        j = janitor.name,
        o = other.name
    ))
    .unwrap();
    let url = db
        .url
        .replacen("//postgres:", &format!("//{}:", janitor.name), 1);
    let dir = tempfile::tempdir().unwrap();
    let status = || {
        bare_cmd()
            .env("BAILEYS_JANITOR_STORE", &url)
            .arg("--state-dir")
            .arg(dir.path())
            .arg("status")
            .output()
            .unwrap()
    };
    let o = bare_cmd()
        .env("BAILEYS_JANITOR_STORE", &url)
        .arg("--state-dir")
        .arg(dir.path())
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&o, 0);
    let st = status();
    assert_code(&st, 0);
    assert!(
        !text(&st.stderr).contains("owned by"),
        "{}",
        text(&st.stderr)
    );

    c.batch_execute(&format!(
        "ALTER TABLE baileys_janitor.trash OWNER TO {o}; GRANT ALL ON baileys_janitor.trash TO {j}",
        j = janitor.name,
        o = other.name
    ))
    .unwrap();
    let st = status();
    assert_code(&st, 0);
    let e = text(&st.stderr);
    assert_eq!(
        e.matches(&format!(
            "table baileys_janitor.trash (the janitor's state, removed keys included) is owned by role {}, not by the janitor's role {}",
            other.name, janitor.name
        ))
        .count(),
        1,
        "{e}"
    );
    drop(c);
    drop(db);
}

/// Upgrading two hosts: host A restored rows before the upgrade (their holds are in A's state
/// directory only); host B wrote the tenant's record into the store first (a cleanup that
/// removed nothing). A's holds still keep the rows on A, they move into the store with A's
/// first write (so B keeps them too), and a release ends them for good.
#[test]
fn holds_from_before_the_upgrade_survive_another_host_writing_the_record_first() {
    let f = Fleet::new(&["company_1"]);
    let until = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let companies = f.state("a").join("companies");
    std::fs::create_dir_all(&companies).unwrap();
    let holds: serde_json::Map<String, serde_json::Value> = OLD
        .iter()
        .map(|k| (format!("{k}.json"), serde_json::Value::from(until.clone())))
        .collect();
    std::fs::write(
        companies.join("company_1.json"),
        serde_json::json!({ "cleanups": [], "holds": holds }).to_string(),
    )
    .unwrap();
    let patient = f.dir.path().join("patient.toml");
    std::fs::write(&patient, "[cleanup]\nsession_max_age = \"365d\"\n").unwrap();
    let all = sqlite_rows(&f.db("company_1"));

    // B first: removes nothing, writes the tenant's record into the store.
    let out = f.run("b", &["--config", patient.to_str().unwrap(), "cleanup"]);
    assert_code(&out, 0);
    assert!(sqlite_rows(&f.db("company_1")) == all, "B removed nothing");

    // A keeps what it put on hold, and its first write carries the holds into the store.
    assert_code(&f.run("a", &["cleanup"]), 0);
    assert!(sqlite_rows(&f.db("company_1")) == all, "held on A");
    assert_code(&f.run("b", &["cleanup"]), 0);
    assert!(sqlite_rows(&f.db("company_1")) == all, "held on B too");

    // Released on B: gone from the store, and A's old file does not bring them back.
    assert_code(
        &f.run("b", &["restore", "--company", "company_1", "--release"]),
        0,
    );
    let v = f.json("a", &["cleanup", "--json"]);
    let mut removed: Vec<String> = v["companies"][0]["removed_files"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    removed.sort();
    assert_eq!(removed, OLD, "{v}");
}

/// A role that may not use a state schema someone else made gets exit 2 with the SQL its owner
/// runs, and that SQL, run as printed by the owner, is enough: it names the janitor's role (it
/// said `TO CURRENT_USER`, which in the owner's session is the owner).
#[test]
fn postgres_the_grant_sql_for_a_role_that_cannot_use_the_schema_works_as_printed() {
    let janitor = PgRole {
        name: format!("bj_hostile_g_{}", std::process::id()),
    };
    let Some(db) = crate::stores::TestDb::new() else {
        return;
    };
    db.per_type_schema();
    db.per_type_tenant("company_1", 20);
    let dir = tempfile::tempdir().unwrap();
    let mut c = db.client();
    c.batch_execute(&format!(
        "DROP ROLE IF EXISTS {j}; CREATE ROLE {j} LOGIN; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON whatsapp_auth, whatsapp_keys TO {j}",
        j = janitor.name
    ))
    .unwrap();
    // The schema and its tables made by a run as the database's owner (a write: a release).
    let o = bare_cmd()
        .env("BAILEYS_JANITOR_STORE", &db.url)
        .arg("--state-dir")
        .arg(dir.path().join("owner"))
        .args(["restore", "--company", "company_1", "--release"])
        .output()
        .unwrap();
    assert_code(&o, 0);

    let url = db
        .url
        .replacen("//postgres:", &format!("//{}:", janitor.name), 1);
    let run = |args: &[&str]| {
        bare_cmd()
            .env("BAILEYS_JANITOR_STORE", &url)
            .arg("--state-dir")
            .arg(dir.path().join("janitor"))
            .args(args)
            .output()
            .unwrap()
    };
    let st = run(&["status"]);
    assert_code(&st, 2);
    let e = text(&st.stderr);
    let sql = e
        .split("have its owner run: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{e}"))
        .trim()
        .to_owned();
    assert!(sql.contains(&format!("TO \"{}\"", janitor.name)), "{sql}");
    c.batch_execute(&sql).unwrap();
    assert_code(&run(&["status"]), 0);
    let o = run(&["cleanup"]);
    assert_code(&o, 0);
    drop(c);
    drop(db);
}

/// `--help` says where a store's state is: not in the state directory.
#[test]
fn help_says_a_stores_state_is_kept_in_the_store() {
    let out = bare_cmd().arg("--help").output().unwrap();
    assert_code(&out, 0);
    let help = text(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains("Where locks, trash, cooldowns and history live (with a --store, only what is local to this host, locks and monitor state: the rest is kept in the store, shared by every host)"),
        "{help}"
    );
}

/// `restore --run` of a run with nothing left says why: every row was put back already, or its
/// trash was purged after `trash.retention` (it said "no run in the trash" either way).
#[test]
fn restore_of_a_run_restored_or_purged_already_says_which() {
    let f = Fleet::new(&["company_1", "company_2"]);
    let first = f.json("a", &["cleanup", "--json"]);
    let run = first["run_id"].as_str().unwrap().to_owned();
    assert_code(&f.run("b", &["restore", "--run", &run]), 0);
    let again = f.run("b", &["restore", "--run", &run]);
    assert_code(&again, 2);
    let e = text(&again.stderr);
    assert!(
        e.contains(&format!("every row of run {run:?} was put back already")),
        "{e}"
    );

    // Released, removed again, then aged past the retention and purged by the next real run.
    for t in ["company_1", "company_2"] {
        assert_code(&f.run("b", &["restore", "--company", t, "--release"]), 0);
    }
    let second = f.json("a", &["cleanup", "--json"]);
    for c in second["companies"].as_array().unwrap() {
        assert_eq!(c["removed"], 2, "removed again: {second}");
    }
    let run2 = second["run_id"].as_str().unwrap().to_owned();
    assert_ne!(run2, run);
    for t in ["company_1", "company_2"] {
        rusqlite::Connection::open(f.sibling(t))
            .unwrap()
            .execute(
                "UPDATE trash SET removed_at_us = removed_at_us - 30 * 86400 * 1000000",
                [],
            )
            .unwrap();
    }
    assert_code(&f.run("a", &["cleanup"]), 0);
    let gone = f.run("b", &["restore", "--run", &run2]);
    assert_code(&gone, 2);
    let e = text(&gone.stderr);
    assert!(
        e.contains(&format!("run {run2:?} (")) && e.contains("is no longer in the trash"),
        "{e}"
    );
    assert!(e.contains("company_1, company_2"), "{e}");
    // A run nobody knows is still the plain usage error.
    let none = f.run("b", &["restore", "--run", "20200101T000000Z-1"]);
    assert_code(&none, 2);
    assert!(
        text(&none.stderr).contains("no run"),
        "{}",
        text(&none.stderr)
    );
}
