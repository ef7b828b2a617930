//! The janitor's state for Baileys' SQLite store (issue 23): a sibling file beside each account
//! file, `<account>.db-janitor`, never a table in the app's own file.
//!
//! ```text
//! /srv/wa/auth/shop1.db                 the app's file: untouched apart from the removed rows
//! /srv/wa/auth/shop1.db-janitor         shop1's company record, ledger and trash
//! /srv/wa/auth/.baileys-janitor      each host's runs (a folder of files)
//! /srv/wa/shop1.db + shop1.db-janitor   one file: the sibling holds the runs too
//! ```
//!
//! Why beside the account file: a tenant's trash follows its file (copy the folder, keep the
//! trash; delete an account, its sibling is purged with it), and every janitor that can open the
//! account file (two state directories, two containers on one volume) sees the same truth.
//! Host-wide documents (each host's runs) live in one dot file in the folder, for the same reason:
//! the state directory is per host, and `status` on any host must show every host's runs. The dot
//! keeps it out of the tenants, as `*.db-janitor` files are kept out (see
//! [`is_state_file`]).
//!
//! Files are created with mode 0600 (never chmod'ed after: no window where others could open one)
//! since the trash holds private keys. Journal: the rollback journal (`DELETE`), not WAL. The
//! trash commits with `synchronous = EXTRA`: durable when it returns, the journal's unlink
//! included, so [`SharedState::put_trash`] really is on disk before the app's file commits the
//! delete; documents commit with `FULL` (a power loss may undo the last one, never corrupt the
//! file). Not WAL because a read-only open (`status`, dry runs) of a WAL file leaves `-wal` and
//! `-shm` files behind (measured), and at rest a WAL sibling could keep copies of purged private
//! keys in its `-wal`. The price: about 5 fsyncs per write transaction instead of 1; a cleanup
//! writes one per batch and two documents per tenant. `secure_delete` overwrites purged rows.

use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::shared::TrashedRow;
use super::shared::{Doc, SCHEMA_VERSION, SharedOptions, SharedState, Space, TrashRun, TrashTag};
use super::{KeyRef, Result, StoreError, TrashRow};

/// The suffix of a sibling state file: `shop1.db` → `shop1.db-janitor`. Like SQLite's own
/// `-wal`, `-shm` and `-journal`, it does not end in `.db`: an app that opens every `*.db` in
/// its folder as an account never takes the janitor's files for one (and never writes into them).
pub const SIBLING_SUFFIX: &str = "-janitor";
/// The host-wide state file in a folder of account files (not `*.db`, for the same reason).
pub const FOLDER_STATE_FILE: &str = ".baileys-janitor";
/// State files kept open at once (`--jobs` is at most 64, usually 4; a file reopened costs an
/// open and a schema read, ~50 µs).
const OPEN_FILES: usize = 8;
/// Siblings are only contended by other janitors: wait longer than for the app.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a file name in the store's folder is the janitor's own, never a tenant.
pub fn is_state_file(name: &str) -> bool {
    name.ends_with(SIBLING_SUFFIX) || name == FOLDER_STATE_FILE
}

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    space TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (space, name));
CREATE TABLE IF NOT EXISTS trash (
    tenant TEXT NOT NULL, run_id TEXT NOT NULL, host TEXT NOT NULL,
    removed_at_us INTEGER NOT NULL,
    type TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL, columns TEXT NOT NULL,
    restored INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, run_id, type, id));
CREATE INDEX IF NOT EXISTS trash_removed_at ON trash (removed_at_us);
";

/// One open state file.
struct Open {
    path: PathBuf,
    conn: Connection,
    /// The schema version found (0: an empty file, no tables yet).
    version: u32,
}

/// [`SharedState`] in sibling files of a SQLite store.
pub struct SqliteState {
    /// The store: a folder of `*.db` files, or one file.
    root: PathBuf,
    single: bool,
    read_only: bool,
    /// The files open last, newest last: the host-wide one and the tenants being cleaned (up to
    /// `--jobs` at once, each thread's batches in turn), so a batch does not reopen its file.
    open: Vec<Open>,
}

impl SqliteState {
    /// The state of the store at `root` (`single`: one account file). Checks the host-wide file's
    /// schema version now, so a newer binary's state is refused before anything is done.
    pub fn open(root: &Path, single: bool, opts: &SharedOptions) -> Result<SqliteState> {
        let mut state = SqliteState {
            root: root.to_owned(),
            single,
            read_only: opts.read_only,
            open: Vec::new(),
        };
        let host = state.host_file();
        state.file(&host, false)?;
        // Every sibling too, from the version the header carries (`user_version`, kept equal to
        // `meta.schema_version`): a 100-byte read per file, not an open, so a fleet of a
        // thousand accounts is checked in milliseconds. (`meta` stays the truth, checked again
        // when a file is opened.)
        for path in state.all_files()? {
            if let Some(v) = header_version(&path) {
                check_version(&path, v)?;
            }
        }
        Ok(state)
    }

