use std::path::Path;

use rusqlite::Connection;

use super::*;
use crate::core::rules::{PreKeyRule, Rules};
use crate::core::store::undo::restore_tenant_run;
use crate::core::store::{RestoreOutcome, TrashTarget};

const DAY: Duration = Duration::from_secs(86_400);
use crate::core::store::sqlite::SqliteStore;

const NOW_S: u64 = 1_800_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_S)
}

fn ms_ago(days: u64) -> i64 {
    ((NOW_S - days * 86_400) * 1000) as i64
}

/// The account is active at `at`: a contact's session was used then (idleness is measured
/// against the account's last activity, so a store nobody wrote to keeps its sessions).
fn active_at(path: &Path, at: SystemTime) {
    let ms = at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    Connection::open(path)
        .unwrap()
        .execute(
            "INSERT OR REPLACE INTO signal_keys (type, id, value) VALUES ('session', '5511000000001.0', ?1)",
            [session_value(ms)],
        )
        .unwrap();
}

/// A Baileys SQLite auth store with the develop branch's exact schema.
pub(crate) fn make_db(path: &Path, creds: Option<&str>, rows: &[(&str, &str, String)]) {
    let c = Connection::open(path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS creds (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS signal_keys (type TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (type, id));
         CREATE INDEX IF NOT EXISTS signal_keys_type_idx ON signal_keys(type);",
    )
    .unwrap();
    if let Some(creds) = creds {
        c.execute(
            "INSERT INTO creds (key, value) VALUES ('__creds__', ?1)",
            [creds],
        )
        .unwrap();
    }
    for (t, id, v) in rows {
        c.execute(
            "INSERT INTO signal_keys (type, id, value) VALUES (?1, ?2, ?3)",
            rusqlite::params![t, id, v],
        )
        .unwrap();
    }
}

fn keys_of(path: &Path) -> Vec<(String, String)> {
    let c = Connection::open(path).unwrap();
    let mut s = c
        .prepare("SELECT type, id FROM signal_keys ORDER BY type, id")
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

pub(crate) fn session_value(used_ms: i64) -> String {
    format!(
        r#"{{"_sessions":{{"BQ==":{{"registrationId":1,"currentRatchet":{{}},"indexInfo":{{"baseKey":"BQ==","baseKeyType":1,"closed":-1,"used":{used_ms},"created":{used_ms},"remoteIdentityKey":"BQ=="}},"_chains":{{}}}}}},"version":"v1"}}"#
    )
}

pub(crate) const CREDS: &str = r#"{"me":{"id":"5511999999999:7@s.whatsapp.net","lid":"123456789012345:7@lid"},"account":{"details":{"type":"Buffer","data":"eA=="}},"nextPreKeyId":121,"firstUnuploadedPreKeyId":121}"#;

fn spec(dry_run: bool, now: SystemTime) -> StoreCleanSpec {
    StoreCleanSpec {
        clean: CleanSpec {
            // The spec's keep-50 pre-key rule: exercises pre-key removal on small fixtures (the
            // default server window keeps every id within 812 of nextPreKeyId).
            rules: Rules {
                pre_keys: PreKeyRule::KeepNewest(50),
                ..Rules::NORMAL
            },
            dry_run,
            trash: true,
            verbose: true,
            now,
            run_id: format!("run-{}", secs(now)),
            holder: "test".into(),
            pause_before_remove: None,
            creds_from: None,
        },
        store_key: "sqlite-test".into(),
        remove_legacy: false,
        remove_orphans: false,
        batch: 7,
    }
}

fn fleet_rows() -> Vec<(&'static str, &'static str, String)> {
    let buf =
        r#"{"private":{"type":"Buffer","data":"AQ=="},"public":{"type":"Buffer","data":"Ag=="}}"#;
    let mut rows = vec![
        ("session", "5511888888888.0", session_value(ms_ago(30))),
        ("session", "5511777777777.0", session_value(ms_ago(1))),
        (
            "identity-key",
            "5511888888888.0",
            r#"{"type":"Buffer","data":"BQ=="}"#.to_string(),
        ),
        (
            "identity-key",
            "5511777777777.0",
            r#"{"type":"Buffer","data":"Bg=="}"#.to_string(),
        ),
        (
            "sender-key",
            "120363@g.us::5511666666666::0",
            r#"[{"senderKeyId":1}]"#.to_string(),
        ),
        (
            "sender-key",
            "120363@g.us::123456789012345_1::7",
            r#"[{"senderKeyId":2}]"#.to_string(),
        ),
        (
            "sender-key-memory",
            "120363@g.us",
            r#"{"5511666666666@s.whatsapp.net":true}"#.to_string(),
        ),
        (
            "app-state-sync-key",
            "AAAAAOb5",
            r#"{"keyData":{"type":"Buffer","data":"AA=="}}"#.to_string(),
        ),
        (
            "app-state-sync-version",
            "regular_high",
            r#"{"version":3}"#.to_string(),
        ),
        (
            "lid-mapping",
            "5511888888888",
            r#""123456789012345""#.to_string(),
        ),
        (
            "lid-mapping",
            "123456789012345_reverse",
            r#""5511888888888""#.to_string(),
        ),
        ("tctoken", "123@lid", r#"{"timestamp":"1"}"#.to_string()),
        ("device-list", "5511888888888", r#"["0"]"#.to_string()),
    ];
    for i in 1..=120u32 {
        rows.push((
            "pre-key",
            Box::leak(i.to_string().into_boxed_str()),
            buf.to_string(),
        ));
    }
    rows
}

#[test]
fn sqlite_tenant_gets_the_folder_rules_with_ages_from_values_and_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("company_1.db");
    make_db(&db, Some(CREDS), &fleet_rows());
    let state = StateDir::new(dir.path().join("state"));

    // First run: sessions have an age in their value; sender keys and memories have none yet
    // (the ledger starts watching them now).
    let mut store = SqliteStore::open(&db, false).unwrap();
    let r = clean_tenant(&mut store, "company_1", &state, &spec(false, now()));
    assert_eq!(r.status, Status::Ok, "{:?}", r.error);
    let left = keys_of(&db);
    let has = |t: &str, id: &str| left.iter().any(|(a, b)| a == t && b == id);
    assert!(
        !has("session", "5511888888888.0"),
        "30 days unused: removed"
    );
    assert!(
        !has("identity-key", "5511888888888.0"),
        "goes with its session"
    );
    assert!(has("session", "5511777777777.0") && has("identity-key", "5511777777777.0"));
    assert!(
        has("sender-key", "120363@g.us::5511666666666::0"),
        "ledger age 0: kept"
    );
    // Pre-keys carry no time: first seen now, so fresh; none goes in the first run.
    assert_eq!(left.iter().filter(|(t, _)| t == "pre-key").count(), 120);
    for (t, id) in [
        ("app-state-sync-key", "AAAAAOb5"),
        ("app-state-sync-version", "regular_high"),
        ("lid-mapping", "5511888888888"),
        ("lid-mapping", "123456789012345_reverse"),
        ("tctoken", "123@lid"),
        ("device-list", "5511888888888"),
    ] {
        assert!(has(t, id), "{t} {id} is protected");
    }
    let why = |file: &str| {
        r.decisions
            .iter()
            .find(|d| d.file == file)
            .map(|d| d.reason.clone())
            .unwrap()
    };
    assert!(why("session-5511888888888.0").contains("session's last use"));
    assert!(why("sender-key-120363@g.us::5511666666666::0").contains("janitor's ledger"));
    assert!(r.longest_transaction_us.is_some());

    // Four days later, unchanged: the ledger says 4 days > 3: other members' sender keys go,
    // and our own goes only together with the group's memory.
    let later = now() + 4 * DAY;
    active_at(&db, later);
    let mut store = SqliteStore::open(&db, false).unwrap();
    let r2 = clean_tenant(&mut store, "company_1", &state, &spec(false, later));
    assert_eq!(r2.status, Status::Ok, "{:?}", r2.error);
    let left = keys_of(&db);
    let has = |t: &str, id: &str| left.iter().any(|(a, b)| a == t && b == id);
    assert!(!has("sender-key", "120363@g.us::5511666666666::0"));
    assert!(!has("sender-key-memory", "120363@g.us"));
    assert!(!has("sender-key", "120363@g.us::123456789012345_1::7"));
    // Pre-keys: newest 50 kept, nextPreKeyId-1 = 120 is among them.
    assert_eq!(left.iter().filter(|(t, _)| t == "pre-key").count(), 50);
    assert!(has("pre-key", "120") && has("pre-key", "71") && !has("pre-key", "70"));
    let c = Connection::open(&db).unwrap();
    let creds: String = c
        .query_row("SELECT value FROM creds WHERE key = '__creds__'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(creds, CREDS, "creds are never touched");
}

/// The ledger keeps only the rows without a clock of their own (and the creds' last change):
/// a session dated by its value is not in it, a sender key is.
#[test]
fn the_ledger_records_only_rows_without_a_clock_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("company_1.db");
    make_db(&db, Some(CREDS), &fleet_rows());
    let state = StateDir::new(dir.path().join("state"));
    let s = spec(false, now());
    let mut store = SqliteStore::open(&db, false).unwrap();
    let r = clean_tenant(&mut store, "company_1", &state, &s);
    assert_eq!(r.status, Status::Ok, "{:?}", r.error);
    let ledger = crate::core::store::ledger::Ledger::load(&state, &s.store_key, "company_1");
    assert!(
        ledger.seen("session", "5511777777777.0").is_none(),
        "dated by its value"
    );
    assert!(
        ledger
            .seen("sender-key", "120363@g.us::5511666666666::0")
            .is_some()
    );
    assert!(ledger.seen("pre-key", "1").is_some());
    assert!(ledger.seen("creds", "").is_some(), "the account's activity");
}

#[test]
fn a_dry_run_changes_nothing_and_lists_what_a_real_run_removes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, Some(CREDS), &fleet_rows());
    let before = std::fs::read(&db).unwrap();
    let state = StateDir::new(dir.path().join("state"));
    let mut store = SqliteStore::open(&db, true).unwrap();
    let dry = clean_tenant(&mut store, "a", &state, &spec(true, now()));
    drop(store);
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert!(!state.path().exists(), "a dry run writes no state");
    let mut store = SqliteStore::open(&db, false).unwrap();
    let real = clean_tenant(&mut store, "a", &state, &spec(false, now()));
    assert_eq!(dry.removed_files, real.removed_files);
    assert_eq!(real.removed, 2, "{:?}", real.removed_files);
}

#[test]
fn a_row_rewritten_after_planning_survives_and_trash_restores_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let old = session_value(ms_ago(40));
    make_db(
        &db,
        Some(CREDS),
        &[
            ("session", "1.0", old.clone()),
            ("session", "2.0", session_value(ms_ago(40))),
        ],
    );
    let mut store = SqliteStore::open(&db, false).unwrap();
    let planned = |id: &str, v: &str| Planned {
        key: KeyRef {
            key_type: "session".into(),
            id: id.into(),
        },
        token: Token::of(v, None),
    };
    // The app rewrites 2.0 between planning and removal.
    Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE signal_keys SET value = ?1 WHERE id = '2.0'",
            [session_value(ms_ago(0))],
        )
        .unwrap();
    let mut trashed = Vec::new();
    let out = store
        .remove(
            "a",
            &[
                planned("1.0", &old),
                planned("2.0", &session_value(ms_ago(40))),
                planned("3.0", "x"),
            ],
            &mut TrashTarget::Before(&mut |rows| {
                trashed.extend_from_slice(rows);
                Ok(())
            }),
        )
        .unwrap();
    assert_eq!(
        out,
        vec![
            RemoveOutcome::Removed {
                bytes: old.len() as u64
            },
            RemoveOutcome::Changed,
            RemoveOutcome::Vanished
        ]
    );
    assert_eq!(trashed.len(), 1);
    assert_eq!(trashed[0].value, old);

    // A trash write that fails rolls the whole batch back.
    let err = store.remove(
        "a",
        &[planned("2.0", &session_value(ms_ago(0)))],
        &mut TrashTarget::Before(&mut |_| Err(std::io::Error::other("disk full"))),
    );
    assert!(err.is_err());
    assert_eq!(keys_of(&db).len(), 1, "2.0 still there");

    // Restore: back byte-exact; a row that exists again is not overwritten.
    let mut exists = trashed[0].clone();
    exists.id = "2.0".into();
    let out = store.restore("a", &[trashed[0].clone(), exists]).unwrap();
    assert_eq!(out, vec![RestoreOutcome::Restored, RestoreOutcome::Exists]);
    let c = Connection::open(&db).unwrap();
    let back: String = c
        .query_row("SELECT value FROM signal_keys WHERE id = '1.0'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(back, old);
    let kept: String = c
        .query_row("SELECT value FROM signal_keys WHERE id = '2.0'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(kept, session_value(ms_ago(0)));
}

fn restore_opts(s: &StoreCleanSpec) -> crate::core::store::undo::StoreRestore<'_> {
    crate::core::store::undo::StoreRestore {
        only: &[],
        force: false,
        dry_run: false,
        now: s.clean.now.into(),
        hold: Duration::from_secs(3 * 86_400),
        store_key: &s.store_key,
    }
}

