//! Which store, and how its tables are laid out: parsed from `--store`, `[store]` or
//! `BAILEYS_JANITOR_STORE`. Connection strings are kept out of every message.

use std::fmt;
use std::path::PathBuf;

/// Where auth state lives.
#[derive(Clone)]
pub enum StoreSpec {
    /// The default: a root of company folders (the existing code path).
    Folder,
    /// Baileys' `useSqliteAuthState`: one `.db` file, or a folder of them (one per account).
    Sqlite(PathBuf),
    /// A PostgreSQL server; the connection string is secret.
    Postgres { url: String, layout: Box<Layout> },
    /// A Redis server (Evolution API hashes, baileys-redis-auth); `creds` is an optional
    /// PostgreSQL connection string where the creds live (Evolution's `"Session"` table).
    Redis {
        url: String,
        layout: Box<super::redis::RedisLayout>,
        creds: Option<String>,
    },
    /// A MySQL / MariaDB server (mysql-baileys' `auth` table); the connection string is secret.
    Mysql { url: String, layout: Box<KvLayout> },
}

impl fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl StoreSpec {
    /// Parses `sqlite:PATH`, `postgres://…` / `postgresql://…`, `mysql://…` / `mariadb://…`,
    /// `redis://…` or `folder`. The error never
    /// repeats the input (it may hold a password).
    pub fn parse(s: &str, layout: Layout) -> Result<StoreSpec, String> {
        let s = s.trim();
        if s.is_empty() || s == "folder" || s == "folders" {
            return Ok(StoreSpec::Folder);
        }
        if let Some(path) = s.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(
                    "store sqlite: needs a path (sqlite:/srv/auth or sqlite:/srv/auth/account.db)"
                        .into(),
                );
            }
            return Ok(StoreSpec::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            super::tls::pg_config(s)?;
            return Ok(StoreSpec::Postgres {
                url: s.to_owned(),
                layout: Box::new(layout),
            });
        }
        if s.starts_with("redis://") || s.starts_with("rediss://") || s.starts_with("unix://") {
            super::tls::split_url(s).and_then(|(rest, _)| super::redis::check_url(&rest))?;
            return Ok(StoreSpec::Redis {
                url: s.to_owned(),
                layout: Box::new(
                    super::redis::RedisLayout::preset("evolution").expect("evolution preset"),
                ),
                creds: None,
            });
        }
        if s.starts_with("mysql://") || s.starts_with("mariadb://") {
            super::mysql::check_url(s)?;
            return Ok(StoreSpec::Mysql {
                url: s.to_owned(),
                layout: Box::new(super::mysql::layout(s, "mysql-baileys")?),
            });
        }
        Err("store: unknown kind (expected folder, sqlite:PATH, postgres://…, mysql://… or redis://…)".into())
    }

    pub fn is_folder(&self) -> bool {
        matches!(self, StoreSpec::Folder)
    }

    /// A secret-free description for logs, errors, reports and state.
    pub fn describe(&self) -> String {
        match self {
            StoreSpec::Folder => "folder".into(),
            StoreSpec::Sqlite(p) => format!("sqlite:{}", p.display()),
            StoreSpec::Postgres { url, layout } => {
                format!("{} ({})", redact_postgres(url), layout.name())
            }
            StoreSpec::Redis { url, layout, creds } => format!(
                "{} ({}{})",
                super::redis::redact_url(url),
                layout.describe(),
                creds
                    .as_deref()
                    .map(|c| format!(", creds in {}", redact_postgres(c)))
                    .unwrap_or_default()
            ),
            StoreSpec::Mysql { url, layout } => {
                let table = if layout.table == "auth" {
                    String::new()
                } else {
                    format!(", table {}", layout.table)
                };
                format!("{} ({}{table})", super::mysql::redact_url(url), layout.name)
            }
        }
    }
}

impl StoreSpec {
    /// What binds a state directory to this store (`core::state::binding`): its identity, and
    /// for a SQLite path the file's (or folder's) device and inode.
    pub fn root_id(&self) -> std::io::Result<crate::core::state::binding::RootId> {
        let (dev, ino) = match self {
            StoreSpec::Sqlite(p) => {
                use std::os::unix::fs::MetadataExt;
                let m = std::fs::metadata(p)?;
                (m.dev(), m.ino())
            }
            _ => (0, 0),
        };
        Ok(crate::core::state::binding::RootId {
            path: self.describe(),
            dev,
            ino,
            store: Some(self.identity()),
        })
    }

