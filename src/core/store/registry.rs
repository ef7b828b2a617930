//! Which backend a store URL names, and the layouts each backend knows: one table (the
//! rustic_core `choose.rs` way). A new backend is one file beside this one, one entry here,
//! its crate in Cargo.toml and its page in docs/stores/.
//!
//! "Layout" means one thing: how a server keeps Baileys' keys, named by `--layout`. Without a
//! store URL it is a folder layout ([`FOLDER_LAYOUTS`]: where the server keeps one auth folder
//! per account); with one, the backend's presets (PostgreSQL tables `per-type`, `waha`, …; Redis
//! hashes or keys `evolution`, `baileys-redis-auth`, …). Config only passes what the user wrote;
//! [`resolve`] turns it into a [`StoreSpec`] here and nowhere else.

use std::path::PathBuf;

use super::redis::RedisLayout;
use super::spec::{Layout, StoreSpec};

/// One backend: the URL prefixes that name it, the layouts it knows and how it is opened.
pub struct Backend {
    pub name: &'static str,
    pub schemes: &'static [&'static str],
    /// Layout presets (`--layout`); the first is the default. Empty: the format is fixed.
    pub layouts: &'static [&'static str],
    /// The store this URL and what the user wrote about it name (`url` holds a secret).
    open: fn(url: &str, req: &StoreRequest<'_>, prefix: PrefixFn<'_>) -> Result<StoreSpec, String>,
}

pub const BACKENDS: [Backend; 4] = [
    Backend {
        name: "sqlite",
        schemes: &["sqlite:"],
        layouts: &[],
        open: open_table_store,
    },
    Backend {
        name: "postgres",
        schemes: &["postgres://", "postgresql://"],
        layouts: &Layout::PRESETS,
        open: open_table_store,
    },
    Backend {
        name: "redis",
        schemes: &["redis://", "rediss://", "unix://"],
        layouts: &RedisLayout::PRESETS,
        open: open_redis,
    },
    Backend {
        name: "mysql",
        schemes: &["mysql://", "mariadb://"],
        layouts: &super::mysql::PRESETS,
        open: open_mysql,
    },
];

/// A Baileys server that keeps one auth folder per account under its own base folder.
pub struct FolderLayout {
    pub name: &'static str,
    /// Where the server's base folder is when `--sessions-path` does not say, given `$HOME`.
    pub default_base: fn(home: Option<&str>) -> PathBuf,
    /// Where, under the base, the account folders are.
    pub accounts: &'static str,
    /// Account folders hold their creds.json (not Evolution API's: its creds are in its
    /// database), so a folder without one is an orphan worth reporting.
    pub creds_in_folder: bool,
}

/// Folder layouts of the servers (sources: OpenClaw `~/.openclaw/credentials/whatsapp/<account>`,
/// WAHA `WAHA_LOCAL_STORE_BASE_DIR` (`/app/.sessions` in Docker) + `noweb/<session>`, Evolution
/// API `INSTANCE_DIR` (`/evolution/instances` in Docker) + `<instance id>`).
pub const FOLDER_LAYOUTS: [FolderLayout; 3] = [
    FolderLayout {
        name: "openclaw",
        default_base: openclaw_base,
        accounts: "credentials/whatsapp",
        creds_in_folder: true,
    },
    FolderLayout {
        name: "waha",
        default_base: waha_base,
        accounts: "noweb",
        creds_in_folder: true,
    },
    FolderLayout {
        name: "evolution",
        default_base: evolution_base,
        accounts: "",
        creds_in_folder: false,
    },
];

fn openclaw_base(home: Option<&str>) -> PathBuf {
    PathBuf::from(home.unwrap_or("/root")).join(".openclaw")
}

fn waha_base(_: Option<&str>) -> PathBuf {
    PathBuf::from("/app/.sessions")
}

fn evolution_base(_: Option<&str>) -> PathBuf {
    PathBuf::from("/evolution/instances")
}

/// The folder layout `name` names, if it names one.
pub fn folder_layout(name: &str) -> Option<&'static FolderLayout> {
    FOLDER_LAYOUTS.iter().find(|f| f.name == name)
}

/// Whether account folders hold their creds.json under the layout the user named (Evolution
/// keeps them in its database, in files mode too).
pub fn creds_in_folder(layout: Option<&str>) -> bool {
    layout
        .and_then(folder_layout)
        .is_none_or(|f| f.creds_in_folder)
}

/// The backend `url` names, by its scheme.
pub fn backend_of(url: &str) -> Option<&'static Backend> {
    let url = url.trim();
    BACKENDS
        .iter()
        .find(|b| b.schemes.iter().any(|s| url.starts_with(s)))
}

