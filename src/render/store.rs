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
    creds: Option<&'static str>,
    removable_now: usize,
    by_type: &'a std::collections::BTreeMap<crate::core::classify::Kind, usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

pub fn print_status(
    out: &mut impl Write,
    store: &str,
    reports: &[CompanyReport],
    thresholds: &Thresholds,
    json: bool,
) -> io::Result<()> {
    let rows: Vec<Row> = reports
        .iter()
        .map(|r| Row {
            tenant: &r.company,
            level: thresholds.level(r.files_before).as_str().to_owned(),
            keys: r.files_before,
            creds: r.creds,
            removable_now: r.removed,
            by_type: &r.files_by_type,
            error: r.error.as_deref(),
        })
        .collect();
    if json {
        serde_json::to_writer(
            &mut *out,
            &serde_json::json!({ "store": store, "tenants": rows }),
        )?;
        writeln!(out)?;
        return out.flush();
    }
    writeln!(out, "store {store}: {} tenants", rows.len())?;
    writeln!(
        out,
        "{:<40} {:>8} {:>10} {:>9}  creds",
        "tenant", "keys", "level", "removable"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:<40} {:>8} {:>10} {:>9}  {}{}",
            crate::render::name(r.tenant),
            r.keys,
            r.level,
            r.removable_now,
            r.creds.unwrap_or("-"),
            r.error.map(|e| format!("  ERROR: {e}")).unwrap_or_default()
        )?;
    }
    out.flush()
}
