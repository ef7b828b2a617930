//! `monitor --once`'s table (or JSON).

use std::io::{self, Write};

use serde_json::json;

use crate::core::monitor::Row;
use crate::core::util::plural;
use crate::render::SUMMARY_ROWS;

pub fn print(out: &mut impl Write, rows: &[Row], json: bool) -> io::Result<()> {
    if json {
        serde_json::to_writer(
            &mut *out,
            &json!({ "command": "monitor", "companies": rows }),
        )
        .map_err(io::Error::other)?;
        writeln!(out)?;
        return out.flush();
    }
    // Up to ten companies in folder order; past that the ten worst (errors first), then a count.
    let mut shown: Vec<&Row> = rows.iter().collect();
    if shown.len() > SUMMARY_ROWS {
        shown.sort_by_key(|r| std::cmp::Reverse((r.error.is_some(), r.level, r.files)));
        shown.truncate(SUMMARY_ROWS);
    }
    let w = shown
        .iter()
        .map(|r| r.company.len())
        .max()
        .unwrap_or(7)
        .max(7);
    writeln!(out, "{:w$}  {:>5}  LEVEL", "COMPANY", "FILES")?;
    for r in &shown {
        match &r.error {
            Some(e) => writeln!(out, "{:w$}  {:>5}  error: {e}", r.company, "?")?,
            None => writeln!(
                out,
                "{:w$}  {:>5}  {}",
                r.company,
                r.files,
                r.level.as_str()
            )?,
        }
    }
    if rows.len() > shown.len() {
        let mut counts = std::collections::BTreeMap::new();
        for r in rows.iter().filter(|r| r.error.is_none()) {
            *counts.entry(r.level).or_insert(0) += 1;
        }
        let errors = rows.iter().filter(|r| r.error.is_some()).count();
        let mut parts: Vec<String> = counts
            .iter()
            .map(|(l, n)| format!("{n} {}", l.as_str()))
            .collect();
        if errors > 0 {
            parts.insert(0, format!("{errors} unreadable"));
        }
        writeln!(
            out,
            "… and {} (--json lists every company)\n{}: {}",
            plural(rows.len() - shown.len(), "more company"),
            plural(rows.len(), "company"),
            parts.join(", ")
        )?;
    }
    out.flush()
}
