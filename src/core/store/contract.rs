//! The contract every store keeps, run on each: the in-memory store, SQLite, Redis, MySQL and
//! PostgreSQL (the last three against the test servers, failing with REQUIRE_SERVICES=1 when
//! none answers). One fixture, the same decisions, the same undo guarantees.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::clean::{StoreCleanSpec, clean_tenant};
use super::undo::{StoreRestore, restore_tenant_run};
use super::{Planned, RemoveOutcome, Store, Token, TrashTarget};
use crate::core::clean::CleanSpec;
use crate::core::rules::Rules;
use crate::core::state::StateDir;

const NOW_S: u64 = 1_800_000_000;
const T: &str = "tenant_1";
pub const CREDS: &str = r#"{"me":{"id":"5511999999999:7@s.whatsapp.net","lid":"123456789012345:7@lid"},"account":{"details":{"type":"Buffer","data":"eA=="}},"nextPreKeyId":121,"firstUnuploadedPreKeyId":121}"#;

fn session(days_unused: u64) -> String {
    let used = (NOW_S - days_unused * 86_400) * 1000;
    format!(
        r#"{{"_sessions":{{"BQ==":{{"registrationId":1,"indexInfo":{{"baseKey":"BQ==","baseKeyType":1,"closed":-1,"used":{used},"created":{used},"remoteIdentityKey":"BQ=="}},"_chains":{{}}}}}},"version":"v1"}}"#
    )
}

