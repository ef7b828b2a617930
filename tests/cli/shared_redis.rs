//! Two janitors on one Redis (issue 23): two state directories and two
//! `BAILEYS_JANITOR_HOSTNAME`s stand for two hosts. The janitor's state lives in Redis under
//! `<prefix>:janitor:`, so holds, cooldowns, runs and the trash are the same truth for both.
//! Each test works under its own key prefix (`redis_store::Scratch`, deleted afterwards).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::layers::{
    EMERGENCY_CLEANUP, Layer, NEW_OLD_SESSION, OTHER_LAYERS, STATUS, cooldown_cases,
    small_fleet_config, status_cooldown_and_holds,
};
use crate::redis_store::{Scratch, json_of, twice};
use crate::stores::session;
use crate::testenv::*;

const TENANT: &str = "0c0ffee0-aaaa-4c55-9a0e-1b2c3d4e5f60";
/// What the first cleanup removes from an Evolution instance made by `evolution_instance`.
const REMOVED: [&str; 2] = ["identity-key-5511888888888.0", "session-5511888888888.0"];

/// One Redis, one Evolution instance with its creds in the hash, two hosts' state directories.
struct Fleet {
    r: Scratch,
    _dir: tempfile::TempDir,
    a: PathBuf,
    b: PathBuf,
}

impl Fleet {
    fn new() -> Option<Fleet> {
        let mut r = Scratch::new()?;
        r.evolution_instance(TENANT, true);
        let dir = tempfile::tempdir().unwrap();
        Some(Fleet {
            a: dir.path().join("host-a"),
            b: dir.path().join("host-b"),
            r,
            _dir: dir,
        })
    }

    fn cmd(&self, host: &str, state: &Path) -> assert_cmd::Command {
        let mut c = self.r.cmd(state);
        c.env("BAILEYS_JANITOR_HOSTNAME", host);
        c
    }

    fn on_a(&self, args: &[&str]) -> Output {
        self.cmd("host-a", &self.a).args(args).output().unwrap()
    }

    fn on_b(&self, args: &[&str]) -> Output {
        self.cmd("host-b", &self.b).args(args).output().unwrap()
    }

    fn fields(&mut self) -> BTreeMap<String, String> {
        let h = self.r.hash(TENANT);
        self.r.hgetall(&h)
    }

    fn ns(&self) -> String {
        format!("{}:janitor:", self.r.prefix)
    }

    /// Every key of the janitor's state, with its TTL in seconds (-1: none).
    fn own_keys(&mut self) -> BTreeMap<String, i64> {
        own_keys(&mut self.r)
    }

    /// Every field in any trash hash of the tenant's runs (restored ones excluded).
    fn trashed(&mut self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let ns = self.ns();
        for k in self.own_keys().into_keys() {
            let Some(rest) = k.strip_prefix(&format!("{ns}trash:")) else {
                continue;
            };
            if rest.ends_with(":meta") || rest.ends_with(":restored") || rest.ends_with(":cols") {
                continue;
            }
            for (field, value) in self.r.hgetall(&k) {
                let (t, id): (String, String) = serde_json::from_str(&field).unwrap();
                out.insert(format!("{t}-{id}"), value);
            }
        }
        out
    }
}

fn own_keys(r: &mut Scratch) -> BTreeMap<String, i64> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:janitor:*", r.prefix))
        .query(&mut r.con)
        .unwrap();
    keys.into_iter()
        .map(|k| {
            let ttl: i64 = redis::cmd("TTL").arg(&k).query(&mut r.con).unwrap();
            (k, ttl)
        })
        .collect()
}

