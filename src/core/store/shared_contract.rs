//! What every [`SharedState`] promises, checked the same way on each backend (the in-memory
//! one first, `memory_state`; PostgreSQL, MySQL, Redis and SQLite call [`check`] from their
//! own tests).
//!
//! `make` opens one more connection ("host") to ONE shared state that starts empty and that only
//! this check uses (a schema, key prefix or file of the test's own): `check` calls it several
//! times and expects every handle to see the same state.

use chrono::{DateTime, Utc};

use super::shared::{SharedState, Space, TrashRun, TrashTag};
use super::{KeyRef, TrashRow};

/// Runs every check; panics with what broke.
pub fn check(make: &mut dyn FnMut() -> Box<dyn SharedState>) {
    documents(make);
    lazy_swaps(make);
    racing_writers(make);
    trash(make);
}

fn at(s: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_800_000_000 + s, 0).unwrap()
}

/// Read of a missing document, create, stale and current swaps, spaces apart, list.
fn documents(make: &mut dyn FnMut() -> Box<dyn SharedState>) {
    let mut a = make();
    assert!(!a.describe().is_empty(), "describe says where the state is");
    a.exposure()
        .expect("who else can read the state can be told");
    assert_eq!(a.read(Space::Company, "company_1").unwrap(), None);
    assert!(a.list(Space::Company).unwrap().is_empty());

    // `None` creates; a second create loses and changes nothing.
    assert!(
        a.swap(Space::Company, "company_1", None, b"{\"v\":1}")
            .unwrap()
    );
    let first = a.read(Space::Company, "company_1").unwrap().unwrap();
    assert_eq!(first.body, b"{\"v\":1}");
    assert!(
        !a.swap(Space::Company, "company_1", None, b"{\"v\":9}")
            .unwrap()
    );
    // A stale version loses and changes nothing.
    assert!(
        !a.swap(
            Space::Company,
            "company_1",
            Some(first.version + 7),
            b"{\"v\":9}"
        )
        .unwrap()
    );
    assert_eq!(a.read(Space::Company, "company_1").unwrap().unwrap(), first);
    // The current version wins and moves the version on.
    assert!(
        a.swap(
            Space::Company,
            "company_1",
            Some(first.version),
            b"{\"v\":2}"
        )
        .unwrap()
    );
    let second = a.read(Space::Company, "company_1").unwrap().unwrap();
    assert_eq!(second.body, b"{\"v\":2}");
    assert_ne!(second.version, first.version);
    // The version it replaced is stale now.
    assert!(
        !a.swap(Space::Company, "company_1", Some(first.version), b"{}")
            .unwrap()
    );

    // Another connection sees it; spaces are apart (same name, other space: no document).
    let mut b = make();
    assert_eq!(
        b.read(Space::Company, "company_1").unwrap().unwrap(),
        second
    );
    assert_eq!(b.read(Space::Runs, "company_1").unwrap(), None);
    assert_eq!(b.read(Space::Ledger, "company_1").unwrap(), None);
    assert!(b.swap(Space::Runs, "host-a", None, b"{\"a\":1}").unwrap());
    assert!(b.swap(Space::Runs, "host-b", None, b"{\"b\":1}").unwrap());
    // Ledgers are JSON lines, not one JSON value: bodies are bytes, kept as they are.
    let ledger = b"{\"t\":\"pre-key\"}\n{\"t\":\"session\"}\n".to_vec();
    assert!(b.swap(Space::Ledger, "company_1", None, &ledger).unwrap());
    assert_eq!(
        a.read(Space::Ledger, "company_1").unwrap().unwrap().body,
        ledger
    );
    let mut runs = a.list(Space::Runs).unwrap();
    runs.sort();
    assert_eq!(
        runs,
        vec![
            ("host-a".to_owned(), b"{\"a\":1}".to_vec()),
            ("host-b".to_owned(), b"{\"b\":1}".to_vec())
        ]
    );
    assert_eq!(
        a.list(Space::Company).unwrap(),
        vec![("company_1".to_owned(), b"{\"v\":2}".to_vec())]
    );
    // A name of any text (tenant ids come from the app) is kept as it is.
    let odd = "tenant 'x\"; DROP TABLE docs; --/ü";
    assert!(a.swap(Space::Company, odd, None, b"{}").unwrap());
    assert_eq!(b.read(Space::Company, odd).unwrap().unwrap().body, b"{}");

    // Several at once: in the order asked, missing ones `None`, each as `read` gives it.
    let asked = [
        (Space::Ledger, "company_1"),
        (Space::Company, "company_2"),
        (Space::Company, odd),
        (Space::Company, "company_1"),
        (Space::Runs, "company_1"),
    ];
    let one_by_one: Vec<_> = asked
        .iter()
        .map(|(space, name)| b.read(*space, name).unwrap())
        .collect();
    assert_eq!(b.read_many(&asked).unwrap(), one_by_one);
    assert_eq!(one_by_one.iter().filter(|d| d.is_some()).count(), 3);
    assert!(b.read_many(&[]).unwrap().is_empty());
}

