//! Baileys' own SQLite store (`useSqliteAuthState`, develop branch): one database file per
//! account, `creds(key, value)` with the row `__creds__`, `signal_keys(type, id, value)`, values
//! in `BufferJSON` text, WAL mode, no timestamps. A folder of `*.db` files is a fleet.
//!
//! The app holds the same file: every write here is one short `BEGIN IMMEDIATE` transaction
//! with a busy timeout, so the app waits at most one batch for us and we wait for it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::{
    Planned, RawRow, RemoveOutcome, RestoreOutcome, Result, Store, StoreError, TenantLock,
    TrashRow, TrashTarget, fingerprint,
};

pub const CREDS_ROW: &str = "__creds__";
/// How long a statement waits for the app's write lock before giving up on this batch.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(2);
/// Rows per removal transaction. A batch's time is its trash commit's fsyncs (about 5, see
/// `sqlite_state`), not its rows (a row is ~20 µs of local work): 500 rows keep the app waiting
/// no longer than 100 did, in fewer commits (a tenant's removals of one rank in one).
pub const BATCH: usize = 500;

pub struct SqliteStore {
    /// A folder of `*.db` files, or one file.
    path: PathBuf,
    single: bool,
    read_only: bool,
    open: Option<(String, Connection)>,
    /// Locks held on the janitor's own state files (path, file, how many times taken).
    locks: Vec<(PathBuf, std::fs::File, usize)>,
}

impl SqliteStore {
    /// Opens a store at `path`; nothing is created. `read_only` for dry runs and `status`.
    pub fn open(path: &Path, read_only: bool) -> Result<SqliteStore> {
        let meta = std::fs::metadata(path).map_err(|e| {
            StoreError::Unavailable(format!("sqlite store {}: {e}", path.display()))
        })?;
        let mut store = SqliteStore {
            path: path.to_owned(),
            single: meta.is_file(),
            read_only,
            open: None,
            locks: Vec::new(),
        };
        if store.single {
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(super::sqlite_state::is_state_file)
            {
                return Err(StoreError::Schema(format!(
                    "{} is the janitor's own state file, not an account: name the account's .db file or its folder",
                    path.display()
                )));
            }
            // One file named on the command line: not a Baileys store is a configuration error.
            let tenant = store.tenants()?.remove(0);
            store.conn(&tenant)?;
        }
        Ok(store)
    }

    fn file_of(&self, tenant: &str) -> PathBuf {
        if self.single {
            self.path.clone()
        } else {
            self.path.join(format!("{tenant}.db"))
        }
    }

    fn conn(&mut self, tenant: &str) -> Result<&mut Connection> {
        if self.open.as_ref().is_none_or(|(t, _)| t != tenant) {
            self.open = None;
            let file = self.file_of(tenant);
            let flags = if self.read_only {
                OpenFlags::SQLITE_OPEN_READ_ONLY
            } else {
                OpenFlags::SQLITE_OPEN_READ_WRITE
            } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let c = Connection::open_with_flags(&file, flags).map_err(|e| {
                StoreError::Unavailable(format!("cannot open {}: {e}", file.display()))
            })?;
            c.busy_timeout(BUSY_TIMEOUT)
                .map_err(|e| StoreError::Query(e.to_string()))?;
            // Baileys' own setting for these files: in WAL mode a commit needs no fsync of the
            // database, so our write transactions stay short. (Per connection; the app's is its own.)
            if !self.read_only {
                c.pragma_update(None, "synchronous", "NORMAL")
                    .map_err(|e| StoreError::Query(e.to_string()))?;
            }
            check_schema(&c, &file)?;
            self.open = Some((tenant.to_owned(), c));
        }
        Ok(&mut self.open.as_mut().expect("just opened").1)
    }
}

impl SqliteStore {
    /// Takes `flock` on one of the janitor's state files (created 0600 if missing), never on the
    /// app's file: every janitor on this folder sees it, whatever its state directory, and it
    /// dies with its process. `flock` and SQLite's own byte-range (`fcntl`) locks do not interact
    /// on Linux, so the lock never blocks a transaction on the file. Taken again by this
    /// process (one file: the trigger's and the tenant's lock are the same file), it is counted.
    fn lock_file(&mut self, file: &Path, what: &str) -> Result<TenantLock> {
        if self.read_only {
            // Status and dry runs write nothing, so they exclude no one (and create nothing).
            return Ok(TenantLock::Acquired);
        }
        if let Some(held) = self.locks.iter_mut().find(|(p, _, _)| p == file) {
            held.2 += 1;
            return Ok(TenantLock::Acquired);
        }
        super::sqlite_state::create_0600(file)?;
        let f = std::fs::File::open(file)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", file.display())))?;
        match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                self.locks.push((file.to_owned(), f, 1));
                Ok(TenantLock::Acquired)
            }
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(TenantLock::Busy(format!(
                "another janitor on this folder holds {what} (its lock on {})",
                file.display()
            ))),
            Err(e) => Err(StoreError::Unavailable(format!(
                "cannot lock {}: {e}",
                file.display()
            ))),
        }
    }

    fn unlock_file(&mut self, file: &Path) {
        if let Some(i) = self.locks.iter().position(|(p, _, _)| p == file) {
            self.locks[i].2 -= 1;
            if self.locks[i].2 == 0 {
                // Closing the file releases the lock.
                self.locks.remove(i);
            }
        }
    }
}

