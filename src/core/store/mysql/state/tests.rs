//! Against a real MySQL / MariaDB (`BAILEYS_JANITOR_TEST_MYSQL`, default
//! mysql://root@127.0.0.1:3306): each test has an auth database and a state database of its own
//! (and any account it made), all dropped afterwards. Without a server the tests say so and
//! pass, unless REQUIRE_SERVICES=1: then they fail.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ::mysql::{Opts, OptsBuilder};

use super::super::{MysqlStore, preset};
use super::*;
use crate::core::store::shared::TrashTarget;
use crate::core::store::{Planned, RemoveOutcome, Store, TenantLock, Token};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn admin_url() -> String {
    std::env::var("BAILEYS_JANITOR_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

struct Scratch {
    admin: Conn,
    db: String,
    schema: String,
    users: Vec<String>,
}

impl Scratch {
    fn new(engine: &str) -> Option<Scratch> {
        let opts = Opts::from_url(&admin_url()).expect("BAILEYS_JANITOR_TEST_MYSQL");
        let mut admin = match Conn::new(
            OptsBuilder::from_opts(opts).tcp_connect_timeout(Some(Duration::from_secs(2))),
        ) {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    std::env::var("REQUIRE_SERVICES").map_or(true, |v| v != "1"),
                    "REQUIRE_SERVICES=1 but no MySQL answers: {e}"
                );
                eprintln!("SKIPPED: no MySQL ({e})");
                return None;
            }
        };
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let db = format!("bj_sdb_{}_{n}", std::process::id());
        let schema = format!("bj_state_{}_{n}", std::process::id());
        admin.query_drop(format!("CREATE DATABASE {db}")).unwrap();
        admin
            .query_drop(format!(
                "CREATE TABLE {db}.`auth` (`session` varchar(50) NOT NULL, `id` varchar(80) NOT NULL, `value` LONGTEXT DEFAULT NULL, UNIQUE KEY `idxunique` (`session`,`id`), KEY `idxsession` (`session`), KEY `idxid` (`id`)) ENGINE={engine}"
            ))
            .unwrap();
        Some(Scratch {
            admin,
            db,
            schema,
            users: Vec::new(),
        })
    }

    fn url_as(&self, user: Option<&str>) -> String {
        let url = admin_url();
        let (scheme, rest) = url.split_once("://").unwrap();
        let authority = rest.split(['/', '?']).next().unwrap();
        let authority = match user {
            Some(u) => format!(
                "{u}@{}",
                authority.rsplit_once('@').map_or(authority, |x| x.1)
            ),
            None => authority.to_owned(),
        };
        format!("{scheme}://{authority}/{}", self.db)
    }

    fn store_as(&self, user: Option<&str>) -> MysqlStore {
        MysqlStore::connect(&self.url_as(user), &preset("mysql-baileys").unwrap(), false).unwrap()
    }

    fn store(&self) -> MysqlStore {
        self.store_as(None)
    }

    fn state(&self, store: &MysqlStore, read_only: bool) -> Result<Box<dyn SharedState>> {
        let opts = SharedOptions {
            schema: self.schema.clone(),
            read_only,
            ..SharedOptions::default()
        };
        store.shared_state(&opts).map(Option::unwrap)
    }

    fn user(&mut self, what: &str) -> String {
        let user = format!("bj{}_{what}", &self.db[6..]);
        self.admin
            .query_drop(format!("CREATE USER '{user}'@'%'"))
            .unwrap();
        self.users.push(user.clone());
        user
    }

    fn put(&mut self, session: &str, id: &str, value: &str) {
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

    fn count(&mut self, sql: &str) -> u64 {
        self.admin.query_first(sql).unwrap().unwrap()
    }

    fn schema_exists(&mut self) -> bool {
        let sql = format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{}'",
            self.schema
        );
        self.count(&sql) == 1
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self
            .admin
            .query_drop(format!("DROP DATABASE IF EXISTS {}", self.db));
        let _ = self
            .admin
            .query_drop(format!("DROP DATABASE IF EXISTS {}", self.schema));
        for u in &self.users {
            let _ = self
                .admin
                .query_drop(format!("DROP USER IF EXISTS '{u}'@'%'"));
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
        token: Token::of(value, None),
    }
}

#[test]
fn documents_are_compare_and_swap_and_shared_by_two_hosts() {
    let Some(s) = Scratch::new("MyISAM") else {
        return;
    };
    let (a_store, b_store) = (s.store(), s.store());
    let mut a = s.state(&a_store, false).unwrap();
    let mut b = s.state(&b_store, false).unwrap();
    assert_eq!(a.read(Space::Company, "t1").unwrap(), None);
    assert!(a.swap(Space::Company, "t1", None, b"{\"a\":1}").unwrap());
    assert!(!b.swap(Space::Company, "t1", None, b"{\"b\":1}").unwrap());
    let doc = b.read(Space::Company, "t1").unwrap().unwrap();
    assert_eq!(doc.body, b"{\"a\":1}");
    assert!(
        b.swap(Space::Company, "t1", Some(doc.version), b"{\"b\":2}")
            .unwrap()
    );
    assert!(
        !a.swap(Space::Company, "t1", Some(doc.version), b"{\"a\":3}")
            .unwrap()
    );
    assert_eq!(
        a.read(Space::Company, "t1").unwrap().unwrap().body,
        b"{\"b\":2}"
    );
    // Names are exact bytes: a name differing only in case is another document.
    assert_eq!(a.read(Space::Company, "T1").unwrap(), None);
    assert!(a.swap(Space::Runs, "host-a", None, b"ra").unwrap());
    assert!(b.swap(Space::Runs, "host-b", None, b"rb").unwrap());
    assert_eq!(
        b.list(Space::Runs).unwrap(),
        vec![
            ("host-a".into(), b"ra".to_vec()),
            ("host-b".into(), b"rb".to_vec())
        ]
    );
    assert!(a.list(Space::Ledger).unwrap().is_empty());
    assert!(
        a.describe()
            .starts_with(&format!("database {} on mysql://", s.schema))
    );
}

#[test]
fn a_read_only_state_on_a_fresh_server_creates_nothing_and_reads_empty() {
    let Some(mut s) = Scratch::new("MyISAM") else {
        return;
    };
    let store = s.store();
    let mut st = s.state(&store, true).unwrap();
    assert_eq!(st.read(Space::Company, "t").unwrap(), None);
    assert!(st.list(Space::Runs).unwrap().is_empty());
    assert!(st.trash_runs(None).unwrap().is_empty());
    assert!(st.trash_rows("t", "r").unwrap().is_empty());
    assert_eq!(st.purge(Utc::now()).unwrap(), (0, 0));
    assert!(st.swap(Space::Company, "t", None, b"x").is_err());
    assert!(!s.schema_exists());
    let mut w = s.state(&store, false).unwrap();
    assert!(w.swap(Space::Company, "t", None, b"x").unwrap());
    assert!(s.schema_exists());
    // A read-only run started after that sees it (one that found none trusts that for a few
    // seconds: a dry run asks once, not per tenant).
    let mut st = s.state(&store, true).unwrap();
    assert_eq!(st.read(Space::Company, "t").unwrap().unwrap().body, b"x");
}

#[test]
fn grants_on_the_state_to_other_accounts_are_reported() {
    let Some(mut s) = Scratch::new("MyISAM") else {
        return;
    };
    let store = s.store();
    let mut st = s.state(&store, false).unwrap();
    assert!(st.swap(Space::Company, "t", None, b"x").unwrap());
    assert_eq!(st.exposure().unwrap(), Vec::<String>::new());
    let reader = s.user("rd");
    let schema = s.schema.clone();
    s.admin
        .query_drop(format!("GRANT SELECT ON {schema}.* TO '{reader}'@'%'"))
        .unwrap();
    s.admin
        .query_drop(format!("GRANT SELECT ON {schema}.trash TO '{reader}'@'%'"))
        .unwrap();
    let lines = st.exposure().unwrap();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].starts_with(&format!("database {schema} ")),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(&format!("SELECT to '{reader}'@'%'")),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(&format!("table {schema}.trash ")),
        "{}",
        lines[1]
    );
}