    fn host_file(&self) -> PathBuf {
        host_file(&self.root, self.single)
    }

    fn tenant_file(&self, tenant: &str) -> Result<PathBuf> {
        Ok(tenant_file(&self.root, self.single, tenant))
    }

    fn doc_file(&self, space: Space, name: &str) -> Result<PathBuf> {
        match space {
            Space::Runs => Ok(self.host_file()),
            Space::Company | Space::Ledger => self.tenant_file(name),
        }
    }

    /// Every state file that exists: the host-wide one and each sibling, sorted.
    fn all_files(&self) -> Result<Vec<PathBuf>> {
        if self.single {
            let f = sibling_of(&self.root);
            return Ok(if f.exists() { vec![f] } else { vec![] });
        }
        let rd = std::fs::read_dir(&self.root).map_err(|e| {
            StoreError::Unavailable(format!("cannot list {}: {e}", self.root.display()))
        })?;
        let mut out: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| e.file_name().to_str().is_some_and(is_state_file))
            .map(|e| e.path())
            .collect();
        out.sort();
        Ok(out)
    }

    /// The open file at `path`. `write`: created (mode 0600) and migrated when needed; else
    /// `None` when it does not exist or has no tables yet, and nothing is created.
    fn file(&mut self, path: &Path, write: bool) -> Result<Option<&mut Open>> {
        if write && self.read_only {
            return Err(StoreError::Query(format!(
                "{}: opened read-only (status, dry run): nothing is written",
                path.display()
            )));
        }
        let at = match self.open.iter().position(|o| o.path == path) {
            Some(i) => {
                // Most recently used last: the least recently used is closed first.
                let o = self.open.remove(i);
                self.open.push(o);
                self.open.len() - 1
            }
            None => {
                refuse_links(path)?;
                if !path.exists() {
                    if !write {
                        return Ok(None);
                    }
                    create_0600(path)?;
                }
                let opened = open_file(path, self.read_only)?;
                if self.open.len() >= OPEN_FILES {
                    self.open.remove(0);
                }
                self.open.push(opened);
                self.open.len() - 1
            }
        };
        let o = &mut self.open[at];
        if o.version < SCHEMA_VERSION && !write {
            // Another janitor may have created the tables since this file was opened.
            o.version = schema_version(&o.conn).map_err(|e| file_err(path, e))?;
            check_version(path, o.version)?;
        }
        if o.version < SCHEMA_VERSION {
            if !write {
                // An empty file (another janitor just created it) or an older schema: nothing
                // this binary could read yet. Reads see it as empty until the first write.
                return Ok((o.version > 0).then_some(o));
            }
            migrate(o)?;
        }
        Ok(Some(o))
    }
}

/// Where host-wide documents (each host's runs) live, for the store at `root`.
pub fn host_file(root: &Path, single: bool) -> PathBuf {
    if single {
        sibling_of(root)
    } else {
        root.join(FOLDER_STATE_FILE)
    }
}

/// The state file of a tenant of the store at `root`: its account file's sibling.
pub fn tenant_file(root: &Path, single: bool, tenant: &str) -> PathBuf {
    if single {
        return sibling_of(root);
    }
    // Tenants come from `<tenant>.db` file names. A name no account file could have (it would
    // leave the folder or hide) has no sibling: it is kept in the host-wide file, whose rows
    // carry their tenant, so no name ever reaches a path outside the folder.
    if tenant.is_empty() || tenant.starts_with('.') || tenant.contains(['/', '\0']) {
        return host_file(root, single);
    }
    root.join(format!("{tenant}.db{SIBLING_SUFFIX}"))
}

/// `/x/shop1.db` → `/x/shop1.db-janitor` (`/x/shop1` → `/x/shop1-janitor`).
pub fn sibling_of(account: &Path) -> PathBuf {
    let name = account
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    account.with_file_name(format!("{name}{SIBLING_SUFFIX}"))
}

impl SqliteState {
    /// Drops one state file's trash older than `cutoff`: (runs, rows).
    fn purge_file(&mut self, path: &Path, cutoff: i64) -> Result<(usize, usize)> {
        // Most files hold nothing that old: look before taking the write lock.
        let due = match self.file(path, false)? {
            Some(o) => o
                .conn
                .query_row(
                    "SELECT count(DISTINCT tenant || char(0) || run_id), count(*)
                     FROM trash WHERE removed_at_us < ?1",
                    [cutoff],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                )
                .map_err(|e| file_err(path, e))?,
            None => (0, 0),
        };
        if due.1 == 0 || self.read_only {
            return Ok((0, 0));
        }
        let o = self.file(path, true)?.expect("created for a write");
        let n = o
            .conn
            .execute("DELETE FROM trash WHERE removed_at_us < ?1", [cutoff])
            .map_err(|e| file_err(path, e))?;
        Ok((due.0 as usize, n))
    }

