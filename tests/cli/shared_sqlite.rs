//! Issue 23 on Baileys' SQLite store: two janitors (two state directories, two
//! `BAILEYS_JANITOR_HOSTNAME`s) on one folder of account files see the same truth, kept in sibling
//! files (`<account>.db-janitor`, `.baileys-janitor`) and never in the app's own file.
//! No server needed.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};

use crate::layers::{
    EMERGENCY_CLEANUP, Layer, NEW_OLD_SESSION, OTHER_LAYERS, STATUS, cooldown_cases,
    small_fleet_config, status_cooldown_and_holds,
};
use crate::stores::{CREDS, account_rows, make_sqlite, session, sqlite_rows};
use crate::testenv::*;

/// What a cleanup removes from each account of [`make_sqlite`].
pub(crate) const OLD: [&str; 2] = ["identity-key-5511888888888.0", "session-5511888888888.0"];

/// A folder of account files and one state directory per host (also `hostile_state`'s).
pub(crate) struct Fleet {
    pub(crate) dir: tempfile::TempDir,
}

impl Fleet {
    pub(crate) fn new(tenants: &[&str]) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("auth")).unwrap();
        let f = Fleet { dir };
        for t in tenants {
            make_sqlite(&f.db(t), CREDS);
        }
        f
    }

    pub(crate) fn auth(&self) -> PathBuf {
        self.dir.path().join("auth")
    }

    pub(crate) fn db(&self, tenant: &str) -> PathBuf {
        self.auth().join(format!("{tenant}.db"))
    }

    pub(crate) fn sibling(&self, tenant: &str) -> PathBuf {
        self.auth().join(format!("{tenant}.db-janitor"))
    }

    pub(crate) fn state(&self, host: &str) -> PathBuf {
        self.dir.path().join(format!("state-{host}"))
    }

    /// The janitor as it runs on `host`.
    pub(crate) fn cmd(&self, host: &str) -> assert_cmd::Command {
        let mut c = bare_cmd();
        c.env("BAILEYS_JANITOR_HOSTNAME", host)
            .arg("--store")
            .arg(format!("sqlite:{}", self.auth().display()))
            .arg("--state-dir")
            .arg(self.state(host));
        c
    }

    pub(crate) fn run(&self, host: &str, args: &[&str]) -> std::process::Output {
        self.cmd(host).args(args).output().unwrap()
    }

    pub(crate) fn json(&self, host: &str, args: &[&str]) -> serde_json::Value {
        let out = self.run(host, args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?} on {host}: {e}\n{}{}",
                text(&out.stdout),
                text(&out.stderr)
            )
        })
    }

    /// Every file in the folder, by name, but the app's own `-wal` / `-shm`.
    pub(crate) fn names(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.auth())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.ends_with(".db-wal") && !n.ends_with(".db-shm"))
            .collect()
    }
}