/// `swap_lazy` is the same compare-and-swap (only its durability may differ): create, lose on
/// a stale or missing version, win on the current one, seen by another connection, and
/// interleaved with durable swaps of the same document.
fn lazy_swaps(make: &mut dyn FnMut() -> Box<dyn SharedState>) {
    let (mut a, mut b) = (make(), make());
    let name = "lazy_company";
    assert!(!a.swap_lazy(Space::Ledger, name, Some(1), b"x").unwrap());
    assert_eq!(a.read(Space::Ledger, name).unwrap(), None);
    assert!(a.swap_lazy(Space::Ledger, name, None, b"one").unwrap());
    assert!(!a.swap_lazy(Space::Ledger, name, None, b"two").unwrap());
    let first = b.read(Space::Ledger, name).unwrap().unwrap();
    assert_eq!(first.body, b"one");
    assert!(
        !b.swap_lazy(Space::Ledger, name, Some(first.version + 3), b"x")
            .unwrap()
    );
    assert!(
        b.swap_lazy(Space::Ledger, name, Some(first.version), b"two")
            .unwrap()
    );
    let second = a.read(Space::Ledger, name).unwrap().unwrap();
    assert_eq!(second.body, b"two");
    assert_ne!(second.version, first.version);
    assert!(
        !a.swap(Space::Ledger, name, Some(first.version), b"x")
            .unwrap()
    );
    assert!(
        a.swap(Space::Ledger, name, Some(second.version), b"three")
            .unwrap()
    );
    let third = b.read(Space::Ledger, name).unwrap().unwrap();
    assert!(
        !b.swap_lazy(Space::Ledger, name, Some(second.version), b"x")
            .unwrap()
    );
    assert!(
        b.swap_lazy(Space::Ledger, name, Some(third.version), b"four")
            .unwrap()
    );
    assert_eq!(a.read(Space::Ledger, name).unwrap().unwrap().body, b"four");
    assert_eq!(
        a.read(Space::Company, name).unwrap(),
        None,
        "spaces stay apart"
    );
}

/// Two connections that both read version v and write: one wins, the other gets `false`; and
/// two threads incrementing a counter with read-swap-retry lose no increment.
fn racing_writers(make: &mut dyn FnMut() -> Box<dyn SharedState>) {
    let mut a = make();
    let mut b = make();
    assert!(a.swap(Space::Company, "race", None, b"0").unwrap());
    let va = a.read(Space::Company, "race").unwrap().unwrap().version;
    let vb = b.read(Space::Company, "race").unwrap().unwrap().version;
    assert_eq!(va, vb);
    assert!(a.swap(Space::Company, "race", Some(va), b"a").unwrap());
    assert!(!b.swap(Space::Company, "race", Some(vb), b"b").unwrap());
    assert_eq!(b.read(Space::Company, "race").unwrap().unwrap().body, b"a");

    const EACH: u32 = 25;
    let increment = |mut s: Box<dyn SharedState>| {
        for _ in 0..EACH {
            loop {
                let doc = s.read(Space::Company, "counter").unwrap();
                let (n, expected) = match &doc {
                    Some(d) => (
                        std::str::from_utf8(&d.body)
                            .unwrap()
                            .parse::<u32>()
                            .unwrap(),
                        Some(d.version),
                    ),
                    None => (0, None),
                };
                let body = (n + 1).to_string();
                if s.swap(Space::Company, "counter", expected, body.as_bytes())
                    .unwrap()
                {
                    break;
                }
            }
        }
    };
    let (x, y) = (make(), make());
    std::thread::scope(|scope| {
        scope.spawn(|| increment(x));
        scope.spawn(|| increment(y));
    });
    let n = a.read(Space::Company, "counter").unwrap().unwrap().body;
    assert_eq!(n, (2 * EACH).to_string().as_bytes(), "an update was lost");
}

fn row(key_type: &str, id: &str, value: &str, columns: &[(&str, Option<i64>)]) -> TrashRow {
    TrashRow {
        key_type: key_type.into(),
        id: id.into(),
        value: value.into(),
        columns: columns.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
    }
}

fn sorted(mut rows: Vec<TrashRow>) -> Vec<TrashRow> {
    rows.sort_by_key(TrashRow::key);
    rows
}