#[test]
fn a_database_written_by_a_newer_binary_is_refused_at_open() {
    let Some(mut s) = Scratch::new("MyISAM") else {
        return;
    };
    let store = s.store();
    let mut st = s.state(&store, false).unwrap();
    assert!(st.swap(Space::Company, "t", None, b"x").unwrap());
    let sql = format!(
        "UPDATE {}.meta SET value = '{}' WHERE k = 'schema_version'",
        s.schema,
        SCHEMA_VERSION + 1
    );
    s.admin.query_drop(sql).unwrap();
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
fn an_account_that_cannot_create_the_database_gets_one_line_with_the_sql_and_then_works() {
    let Some(mut s) = Scratch::new("MyISAM") else {
        return;
    };
    let app = s.user("app");
    let db = s.db.clone();
    s.admin
        .query_drop(format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON {db}.* TO '{app}'@'%'"
        ))
        .unwrap();
    let store = s.store_as(Some(&app));
    let e = s.state(&store, false).err().unwrap();
    assert!(e.is_configuration(), "{e}");
    let line = e.to_string();
    assert!(!line.contains('\n'));
    let sql = format!(
        "CREATE DATABASE `{0}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin; GRANT ALL ON `{0}`.* TO '{app}'@'%';",
        s.schema
    );
    assert!(
        line.contains(&format!(
            "account '{app}'@'%' cannot create database {}",
            s.schema
        )),
        "{line}"
    );
    assert!(line.contains(&sql), "{line}");
    assert!(!s.schema_exists());
    // What it says to run is enough.
    for stmt in sql.split_terminator(';') {
        s.admin.query_drop(stmt).unwrap();
    }
    let mut st = s.state(&store, false).unwrap();
    assert!(st.swap(Space::Company, "t", None, b"x").unwrap());
    assert_eq!(st.exposure().unwrap(), Vec::<String>::new());
}