fn removed_of(v: &serde_json::Value) -> Vec<String> {
    let mut r: Vec<String> = v["companies"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .flat_map(|c| c["removed_files"].as_array().unwrap().clone())
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    r.sort();
    r
}

/// A sibling with its tables, if there is one (a lock alone leaves an empty file).
fn state_db(sibling: &Path) -> Option<rusqlite::Connection> {
    if !sibling.exists() {
        return None;
    }
    let c = rusqlite::Connection::open(sibling).unwrap();
    let has: bool = c
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'trash'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    has.then_some(c)
}

/// (type, id) of the rows in a sibling's trash, and whether each was put back.
fn trashed(sibling: &Path) -> Vec<(String, String, bool)> {
    let Some(c) = state_db(sibling) else {
        return vec![];
    };
    let mut s = c
        .prepare("SELECT type, id, restored FROM trash ORDER BY type, id")
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn hosts_in_status(v: &serde_json::Value) -> BTreeSet<String> {
    v["runs_by_host"]
        .as_array()
        .unwrap_or_else(|| panic!("no runs_by_host: {v}"))
        .iter()
        .map(|r| r["host"].as_str().unwrap().to_owned())
        .collect()
}

fn tables(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut s = c
        .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name")
        .unwrap();
    s.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_restore_on_one_host_holds_against_a_cleanup_on_the_other_and_status_shows_both_hosts() {
    let f = Fleet::new(&["company_1", "company_2"]);
    let v = f.json("host-a", &["cleanup", "--json"]);
    let mut both = [OLD, OLD].concat();
    both.sort();
    assert_eq!(removed_of(&v), both);

    let out = f.run("host-a", &["restore", "--company", "company_1", "--json"]);
    assert_code(&out, 0);
    assert_eq!(sqlite_rows(&f.db("company_1")).len(), account_rows().len());

    // Host B has never seen company_1: the hold comes from the sibling file.
    let v = f.json("host-b", &["cleanup", "--json", "-v"]);
    assert!(removed_of(&v).is_empty(), "restored rows are on hold: {v}");
    assert_eq!(sqlite_rows(&f.db("company_1")).len(), account_rows().len());
    let dry = f.json("host-b", &["cleanup", "--dry-run", "--json"]);
    assert!(removed_of(&dry).is_empty(), "{dry}");

    // Each host's runs, seen from either host.
    for host in ["host-a", "host-b"] {
        let st = f.json(host, &["status", "--json"]);
        assert_eq!(
            hosts_in_status(&st),
            BTreeSet::from(["host-a".to_owned(), "host-b".to_owned()]),
            "status on {host}: {st}"
        );
        let text = text(&f.run(host, &["status"]).stdout);
        assert!(text.contains("runs by host:"), "{text}");
        assert!(text.contains("host-a") && text.contains("host-b"), "{text}");
    }
    // Nothing of the janitor's in the state directories but what is local.
    for host in ["host-a", "host-b"] {
        let state = f.state(host);
        assert!(!state.join("runs.json").exists());
        assert!(!state.join("trash/company_1").exists());
        assert!(!state.join("records").exists() || dir_is_empty(&state.join("records")));
    }
}

/// A cleans and restores company_1; then each layer that cleans besides the daily cleanup, on
/// B (a fresh folder each), cleans company_1 and removes none of the rows on hold.
#[test]
fn every_other_layer_keeps_the_rows_a_restore_on_another_host_holds() {
    for layer in OTHER_LAYERS {
        let f = Fleet::new(&["company_1"]);
        assert_eq!(removed_of(&f.json("host-a", &["cleanup", "--json"])), OLD);
        assert_code(&f.run("host-a", &["restore", "--company", "company_1"]), 0);
        let held = sqlite_rows(&f.db("company_1"));
        let out = f
            .cmd("host-b")
            .arg("--config")
            .arg(small_fleet_config(f.dir.path()))
            .args(layer.args)
            .output()
            .unwrap();
        assert_code(&out, layer.exit);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let now = sqlite_rows(&f.db("company_1"));
        layer.assert_kept(&v, "company_1", &now, &held);
        if layer.name == STATUS.name {
            let (_, on_hold) = status_cooldown_and_holds(&v, "company_1");
            assert_eq!(on_hold, OLD.len() as u64, "status on host B: {v}");
        }
    }
}

/// For each pair of layers that clean on their own (a fresh folder each): `first` on A cleans;
/// within the cooldown `then`, on B or on A again, leaves an old row that came since (the mark
/// is in the account's sibling), which `cleanup --emergency` then removes.
#[test]
fn a_cleanup_by_one_automatic_layer_is_a_cooldown_for_every_other_on_either_host() {
    for (first, then, host) in cooldown_cases() {
        let case = format!("{} on host-a, then {} on {host}", first.name, then.name);
        let f = Fleet::new(&["company_1"]);
        let config = small_fleet_config(f.dir.path());
        let layer = |layer: Layer, host: &str| {
            let out = f
                .cmd(host)
                .arg("--config")
                .arg(&config)
                .args(layer.args)
                .output()
                .unwrap();
            assert_code(&out, layer.exit);
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        };
        let v = layer(first, "host-a");
        assert_eq!(
            first.removed(&v, "company_1"),
            Some(OLD.len() as u64),
            "{case}: {v}"
        );
        let (ty, id) = NEW_OLD_SESSION;
        rusqlite::Connection::open(f.db("company_1"))
            .unwrap()
            .execute(
                "INSERT INTO signal_keys (type, id, value) VALUES (?1, ?2, ?3)",
                [ty, id, &session(30)],
            )
            .unwrap();
        let new = (ty.to_owned(), id.to_owned());
        let has_new = || {
            sqlite_rows(&f.db("company_1"))
                .iter()
                .any(|(t, i, _)| (t, i) == (&new.0, &new.1))
        };
        let v = layer(then, host);
        assert!(then.cooling_down(&v, "company_1"), "{case}: {v}");
        assert!(has_new(), "{case}: removed the new row");
        let st = f.json(host, STATUS.args);
        let (cooldown, _) = status_cooldown_and_holds(&st, "company_1");
        assert!(cooldown.is_some(), "{case}: status shows no cooldown: {st}");
        // Not kept for another reason: a cleanup removes it.
        let v = f.json(host, EMERGENCY_CLEANUP.args);
        assert_eq!(removed_of(&v), [format!("{ty}-{id}")], "{case}: {v}");
        assert!(!has_new());
    }
}

fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p).map_or(true, |mut d| d.next().is_none())
}

#[test]
fn a_trigger_on_one_host_puts_the_other_in_cooldown() {
    let f = Fleet::new(&["company_1"]);
    // 13 keys count (120 pre-keys are the server window): past a threshold of 5.
    let trigger = [
        "trigger",
        "--threshold",
        "5",
        "--emergency-threshold",
        "1000",
        "--json",
    ];
    let v = f.json("host-a", &trigger);
    assert_eq!(row(&v, "company_1")["action"], "cleanup", "{v}");
    assert_eq!(row(&v, "company_1")["removed"], 2, "{v}");

    let v = f.json("host-b", &trigger);
    assert_eq!(row(&v, "company_1")["action"], "cooldown", "{v}");
    assert!(
        row(&v, "company_1")["reason"]
            .as_str()
            .unwrap()
            .starts_with("cooling down until"),
        "{v}"
    );
    assert_eq!(
        sqlite_rows(&f.db("company_1")).len(),
        account_rows().len() - 2
    );
    let st = f.json("host-b", &["status", "--json"]);
    assert_eq!(
        hosts_in_status(&st),
        BTreeSet::from(["host-a".to_owned(), "host-b".to_owned()]),
        "{st}"
    );
}

#[test]
fn a_restore_on_the_other_host_works_after_the_first_hosts_state_directory_is_gone() {
    let f = Fleet::new(&["company_1"]);
    let before = sqlite_rows(&f.db("company_1"));
    let v = f.json("host-a", &["cleanup", "--json"]);
    assert_eq!(removed_of(&v), OLD);
    // (It may hold nothing at all: the tenant's lock, too, is beside the account.)
    if f.state("host-a").exists() {
        std::fs::remove_dir_all(f.state("host-a")).unwrap();
    }

    let list = f.run("host-b", &["restore", "--list"]);
    assert_code(&list, 0);
    let listed = text(&list.stdout);
    assert!(listed.contains("company_1"), "{listed}");
    assert!(
        listed.contains("host-a"),
        "the run names its host: {listed}"
    );

    let out = f.run("host-b", &["restore", "--company", "company_1"]);
    assert_code(&out, 0);
    assert_eq!(sqlite_rows(&f.db("company_1")), before, "byte for byte");
    assert!(
        trashed(&f.sibling("company_1"))
            .iter()
            .all(|(_, _, restored)| *restored),
        "marked as put back"
    );
    // Put back once: a second restore finds nothing more to do and changes nothing.
    let _ = f.run("host-b", &["restore", "--company", "company_1"]);
    assert_eq!(sqlite_rows(&f.db("company_1")), before);
}

#[test]
fn sibling_files_are_0600_the_apps_file_gets_no_table_and_they_are_never_tenants() {
    let f = Fleet::new(&["company_1"]);
    let app_tables = tables(&f.db("company_1"));

    // Status and dry runs create nothing.
    assert_code(&f.run("host-a", &["status"]), 0);
    assert_code(&f.run("host-a", &["cleanup", "--dry-run"]), 0);
    assert_eq!(f.names(), BTreeSet::from(["company_1.db".to_owned()]));

    assert_code(&f.run("host-a", &["cleanup"]), 0);
    for name in ["company_1.db-janitor", ".baileys-janitor"] {
        let mode = std::fs::metadata(f.auth().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }
    assert_eq!(tables(&f.db("company_1")), app_tables, "no new table");
    assert_eq!(trashed(&f.sibling("company_1")).len(), 2);
    // No journal left beside them, and no janitor file an app's `*.db` loop would open.
    assert!(
        f.names()
            .iter()
            .all(|n| !n.ends_with(".db") || !n.contains("janitor")),
        "{:?}",
        f.names()
    );
    assert!(
        f.names().iter().all(|n| !n.contains("-janitor-")),
        "{:?}",
        f.names()
    );
    // Reading them back (status, a dry run) leaves no log beside them either.
    assert_code(&f.run("host-a", &["status"]), 0);
    assert_code(&f.run("host-a", &["cleanup", "--dry-run"]), 0);
    assert!(
        f.names().iter().all(|n| !n.contains("-janitor-")),
        "{:?}",
        f.names()
    );

    // The janitor's files are never tenants.
    let st = f.json("host-a", &["status", "--json"]);
    let tenants: Vec<&str> = st["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["company_1"], "{st}");

    // A sibling others can read: one warning line, the run goes on.
    std::fs::set_permissions(
        f.sibling("company_1"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = f.run("host-a", &["status"]);
    assert_code(&out, 0);
    let warned: Vec<String> = text(&out.stderr)
        .lines()
        .chain(text(&out.stdout).lines())
        .filter(|l| l.contains("can be read by group or others"))
        .map(str::to_owned)
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}\n{}", text(&out.stderr));
    assert!(
        warned[0].contains("company_1.db-janitor (0644)"),
        "{warned:?}"
    );
}

#[test]
fn a_janitor_running_as_another_user_than_the_siblings_owner_removes_nothing() {
    let root = rustix::process::geteuid().is_root();
    if !root || !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("SKIPPED: needs root and /usr/bin/setpriv to run as another user");
        return;
    }
    let f = Fleet::new(&["company_1"]);
    // Root's run leaves root's siblings (0600); the second cleanup is the ledger's first day.
    assert_code(&f.run("host-a", &["cleanup"]), 0);
    make_sqlite(&f.db("company_2"), CREDS);
    // Everything else belongs to the app's user (nobody), as it would.
    let nobody = Some(rustix::process::Uid::from_raw(65534));
    let group = Some(rustix::process::Gid::from_raw(65534));
    std::fs::set_permissions(f.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = f.dir.path().join("state-nobody");
    std::fs::create_dir(&state).unwrap();
    rustix::fs::chown(&state, nobody, group).unwrap();
    rustix::fs::chown(f.auth(), nobody, group).unwrap();
    for e in std::fs::read_dir(f.auth()).unwrap() {
        let p = e.unwrap().path();
        if !p.to_string_lossy().contains("janitor") {
            rustix::fs::chown(&p, nobody, group).unwrap();
        }
    }
    let before = sqlite_rows(&f.db("company_1"));
    let out = std::process::Command::new("/usr/bin/setpriv")
        .env_clear()
        .env(
            "BAILEYS_JANITOR_SYSTEM_CONFIG",
            "/nonexistent/baileys-janitor.toml",
        )
        .env("BAILEYS_JANITOR_HOSTNAME", "host-n")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(assert_cmd::cargo::cargo_bin("baileys-janitor"))
        .arg("--store")
        .arg(format!("sqlite:{}", f.auth().display()))
        .arg("--state-dir")
        .arg(&state)
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&out, 1);
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(".baileys-janitor") && err.contains("belongs to uid 0"),
        "{err}"
    );
    assert_eq!(sqlite_rows(&f.db("company_1")), before, "nothing removed");
}

/// Whether some process holds `flock` on `path` (the test takes it for a moment if not).
fn locked(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => false,
        Err(rustix::io::Errno::WOULDBLOCK) => true,
        Err(e) => panic!("flock {}: {e}", path.display()),
    }
}

/// Host A's cleanup, paused 3 s before removing, once it holds `tenant`'s lock.
fn paused_cleanup_holding(f: &Fleet, tenant: &str) -> std::process::Child {
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("baileys-janitor"))
        .env("BAILEYS_JANITOR_HOSTNAME", "host-a")
        .env("BAILEYS_JANITOR_LOG", "warn")
        .arg("--store")
        .arg(format!("sqlite:{}", f.auth().display()))
        .arg("--state-dir")
        .arg(f.state("host-a"))
        .args(["cleanup", "--debug-pause-before-remove", "3s"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(10, || locked(&f.sibling(tenant))),
        "host A never took the lock of {tenant}"
    );
    child
}

#[test]
fn a_tenant_one_janitor_is_cleaning_is_busy_for_the_other() {
    let f = Fleet::new(&["company_1"]);
    let mut first = paused_cleanup_holding(&f, "company_1");
    // Host B has a state directory of its own: only the lock beside the account tells it.
    let second = f.run("host-b", &["cleanup", "--lock-wait", "0s"]);
    assert_code(&second, 75);
    assert!(
        text(&second.stdout).contains("another janitor on this folder holds company_1"),
        "{}",
        text(&second.stdout)
    );
    assert!(first.wait().unwrap().success());
    assert_eq!(
        sqlite_rows(&f.db("company_1")).len(),
        account_rows().len() - 2
    );
    // Released with the process: B goes ahead at once (nothing left to remove).
    assert_code(&f.run("host-b", &["cleanup", "--lock-wait", "0s"]), 0);
    assert!(!locked(&f.sibling("company_1")));
}

/// Two janitors with one state directory (a cron run and a manual one) exclude each other
/// through the lock beside the account alone: the state directory gets no lock file.
#[test]
fn a_second_janitor_with_the_same_state_directory_is_busy_without_a_lock_file() {
    let f = Fleet::new(&["company_1"]);
    let mut first = paused_cleanup_holding(&f, "company_1");
    let second = f.run("host-a", &["cleanup", "--lock-wait", "0s", "--json"]);
    assert_code(&second, 75);
    assert!(first.wait().unwrap().success());
    assert_eq!(
        sqlite_rows(&f.db("company_1")).len(),
        account_rows().len() - 2,
        "removed once"
    );
    assert!(
        !f.state("host-a").join("locks").exists(),
        "no lock file in the state directory"
    );
}

/// A state file as a newer janitor would have left it (schema version 99, in `meta` and in
/// the header's `user_version`).
fn newer_state_file(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO meta VALUES ('schema_version', '99');
         PRAGMA user_version = 99;",
    )
    .unwrap();
}