#[test]
fn restore_of_a_run_puts_rows_back_and_refuses_newer_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, Some(CREDS), &fleet_rows());
    let state = StateDir::new(dir.path().join("state"));
    let mut store = SqliteStore::open(&db, false).unwrap();
    clean_tenant(&mut store, "a", &state, &spec(false, now()));
    active_at(&db, now() + 4 * DAY);
    let s = spec(false, now() + 4 * DAY);
    let r = clean_tenant(&mut store, "a", &state, &s);
    assert!(r.removed > 70, "{:?}", r.removed_files);
    // The app writes pre-key 1 again before the restore.
    Connection::open(&db)
        .unwrap()
        .execute(
            "INSERT INTO signal_keys (type, id, value) VALUES ('pre-key', '1', 'new')",
            [],
        )
        .unwrap();
    let rep =
        restore_tenant_run(&mut store, &state, "a", &s.clean.run_id, &restore_opts(&s)).unwrap();
    assert_eq!(rep.restored.len(), r.removed - 1);
    assert_eq!(rep.skipped.len(), 1);
    assert_eq!(rep.skipped[0].file, "pre-key-1");
    let c = Connection::open(&db).unwrap();
    let v: String = c
        .query_row(
            "SELECT value FROM signal_keys WHERE type='pre-key' AND id='1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, "new");
    assert_eq!(
        keys_of(&db).len(),
        fleet_rows().len() - 2 + 1,
        "the first run's two stay gone (and active_at's session stays)"
    );
    // The skipped row stays in the trash; a second restore restores nothing more.
    let again =
        restore_tenant_run(&mut store, &state, "a", &s.clean.run_id, &restore_opts(&s)).unwrap();
    assert!(again.restored.is_empty() && again.skipped.len() == 1);
}

