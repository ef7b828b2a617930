//! Store passwords from outside the command line, resolved once into the connection strings the
//! drivers get. Order, first found wins:
//!
//! - PostgreSQL store: the URL's own password, `store.password_file`, `PGPASSWORD`,
//!   `~/.pgpass` (or `PGPASSFILE`) in libpq's format;
//! - Redis store: the URL's own password, `store.password_file`, `REDISCLI_AUTH`;
//! - MySQL / MariaDB store: the URL's own password, `store.password_file`, `MYSQL_PWD` (the
//!   mysql client's own variable);
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
    Mysql,
}

pub fn kind_of(url: &str) -> Option<Kind> {
    let u = url.trim();
    if u.starts_with("postgres://") || u.starts_with("postgresql://") {
        Some(Kind::Postgres)
    } else if u.starts_with("redis://") || u.starts_with("rediss://") {
        Some(Kind::Redis)
    } else if u.starts_with("mysql://") || u.starts_with("mariadb://") {
        Some(Kind::Mysql)
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
    let sources = match kind_of(url) {
        Some(Kind::Mysql) => "BAILEYS_JANITOR_STORE, MYSQL_PWD or store.password_file",
        Some(Kind::Redis) => "BAILEYS_JANITOR_STORE, REDISCLI_AUTH or store.password_file",
        _ => "BAILEYS_JANITOR_STORE, PGPASSWORD, ~/.pgpass or store.password_file",
    };
    Some(format!(
        "the {flag} connection string carries a password, which every user on this host can read in ps and in a crontab; \
         use {sources} instead (docs/configuration.md)"
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
        Kind::Mysql => Ok(match l.env("MYSQL_PWD") {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::store::secret::url_password;

    fn filled(env: &'static [(&'static str, &'static str)], url: &str) -> String {
        let get = move |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let l = Layers::new(&get);
        fill(&l, url.to_owned(), None).unwrap()
    }

    #[test]
    fn the_urls_own_password_wins_then_the_environment() {
        let env = &[("PGPASSWORD", "from-env"), ("REDISCLI_AUTH", "redis-env")];
        let own = filled(env, "postgres://u:own@db/wa");
        assert_eq!(url_password(&own).as_deref(), Some("own"));
        let pg = filled(env, "postgres://u@db/wa?sslmode=require");
        assert_eq!(url_password(&pg).as_deref(), Some("from-env"));
        assert!(pg.ends_with("?sslmode=require"), "{pg}");
        let redis = filled(env, "rediss://janitor@r:6380/0");
        assert_eq!(url_password(&redis).as_deref(), Some("redis-env"));
        let none = filled(&[], "postgres://u@db/wa");
        assert_eq!(none, "postgres://u@db/wa");
        assert_eq!(filled(env, "sqlite:/srv/a.db"), "sqlite:/srv/a.db");
    }

    #[test]
    fn pgpass_is_found_through_pgpassfile_and_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pgpass");
        std::fs::write(&p, "db:5432:wa:u:from-file\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = p.display().to_string();
        let get = move |k: &str| (k == "PGPASSFILE").then(|| path.clone());
        let l = Layers::new(&get);
        let url = fill(&l, "postgres://u@db/wa".into(), None).unwrap();
        assert_eq!(url_password(&url).as_deref(), Some("from-file"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = fill(&l, "postgres://u@db/wa".into(), None).unwrap_err();
        assert!(format!("{err}").contains("chmod 600"), "{err}");
    }
}
