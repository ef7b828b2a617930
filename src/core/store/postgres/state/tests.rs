//! Against a real PostgreSQL (`BAILEYS_JANITOR_TEST_PG`, default
//! postgres://postgres@127.0.0.1:5432/postgres): each test works in a database of its own and
//! drops it (and any role it made). Without a server the tests say so and pass, unless
//! REQUIRE_SERVICES=1: then they fail.

use std::collections::BTreeMap;

use super::super::PgStore;
use super::super::tests::{admin_url, create_database};
use super::*;
use crate::core::store::shared::TrashTarget;
use crate::core::store::spec::Layout;
use crate::core::store::{Planned, RemoveOutcome, Store, Token};

/// A database of its own with the per-type tables (and timestamps), dropped on drop.
struct Scratch {
    admin: Client,
    name: String,
    client: Client,
    roles: Vec<String>,
}

impl Scratch {
    fn new() -> Option<Scratch> {
        let (admin, name) = create_database("bj_state")?;
        let mut client = Client::connect(&Self::url_of(&name, None), postgres::NoTls).unwrap();
        client
            .batch_execute(
                "CREATE TABLE whatsapp_auth (company_id TEXT PRIMARY KEY, creds TEXT NOT NULL);
                 CREATE TABLE whatsapp_keys (company_id TEXT NOT NULL, key_type TEXT NOT NULL,
                   key_id TEXT NOT NULL, value TEXT NOT NULL, created_at TIMESTAMPTZ,
                   updated_at TIMESTAMPTZ, expires_at TIMESTAMPTZ,
                   PRIMARY KEY (company_id, key_type, key_id));",
            )
            .unwrap();
        Some(Scratch {
            admin,
            name,
            client,
            roles: Vec::new(),
        })
    }

    /// The scratch database's URL, as `user` (the admin's user without one), reached as `host`.
    fn url_of(db: &str, user: Option<&str>) -> String {
        let cfg: postgres::Config = admin_url().parse().unwrap();
        let host = match &cfg.get_hosts()[0] {
            postgres::config::Host::Tcp(h) => h.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        };
        format!(
            "postgres://{}@{}:{}/{}",
            user.unwrap_or(cfg.get_user().unwrap_or("postgres")),
            host,
            cfg.get_ports().first().copied().unwrap_or(5432),
            db
        )
    }

    fn url(&self) -> String {
        Self::url_of(&self.name, None)
    }

    fn store_at(&self, url: &str) -> PgStore {
        PgStore::connect(url, &Layout::preset("per-type").unwrap(), "state-test").unwrap()
    }

    fn store(&self) -> PgStore {
        self.store_at(&self.url())
    }

    fn state(&self, store: &PgStore, read_only: bool) -> Result<Box<dyn SharedState>> {
        let opts = SharedOptions {
            read_only,
            ..SharedOptions::default()
        };
        store.shared_state(&opts).map(Option::unwrap)
    }

    /// A login role of this test (dropped with the database).
    fn role(&mut self, what: &str) -> String {
        let role = format!("{}_{what}", self.name);
        self.admin
            .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
            .unwrap();
        self.roles.push(role.clone());
        role
    }

    fn put(&mut self, tenant: &str, key_type: &str, id: &str, value: &str) {
        self.client
            .execute(
                "INSERT INTO whatsapp_keys (company_id, key_type, key_id, value, created_at) \
                 VALUES ($1, $2, $3, $4, 'epoch'::timestamptz + interval '1700000000.123456 seconds')",
                &[&tenant, &key_type, &id, &value],
            )
            .unwrap();
    }

    fn count(&mut self, sql: &str) -> i64 {
        self.client.query_one(sql, &[]).unwrap().get(0)
    }

    fn schema_exists(&mut self) -> bool {
        self.count("SELECT count(*) FROM pg_namespace WHERE nspname = 'baileys_janitor'") == 1
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.admin.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        for r in &self.roles {
            let _ = self
                .admin
                .batch_execute(&format!("DROP ROLE IF EXISTS {r}"));
        }
    }
}

fn tag(run: &str, host: &str) -> TrashTag {
    TrashTag {
        run_id: run.into(),
        host: host.into(),
        removed_at: DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap(),
    }
}

fn planned(key_type: &str, id: &str, value: &str) -> Planned {
    Planned {
        key: KeyRef {
            key_type: key_type.into(),
            id: id.into(),
        },
        // With the MD5 a real run computes: the one-statement removal (`postgres::remove`).
        token: Token::for_store(value, None, true),
    }
}

