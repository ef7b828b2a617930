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

/// This machine's name, for lock files and notifications.
pub fn hostname() -> String {
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

/// A file name made safe for a terminal: control characters and invalid UTF-8 escaped, so a name
/// with a newline or an escape sequence cannot forge a line of the report.
pub fn sanitize(name: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
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
    }
}