#[test]
fn corrupt_creds_skip_the_tenant_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, Some("{not json"), &fleet_rows());
    let state = StateDir::new(dir.path().join("state"));
    let mut store = SqliteStore::open(&db, false).unwrap();
    let r = clean_tenant(&mut store, "a", &state, &spec(false, now()));
    assert_eq!(r.status, Status::Failed);
    assert_eq!(keys_of(&db).len(), fleet_rows().len());
}

#[test]
fn missing_creds_leave_pre_keys_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, None, &fleet_rows());
    let state = StateDir::new(dir.path().join("state"));
    let mut store = SqliteStore::open(&db, false).unwrap();
    let r = clean_tenant(&mut store, "a", &state, &spec(false, now()));
    assert_eq!(r.status, Status::Ok);
    assert_eq!(r.removed_by_type.get(&Kind::PreKey), None);
}

#[test]
fn not_a_baileys_store_is_a_schema_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE other (x)")
        .unwrap();
    let e = SqliteStore::open(&db, false).err().unwrap();
    assert!(e.is_configuration(), "{e}");
    assert!(e.to_string().contains("no table creds"), "{e}");
}

#[test]
fn session_ages_come_from_the_newest_use() {
    let v = r#"{"_sessions":{"a":{"indexInfo":{"used":1000,"created":5}},"b":{"indexInfo":{"used":3000}}}}"#;
    assert_eq!(session_last_used(v), Some(3000));
    assert_eq!(session_last_used(r#"{"_sessions":{}}"#), None);
    assert_eq!(session_last_used("not json"), None);
}

#[test]
fn odd_ids_never_pose_as_another_type() {
    assert_eq!(
        planner_name("sender-key", "120363@g.us::55::0").as_deref(),
        Some("sender-key-120363@g.us--55--0.json")
    );
    assert_eq!(planner_name("sender-key", "memory-120363@g.us"), None);
    assert_eq!(planner_name("pre", "key-5"), None);
    assert!(is_baileys_type("tctoken") && !is_baileys_type("app") && !is_baileys_type("creds"));
}

/// Issue 20: a store nobody wrote to (the app was down) keeps its sessions; a creds rewrite (a
/// connect) is activity, and from then on idleness counts to it.
#[test]
fn a_store_nobody_wrote_to_keeps_its_sessions_until_the_account_is_active_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let rows = vec![("session", "5511888888888.0", session_value(ms_ago(10)))];
    make_db(&db, Some(CREDS), &rows);
    let state = StateDir::new(dir.path().join("state"));
    let mut store = SqliteStore::open(&db, false).unwrap();
    // Today: used 10 days ago, kept (14 days).
    let r = clean_tenant(&mut store, "a", &state, &spec(false, now()));
    assert_eq!(r.removed, 0);
    // Ten days later, nothing written since: 20 days by the wall clock, 10 days idle.
    let r = clean_tenant(&mut store, "a", &state, &spec(false, now() + 10 * DAY));
    assert_eq!(r.removed, 0, "{:?}", r.decisions);
    let why = &r
        .decisions
        .iter()
        .find(|d| d.file.starts_with("session-"))
        .unwrap()
        .reason;
    assert!(
        why.contains("idle <= 14d (before the account went quiet 10d ago)"),
        "{why}"
    );
    // The app connects (Baileys rewrites creds): the account is active, the session goes.
    Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE creds SET value = ?1 WHERE key = '__creds__'",
            [CREDS.replace("\"me\"", "\"lastAccountSyncTimestamp\":1,\"me\"")],
        )
        .unwrap();
    let r = clean_tenant(&mut store, "a", &state, &spec(false, now() + 11 * DAY));
    assert_eq!(r.removed_files, vec!["session-5511888888888.0"]);
    assert!(r.last_activity.is_some());
}

