//! `[store]`: what the user wrote about where auth state lives (`--store`, `--layout`,
//! `--key-pattern`, `--creds`, the password file), with its secrets filled in. Which backend and
//! which layout that means is decided in `core::store::registry`, nowhere else.

use std::path::PathBuf;

use super::file::FileConfig;
use super::layers::Layers;
use super::{flag, secrets, usage};
use crate::cli::GlobalArgs;
use crate::core::store::StoreSpec;
use crate::core::store::registry::{self, FolderLayout, StoreRequest};

/// `--layout` as written (one vocabulary for folder and store layouts: the registry's).
pub(super) fn layout_name(l: &mut Layers, g: &GlobalArgs, file: &FileConfig) -> Option<String> {
    l.text(
        "store.layout",
        flag(g.layout.clone(), "--layout"),
        Some("BAILEYS_JANITOR_STORE_LAYOUT"),
        file.store.layout.clone().or_else(|| file.layout.clone()),
        false,
    )
    .map(|n| n.trim().to_owned())
}

/// The server folder layout `--layout` names when no store URL is given anywhere: it moves
/// the sessions path.
pub(super) fn server_layout(
    l: &Layers,
    g: &GlobalArgs,
    file: &FileConfig,
    layout_name: Option<&str>,
) -> Option<&'static FolderLayout> {
    let store_url_given = g.store.as_deref().is_some_and(|s| !s.trim().is_empty())
        || l.env("BAILEYS_JANITOR_STORE").is_some()
        || file.store.url.is_some();
    layout_name
        .and_then(registry::folder_layout)
        .filter(|_| !store_url_given)
}

/// `--store` / `BAILEYS_JANITOR_STORE` / `[store] url`, the layout, and for Redis the key
/// pattern and where creds are; `read_secrets` is false for `config`, which shows where
/// settings come from and never reads a secret.
pub(super) fn resolve_store(
    l: &mut Layers,
    g: &GlobalArgs,
    file: &FileConfig,
    layout_name: Option<&str>,
    warnings: &mut Vec<String>,
    read_secrets: bool,
) -> anyhow::Result<(StoreSpec, Option<String>)> {
    let url = l.text(
        "store.url",
        flag(g.store.clone(), "--store"),
        Some("BAILEYS_JANITOR_STORE"),
        file.store.url.clone(),
        true,
    );
    let key_pattern = l.text(
        "store.key_pattern",
        flag(g.key_pattern.clone(), "--key-pattern"),
        Some("BAILEYS_JANITOR_KEY_PATTERN"),
        file.store.key_pattern.clone(),
        false,
    );
    let creds = l.text(
        "store.creds",
        flag(g.creds.clone(), "--creds"),
        Some("BAILEYS_JANITOR_CREDS"),
        file.store.creds.clone(),
        true,
    );
    let password_file = l
        .text(
            "store.password_file",
            None,
            Some("BAILEYS_JANITOR_STORE_PASSWORD_FILE"),
            file.store
                .password_file
                .as_ref()
                .map(|p| p.display().to_string()),
            false,
        )
        .map(PathBuf::from);
    warnings.extend(
        url.as_deref()
            .and_then(|u| secrets::argv_warning(l, "store.url", u)),
    );
    warnings.extend(
        creds
            .as_deref()
            .and_then(|c| secrets::argv_warning(l, "store.creds", c)),
    );
    if password_file.is_some() && url.as_deref().and_then(secrets::kind_of).is_none() {
        return Err(usage(
            "store.password_file needs a postgres://, mysql:// or redis:// store (sqlite files and folders have no password)",
        ));
    }
    let url = match url {
        Some(u) if !read_secrets => Some(u),
        Some(u) => Some(secrets::fill(l, u, password_file)?),
        None if password_file.is_some() => {
            return Err(usage(
                "store.password_file needs a postgres://, mysql:// or redis:// store",
            ));
        }
        None => None,
    };
    let creds = match creds {
        Some(c) if read_secrets => Some(secrets::fill(l, c, None)?),
        Some(c) => Some(c),
        None => None,
    };
    let mut evolution_prefix = || {
        l.text(
            "store.evolution_prefix",
            None,
            Some("CACHE_REDIS_PREFIX_KEY"),
            file.store.evolution_prefix.clone(),
            false,
        )
    };
    let request = StoreRequest {
        url: url.as_deref(),
        layout: layout_name,
        key_pattern: key_pattern.as_deref(),
        creds: creds.as_deref(),
    };
    registry::resolve(&request, &mut evolution_prefix).map_err(usage)
}