#[test]
fn documents_are_compare_and_swap_and_shared_by_two_hosts_reaching_the_server_by_different_names() {
    let Some(s) = Scratch::new() else { return };
    let a_store = s.store();
    // Host B reaches the same server by another name: the state is the same.
    let b_url = s.url().replace("127.0.0.1", "localhost");
    let b_store = s.store_at(&b_url);
    let mut a = s.state(&a_store, false).unwrap();
    let mut b = s.state(&b_store, false).unwrap();
    assert_eq!(a.read(Space::Company, "t1").unwrap(), None);
    assert!(a.swap(Space::Company, "t1", None, b"{\"a\":1}").unwrap());
    // A second create loses: the document exists.
    assert!(!b.swap(Space::Company, "t1", None, b"{\"b\":1}").unwrap());
    let doc = b.read(Space::Company, "t1").unwrap().unwrap();
    assert_eq!(doc.body, b"{\"a\":1}");
    assert!(
        b.swap(Space::Company, "t1", Some(doc.version), b"{\"b\":2}")
            .unwrap()
    );
    // A's version is stale now: nothing changes.
    assert!(
        !a.swap(Space::Company, "t1", Some(doc.version), b"{\"a\":3}")
            .unwrap()
    );
    assert_eq!(
        a.read(Space::Company, "t1").unwrap().unwrap().body,
        b"{\"b\":2}"
    );
    assert!(a.swap(Space::Runs, "host-a", None, b"ra").unwrap());
    assert!(b.swap(Space::Runs, "host-b", None, b"rb").unwrap());
    assert_eq!(
        b.list(Space::Runs).unwrap(),
        vec![
            ("host-a".into(), b"ra".to_vec()),
            ("host-b".into(), b"rb".to_vec())
        ]
    );
    assert_eq!(a.list(Space::Ledger).unwrap(), Vec::new());
    assert!(a.describe().contains("schema baileys_janitor"));
    assert!(!a.describe().contains("password"));
}

#[test]
fn a_read_only_state_on_a_fresh_database_creates_nothing_and_reads_empty() {
    let Some(mut s) = Scratch::new() else { return };
    let store = s.store();
    let mut st = s.state(&store, true).unwrap();
    assert_eq!(st.read(Space::Company, "t").unwrap(), None);
    assert!(st.list(Space::Runs).unwrap().is_empty());
    assert!(st.trash_runs(None).unwrap().is_empty());
    assert!(st.trash_rows("t", "r").unwrap().is_empty());
    assert_eq!(st.purge(Utc::now()).unwrap(), (0, 0));
    assert!(st.swap(Space::Company, "t", None, b"x").is_err());
    assert!(!s.schema_exists());
    // A writer creates it; the read-only one then sees what was written.
    let mut w = s.state(&store, false).unwrap();
    assert!(w.swap(Space::Company, "t", None, b"x").unwrap());
    assert!(s.schema_exists());
    // A read-only run started after that sees it (one that found none trusts that for a few
    // seconds: a dry run asks once, not per tenant).
    let mut st = s.state(&store, true).unwrap();
    assert_eq!(st.read(Space::Company, "t").unwrap().unwrap().body, b"x");
}

#[test]
fn the_schema_is_created_without_public_grants_and_grants_to_others_are_reported() {
    let Some(mut s) = Scratch::new() else { return };
    let store = s.store();
    let mut st = s.state(&store, false).unwrap();
    assert!(st.swap(Space::Company, "t", None, b"x").unwrap());
    assert!(s.schema_exists());
    assert_eq!(
        s.count(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'baileys_janitor' AND c.relname IN ('meta', 'docs', 'trash')"
        ),
        3
    );
    assert_eq!(
        s.count(
            "SELECT count(*) FROM information_schema.role_table_grants \
             WHERE table_schema = 'baileys_janitor' AND grantee = 'PUBLIC'"
        ),
        0
    );
    assert_eq!(st.exposure().unwrap(), Vec::<String>::new());
    let reader = s.role("reader");
    s.client
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA baileys_janitor TO {reader}; \
             GRANT SELECT ON baileys_janitor.trash TO {reader}; \
             GRANT SELECT ON baileys_janitor.docs TO PUBLIC"
        ))
        .unwrap();
    let lines = st.exposure().unwrap();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].starts_with("schema baileys_janitor ") && lines[0].contains(&reader));
    assert!(lines[1].starts_with("table baileys_janitor.docs ") && lines[1].contains("PUBLIC"));
    assert!(lines[2].starts_with("table baileys_janitor.trash ") && lines[2].contains("SELECT"));
    s.client
        .batch_execute(&format!(
            "REVOKE ALL ON SCHEMA baileys_janitor FROM {reader}; \
             REVOKE ALL ON ALL TABLES IN SCHEMA baileys_janitor FROM {reader}"
        ))
        .unwrap();
}

