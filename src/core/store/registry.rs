//! Which backend a store URL names, and the layouts each backend knows: one table (the
//! rustic_core `choose.rs` way). A new backend is one file beside this one, one entry here,
//! its crate in Cargo.toml and its page in docs/stores/.
//!
//! "Layout" means how a backend keeps Baileys' keys: PostgreSQL tables (`per-type`, `waha`,
//! …), Redis hashes or keys (`evolution`, `baileys-redis-auth`, …). Without `--store`, the same
//! flag names a server's folder layout (`config`: where its account folders are).

use super::redis::RedisLayout;
use super::spec::Layout;

/// One backend: the URL prefixes that name it and the layouts it knows.
pub struct Backend {
    pub name: &'static str,
    pub schemes: &'static [&'static str],
    /// Layout presets (`--layout`); the first is the default. Empty: the format is fixed.
    pub layouts: &'static [&'static str],
}

pub const BACKENDS: [Backend; 4] = [
    Backend {
        name: "sqlite",
        schemes: &["sqlite:"],
        layouts: &[],
    },
    Backend {
        name: "postgres",
        schemes: &["postgres://", "postgresql://"],
        layouts: &Layout::PRESETS,
    },
    Backend {
        name: "redis",
        schemes: &["redis://", "rediss://", "unix://"],
        layouts: &RedisLayout::PRESETS,
    },
    Backend {
        name: "mysql",
        schemes: &["mysql://", "mariadb://"],
        layouts: &super::mysql::PRESETS,
    },
];

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
}