/// One account: an old and a fresh session with their identity keys, sender keys and a memory,
/// pre-keys, and every protected type.
pub fn fixture() -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = [
        ("session", "5511888888888.0", session(30)),
        ("session", "5511777777777.0", session(1)),
        (
            "identity-key",
            "5511888888888.0",
            r#"{"type":"Buffer","data":"BQ=="}"#.into(),
        ),
        (
            "identity-key",
            "5511777777777.0",
            r#"{"type":"Buffer","data":"Bg=="}"#.into(),
        ),
        (
            "sender-key",
            "120363@g.us::5511666666666::0",
            r#"[{"senderKeyId":1}]"#.into(),
        ),
        ("sender-key-memory", "120363@g.us", r#"{"x":true}"#.into()),
        (
            "app-state-sync-key",
            "AAAAAOb5",
            r#"{"keyData":{"type":"Buffer","data":"AA=="}}"#.into(),
        ),
        (
            "app-state-sync-version",
            "regular_high",
            r#"{"version":3}"#.into(),
        ),
        (
            "lid-mapping",
            "5511888888888",
            r#""123456789012345""#.into(),
        ),
        (
            "lid-mapping",
            "123456789012345_reverse",
            r#""5511888888888""#.into(),
        ),
        ("tctoken", "123@lid", r#"{"timestamp":"1"}"#.into()),
        ("device-list", "5511888888888", r#"["0"]"#.into()),
    ]
    .into_iter()
    .map(|(t, i, v)| (t.to_owned(), i.to_owned(), v))
    .collect();
    for i in 1..=40 {
        v.push((
            "pre-key".into(),
            i.to_string(),
            r#"{"private":"AQ=="}"#.into(),
        ));
    }
    v.sort();
    v
}

/// What the contract needs of a store beside the [`Store`] itself: the app's side.
pub trait Harness {
    fn store(&mut self) -> &mut dyn Store;
    /// The tenant's rows, as the app would read them, sorted.
    fn rows(&mut self) -> Vec<(String, String, String)>;
    /// The app writes a row.
    fn write(&mut self, key_type: &str, id: &str, value: &str);
}

fn spec(dry_run: bool, run: &str) -> StoreCleanSpec {
    StoreCleanSpec {
        clean: CleanSpec {
            rules: Rules::NORMAL,
            dry_run,
            trash: true,
            verbose: true,
            now: UNIX_EPOCH + Duration::from_secs(NOW_S),
            run_id: run.into(),
            holder: "contract".into(),
            pause_before_remove: None,
            creds_from: None,
        },
        store_key: "contract".into(),
        remove_legacy: false,
        remove_orphans: false,
        batch: 3,
    }
}

fn restore_opts() -> StoreRestore<'static> {
    StoreRestore {
        only: &[],
        force: false,
        dry_run: false,
        now: (UNIX_EPOCH + Duration::from_secs(NOW_S)).into(),
        hold: Duration::from_secs(3 * 86_400),
        store_key: "contract",
    }
}

const OLD: [&str; 2] = ["identity-key-5511888888888.0", "session-5511888888888.0"];

/// Runs every clause of the contract on `h` (seeded with [`fixture`] and [`CREDS`] as `T`),
/// with the janitor's state in the state directory.
pub fn run(h: &mut dyn Harness, what: &str) {
    run_with(h, what, None);
}

/// [`run`] with the janitor's state in the store (`Store::shared_state`, which must be `Some`):
/// the same guarantees, and the state directory keeps nothing but locks.
pub fn run_shared(h: &mut dyn Harness, what: &str) {
    run_shared_with(h, what, &super::shared::SharedOptions::default());
}

/// [`run_shared`] with the state where `opts` puts it (MySQL: a database of the test's own,
/// since the default one is server-wide).
pub fn run_shared_with(h: &mut dyn Harness, what: &str, opts: &super::shared::SharedOptions) {
    run_with(h, what, Some(opts));
}

fn run_with(h: &mut dyn Harness, what: &str, shared: Option<&super::shared::SharedOptions>) {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path().join("state"));
    if let Some(opts) = shared {
        let s = h
            .store()
            .shared_state(opts)
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: the store keeps no shared state"));
        state.share(s);
    }
    let before = h.rows();
    assert_eq!(
        before,
        fixture(),
        "{what}: the fixture reads back as written"
    );

    // The trigger's count: the pre-key ids a store selects without values are the scan's.
    let mut from_scan = Vec::new();
    h.store()
        .scan(T, &mut |row| {
            if row.key_type == "pre-key" {
                from_scan.push(row.id.to_owned());
            }
        })
        .unwrap();
    let mut ids = Vec::new();
    h.store()
        .pre_key_ids(T, &mut |id| ids.push(id.to_owned()))
        .unwrap();
    from_scan.sort();
    ids.sort();
    assert_eq!(ids.len(), 40, "{what}: pre-key ids");
    assert_eq!(ids, from_scan, "{what}: pre-key ids are the scan's");
    // nextPreKeyId 121: all 40 are in the server's window, so all are reserved.
    assert_eq!(
        crate::core::tally::store(h.store(), T, 100).unwrap(),
        crate::core::tally::Tally {
            files: before.len() + 1,
            reserved: 40
        },
        "{what}: tally"
    );

    // A dry run lists exactly what a real run removes, and changes nothing.
    let dry = clean_tenant(h.store(), T, &state, &spec(true, "20270115T080000Z-1"));
    let mut would = dry.removed_files.clone();
    would.sort();
    assert_eq!(would, OLD, "{what}: decisions");
    assert_eq!(h.rows(), before, "{what}: a dry run changes nothing");

    // The real run: the same rows, through the trash; protected types untouched.
    let real = clean_tenant(h.store(), T, &state, &spec(false, "20270115T080000Z-2"));
    let mut removed = real.removed_files.clone();
    removed.sort();
    assert_eq!(
        removed, would,
        "{what}: the real run removes what the dry run listed"
    );
    let after = h.rows();
    assert_eq!(after.len(), before.len() - 2, "{what}");
    if shared.is_some() {
        // Trash, ledger and records are in the store: the state directory has locks only, and
        // not even those where the store's lock excludes every process.
        let mut local: Vec<String> = std::fs::read_dir(state.path())
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        local.sort();
        let want: &[&str] = if h.store().tenant_lock_excludes_every_process() {
            &[]
        } else {
            &["locks"]
        };
        assert_eq!(local, want, "{what}: in the state directory");
        let trashed = state
            .with_shared(|sh| sh.trash_rows(T, "20270115T080000Z-2"))
            .unwrap()
            .unwrap();
        assert_eq!(trashed.len(), 2, "{what}: the store's trash");
    }
    for (t, _, _) in &before {
        if !matches!(t.as_str(), "session" | "identity-key") {
            assert!(after.iter().any(|r| &r.0 == t), "{what}: {t} kept");
        }
    }

    // Undo puts them back byte for byte and holds them: the next cleanup keeps them.
    let rep =
        restore_tenant_run(h.store(), &state, T, "20270115T080000Z-2", &restore_opts()).unwrap();
    assert!(rep.complete(), "{what}: {:?}", rep.skipped);
    assert_eq!(h.rows(), before, "{what}: restored byte-exact");
    let held = clean_tenant(h.store(), T, &state, &spec(false, "20270115T080000Z-3"));
    assert!(
        held.removed_files.is_empty(),
        "{what}: on hold: {:?}",
        held.removed_files
    );
    crate::core::restore::release(&state, T, restore_opts().now).unwrap();

    // Removed again; the app writes the session anew: restore never overwrites it, and keeps
    // its identity key in the trash with it (a pair).
    let again = clean_tenant(h.store(), T, &state, &spec(false, "20270115T080000Z-4"));
    assert_eq!(again.removed, 2, "{what}: the hold ended");
    let fresh = session(0);
    h.write("session", "5511888888888.0", &fresh);
    let rep =
        restore_tenant_run(h.store(), &state, T, "20270115T080000Z-4", &restore_opts()).unwrap();
    assert!(rep.restored.is_empty(), "{what}: {:?}", rep.restored);
    assert_eq!(rep.skipped.len(), 2, "{what}: {:?}", rep.skipped);
    assert!(
        h.rows()
            .iter()
            .any(|r| r.0 == "session" && r.1 == "5511888888888.0" && r.2 == fresh),
        "{what}: the app's row is kept"
    );

    // A row rewritten after planning is never removed, whichever way the store compares (a
    // token as a real run makes it) and wherever its trash goes.
    let md5 = h.store().compares_md5();
    let planned = Planned {
        key: super::KeyRef {
            key_type: "session".into(),
            id: "5511888888888.0".into(),
        },
        token: Token::for_store(&session(30), None, md5),
    };
    let out = h
        .store()
        .remove(
            T,
            std::slice::from_ref(&planned),
            &mut TrashTarget::Before(&mut |_| Ok(())),
        )
        .unwrap();
    assert!(
        matches!(out[0], RemoveOutcome::Changed),
        "{what}: {:?}",
        out
    );
    if shared.is_some() && h.store().trash_in_transaction() {
        let tag = super::shared::TrashTag {
            run_id: "20270115T080000Z-5".into(),
            host: "contract".into(),
            removed_at: chrono::Utc::now(),
        };
        let out = h
            .store()
            .remove(T, &[planned], &mut TrashTarget::InStore(&tag))
            .unwrap();
        assert!(
            matches!(out[0], RemoveOutcome::Changed),
            "{what}: {:?}",
            out
        );
    }
    assert!(h.rows().iter().any(|r| r.2 == fresh), "{what}");
}