#[test]
fn a_schema_written_by_a_newer_binary_is_refused_at_open() {
    let Some(mut s) = Scratch::new() else { return };
    let store = s.store();
    let mut st = s.state(&store, false).unwrap();
    assert!(st.swap(Space::Company, "t", None, b"x").unwrap());
    s.client
        .batch_execute(&format!(
            "UPDATE baileys_janitor.meta SET value = '{}' WHERE key = 'schema_version'",
            SCHEMA_VERSION + 1
        ))
        .unwrap();
    for read_only in [true, false] {
        let e = s.state(&store, read_only).err().unwrap();
        assert!(e.is_configuration(), "{e}");
        assert!(
            e.to_string().contains(&format!(
                "written by a newer baileys-janitor (schema {}, this binary knows {SCHEMA_VERSION}): upgrade",
                SCHEMA_VERSION + 1
            )),
            "{e}"
        );
    }
}

#[test]
fn a_role_that_cannot_create_the_schema_gets_one_line_with_the_sql_and_then_works() {
    let Some(mut s) = Scratch::new() else { return };
    let role = s.role("app");
    s.client
        .batch_execute(&format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON whatsapp_auth, whatsapp_keys TO {role}"
        ))
        .unwrap();
    let url = Scratch::url_of(&s.name, Some(&role));
    let store = s.store_at(&url);
    // Told when the state is opened for a run that writes, not by its first batch.
    let e = s.state(&store, false).err().unwrap();
    assert!(e.is_configuration(), "{e}");
    let line = e.to_string();
    assert!(!line.contains('\n'));
    assert!(
        line.contains(&format!(
            "role {role} cannot create schema baileys_janitor for the janitor's state: have an owner of the database run `CREATE SCHEMA \"baileys_janitor\" AUTHORIZATION \"{role}\";`"
        )),
        "{line}"
    );
    assert!(!s.schema_exists());
    // The SQL it names, run by an owner, is enough: the janitor creates its tables itself.
    s.client
        .batch_execute(&format!(
            "CREATE SCHEMA baileys_janitor AUTHORIZATION {role}"
        ))
        .unwrap();
    let mut st = s.state(&store, false).unwrap();
    assert!(st.swap(Space::Company, "t", None, b"x").unwrap());
    assert_eq!(st.exposure().unwrap(), Vec::<String>::new());
    s.client
        .batch_execute("DROP SCHEMA baileys_janitor CASCADE")
        .unwrap();
}

#[test]
fn removed_rows_enter_the_trash_in_the_deleting_transaction_exactly() {
    let Some(mut s) = Scratch::new() else { return };
    let value = "{\"k\":\"ü\\u0000 \"}  ";
    s.put("t1", "session", "a.0", value);
    s.put("t1", "session", "b.0", "{}");
    s.put("t1", "pre-key", "7", "{\"x\":1}");
    let mut store = s.store();
    let mut st = s.state(&store, false).unwrap();
    let t = tag("run-1", "host-a");
    let batch = [
        planned("session", "a.0", value),
        planned("session", "b.0", "{\"changed\":1}"),
        planned("pre-key", "7", "{\"x\":1}"),
        planned("pre-key", "8", "{}"),
    ];
    let out = store
        .remove("t1", &batch, &mut TrashTarget::InStore(&t))
        .unwrap();
    assert!(matches!(out[0], RemoveOutcome::Removed { .. }));
    assert_eq!(out[1], RemoveOutcome::Changed);
    assert!(matches!(out[2], RemoveOutcome::Removed { .. }));
    assert_eq!(out[3], RemoveOutcome::Vanished);
    assert_eq!(s.count("SELECT count(*) FROM whatsapp_keys"), 1);
    let runs = st.trash_runs(Some("t1")).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (
            runs[0].run_id.as_str(),
            runs[0].host.as_str(),
            runs[0].rows,
            runs[0].restored
        ),
        ("run-1", "host-a", 2, 0)
    );
    assert_eq!(runs[0].removed_at, t.removed_at);
    assert_eq!(runs[0].bytes, (value.len() + 7) as u64);
    let rows = st.trash_rows("t1", "run-1").unwrap();
    assert_eq!(rows.len(), 2);
    let a = rows.iter().find(|r| r.row.id == "a.0").unwrap();
    assert_eq!(a.row.value, value);
    let mut cols = BTreeMap::new();
    cols.insert("created_at".to_owned(), Some(1_700_000_000_123_456));
    cols.insert("expires_at".to_owned(), None);
    cols.insert("updated_at".to_owned(), None);
    assert_eq!(a.row.columns, cols);
    // Back exactly as they were, then marked so.
    let back: Vec<TrashRow> = rows.iter().map(|r| r.row.clone()).collect();
    store.restore("t1", &back).unwrap();
    assert_eq!(
        s.count(
            "SELECT count(*) FROM whatsapp_keys WHERE created_at = 'epoch'::timestamptz + interval '1700000000.123456 seconds'"
        ),
        3
    );
    st.mark_restored("t1", "run-1", &[back[0].key()]).unwrap();
    let runs = st.trash_runs(None).unwrap();
    assert_eq!((runs[0].rows, runs[0].restored), (1, 1));
    let marked: Vec<bool> = st
        .trash_rows("t1", "run-1")
        .unwrap()
        .iter()
        .map(|r| r.restored)
        .collect();
    assert_eq!(marked.iter().filter(|r| **r).count(), 1);
    // Another store's trash is not ours; ours goes after retention.
    assert!(st.trash_runs(Some("t2")).unwrap().is_empty());
    assert_eq!(st.purge(t.removed_at).unwrap(), (0, 0));
    assert_eq!(
        st.purge(t.removed_at + chrono::Duration::seconds(1))
            .unwrap(),
        (1, 2)
    );
    assert!(st.trash_runs(None).unwrap().is_empty());
}