#[test]
fn a_newer_schema_in_a_sibling_is_exit_2_and_nothing_is_removed() {
    for file in ["company_1.db-janitor", ".baileys-janitor"] {
        let f = Fleet::new(&["company_1"]);
        let before = sqlite_rows(&f.db("company_1"));
        newer_state_file(&f.auth().join(file));
        for args in [&["cleanup"][..], &["status"], &["restore", "--list"]] {
            let out = f.run("host-a", args);
            assert_code(&out, 2);
            let err = text(&out.stderr);
            assert!(
                err.contains(file) && err.contains("newer baileys-janitor"),
                "{file}, {args:?}: {err}"
            );
        }
        assert_eq!(sqlite_rows(&f.db("company_1")), before, "{file}");
    }
}

/// The runs with rows in a sibling's trash, newest first.
fn runs_in_trash(sibling: &Path) -> Vec<String> {
    let Some(c) = state_db(sibling) else {
        return vec![];
    };
    let mut s = c
        .prepare("SELECT run_id FROM trash GROUP BY run_id ORDER BY max(removed_at_us) DESC")
        .unwrap();
    s.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The points a cleanup of `f` passes, each with how often.
fn fault_points(f: &Fleet) -> Vec<(String, usize)> {
    let out = f
        .cmd("host-a")
        .env("BAILEYS_JANITOR_DEBUG_KILL_AT", "list")
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&out, 0);
    let mut seen: Vec<(String, usize)> = Vec::new();
    for l in text(&out.stderr).lines() {
        let Some(p) = l.strip_prefix("fault point: ") else {
            continue;
        };
        match seen.iter_mut().find(|(n, _)| n == p) {
            Some((_, c)) => *c += 1,
            None => seen.push((p.to_owned(), 1)),
        }
    }
    seen
}

