//! Store passwords from outside the command line, resolved once into the connection strings the
//! drivers get. Order, first found wins:
//!
//! - PostgreSQL store: the URL's own password, `store.password_file`, `PGPASSWORD`,
//!   `~/.pgpass` (or `PGPASSFILE`) in libpq's format;
//! - Redis store: the URL's own password, `store.password_file`, `REDISCLI_AUTH`;
//! - `--creds` (PostgreSQL): the URL's own password, `PGPASSWORD`, `~/.pgpass`.
//!
//! A password given on the command line still works, with one warning: other users can read it
//! in `ps` and in a crontab.

use std::path::PathBuf;

use super::layers::{Layers, Origin};
use super::usage;
use crate::core::store::secret::{
    PgTarget, check_owner_only, pgpass_lookup, read_password_file, url_password, with_password,
};

/// What a connection string is, for choosing its password sources.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Redis,
}

pub fn kind_of(url: &str) -> Option<Kind> {
    let u = url.trim();
    if u.starts_with("postgres://") || u.starts_with("postgresql://") {
        Some(Kind::Postgres)
    } else if u.starts_with("redis://") || u.starts_with("rediss://") {
        Some(Kind::Redis)
    } else {
        None
    }
}

/// The warning for a password on the command line (`key` is the setting, e.g. `store.url`).
pub fn argv_warning(l: &Layers<'_>, key: &str, url: &str) -> Option<String> {
    let origin = &l.settings.iter().find(|s| s.key == key)?.origin;
    let Origin::Flag(flag) = origin else {
        return None;
    };
    url_password(url)?;
    Some(format!(
        "the {flag} connection string carries a password, which every user on this host can read in ps and in a crontab; \
         use BAILEYS_JANITOR_STORE, PGPASSWORD, ~/.pgpass or store.password_file instead (docs/configuration.md)"
    ))
}

/// `url` with a password from the first source that has one (unchanged when none does, or when
/// it has its own). `password_file` applies to the store only (`None` for `--creds`).
pub fn fill(l: &Layers<'_>, url: String, password_file: Option<PathBuf>) -> anyhow::Result<String> {
    let Some(kind) = kind_of(&url) else {
        return Ok(url);
    };
    if url_password(&url).is_some() {
        return Ok(url);
    }
    if let Some(p) = password_file {
        let pw = read_password_file(&p).map_err(|e| usage(format!("store.password_file {e}")))?;
        return Ok(with_password(&url, &pw));
    }
    match kind {
        Kind::Redis => Ok(match l.env("REDISCLI_AUTH") {
            Some(pw) => with_password(&url, &pw),
            None => url,
        }),
        Kind::Postgres => {
            if let Some(pw) = l.env("PGPASSWORD") {
                return Ok(with_password(&url, &pw));
            }
            let Some(pgpass) = l
                .env("PGPASSFILE")
                .map(PathBuf::from)
                .or_else(|| l.env("HOME").map(|h| PathBuf::from(h).join(".pgpass")))
                .filter(|p| p.exists())
            else {
                return Ok(url);
            };
            let Some(target) = PgTarget::of(&url) else {
                return Ok(url);
            };
            // libpq ignores such a file with a warning; a silent fallback to no password would
            // only move the error to the server, so refuse and say why.
            check_owner_only(&pgpass).map_err(|e| usage(format!("password file {e}")))?;
            let text = std::fs::read_to_string(&pgpass)
                .map_err(|e| usage(format!("password file {}: {e}", pgpass.display())))?;
            Ok(match pgpass_lookup(&text, &target) {
                Some(pw) => with_password(&url, &pw),
                None => url,
            })
        }
    }
}