/// Issue 20 on stores: the emergency rules tighten sessions but keep the same server window as
/// the daily rule; only an explicit keep-N removes pre-keys the server may still hand out.
#[test]
fn store_emergency_rules_keep_the_server_window_unless_keep_n_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db, Some(CREDS), &fleet_rows());
    let state = StateDir::new(dir.path().join("state"));
    // A first real run starts the ledger (pre-keys carry no clock), with the server window.
    let daily = StoreCleanSpec {
        clean: CleanSpec {
            rules: Rules::NORMAL,
            ..spec(false, now()).clean
        },
        ..spec(false, now())
    };
    let mut store = SqliteStore::open(&db, false).unwrap();
    let r = clean_tenant(&mut store, "a", &state, &daily);
    assert_eq!(r.removed_by_type.get(&Kind::PreKey), None);
    drop(store);
    active_at(&db, now() + 4 * DAY);
    let mut store = SqliteStore::open(&db, true).unwrap();
    let with = |rules: Rules| StoreCleanSpec {
        clean: CleanSpec {
            rules,
            ..spec(true, now() + 4 * DAY).clean
        },
        ..spec(true, now())
    };
    // All 120 pre-keys (nextPreKeyId 121) are in the server window: reserved, never removed.
    let r = clean_tenant(&mut store, "a", &state, &with(Rules::EMERGENCY));
    assert_eq!(r.reserved_before, 120);
    assert_eq!(
        r.removed_by_type.get(&Kind::PreKey),
        None,
        "{:?}",
        r.removed_files
    );
    assert!(
        r.removed_by_type.contains_key(&Kind::SenderKey),
        "sender keys go"
    );
    assert_eq!(r.counted_after(), r.files_after - 120);
    let keep30 = Rules {
        pre_keys: PreKeyRule::KeepNewest(30),
        ..Rules::EMERGENCY
    };
    let r = clean_tenant(&mut store, "a", &state, &with(keep30));
    assert_eq!(r.removed_by_type.get(&Kind::PreKey), Some(&90));
    assert_eq!(r.reserved_removed(), 90);
    assert_eq!(r.reserved_after, 30);
}

