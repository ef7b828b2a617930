//! The janitor's own state, kept in the store it cleans so every host sees the same truth
//! (issue 23): company records (recent cleanups with their host, trigger cooldown, holds of
//! restored rows, history), each host's last runs, the ledger of timestamp-less keys, and the
//! trash of removed rows.
//!
//! Where it lives, per backend:
//!
//! ```text
//! PostgreSQL, MySQL  schema `baileys_janitor` (store.state_schema): meta, docs, trash tables
//! Redis              keys `<prefix>:janitor:*`, trash keys expiring after trash.retention
//! SQLite             a sibling file `<account>.db-janitor` (mode 0600) beside each account file
//! ```
//!
//! The state directory keeps only what is local to a host: its locks, logs and `monitor.json`.
//! Folders keep all their state in the state directory, as before.
//!
//! Documents are small JSON bodies under (space, name), written with compare-and-swap on a
//! version number, so two hosts updating one company record never lose each other's change
//! (`records::update_company` retries). Removed rows enter the trash in the transaction that
//! deletes them ([`TrashTarget::InStore`]) where the store can do that, or are made durable
//! before the deleting transaction commits ([`TrashTarget::Before`]): a crash leaves each row
//! in place, in the trash, or both, never neither.

use chrono::{DateTime, Utc};

use super::{KeyRef, Result, TrashRow};

/// The version of the janitor's schema (tables, key layout) this binary writes. A store whose
/// state was written by a newer binary is refused (`StoreError::Schema`, exit 2); an older one
/// is migrated forward on the first run that writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The default PostgreSQL / MySQL schema (database) for the janitor's tables.
pub const DEFAULT_SCHEMA: &str = "baileys_janitor";

/// How to open a store's shared state.
#[derive(Clone, Debug)]
pub struct SharedOptions {
    /// PostgreSQL / MySQL: the schema (database) of the janitor's tables (`store.state_schema`).
    pub schema: String,
    /// Status and dry runs: create nothing, write nothing; reads of a missing schema are empty.
    pub read_only: bool,
    /// How long trashed rows are kept (Redis: the expiry of trash keys).
    pub trash_retention: std::time::Duration,
}

impl Default for SharedOptions {
    fn default() -> Self {
        SharedOptions {
            schema: DEFAULT_SCHEMA.into(),
            read_only: false,
            trash_retention: std::time::Duration::from_secs(7 * 86_400),
        }
    }
}

/// What kind of document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// A tenant's `records::CompanyRecord`, named by the tenant.
    Company,
    /// A host's `records::Runs`, named by the host.
    Runs,
    /// A tenant's ledger (`store::ledger`), named by the tenant.
    Ledger,
}

impl Space {
    pub fn as_str(self) -> &'static str {
        match self {
            Space::Company => "company",
            Space::Runs => "runs",
            Space::Ledger => "ledger",
        }
    }
}

/// A stored document and its version (bumped by every write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    pub body: Vec<u8>,
    pub version: u64,
}

/// Which run removed a batch of rows, written beside each trashed row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrashTag {
    pub run_id: String,
    /// The host that ran it (shown by `restore --list` and `status`).
    pub host: String,
    /// When the rows were removed (purged after `trash.retention`).
    pub removed_at: DateTime<Utc>,
}

/// One run's rows in a tenant's trash, as `restore --list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrashRun {
    pub tenant: String,
    pub run_id: String,
    pub host: String,
    pub removed_at: DateTime<Utc>,
    /// Rows still in the trash (not restored).
    pub rows: usize,
    /// Bytes of their values (of the rows still in the trash).
    pub bytes: u64,
    /// Rows of the run already put back.
    pub restored: usize,
}

/// A trashed row and whether a restore already put it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrashedRow {
    pub row: TrashRow,
    pub restored: bool,
}

