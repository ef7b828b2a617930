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
        crate::core::state::write_atomic(&folder, name, self.text.as_bytes())
    }
}

/// The last-run metrics `cleanup` and `trigger` write with `--metrics-file`.
pub fn run_metrics(
    command: &str,
    ok: bool,
    removed: usize,
    duration_secs: f64,
    when: i64,
) -> Exposition {
    let mut e = Exposition::default();
    let l = [("command", command)];
    e.family(
        "baileys_janitor_run_last_timestamp_seconds",
        "gauge",
        "When the command last ran.",
    )
    .sample(
        "baileys_janitor_run_last_timestamp_seconds",
        &l,
        when as f64,
    );
    e.family(
        "baileys_janitor_run_success",
        "gauge",
        "1 if the last run succeeded.",
    )
    .sample(
        "baileys_janitor_run_success",
        &l,
        if ok { 1.0 } else { 0.0 },
    );
    e.family(
        "baileys_janitor_run_removed_files",
        "gauge",
        "Files removed by the last run.",
    )
    .sample("baileys_janitor_run_removed_files", &l, removed as f64);
    e.family(
        "baileys_janitor_run_duration_seconds",
        "gauge",
        "How long the last run took.",
    )
    .sample("baileys_janitor_run_duration_seconds", &l, duration_secs);
    e
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
