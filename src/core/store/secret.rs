//! Passwords kept out of the command line: a password file readable only by its owner,
//! libpq's `~/.pgpass`, and putting the password found into the connection string the drivers
//! get (which never leaves the process: every message shows the redacted target).
//!
//! Pure functions over paths and text; `config` decides which source applies (it reads the
//! environment).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Refuses a file that group or others can read (or write): it holds a secret. The error names
/// the path and says what to do; it never contains the file's content.
pub fn check_owner_only(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{}: group or others can read it (mode {mode:04o}); it holds a secret: chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

/// The password in a `store.password_file`: its first line, without the line end. The file
/// must be readable by its owner only.
pub fn read_password_file(path: &Path) -> Result<String, String> {
    check_owner_only(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(format!(
            "{}: empty (the password is its first line)",
            path.display()
        ));
    }
    Ok(line.to_owned())
}

/// What a connection is to, for a `.pgpass` lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgTarget {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
}

impl PgTarget {
    /// From a connection string (its first host); `None` without a user (libpq would use the
    /// login name; we do not guess).
    pub fn of(url: &str) -> Option<PgTarget> {
        let (c, _) = super::tls::pg_config(url).ok()?;
        let user = c.get_user()?.to_owned();
        let host = match c.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            // libpq matches a socket connection with the `localhost` entry.
            Some(postgres::config::Host::Unix(_)) | None => "localhost".into(),
        };
        let port = c.get_ports().first().copied().unwrap_or(5432);
        let database = c.get_dbname().unwrap_or(&user).to_owned();
        Some(PgTarget {
            host,
            port,
            database,
            user,
        })
    }
}

/// libpq's password file format: `hostname:port:database:username:password`, `*` matches
/// anything in the first four fields, `\:` and `\\` escape, `#` starts a comment line; the
/// first matching line wins.
pub fn pgpass_lookup(text: &str, t: &PgTarget) -> Option<String> {
    let port = t.port.to_string();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .find_map(|line| {
            let fields = split_pgpass(line.trim_end_matches('\r'));
            if fields.len() < 5 {
                return None;
            }
            let wants = [t.host.as_str(), &port, &t.database, &t.user];
            let matches = fields[..4]
                .iter()
                .zip(wants)
                .all(|(f, w)| f == "*" || f == w);
            matches.then(|| fields[4..].join(":"))
        })
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().expect("one field").push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

/// The URL's password, decoded (`None`: none in it). A `password=` parameter counts too.
pub fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && let Some((_, pass)) = userinfo.split_once(':')
        && !pass.is_empty()
    {
        return Some(decode(pass));
    }
    let query = rest.split_once('?')?.1.split('#').next()?;
    query
        .split('&')
        .find_map(|p| p.strip_prefix("password="))
        .filter(|p| !p.is_empty())
        .map(decode)
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL with `password` in its user info (percent-encoded), replacing any there. For
/// `postgres://`, `redis://` and `rediss://` (`unix://` has no user info: unchanged).
pub fn with_password(url: &str, password: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    if scheme == "unix" {
        return url.to_owned();
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (user, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (userinfo.split(':').next().unwrap_or(""), host),
        None => ("", authority),
    };
    format!("{scheme}://{user}:{}@{host}{tail}", encode(password))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn target() -> PgTarget {
        PgTarget {
            host: "db.example".into(),
            port: 5432,
            database: "evolution".into(),
            user: "janitor".into(),
        }
    }

    #[test]
    fn pgpass_first_matching_line_wins_with_wildcards_and_escapes() {
        let text = "# comment\n\
                    other:5432:*:janitor:nope\n\
                    db.example:5432:evolution:janitor:pa\\:ss\\\\word:tail\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            pgpass_lookup(text, &target()).as_deref(),
            Some("pa:ss\\word:tail")
        );
        let mut t = target();
        t.port = 6432;
        assert_eq!(pgpass_lookup(text, &t).as_deref(), Some("fallback"));
        assert_eq!(
            pgpass_lookup("db.example:5432:evolution:janitor\n", &target()),
            None
        );
    }

    #[test]
    fn pg_target_reads_the_first_host_and_defaults() {
        let t = PgTarget::of("postgres://janitor@db.example/evolution").unwrap();
        assert_eq!(t, target());
        assert!(PgTarget::of("postgres://db.example/evolution").is_none());
    }

    #[test]
    fn a_password_goes_into_the_user_info_encoded() {
        assert_eq!(
            with_password("postgres://janitor@db:5432/wa?sslmode=require", "p@ss:/w"),
            "postgres://janitor:p%40ss%3A%2Fw@db:5432/wa?sslmode=require"
        );
        assert_eq!(
            with_password("rediss://default:old@r:6380/0", "new"),
            "rediss://default:new@r:6380/0"
        );
        assert_eq!(with_password("redis://r", "x"), "redis://:x@r");
        let url = with_password("postgres://janitor@db/wa", "p@ss:/w");
        assert_eq!(url_password(&url).as_deref(), Some("p@ss:/w"));
        let c: postgres::Config = url.parse().unwrap();
        assert_eq!(c.get_password(), Some(&b"p@ss:/w"[..]));
    }

    #[test]
    fn url_password_finds_user_info_and_parameters() {
        assert_eq!(url_password("redis://u:s%2F@h").as_deref(), Some("s/"));
        assert_eq!(
            url_password("postgres://u@h/db?password=x").as_deref(),
            Some("x")
        );
        assert_eq!(url_password("postgres://u@h/db"), None);
        assert_eq!(url_password("redis://h:6379"), None);
    }

    #[test]
    fn a_password_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = read_password_file(&p).unwrap_err();
        assert!(e.contains("chmod 600") && !e.contains("s3cret"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_password_file(&p).unwrap(), "s3cret");
    }
}