#[test]
fn a_kill_at_every_step_leaves_each_row_in_place_or_in_the_trash() {
    let tenants = ["company_1", "company_2"];
    let points = fault_points(&Fleet::new(&tenants));
    let names: Vec<&str> = points.iter().map(|(p, _)| p.as_str()).collect();
    for want in [
        "store.before_batch",
        "sqlite.after_delete",
        "sqlite.after_trash",
        "sqlite.after_commit",
        "store.after_batch",
    ] {
        assert!(names.contains(&want), "{want} not passed: {names:?}");
    }
    let all: BTreeSet<(String, String)> = account_rows()
        .into_iter()
        .map(|(t, id, _)| (t, id))
        .collect();
    for (point, times) in &points {
        for nth in 1..=*times {
            let f = Fleet::new(&tenants);
            let killed = f
                .cmd("host-a")
                .env("BAILEYS_JANITOR_DEBUG_KILL_AT", format!("{point}:{nth}"))
                .arg("cleanup")
                .output()
                .unwrap();
            assert_eq!(
                killed.status.signal(),
                Some(9),
                "{point}:{nth} was not reached: {}",
                text(&killed.stderr)
            );
            let check = |when: &str| {
                for t in tenants {
                    let in_place: BTreeSet<(String, String)> = sqlite_rows(&f.db(t))
                        .into_iter()
                        .map(|(t, id, _)| (t, id))
                        .collect();
                    let in_trash: BTreeSet<(String, String)> = trashed(&f.sibling(t))
                        .into_iter()
                        .map(|(t, id, _)| (t, id))
                        .collect();
                    let lost: Vec<_> = all
                        .iter()
                        .filter(|k| !in_place.contains(*k) && !in_trash.contains(*k))
                        .collect();
                    assert!(lost.is_empty(), "{when} {point}:{nth}, {t}: lost {lost:?}");
                }
            };
            check("killed at");
            // The next normal run succeeds and finishes the job; everything is still somewhere.
            let next = f.run("host-a", &["cleanup"]);
            assert_code(&next, 0);
            check("after the run that followed a kill at");
            // Every run in the trash can be restored (rows kept apart from a partner that stayed
            // in place are reported, exit 1, and stay in the trash): still nothing lost.
            for t in tenants {
                for run in runs_in_trash(&f.sibling(t)) {
                    let r = f.run("host-a", &["restore", "--company", t, "--run", &run]);
                    assert!(
                        matches!(code(&r), 0 | 1),
                        "{point}:{nth}, {t} {run}: {}",
                        text(&r.stderr)
                    );
                }
            }
            check("after restoring every run, following a kill at");
        }
    }
}

