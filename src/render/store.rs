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
}

pub fn print_status(
    out: &mut impl Write,
    store: &str,
    connection: Option<&str>,
    reports: &[CompanyReport],
    facts: &[crate::core::store::TenantFacts],
    thresholds: &Thresholds,
    json: bool,
) -> io::Result<()> {
    let mut rows: Vec<Row> = reports
        .iter()
        .zip(facts)
        .map(|(r, f)| Row {
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
        })
        .collect();
    // Tenants that could not be read, or whose creds are corrupt, first.
    rows.sort_by_key(|r| std::cmp::Reverse(r.error.is_some()));
    if json {
        serde_json::to_writer(
            &mut *out,
            &serde_json::json!({ "store": store, "connection": connection, "tenants": rows }),
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
            "{:<40} {:>8} {:>8} {:>10} {:>9}  {}{}{}{}{}",
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
            r.error.map(|e| format!("  ERROR: {e}")).unwrap_or_default()
        )?;
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