/// Every database layout, for messages: `per-type, waha, … (postgres); evolution, … (redis)`.
pub fn all_layouts() -> String {
    BACKENDS
        .iter()
        .filter(|b| !b.layouts.is_empty())
        .map(|b| format!("{} ({})", b.layouts.join(", "), b.name))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the user wrote about the store, whatever its source (flag, environment, file); the
/// URL and creds have their passwords filled in already.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreRequest<'a> {
    pub url: Option<&'a str>,
    pub layout: Option<&'a str>,
    pub key_pattern: Option<&'a str>,
    pub creds: Option<&'a str>,
}

/// Asked only when an Evolution Redis layout has no key pattern: Evolution's own
/// `CACHE_REDIS_PREFIX_KEY` (config reads it, so `config` shows it only where it applies).
pub type PrefixFn<'a> = &'a mut dyn FnMut() -> Option<String>;

/// The store the user named, and for Evolution's files mode the PostgreSQL database that holds
/// the folders' creds. Errors are one line for the operator and never repeat a URL.
pub fn resolve(
    req: &StoreRequest<'_>,
    evolution_prefix: PrefixFn<'_>,
) -> Result<(StoreSpec, Option<String>), String> {
    let Some(url) = req.url else {
        return resolve_folders(req);
    };
    match backend_of(url) {
        Some(b) => (b.open)(url, req, evolution_prefix).map(|s| (s, None)),
        // `folder` or an unknown kind: the table-store checks, then `StoreSpec::parse` says why.
        None => open_table_store(url, req, evolution_prefix).map(|s| (s, None)),
    }
}

fn resolve_folders(req: &StoreRequest<'_>) -> Result<(StoreSpec, Option<String>), String> {
    if let Some(n) = req.layout
        && folder_layout(n).is_none()
    {
        return Err(format!(
            "layout {n:?} needs --store (folder layouts: {}); database layouts: {}",
            FOLDER_LAYOUTS.map(|f| f.name).join(", "),
            all_layouts()
        ));
    }
    if req.key_pattern.is_some() {
        return Err("--key-pattern needs a redis:// --store".into());
    }
    if let Some(c) = req.creds {
        // Evolution's files mode: keys in the folders, creds in its "Session" table.
        if req.layout != Some("evolution") {
            return Err(
                "--creds needs --layout evolution (its files mode) or a redis:// --store".into(),
            );
        }
        check_creds_url(c)?;
    }
    Ok((StoreSpec::Folder, req.creds.map(str::to_owned)))
}

fn no_redis_options(req: &StoreRequest<'_>) -> Result<(), String> {
    if req.key_pattern.is_some() || req.creds.is_some() {
        return Err("--key-pattern and --creds need a redis:// --store".into());
    }
    Ok(())
}

/// SQLite (its format is fixed: a layout is checked, then unused) and PostgreSQL.
fn open_table_store(
    url: &str,
    req: &StoreRequest<'_>,
    _: PrefixFn<'_>,
) -> Result<StoreSpec, String> {
    no_redis_options(req)?;
    let layout = match req.layout {
        None => Layout::default(),
        Some(n) => Layout::preset(n).ok_or_else(|| {
            format!(
                "store layout {:?} is not one of {}",
                n,
                Layout::PRESETS.join(", ")
            )
        })?,
    };
    StoreSpec::parse(url, layout)
}

fn open_mysql(url: &str, req: &StoreRequest<'_>, _: PrefixFn<'_>) -> Result<StoreSpec, String> {
    no_redis_options(req)?;
    let layout = super::mysql::layout(url, req.layout.unwrap_or(super::mysql::PRESETS[0]))?;
    match StoreSpec::parse(url, Layout::default())? {
        StoreSpec::Mysql { url, .. } => Ok(StoreSpec::Mysql {
            url,
            layout: Box::new(layout),
        }),
        _ => Err("store: not a mysql connection string".into()),
    }
}

fn open_redis(
    url: &str,
    req: &StoreRequest<'_>,
    evolution_prefix: PrefixFn<'_>,
) -> Result<StoreSpec, String> {
    let name = req.layout.unwrap_or(RedisLayout::PRESETS[0]);
    let mut layout = RedisLayout::preset(name).ok_or_else(|| {
        format!(
            "layout {name:?} is not a redis layout (one of {})",
            RedisLayout::PRESETS.join(", ")
        )
    })?;
    if let Some(p) = req.key_pattern {
        layout = layout.with_pattern(p.trim())?;
    } else if layout.evolution
        && let Some(prefix) = evolution_prefix()
    {
        layout = layout.with_evolution_prefix(prefix.trim())?;
    }
    if let Some(c) = req.creds {
        if !layout.evolution {
            return Err(format!(
                "--creds is only for the evolution layout (layout {name} keeps creds in Redis)"
            ));
        }
        check_creds_url(c)?;
    }
    match StoreSpec::parse(url, Layout::default())? {
        StoreSpec::Redis { url, .. } => Ok(StoreSpec::Redis {
            url,
            layout: Box::new(layout),
            creds: req.creds.map(str::to_owned),
        }),
        _ => Err("store: not a redis connection string".into()),
    }
}