/// The janitor as `host-a` runs it, spawned (for tests that watch it while it works).
fn spawn_cleanup(f: &Fleet, args: &[&str]) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("baileys-janitor"))
        .env_clear()
        .env("BAILEYS_JANITOR_SYSTEM_CONFIG", NO_SYSTEM_CONFIG)
        .env("BAILEYS_JANITOR_HOSTNAME", "host-a")
        .env("BAILEYS_JANITOR_LOG", "warn")
        .arg("--store")
        .arg(format!("sqlite:{}", f.auth().display()))
        .arg("--state-dir")
        .arg(f.state("host-a"))
        .arg("cleanup")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn sqlite_tenants_are_cleaned_on_several_workers_with_the_result_of_one() {
    let tenants = [
        "company_1",
        "company_2",
        "company_3",
        "company_4",
        "company_5",
    ];
    let one = Fleet::new(&tenants);
    let two = Fleet::new(&tenants);
    // Two workers: two tenants are locked (and paused before their removal) at the same time.
    let child = spawn_cleanup(
        &two,
        &["--jobs", "2", "--json", "--debug-pause-before-remove", "2s"],
    );
    assert!(
        wait_for(20, || locked(&two.sibling("company_1"))
            && locked(&two.sibling("company_2"))),
        "the two first tenants were never cleaned at the same time"
    );
    let parallel = child.wait_with_output().unwrap();
    assert_code(&parallel, 0);
    let parallel: serde_json::Value = serde_json::from_slice(&parallel.stdout).unwrap();
    let serial = one.json("host-a", &["cleanup", "--jobs", "1", "--json"]);
    // The same rows removed, the same reports, in tenant order; the same trash.
    assert_eq!(removed_by_company(&parallel), removed_by_company(&serial));
    assert_eq!(
        removed_by_company(&parallel)
            .iter()
            .map(|r| r.0.as_str())
            .collect::<Vec<_>>(),
        tenants
    );
    // (Keys only: the fixtures' session clocks differ by the milliseconds between them.)
    let keys = |f: &Fleet, t: &str| -> Vec<(String, String)> {
        sqlite_rows(&f.db(t))
            .into_iter()
            .map(|(k, id, _)| (k, id))
            .collect()
    };
    for t in tenants {
        assert_eq!(keys(&two, t), keys(&one, t), "{t}");
        assert_eq!(keys(&two, t).len(), account_rows().len() - OLD.len(), "{t}");
        assert_eq!(trashed(&two.sibling(t)), trashed(&one.sibling(t)), "{t}");
        assert_eq!(trashed(&two.sibling(t)).len(), OLD.len(), "{t}");
    }
    assert_eq!(
        parallel["totals"]["removed"],
        serde_json::json!(OLD.len() * tenants.len())
    );
}