// ---------------------------------------------------------------- the stores

struct Memory(super::memory::MemoryStore);

impl Harness for Memory {
    fn store(&mut self) -> &mut dyn Store {
        &mut self.0
    }
    fn rows(&mut self) -> Vec<(String, String, String)> {
        self.0.rows(T)
    }
    fn write(&mut self, key_type: &str, id: &str, value: &str) {
        self.0.put(T, key_type, id, value, None);
    }
}

#[test]
fn the_in_memory_store_keeps_the_contract() {
    let mut m = super::memory::MemoryStore::new();
    m.tenant(T).creds = Some(CREDS.into());
    for (t, i, v) in fixture() {
        m.put(T, &t, &i, &v, None);
    }
    run(&mut Memory(m), "memory");
}

#[test]
fn the_in_memory_store_keeps_the_contract_with_its_shared_state() {
    let mut m = super::memory::MemoryStore::new();
    m.tenant(T).creds = Some(CREDS.into());
    for (t, i, v) in fixture() {
        m.put(T, &t, &i, &v, None);
    }
    let state = m.state.clone();
    run_shared(&mut Memory(m), "memory, shared");
    // The second restore's rows stayed in the trash (the app rewrote the session), marked so.
    let mut s: Box<dyn super::SharedState> = Box::new(state);
    let runs = s.trash_runs(Some(T)).unwrap();
    assert!(
        runs.iter()
            .any(|r| r.run_id == "20270115T080000Z-4" && r.rows == 2)
    );
    assert!(
        runs.iter()
            .any(|r| r.run_id == "20270115T080000Z-2" && r.rows == 0 && r.restored == 2),
        "{runs:?}"
    );
}

