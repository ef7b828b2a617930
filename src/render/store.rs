//! `status` of a database store: per tenant, keys by type, the level, and what a cleanup would
//! remove now.

use std::io::{self, Write};

use serde::Serialize;

use crate::core::level::Thresholds;
use crate::core::report::CompanyReport;

#[derive(Serialize)]
struct Row<'a> {
    tenant: &'a str,
    level: String,
    keys: usize,
    /// Pre-keys the server may still hand out: not counted by the level (core::tally).
    reserved_pre_keys: usize,
    /// What the level is about: keys less reserved pre-keys.
    counted: usize,
    creds: Option<&'static str>,
    removable_now: usize,
    by_type: &'a std::collections::BTreeMap<crate::core::classify::Kind, usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(flatten)]
    facts: &'a crate::core::store::TenantFacts,
    /// Where the store keeps the janitor's state: the last cleanup, from whichever host.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_cleanup: Option<LastCleanup<'a>>,
    /// Where the store keeps the janitor's state: until when the trigger and
    /// `monitor --auto-cleanup` leave the tenant alone, whichever host started the cooldown.
    #[serde(skip_serializing_if = "Option::is_none")]
    cooldown_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Where the store keeps the janitor's state: rows put back by `restore` (on any host) that
    /// no cleanup removes before `on_hold_until`.
    #[serde(skip_serializing_if = "Option::is_none")]
    on_hold: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_hold_until: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize)]
struct LastCleanup<'a> {
    time: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    by: &'a str,
    status: &'a str,
    removed: usize,
}

/// One host's last run of one command (`status --json`: `runs_by_host`).
#[derive(Serialize)]
struct HostRun<'a> {
    host: &'a str,
    command: &'static str,
    last_start: Option<chrono::DateTime<chrono::Utc>>,
    last_success: Option<chrono::DateTime<chrono::Utc>>,
    last_failure: Option<chrono::DateTime<chrono::Utc>>,
}

/// What `status` shows of a store.
pub struct StoreStatus<'a> {
    pub store: &'a str,
    pub connection: Option<&'a str>,
    pub reports: &'a [CompanyReport],
    pub facts: &'a [crate::core::store::TenantFacts],
    /// Where the store keeps the janitor's state (every host's last cleanups and runs).
    pub shared: Option<&'a crate::core::fleet::SharedStatus>,
    pub thresholds: &'a Thresholds,
    pub now: chrono::DateTime<chrono::Utc>,
    /// The command that ends the hold on a tenant's restored rows.
    pub release: &'a dyn Fn(&str) -> String,
}

fn host_runs(shared: Option<&crate::core::fleet::SharedStatus>) -> Vec<HostRun<'_>> {
    let Some(shared) = shared else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (host, runs) in &shared.runs_by_host {
        for (command, mark) in [("cleanup", &runs.cleanup), ("trigger", &runs.trigger)] {
            if mark.last_start.is_none() && mark.last_success.is_none() {
                continue;
            }
            out.push(HostRun {
                host,
                command,
                last_start: mark.last_start,
                last_success: mark.last_success,
                last_failure: mark.last_failure,
            });
        }
    }
    out
}