    /// What makes this store this store, for binding a state directory to it
    /// (`core::binding`): the server (scheme, host, port, database, no user or password), the
    /// layout with its tables, key pattern and where the creds live. SQLite files are bound by
    /// their path here and by device and inode in the binding.
    pub fn identity(&self) -> String {
        let layout = |l: &dyn fmt::Debug| {
            format!("{:016x}", super::fingerprint(format!("{l:?}").as_bytes()))
        };
        match self {
            StoreSpec::Folder => "folder".into(),
            StoreSpec::Sqlite(p) => {
                let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
                format!("sqlite:{}", p.display())
            }
            StoreSpec::Postgres { url, layout: l } => format!(
                "{} layout {} {}",
                without_user(&redact_postgres(url)),
                l.name(),
                layout(l)
            ),
            StoreSpec::Redis {
                url,
                layout: l,
                creds,
            } => format!(
                "{} layout {} {}{}",
                without_user(&super::redis::redact_url(url)),
                l.describe(),
                layout(l),
                creds
                    .as_deref()
                    .map(|c| format!(" creds {}", without_user(&redact_postgres(c))))
                    .unwrap_or_default()
            ),
            StoreSpec::Mysql { url, layout: l } => format!(
                "{} layout {} {}",
                without_user(&super::mysql::redact_url(url)),
                l.name,
                layout(l)
            ),
        }
    }
}

