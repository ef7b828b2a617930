//! Two hosts on one store (issue 23), in memory: two state directories, each with its own handle
//! on the one shared state the store keeps. What one host decides, the other sees.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

use super::clean::{StoreCleanSpec, clean_tenant};
use super::contract::{CREDS, fixture};
use super::memory::MemoryStore;
use super::shared::{SharedOptions, Space};
use super::undo::{StoreRestore, restore_tenant_run};
use super::{SharedState, Store};
use crate::core::clean::CleanSpec;
use crate::core::records::{self, CompanyRecord, TriggerLevel, TriggerMark};
use crate::core::rules::Rules;
use crate::core::state::StateDir;

const NOW_S: u64 = 1_800_000_000;
const T: &str = "tenant_1";
const OLD: [&str; 2] = ["identity-key-5511888888888.0", "session-5511888888888.0"];

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_S)
}

fn utc(after_s: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from(now()) + chrono::Duration::seconds(after_s)
}

/// A store seeded with the contract's fixture.
fn store() -> MemoryStore {
    let mut m = MemoryStore::new();
    m.tenant(T).creds = Some(CREDS.into());
    for (t, i, v) in fixture() {
        m.put(T, &t, &i, &v, None);
    }
    m
}

/// A host: its own state directory, attached to the store's shared state (as `open_fleet`
/// does).
struct Host {
    _dir: tempfile::TempDir,
    state: StateDir,
}

fn host(store: &MemoryStore) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path().join("state"));
    state.share(
        store
            .shared_state(&SharedOptions::default())
            .unwrap()
            .unwrap(),
    );
    Host { _dir: dir, state }
}

fn spec(run: &str) -> StoreCleanSpec {
    StoreCleanSpec {
        clean: CleanSpec {
            rules: Rules::NORMAL,
            dry_run: false,
            trash: true,
            verbose: false,
            now: now(),
            run_id: run.into(),
            holder: "two hosts".into(),
            pause_before_remove: None,
            creds_from: None,
        },
        store_key: "two-hosts".into(),
        remove_legacy: false,
        remove_orphans: false,
        batch: 10,
    }
}

fn restore_opts() -> StoreRestore<'static> {
    StoreRestore {
        only: &[],
        force: false,
        dry_run: false,
        now: now().into(),
        hold: Duration::from_secs(3 * 86_400),
        store_key: "two-hosts",
    }
}

#[test]
fn a_restore_on_one_host_holds_the_rows_against_a_cleanup_on_another() {
    let mut m = store();
    let a = host(&m);
    let b = host(&m);
    let before = m.rows(T);

    let first = clean_tenant(&mut m, T, &a.state, &spec("20270115T080000Z-1"));
    let mut removed = first.removed_files.clone();
    removed.sort();
    assert_eq!(removed, OLD);

    // Host A is gone (its state directory with it): B undoes A's run from the store's trash.
    drop(a);
    let rep =
        restore_tenant_run(&mut m, &b.state, T, "20270115T080000Z-1", &restore_opts()).unwrap();
    assert!(rep.complete(), "{:?}", rep.skipped);
    assert_eq!(rep.restored.len(), 2);
    assert_eq!(m.rows(T), before, "restored byte for byte");
    // A second restore finds nothing left to put back.
    let again =
        restore_tenant_run(&mut m, &b.state, T, "20270115T080000Z-1", &restore_opts()).unwrap();
    assert!(again.restored.is_empty() && again.complete());

    // A new host C (and A back with a fresh state directory) respects B's hold.
    let c = host(&m);
    let next = clean_tenant(&mut m, T, &c.state, &spec("20270115T090000Z-2"));
    assert!(next.removed_files.is_empty(), "{:?}", next.removed_files);
    assert_eq!(m.rows(T), before);
    let rec = records::try_read_company(&c.state, T).unwrap();
    assert_eq!(rec.holds.len(), 2, "{:?}", rec.holds);

    // The hold ends for every host at once.
    crate::core::restore::release(&c.state, T, now().into()).unwrap();
    let last = clean_tenant(&mut m, T, &b.state, &spec("20270115T100000Z-3"));
    assert_eq!(last.removed, 2);
}