/// Broke: per-type ages took `updated_at` over a session's own `indexInfo.used` even when no
/// trigger maintains `updated_at`, so a session used minutes ago went as "20d old".
#[test]
fn a_session_used_recently_is_young_whatever_a_stale_updated_at_says() {
    use crate::core::store::memory::MemoryStore;
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path().join("state"));
    let stale = (ms_ago(20) * 1000, ms_ago(0));
    let mut store = MemoryStore::new();
    store.tenant("a").creds = Some(CREDS.into());
    // Inserted 20 days ago, used a minute before now.
    store.put(
        "a",
        "session",
        "1.0",
        &session_value(ms_ago(0) - 60_000),
        Some(stale.0),
    );
    // Inserted and last used 20 days ago: goes.
    store.put(
        "a",
        "session",
        "2.0",
        &session_value(ms_ago(20)),
        Some(stale.0),
    );
    // updated_at newer than the value's use: the column wins.
    store.put(
        "a",
        "session",
        "3.0",
        &session_value(ms_ago(20)),
        Some(stale.1 * 1000),
    );
    let r = clean_tenant(&mut store, "a", &state, &spec(false, now()));
    assert_eq!(r.removed_files, ["session-2.0"], "{:?}", r.decisions);
    let why = |f: &str| {
        r.decisions
            .iter()
            .find(|d| d.file == f)
            .map(|d| d.reason.clone())
            .unwrap()
    };
    assert!(
        why("session-1.0").contains("session's last use"),
        "{}",
        why("session-1.0")
    );
    assert!(
        why("session-3.0").contains("updated_at"),
        "{}",
        why("session-3.0")
    );
}

