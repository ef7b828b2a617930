//! Logs go to stderr through tracing; stdout is for results. Where the process runs decides the
//! details (sd-daemon(3), PM2's two log files):
//!
//! - **systemd** (stderr is the journal stream named by `JOURNAL_STREAM`, or
//!   `--log-format journald`): every line starts with its syslog priority, `<3>` error, `<4>`
//!   warning, `<6>` info, `<7>` debug, so `journalctl -p warning` shows warnings and errors. No
//!   timestamp of our own: the journal stamps each line.
//! - **PM2** (`pm_id` in the environment, which PM2 gives every process it starts): info and below
//!   go to stdout (PM2's out log), warnings and errors to stderr (its error log).
//! - Anywhere else: everything to stderr.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
    /// Text with sd-daemon(3) `<N>` priority prefixes, so `journalctl -p warning` works
    Journald,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
            LogFormat::Journald => "journald",
        }
    }

    pub fn parse(s: &str) -> Option<LogFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            "journald" => Some(LogFormat::Journald),
            _ => None,
        }
    }
}

pub fn parse_level(s: &str) -> Option<LevelFilter> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" => Some(LevelFilter::OFF),
        "error" => Some(LevelFilter::ERROR),
        "warn" | "warning" => Some(LevelFilter::WARN),
        "info" => Some(LevelFilter::INFO),
        "debug" => Some(LevelFilter::DEBUG),
        "trace" => Some(LevelFilter::TRACE),
        _ => None,
    }
}

/// Where the process runs, as far as logging cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Supervisor {
    /// stderr is connected to the journal.
    pub journal: bool,
    /// Started by PM2: split normal output from warnings and errors.
    pub pm2: bool,
}

impl Supervisor {
    /// Reads `JOURNAL_STREAM` (checked against stderr's device and inode, as sd-daemon(3) asks:
    /// the variable is inherited by children whose stderr goes elsewhere) and `pm_id`.
    pub fn detect() -> Supervisor {
        // st_dev / st_ino are u64 on x86_64 but not on every target.
        #[allow(clippy::unnecessary_cast)]
        let journal = std::env::var("JOURNAL_STREAM").ok().is_some_and(|v| {
            rustix::fs::fstat(std::io::stderr())
                .is_ok_and(|st| is_journal_stream(&v, st.st_dev as u64, st.st_ino as u64))
        });
        let pm2 = std::env::var_os("pm_id").is_some();
        Supervisor { journal, pm2 }
    }
}

/// `JOURNAL_STREAM` is `<device>:<inode>` of the journal's socket, both decimal.
pub fn is_journal_stream(value: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

/// The syslog priority sd-daemon(3) prefixes take.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Prefixes each event with `<N>`, its syslog priority.
struct Prioritized<F>(F);

impl<S, N, F> FormatEvent<S, N> for Prioritized<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

pub fn init(level: &str, format: LogFormat) {
    init_for(level, format, Supervisor::detect());
}

pub fn init_for(level: &str, format: LogFormat, sup: Supervisor) {
    use tracing_subscriber::fmt::format as event_format;
    let level = parse_level(level).unwrap_or(LevelFilter::INFO);
    let prefixed = sup.journal || format == LogFormat::Journald;
    let split = sup.pm2 && !prefixed;
    // A closed stderr or stdout (`2>&1 | head`) must never panic or stop the work: write errors
    // are dropped by `QuietStderr` / `QuietStdout`.
    let writer = if split {
        BoxMakeWriter::new(
            (|| QuietStderr)
                .with_max_level(Level::WARN)
                .or_else(|| QuietStdout),
        )
    } else {
        BoxMakeWriter::new(|| QuietStderr)
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(writer)
        .with_target(false);
    match (format, prefixed) {
        (LogFormat::Json, false) => builder.json().flatten_event(true).init(),
        (LogFormat::Json, true) => builder
            .json()
            .event_format(Prioritized(
                event_format().json().flatten_event(true).with_target(false),
            ))
            .init(),
        (_, true) => builder
            .event_format(Prioritized(
                event_format()
                    .without_time()
                    .with_target(false)
                    .with_ansi(false),
            ))
            .init(),
        (_, false) => {
            let ansi = !split && std::io::IsTerminal::is_terminal(&std::io::stderr());
            builder.with_ansi(ansi).init()
        }
    }
}

/// stderr that swallows write errors (EPIPE after the reader went away).
pub struct QuietStderr;

impl std::io::Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// stdout that swallows write errors: PM2's out log, for info lines.
pub struct QuietStdout;

impl std::io::Write for QuietStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stdout().write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stdout().flush();
        Ok(())
    }
}

/// `eprintln!` that never panics on a closed stderr.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_stderr() {
        assert!(is_journal_stream("8:4242", 8, 4242));
        assert!(is_journal_stream("8:4242\n", 8, 4242));
        assert!(!is_journal_stream("8:4243", 8, 4242));
        assert!(!is_journal_stream("9:4242", 8, 4242));
        assert!(!is_journal_stream("8", 8, 4242));
        assert!(!is_journal_stream("", 8, 4242));
        assert!(!is_journal_stream("x:y", 8, 4242));
    }

    #[test]
    fn priorities_are_syslogs() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
        assert_eq!(priority(Level::TRACE), 7);
    }
}