#[test]
fn a_trigger_cooldown_set_on_one_host_is_seen_by_another() {
    let m = store();
    let (a, b) = (host(&m), host(&m));
    records::update_company(&a.state, T, |r| {
        r.trigger = Some(TriggerMark {
            time: utc(0),
            level: TriggerLevel::Normal,
        })
    })
    .unwrap();
    let seen = records::try_read_company(&b.state, T).unwrap();
    let verdict = crate::core::trigger::decide(
        500,
        175,
        1000,
        chrono::Duration::hours(6),
        &crate::core::trigger::cooldown_marks(&seen),
        utc(60),
    );
    assert_eq!(
        verdict,
        crate::core::trigger::Verdict::CoolingDown(utc(6 * 3600))
    );
    // Without the shared state, B's own directory knows nothing of it.
    let alone = StateDir::new(b._dir.path().join("alone"));
    assert_eq!(
        records::try_read_company(&alone, T).unwrap(),
        CompanyRecord::default()
    );
}

#[test]
fn concurrent_updates_from_many_hosts_lose_nothing() {
    let m = store();
    let hosts: Vec<Host> = (0..4).map(|_| host(&m)).collect();
    const EACH: usize = 30;
    std::thread::scope(|s| {
        for (h, host) in hosts.iter().enumerate() {
            s.spawn(move || {
                for i in 0..EACH {
                    records::update_company(&host.state, T, |r| {
                        r.holds.insert(format!("h{h}-{i}"), utc(3600));
                    })
                    .unwrap();
                }
            });
        }
    });
    let rec = records::try_read_company(&hosts[0].state, T).unwrap();
    assert_eq!(rec.holds.len(), 4 * EACH, "an update was lost");
    eprintln!("swaps lost and retried: {}", m.state.lost_swaps());
}

#[test]
fn status_shows_the_runs_and_last_cleanups_of_every_host() {
    let mut m = store();
    let (a, b) = (host(&m), host(&m));
    records::update_runs_of(&a.state, "host-a", |r| r.cleanup.last_start = Some(utc(0))).unwrap();
    records::update_runs_of(&b.state, "host-b", |r| {
        r.trigger.last_start = Some(utc(10));
        r.trigger.last_success = Some(utc(20));
    })
    .unwrap();
    let report = clean_tenant(&mut m, T, &a.state, &spec("20270115T080000Z-1"));
    records::record_cleanup(&a.state, &report, "cleanup", false, true, utc(30)).unwrap();

    let mut fleet = crate::core::fleet::Tenants {
        store: Box::new(m),
        store_key: "two-hosts".into(),
        description: "memory".into(),
        remove_legacy: false,
        remove_orphans: false,
    };
    let members = vec![crate::core::companies::single(T)];
    let spec = crate::core::fleet::StatusSpec {
        thresholds: crate::core::level::Thresholds {
            warning: 100,
            critical: 200,
            trigger: 300,
            emergency: 400,
            danger: 500,
        },
        cooldown: chrono::Duration::hours(6),
        rules: Rules::NORMAL,
        now: now(),
        run_id: "status".into(),
        creds_in_folder: false,
    };
    let rows = crate::core::fleet::Fleet::status(&mut fleet, &members, &b.state, &spec).unwrap();
    let crate::core::fleet::StatusRows::Tenants { shared, .. } = rows else {
        panic!("tenants")
    };
    let shared = shared.expect("the store keeps the state");
    let hosts: Vec<&str> = shared
        .runs_by_host
        .iter()
        .map(|(h, _)| h.as_str())
        .collect();
    assert_eq!(hosts, ["host-a", "host-b"]);
    assert_eq!(shared.runs_by_host[1].1.trigger.last_success, Some(utc(20)));
    let last = shared.last_cleanups[0].as_ref().expect("A's cleanup");
    assert_eq!(last.run_id, "20270115T080000Z-1");
    assert_eq!(last.host, Some(crate::core::util::hostname()));
}