/// Where a removal transaction puts the rows it removes.
pub enum TrashTarget<'a> {
    /// Nowhere (`--no-trash`, dry runs).
    Nowhere,
    /// Made durable by the callback before the deleting transaction commits; an error rolls
    /// the batch back. (The SQLite sibling file; the state directory's `rows.jsonl` of old.)
    Before(&'a mut dyn FnMut(&[TrashRow]) -> std::io::Result<()>),
    /// Inserted by the store in the same transaction (or script) that deletes them, tagged.
    InStore(&'a TrashTag),
}

impl TrashTarget<'_> {
    /// For stores that keep no trash of their own: hands `rows` to the callback (or drops them
    /// with `Nowhere`); `InStore` is an error, since this store cannot do it.
    pub fn before_commit(&mut self, rows: &[TrashRow]) -> std::io::Result<()> {
        match self {
            TrashTarget::Nowhere => Ok(()),
            TrashTarget::Before(f) => f(rows),
            TrashTarget::InStore(_) => Err(std::io::Error::other(
                "this store cannot write the trash in its own transaction",
            )),
        }
    }
}

/// The janitor's state in a store. One connection of its own (the store's connection is busy
/// streaming rows). Every method is one short statement or transaction.
pub trait SharedState: Send {
    /// Where the state lives, secret-free: `schema baileys_janitor in postgres://db1/app`.
    fn describe(&self) -> String;

    /// Who besides the janitor's own role can read its tables (grants to PUBLIC or other
    /// roles, a sibling file readable by others), each as one line for a start-up warning.
    /// Empty when only the janitor can.
    fn exposure(&mut self) -> Result<Vec<String>>;

    /// A document, or `None` when there is none (or the schema does not exist yet).
    fn read(&mut self, space: Space, name: &str) -> Result<Option<Doc>>;

    /// Several documents, in the order asked, in one round trip where the store can (a
    /// tenant's record and ledger, read together as its cleanup starts).
    fn read_many(&mut self, docs: &[(Space, &str)]) -> Result<Vec<Option<Doc>>> {
        docs.iter()
            .map(|(space, name)| self.read(*space, name))
            .collect()
    }

    /// Writes `body` if the stored version is still `expected` (`None`: no document yet).
    /// `Ok(false)` when another host wrote first: read again and retry. Creates the schema
    /// (or refuses with the SQL to run) on first use.
    fn swap(
        &mut self,
        space: Space,
        name: &str,
        expected: Option<u64>,
        body: &[u8],
    ) -> Result<bool>;

    /// [`SharedState::swap`] for a write whose loss on a server crash is harmless (the ledger,
    /// a cleanup's mark and history point): losing it is the janitor killed just before it,
    /// which every store already survives. A store may commit it without waiting for its log
    /// flush (PostgreSQL: `synchronous_commit = off`; a later durable commit flushes it too).
    /// Holds (restore) and `mark_restored` never come here. Default: a durable `swap`.
    fn swap_lazy(
        &mut self,
        space: Space,
        name: &str,
        expected: Option<u64>,
        body: &[u8],
    ) -> Result<bool> {
        self.swap(space, name, expected, body)
    }

    /// Every document of a space (runs of every host), by name.
    fn list(&mut self, space: Space) -> Result<Vec<(String, Vec<u8>)>>;

    /// Writes rows to the trash in a transaction of its own (for [`TrashTarget::Before`]):
    /// durable when it returns `Ok`.
    fn put_trash(&mut self, tenant: &str, tag: &TrashTag, rows: &[TrashRow]) -> Result<()>;

    /// The runs in the trash, newest first; of one tenant, or of all.
    fn trash_runs(&mut self, tenant: Option<&str>) -> Result<Vec<TrashRun>>;

    /// The rows one run removed from a tenant, restored or not (empty: no such run).
    fn trash_rows(&mut self, tenant: &str, run_id: &str) -> Result<Vec<TrashedRow>>;

    /// Marks rows of a run as put back.
    fn mark_restored(&mut self, tenant: &str, run_id: &str, keys: &[KeyRef]) -> Result<()>;

    /// Deletes trashed rows removed before `before`: (runs, rows) purged.
    fn purge(&mut self, before: DateTime<Utc>) -> Result<(usize, usize)>;

    /// A second handle on the same state, for another worker thread (`--jobs`): connections of
    /// its own, so one worker's commit never waits for another's. `None` (the default): the
    /// workers share this one, one call at a time.
    fn another(&self) -> Result<Option<Box<dyn SharedState>>> {
        Ok(None)
    }
}