#[test]
fn removed_rows_enter_the_trash_exactly_on_both_engines() {
    for engine in ["MyISAM", "InnoDB"] {
        let Some(mut s) = Scratch::new(engine) else {
            return;
        };
        let value = "{\"k\":\"ü\"}  ";
        s.put("acme", "session-a.0", value);
        s.put("acme", "session-b.0", "{}");
        s.put("acme", "pre-key-7", "{\"x\":1}");
        let mut store = s.store();
        assert_eq!(store.lock_tenant("acme").unwrap(), TenantLock::Acquired);
        let mut st = s.state(&store, false).unwrap();
        let t = tag("run-1", "host-a");
        let out = store
            .remove(
                "acme",
                &[
                    planned("session", "a.0", value),
                    planned("session", "b.0", "{\"changed\":1}"),
                    planned("pre-key", "7", "{\"x\":1}"),
                    planned("pre-key", "8", "{}"),
                ],
                &mut TrashTarget::InStore(&t),
            )
            .unwrap();
        assert!(matches!(out[0], RemoveOutcome::Removed { .. }), "{engine}");
        assert_eq!(out[1], RemoveOutcome::Changed, "{engine}");
        assert!(matches!(out[2], RemoveOutcome::Removed { .. }), "{engine}");
        assert_eq!(out[3], RemoveOutcome::Vanished, "{engine}");
        let sql = format!("SELECT COUNT(*) FROM {}.auth", s.db);
        assert_eq!(s.count(&sql), 1, "{engine}");
        let runs = st.trash_runs(Some("acme")).unwrap();
        assert_eq!(runs.len(), 1, "{engine}");
        assert_eq!(
            (
                runs[0].run_id.as_str(),
                runs[0].host.as_str(),
                runs[0].rows,
                runs[0].restored
            ),
            ("run-1", "host-a", 2, 0)
        );
        assert_eq!(runs[0].removed_at, t.removed_at, "{engine}");
        assert_eq!(runs[0].bytes, (value.len() + 7) as u64, "{engine}");
        let rows = st.trash_rows("acme", "run-1").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1].row.value, value,
            "{engine}: trailing spaces and all"
        );
        assert_eq!(rows[1].row.columns, BTreeMap::new());
        let back: Vec<TrashRow> = rows.iter().map(|r| r.row.clone()).collect();
        store.restore("acme", &back).unwrap();
        assert_eq!(s.count(&sql), 3, "{engine}");
        st.mark_restored("acme", "run-1", &[back[1].key()]).unwrap();
        let runs = st.trash_runs(None).unwrap();
        assert_eq!((runs[0].rows, runs[0].restored), (1, 1), "{engine}");
        assert!(st.trash_runs(Some("other")).unwrap().is_empty());
        assert_eq!(st.purge(t.removed_at).unwrap(), (0, 0));
        assert_eq!(
            st.purge(t.removed_at + chrono::Duration::seconds(1))
                .unwrap(),
            (1, 2),
            "{engine}"
        );
        assert!(st.trash_runs(None).unwrap().is_empty());
    }
}