#[test]
fn an_upgrading_host_reads_its_state_directory_until_the_store_has_a_copy() {
    let mut m = store();
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path().join("state"));
    // Before the upgrade: a run with the trash, ledger and record in the state directory, and
    // a hold from an earlier restore.
    let run = clean_tenant(&mut m, T, &state, &spec("20270115T080000Z-1"));
    assert_eq!(run.removed, 2);
    records::update_company(&state, T, |r| {
        r.holds.insert("pre-key-1.json".into(), utc(3600));
    })
    .unwrap();
    assert!(state.path().join("trash").join(T).exists());

    // The upgrade: the store keeps the state now, and has none of it yet.
    state.share(m.shared_state(&SharedOptions::default()).unwrap().unwrap());
    let mut shared: Box<dyn SharedState> = Box::new(m.state.clone());
    assert!(shared.read(Space::Company, T).unwrap().is_none());
    let rec = records::try_read_company(&state, T).unwrap();
    assert!(
        rec.holds.contains_key("pre-key-1.json"),
        "read from the file"
    );
    // The first write carries the file's record into the store.
    records::update_company(&state, T, |r| r.auto_cleanup = Some(utc(0))).unwrap();
    let doc = shared.read(Space::Company, T).unwrap().unwrap();
    let stored: CompanyRecord = serde_json::from_slice(&doc.body).unwrap();
    assert!(stored.holds.contains_key("pre-key-1.json"));
    assert_eq!(
        stored.cleanups.len(),
        0,
        "no cleanup was recorded by this test"
    );

    // The ledger: read from the file, saved to the store.
    let ledger = super::ledger::Ledger::load(&state, "two-hosts", T);
    assert!(ledger.seen("creds", "").is_some(), "the file's ledger");
    ledger.save(&state, "two-hosts", T).unwrap();
    assert!(shared.read(Space::Ledger, T).unwrap().is_some());

    // The run removed before the upgrade is restored from the state directory's trash.
    let rep = restore_tenant_run(&mut m, &state, T, "20270115T080000Z-1", &restore_opts()).unwrap();
    assert_eq!(rep.restored.len(), 2, "{rep:?}");
    // A run found nowhere names where it looked.
    let err = restore_tenant_run(&mut m, &state, T, "20270115T080000Z-9", &restore_opts())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("in-memory shared state") && err.contains("rows.jsonl"),
        "{err}"
    );
}

#[test]
fn an_upgrading_hosts_runs_from_the_state_directory_are_among_every_hosts_runs() {
    let m = store();
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path().join("state"));
    let me = crate::core::util::hostname();
    // Before the upgrade: this host's runs in the state directory.
    records::update_runs(&state, |r| r.cleanup.last_success = Some(utc(0))).unwrap();
    state.share(m.shared_state(&SharedOptions::default()).unwrap().unwrap());
    let other = host(&m);
    records::update_runs_of(&other.state, "zz-other", |r| {
        r.trigger.last_start = Some(utc(5))
    })
    .unwrap();

    let all = records::read_all_runs(&state).unwrap();
    let hosts: Vec<&str> = all.iter().map(|(h, _)| h.as_str()).collect();
    let mut want = vec![me.as_str(), "zz-other"];
    want.sort();
    assert_eq!(hosts, want);
    let mine = &all.iter().find(|(h, _)| *h == me).unwrap().1;
    assert_eq!(mine.cleanup.last_success, Some(utc(0)), "the file's runs");

    // Once this host writes to the store, the store's copy is the one shown (not both).
    records::update_runs(&state, |r| r.trigger.last_start = Some(utc(9))).unwrap();
    let all = records::read_all_runs(&state).unwrap();
    assert_eq!(all.iter().filter(|(h, _)| *h == me).count(), 1);
    let mine = &all.iter().find(|(h, _)| *h == me).unwrap().1;
    assert_eq!(mine.cleanup.last_success, Some(utc(0)), "carried over");
    assert_eq!(mine.trigger.last_start, Some(utc(9)));
}

