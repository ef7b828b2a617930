//! The one-statement removal against a real PostgreSQL (`BAILEYS_JANITOR_TEST_PG`, default
//! postgres://postgres@127.0.0.1:5432/postgres), in a database of each test's own (dropped on
//! drop): a row rewritten after planning, or while the statement runs, is kept; the trash gets
//! the exact text of each row deleted. Without a server the tests say so and pass, unless
//! REQUIRE_SERVICES=1.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chrono::DateTime;
use postgres::{Client, NoTls};

use super::PgStore;
use crate::core::store::shared::{SharedOptions, SharedState, TrashTag, TrashTarget};
use crate::core::store::spec::Layout;
use crate::core::store::{KeyRef, Planned, RemoveOutcome, Store, Token};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The test server's administrative URL (`BAILEYS_JANITOR_TEST_PG`).
pub(super) fn admin_url() -> String {
    std::env::var("BAILEYS_JANITOR_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of the test's own, `<prefix>_<pid>_<n>`, made through the returned admin
/// connection (the caller drops it). `None` without a server, unless REQUIRE_SERVICES=1: then
/// the test fails.
pub(super) fn create_database(prefix: &str) -> Option<(Client, String)> {
    let mut admin = match Client::connect(&admin_url(), NoTls) {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var("REQUIRE_SERVICES").map_or(true, |v| v != "1"),
                "REQUIRE_SERVICES=1 but no PostgreSQL answers: {e}"
            );
            eprintln!("SKIPPED: no PostgreSQL ({e})");
            return None;
        }
    };
    let name = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    Some((admin, name))
}

const T: &str = "acme";

struct Scratch {
    admin: Client,
    name: String,
    client: Client,
    url: String,
}

impl Scratch {
    /// The per-type tables as the bench makes them: `jsonb` values, timestamps maintained.
    fn new() -> Option<Scratch> {
        Scratch::with_updated_at("TIMESTAMPTZ")
    }

    /// The same tables, `updated_at` of type `updated_type`.
    fn with_updated_at(updated_type: &str) -> Option<Scratch> {
        let (admin, name) = create_database("bj_remove")?;
        let url = format!("{}/{name}", admin_url().rsplit_once('/').unwrap().0);
        let mut client = Client::connect(&url, NoTls).unwrap();
        client
            .batch_execute(&format!(
                "CREATE TABLE whatsapp_auth (company_id TEXT PRIMARY KEY, creds JSONB NOT NULL);
                 CREATE TABLE whatsapp_keys (company_id TEXT NOT NULL, key_type TEXT NOT NULL,
                   key_id TEXT NOT NULL, value JSONB NOT NULL, created_at TIMESTAMPTZ DEFAULT now(),
                   updated_at {updated_type} DEFAULT now(), expires_at TIMESTAMPTZ,
                   PRIMARY KEY (company_id, key_type, key_id));"
            ))
            .unwrap();
        Some(Scratch {
            admin,
            name,
            client,
            url,
        })
    }

    fn store(&self) -> PgStore {
        PgStore::connect(
            &self.url,
            &Layout::preset("per-type").unwrap(),
            "remove-test",
        )
        .unwrap()
    }

    fn put(&mut self, key_type: &str, id: &str, value: &str) {
        self.client
            .execute(
                "INSERT INTO whatsapp_keys (company_id, key_type, key_id, value, updated_at) \
                 VALUES ($1, $2, $3, $4::text::jsonb, now() - interval '40 days')",
                &[&T, &key_type, &id, &value],
            )
            .unwrap();
    }

