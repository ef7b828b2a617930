//! Everything printed on stdout: one module per command's report, plus the helpers they share.
//! JSON is complete; the human output is a summary that fits a screen unless `-v` asks for
//! every company and file. Every name is escaped (`sanitize`) so it cannot forge a line.

use std::io::{self, Write};

use chrono::{DateTime, Utc};

use crate::core::level::Level;
use crate::core::util::fmt_duration;

pub mod cleanup;
pub mod monitor;
pub mod restore;
pub mod status;
pub mod store;
pub mod trigger;

/// How many companies a summary names before it only counts the rest.
pub const SUMMARY_ROWS: usize = 10;

/// stdout that stops writing, quietly, once the reader has gone (`| head`): the run goes on and
/// its exit code still reports failures. Other write errors (a full disk) are returned.
pub struct Out<W: Write> {
    inner: W,
    closed: bool,
}

impl<W: Write> Out<W> {
    pub fn new(inner: W) -> Out<W> {
        Out {
            inner,
            closed: false,
        }
    }

    fn guard(&mut self, r: io::Result<()>) -> io::Result<()> {
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

impl<W: Write> Write for Out<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let r = self.inner.write_all(buf);
        self.guard(r).map(|_| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush();
        self.guard(r)
    }
}

/// Buffered stdout for a report (flushed per company by the printers).
pub fn stdout() -> Out<io::BufWriter<io::StdoutLock<'static>>> {
    Out::new(io::BufWriter::with_capacity(64 * 1024, io::stdout().lock()))
}

/// Colours on a terminal only, and never with NO_COLOR.
pub struct Paint(pub bool);

impl Paint {
    pub fn detect() -> Paint {
        use std::io::IsTerminal;
        Paint(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
    }

    pub fn level(&self, l: Level) -> String {
        let code = match l {
            Level::Healthy => "32",
            Level::Warning => "33",
            Level::Critical | Level::Trigger => "38;5;208",
            Level::Emergency | Level::Danger => "1;31",
        };
        self.wrap(code, &format!("{:<9}", l.as_str()))
    }

    pub fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
}

/// `3h 5m ago`, `never`, `just now`.
pub fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        None => "never".into(),
        Some(t) => match (now - t).to_std() {
            Ok(d) => format!("{} ago", fmt_duration(d)),
            Err(_) => "just now".into(),
        },
    }
}

/// A safe name for a terminal.
pub fn name(s: &str) -> String {
    crate::core::util::sanitize(s.as_ref())
}

/// Items joined with `, ` and cut to fit `width` columns, ending in `…` when cut.
pub fn fit(items: &[String], width: usize) -> String {
    let mut out = String::new();
    for (i, it) in items.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        if out.chars().count() + sep.len() + it.chars().count() > width {
            out.push_str(if i == 0 { "…" } else { ", …" });
            break;
        }
        out.push_str(sep);
        out.push_str(it);
    }
    out
}

/// A word as a POSIX shell reads it back: as is when it is plain, else in single quotes.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn a_closed_pipe_is_not_an_error() {
        let mut o = Out::new(Broken);
        assert!(writeln!(o, "x").is_ok());
        assert!(o.flush().is_ok());
        assert!(o.closed);
    }

    #[test]
    fn fit_cuts_at_the_width() {
        let items: Vec<String> = (0..50).map(|i| format!("pre-key {i}")).collect();
        let s = fit(&items, 40);
        assert!(s.chars().count() <= 40, "{s}");
        assert!(s.ends_with('…'));
        assert_eq!(fit(&["a".into(), "b".into()], 40), "a, b");
    }

    #[test]
    fn shell_words_read_back_as_written() {
        assert_eq!(super::shell_word("/srv/sessions"), "/srv/sessions");
        assert_eq!(super::shell_word("my sessions"), "'my sessions'");
        assert_eq!(super::shell_word("it's"), "'it'\\''s'");
        assert_eq!(super::shell_word(""), "''");
    }
}