#[test]
fn holds_from_before_the_upgrade_survive_another_host_writing_the_record_first() {
    let m = store();
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path().join("state"));
    // Before the upgrade: a hold in this host's state directory only.
    records::update_company(&state, T, |r| {
        r.holds.insert("pre-key-1.json".into(), utc(3600));
    })
    .unwrap();
    state.share(m.shared_state(&SharedOptions::default()).unwrap().unwrap());
    // Another host writes the tenant's record first, with no hold and an earlier end of a
    // second one.
    let other = host(&m);
    records::update_company(&other.state, T, |r| {
        r.auto_cleanup = Some(utc(0));
    })
    .unwrap();

    let rec = records::try_read_company(&state, T).unwrap();
    assert_eq!(
        rec.holds.get("pre-key-1.json"),
        Some(&utc(3600)),
        "still held here"
    );
    assert!(rec.auto_cleanup.is_some(), "the store's record");
    // This host's first write carries the hold into the store, for every host.
    records::update_company(&state, T, |_| {}).unwrap();
    let seen = records::try_read_company(&other.state, T).unwrap();
    assert_eq!(seen.holds.get("pre-key-1.json"), Some(&utc(3600)));
    // A release on the other host is final: the state directory does not bring it back.
    records::update_company(&other.state, T, |r| r.holds.clear()).unwrap();
    assert!(
        records::try_read_company(&state, T)
            .unwrap()
            .holds
            .is_empty()
    );
}

#[test]
fn no_trash_means_nothing_in_the_stores_trash() {
    let mut m = store();
    let a = host(&m);
    let mut s = spec("20270115T080000Z-1");
    s.clean.trash = false;
    let run = clean_tenant(&mut m, T, &a.state, &s);
    assert_eq!(run.removed, 2);
    let mut shared: Box<dyn SharedState> = Box::new(m.state.clone());
    assert!(shared.trash_runs(None).unwrap().is_empty());
}

#[test]
fn restore_refuses_on_any_host_a_tenant_that_re_paired_since_the_run() {
    let mut m = store();
    let (a, b) = (host(&m), host(&m));
    let report = clean_tenant(&mut m, T, &a.state, &spec("20270115T080000Z-1"));
    assert!(report.identity.is_some());
    records::record_cleanup(&a.state, &report, "cleanup", false, true, utc(0)).unwrap();
    // The account re-paired: another WhatsApp identity.
    m.tenant(T).creds = Some(CREDS.replace("5511999999999:7", "5511000000000:3"));
    let before = m.rows(T);
    let err = restore_tenant_run(&mut m, &b.state, T, "20270115T080000Z-1", &restore_opts())
        .unwrap_err()
        .to_string();
    assert!(err.contains("re-paired"), "{err}");
    assert_eq!(m.rows(T), before, "nothing changed");
}

#[test]
fn every_host_lists_and_finds_the_runs_in_the_stores_trash() {
    let mut m = store();
    let (a, b) = (host(&m), host(&m));
    let report = clean_tenant(&mut m, T, &a.state, &spec("20270115T080000Z-1"));
    records::record_cleanup(&a.state, &report, "trigger", false, true, utc(0)).unwrap();

    let runs = crate::core::restore::undoable(&b.state, &[]);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let r = &runs[0];
    assert_eq!(r.run_id, "20270115T080000Z-1");
    assert_eq!(r.companies, [T]);
    assert_eq!(r.files, 2);
    assert_eq!(r.command.as_deref(), Some("trigger"));
    assert_eq!(r.host, Some(crate::core::util::hostname()));
    assert_eq!(r.time, Some(utc(0)));
    assert_eq!(
        crate::core::restore::latest_run(&b.state, T).as_deref(),
        Some("20270115T080000Z-1")
    );
    assert_eq!(
        crate::core::restore::companies_of_run(&b.state, "20270115T080000Z-1", &[]),
        [T]
    );
    // Restored, the run has nothing left to undo.
    restore_tenant_run(&mut m, &b.state, T, "20270115T080000Z-1", &restore_opts()).unwrap();
    assert!(crate::core::restore::undoable(&a.state, &[]).is_empty());
    assert_eq!(crate::core::restore::latest_run(&a.state, T), None);
}

