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

/// What one monitor tick saw, for its metrics file.
pub struct MonitorFacts<'a> {
    pub rows: &'a [crate::core::monitor::Row],
    pub by_type: &'a [(String, crate::core::monitor::TypeCounts)],
    pub runs: &'a crate::core::records::Runs,
    pub now: chrono::DateTime<chrono::Utc>,
    pub sent: u64,
    pub failed: u64,
}

/// The monitor's metrics: files, files by type and level per company, companies watched, the
/// last tick, the last successful cron runs, notifications.
pub fn monitor_metrics(f: &MonitorFacts) -> Exposition {
    let mut e = Exposition::default();
    build_info(&mut e);
    e.family(
        "baileys_janitor_company_files",
        "gauge",
        "Files in a company's auth folder.",
    );
    for r in f.rows {
        e.sample(
            "baileys_janitor_company_files",
            &[("company", &r.company)],
            r.files as f64,
        );
    }
    e.family(
        "baileys_janitor_company_reserved_pre_keys",
        "gauge",
        "Pre-keys in a company's auth folder that the WhatsApp server may still hand out: not counted by the level.",
    );
    for r in f.rows {
        e.sample(
            "baileys_janitor_company_reserved_pre_keys",
            &[("company", &r.company)],
            r.reserved_pre_keys as f64,
        );
    }
    e.family(
        "baileys_janitor_company_counted_files",
        "gauge",
        "What the level counts: files less reserved pre-keys.",
    );
    for r in f.rows {
        e.sample(
            "baileys_janitor_company_counted_files",
            &[("company", &r.company)],
            r.counted as f64,
        );
    }
    e.family(
        "baileys_janitor_company_files_by_type",
        "gauge",
        "Files in a company's auth folder, by Baileys type.",
    );
    for (c, types) in f.by_type {
        for (k, n) in types {
            e.sample(
                "baileys_janitor_company_files_by_type",
                &[("company", c), ("type", k.as_str())],
                *n as f64,
            );
        }
    }
    e.family(
        "baileys_janitor_company_level",
        "gauge",
        "0 healthy, 1 warning, 2 critical, 3 trigger, 4 emergency, 5 danger, from the counted files.",
    );
    // A company that could not be counted has no level (not "healthy").
    for r in f.rows {
        if let Some(level) = r.level {
            e.sample(
                "baileys_janitor_company_level",
                &[("company", &r.company)],
                level.code() as f64,
            );
        }
    }
    e.family("baileys_janitor_companies", "gauge", "Companies watched.")
        .sample("baileys_janitor_companies", &[], f.rows.len() as f64);
    e.family(
        "baileys_janitor_monitor_last_tick_timestamp_seconds",
        "gauge",
        "When the monitor last finished a tick.",
    )
    .sample(
        "baileys_janitor_monitor_last_tick_timestamp_seconds",
        &[],
        f.now.timestamp() as f64,
    );
    e.family(
        "baileys_janitor_last_success_timestamp_seconds",
        "gauge",
        "Last successful cleanup / trigger run.",
    );
    for (name, t) in [
        ("cleanup", f.runs.cleanup.last_success),
        ("trigger", f.runs.trigger.last_success),
    ] {
        e.sample(
            "baileys_janitor_last_success_timestamp_seconds",
            &[("command", name)],
            t.map_or(0.0, |t| t.timestamp() as f64),
        );
    }
    notifications(&mut e, "monitor", f.sent, f.failed);
    e
}

/// A store's tenants as its server sees them (Redis: keys, sampled bytes, orphans), for
/// `baileys-janitor-store.prom` beside the metrics file.
pub fn store_metrics(tenants: &[String], facts: &[crate::core::store::TenantFacts]) -> Exposition {
    let mut e = Exposition::default();
    e.family(
        "baileys_janitor_store_keys",
        "gauge",
        "Keys the tenant holds on the store server (Redis: HLEN or counted keys).",
    );
    for (t, f) in tenants.iter().zip(facts) {
        if let Some(k) = f.server_keys {
            e.sample("baileys_janitor_store_keys", &[("company", t)], k as f64);
        }
    }
    e.family(
        "baileys_janitor_store_bytes",
        "gauge",
        "Memory the tenant takes on the store server (Redis: MEMORY USAGE, sampled).",
    );
    for (t, f) in tenants.iter().zip(facts) {
        if let Some(b) = f.server_bytes {
            e.sample("baileys_janitor_store_bytes", &[("company", t)], b as f64);
        }
    }
    e.family(
        "baileys_janitor_store_orphan",
        "gauge",
        "1 when the tenant is an orphan (its account is gone).",
    );
    for (t, f) in tenants.iter().zip(facts) {
        e.sample(
            "baileys_janitor_store_orphan",
            &[("company", t)],
            if f.orphan.is_some() { 1.0 } else { 0.0 },
        );
    }
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
