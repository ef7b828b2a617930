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
    // Companies that could not be counted or whose creds.json is broken first, then up to ten
    // in folder order; past ten the worst, then a count.
    let mut shown: Vec<&Row> = rows.iter().collect();
    shown.sort_by_key(|r| std::cmp::Reverse(r.is_problem()));
    if shown.len() > SUMMARY_ROWS {
        shown.sort_by_key(|r| std::cmp::Reverse((r.is_problem(), r.level, r.counted)));
        shown.truncate(SUMMARY_ROWS);
    }
    let w = shown
        .iter()
        .map(|r| r.company.len())
        .max()
        .unwrap_or(7)
        .max(7);
    writeln!(
        out,
        "{:w$}  {:>5}  {:<9}  {:>5}  {:>8}",
        "COMPANY", "COUNT", "LEVEL", "FILES", "RESERVED"
    )?;
    for r in &shown {
        match (&r.error, &r.creds_problem, r.level) {
            (None, Some(p), _) => writeln!(out, "{:w$}  {:>5}  error: {p}", r.company, r.counted)?,
            (None, None, Some(level)) => writeln!(
                out,
                "{:w$}  {:>5}  {:<9}  {:>5}  {:>8}",
                r.company,
                r.counted,
                level.as_str(),
                r.files,
                r.reserved_pre_keys
            )?,
            (error, _, _) => writeln!(
                out,
                "{:w$}  {:>5}  error: {}",
                r.company,
                "?",
                error.as_deref().unwrap_or("unknown")
            )?,
        }
        if let Some(c) = &r.cleanup {
            writeln!(out, "{:w$}  auto-cleanup: {c}", "")?;
        }
    }
    if shown.iter().any(|r| r.reserved_pre_keys > 0) {
        writeln!(
            out,
            "COUNT is FILES less RESERVED: pre-keys the WhatsApp server may still hand out (docs/prekeys.md)"
        )?;
    }
    if rows.len() > shown.len() {
        let mut counts = std::collections::BTreeMap::new();
        for r in rows.iter().filter(|r| !r.is_problem()) {
            if let Some(l) = r.level {
                *counts.entry(l).or_insert(0) += 1;
            }
        }
        let errors = rows.iter().filter(|r| r.error.is_some()).count();
        let broken = rows
            .iter()
            .filter(|r| r.error.is_none() && r.creds_problem.is_some())
            .count();
        let mut parts: Vec<String> = counts
            .iter()
            .map(|(l, n)| format!("{n} {}", l.as_str()))
            .collect();
        if broken > 0 {
            parts.insert(0, format!("{broken} with a broken creds.json"));
        }
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