    /// The trash runs kept in one state file (of `tenant`, or all it holds).
    fn runs_in(&mut self, path: &Path, tenant: Option<&str>) -> Result<Vec<TrashRun>> {
        let Some(o) = self.file(path, false)? else {
            return Ok(Vec::new());
        };
        let err = |e| file_err(path, e);
        let mut s = o
            .conn
            .prepare_cached(
                "SELECT tenant, run_id, max(host), max(removed_at_us),
                        sum(restored = 0), sum(CASE WHEN restored = 0 THEN length(CAST(value AS BLOB)) ELSE 0 END),
                        sum(restored)
                 FROM trash WHERE ?1 IS NULL OR tenant = ?1
                 GROUP BY tenant, run_id",
            )
            .map_err(err)?;
        let rows = s
            .query_map([tenant], |r| {
                Ok(TrashRun {
                    tenant: r.get(0)?,
                    run_id: r.get(1)?,
                    host: r.get(2)?,
                    removed_at: from_us(r.get(3)?),
                    rows: r.get::<_, i64>(4)? as usize,
                    bytes: r.get::<_, i64>(5)? as u64,
                    restored: r.get::<_, i64>(6)? as usize,
                })
            })
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }
}

/// A state file holds removed private keys: it is a regular file in the account's folder, never
/// a link. Following one would write the trash wherever it points (a file others can read,
/// another folder), and a dangling one would be created there. Missing is fine (created later,
/// `O_EXCL`, which never follows a link).
fn refuse_links(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(StoreError::Unavailable(format!(
            "{} is a symbolic link: the janitor's state file must be a regular file beside the account; \
             nothing is read or written through it (remove the link; the state of this account is then kept anew)",
            path.display()
        ))),
        Ok(m) if !m.file_type().is_file() => Err(StoreError::Unavailable(format!(
            "{} is not a regular file: the janitor's state file must be one; nothing is read or written through it",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Creates an empty file (a valid empty SQLite database) with mode 0600 from the first moment;
/// another janitor creating it at the same time is fine. The folder is synced so the file's
/// name survives a power loss as its first commit does.
pub(crate) fn create_0600(path: &Path) -> Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {
            if let Some(dir) = path.parent() {
                let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Unavailable(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

fn open_file(path: &Path, read_only: bool) -> Result<Open> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX
        // A link put there after `refuse_links` looked: refused by SQLite itself.
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let err = |e: rusqlite::Error| file_err(path, e);
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot open {}: {e}{}",
            path.display(),
            owner_hint(path)
        ))
    })?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    if !read_only {
        // See the module comment. Documents commit with FULL: a power loss can at worst undo
        // the last one (the journal's unlink not yet on disk), never corrupt the file; the trash
        // commits with EXTRA (`put_trash`).
        conn.pragma_update(None, "journal_mode", "DELETE")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(err)?;
    }
    let version = schema_version(&conn).map_err(err)?;
    check_version(path, version)?;
    Ok(Open {
        path: path.to_owned(),
        conn,
        version,
    })
}

/// The `user_version` in a SQLite file's header (big-endian at offset 60), without opening it
/// as a database; `None` for an empty or unreadable file.
fn header_version(path: &Path) -> Option<u32> {
    use std::io::Read as _;
    let mut head = [0u8; 100];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    if !head.starts_with(b"SQLite format 3\0") {
        return None;
    }
    Some(u32::from_be_bytes(
        head[60..64].try_into().expect("4 bytes"),
    ))
}

/// Why a state file may not open: it belongs to another user (they are 0600).
fn owner_hint(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt as _;
    match std::fs::metadata(path) {
        Ok(m) if m.uid() != rustix::process::geteuid().as_raw() => format!(
            " (it belongs to uid {}, mode {:04o}: run every janitor on this folder as that user)",
            m.uid(),
            m.mode() & 0o777
        ),
        _ => String::new(),
    }
}

fn schema_version(c: &Connection) -> rusqlite::Result<u32> {
    let has_meta: bool = c.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(0);
    }
    let v: Option<String> = c
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

fn check_version(path: &Path, version: u32) -> Result<()> {
    if version > SCHEMA_VERSION {
        return Err(StoreError::Schema(format!(
            "{} holds the janitor's state in schema version {version}, written by a newer baileys-janitor (this one knows {SCHEMA_VERSION}): upgrade it; nothing was changed",
            path.display()
        )));
    }
    Ok(())
}

/// Brings a file to [`SCHEMA_VERSION`] in one transaction (re-read inside it: another janitor
/// may have done it meanwhile).
fn migrate(o: &mut Open) -> Result<()> {
    let path = o.path.clone();
    let err = |e: rusqlite::Error| file_err(&path, e);
    let tx = o
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let found = schema_version(&tx).map_err(err)?;
    check_version(&path, found)?;
    if found < 1 {
        tx.execute_batch(SCHEMA_V1).map_err(err)?;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [SCHEMA_VERSION.to_string()],
    )
    .map_err(err)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(err)?;
    tx.commit().map_err(err)?;
    o.version = SCHEMA_VERSION;
    Ok(())
}

fn file_err(path: &Path, e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
            StoreError::Schema(format!(
                "{} is not the janitor's state file (not a SQLite database)",
                path.display()
            ))
        }
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::Query(format!(
                "{}: busy (another janitor held it for {}s)",
                path.display(),
                BUSY_TIMEOUT.as_secs()
            ))
        }
        e => StoreError::Query(format!("{}: {e}", path.display())),
    }
}