#[test]
fn a_busy_sqlite_tenant_on_one_worker_does_not_stop_the_others() {
    let tenants = ["company_1", "company_2", "company_3"];
    let f = Fleet::new(&tenants);
    let all = account_rows().len();
    // Another janitor on this folder holds company_1 (its lock beside the account).
    let held = {
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(f.sibling("company_1"))
            .unwrap();
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
        file
    };
    let child = spawn_cleanup(&f, &["--jobs", "2", "--json", "--lock-wait", "60s"]);
    // One worker waits for company_1; the other cleans the rest meanwhile.
    let others_done = wait_for(30, || {
        ["company_2", "company_3"]
            .iter()
            .all(|t| sqlite_rows(&f.db(t)).len() == all - OLD.len())
    });
    let company_1_untouched = sqlite_rows(&f.db("company_1")).len() == all;
    drop(held);
    let out = child.wait_with_output().unwrap();
    assert!(others_done, "the other tenants waited for the busy one");
    assert!(company_1_untouched);
    // Its lock freed, company_1 is cleaned too, and the reports keep tenant order.
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = removed_by_company(&v);
    assert_eq!(r.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), tenants);
    for (t, removed) in &r {
        assert_eq!(removed.len(), OLD.len(), "{t}: {removed:?}");
    }
    assert_eq!(sqlite_rows(&f.db("company_1")).len(), all - OLD.len());
}