fn orphan_spec(now: SystemTime) -> StoreCleanSpec {
    StoreCleanSpec {
        remove_orphans: true,
        ..spec(false, now)
    }
}

/// Broke: `--remove-orphans` with `--creds` at the wrong database removed every key of live
/// instances, a key written seconds before included.
#[test]
fn an_orphan_whose_keys_still_change_is_never_removed() {
    use crate::core::store::memory::MemoryStore;
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path().join("state"));
    let mut store = MemoryStore::new();
    store.tenant("a").orphan = Some("no Instance row".into());
    store.put("a", "session", "1.0", &session_value(ms_ago(0)), None);
    store.put(
        "a",
        "pre-key",
        "1",
        r#"{"private":{"type":"Buffer","data":"AQ=="}}"#,
        None,
    );
    let r = clean_tenant(&mut store, "a", &state, &orphan_spec(now()));
    assert_eq!(r.removed, 0);
    assert!(
        r.skipped_files[0].reason.contains("may be live"),
        "{:?}",
        r.skipped_files
    );
    // Unchanged for the quiet period: it goes.
    store.put("a", "session", "1.0", &session_value(ms_ago(20)), None);
    let later = now() + ORPHAN_QUIET + DAY;
    let r = clean_tenant(&mut store, "a", &state, &orphan_spec(later));
    assert_eq!(r.removed, 2, "{:?}", r.skipped_files);
}

/// Broke: with every instance misread as orphaned, `--remove-orphans` removed them all.
#[test]
fn most_tenants_orphaned_is_refused() {
    use crate::core::store::memory::MemoryStore;
    let mut store = MemoryStore::new();
    for t in ["a", "b", "c"] {
        store.tenant(t).orphan = Some("no Instance row".into());
    }
    store.tenant("d");
    let all: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
    let err = orphan_majority(&mut store, &all).unwrap_err();
    assert!(err.contains("3 of 4"), "{err}");
    store.tenant("b").orphan = None;
    store.tenant("c").orphan = None;
    assert!(orphan_majority(&mut store, &all).is_ok());
}

/// Broke: a `*:auth` key pattern adopted another application's hashes and removed their
/// `session-*` fields.
#[test]
fn a_tenant_without_creds_or_signal_values_is_left_alone() {
    use crate::core::store::memory::MemoryStore;
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path().join("state"));
    let mut store = MemoryStore::new();
    for i in 0..5 {
        store.put(
            "webapp",
            "session",
            &format!("{i}.0"),
            "user=42; expires=1",
            None,
        );
    }
    store.put("webapp", "pre-key", "1", "x", None);
    let later = now() + 90 * DAY;
    let r = clean_tenant(&mut store, "webapp", &state, &spec(false, now()));
    assert_eq!(r.removed, 0);
    let r = clean_tenant(&mut store, "webapp", &state, &spec(false, later));
    assert_eq!(r.removed, 0, "{:?}", r.removed_files);
    assert!(
        r.skipped_files[0]
            .reason
            .contains("not a Baileys auth store"),
        "{:?}",
        r.skipped_files
    );
    assert_eq!(store.rows("webapp").len(), 6);
}