struct Sqlite {
    store: super::sqlite::SqliteStore,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Harness for Sqlite {
    fn store(&mut self) -> &mut dyn Store {
        &mut self.store
    }
    fn rows(&mut self) -> Vec<(String, String, String)> {
        let c = rusqlite::Connection::open(&self.path).unwrap();
        let mut s = c
            .prepare("SELECT type, id, value FROM signal_keys ORDER BY type, id")
            .unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
    fn write(&mut self, key_type: &str, id: &str, value: &str) {
        rusqlite::Connection::open(&self.path)
            .unwrap()
            .execute(
                "INSERT OR REPLACE INTO signal_keys (type, id, value) VALUES (?1, ?2, ?3)",
                [key_type, id, value],
            )
            .unwrap();
    }
}

#[test]
fn sqlite_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{T}.db"));
    let rows = fixture();
    let borrowed: Vec<(&str, &str, String)> = rows
        .iter()
        .map(|(t, i, v)| (t.as_str(), i.as_str(), v.clone()))
        .collect();
    super::clean::tests::make_db(&path, Some(CREDS), &borrowed);
    let store = super::sqlite::SqliteStore::open(&path, false).unwrap();
    run(
        &mut Sqlite {
            store,
            path,
            _dir: dir,
        },
        "sqlite",
    );
}

#[test]
fn sqlite_keeps_the_contract_with_its_state_in_sibling_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{T}.db"));
    let rows = fixture();
    let borrowed: Vec<(&str, &str, String)> = rows
        .iter()
        .map(|(t, i, v)| (t.as_str(), i.as_str(), v.clone()))
        .collect();
    super::clean::tests::make_db(&path, Some(CREDS), &borrowed);
    let store = super::sqlite::SqliteStore::open(dir.path(), false).unwrap();
    let mut h = Sqlite {
        store,
        path: path.clone(),
        _dir: dir,
    };
    run_shared(&mut h, "sqlite, shared");
    // The trash went to the sibling, the app's file got no table of the janitor's.
    let sibling = super::sqlite_state::sibling_of(&path);
    let trashed: i64 = rusqlite::Connection::open(&sibling)
        .unwrap()
        .query_row("SELECT count(*) FROM trash", [], |r| r.get(0))
        .unwrap();
    assert!(trashed > 0);
    let tables: Vec<String> = rusqlite::Connection::open(&path)
        .unwrap()
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(tables, ["creds", "signal_keys"]);
}

/// With REQUIRE_SERVICES=1 (`.ci/run`) a missing server fails the test; else it is skipped.
fn missing(what: &str, why: &dyn std::fmt::Display) {
    assert!(
        std::env::var("REQUIRE_SERVICES").map_or(true, |v| v != "1"),
        "REQUIRE_SERVICES=1 but no {what} answers: {why}"
    );
    eprintln!("SKIPPED: {what} contract ({why})");
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

struct Redis {
    store: super::redis::RedisStore,
    con: redis::Connection,
    hash: String,
    prefix: String,
}

impl Harness for Redis {
    fn store(&mut self) -> &mut dyn Store {
        &mut self.store
    }
    fn rows(&mut self) -> Vec<(String, String, String)> {
        let all: std::collections::BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(&self.hash)
            .query(&mut self.con)
            .unwrap();
        let mut v: Vec<_> = all
            .into_iter()
            .filter(|(k, _)| k != "creds")
            .map(|(k, v)| {
                let (t, i) = super::spec::split_kv_key(&k).unwrap();
                (t.to_owned(), i.to_owned(), v)
            })
            .collect();
        v.sort();
        v
    }
    fn write(&mut self, key_type: &str, id: &str, value: &str) {
        let _: i64 = redis::cmd("HSET")
            .arg(&self.hash)
            .arg(format!("{key_type}-{id}"))
            .arg(value)
            .query(&mut self.con)
            .unwrap();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("*{}*", self.prefix))
            .query(&mut self.con)
            .unwrap_or_default();
        for k in keys {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(k).query(&mut self.con);
        }
    }
}

