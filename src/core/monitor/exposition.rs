//! The monitor's metrics file: what one tick saw, in the Prometheus text format
//! (`core::metrics` writes it). Beside the monitor, whose rows it shows, so `metrics` stays a
//! leaf that knows no command.

use crate::core::metrics::{Exposition, build_info, notifications};

/// What one monitor tick saw, for its metrics file.
pub struct MonitorFacts<'a> {
    pub rows: &'a [super::Row],
    pub by_type: &'a [(String, super::TypeCounts)],
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
    // An error row for its creds has no level (its count means nothing without readable
    // counters); this says it is broken, so a dashboard does not lose the company.
    e.family(
        "baileys_janitor_company_creds_broken",
        "gauge",
        "1 when a company's creds.json is corrupt, unreadable or missing beside its keys (the company then has no level).",
    );
    for r in f.rows.iter().filter(|r| r.error.is_none()) {
        e.sample(
            "baileys_janitor_company_creds_broken",
            &[("company", &r.company)],
            if r.creds_problem.is_some() { 1.0 } else { 0.0 },
        );
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