#[test]
fn a_sqlite_tenants_removals_of_one_rank_commit_together() {
    let f = Fleet::new(&["company_1"]);
    // Keep 5 pre-keys: 115 rows of the first rank (114 pre-keys and the old session), then its
    // identity key.
    let cfg = f.dir.path().join("keep5.toml");
    std::fs::write(&cfg, "[pre_keys]\nkeep = 5\n").unwrap();
    // SQLite rows carry no time: a run 30 days ago starts the ledger (removing nothing).
    let month_ago = (chrono::Utc::now() - chrono::Duration::days(30))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let seed = f
        .cmd("host-a")
        .env("BAILEYS_JANITOR_NOW", &month_ago)
        .arg("--config")
        .arg(&cfg)
        .args(["cleanup", "--json"])
        .output()
        .unwrap();
    assert_code(&seed, 0);
    let out = f
        .cmd("host-a")
        .env("BAILEYS_JANITOR_DEBUG_KILL_AT", "list")
        .arg("--config")
        .arg(&cfg)
        .args(["cleanup", "--json"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let removed = v["totals"]["removed"].as_u64().unwrap();
    assert!(removed > 101, "{removed}");
    // Two transactions, each with its one synced trash commit (at 100 rows a batch: three).
    let commits = text(&out.stderr)
        .lines()
        .filter(|l| *l == "fault point: sqlite.after_commit")
        .count();
    assert_eq!(commits, 2, "{}", text(&out.stderr));
    assert_eq!(trashed(&f.sibling("company_1")).len() as u64, removed);
}

/// A folder of account files is cleaned on 4 workers without `--jobs`, whatever the cores:
/// an account's time is the disk's (its synced trash commits), which more workers overlap.
#[test]
fn a_folder_of_accounts_is_cleaned_four_at_a_time_by_default() {
    let names = [
        "company_1",
        "company_2",
        "company_3",
        "company_4",
        "company_5",
    ];
    let f = Fleet::new(&names);
    let mut cmd = f.cmd("host-a");
    cmd.args(["cleanup", "--json", "--debug-pause-before-remove", "2s"]);
    let run = std::thread::spawn(move || cmd.output().unwrap());
    let most = std::cell::Cell::new(0);
    wait_for(20, || {
        let now = names.iter().filter(|n| locked(&f.sibling(n))).count();
        most.set(most.get().max(now));
        now == 4
    });
    let out = run.join().unwrap();
    assert_code(&out, 0);
    assert_eq!(most.get(), 4, "accounts locked at once");
    for n in names {
        assert_eq!(sqlite_rows(&f.db(n)).len(), account_rows().len() - 2, "{n}");
    }
}