/// `store.state_schema`: the PostgreSQL / MySQL schema (database) of the janitor's own tables
/// (`core::store::shared`). A plain identifier, so it is never quoted wrong in any SQL.
pub(super) fn resolve_state_schema(l: &mut Layers, file: &FileConfig) -> anyhow::Result<String> {
    use crate::core::store::shared::DEFAULT_SCHEMA;
    let schema = l
        .text(
            "store.state_schema",
            None,
            Some("BAILEYS_JANITOR_STATE_SCHEMA"),
            file.store.state_schema.clone(),
            false,
        )
        .map(|s| s.trim().to_owned());
    let Some(schema) = schema else {
        l.record(
            "store.state_schema",
            DEFAULT_SCHEMA.into(),
            super::layers::Origin::Default,
        );
        return Ok(DEFAULT_SCHEMA.into());
    };
    if !valid_schema(&schema) {
        return Err(usage(format!(
            "store.state_schema {:?} is not a schema name: letters, digits and _, not starting with a digit, at most 63 characters",
            crate::render::name(&schema)
        )));
    }
    Ok(schema)
}

/// `[A-Za-z_][A-Za-z0-9_]*`, at most 63 characters (PostgreSQL's limit; MySQL allows 64).
pub fn valid_schema(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::super::tests::load_env;

    #[test]
    fn the_state_schema_is_a_plain_identifier() {
        use super::valid_schema;
        for ok in ["baileys_janitor", "_x", "A1", &"a".repeat(63)] {
            assert!(valid_schema(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a.b", "a b", "\"x\"", "ü", &"a".repeat(64)] {
            assert!(!valid_schema(bad), "{bad}");
        }
        let c = load_env(&["status"], &[]).unwrap();
        assert_eq!(c.state_schema, "baileys_janitor");
        let c = load_env(&["status"], &[("BAILEYS_JANITOR_STATE_SCHEMA", "jan_2")]).unwrap();
        assert_eq!(c.state_schema, "jan_2");
        let e = load_env(&["status"], &[("BAILEYS_JANITOR_STATE_SCHEMA", "x;drop")]).unwrap_err();
        assert!(e.to_string().contains("store.state_schema"), "{e}");
    }

    #[test]
    fn store_passwords_stay_out_of_argv_and_creds_serve_evolution_folders() {
        // A password on the command line works, with one warning; from the environment, none.
        let c = load_env(&["--store", "postgres://u:pw@db/wa", "status"], &[]).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(!c.warnings[0].contains("pw@"), "{:?}", c.warnings);
        let c = load_env(
            &["status"],
            &[("BAILEYS_JANITOR_STORE", "postgres://u:pw@db/wa")],
        )
        .unwrap();
        assert!(c.warnings.is_empty());
        // PGPASSWORD fills a URL without one.
        let c = load_env(
            &["--store", "postgres://u@db/wa?sslmode=require", "status"],
            &[("PGPASSWORD", "pw")],
        )
        .unwrap();
        assert!(c.warnings.is_empty());
        match &c.store {
            crate::core::store::StoreSpec::Postgres { url, .. } => {
                assert_eq!(url, "postgres://u:pw@db/wa?sslmode=require");
            }
            other => panic!("{other:?}"),
        }
        // A password file needs a store that has passwords.
        let e = load_env(
            &["--store", "sqlite:/srv/a.db", "status"],
            &[("BAILEYS_JANITOR_STORE_PASSWORD_FILE", "/etc/pw")],
        )
        .unwrap_err();
        assert!(e.to_string().contains("password_file"), "{e}");
        // Evolution's files mode takes --creds; other folder layouts do not.
        let c = load_env(
            &[
                "--layout",
                "evolution",
                "--creds",
                "postgres://e@db/evo",
                "status",
            ],
            &[],
        )
        .unwrap();
        assert!(c.store.is_folder());
        assert_eq!(c.folder_creds.as_deref(), Some("postgres://e@db/evo"));
        let e = load_env(
            &[
                "--layout",
                "waha",
                "--creds",
                "postgres://e@db/evo",
                "status",
            ],
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("--layout evolution"), "{e}");
    }
}
