//! Auth state kept in a database instead of a folder: Baileys' SQLite store, PostgreSQL
//! tables (the per-type `whatsapp_keys` layout and key-value layouts such as WAHA's), Redis,
//! and MySQL / MariaDB (mysql-baileys' `auth` table).
//!
//! The seam: a [`Store`] lists tenants, reads a tenant's creds, streams its key rows, removes a
//! batch of planned rows in one transaction (each re-checked, written to the trash before the
//! commit) and puts trashed rows back without overwriting. Everything that decides lives above
//! it ([`clean`]), and the rules are the folder planner's own: each row is shown to the planner as
//! the file Baileys' file store would have written for it (`<type>-<fixFileName(id)>.json`), with
//! an age found from a column, the value, or the janitor's ledger.

pub mod clean;
#[cfg(test)]
mod contract;
pub mod exposition;
pub mod holder;
pub mod ledger;
#[cfg(test)]
pub mod memory;
#[cfg(test)]
pub mod memory_state;
pub mod mysql;
pub mod postgres;
pub mod redis;
pub mod registry;
pub mod row;
pub mod secret;
pub mod session_creds;
pub mod shared;
#[cfg(test)]
pub mod shared_contract;
pub mod spec;
pub mod sqlite;
pub mod sqlite_state;
pub mod tls;
#[cfg(test)]
mod two_hosts;
pub mod undo;

use std::fmt;

pub use row::{KeyRef, Planned, RawRow, RemoveOutcome, RestoreOutcome, Token, TrashRow};
pub use shared::{SharedState, TrashTarget};
pub use spec::StoreSpec;

/// What went wrong talking to a store. Messages never contain a password or a full
/// connection string: only the redacted target the store was opened with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or opened (server down, file unreadable): exit 1.
    #[error("{0}")]
    Unavailable(String),
    /// The store is not what the layout says (missing table or column, wrong type): exit 2.
    #[error("{0}")]
    Schema(String),
    /// A query failed while working (lock timeout, serialization failure, …): exit 1.
    #[error("{0}")]
    Query(String),
}

impl StoreError {
    pub fn is_configuration(&self) -> bool {
        matches!(self, StoreError::Schema(_))
    }
}

/// Rows per removal transaction.
pub const BATCH_DEFAULT: usize = clean::BATCH;

pub type Result<T> = std::result::Result<T, StoreError>;

/// Whether a lock was taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantLock {
    Acquired,
    /// Someone else holds it; who, as far as the store can tell.
    Busy(String),
}

impl fmt::Display for TenantLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantLock::Acquired => f.write_str("acquired"),
            TenantLock::Busy(h) => write!(f, "busy ({h})"),
        }
    }
}

/// See [`Store::lock_releaser`].
pub type LockReleaser = Box<dyn Fn() + Send>;

/// One place auth state lives. Implementations stream rows and never hold more than one batch
/// of values in memory.
pub trait Store {
    /// Tenant names, sorted.
    fn tenants(&mut self) -> Result<Vec<String>>;

    /// The tenant's creds as Baileys stored them (`None`: no creds row).
    fn creds(&mut self, tenant: &str) -> Result<Option<Vec<u8>>>;

    /// How many rows the tenant has, creds included: what the thresholds count.
    fn count(&mut self, tenant: &str) -> Result<usize> {
        let mut n = usize::from(self.creds(tenant)?.is_some());
        self.scan(tenant, &mut |_| n += 1)?;
        Ok(n)
    }

