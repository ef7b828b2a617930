//! Small formatting helpers shared by reports and logs.

use std::time::Duration;

/// `21d`, `13d 23h`, `5h 3m`, `9m`, `42s`: short enough for a table, exact enough for a boundary.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// This machine's name, for lock files, notifications and the runs and trash every host
/// shares in a store. `BAILEYS_JANITOR_HOSTNAME` overrides it (containers whose name changes
/// on every start; tests that stand for two hosts on one machine).
pub fn hostname() -> String {
    if let Some(h) = std::env::var_os("BAILEYS_JANITOR_HOSTNAME").filter(|h| !h.is_empty()) {
        return h.to_string_lossy().into_owned();
    }
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// `1.2 MiB`, `512 B`.
pub fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// A time for people, in local time: `14:05` today, `Mon 30 Nov 14:05` on another day of the
/// year, `2020-01-01 03:00` further away.
pub fn fmt_time(t: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Datelike;
    let (t, now) = (
        t.with_timezone(&chrono::Local),
        now.with_timezone(&chrono::Local),
    );
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M").to_string()
    } else if t.year() == now.year() {
        t.format("%a %d %b %H:%M").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M").to_string()
    }
}

/// `1 company`, `2 companies`, `0 files`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        return format!("1 {word}");
    }
    match word.strip_suffix('y') {
        Some(stem) if !stem.ends_with(['a', 'e', 'o', 'u']) => format!("{n} {stem}ies"),
        _ => format!("{n} {word}s"),
    }
}

/// Characters that reorder or hide text on a terminal (bidi controls, zero-width marks).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// A name made safe for a terminal or a log line (file names, company folder names): control,
/// bidi and zero-width characters and invalid UTF-8 escaped, so a name with a newline or an
/// escape sequence cannot forge a line of the report.
pub fn sanitize(name: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || is_invisible(c) {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(Duration::from_secs(42)), "42s");
        assert_eq!(fmt_duration(Duration::from_secs(9 * 60 + 5)), "9m");
        assert_eq!(fmt_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(fmt_duration(Duration::from_secs(5 * 3600 + 180)), "5h 3m");
        assert_eq!(fmt_duration(Duration::from_secs(14 * 86_400)), "14d");
        assert_eq!(
            fmt_duration(Duration::from_secs(14 * 86_400 - 3600)),
            "13d 23h"
        );
    }

    #[test]
    fn bytes() {
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
        assert_eq!(fmt_bytes(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn sanitizing() {
        assert_eq!(sanitize(OsStr::new("a\nb\x1b[31m")), "a\\nb\\u{1b}[31m");
        assert_eq!(sanitize(OsStr::from_bytes(b"x\xffy")), "x\\xffy");
        assert_eq!(sanitize(OsStr::new("session-1.0.json")), "session-1.0.json");
        assert_eq!(sanitize(OsStr::new("a\u{202E}b")), "a\\u{202e}b");
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "company"), "1 company");
        assert_eq!(plural(2, "company"), "2 companies");
        assert_eq!(plural(0, "file"), "0 files");
        assert_eq!(plural(3, "key"), "3 keys");
    }
}