/// Where Evolution's creds are (`"Session"`): a PostgreSQL connection string.
fn check_creds_url(c: &str) -> Result<(), String> {
    if !(c.starts_with("postgres://") || c.starts_with("postgresql://")) {
        return Err(
            "--creds must be a postgres://user[:password]@host[:port]/database connection string"
                .into(),
        );
    }
    super::tls::pg_config(c)
        .map(|_| ())
        .map_err(|e| format!("--creds: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheme_names_one_backend() {
        assert_eq!(backend_of("sqlite:/srv/a.db").unwrap().name, "sqlite");
        assert_eq!(backend_of(" postgresql://u@h/d").unwrap().name, "postgres");
        assert_eq!(backend_of("rediss://h:6380").unwrap().name, "redis");
        assert!(backend_of("folder").is_none());
        assert_eq!(backend_of("mariadb://h/d").unwrap().name, "mysql");
        assert!(backend_of("mongodb://h/d").is_none());
        for b in BACKENDS {
            for other in BACKENDS.iter().filter(|o| o.name != b.name) {
                for s in b.schemes {
                    assert!(
                        !other
                            .schemes
                            .iter()
                            .any(|o| o.starts_with(s) || s.starts_with(o))
                    );
                }
            }
        }
    }

    #[test]
    fn every_layout_is_named_once_with_its_backend() {
        let all = all_layouts();
        assert!(
            all.contains("per-type") && all.contains("(postgres)"),
            "{all}"
        );
        assert!(
            all.contains("evolution") && all.contains("(redis)"),
            "{all}"
        );
        assert!(!all.contains("sqlite"), "{all}");
    }

    fn req<'a>(url: Option<&'a str>, layout: Option<&'a str>) -> StoreRequest<'a> {
        StoreRequest {
            url,
            layout,
            ..StoreRequest::default()
        }
    }

    fn resolved(r: &StoreRequest<'_>) -> Result<(StoreSpec, Option<String>), String> {
        resolve(r, &mut || None)
    }

    #[test]
    fn one_layout_vocabulary_for_folders_and_every_backend() {
        // Without a URL, the folder layouts (and only those) are accepted.
        for f in &FOLDER_LAYOUTS {
            assert!(resolved(&req(None, Some(f.name))).unwrap().0.is_folder());
        }
        let e = resolved(&req(None, Some("per-type"))).unwrap_err();
        assert!(
            e.contains("needs --store") && e.contains("openclaw, waha, evolution"),
            "{e}"
        );
        // With one, every preset of the URL's backend is accepted, and its first is the default.
        let urls = [
            ("postgres", "postgres://u@db/wa"),
            ("redis", "redis://127.0.0.1:6379"),
            ("mysql", "mysql://u@db/wa"),
        ];
        for (name, url) in urls {
            let b = backend_of(url).unwrap();
            assert_eq!(b.name, name);
            for layout in b.layouts {
                let spec = resolved(&req(Some(url), Some(layout))).unwrap().0;
                assert!(spec.describe().contains(layout), "{layout}: {spec:?}");
            }
            let default = resolved(&req(Some(url), None)).unwrap().0;
            assert!(default.describe().contains(b.layouts[0]), "{default:?}");
        }
        // A folder-only name with a database URL is refused with that backend's list.
        let e = resolved(&req(Some("postgres://u@db/wa"), Some("openclaw"))).unwrap_err();
        assert!(e.contains("per-type"), "{e}");
        let e = resolved(&req(Some("redis://h"), Some("openclaw"))).unwrap_err();
        assert!(e.contains("not a redis layout"), "{e}");
    }

    #[test]
    fn evolution_folders_keep_creds_in_the_database() {
        assert!(!creds_in_folder(Some("evolution")));
        assert!(creds_in_folder(Some("openclaw")));
        assert!(creds_in_folder(Some("per-type")));
        assert!(creds_in_folder(None));
        let base = |name: &str, home| (folder_layout(name).unwrap().default_base)(home);
        assert_eq!(
            base("openclaw", Some("/home/a")),
            PathBuf::from("/home/a/.openclaw")
        );
        assert_eq!(base("openclaw", None), PathBuf::from("/root/.openclaw"));
        assert_eq!(base("waha", None), PathBuf::from("/app/.sessions"));
    }

    #[test]
    fn evolutions_own_prefix_is_asked_only_where_it_applies() {
        let mut asked = 0;
        let mut prefix = || {
            asked += 1;
            Some("evolution".to_owned())
        };
        let r = req(Some("redis://h"), Some("evolution"));
        let spec = resolve(&r, &mut prefix).unwrap().0;
        assert!(spec.describe().contains("evolution:instance:*"), "{spec:?}");
        let with_pattern = StoreRequest {
            key_pattern: Some("x:*"),
            ..r
        };
        resolve(&with_pattern, &mut prefix).unwrap();
        resolve(&req(Some("redis://h"), Some("redis-hash")), &mut prefix).unwrap();
        resolve(&req(None, Some("evolution")), &mut prefix).unwrap();
        assert_eq!(asked, 1);
    }
}