fn check_schema(c: &Connection, file: &Path) -> Result<()> {
    let has = |table: &str| -> Result<bool> {
        c.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(|e| {
            StoreError::Schema(format!("{} is not a SQLite database: {e}", file.display()))
        })
    };
    for table in ["creds", "signal_keys"] {
        if !has(table)? {
            return Err(StoreError::Schema(format!(
                "{} is not a Baileys SQLite auth store: no table {table}",
                file.display()
            )));
        }
    }
    if !unique_on_type_and_id(c).map_err(|e| {
        StoreError::Schema(format!("{}: cannot read the indexes: {e}", file.display()))
    })? {
        // Without it a restore cannot tell "exists again" from "missing" (ON CONFLICT needs
        // it), and a removal could hit duplicate rows: a clean that cannot be undone.
        return Err(StoreError::Schema(format!(
            "{}: signal_keys has no primary key or unique index on (type, id), so removed rows could not be restored safely; not cleaned (Baileys creates it with PRIMARY KEY (type, id))",
            file.display()
        )));
    }
    Ok(())
}

/// Whether `signal_keys` has a primary key or unique index on exactly `(type, id)`.
fn unique_on_type_and_id(c: &Connection) -> rusqlite::Result<bool> {
    let mut list =
        c.prepare("SELECT name FROM pragma_index_list('signal_keys') WHERE \"unique\" = 1")?;
    let names: Vec<String> = list
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in names {
        let mut info = c.prepare("SELECT name FROM pragma_index_info(?1)")?;
        let mut cols: Vec<String> = info
            .query_map([&name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        cols.sort();
        if cols == ["id", "type"] {
            return Ok(true);
        }
    }
    Ok(false)
}

fn query_err(file: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::Query(format!("{file}: busy (the app held the write lock)"))
        }
        rusqlite::Error::SqliteFailure(_, Some(msg)) if msg.contains("no such column") => {
            StoreError::Schema(format!("{file}: not a Baileys SQLite auth store: {msg}"))
        }
        e => StoreError::Query(format!("{file}: {e}")),
    }
}

impl Store for SqliteStore {
    fn tenants(&mut self) -> Result<Vec<String>> {
        if self.single {
            let stem = self
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "default".into());
            return Ok(vec![stem]);
        }
        let rd = std::fs::read_dir(&self.path).map_err(|e| {
            StoreError::Unavailable(format!("cannot list {}: {e}", self.path.display()))
        })?;
        let mut out: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                // The janitor's own files beside the accounts are never tenants.
                if super::sqlite_state::is_state_file(&name) {
                    return None;
                }
                let stem = name.strip_suffix(".db")?;
                (!stem.is_empty() && !stem.starts_with('.')).then(|| stem.to_owned())
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn creds(&mut self, tenant: &str) -> Result<Option<Vec<u8>>> {
        let c = self.conn(tenant)?;
        c.query_row("SELECT value FROM creds WHERE key = ?1", [CREDS_ROW], |r| {
            r.get::<_, String>(0)
        })
        .optional()
        .map(|v| v.map(String::into_bytes))
        .map_err(query_err(tenant))
    }

    fn count(&mut self, tenant: &str) -> Result<usize> {
        let c = self.conn(tenant)?;
        c.query_row(
            "SELECT (SELECT count(*) FROM signal_keys) + (SELECT count(*) FROM creds WHERE key = ?1)",
            [CREDS_ROW],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as usize)
        .map_err(query_err(tenant))
    }