    /// Every key row of the tenant, one at a time.
    fn scan(&mut self, tenant: &str, f: &mut dyn FnMut(RawRow<'_>)) -> Result<()>;

    /// [`Store::scan`] for a plan that needs a value only where it dates the row (a dry run of
    /// a tenant with valid creds): a session's (its last use), and a row's without a clock of
    /// its own (the ledger's fingerprint). Any other row may come with an empty `value` and its
    /// [`RawRow::size`], which must be what the real run's removal reports. PostgreSQL's
    /// per-type tables do so: rendering `jsonb` as text was a third of a dry run's server time.
    /// Default: `scan`.
    fn scan_for_plan(&mut self, tenant: &str, f: &mut dyn FnMut(RawRow<'_>)) -> Result<()> {
        self.scan(tenant, f)
    }

    /// The raw id of every `pre-key` row of the tenant: all the count of `trigger`, `monitor` and
    /// `status` needs (`core::tally`). Stores that can select them without reading every value
    /// do so; the default filters [`Store::scan`].
    fn pre_key_ids(&mut self, tenant: &str, f: &mut dyn FnMut(&str)) -> Result<()> {
        self.scan(tenant, &mut |row| {
            if row.key_type == "pre-key" {
                f(row.id);
            }
        })
    }

    /// Removes `batch` in one short transaction: each row is read again and removed only if its
    /// token still matches. The rows about to go (exact values) go to `trash_to`: inserted in the
    /// same transaction ([`TrashTarget::InStore`], where [`Store::trash_in_transaction`]), or
    /// handed to a callback that must have made them durable before it returns `Ok` (an error
    /// rolls the batch back).
    fn remove(
        &mut self,
        tenant: &str,
        batch: &[Planned],
        trash_to: &mut TrashTarget<'_>,
    ) -> Result<Vec<RemoveOutcome>>;

    /// Puts rows back exactly as they were; a row that exists again is left alone.
    fn restore(&mut self, tenant: &str, rows: &[TrashRow]) -> Result<Vec<RestoreOutcome>>;

    /// Takes the tenant's lock without waiting (PostgreSQL: an advisory lock every host sees;
    /// SQLite: `flock` on the tenant's sibling state file, which every janitor on the folder
    /// sees whatever its state directory). Released by [`Store::unlock_tenant`] or when the
    /// process ends.
    fn lock_tenant(&mut self, tenant: &str) -> Result<TenantLock>;

    fn unlock_tenant(&mut self, tenant: &str);

    /// Tenants cleaned at once without `--jobs`: the cores, at most 4
    /// ([`crate::core::parallel::default_jobs`]), where the work is CPU (the server's and ours).
    fn default_jobs(&self) -> usize {
        crate::core::parallel::default_jobs()
    }

    /// Whether [`Store::lock_tenant`] already excludes every other janitor process, this
    /// host's included (a server lock, a `flock` on the tenant's own file). Then the state
    /// directory's per-host lock file adds nothing and is not taken: it cost a first run one
    /// file created per tenant, a fifth of a PostgreSQL cleanup's own CPU on 1,000 tenants.
    /// The memory store's lock is one handle's: it keeps the file.
    fn tenant_lock_excludes_every_process(&self) -> bool {
        false
    }

    /// The store-wide lock a trigger run holds (PostgreSQL: one advisory lock for all hosts).
    fn lock_global(&mut self) -> Result<TenantLock> {
        Ok(TenantLock::Acquired)
    }

    /// Keys and bytes the tenant takes on the server, where the store can tell cheaply (Redis:
    /// `HLEN` and a sampled `MEMORY USAGE`). Shown by `status` and carried by its metrics.
    fn usage(&mut self, _tenant: &str) -> Result<Option<(u64, u64)>> {
        Ok(None)
    }

    /// A human name shown beside the tenant id (Evolution API: the instance's name).
    fn label(&mut self, _tenant: &str) -> Option<String> {
        None
    }

    /// Why the tenant is an orphan (its keys outlived the account that owned them), if it is.
    /// Orphans are listed by `status` and cleaned only with `--remove-orphans`.
    fn orphan(&mut self, _tenant: &str) -> Option<String> {
        None
    }

    /// Releases the locks this store holds on the server from another thread (a signal
    /// handler), where they would otherwise outlive a killed process until they expire.
    /// `None` where locks die with the connection (PostgreSQL) or are local (SQLite).
    fn lock_releaser(&self) -> Option<LockReleaser> {
        None
    }

    /// What the store turned out to be when that differs from the configuration (Redis: the
    /// Evolution prefix found on the server); `None` when the configuration says it all.
    fn describe(&self) -> Option<String> {
        None
    }

    /// Whether the connection is encrypted and what was verified (`None`: a local file).
    fn transport(&self) -> Option<tls::Transport> {
        None
    }

    /// True for layouts whose unknown key types are leftovers worth reporting (per-type tables).
    fn reports_legacy_rows(&self) -> bool {
        false
    }

    /// Whether [`Store::remove`] compares values with [`Token::md5`] (on the server, so the
    /// values never travel back): the planner fills it in for every row it reads.
    fn compares_md5(&self) -> bool {
        false
    }

    /// Rows per removal transaction ([`Store::remove`]) for this store.
    fn batch(&self) -> usize {
        BATCH_DEFAULT
    }

    /// Whether [`Store::remove`] writes [`TrashTarget::InStore`] in its own transaction.
    fn trash_in_transaction(&self) -> bool {
        false
    }

    /// The janitor's state kept in this store (`shared`), on a connection of its own;
    /// `opts.read_only` (status, dry runs) creates nothing. `None`: this store keeps none, and the
    /// state directory holds it.
    fn shared_state(&self, _opts: &shared::SharedOptions) -> Result<Option<Box<dyn SharedState>>> {
        Ok(None)
    }

    /// A second handle on the same store for another worker thread (`--jobs`), with its own
    /// connection and locks; `None` (the default): the store's tenants are cleaned one after
    /// the other on this one. SQLite gains because each account is its own file and the work
    /// is this process's; a database server because one connection is one backend on one core,
    /// idle while it waits for the janitor (PostgreSQL: a real cleanup of 1,000 tenants took
    /// half the time on two connections; MySQL and Redis gain less, their own way).
    fn another(&self) -> Result<Option<Box<dyn Store + Send>>> {
        Ok(None)
    }
}

/// What `status` shows beside a tenant's keys, where the store can tell.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TenantFacts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orphan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_keys: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_bytes: Option<u64>,
}

/// The tenant `wanted` names: as `status` shows it, with the company prefix left off, or by
/// its SQLite file name (`company_1.db`).
pub fn resolve_tenant<'a>(all: &'a [String], prefix: &str, wanted: &str) -> Option<&'a String> {
    let bare = wanted.strip_suffix(".db").unwrap_or(wanted);
    let prefixed = format!("{prefix}{bare}");
    all.iter().find(|t| *t == bare || **t == prefixed)
}