#[test]
fn a_real_run_purges_the_stores_trash_after_its_retention() {
    use crate::core::effects::{EffectsSpec, RunEffects};
    use crate::core::fleet::{FleetSpec, Tenants, clean_fleet};
    let m = store();
    let shared = m.state.clone();
    let a = host(&m);
    let old = super::shared::TrashTag {
        run_id: "20261201T000000Z-1".into(),
        host: "gone-host".into(),
        removed_at: utc(-30 * 86_400),
    };
    let row = super::TrashRow {
        key_type: "pre-key".into(),
        id: "99".into(),
        value: "{}".into(),
        columns: Default::default(),
    };
    shared.insert_trash(T, &old, std::slice::from_ref(&row));
    let mut fleet = Tenants {
        store: Box::new(m),
        store_key: "two-hosts".into(),
        description: "memory".into(),
        remove_legacy: false,
        remove_orphans: false,
    };
    let mut run = |dry_run: bool| {
        let effects = RunEffects::new(
            EffectsSpec {
                command: "cleanup",
                dry_run,
                notify_in_dry_run: false,
                notify: Default::default(),
                ping_url: None,
                metrics_file: None,
            },
            &a.state,
            utc(0),
        );
        let mut clean = spec("20270115T080000Z-2").clean;
        clean.dry_run = dry_run;
        let how = FleetSpec {
            jobs: 1,
            emergency: false,
            trash_retention: Duration::from_secs(7 * 86_400),
            lock_wait: Duration::ZERO,
        };
        let members = vec![crate::core::companies::single(T)];
        clean_fleet(
            &mut fleet,
            &members,
            &a.state,
            &clean,
            how,
            &effects,
            |_| {},
        )
    };
    let mut s: Box<dyn SharedState> = Box::new(shared);
    // A dry run purges nothing.
    run(true);
    assert_eq!(s.trash_rows(T, &old.run_id).unwrap().len(), 1);
    let out = run(false);
    assert_eq!(out.exit, crate::exit::Exit::Ok);
    assert!(s.trash_rows(T, &old.run_id).unwrap().is_empty(), "purged");
    // This run's own rows stay.
    assert_eq!(s.trash_rows(T, "20270115T080000Z-2").unwrap().len(), 2);
}

#[test]
fn a_cleanups_mark_starts_from_the_record_it_read_unless_another_host_wrote_since() {
    let mut m = store();
    let (a, b) = (host(&m), host(&m));
    records::update_company(&a.state, T, |r| r.auto_cleanup = Some(utc(0))).unwrap();
    let report = clean_tenant(&mut m, T, &a.state, &spec("20270115T080000Z-1"));
    let reads = m.state.reads();
    records::record_cleanup(&a.state, &report, "cleanup", false, true, utc(30)).unwrap();
    assert_eq!(
        m.state.reads(),
        reads,
        "the mark starts from the cleanup's own read"
    );

    // Host B holds a row between A's read and A's mark: A's swap fails, reads again, and
    // writes its mark on top of B's hold.
    let report = clean_tenant(&mut m, T, &a.state, &spec("20270115T090000Z-1"));
    let lost = m.state.lost_swaps();
    records::update_company(&b.state, T, |r| {
        r.hold(&["session-5511.0.json".into()], utc(3600), utc(0))
    })
    .unwrap();
    records::record_cleanup(&a.state, &report, "cleanup", false, true, utc(40)).unwrap();
    assert_eq!(m.state.lost_swaps(), lost + 1, "the stale start lost once");
    let rec = records::try_read_company(&b.state, T).unwrap();
    assert!(rec.holds.contains_key("session-5511.0.json"), "{rec:?}");
    assert_eq!(rec.last_cleanup().unwrap().run_id, "20270115T090000Z-1");
    assert!(rec.auto_cleanup.is_some());
}
