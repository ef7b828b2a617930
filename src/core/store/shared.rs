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
}