/// MyISAM has no transaction: the trash is written first, then each row goes by a
/// compare-and-delete. A row the app rewrites in between stays, and leaves the trash again.
#[test]
fn a_myisam_row_rewritten_after_its_trash_write_stays_and_leaves_the_trash() {
    let Some(mut s) = Scratch::new("MyISAM") else {
        return;
    };
    s.put("acme", "pre-key-1", "{\"a\":1}");
    s.put("acme", "pre-key-2", "{\"a\":2}");
    let mut store = s.store();
    assert_eq!(store.lock_tenant("acme").unwrap(), TenantLock::Acquired);
    let mut st = s.state(&store, false).unwrap();
    assert!(st.swap(Space::Company, "x", None, b"{}").unwrap());
    // The app's write, at the moment the trash row lands.
    let (db, schema) = (s.db.clone(), s.schema.clone());
    s.admin
        .query_drop(format!(
            "CREATE TRIGGER {schema}.app_writes AFTER INSERT ON {schema}.trash FOR EACH ROW \
             UPDATE {db}.auth SET value = '{{\"A\":2}}' WHERE session = 'acme' AND id = 'pre-key-2' AND NEW.key_id = '2'"
        ))
        .unwrap();
    let t = tag("run-1", "h");
    let out = store
        .remove(
            "acme",
            &[
                planned("pre-key", "1", "{\"a\":1}"),
                planned("pre-key", "2", "{\"a\":2}"),
            ],
            &mut TrashTarget::InStore(&t),
        )
        .unwrap();
    assert!(matches!(out[0], RemoveOutcome::Removed { .. }));
    assert_eq!(out[1], RemoveOutcome::Changed);
    let kept: Option<String> = s
        .admin
        .query_first(format!(
            "SELECT value FROM {db}.auth WHERE id = 'pre-key-2'"
        ))
        .unwrap();
    assert_eq!(kept.as_deref(), Some("{\"A\":2}"));
    let rows = st.trash_rows("acme", "run-1").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].row.id, "1");
}

#[test]
fn a_failed_callback_removes_nothing_and_put_trash_is_durable_alone() {
    let Some(mut s) = Scratch::new("InnoDB") else {
        return;
    };
    s.put("acme", "session-a.0", "{}");
    let mut store = s.store();
    assert_eq!(store.lock_tenant("acme").unwrap(), TenantLock::Acquired);
    let mut st = s.state(&store, false).unwrap();
    let mut fail = |_: &[TrashRow]| Err(std::io::Error::other("disk full"));
    assert!(
        store
            .remove(
                "acme",
                &[planned("session", "a.0", "{}")],
                &mut TrashTarget::Before(&mut fail)
            )
            .is_err()
    );
    let sql = format!("SELECT COUNT(*) FROM {}.auth", s.db);
    assert_eq!(s.count(&sql), 1);
    let row = TrashRow {
        key_type: "session".into(),
        id: "a.0".into(),
        value: "{}".into(),
        columns: BTreeMap::new(),
    };
    let t = tag("run-2", "host-b");
    st.put_trash("acme", &t, std::slice::from_ref(&row))
        .unwrap();
    st.put_trash("acme", &t, std::slice::from_ref(&row))
        .unwrap();
    let rows = st.trash_rows("acme", "run-2").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].row, row);
    assert!(!rows[0].restored);
}

/// The app consumes a key of the batch between its trash write and the delete: the janitor
/// cannot tell which of the gone rows it removed, says so, and keeps them all in the trash.
#[test]
fn a_myisam_row_the_app_deletes_meanwhile_is_unknown_and_stays_in_the_trash() {
    let Some(mut s) = Scratch::new("MyISAM") else {
        return;
    };
    s.put("acme", "pre-key-1", "{\"a\":1}");
    s.put("acme", "pre-key-2", "{\"a\":2}");
    s.put("acme", "pre-key-3", "{\"a\":3}");
    let mut store = s.store();
    assert_eq!(store.lock_tenant("acme").unwrap(), TenantLock::Acquired);
    let mut st = s.state(&store, false).unwrap();
    let (db, schema) = (s.db.clone(), s.schema.clone());
    s.admin
        .query_drop(format!(
            "CREATE TRIGGER {schema}.app_consumes AFTER INSERT ON {schema}.trash FOR EACH ROW \
             DELETE FROM {db}.auth WHERE session = 'acme' AND id = 'pre-key-2' AND NEW.key_id = '2'"
        ))
        .unwrap();
    let t = tag("run-1", "h");
    let out = store
        .remove(
            "acme",
            &[
                planned("pre-key", "1", "{\"a\":1}"),
                planned("pre-key", "2", "{\"a\":2}"),
                planned("pre-key", "3", "{\"a\":3}"),
            ],
            &mut TrashTarget::InStore(&t),
        )
        .unwrap();
    assert!(
        out.iter().all(|o| matches!(o, RemoveOutcome::Unknown(_))),
        "{out:?}"
    );
    let sql = format!("SELECT COUNT(*) FROM {db}.auth");
    assert_eq!(s.count(&sql), 0);
    assert_eq!(st.trash_rows("acme", "run-1").unwrap().len(), 3);
}