/// `scheme://user@host/…` → `scheme://host/…`: who connects does not change which store it is.
fn without_user(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            match rest[..end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://{host}{}", &rest[end..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// `postgres://user@host:port/db`: what the connection string points at, without a password or
/// any option (options such as `password=` can carry secrets too).
pub fn redact_postgres(url: &str) -> String {
    let Ok((c, _)) = super::tls::pg_config(url) else {
        return "postgres://(invalid)".into();
    };
    let host = c
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(h) => h.clone(),
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let user = c.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let db = c.get_dbname().unwrap_or("");
    format!("postgres://{user}{host}:{port}/{db}")
}

/// How a PostgreSQL database keeps Baileys keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One row per key with type and id columns, creds in their own table, `updated_at` kept
    /// (`whatsapp_auth` / `whatsapp_keys`).
    PerType(PerTypeLayout),
    /// One row per key named `<type>-<id>` (WAHA, postgres-baileys, Prisma stores).
    Kv(KvLayout),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerTypeLayout {
    pub creds_table: String,
    pub keys_table: String,
    pub tenant_column: String,
    pub creds_column: String,
    pub type_column: String,
    pub id_column: String,
    pub value_column: String,
    pub updated_column: Option<String>,
    /// Kept in the trash and restored as they were.
    pub extra_columns: Vec<String>,
}

/// Where a key-value table keeps the tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantIn {
    /// Its own column (`session_id`, `"sessionId"`).
    Column(String),
    /// The key column starts with `<tenant><separator>` (postgres-baileys: `<sid>:<type>-<id>`).
    KeyPrefix(char),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvLayout {
    pub name: String,
    pub table: String,
    pub tenant: TenantIn,
    pub key_column: String,
    pub value_column: String,
    /// The key of the creds row (`creds`, `auth_creds`).
    pub creds_key: String,
}

impl Layout {
    pub const PRESETS: [&'static str; 4] = ["per-type", "waha", "postgres-baileys", "prisma"];

    pub fn preset(name: &str) -> Option<Layout> {
        let kv =
            |name: &str, table: &str, tenant: TenantIn, key: &str, value: &str, creds: &str| {
                Layout::Kv(KvLayout {
                    name: name.into(),
                    table: table.into(),
                    tenant,
                    key_column: key.into(),
                    value_column: value.into(),
                    creds_key: creds.into(),
                })
            };
        Some(match name {
            "per-type" | "whatsapp_keys" => Layout::PerType(PerTypeLayout {
                creds_table: "whatsapp_auth".into(),
                keys_table: "whatsapp_keys".into(),
                tenant_column: "company_id".into(),
                creds_column: "creds".into(),
                type_column: "key_type".into(),
                id_column: "key_id".into(),
                value_column: "value".into(),
                updated_column: Some("updated_at".into()),
                extra_columns: vec!["created_at".into(), "expires_at".into()],
            }),
            "waha" => kv(
                "waha",
                "waha_auth",
                TenantIn::Column("session_id".into()),
                "key",
                "value",
                "creds",
            ),
            "postgres-baileys" => kv(
                "postgres-baileys",
                "auth_data",
                TenantIn::KeyPrefix(':'),
                "session_key",
                "data",
                "auth_creds",
            ),
            "prisma" => kv(
                "prisma",
                "Session",
                TenantIn::Column("sessionId".into()),
                "id",
                "data",
                "creds",
            ),
            _ => return None,
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Layout::PerType(_) => "per-type",
            Layout::Kv(k) => &k.name,
        }
    }
}

impl Default for Layout {
    fn default() -> Layout {
        Layout::preset("per-type").expect("per-type preset")
    }
}

/// Splits a key-value key `<type>-<id>` into Baileys' type and raw id, by the longest known
/// type prefix. `None` for anything else (kept as unknown).
pub fn split_kv_key(key: &str) -> Option<(&'static str, &str)> {
    KEY_TYPES.iter().find_map(|t| {
        let id = key.strip_prefix(t)?.strip_prefix('-')?;
        (!id.is_empty()).then_some((*t, id))
    })
}

/// Baileys' ten key types, longest first where one is a prefix of another.
pub const KEY_TYPES: [&str; 10] = [
    "sender-key-memory",
    "app-state-sync-version",
    "app-state-sync-key",
    "identity-key",
    "device-list",
    "lid-mapping",
    "sender-key",
    "pre-key",
    "session",
    "tctoken",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_never_echoes_a_password() {
        assert!(StoreSpec::parse("", Layout::default()).unwrap().is_folder());
        match StoreSpec::parse("sqlite:/srv/a.db", Layout::default()).unwrap() {
            StoreSpec::Sqlite(p) => assert_eq!(p, PathBuf::from("/srv/a.db")),
            other => panic!("{other:?}"),
        }
        let url = "postgres://app:s3cret@db.example:6432/wa?password=other";
        let s = StoreSpec::parse(url, Layout::preset("waha").unwrap()).unwrap();
        let shown = format!("{} {:?}", s.describe(), s);
        assert!(
            !shown.contains("s3cret") && !shown.contains("other"),
            "{shown}"
        );
        assert_eq!(s.describe(), "postgres://app@db.example:6432/wa (waha)");
        let err = StoreSpec::parse("postgres://app:s3cret@db:notaport/wa", Layout::default())
            .unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
        // MySQL needs a database; its password never shows either.
        assert!(StoreSpec::parse("mysql://x", Layout::default()).is_err());
        let my = StoreSpec::parse("mariadb://app:s3cret@db:3307/wa", Layout::default()).unwrap();
        assert_eq!(my.describe(), "mysql://app@db:3307/wa (mysql-baileys)");
        let err = StoreSpec::parse("mysql://app:s3cret@db:x/wa", Layout::default()).unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(StoreSpec::parse("sqlite:", Layout::default()).is_err());
    }

    #[test]
    fn kv_keys_split_by_the_longest_type() {
        assert_eq!(
            split_kv_key("sender-key-memory-120363@g.us"),
            Some(("sender-key-memory", "120363@g.us"))
        );
        assert_eq!(
            split_kv_key("sender-key-120363@g.us::55::0"),
            Some(("sender-key", "120363@g.us::55::0"))
        );
        assert_eq!(split_kv_key("pre-key-12"), Some(("pre-key", "12")));
        assert_eq!(split_kv_key("creds"), None);
        assert_eq!(split_kv_key("session-"), None);
        assert_eq!(split_kv_key("contacts"), None);
    }

    #[test]
    fn presets_exist() {
        for p in Layout::PRESETS {
            assert_eq!(Layout::preset(p).unwrap().name(), p);
        }
        assert!(Layout::preset("nope").is_none());
    }
}