/// How often a read-only state that found no schema asks the server again: a dry run over many
/// tenants asks once, not per tenant; a long-running reader (the monitor) still sees a schema
/// another host creates meanwhile.
const RECHECK_ABSENT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether a SQL state's versioned schema is there, for the PostgreSQL and MySQL states alike:
/// a newer one is refused, a run that writes creates it at once (so a role that cannot is told
/// at start-up, exit 2, not by every batch), a read-only run creates nothing and reads a missing
/// one as empty.
#[derive(Debug)]
pub struct SchemaGate {
    read_only: bool,
    /// The schema exists at this binary's version (checked or created).
    ready: bool,
    /// When a missing schema was last found missing.
    absent_since: std::time::Instant,
}

impl SchemaGate {
    /// At open: `version` is what the server holds (`None`: no schema); `ensure` creates it.
    pub fn open(
        read_only: bool,
        version: Option<u32>,
        newer: impl FnOnce(u32) -> super::StoreError,
        ensure: impl FnOnce() -> Result<()>,
    ) -> Result<SchemaGate> {
        if let Some(v) = version.filter(|v| *v > SCHEMA_VERSION) {
            return Err(newer(v));
        }
        if !read_only && version != Some(SCHEMA_VERSION) {
            ensure()?;
        }
        Ok(SchemaGate {
            read_only,
            ready: !read_only || version == Some(SCHEMA_VERSION),
            absent_since: std::time::Instant::now(),
        })
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Before a write: refused when read-only; the schema created (once) otherwise.
    pub fn writable(&mut self, target: &str, ensure: impl FnOnce() -> Result<()>) -> Result<()> {
        if self.read_only {
            return Err(super::StoreError::Query(format!(
                "{target}: the janitor's state was opened read-only"
            )));
        }
        if !self.ready {
            ensure()?;
            self.ready = true;
        }
        Ok(())
    }

    /// Before a read: whether there is anything to read (a missing schema reads as empty; it
    /// may have been created by another host since we opened).
    pub fn readable(
        &mut self,
        read_version: impl FnOnce() -> Result<Option<u32>>,
        newer: impl FnOnce(u32) -> super::StoreError,
    ) -> Result<bool> {
        if !self.ready {
            if self.absent_since.elapsed() < RECHECK_ABSENT {
                return Ok(false);
            }
            self.absent_since = std::time::Instant::now();
            match read_version()? {
                Some(v) if v > SCHEMA_VERSION => return Err(newer(v)),
                Some(_) => self.ready = true,
                None => return Ok(false),
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::store::StoreError;

    fn newer(v: u32) -> StoreError {
        StoreError::Schema(format!("newer {v}"))
    }

    #[test]
    fn a_newer_schema_is_refused_at_open_and_at_a_later_read() {
        let e = SchemaGate::open(true, Some(SCHEMA_VERSION + 1), newer, || Ok(())).unwrap_err();
        assert!(e.is_configuration(), "{e}");
        let mut gate = SchemaGate::open(true, None, newer, || panic!("read-only creates")).unwrap();
        gate.absent_since -= RECHECK_ABSENT;
        let e = gate
            .readable(|| Ok(Some(SCHEMA_VERSION + 1)), newer)
            .unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");
    }

    #[test]
    fn a_writing_run_creates_the_schema_at_open_and_a_read_only_one_never() {
        let mut created = 0;
        let mut gate = SchemaGate::open(false, None, newer, || {
            created += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(created, 1);
        gate.writable("t", || panic!("created twice")).unwrap();
        assert!(gate.readable(|| panic!("asked again"), newer).unwrap());

        let mut ro = SchemaGate::open(true, None, newer, || panic!("read-only creates")).unwrap();
        assert!(ro.read_only());
        assert!(ro.writable("t", || Ok(())).is_err());
    }

    #[test]
    fn a_missing_schema_reads_as_empty_and_is_asked_for_again_only_after_a_while() {
        let mut gate = SchemaGate::open(true, None, newer, || Ok(())).unwrap();
        // Within the interval the server is not asked (a dry run over many tenants).
        assert!(!gate.readable(|| panic!("asked per tenant"), newer).unwrap());
        // After it, a schema another host created meanwhile is seen.
        gate.absent_since -= RECHECK_ABSENT;
        assert!(gate.readable(|| Ok(Some(SCHEMA_VERSION)), newer).unwrap());
        assert!(gate.readable(|| panic!("asked once ready"), newer).unwrap());
    }
}