#[test]
fn another_handle_works_on_its_own_connection_and_sees_the_first_ones_tenant_busy() {
    for engine in ["MyISAM", "InnoDB"] {
        let Some(mut s) = Scratch::new(engine) else {
            return;
        };
        for tenant in ["acme", "bravo"] {
            s.put(tenant, "pre-key-1", "{\"a\":1}");
        }
        let mut a = s.store();
        // Handed out before the shared state is opened, as `--jobs` may: it still finds the
        // trash where the first handle's state is.
        let mut b = a
            .another()
            .unwrap()
            .expect("a mysql store gives a handle per worker");
        let st = s.state(&a, false).unwrap();
        let mut st_b = st
            .another()
            .unwrap()
            .expect("and a state handle per worker");
        // Per tenant, across the process's own connections: what one holds, the other finds busy.
        assert_eq!(a.lock_tenant("acme").unwrap(), TenantLock::Acquired);
        assert!(
            matches!(b.lock_tenant("acme").unwrap(), TenantLock::Busy(_)),
            "{engine}"
        );
        assert_eq!(b.lock_tenant("bravo").unwrap(), TenantLock::Acquired);
        assert!(
            matches!(a.lock_tenant("bravo").unwrap(), TenantLock::Busy(_)),
            "{engine}"
        );
        // Each removes only under its own lock: its own connection, not the first one's.
        let batch = [planned("pre-key", "1", "{\"a\":1}")];
        let t = tag("run-1", "host-a");
        let err = b
            .remove("acme", &batch, &mut TrashTarget::InStore(&t))
            .unwrap_err();
        assert!(
            err.to_string().contains("no longer held"),
            "{engine}: {err}"
        );
        let out = b
            .remove("bravo", &batch, &mut TrashTarget::InStore(&t))
            .unwrap();
        assert!(
            matches!(out[0], RemoveOutcome::Removed { .. }),
            "{engine}: {out:?}"
        );
        let out = a
            .remove("acme", &batch, &mut TrashTarget::InStore(&t))
            .unwrap();
        assert!(
            matches!(out[0], RemoveOutcome::Removed { .. }),
            "{engine}: {out:?}"
        );
        let sql = format!("SELECT COUNT(*) FROM {}.auth", s.db);
        assert_eq!(s.count(&sql), 0, "{engine}");
        // Both batches in the one trash, read from either state handle.
        for tenant in ["acme", "bravo"] {
            assert_eq!(
                st_b.trash_rows(tenant, "run-1").unwrap().len(),
                1,
                "{engine}"
            );
        }
        // The second state handle writes on a connection of its own; the first reads it.
        assert!(st_b.swap(Space::Ledger, "bravo", None, b"{}").unwrap());
        let mut st = st;
        assert_eq!(
            st.read(Space::Ledger, "bravo").unwrap().map(|d| d.body),
            Some(b"{}".to_vec()),
            "{engine}"
        );
        // A read-only store's handles are read-only too: the server refuses their writes.
        let ro =
            MysqlStore::connect(&s.url_as(None), &preset("mysql-baileys").unwrap(), true).unwrap();
        let mut ro_b = ro.another().unwrap().unwrap();
        s.put("carol", "pre-key-1", "{\"a\":1}");
        assert_eq!(ro_b.lock_tenant("carol").unwrap(), TenantLock::Acquired);
        assert!(
            ro_b.remove("carol", &batch, &mut TrashTarget::Before(&mut |_| Ok(())))
                .is_err(),
            "{engine}"
        );
        let sql = format!("SELECT COUNT(*) FROM {}.auth WHERE session = 'carol'", s.db);
        assert_eq!(s.count(&sql), 1, "{engine}");
    }
}