#[test]
fn a_failed_removal_leaves_nothing_in_the_trash_and_put_trash_is_durable_alone() {
    let Some(mut s) = Scratch::new() else { return };
    s.put("t1", "session", "a.0", "{}");
    let mut store = s.store();
    let mut st = s.state(&store, false).unwrap();
    // The callback target failing rolls the batch back, as before.
    let mut fail = |_: &[TrashRow]| Err(std::io::Error::other("disk full"));
    let e = store
        .remove(
            "t1",
            &[planned("session", "a.0", "{}")],
            &mut TrashTarget::Before(&mut fail),
        )
        .unwrap_err();
    assert!(e.to_string().contains("disk full"));
    assert_eq!(s.count("SELECT count(*) FROM whatsapp_keys"), 1);
    // The store's trash is a target for the callback too (stores that cannot do it inline).
    let t = tag("run-2", "host-b");
    let row = TrashRow {
        key_type: "session".into(),
        id: "a.0".into(),
        value: "{}".into(),
        columns: BTreeMap::new(),
    };
    st.put_trash("t1", &t, std::slice::from_ref(&row)).unwrap();
    st.put_trash("t1", &t, std::slice::from_ref(&row)).unwrap();
    let rows = st.trash_rows("t1", "run-2").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].row, row);
    assert!(!rows[0].restored);
}

#[test]
fn in_store_trash_without_an_opened_state_is_refused_and_removes_nothing() {
    let Some(mut s) = Scratch::new() else { return };
    s.put("t1", "session", "a.0", "{}");
    let mut store = s.store();
    let t = tag("run-1", "h");
    assert!(
        store
            .remove(
                "t1",
                &[planned("session", "a.0", "{}")],
                &mut TrashTarget::InStore(&t)
            )
            .is_err()
    );
    assert_eq!(s.count("SELECT count(*) FROM whatsapp_keys"), 1);
}

#[test]
fn a_lazy_write_skips_the_wal_flush_of_its_own_commit_only() {
    let Some(s) = Scratch::new() else { return };
    let store = s.store();
    let opts = SharedOptions::default();
    let at = StateTarget {
        schema: opts.schema.clone(),
        store: "test".into(),
    };
    let client = Client::connect(&s.url(), postgres::NoTls).unwrap();
    let mut st = PgState::open(client, "test", at, &opts).unwrap();
    let setting =
        |c: &mut Client| -> String { c.query_one("SHOW synchronous_commit", &[]).unwrap().get(0) };
    // Inside a transaction the statement's own setting is visible: the write's commit does not
    // wait for its WAL flush.
    st.client.batch_execute("BEGIN").unwrap();
    assert!(st.swap_lazy(Space::Ledger, "t1", None, b"{}").unwrap());
    assert_eq!(setting(&mut st.client), "off");
    st.client.batch_execute("COMMIT").unwrap();
    // ... and it ends with that commit: every later write is durable again.
    assert_eq!(setting(&mut st.client), "on");
    assert!(
        st.swap_lazy(Space::Ledger, "t1", Some(1), b"{\"a\":1}")
            .unwrap()
    );
    assert_eq!(setting(&mut st.client), "on");
    assert!(
        !st.swap_lazy(Space::Ledger, "t1", Some(1), b"{\"b\":1}")
            .unwrap(),
        "a stale version swaps nothing"
    );
    assert!(st.swap(Space::Ledger, "t1", Some(2), b"{\"c\":1}").unwrap());
    assert_eq!(
        st.read(Space::Ledger, "t1").unwrap().unwrap().body,
        b"{\"c\":1}"
    );
    drop(store);
}
