//! Prometheus text format (for node_exporter's textfile collector), written atomically.

use std::fmt::Write as _;
use std::path::Path;

/// Builds an exposition: `# HELP` / `# TYPE` once per metric, then its samples.
#[derive(Default)]
pub struct Exposition {
    text: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Exposition {
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.text.push_str(name);
        if !labels.is_empty() {
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.text, "{{{}}}", inner.join(","));
        }
        let _ = writeln!(self.text, " {value}");
        self
    }

    #[cfg(test)]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Temp file beside the target, fsync, rename: the collector never reads half a file.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "metrics file needs a file name",
            )
        })?;
        let folder = crate::core::folder::Folder::open(dir)?;
        crate::core::state::write_atomic_mode(&folder, name, self.text.as_bytes(), 0o666)
    }
}

/// `baileys_janitor_build_info{version="…"} 1`: which binary wrote the file.
pub fn build_info(e: &mut Exposition) {
    e.family(
        "baileys_janitor_build_info",
        "gauge",
        "The version of baileys-janitor that wrote this file.",
    )
    .sample(
        "baileys_janitor_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
}

/// What one `cleanup` or `trigger` run did, for its metrics file.
pub struct RunFacts<'a> {
    pub command: &'a str,
    pub dry_run: bool,
    pub ok: bool,
    pub removed: usize,
    pub duration_secs: f64,
    pub when: i64,
    pub notifications_sent: u64,
    pub notifications_failed: u64,
}

/// The last-run metrics `cleanup` and `trigger` write with `--metrics-file`. A dry run is
/// recorded as dry: no success mark, no removed count, only what it would have removed.
pub fn run_metrics(f: &RunFacts) -> Exposition {
    let mut e = Exposition::default();
    let l = [("command", f.command)];
    build_info(&mut e);
    e.family(
        "baileys_janitor_run_dry_run",
        "gauge",
        "1 if the last run was a dry run (nothing changed, no success recorded).",
    )
    .sample(
        "baileys_janitor_run_dry_run",
        &l,
        if f.dry_run { 1.0 } else { 0.0 },
    );
    if f.dry_run {
        e.family(
            "baileys_janitor_run_would_remove_files",
            "gauge",
            "Files the last dry run would have removed.",
        )
        .sample(
            "baileys_janitor_run_would_remove_files",
            &l,
            f.removed as f64,
        );
    } else {
        e.family(
            "baileys_janitor_run_last_timestamp_seconds",
            "gauge",
            "When the command last ran (not a dry run).",
        )
        .sample(
            "baileys_janitor_run_last_timestamp_seconds",
            &l,
            f.when as f64,
        );
        e.family(
            "baileys_janitor_run_success",
            "gauge",
            "1 if the last run succeeded.",
        )
        .sample(
            "baileys_janitor_run_success",
            &l,
            if f.ok { 1.0 } else { 0.0 },
        );
        e.family(
            "baileys_janitor_run_removed_files",
            "gauge",
            "Files removed by the last run.",
        )
        .sample("baileys_janitor_run_removed_files", &l, f.removed as f64);
    }
    e.family(
        "baileys_janitor_run_duration_seconds",
        "gauge",
        "How long the last run took.",
    )
    .sample("baileys_janitor_run_duration_seconds", &l, f.duration_secs);
    // A gauge of this run's sends, not a counter: each run rewrites the file, so a counter would
    // restart at every run and `increase()` would miss every failure after the first.
    e.family(
        "baileys_janitor_run_notifications",
        "gauge",
        "Notifications the last run sent and failed to send.",
    );
    for (result, n) in [
        ("sent", f.notifications_sent),
        ("failed", f.notifications_failed),
    ] {
        e.sample(
            "baileys_janitor_run_notifications",
            &[("command", f.command), ("result", result)],
            n as f64,
        );
    }
    e
}

/// `baileys_janitor_notifications_total{command="monitor", result="sent"|"failed"}`: the
/// monitor's counters since it started.
pub fn notifications(e: &mut Exposition, command: &str, sent: u64, failed: u64) {
    e.family(
        "baileys_janitor_notifications_total",
        "counter",
        "Notifications sent and failed (by this run, or since the monitor started).",
    );
    for (result, n) in [("sent", sent), ("failed", failed)] {
        e.sample(
            "baileys_janitor_notifications_total",
            &[("command", command), ("result", result)],
            n as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let mut e = Exposition::default();
        e.family("m", "gauge", "help")
            .sample("m", &[("company", "a\"b\\c\nd")], 1.0);
        assert_eq!(
            e.text(),
            "# HELP m help\n# TYPE m gauge\nm{company=\"a\\\"b\\\\c\\nd\"} 1\n"
        );
    }
}