    fn ids(&mut self) -> Vec<String> {
        self.client
            .query(
                "SELECT key_type || '/' || key_id FROM whatsapp_keys ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// The row's stored size (`pg_column_size`): the bytes its removal reports.
    fn stored(&mut self, id: &str) -> u64 {
        let n: i32 = self
            .client
            .query_one(
                "SELECT pg_column_size(value) FROM whatsapp_keys WHERE key_id = $1",
                &[&id],
            )
            .unwrap()
            .get(0);
        n as u64
    }

    fn value(&mut self, id: &str) -> Option<String> {
        self.client
            .query(
                "SELECT value::text FROM whatsapp_keys WHERE key_id = $1",
                &[&id],
            )
            .unwrap()
            .first()
            .map(|r| r.get(0))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.admin.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// The tenant's rows planned as a real run plans them: tokens of what the scan read.
fn plan(store: &mut dyn Store) -> Vec<Planned> {
    let md5 = store.compares_md5();
    let mut out = Vec::new();
    store
        .scan(T, &mut |row| {
            out.push(Planned {
                key: KeyRef {
                    key_type: row.key_type.into(),
                    id: row.id.into(),
                },
                token: Token::for_store(row.value, row.updated_at_us, md5),
            })
        })
        .unwrap();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn tag() -> TrashTag {
    TrashTag {
        run_id: "run-1".into(),
        host: "host-a".into(),
        removed_at: DateTime::from_timestamp_micros(1_800_000_000_000_000).unwrap(),
    }
}

fn shared(store: &PgStore) -> Box<dyn SharedState> {
    store
        .shared_state(&SharedOptions::default())
        .unwrap()
        .unwrap()
}

#[test]
fn rows_changed_after_planning_are_kept_and_the_rest_go_to_the_trash_as_they_were() {
    let Some(mut s) = Scratch::new() else { return };
    let odd = r#"{"k": "ü\u00e9 ", "n": 1.50,  "a": []}"#;
    s.put("session", "a.0", r#"{"v": 1}"#);
    s.put("session", "b.0", r#"{"v": 1}"#);
    s.put("session", "c.0", odd);
    s.put("session", "d.0", r#"{"v": 1}"#);
    s.put("session", "e.0", r#"{"v": 1}"#);
    let mut store = s.store();
    let mut st = shared(&store);
    let batch = plan(&mut store);
    assert!(batch.iter().all(|p| p.token.md5.is_some()));
    // After planning: a's value only, b's updated_at only; d is gone; e is deleted and
    // written again with a new updated_at.
    s.client
        .batch_execute(
            "UPDATE whatsapp_keys SET value = '{\"v\": 2}' WHERE key_id = 'a.0';
             UPDATE whatsapp_keys SET updated_at = updated_at + interval '1 microsecond' WHERE key_id = 'b.0';
             DELETE FROM whatsapp_keys WHERE key_id = 'd.0';
             DELETE FROM whatsapp_keys WHERE key_id = 'e.0';
             INSERT INTO whatsapp_keys (company_id, key_type, key_id, value) VALUES ('acme', 'session', 'e.0', '{\"v\": 1}');",
        )
        .unwrap();
    let expected_c = s.value("c.0").unwrap();
    let stored_c = s.stored("c.0");
    let out = store
        .remove(T, &batch, &mut TrashTarget::InStore(&tag()))
        .unwrap();
    assert_eq!(
        out,
        [
            RemoveOutcome::Changed,
            RemoveOutcome::Changed,
            RemoveOutcome::Removed { bytes: stored_c },
            RemoveOutcome::Vanished,
            RemoveOutcome::Changed,
        ]
    );
    assert_eq!(s.ids(), ["session/a.0", "session/b.0", "session/e.0"]);
    let trashed = st.trash_rows(T, "run-1").unwrap();
    assert_eq!(trashed.len(), 1);
    let row = &trashed[0].row;
    assert_eq!(
        (row.id.as_str(), row.value.as_str()),
        ("c.0", expected_c.as_str())
    );
    assert_eq!(
        row.columns.keys().collect::<Vec<_>>(),
        ["created_at", "expires_at", "updated_at"]
    );
    assert_eq!(row.columns["expires_at"], None);
    assert_eq!(
        Some(row.columns["updated_at"]),
        Some(batch[2].token.updated_at_us)
    );
    // Put back exactly, columns included: planned again, it has the same token.
    store.restore(T, std::slice::from_ref(row)).unwrap();
    let again = plan(&mut store);
    assert_eq!(again[2].key, batch[2].key);
    assert_eq!(again[2].token, batch[2].token);
    // Without a trash (trash off), the same statement without the insert.
    let out = store
        .remove(T, &again[2..3], &mut TrashTarget::Nowhere)
        .unwrap();
    assert!(matches!(out[0], RemoveOutcome::Removed { .. }));
    assert_eq!(s.ids(), ["session/a.0", "session/b.0", "session/e.0"]);
    assert_eq!(st.trash_rows(T, "run-1").unwrap().len(), 1);
}

/// The app rewrites a planned row in a transaction that is still open when the removal starts:
/// the statement waits for it, sees the new version, and keeps the row.
fn concurrent_rewrite_is_kept(update: &str) {
    let Some(mut s) = Scratch::new() else { return };
    s.put("session", "a.0", r#"{"v": 1}"#);
    let stored = s.stored("a.0");
    s.put("session", "b.0", r#"{"v": 1}"#);
    let mut store = s.store();
    let _st = shared(&store);
    let batch = plan(&mut store);
    let mut app = Client::connect(&s.url, NoTls).unwrap();
    let mut tx = app.transaction().unwrap();
    tx.batch_execute(update).unwrap();
    let out = std::thread::scope(|scope| {
        let removing = scope.spawn(|| store.remove(T, &batch, &mut TrashTarget::InStore(&tag())));
        // Until the removal waits for the app's row lock: it has read the old version.
        let mut watch = Client::connect(&s.url, NoTls).unwrap();
        let started = Instant::now();
        loop {
            let waiting: i64 = watch
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'remove-test' \
                     AND wait_event_type = 'Lock'",
                    &[],
                )
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_millis(1500),
                "the removal never waited for the app"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        tx.commit().unwrap();
        removing.join().unwrap().unwrap()
    });
    assert_eq!(
        out,
        [
            RemoveOutcome::Changed,
            RemoveOutcome::Removed { bytes: stored }
        ],
        "{update}"
    );
    assert_eq!(s.ids(), ["session/a.0"], "{update}");
}

#[test]
fn a_value_rewritten_while_the_removal_runs_is_kept() {
    concurrent_rewrite_is_kept(
        "UPDATE whatsapp_keys SET value = '{\"v\": 2}' WHERE key_id = 'a.0'",
    );
}

#[test]
fn an_updated_at_moved_while_the_removal_runs_is_kept() {
    concurrent_rewrite_is_kept(
        "UPDATE whatsapp_keys SET updated_at = updated_at + interval '1 microsecond' WHERE key_id = 'a.0'",
    );
}

#[test]
fn removal_batches_commit_without_waiting_for_the_flush_and_restores_do_wait() {
    let Some(mut s) = Scratch::new() else { return };
    // What each write to the table ran under, as the server saw it.
    s.client
        .batch_execute(
            "CREATE TABLE seen (n serial, op text, sync text);
             CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
               INSERT INTO seen (op, sync) VALUES (TG_OP, current_setting('synchronous_commit'));
               RETURN COALESCE(NEW, OLD); END $$;
             CREATE TRIGGER note BEFORE INSERT OR DELETE ON whatsapp_keys
               FOR EACH ROW EXECUTE FUNCTION note();",
        )
        .unwrap();
    s.put("session", "a.0", r#"{"v": 1}"#);
    let mut store = s.store();
    let mut st = shared(&store);
    let batch = plan(&mut store);
    store
        .remove(T, &batch, &mut TrashTarget::InStore(&tag()))
        .unwrap();
    let rows: Vec<_> = st
        .trash_rows(T, "run-1")
        .unwrap()
        .into_iter()
        .map(|r| r.row)
        .collect();
    store.restore(T, &rows).unwrap();
    let seen: Vec<(String, String)> = s
        .client
        .query("SELECT op, sync FROM seen ORDER BY n", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        seen,
        [
            ("INSERT".into(), "on".into()),
            ("DELETE".into(), "off".into()),
            ("INSERT".into(), "on".into())
        ]
    );
}

#[test]
fn a_key_removed_again_under_the_same_run_replaces_its_trash_row() {
    let Some(mut s) = Scratch::new() else { return };
    s.put("session", "a.0", r#"{"v": 1}"#);
    s.put("session", "b.0", r#"{"v": 1}"#);
    let mut store = s.store();
    let mut st = shared(&store);
    let batch = plan(&mut store);
    let out = store
        .remove(T, &batch[..1], &mut TrashTarget::InStore(&tag()))
        .unwrap();
    assert!(matches!(out[0], RemoveOutcome::Removed { .. }));
    // The app writes the key again; the same run (a retried batch, a run id reused) removes it
    // again with another: the plain trash insert meets the first row, the batch runs again
    // with the insert that replaces it, and nothing is lost or left half done.
    s.put("session", "a.0", r#"{"v": 2}"#);
    let again = plan(&mut store);
    let out = store
        .remove(T, &again, &mut TrashTarget::InStore(&tag()))
        .unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, RemoveOutcome::Removed { .. })),
        "{out:?}"
    );
    assert!(s.ids().is_empty());
    let mut trashed: Vec<(String, String)> = st
        .trash_rows(T, "run-1")
        .unwrap()
        .into_iter()
        .map(|t| (t.row.id, t.row.value))
        .collect();
    trashed.sort();
    assert_eq!(
        trashed,
        [
            ("a.0".to_owned(), r#"{"v": 2}"#.to_owned()),
            ("b.0".to_owned(), r#"{"v": 1}"#.to_owned())
        ]
    );
}

#[test]
fn a_workers_handle_is_a_connection_of_its_own_with_the_same_locks_and_trash() {
    let Some(mut s) = Scratch::new() else { return };
    s.put("session", "a.0", r#"{"v": 1}"#);
    let mut first = s.store();
    let st = shared(&first);
    let mut second = first
        .another()
        .unwrap()
        .expect("PostgreSQL gives workers handles");
    // The tenant's lock is the server's: the other worker's connection finds it busy, and
    // cannot take it until the first lets go.
    assert_eq!(
        first.lock_tenant(T).unwrap(),
        super::super::TenantLock::Acquired
    );
    assert!(matches!(
        second.lock_tenant(T).unwrap(),
        super::super::TenantLock::Busy(_)
    ));
    first.unlock_tenant(T);
    assert_eq!(
        second.lock_tenant(T).unwrap(),
        super::super::TenantLock::Acquired
    );
    // Its removals write the same in-store trash, on its own connection, and the state's
    // other handle reads them.
    let mut st2 = st
        .another()
        .unwrap()
        .expect("and handles on the shared state");
    let batch = plan(second.as_mut());
    let out = second
        .remove(T, &batch, &mut TrashTarget::InStore(&tag()))
        .unwrap();
    assert!(matches!(out[0], RemoveOutcome::Removed { .. }), "{out:?}");
    second.unlock_tenant(T);
    assert!(s.ids().is_empty());
    let trashed = st2.trash_rows(T, "run-1").unwrap();
    assert_eq!(trashed.len(), 1);
    assert_eq!(trashed[0].row.value, r#"{"v": 1}"#);
    let backends: i64 = s
        .admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'remove-test'",
            &[&s.name],
        )
        .unwrap()
        .get(0);
    // Two store connections and two state connections.
    assert_eq!(backends, 4);
}

/// `updated_at` travels as a binary timestamp: the same microseconds `extract(epoch …)` gives,
/// for `timestamp without time zone` under a session that is not UTC, before 1970, and to the
/// microsecond; `infinity` is no clock (the scan goes on), and such a row is never removed on
/// the strength of it.
#[test]
fn updated_at_is_read_and_compared_to_the_microsecond_whatever_its_type() {
    for ty in ["TIMESTAMP", "TIMESTAMPTZ"] {
        let Some(mut s) = Scratch::with_updated_at(ty) else {
            return;
        };
        s.admin
            .batch_execute(&format!(
                "ALTER DATABASE {} SET timezone = 'America/Sao_Paulo'",
                s.name
            ))
            .unwrap();
        let mut c = Client::connect(&s.url, NoTls).unwrap();
        for (id, at) in [
            ("a.0", "1969-12-31 23:59:59.999999"),
            ("b.0", "2026-01-01 12:34:56.123457"),
            ("c.0", "infinity"),
        ] {
            c.execute(
                &format!(
                    "INSERT INTO whatsapp_keys (company_id, key_type, key_id, value, updated_at) \
                     VALUES ($1, 'session', $2, '{{}}', '{at}'::{ty})"
                ),
                &[&T, &id],
            )
            .unwrap();
        }
        let exact: Vec<Option<i64>> = c
            .query(
                "SELECT CASE WHEN isfinite(updated_at) THEN (extract(epoch from updated_at) * 1000000)::int8 END \
                 FROM whatsapp_keys ORDER BY key_id",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let stored = s.stored("a.0");
        let mut store = s.store();
        let batch = plan(&mut store);
        let read: Vec<Option<i64>> = batch.iter().map(|p| p.token.updated_at_us).collect();
        assert_eq!(read, exact, "{ty}");
        assert_eq!(read[2], None, "{ty}: infinity is no clock");
        let out = store.remove(T, &batch, &mut TrashTarget::Nowhere).unwrap();
        assert_eq!(
            out,
            [
                RemoveOutcome::Removed { bytes: stored },
                RemoveOutcome::Removed { bytes: stored },
                RemoveOutcome::Changed,
            ],
            "{ty}"
        );
        assert_eq!(s.ids(), ["session/c.0"], "{ty}");
    }
}

/// A dry run's scan sends the values that date a row (a session's, a clock-less row's) and no
/// other, and every row's stored size as the full scan does (the bytes a removal reports).
#[test]
fn the_plan_scan_sends_only_the_values_that_date_a_row() {
    let Some(mut s) = Scratch::new() else { return };
    s.put("session", "a.0", r#"{"v": 1}"#);
    s.put("pre-key", "1", r#"{"k": "pre"}"#);
    s.put("sender-key", "g@g.us::5511::0", r#"{"k": "clock-less"}"#);
    s.put("sender-key", "g@g.us::5522::0", r#"{"k": "infinite"}"#);
    s.client
        .batch_execute(
            "UPDATE whatsapp_keys SET updated_at = NULL WHERE key_id = 'g@g.us::5511::0';
             UPDATE whatsapp_keys SET updated_at = 'infinity' WHERE key_id = 'g@g.us::5522::0';",
        )
        .unwrap();
    let mut store = s.store();
    let collect = |store: &mut PgStore, plan: bool| {
        let mut rows = Vec::new();
        let mut f = |r: crate::core::store::RawRow<'_>| {
            rows.push((r.id.to_owned(), r.value.to_owned(), r.size()))
        };
        if plan {
            store.scan_for_plan(T, &mut f).unwrap();
        } else {
            store.scan(T, &mut f).unwrap();
        }
        rows.sort();
        rows
    };
    let full = collect(&mut store, false);
    let planned = collect(&mut store, true);
    let sizes = |rows: &[(String, String, u64)]| -> Vec<u64> { rows.iter().map(|r| r.2).collect() };
    assert_eq!(sizes(&planned), sizes(&full));
    assert_eq!(full[0].2, s.stored("1"), "the stored size");
    let sent: Vec<(&str, bool)> = planned
        .iter()
        .map(|(id, v, _)| (id.as_str(), !v.is_empty()))
        .collect();
    assert_eq!(
        sent,
        [
            ("1", false),
            ("a.0", true),
            ("g@g.us::5511::0", true),
            ("g@g.us::5522::0", true)
        ]
    );
    assert!(
        full.iter().all(|(_, v, _)| !v.is_empty()),
        "the full scan sends every value"
    );
}

/// The tenants are listed by walking the index that leads with the tenant column, where there
/// is one, with the same answer as a pass over every row (and that pass where there is none):
/// tenants with keys only, with creds only, names that sort oddly.
#[test]
fn tenants_are_the_same_whether_listed_through_the_index_or_not() {
    let Some(mut s) = Scratch::new() else { return };
    for (tenant, id) in [("b", "1"), ("a", "1"), ("a", "2"), ("Z", "1"), ("ü-1", "1")] {
        s.client
            .execute(
                "INSERT INTO whatsapp_keys (company_id, key_type, key_id, value) VALUES ($1, 'pre-key', $2, '{}')",
                &[&tenant, &id],
            )
            .unwrap();
    }
    s.client
        .batch_execute("INSERT INTO whatsapp_auth VALUES ('creds-only', '{}'), ('a', '{}');")
        .unwrap();
    let plain: Vec<String> = s
        .client
        .query(
            "SELECT x FROM (SELECT company_id::text AS x FROM whatsapp_keys \
             UNION SELECT company_id::text FROM whatsapp_auth) s ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(plain.len(), 5);
    let walked = s.store();
    assert!(
        walked.sql.tenants.starts_with("WITH RECURSIVE"),
        "the index is used"
    );
    assert_eq!(s.store().tenants().unwrap(), plain);
    // Without an index that leads with the tenant: every row, as before.
    s.client
        .batch_execute("ALTER TABLE whatsapp_keys DROP CONSTRAINT whatsapp_keys_pkey")
        .unwrap();
    let mut scanned = s.store();
    assert!(!scanned.sql.tenants.starts_with("WITH RECURSIVE"));
    assert_eq!(scanned.tenants().unwrap(), plain);
}