fn removed(o: &Output) -> Vec<String> {
    assert_code(o, 0);
    let v = json_of(o);
    let mut names: Vec<String> = company_report(&v, TENANT)["removed_files"]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_restore_on_one_host_holds_the_fields_against_a_cleanup_on_the_other() {
    let Some(mut f) = Fleet::new() else { return };
    let before = f.fields();
    assert_eq!(removed(&f.on_a(&["cleanup", "--json"])), REMOVED);
    assert_code(&f.on_a(&["restore", "--company", TENANT]), 0);
    assert_eq!(f.fields(), before, "restored byte-exact");
    let b = f.on_b(&["cleanup", "--json"]);
    assert_eq!(removed(&b), Vec::<String>::new(), "{}", text(&b.stdout));
    assert_eq!(f.fields(), before, "host B removed nothing host A restored");
}

/// A cleans and restores; then each layer that cleans besides the daily cleanup, on B (a fresh
/// instance each), cleans the tenant and removes none of the fields on hold.
#[test]
fn every_other_layer_keeps_the_fields_a_restore_on_another_host_holds() {
    for layer in OTHER_LAYERS {
        let Some(mut f) = Fleet::new() else { return };
        assert_eq!(removed(&f.on_a(&["cleanup", "--json"])), REMOVED);
        assert_code(&f.on_a(&["restore", "--company", TENANT]), 0);
        let held = f.fields();
        let out = f
            .cmd("host-b", &f.b)
            .arg("--config")
            .arg(small_fleet_config(f._dir.path()))
            .args(layer.args)
            .output()
            .unwrap();
        assert_code(&out, layer.exit);
        layer.assert_kept(&json_of(&out), TENANT, &f.fields(), &held);
        if layer.name == STATUS.name {
            let (_, on_hold) = status_cooldown_and_holds(&json_of(&out), TENANT);
            assert_eq!(on_hold, REMOVED.len() as u64, "status on host B");
        }
    }
}

/// For each pair of layers that clean on their own (a fresh prefix each): `first` on A
/// cleans; within the cooldown `then`, on B or on A again, leaves an old field that came since
/// (the mark is in Redis), which `cleanup --emergency` then removes.
#[test]
fn a_cleanup_by_one_automatic_layer_is_a_cooldown_for_every_other_on_either_host() {
    for (first, then, host) in cooldown_cases() {
        let case = format!("{} on host-a, then {} on {host}", first.name, then.name);
        let Some(mut f) = Fleet::new() else { return };
        let config = small_fleet_config(f._dir.path());
        let state = |f: &Fleet, host: &str| {
            if host == "host-a" {
                f.a.clone()
            } else {
                f.b.clone()
            }
        };
        let layer = |f: &Fleet, layer: Layer, host: &str| {
            let out = f
                .cmd(host, &state(f, host))
                .arg("--config")
                .arg(&config)
                .args(layer.args)
                .output()
                .unwrap();
            assert_code(&out, layer.exit);
            json_of(&out)
        };
        assert_eq!(
            first.removed(&layer(&f, first, "host-a"), TENANT),
            Some(REMOVED.len() as u64),
            "{case}"
        );
        let (ty, id) = NEW_OLD_SESSION;
        let new = format!("{ty}-{id}");
        let h = f.r.hash(TENANT);
        f.r.hset(&h, &new, &twice(&session(30)));
        let v = layer(&f, then, host);
        assert!(then.cooling_down(&v, TENANT), "{case}: {v}");
        assert!(
            f.fields().contains_key(&new),
            "{case}: removed the new field"
        );
        let st = json_of(
            &f.cmd(host, &state(&f, host))
                .args(STATUS.args)
                .output()
                .unwrap(),
        );
        let (cooldown, _) = status_cooldown_and_holds(&st, TENANT);
        assert!(cooldown.is_some(), "{case}: status shows no cooldown: {st}");
        // Not kept for another reason: a cleanup removes it.
        let out = f
            .cmd(host, &state(&f, host))
            .args(EMERGENCY_CLEANUP.args)
            .output()
            .unwrap();
        assert_eq!(removed(&out), vec![new.clone()], "{case}");
        assert!(!f.fields().contains_key(&new));
    }
}

#[test]
fn a_trigger_on_one_host_puts_the_tenant_in_cooldown_for_the_other() {
    let Some(f) = Fleet::new() else { return };
    let trig = [
        "trigger",
        "--threshold",
        "1",
        "--emergency-threshold",
        "1000",
        "--json",
    ];
    let action = |o: &Output| {
        assert_code(o, 0);
        company_report(&json_of(o), TENANT)["action"].clone()
    };
    assert_eq!(action(&f.on_a(&trig)), "cleanup");
    assert_eq!(action(&f.on_b(&trig)), "cooldown");
}

#[test]
fn status_on_either_host_shows_both_hosts_runs() {
    let Some(f) = Fleet::new() else { return };
    assert_code(&f.on_a(&["cleanup", "--json"]), 0);
    assert_code(&f.on_b(&["cleanup", "--json"]), 0);
    for status in [f.on_a(&["status", "--json"]), f.on_b(&["status", "--json"])] {
        assert_code(&status, 0);
        let v = json_of(&status);
        let hosts: Vec<String> = v["runs_by_host"]
            .as_array()
            .unwrap_or_else(|| panic!("no runs_by_host: {v}"))
            .iter()
            .map(|r| r["host"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            hosts.contains(&"host-a".into()) && hosts.contains(&"host-b".into()),
            "{hosts:?}"
        );
        let human = text(&f.on_b(&["status"]).stdout);
        assert!(
            human.contains("host-a") && human.contains("host-b"),
            "{human}"
        );
    }
}

#[test]
fn a_restore_on_the_second_host_after_the_first_hosts_state_is_gone() {
    let Some(mut f) = Fleet::new() else { return };
    let before = f.fields();
    assert_eq!(removed(&f.on_a(&["cleanup", "--json"])), REMOVED);
    std::fs::remove_dir_all(&f.a).unwrap();
    let list = f.on_b(&["restore", "--list", "--json"]);
    assert_code(&list, 0);
    let listed = text(&list.stdout);
    assert!(
        listed.contains("host-a"),
        "the run names its host: {listed}"
    );
    assert_code(&f.on_b(&["restore", "--company", TENANT]), 0);
    assert_eq!(f.fields(), before, "restored byte-exact from host B");
}

#[test]
fn trash_keys_expire_with_the_retention() {
    let Some(mut f) = Fleet::new() else { return };
    let config = f._dir.path().join("config.toml");
    std::fs::write(&config, "[trash]\nretention = \"2d\"\n").unwrap();
    let out = f
        .cmd("host-a", &f.a)
        .arg("--config")
        .arg(&config)
        .args(["cleanup", "--json"])
        .output()
        .unwrap();
    assert_eq!(removed(&out), REMOVED);
    let ns = f.ns();
    let trash: Vec<(String, i64)> = f
        .own_keys()
        .into_iter()
        .filter(|(k, _)| k.starts_with(&format!("{ns}trash")))
        .collect();
    assert!(trash.len() >= 3, "rows, meta, index: {trash:?}");
    for (k, ttl) in &trash {
        assert!(
            (2 * 86_400 - 120..=2 * 86_400).contains(ttl),
            "{k} expires in {ttl}s, not trash.retention"
        );
    }
    assert_eq!(
        f.trashed().keys().cloned().collect::<Vec<_>>(),
        REMOVED,
        "the trash holds what went"
    );
}

#[test]
fn a_newer_schema_is_exit_2_and_status_on_a_fresh_prefix_writes_nothing() {
    let Some(mut f) = Fleet::new() else { return };
    let status = f.on_a(&["status", "--json"]);
    assert_code(&status, 0);
    let dry = f.on_a(&["cleanup", "--dry-run", "--json"]);
    assert_code(&dry, 0);
    assert_eq!(
        f.own_keys(),
        BTreeMap::new(),
        "status and dry runs write nothing"
    );
    let before = f.fields();
    let _: () = redis::cmd("SET")
        .arg(format!("{}version", f.ns()))
        .arg(99)
        .query(&mut f.r.con)
        .unwrap();
    for args in [
        &["status"][..],
        &["cleanup", "--json"],
        &["restore", "--list"],
    ] {
        let out = f.on_b(args);
        assert_code(&out, 2);
        let err = text(&out.stderr);
        assert!(err.contains("newer than this binary"), "{args:?}: {err}");
    }
    assert_eq!(f.fields(), before, "nothing removed");
}

/// The kill-at-every-step test: the points a cleanup passes are learnt from the binary itself,
/// then for each passage of each one (every batch) a fresh instance, a run killed there
/// (SIGKILL), and a count: every planned field is in the hash, in the trash, or both, never
/// neither. A normal run afterwards succeeds, and the trash puts the tenant back whole.
#[test]
fn kill_at_every_step_leaves_every_field_in_the_hash_or_the_trash() {
    let points = {
        let Some(f) = Fleet::new() else { return };
        let out = f
            .cmd("host-a", &f.a)
            .env("BAILEYS_JANITOR_DEBUG_KILL_AT", "list")
            .args(["cleanup", "--json"])
            .output()
            .unwrap();
        assert_eq!(removed(&out), REMOVED);
        // Every passage of every point, as `<point>:<nth>` (a run passes each once per batch).
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        text(&out.stderr)
            .lines()
            .filter_map(|l| l.strip_prefix("fault point: "))
            .map(|p| {
                let n = seen.entry(p.to_owned()).or_default();
                *n += 1;
                format!("{p}:{n}")
            })
            .collect::<Vec<_>>()
    };
    for p in ["redis.before_script:1", "redis.after_script:1"] {
        assert!(points.iter().any(|x| x == p), "{p} not passed: {points:?}");
    }
    for point in &points {
        let Some(mut f) = Fleet::new() else { return };
        let before = f.fields();
        let killed = f
            .cmd("host-a", &f.a)
            .env("BAILEYS_JANITOR_DEBUG_KILL_AT", point)
            .args(["cleanup", "--json"])
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "{point}: {}",
            text(&killed.stderr)
        );
        let (now, trashed) = (f.fields(), f.trashed());
        for name in REMOVED {
            let original = &before[name];
            assert!(
                now.get(name) == Some(original) || trashed.get(name) == Some(original),
                "{point}: {name} is in neither the hash nor the trash"
            );
        }
        for (name, v) in &before {
            if !REMOVED.contains(&name.as_str()) {
                assert_eq!(now.get(name), Some(v), "{point}: {name} was not planned");
            }
        }
        // A normal run afterwards succeeds (the dead run's lock is taken over) and keeps the
        // promise too (an identity key whose session went in the killed run may stay: it
        // goes only with its session).
        let again = f.on_a(&["cleanup", "--json"]);
        assert_code(&again, 0);
        let (now, trashed) = (f.fields(), f.trashed());
        for name in REMOVED {
            assert!(
                now.contains_key(name) || trashed.get(name) == Some(&before[name]),
                "{point}: {name} lost by the run after the kill"
            );
        }
        // Every run in the trash puts back what it took. A session whose identity key stayed
        // (the kill fell between their batches) may be kept back by the restore's pair rule
        // (the key was first seen by the later run, so it counts as written since): then it
        // says so, exit 1, and the session stays in the trash. Never neither, still.
        let list = f.on_a(&["restore", "--list", "--json"]);
        assert_code(&list, 0);
        for run in json_of(&list)["runs"].as_array().unwrap() {
            let id = run["run_id"].as_str().unwrap();
            let back = f.on_a(&["restore", "--run", id, "--company", TENANT]);
            let said = text(&back.stdout);
            assert!(
                code(&back) == 0 || (code(&back) == 1 && said.contains("kept with its partner")),
                "{point}: restore --run {id}: {said}"
            );
        }
        let (now, trashed) = (f.fields(), f.trashed());
        for (name, v) in &before {
            assert!(
                now.get(name) == Some(v) || trashed.get(name) == Some(v),
                "{point}: {name} is neither back nor in the trash"
            );
        }
        if trashed.is_empty() {
            assert_eq!(now, before, "{point}: restored byte-exact");
        }
    }
}

#[test]
fn no_trash_removes_without_writing_any_trash_key() {
    let Some(mut f) = Fleet::new() else { return };
    assert_eq!(
        removed(&f.on_a(&["cleanup", "--json", "--no-trash"])),
        REMOVED
    );
    let ns = f.ns();
    let trash: Vec<String> = f
        .own_keys()
        .into_keys()
        .filter(|k| k.starts_with(&format!("{ns}trash")))
        .collect();
    assert_eq!(trash, Vec::<String>::new());
    let fields = f.fields();
    assert!(REMOVED.iter().all(|n| !fields.contains_key(*n)));
}

/// Instances `a` and `b` (each as `evolution_instance` makes it, creds in the hash).
fn two_instances() -> Option<Scratch> {
    let mut r = Scratch::new()?;
    for t in ["inst-a", "inst-b"] {
        r.evolution_instance(t, true);
    }
    Some(r)
}

#[test]
fn instances_are_cleaned_on_several_workers_with_the_result_of_one() {
    let (Some(mut two), Some(mut one)) = (two_instances(), two_instances()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let locks = |r: &mut Scratch| -> usize {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("baileys-janitor-lock:{{{}:instance:*", r.prefix))
            .query(&mut r.con)
            .unwrap();
        keys.len()
    };
    // Two workers, two connections: both instances locked (and paused) at once.
    let cmd = two.cmd(&dir.path().join("two"));
    let parallel = cleanup_on_two_workers(cmd, || locks(&mut two) == 2);
    let serial = run(
        &mut one.cmd(&dir.path().join("one")),
        &["cleanup", "--jobs", "1", "--json"],
        0,
    );
    // The same fields removed, reported in instance order; the same fields left.
    let got = removed_by_company(&json_of(&parallel));
    assert_eq!(got, removed_by_company(&json_of(&serial)));
    assert_eq!(
        got.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["inst-a", "inst-b"]
    );
    assert!(got.iter().all(|(_, r)| r == &REMOVED), "{got:?}");
    for t in ["inst-a", "inst-b"] {
        let (h2, h1) = (two.hash(t), one.hash(t));
        let names = |m: BTreeMap<String, String>| m.into_keys().collect::<Vec<_>>();
        assert_eq!(names(two.hgetall(&h2)), names(one.hgetall(&h1)), "{t}");
    }
    assert_eq!(locks(&mut two), 0, "a worker left its lock behind");
}