pub fn print_status(out: &mut impl Write, st: &StoreStatus, json: bool) -> io::Result<()> {
    let (store, connection, thresholds) = (st.store, st.connection, st.thresholds);
    let last = |i: usize| {
        st.shared
            .and_then(|s| s.last_cleanups.get(i))
            .and_then(Option::as_ref)
            .map(|m| LastCleanup {
                time: m.time,
                host: m.host.as_deref(),
                by: &m.by,
                status: &m.status,
                removed: m.removed,
            })
    };
    let mut rows: Vec<Row> = st
        .reports
        .iter()
        .zip(st.facts)
        .enumerate()
        .map(|(i, (r, f))| Row {
            tenant: &r.company,
            level: thresholds.level(r.counted_before()).as_str().to_owned(),
            keys: r.files_before,
            reserved_pre_keys: r.reserved_before,
            counted: r.counted_before(),
            creds: r.creds,
            removable_now: r.removed,
            by_type: &r.files_by_type,
            error: r.error.as_deref(),
            facts: f,
            last_cleanup: last(i),
            cooldown_until: st
                .shared
                .and_then(|s| s.cooldowns.get(i).copied())
                .flatten(),
            on_hold: st.shared.and_then(|s| s.holds.get(i)).map(|h| h.0),
            on_hold_until: st.shared.and_then(|s| s.holds.get(i)).and_then(|h| h.1),
        })
        .collect();
    let runs = host_runs(st.shared);
    // Tenants that could not be read, or whose creds are corrupt, first.
    rows.sort_by_key(|r| std::cmp::Reverse(r.error.is_some()));
    if json {
        serde_json::to_writer(
            &mut *out,
            &match st.shared {
                None => {
                    serde_json::json!({ "store": store, "connection": connection, "tenants": rows })
                }
                Some(_) => serde_json::json!({
                    "store": store, "connection": connection, "tenants": rows, "runs_by_host": runs
                }),
            },
        )?;
        writeln!(out)?;
        return out.flush();
    }
    writeln!(out, "store {store}: {} tenants", rows.len())?;
    if let Some(c) = connection {
        writeln!(out, "connection: {c}")?;
    }
    writeln!(
        out,
        "{:<40} {:>8} {:>8} {:>10} {:>9}  creds",
        "tenant", "keys", "reserved", "level", "removable"
    )?;
    for r in &rows {
        let f = r.facts;
        let memory = match (f.server_keys, f.server_bytes) {
            (Some(k), Some(b)) => format!("  {k} keys, {}", crate::core::util::fmt_bytes(b)),
            _ => String::new(),
        };
        writeln!(
            out,
            "{:<40} {:>8} {:>8} {:>10} {:>9}  {}{}{}{}{}{}{}",
            crate::render::name(r.tenant),
            r.keys,
            r.reserved_pre_keys,
            r.level,
            r.removable_now,
            r.creds.unwrap_or("-"),
            f.name
                .as_deref()
                .map(|n| format!("  name {}", crate::render::name(n)))
                .unwrap_or_default(),
            memory,
            f.orphan
                .as_deref()
                .map(|o| format!("  ORPHAN: {o}"))
                .unwrap_or_default(),
            r.last_cleanup
                .as_ref()
                .map(|l| format!(
                    "  cleaned {} on {}",
                    crate::render::ago(Some(l.time), st.now),
                    crate::render::name(l.host.unwrap_or("an unknown host"))
                ))
                .unwrap_or_default(),
            r.cooldown_until
                .map(|u| format!(
                    "  cooldown until {}",
                    crate::core::util::fmt_time(u, st.now)
                ))
                .unwrap_or_default(),
            r.error.map(|e| format!("  ERROR: {e}")).unwrap_or_default()
        )?;
        // As folder `status` says it (render::status).
        if let Some(until) = r.on_hold_until {
            writeln!(
                out,
                "  on hold: {} restored keys kept from cleanup until {} (end it with: {})",
                r.on_hold.unwrap_or(0),
                until.format("%Y-%m-%d %H:%M UTC"),
                (st.release)(r.tenant)
            )?;
        }
    }
    if st.shared.is_some() {
        if runs.is_empty() {
            writeln!(out, "runs by host: none yet")?;
        } else {
            writeln!(out, "runs by host:")?;
        }
        for r in &runs {
            writeln!(
                out,
                "  {:<24} {:<8} started {}, success {}, failure {}",
                crate::render::name(r.host),
                r.command,
                crate::render::ago(r.last_start, st.now),
                crate::render::ago(r.last_success, st.now),
                crate::render::ago(r.last_failure, st.now),
            )?;
        }
    }
    let orphans: Vec<&Row> = rows.iter().filter(|r| r.facts.orphan.is_some()).collect();
    if !orphans.is_empty() {
        let bytes: u64 = orphans.iter().filter_map(|r| r.facts.server_bytes).sum();
        writeln!(
            out,
            "{} orphan tenants ({}): kept; `cleanup --remove-orphans` removes them (to the trash)",
            orphans.len(),
            crate::core::util::fmt_bytes(bytes)
        )?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fleet::SharedStatus;
    use crate::core::records::{CleanupMark, RunMark, Runs};

    fn t(h: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap()
    }

    fn show(shared: Option<&SharedStatus>, json: bool) -> String {
        let mut report = CompanyReport::new("company_1");
        report.files_before = 12;
        let facts = vec![crate::core::store::TenantFacts::default()];
        let thresholds = Thresholds {
            warning: 100,
            critical: 200,
            trigger: 300,
            emergency: 400,
            danger: 500,
        };
        let mut out = Vec::new();
        print_status(
            &mut out,
            &StoreStatus {
                store: "memory",
                connection: None,
                reports: &[report],
                facts: &facts,
                shared,
                thresholds: &thresholds,
                now: t(10),
                release: &|t| format!("release {t}"),
            },
            json,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_hosts_runs_and_the_last_cleanups_host_are_shown_where_the_store_keeps_them() {
        let mark = CleanupMark {
            run_id: "r1".into(),
            time: t(7),
            by: "trigger".into(),
            emergency: false,
            status: "ok".into(),
            before: 20,
            after: 12,
            removed: 8,
            trashed: true,
            identity: None,
            next_pre_key_id: None,
            reserved_after: None,
            host: Some("bot-2".into()),
        };
        let runs = |start: i64| Runs {
            cleanup: RunMark {
                last_start: Some(t(start)),
                last_success: Some(t(start)),
                last_failure: None,
                summary: String::new(),
            },
            trigger: RunMark::default(),
        };
        let shared = SharedStatus {
            last_cleanups: vec![Some(mark)],
            runs_by_host: vec![("bot-1".into(), runs(1)), ("bot-2".into(), runs(8))],
            cooldowns: vec![Some(t(13))],
            holds: vec![(3, Some(t(34)))],
        };
        let text = show(Some(&shared), false);
        assert!(text.contains("cleaned 3h ago on bot-2"), "{text}");
        assert!(text.contains("runs by host:"), "{text}");
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("  bot-")).collect();
        assert_eq!(lines.len(), 2, "one line per host and command: {text}");
        assert!(
            lines[0].contains("cleanup") && lines[0].contains("started 9h ago"),
            "{text}"
        );
        assert!(lines[1].contains("failure never"), "{text}");
        // The cooldown and the holds, whichever host started them, as folder status shows them.
        assert!(text.contains("  cooldown until "), "{text}");
        assert!(
            text.contains(
                "\n  on hold: 3 restored keys kept from cleanup until 2027-01-16 18:00 UTC (end it with: release company_1)"
            ),
            "{text}"
        );

        let v: serde_json::Value = serde_json::from_str(&show(Some(&shared), true)).unwrap();
        assert_eq!(v["tenants"][0]["last_cleanup"]["host"], "bot-2");
        assert_eq!(v["runs_by_host"].as_array().unwrap().len(), 2, "{v}");
        assert_eq!(v["runs_by_host"][1]["host"], "bot-2");
        assert_eq!(v["runs_by_host"][1]["command"], "cleanup");
        assert_eq!(
            v["tenants"][0]["cooldown_until"], "2027-01-15T21:00:00Z",
            "{v}"
        );
        assert_eq!(v["tenants"][0]["on_hold"], 3, "{v}");
        assert_eq!(
            v["tenants"][0]["on_hold_until"], "2027-01-16T18:00:00Z",
            "{v}"
        );

        // Without a shared state: exactly as before.
        let text = show(None, false);
        assert!(
            !text.contains("runs by host")
                && !text.contains("cleaned")
                && !text.contains("cooldown")
                && !text.contains("on hold"),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&show(None, true)).unwrap();
        assert!(v.get("runs_by_host").is_none() && v["tenants"][0].get("last_cleanup").is_none());
        assert!(
            v["tenants"][0].get("cooldown_until").is_none()
                && v["tenants"][0].get("on_hold").is_none()
        );
    }
}