/// put_trash / trash_runs / trash_rows / mark_restored / purge; rows keep their exact bytes
/// and columns.
fn trash(make: &mut dyn FnMut() -> Box<dyn SharedState>) {
    let mut a = make();
    let mut b = make();
    let tag = |run: &str, host: &str, s: i64| TrashTag {
        run_id: run.into(),
        host: host.into(),
        removed_at: at(s),
    };
    // Exact bytes: escapes, quotes, non-ASCII, a NUL-free but long value, JSON as text.
    let big = "x".repeat(70_000);
    let old_rows = vec![
        row(
            "session",
            "5511999999999.0",
            r#"{"_sessions":{"a\"b":{"used":1.5e12}},"v":"\\u00e9 ü 🙂"}"#,
            &[("updated_at", Some(1_700_000_000_123_456))],
        ),
        row(
            "pre-key",
            "17",
            r#"{"private":{"type":"Buffer","data":"AAEC"}}"#,
            &[
                ("created_at", None),
                ("updated_at", Some(1_700_000_000_000_001)),
            ],
        ),
        row("sender-key", "120363@g.us::5511::0", &big, &[]),
    ];
    a.put_trash("company_1", &tag("run-old", "host-a", 0), &old_rows)
        .unwrap();
    let new_rows = vec![row("session", "5511888888888.0", "{}", &[])];
    b.put_trash("company_1", &tag("run-new", "host-b", 100), &new_rows)
        .unwrap();
    let other = vec![row("pre-key", "1", "{\"k\":1}", &[])];
    b.put_trash("company_2", &tag("run-old", "host-a", 0), &other)
        .unwrap();

    // Rows come back exactly, from any connection; an unknown run has none.
    let got: Vec<TrashRow> = b
        .trash_rows("company_1", "run-old")
        .unwrap()
        .into_iter()
        .map(|t| {
            assert!(!t.restored);
            t.row
        })
        .collect();
    assert_eq!(sorted(got), sorted(old_rows.clone()));
    assert!(a.trash_rows("company_1", "no-such-run").unwrap().is_empty());
    assert!(a.trash_rows("company_9", "run-old").unwrap().is_empty());

    // Runs: newest first, with host and time; rows and bytes of what is still in the trash.
    let bytes: u64 = old_rows.iter().map(|r| r.value.len() as u64).sum();
    let runs = a.trash_runs(Some("company_1")).unwrap();
    assert_eq!(
        runs,
        vec![
            TrashRun {
                tenant: "company_1".into(),
                run_id: "run-new".into(),
                host: "host-b".into(),
                removed_at: at(100),
                rows: 1,
                bytes: 2,
                restored: 0,
            },
            TrashRun {
                tenant: "company_1".into(),
                run_id: "run-old".into(),
                host: "host-a".into(),
                removed_at: at(0),
                rows: 3,
                bytes,
                restored: 0,
            },
        ]
    );
    let all = a.trash_runs(None).unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[0].run_id, "run-new");
    assert!(all.iter().any(|r| r.tenant == "company_2"));

    // Restored rows stay in the trash, marked; the run counts them apart.
    let pre_key = KeyRef {
        key_type: "pre-key".into(),
        id: "17".into(),
    };
    a.mark_restored("company_1", "run-old", std::slice::from_ref(&pre_key))
        .unwrap();
    let rows = b.trash_rows("company_1", "run-old").unwrap();
    assert_eq!(rows.len(), 3);
    for t in &rows {
        assert_eq!(t.restored, t.row.key() == pre_key, "{:?}", t.row.key());
    }
    // Same key, other tenant: untouched.
    assert!(
        b.trash_rows("company_2", "run-old")
            .unwrap()
            .iter()
            .all(|t| !t.restored)
    );
    let run = b
        .trash_runs(Some("company_1"))
        .unwrap()
        .into_iter()
        .find(|r| r.run_id == "run-old")
        .unwrap();
    assert_eq!((run.rows, run.restored), (2, 1));
    let pre_key_len = old_rows[1].value.len() as u64;
    assert_eq!(run.bytes, bytes - pre_key_len);
    // Marking again (a second restore) is harmless.
    a.mark_restored("company_1", "run-old", &[pre_key]).unwrap();

    // Purge: runs removed before the cut go (restored rows too); newer ones stay.
    let (runs, rows) = a.purge(at(50)).unwrap();
    assert_eq!((runs, rows), (2, 4), "run-old of two tenants, 3 + 1 rows");
    assert!(b.trash_rows("company_1", "run-old").unwrap().is_empty());
    assert!(b.trash_rows("company_2", "run-old").unwrap().is_empty());
    assert_eq!(b.trash_rows("company_1", "run-new").unwrap().len(), 1);
    assert_eq!(a.purge(at(50)).unwrap(), (0, 0));
    let left = b.trash_runs(None).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].run_id, "run-new");
}