/// [`resolve_tenant`], or else the tenant whose label is `wanted` (Evolution's instance name,
/// which `status` shows beside the id).
pub fn resolve_tenant_or_label(
    store: &mut dyn Store,
    all: &[String],
    prefix: &str,
    wanted: &str,
) -> Option<String> {
    if let Some(t) = resolve_tenant(all, prefix, wanted) {
        return Some(t.clone());
    }
    all.iter()
        .find(|t| store.label(t).as_deref() == Some(wanted))
        .cloned()
}

pub fn facts(store: &mut dyn Store, tenant: &str) -> Result<TenantFacts> {
    let usage = store.usage(tenant)?;
    Ok(TenantFacts {
        name: store.label(tenant),
        orphan: store.orphan(tenant),
        server_keys: usage.map(|u| u.0),
        server_bytes: usage.map(|u| u.1),
    })
}

/// Opens the store `spec` names (not for [`StoreSpec::Folder`], which has its own code path).
/// `read_only` for dry runs and `status`: SQLite files are opened read-only.
pub fn open(spec: &StoreSpec, read_only: bool) -> Result<Box<dyn Store>> {
    match spec {
        StoreSpec::Folder => Err(StoreError::Schema(
            "folders are not a database store".into(),
        )),
        StoreSpec::Sqlite(path) => Ok(Box::new(sqlite::SqliteStore::open(path, read_only)?)),
        StoreSpec::Postgres { url, layout } => {
            let app = format!("baileys-janitor@{}", crate::core::util::hostname());
            Ok(Box::new(postgres::PgStore::connect(url, layout, &app)?))
        }
        StoreSpec::Redis { url, layout, creds } => {
            let app = format!("baileys-janitor@{}", crate::core::util::hostname());
            Ok(Box::new(redis::RedisStore::connect(
                url,
                layout,
                creds.as_deref(),
                &app,
            )?))
        }
        StoreSpec::Mysql { url, layout } => Ok(Box::new(mysql::MysqlStore::connect(
            url, layout, read_only,
        )?)),
    }
}

/// A short, secret-free name for the store in the state directory (ledger, locks).
pub fn state_key(spec: &StoreSpec) -> String {
    let kind = match spec {
        StoreSpec::Folder => "folder",
        StoreSpec::Sqlite(_) => "sqlite",
        StoreSpec::Postgres { .. } => "pg",
        StoreSpec::Redis { .. } => "redis",
        StoreSpec::Mysql { .. } => "mysql",
    };
    format!("{kind}-{:016x}", fingerprint(spec.describe().as_bytes()))
}

/// Baileys' `fixFileName` (`/` → `__`, `:` → `-`), appended to `out` in one pass.
pub fn fix_file_name_into(out: &mut String, id: &str) {
    let mut rest = id;
    while let Some(at) = rest.find(['/', ':']) {
        out.push_str(&rest[..at]);
        out.push_str(if rest.as_bytes()[at] == b'/' {
            "__"
        } else {
            "-"
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

/// 64-bit FNV-1a: a stable fingerprint of a value for the ledger and the re-check. Not a
/// security boundary: the removal itself compares the exact value read inside the transaction.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix_file_name(id: &str) -> String {
        let mut out = String::new();
        fix_file_name_into(&mut out, id);
        out
    }

    #[test]
    fn fix_file_name_matches_baileys() {
        assert_eq!(
            fix_file_name("120363@g.us::123_1::0"),
            "120363@g.us--123_1--0"
        );
        assert_eq!(fix_file_name("AAAA/b+c"), "AAAA__b+c");
        assert_eq!(fix_file_name("5511.0"), "5511.0");
        assert_eq!(fix_file_name(""), "");
        assert_eq!(fix_file_name("/:a::b//"), "__-a--b____");
        let mut out = "pre-".to_owned();
        fix_file_name_into(&mut out, "x/y:z");
        assert_eq!(out, "pre-x__y-z");
    }

    #[test]
    fn fingerprint_is_stable_and_sensitive() {
        assert_eq!(fingerprint(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fingerprint(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fingerprint(b"{\"a\":1}"), fingerprint(b"{\"a\":2}"));
    }

    #[test]
    fn tenants_are_found_by_id_prefix_or_file_name() {
        let all = vec!["company_1".to_owned(), "default".to_owned()];
        let find = |w: &str| resolve_tenant(&all, "company_", w).cloned();
        assert_eq!(find("company_1").as_deref(), Some("company_1"));
        assert_eq!(find("1").as_deref(), Some("company_1"));
        assert_eq!(find("company_1.db").as_deref(), Some("company_1"));
        assert_eq!(find("default.db").as_deref(), Some("default"));
        assert_eq!(find("company_2"), None);
        assert_eq!(find(".db"), None);
    }
}