/// The Redis harness on a key prefix of its own (deleted on drop), or `None` without a server.
fn redis_harness() -> Option<Redis> {
    let url = std::env::var("BAILEYS_JANITOR_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let con = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)));
    let mut con = match con {
        Ok(c) => c,
        Err(e) => {
            missing("redis", &e);
            return None;
        }
    };
    let prefix = unique("bjcontract");
    let layout = super::redis::RedisLayout::preset("redis-hash")
        .unwrap()
        .with_pattern(&format!("{prefix}:*:auth"))
        .unwrap();
    let hash = format!("{prefix}:{T}:auth");
    let mut cmd = redis::cmd("HSET");
    cmd.arg(&hash).arg("creds").arg(CREDS);
    for (t, i, v) in fixture() {
        cmd.arg(format!("{t}-{i}")).arg(v);
    }
    let _: i64 = cmd.query(&mut con).unwrap();
    let store = super::redis::RedisStore::connect(&url, &layout, None, "contract").unwrap();
    Some(Redis {
        store,
        con,
        hash,
        prefix,
    })
}

#[test]
fn redis_keeps_the_contract() {
    let Some(mut h) = redis_harness() else { return };
    // The janitor's lock, as clean_tenant takes it, is released between clauses.
    run(&mut h, "redis");
}

#[test]
fn redis_keeps_the_contract_with_its_shared_state() {
    let Some(mut h) = redis_harness() else { return };
    run_shared(&mut h, "redis with its shared state");
}

struct Postgres {
    store: super::postgres::PgStore,
    client: postgres::Client,
    admin: String,
    name: String,
}

impl Harness for Postgres {
    fn store(&mut self) -> &mut dyn Store {
        &mut self.store
    }
    fn rows(&mut self) -> Vec<(String, String, String)> {
        self.client
            .query(
                "SELECT key_type, key_id, value FROM whatsapp_keys ORDER BY key_type, key_id",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }
    fn write(&mut self, key_type: &str, id: &str, value: &str) {
        self.client
            .execute(
                "INSERT INTO whatsapp_keys (company_id, key_type, key_id, value) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (company_id, key_type, key_id) DO UPDATE SET value = EXCLUDED.value",
                &[&T, &key_type, &id, &value],
            )
            .unwrap();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A database of its own holding the fixture, dropped on drop; `None` (skipped) without a server.
fn postgres_harness() -> Option<Postgres> {
    let admin = std::env::var("BAILEYS_JANITOR_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut c = match postgres::Client::connect(&admin, postgres::NoTls) {
        Ok(c) => c,
        Err(e) => {
            missing("postgres", &e);
            return None;
        }
    };
    let name = unique("janitor_contract_");
    c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let mut cfg: postgres::Config = admin.parse().unwrap();
    cfg.dbname(&name);
    let mut client = cfg.connect(postgres::NoTls).unwrap();
    // No updated_at maintained (NULL): ages from the values and the ledger, as on SQLite.
    client
        .batch_execute(
            "CREATE TABLE whatsapp_auth (company_id TEXT PRIMARY KEY, creds TEXT NOT NULL);
             CREATE TABLE whatsapp_keys (company_id TEXT NOT NULL, key_type TEXT NOT NULL,
               key_id TEXT NOT NULL, value TEXT NOT NULL, created_at TIMESTAMPTZ,
               updated_at TIMESTAMPTZ, expires_at TIMESTAMPTZ,
               PRIMARY KEY (company_id, key_type, key_id));",
        )
        .unwrap();
    client
        .execute("INSERT INTO whatsapp_auth VALUES ($1, $2)", &[&T, &CREDS])
        .unwrap();
    for (t, i, v) in fixture() {
        client
            .execute(
                "INSERT INTO whatsapp_keys (company_id, key_type, key_id, value) VALUES ($1, $2, $3, $4)",
                &[&T, &t, &i, &v],
            )
            .unwrap();
    }
    let url = {
        let host = match &cfg.get_hosts()[0] {
            postgres::config::Host::Tcp(h) => h.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        };
        format!(
            "postgres://{}@{}:{}/{}",
            cfg.get_user().unwrap_or("postgres"),
            host,
            cfg.get_ports().first().copied().unwrap_or(5432),
            name
        )
    };
    let store = super::postgres::PgStore::connect(
        &url,
        &super::spec::Layout::preset("per-type").unwrap(),
        "contract",
    )
    .unwrap();
    Some(Postgres {
        store,
        client,
        admin,
        name,
    })
}

#[test]
fn postgres_keeps_the_contract() {
    if let Some(mut h) = postgres_harness() {
        run(&mut h, "postgres");
    }
}

#[test]
fn postgres_keeps_the_contract_with_its_state_in_the_store() {
    if let Some(mut h) = postgres_harness() {
        run_shared(&mut h, "postgres, shared");
    }
}

#[test]
fn postgres_state_keeps_the_shared_contract() {
    let Some(h) = postgres_harness() else { return };
    let opts = super::shared::SharedOptions::default();
    super::shared_contract::check(&mut || h.store.shared_state(&opts).unwrap().unwrap());
}

struct Mysql {
    store: super::mysql::MysqlStore,
    admin: ::mysql::Conn,
    db: String,
    /// The database of the janitor's state, the test's own (the default one is server-wide).
    state: super::shared::SharedOptions,
}

impl Harness for Mysql {
    fn store(&mut self) -> &mut dyn Store {
        &mut self.store
    }
    fn rows(&mut self) -> Vec<(String, String, String)> {
        use ::mysql::prelude::Queryable;
        let rows: Vec<(String, String)> = self
            .admin
            .query(format!(
                "SELECT id, value FROM {}.auth WHERE session = '{T}' AND id <> 'creds'",
                self.db
            ))
            .unwrap();
        let mut v: Vec<_> = rows
            .into_iter()
            .map(|(k, v)| {
                let (t, i) = super::spec::split_kv_key(&k).unwrap();
                (t.to_owned(), i.to_owned(), v)
            })
            .collect();
        v.sort();
        v
    }
    fn write(&mut self, key_type: &str, id: &str, value: &str) {
        use ::mysql::prelude::Queryable;
        // mysql-baileys' own write.
        self.admin
            .exec_drop(
                format!(
                    "INSERT INTO {}.auth (session, id, value) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE value = ?",
                    self.db
                ),
                (T, format!("{key_type}-{id}"), value, value),
            )
            .unwrap();
    }
}

impl Drop for Mysql {
    fn drop(&mut self) {
        use ::mysql::prelude::Queryable;
        let _ = self
            .admin
            .query_drop(format!("DROP DATABASE IF EXISTS {}", self.db));
        let _ = self
            .admin
            .query_drop(format!("DROP DATABASE IF EXISTS {}", self.state.schema));
    }
}

/// A database of its own holding the fixture (and one for the state), dropped on drop; `None`
/// (skipped) without a server.
fn mysql_harness() -> Option<Mysql> {
    use ::mysql::prelude::Queryable;
    let admin_url = std::env::var("BAILEYS_JANITOR_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let opts = ::mysql::Opts::from_url(&admin_url).unwrap();
    let mut admin = match ::mysql::Conn::new(
        ::mysql::OptsBuilder::from_opts(opts.clone())
            .tcp_connect_timeout(Some(Duration::from_secs(2))),
    ) {
        Ok(c) => c,
        Err(e) => {
            missing("mysql", &e);
            return None;
        }
    };
    let db = unique("bj_contract_");
    admin.query_drop(format!("CREATE DATABASE {db}")).unwrap();
    // mysql-baileys 1.5.4's table.
    admin
        .query_drop(format!(
            "CREATE TABLE {db}.`auth` (`session` varchar(50) NOT NULL, `id` varchar(80) NOT NULL, `value` LONGTEXT DEFAULT NULL, UNIQUE KEY `idxunique` (`session`,`id`), KEY `idxsession` (`session`), KEY `idxid` (`id`)) ENGINE=MyISAM"
        ))
        .unwrap();
    admin
        .exec_drop(
            format!("INSERT INTO {db}.auth VALUES (?, 'creds', ?)"),
            (T, CREDS),
        )
        .unwrap();
    for (t, i, v) in fixture() {
        admin
            .exec_drop(
                format!("INSERT INTO {db}.auth VALUES (?, ?, ?)"),
                (T, format!("{t}-{i}"), v),
            )
            .unwrap();
    }
    let authority = admin_url
        .split_once("://")
        .map(|(_, r)| r.split(['/', '?']).next().unwrap_or(r))
        .unwrap();
    let url = format!("mysql://{authority}/{db}");
    let mut store = super::mysql::MysqlStore::connect(
        &url,
        &super::mysql::preset("mysql-baileys").unwrap(),
        false,
    )
    .unwrap();
    // The contract's last clause removes without clean_tenant's lock; MySQL refuses a batch
    // whose tenant lock this connection does not hold, so the harness holds it once more
    // (GET_LOCK counts: clean_tenant's unlock leaves this one).
    assert_eq!(store.lock_tenant(T).unwrap(), super::TenantLock::Acquired);
    let state = super::shared::SharedOptions {
        schema: format!("{db}_state"),
        ..Default::default()
    };
    Some(Mysql {
        store,
        admin,
        db,
        state,
    })
}

#[test]
fn mysql_keeps_the_contract() {
    if let Some(mut h) = mysql_harness() {
        run(&mut h, "mysql");
    }
}

#[test]
fn mysql_keeps_the_contract_with_its_state_in_the_store() {
    if let Some(mut h) = mysql_harness() {
        let opts = h.state.clone();
        run_shared_with(&mut h, "mysql, shared", &opts);
    }
}

#[test]
fn mysql_state_keeps_the_shared_contract() {
    let Some(h) = mysql_harness() else { return };
    super::shared_contract::check(&mut || h.store.shared_state(&h.state).unwrap().unwrap());
}