    fn scan(&mut self, tenant: &str, f: &mut dyn FnMut(RawRow<'_>)) -> Result<()> {
        let c = self.conn(tenant)?;
        let mut stmt = c
            .prepare("SELECT type, id, value FROM signal_keys")
            .map_err(query_err(tenant))?;
        let mut rows = stmt.query([]).map_err(query_err(tenant))?;
        while let Some(r) = rows.next().map_err(query_err(tenant))? {
            let (Ok(t), Ok(id), Ok(v)) = (
                r.get_ref(0).and_then(|v| Ok(v.as_str()?)),
                r.get_ref(1).and_then(|v| Ok(v.as_str()?)),
                r.get_ref(2).and_then(|v| Ok(v.as_str()?)),
            ) else {
                // Not text: not something Baileys wrote; never planned.
                continue;
            };
            f(RawRow {
                key_type: t,
                id,
                value: v,
                updated_at_us: None,
                size: None,
            });
        }
        Ok(())
    }

    fn batch(&self) -> usize {
        BATCH
    }

    /// Through the `(type, id)` key: no value is read.
    fn pre_key_ids(&mut self, tenant: &str, f: &mut dyn FnMut(&str)) -> Result<()> {
        let c = self.conn(tenant)?;
        let mut stmt = c
            .prepare("SELECT id FROM signal_keys WHERE type = 'pre-key' AND typeof(value) = 'text'")
            .map_err(query_err(tenant))?;
        let mut rows = stmt.query([]).map_err(query_err(tenant))?;
        while let Some(r) = rows.next().map_err(query_err(tenant))? {
            // Not text: not something Baileys wrote (and `scan` skips it too).
            if let Ok(id) = r.get_ref(0).and_then(|v| Ok(v.as_str()?)) {
                f(id);
            }
        }
        Ok(())
    }

    fn remove(
        &mut self,
        tenant: &str,
        batch: &[Planned],
        trash_to: &mut TrashTarget<'_>,
    ) -> Result<Vec<RemoveOutcome>> {
        let c = self.conn(tenant)?;
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(query_err(tenant))?;
        let mut out = Vec::with_capacity(batch.len());
        let mut trash = Vec::new();
        {
            let mut select = tx
                .prepare_cached("SELECT value FROM signal_keys WHERE type = ?1 AND id = ?2")
                .map_err(query_err(tenant))?;
            let mut delete = tx
                .prepare_cached("DELETE FROM signal_keys WHERE type = ?1 AND id = ?2")
                .map_err(query_err(tenant))?;
            for p in batch {
                let now: Option<String> = select
                    .query_row(params![p.key.key_type, p.key.id], |r| r.get(0))
                    .optional()
                    .map_err(query_err(tenant))?;
                match now {
                    None => out.push(RemoveOutcome::Vanished),
                    Some(v) if fingerprint(v.as_bytes()) != p.token.hash => {
                        out.push(RemoveOutcome::Changed)
                    }
                    Some(v) => {
                        delete
                            .execute(params![p.key.key_type, p.key.id])
                            .map_err(query_err(tenant))?;
                        out.push(RemoveOutcome::Removed {
                            bytes: v.len() as u64,
                        });
                        trash.push(TrashRow {
                            key_type: p.key.key_type.clone(),
                            id: p.key.id.clone(),
                            value: v,
                            columns: Default::default(),
                        });
                    }
                }
            }
        }
        crate::core::fault::point("sqlite.after_delete");
        if !trash.is_empty() {
            // Durable in the trash first (the sibling file commits with a synced journal); an
            // error here rolls the deletes back. The app's file and the sibling cannot commit
            // together (in WAL mode SQLite is atomic per file only), so a crash from here to the
            // commit leaves the rows in place and in the trash: restore skips what exists.
            trash_to
                .before_commit(&trash)
                .map_err(|e| StoreError::Query(format!("cannot write the trash: {e}")))?;
            crate::core::fault::point("sqlite.after_trash");
        }
        tx.commit().map_err(query_err(tenant))?;
        crate::core::fault::point("sqlite.after_commit");
        Ok(out)
    }

    fn restore(&mut self, tenant: &str, rows: &[TrashRow]) -> Result<Vec<RestoreOutcome>> {
        let c = self.conn(tenant)?;
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(query_err(tenant))?;
        let mut out = Vec::with_capacity(rows.len());
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO signal_keys (type, id, value) VALUES (?1, ?2, ?3) ON CONFLICT (type, id) DO NOTHING",
                )
                .map_err(query_err(tenant))?;
            for r in rows {
                let n = insert
                    .execute(params![r.key_type, r.id, r.value])
                    .map_err(query_err(tenant))?;
                out.push(if n == 1 {
                    RestoreOutcome::Restored
                } else {
                    RestoreOutcome::Exists
                });
            }
        }
        tx.commit().map_err(query_err(tenant))?;
        Ok(out)
    }

    fn lock_tenant(&mut self, tenant: &str) -> Result<TenantLock> {
        // The state directory's lock (taken by the caller) is per host; janitors with other state
        // directories on this folder see this one, on the tenant's sibling file.
        let file = super::sqlite_state::tenant_file(&self.path, self.single, tenant);
        self.lock_file(&file, tenant)
    }

    fn unlock_tenant(&mut self, tenant: &str) {
        let file = super::sqlite_state::tenant_file(&self.path, self.single, tenant);
        self.unlock_file(&file);
    }

    /// `flock` on the tenant's sibling file: every janitor on the folder, whatever its state
    /// directory, and every worker (each handle opens the file itself).
    fn tenant_lock_excludes_every_process(&self) -> bool {
        true
    }

    /// A cleanup: 4 whatever the cores, since an account's time is its synced trash commits
    /// (the disk's latency, not the CPU), which more workers overlap. On 2 cores, 1,000
    /// accounts: 6.4-8.6 s on 2 workers, 4.8-6.9 s on 4 (`scripts/bench_stores.py`'s fleet,
    /// three runs each). A dry run (opened read-only) only reads, from the page cache: the
    /// cores. One file: one tenant, one worker.
    fn default_jobs(&self) -> usize {
        if self.single {
            1
        } else if self.read_only {
            crate::core::parallel::default_jobs()
        } else {
            4
        }
    }

    fn lock_global(&mut self) -> Result<TenantLock> {
        let file = super::sqlite_state::host_file(&self.path, self.single);
        self.lock_file(&file, "the trigger")
    }

    /// Each account is its own file and the work is this process's CPU and file I/O: a second
    /// worker on its own connections cleans another account at the same time. (One file: one
    /// tenant, nothing to share out.)
    fn another(&self) -> Result<Option<Box<dyn Store + Send>>> {
        if self.single {
            return Ok(None);
        }
        Ok(Some(Box::new(SqliteStore {
            path: self.path.clone(),
            single: false,
            read_only: self.read_only,
            open: None,
            locks: Vec::new(),
        })))
    }

    fn shared_state(
        &self,
        opts: &super::shared::SharedOptions,
    ) -> Result<Option<Box<dyn super::SharedState>>> {
        Ok(Some(Box::new(super::sqlite_state::SqliteState::open(
            &self.path,
            self.single,
            opts,
        )?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(sql: &str) -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.db");
        let c = Connection::open(&file).unwrap();
        c.execute_batch(sql).unwrap();
        check_schema(&c, &file)
    }

    const CREDS: &str = "CREATE TABLE creds (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

    /// A cleanup of a folder waits on the disk: 4 workers; a dry run reads: the cores; one
    /// file: one worker.
    #[test]
    fn workers_by_default_follow_what_the_run_waits_on() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.db");
        Connection::open(&file)
            .unwrap()
            .execute_batch(
                "CREATE TABLE creds (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE signal_keys (type TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (type, id));",
            )
            .unwrap();
        assert_eq!(
            SqliteStore::open(dir.path(), false).unwrap().default_jobs(),
            4
        );
        assert_eq!(
            SqliteStore::open(dir.path(), true).unwrap().default_jobs(),
            crate::core::parallel::default_jobs()
        );
        assert_eq!(SqliteStore::open(&file, false).unwrap().default_jobs(), 1);
    }

    #[test]
    fn the_schema_check_wants_both_tables_and_a_unique_key_on_type_and_id() {
        // Baileys' own, and a unique index in the other column order.
        schema_of(&format!(
            "{CREDS} CREATE TABLE signal_keys (type TEXT, id TEXT, value TEXT, PRIMARY KEY (type, id));"
        ))
        .unwrap();
        schema_of(&format!(
            "{CREDS} CREATE TABLE signal_keys (type TEXT, id TEXT, value TEXT);
             CREATE INDEX by_type ON signal_keys (type);
             CREATE UNIQUE INDEX k ON signal_keys (id, type);"
        ))
        .unwrap();
        for (sql, says) in [
            (
                "CREATE TABLE signal_keys (type TEXT, id TEXT, value TEXT, PRIMARY KEY (type, id));"
                    .to_owned(),
                "no table creds",
            ),
            (CREDS.to_owned(), "no table signal_keys"),
            (
                format!("{CREDS} CREATE TABLE signal_keys (type TEXT, id TEXT, value TEXT);"),
                "no primary key or unique index",
            ),
            (
                format!(
                    "{CREDS} CREATE TABLE signal_keys (type TEXT, id TEXT, value TEXT);
                     CREATE UNIQUE INDEX k ON signal_keys (type, id, value);
                     CREATE UNIQUE INDEX t ON signal_keys (id);
                     CREATE INDEX n ON signal_keys (type, id);"
                ),
                "no primary key or unique index",
            ),
        ] {
            let e = schema_of(&sql).unwrap_err();
            assert!(e.is_configuration(), "{e}");
            assert!(e.to_string().contains(says), "{sql}: {e}");
        }
        // Not a database at all.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.db");
        std::fs::write(&file, vec![7u8; 4096]).unwrap();
        let c = Connection::open(&file).unwrap();
        let e = check_schema(&c, &file).unwrap_err();
        assert!(e.to_string().contains("is not a SQLite database"), "{e}");
    }
}
