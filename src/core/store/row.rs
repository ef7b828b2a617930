//! The rows a store hands out and takes back.

use std::collections::BTreeMap;

use md5::Digest;
use serde::{Deserialize, Serialize};

/// A key row as read, borrowed from the store's buffer for the time of one callback.
#[derive(Clone, Copy, Debug)]
pub struct RawRow<'a> {
    /// Baileys' type name (`session`, `pre-key`, …) or, in per-type tables, whatever is there.
    pub key_type: &'a str,
    /// Baileys' raw id (`5511999999999.0`, `120363@g.us::5511::0`).
    pub id: &'a str,
    /// The value exactly as stored (JSON text).
    pub value: &'a str,
    /// The `updated_at` column, in microseconds since the epoch, where the layout has one.
    pub updated_at_us: Option<i64>,
    /// The value's size where the store measures it itself (PostgreSQL: the stored size,
    /// `pg_column_size`, so a row sent without its value still has one); else `value`'s length.
    pub size: Option<u64>,
}

impl RawRow<'_> {
    /// The bytes a removal of this row frees, as the store's removal reports them.
    pub fn size(&self) -> u64 {
        self.size.unwrap_or(self.value.len() as u64)
    }
}

/// Which row: type and id (the tenant is passed alongside).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyRef {
    #[serde(rename = "type")]
    pub key_type: String,
    pub id: String,
}

/// What a row looked like when it was planned: it is removed only if it still does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub hash: u64,
    pub updated_at_us: Option<i64>,
    /// The value's MD5, for a store that compares on the server, where the value stays
    /// ([`super::Store::compares_md5`]: PostgreSQL's `md5(value::text)`); `None` elsewhere.
    pub md5: Option<[u8; 16]>,
}

impl Token {
    pub fn of(value: &str, updated_at_us: Option<i64>) -> Token {
        Token {
            hash: super::fingerprint(value.as_bytes()),
            updated_at_us,
            md5: None,
        }
    }

    /// [`Token::of`], with the value's MD5 too when `md5` (the store asks for it).
    pub fn for_store(value: &str, updated_at_us: Option<i64>, md5: bool) -> Token {
        Token {
            md5: md5.then(|| md5::Md5::digest(value.as_bytes()).into()),
            ..Token::of(value, updated_at_us)
        }
    }
}

#[derive(Clone, Debug)]
pub struct Planned {
    pub key: KeyRef,
    pub token: Token,
}

/// A removed row as the trash keeps it: enough to put it back exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrashRow {
    #[serde(rename = "type")]
    pub key_type: String,
    pub id: String,
    /// The value exactly as it was stored.
    pub value: String,
    /// Other columns the layout keeps (`created_at`, `updated_at`, `expires_at`), as
    /// microseconds since the epoch; restored as they were.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, Option<i64>>,
}

impl TrashRow {
    pub fn key(&self) -> KeyRef {
        KeyRef {
            key_type: self.key_type.clone(),
            id: self.id.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// Removed; the value's size in bytes.
    Removed { bytes: u64 },
    /// Rewritten since planning: left alone.
    Changed,
    /// Gone already (Baileys consumed it, or another janitor removed it).
    Vanished,
    /// The store stopped answering while removing it, and it could not be told afterwards
    /// whether it went (why). It is in the trash, so `restore` puts it back if it went.
    Unknown(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreOutcome {
    Restored,
    /// A row with that key exists again (the app wrote a newer one): not overwritten.
    Exists,
}