/// Inserts a batch into the trash in one transaction.
fn put_rows(
    conn: &mut Connection,
    tenant: &str,
    tag: &TrashTag,
    rows: &[TrashRow],
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        // REPLACE: a batch written again (a retried removal) is the same rows.
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO trash
             (tenant, run_id, host, removed_at_us, type, id, value, columns, restored)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)",
        )?;
        for r in rows {
            let columns = serde_json::to_string(&r.columns).expect("a map of numbers");
            insert.execute(params![
                tenant,
                tag.run_id,
                tag.host,
                to_us(tag.removed_at),
                r.key_type,
                r.id,
                r.value,
                columns
            ])?;
        }
    }
    tx.commit()
}

fn to_us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_us(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

impl SharedState for SqliteState {
    fn describe(&self) -> String {
        if self.single {
            format!("sibling file {}", sibling_of(&self.root).display())
        } else {
            format!(
                "sibling files <account>{SIBLING_SUFFIX} and {FOLDER_STATE_FILE} in {}",
                self.root.display()
            )
        }
    }

    fn exposure(&mut self) -> Result<Vec<String>> {
        let mut open: Vec<String> = Vec::new();
        for path in self.all_files()? {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                open.push(format!("{} ({mode:04o})", path.display()));
            }
        }
        if open.is_empty() {
            return Ok(vec![]);
        }
        let n = open.len();
        let shown: Vec<&str> = open.iter().take(3).map(String::as_str).collect();
        let more = if n > 3 {
            format!(" and {} more", n - 3)
        } else {
            String::new()
        };
        Ok(vec![format!(
            "{n} janitor state file(s) holding removed private keys can be read by group or others: {}{more}; run chmod 600 on them",
            shown.join(", ")
        )])
    }

    fn read(&mut self, space: Space, name: &str) -> Result<Option<Doc>> {
        let path = self.doc_file(space, name)?;
        let Some(o) = self.file(&path, false)? else {
            return Ok(None);
        };
        o.conn
            .query_row(
                "SELECT body, version FROM docs WHERE space = ?1 AND name = ?2",
                params![space.as_str(), name],
                |r| {
                    Ok(Doc {
                        body: r.get(0)?,
                        version: r.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .optional()
            .map_err(|e| file_err(&path, e))
    }

    fn swap(
        &mut self,
        space: Space,
        name: &str,
        expected: Option<u64>,
        body: &[u8],
    ) -> Result<bool> {
        let path = self.doc_file(space, name)?;
        let o = self.file(&path, true)?.expect("created for a write");
        let n = match expected {
            None => o.conn.execute(
                "INSERT INTO docs (space, name, version, body) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT (space, name) DO NOTHING",
                params![space.as_str(), name, body],
            ),
            Some(v) => o.conn.execute(
                "UPDATE docs SET body = ?3, version = version + 1
                 WHERE space = ?1 AND name = ?2 AND version = ?4",
                params![space.as_str(), name, body, v as i64],
            ),
        }
        .map_err(|e| file_err(&path, e))?;
        Ok(n == 1)
    }

    fn list(&mut self, space: Space) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        let files = match space {
            Space::Runs => vec![self.host_file()],
            Space::Company | Space::Ledger => self.all_files()?,
        };
        for path in files {
            let Some(o) = self.file(&path, false)? else {
                continue;
            };
            let err = |e| file_err(&path, e);
            let mut s = o
                .conn
                .prepare_cached("SELECT name, body FROM docs WHERE space = ?1 ORDER BY name")
                .map_err(err)?;
            let rows = s
                .query_map([space.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(err)?;
            for r in rows {
                out.push(r.map_err(err)?);
            }
        }
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        Ok(out)
    }

    fn put_trash(&mut self, tenant: &str, tag: &TrashTag, rows: &[TrashRow]) -> Result<()> {
        let path = self.tenant_file(tenant)?;
        let o = self.file(&path, true)?.expect("created for a write");
        let err = |e| file_err(&path, e);
        // EXTRA: the journal's unlink (the commit itself in DELETE mode) is synced too, so the
        // rows are in the trash for good before the app's file commits their removal.
        o.conn
            .pragma_update(None, "synchronous", "EXTRA")
            .map_err(err)?;
        let written = put_rows(&mut o.conn, tenant, tag, rows).map_err(err);
        let back = o
            .conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(err);
        written.and(back)
    }

    /// Connections of its own to the same files (the first handle checked their versions):
    /// another worker commits its tenant's sibling while this one commits another.
    fn another(&self) -> Result<Option<Box<dyn SharedState>>> {
        Ok(Some(Box::new(SqliteState {
            root: self.root.clone(),
            single: self.single,
            read_only: self.read_only,
            open: Vec::new(),
        })))
    }

    fn trash_runs(&mut self, tenant: Option<&str>) -> Result<Vec<TrashRun>> {
        let mut out = Vec::new();
        match tenant {
            Some(t) => {
                let path = self.tenant_file(t)?;
                out = self.runs_in(&path, tenant)?;
            }
            // Every account: one sibling that cannot be read (corrupt, a link) hides no other
            // account's runs; it is named in the log, and a restore of its own says why.
            None => {
                for path in self.all_files()? {
                    match self.runs_in(&path, None) {
                        Ok(runs) => out.extend(runs),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot list the trash in {}; its runs are left out", path.display());
                        }
                    }
                }
            }
        }
        out.sort_by(|a, b| {
            (b.removed_at, &b.run_id, &b.tenant).cmp(&(a.removed_at, &a.run_id, &a.tenant))
        });
        Ok(out)
    }

    fn trash_rows(&mut self, tenant: &str, run_id: &str) -> Result<Vec<TrashedRow>> {
        let path = self.tenant_file(tenant)?;
        let Some(o) = self.file(&path, false)? else {
            return Ok(vec![]);
        };
        let err = |e| file_err(&path, e);
        let mut s = o
            .conn
            .prepare_cached(
                "SELECT type, id, value, columns, restored FROM trash
                 WHERE tenant = ?1 AND run_id = ?2 ORDER BY rowid",
            )
            .map_err(err)?;
        let rows = s
            .query_map([tenant, run_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, bool>(4)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for r in rows {
            let (key_type, id, value, columns, restored) = r.map_err(err)?;
            let columns = serde_json::from_str(&columns).map_err(|e| {
                StoreError::Query(format!(
                    "{}: a trashed row's columns cannot be read: {e}",
                    path.display()
                ))
            })?;
            out.push(TrashedRow {
                row: TrashRow {
                    key_type,
                    id,
                    value,
                    columns,
                },
                restored,
            });
        }
        Ok(out)
    }

    fn mark_restored(&mut self, tenant: &str, run_id: &str, keys: &[KeyRef]) -> Result<()> {
        let path = self.tenant_file(tenant)?;
        let o = self.file(&path, true)?.expect("created for a write");
        let err = |e| file_err(&path, e);
        let tx = o
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        {
            let mut update = tx
                .prepare_cached(
                    "UPDATE trash SET restored = 1
                     WHERE tenant = ?1 AND run_id = ?2 AND type = ?3 AND id = ?4",
                )
                .map_err(err)?;
            for k in keys {
                update
                    .execute(params![tenant, run_id, k.key_type, k.id])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    fn purge(&mut self, before: DateTime<Utc>) -> Result<(usize, usize)> {
        let cutoff = to_us(before);
        let (mut runs, mut rows) = (0, 0);
        for path in self.all_files()? {
            // One sibling that cannot be read stops no other account's retention.
            match self.purge_file(&path, cutoff) {
                Ok((r, n)) => {
                    runs += r;
                    rows += n;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot purge the trash in {}", path.display());
                }
            }
        }
        Ok((runs, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    fn tag(run: &str, host: &str, us: i64) -> TrashTag {
        TrashTag {
            run_id: run.into(),
            host: host.into(),
            removed_at: from_us(us),
        }
    }

    fn row(t: &str, id: &str, v: &str) -> TrashRow {
        TrashRow {
            key_type: t.into(),
            id: id.into(),
            value: v.into(),
            columns: Default::default(),
        }
    }

    fn folder() -> (tempfile::TempDir, SqliteState) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteState::open(dir.path(), false, &SharedOptions::default()).unwrap();
        (dir, s)
    }

    #[test]
    fn siblings_are_named_beside_the_account_and_never_tenants() {
        assert_eq!(
            sibling_of(Path::new("/x/shop1.db")),
            Path::new("/x/shop1.db-janitor")
        );
        assert_eq!(
            sibling_of(Path::new("/x/auth")),
            Path::new("/x/auth-janitor")
        );
        // Nothing of the janitor's ends in `.db`: an app's `*.db` loop never opens it.
        assert!(
            !sibling_of(Path::new("/x/shop1.db"))
                .to_string_lossy()
                .ends_with(".db")
        );
        assert!(!FOLDER_STATE_FILE.ends_with(".db"));
        assert!(is_state_file("shop1.db-janitor"));
        assert!(is_state_file(".baileys-janitor"));
        assert!(!is_state_file("shop1.db"));
        assert!(!is_state_file("janitor.db"));
    }

    #[test]
    fn state_files_are_never_tenants() {
        let (dir, mut s) = folder();
        crate::core::store::clean::tests::make_db(&dir.path().join("a.db"), None, &[]);
        s.swap(Space::Company, "a", None, b"x").unwrap();
        s.swap(Space::Runs, "h", None, b"x").unwrap();
        use crate::core::store::Store as _;
        let mut store = crate::core::store::sqlite::SqliteStore::open(dir.path(), true).unwrap();
        assert_eq!(store.tenants().unwrap(), ["a"]);
        let e =
            crate::core::store::sqlite::SqliteStore::open(&dir.path().join("a.db-janitor"), true)
                .err()
                .unwrap();
        assert!(e.is_configuration(), "{e}");
        assert!(
            e.to_string().contains("the janitor's own state file"),
            "{e}"
        );
    }

    #[test]
    fn janitors_on_one_folder_exclude_each_other_per_tenant_and_for_the_trigger() {
        use crate::core::store::sqlite::SqliteStore;
        use crate::core::store::{Store as _, TenantLock};
        let dir = tempfile::tempdir().unwrap();
        crate::core::store::clean::tests::make_db(&dir.path().join("a.db"), None, &[]);
        crate::core::store::clean::tests::make_db(&dir.path().join("b.db"), None, &[]);
        let mut one = SqliteStore::open(dir.path(), false).unwrap();
        let mut two = SqliteStore::open(dir.path(), false).unwrap();
        assert_eq!(one.lock_tenant("a").unwrap(), TenantLock::Acquired);
        assert!(
            matches!(two.lock_tenant("a").unwrap(), TenantLock::Busy(h) if h.contains("a.db-janitor"))
        );
        assert_eq!(two.lock_tenant("b").unwrap(), TenantLock::Acquired);
        assert_eq!(one.lock_global().unwrap(), TenantLock::Acquired);
        assert!(matches!(two.lock_global().unwrap(), TenantLock::Busy(_)));
        one.unlock_tenant("a");
        assert_eq!(two.lock_tenant("a").unwrap(), TenantLock::Acquired);
        // The lock files are the janitor's own, 0600, and the app's file is never locked.
        let mode = std::fs::metadata(dir.path().join("a.db-janitor"))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(one);
        assert_eq!(two.lock_global().unwrap(), TenantLock::Acquired);

        // One file: the trigger's and the tenant's lock are one file, taken twice by one process.
        drop(two);
        let file = dir.path().join("a.db");
        let mut one = SqliteStore::open(&file, false).unwrap();
        let mut two = SqliteStore::open(&file, false).unwrap();
        assert_eq!(one.lock_global().unwrap(), TenantLock::Acquired);
        assert_eq!(one.lock_tenant("a").unwrap(), TenantLock::Acquired);
        one.unlock_tenant("a");
        assert!(matches!(two.lock_tenant("a").unwrap(), TenantLock::Busy(_)));

        // Read-only runs lock nothing and create nothing.
        let empty = tempfile::tempdir().unwrap();
        crate::core::store::clean::tests::make_db(&empty.path().join("c.db"), None, &[]);
        let mut ro = SqliteStore::open(empty.path(), true).unwrap();
        assert_eq!(ro.lock_tenant("c").unwrap(), TenantLock::Acquired);
        assert!(!empty.path().join("c.db-janitor").exists());
    }

    #[test]
    fn each_tenant_writes_its_own_sibling_and_runs_go_to_the_folder_file() {
        let (dir, mut s) = folder();
        assert!(s.swap(Space::Company, "a", None, b"A").unwrap());
        assert!(s.swap(Space::Ledger, "b", None, b"B").unwrap());
        assert!(s.swap(Space::Runs, "host1", None, b"R").unwrap());
        s.put_trash("a", &tag("r1", "h", 1), &[row("session", "1.0", "v")])
            .unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [".baileys-janitor", "a.db-janitor", "b.db-janitor"]);
        // The company document of `a` is in a's file only.
        let c = Connection::open(dir.path().join("b.db-janitor")).unwrap();
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM docs WHERE space = 'company'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0);
        assert_eq!(s.trash_runs(Some("b")).unwrap(), vec![]);
        assert_eq!(s.trash_runs(Some("a")).unwrap().len(), 1);
        assert_eq!(
            s.list(Space::Company).unwrap(),
            vec![("a".into(), b"A".to_vec())]
        );
        assert_eq!(
            s.list(Space::Runs).unwrap(),
            vec![("host1".into(), b"R".to_vec())]
        );
        // A name no account file could have stays inside the folder's own file.
        assert!(s.swap(Space::Company, "../x", None, b"X").unwrap());
        assert!(s.swap(Space::Company, ".hidden", None, b"H").unwrap());
        assert!(!dir.path().join("../x.db-janitor").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
        assert_eq!(s.read(Space::Company, "../x").unwrap().unwrap().body, b"X");
    }

    #[test]
    fn a_folder_of_files_keeps_the_shared_contract() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        crate::core::store::shared_contract::check(&mut || {
            Box::new(SqliteState::open(&path, false, &SharedOptions::default()).unwrap())
        });
    }

    #[test]
    fn one_file_keeps_the_shared_contract() {
        let dir = tempfile::tempdir().unwrap();
        let account = dir.path().join("shop1.db");
        crate::core::store::clean::tests::make_db(&account, None, &[]);
        crate::core::store::shared_contract::check(&mut || {
            Box::new(SqliteState::open(&account, true, &SharedOptions::default()).unwrap())
        });
    }

    #[test]
    fn one_file_keeps_everything_in_its_one_sibling() {
        let dir = tempfile::tempdir().unwrap();
        let account = dir.path().join("shop1.db");
        std::fs::write(&account, b"").unwrap();
        let mut s = SqliteState::open(&account, true, &SharedOptions::default()).unwrap();
        s.swap(Space::Runs, "h", None, b"R").unwrap();
        s.swap(Space::Company, "shop1", None, b"C").unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["shop1.db", "shop1.db-janitor"]);
    }

    #[test]
    fn files_are_created_0600() {
        // (SQLite alone would create them 0644 under the usual umask 022.)
        let (dir, mut s) = folder();
        s.swap(Space::Company, "a", None, b"x").unwrap();
        s.put_trash("a", &tag("r", "h", 1), &[row("t", "i", "v")])
            .unwrap();
        let mode = std::fs::metadata(dir.path().join("a.db-janitor"))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(s.exposure().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_sibling_others_can_read_is_one_line() {
        let (dir, mut s) = folder();
        for t in ["a", "b", "c", "d", "e"] {
            s.swap(Space::Company, t, None, b"x").unwrap();
        }
        for t in ["a", "b", "c", "d"] {
            let p = dir.path().join(format!("{t}.db-janitor"));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let lines = s.exposure().unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("4 janitor state file(s)"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("a.db-janitor (0644)"), "{}", lines[0]);
        assert!(lines[0].contains("and 1 more"), "{}", lines[0]);
    }

    #[test]
    fn read_only_creates_nothing_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SharedOptions {
            read_only: true,
            ..SharedOptions::default()
        };
        let mut s = SqliteState::open(dir.path(), false, &opts).unwrap();
        assert_eq!(s.read(Space::Company, "a").unwrap(), None);
        assert_eq!(s.list(Space::Runs).unwrap(), vec![]);
        assert_eq!(s.trash_runs(None).unwrap(), vec![]);
        assert_eq!(s.trash_rows("a", "r").unwrap(), vec![]);
        assert_eq!(s.purge(Utc::now()).unwrap(), (0, 0));
        assert!(s.swap(Space::Company, "a", None, b"x").is_err());
        assert!(
            s.put_trash("a", &tag("r", "h", 1), &[row("t", "i", "v")])
                .is_err()
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        // An existing sibling is read, not written.
        let mut w = SqliteState::open(dir.path(), false, &SharedOptions::default()).unwrap();
        w.swap(Space::Company, "a", None, b"x").unwrap();
        let before = std::fs::read(dir.path().join("a.db-janitor")).unwrap();
        let mut s = SqliteState::open(dir.path(), false, &opts).unwrap();
        assert_eq!(s.read(Space::Company, "a").unwrap().unwrap().body, b"x");
        assert!(s.swap(Space::Company, "a", Some(1), b"y").is_err());
        assert_eq!(
            std::fs::read(dir.path().join("a.db-janitor")).unwrap(),
            before
        );
    }

    #[test]
    fn a_newer_schema_is_refused_as_a_configuration_error() {
        let (dir, mut s) = folder();
        s.swap(Space::Company, "a", None, b"x").unwrap();
        s.swap(Space::Runs, "h", None, b"x").unwrap();
        drop(s);
        for f in ["a.db-janitor", ".baileys-janitor"] {
            Connection::open(dir.path().join(f))
                .unwrap()
                .execute(
                    "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
                    [],
                )
                .unwrap();
        }
        // The host-wide file is checked on open, before anything is done.
        let e = SqliteState::open(dir.path(), false, &SharedOptions::default())
            .err()
            .unwrap();
        assert!(e.is_configuration(), "{e}");
        assert!(e.to_string().contains("schema version 99"), "{e}");
        // A tenant's sibling when it is first reached.
        Connection::open(dir.path().join(".baileys-janitor"))
            .unwrap()
            .execute(
                "UPDATE meta SET value = '1' WHERE key = 'schema_version'",
                [],
            )
            .unwrap();
        let mut s = SqliteState::open(dir.path(), false, &SharedOptions::default()).unwrap();
        let e = s.read(Space::Company, "a").unwrap_err();
        assert!(e.is_configuration(), "{e}");
        assert!(e.to_string().contains("a.db-janitor"), "{e}");
    }

    #[test]
    fn every_siblings_header_is_checked_when_the_state_is_opened() {
        let (dir, mut s) = folder();
        s.swap(Space::Company, "a", None, b"x").unwrap();
        assert_eq!(
            header_version(&dir.path().join("a.db-janitor")),
            Some(SCHEMA_VERSION)
        );
        drop(s);
        Connection::open(dir.path().join("a.db-janitor"))
            .unwrap()
            .pragma_update(None, "user_version", 7)
            .unwrap();
        let read_only = SharedOptions {
            read_only: true,
            ..SharedOptions::default()
        };
        let e = SqliteState::open(dir.path(), false, &read_only)
            .err()
            .unwrap();
        assert!(e.is_configuration(), "{e}");
        let e = SqliteState::open(dir.path(), false, &SharedOptions::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("a.db-janitor"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.db-janitor"), vec![7u8; 4096]).unwrap();
        let mut s = SqliteState::open(dir.path(), false, &SharedOptions::default()).unwrap();
        let e = s.read(Space::Company, "a").unwrap_err();
        assert!(e.is_configuration(), "{e}");
    }

    #[test]
    fn trash_rows_keep_exact_bytes_columns_and_restored_marks() {
        let (_dir, mut s) = folder();
        let mut r1 = row("session", "5511.0", "{\"a\":\"é\\u0000\"}  ");
        r1.columns
            .insert("updated_at".into(), Some(1_700_000_000_000_000));
        r1.columns.insert("expires_at".into(), None);
        let r2 = row("pre-key", "7", "x");
        s.put_trash("t", &tag("run1", "h1", 10), &[r1.clone(), r2.clone()])
            .unwrap();
        s.put_trash("t", &tag("run2", "h2", 20), &[row("pre-key", "8", "yy")])
            .unwrap();
        let runs = s.trash_runs(None).unwrap();
        assert_eq!(
            runs.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
            ["run2", "run1"]
        );
        assert_eq!(runs[1].host, "h1");
        assert_eq!(runs[1].rows, 2);
        assert_eq!(runs[1].bytes, (r1.value.len() + 1) as u64);
        let rows = s.trash_rows("t", "run1").unwrap();
        assert_eq!(rows[0].row, r1);
        assert_eq!(rows[1].row, r2);
        s.mark_restored("t", "run1", &[r2.key()]).unwrap();
        let rows = s.trash_rows("t", "run1").unwrap();
        assert_eq!(
            rows.iter().map(|r| r.restored).collect::<Vec<_>>(),
            [false, true]
        );
        let run1 = &s.trash_runs(Some("t")).unwrap()[1];
        assert_eq!((run1.rows, run1.restored), (1, 1));
        assert_eq!(s.purge(from_us(15)).unwrap(), (1, 2));
        assert_eq!(s.trash_runs(None).unwrap().len(), 1);
    }

    #[test]
    fn two_janitors_on_one_folder_see_each_others_writes_and_race_safely() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut s = SqliteState::open(&path, false, &SharedOptions::default()).unwrap();
                    for _ in 0..25 {
                        loop {
                            let doc = s.read(Space::Company, "a").unwrap();
                            let n: u64 = doc
                                .as_ref()
                                .map_or(0, |d| String::from_utf8_lossy(&d.body).parse().unwrap());
                            let body = (n + 1).to_string();
                            if s.swap(Space::Company, "a", doc.map(|d| d.version), body.as_bytes())
                                .unwrap()
                            {
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut s = SqliteState::open(&path, false, &SharedOptions::default()).unwrap();
        let d = s.read(Space::Company, "a").unwrap().unwrap();
        assert_eq!(d.body, b"100");
        assert_eq!(d.version, 100);
    }
}
