//! `trigger`'s report: the companies it acted on (and every company with -v), then a total.

use std::io::{self, Write};

use serde_json::json;

use crate::core::trigger::{Action, Row};
use crate::core::util::plural;
use crate::render::SUMMARY_ROWS;

pub struct TriggerView<'a> {
    pub rows: &'a [Row],
    pub run_id: &'a str,
    pub dry_run: bool,
    pub threshold: usize,
    pub emergency_threshold: usize,
    pub verbose: bool,
    /// The command that undoes this run, when it moved files to the trash.
    pub undo: Option<String>,
}

pub fn print(out: &mut impl Write, v: &TriggerView, json: bool) -> io::Result<()> {
    if json {
        serde_json::to_writer(
            &mut *out,
            &json!({
                "command": "trigger",
                "run_id": v.run_id,
                "dry_run": v.dry_run,
                "thresholds": { "trigger": v.threshold, "emergency": v.emergency_threshold },
                "companies": v.rows,
                "undo": v.undo,
            }),
        )
        .map_err(io::Error::other)?;
        writeln!(out)?;
        return out.flush();
    }
    let mut shown: Vec<&Row> = v
        .rows
        .iter()
        .filter(|r| v.verbose || r.action != Action::None)
        .collect();
    let mut unnamed = 0;
    if !v.verbose && shown.len() > SUMMARY_ROWS {
        // Problems first, then the biggest folders.
        shown.sort_by_key(|r| {
            let problem = matches!(r.action, Action::Failed | Action::Busy);
            std::cmp::Reverse((problem, r.counted.unwrap_or(0)))
        });
        unnamed = shown.len() - SUMMARY_ROWS;
        shown.truncate(SUMMARY_ROWS);
    }
    let width = shown.iter().map(|r| r.company.len()).max().unwrap_or(7);
    for r in &shown {
        let counted = r.counted.map_or("?".to_owned(), |f| f.to_string());
        let level = r.level.map_or("unknown", |l| l.as_str());
        writeln!(
            out,
            "{:width$}  {counted:>6} counted  {level:<9}  {:<17}  {}",
            r.company,
            r.action.as_str(),
            r.reason
        )?;
        if let (Some(files), Some(reserved)) = (r.files, r.reserved_pre_keys.filter(|n| *n > 0)) {
            writeln!(
                out,
                "{:width$}  {files} files, {reserved} reserved pre-keys (the server may hand them out: not counted)",
                ""
            )?;
        }
        if let Some(a) = &r.advice {
            writeln!(out, "{:width$}  still above {}: {a}", "", v.threshold)?;
        }
    }
    if unnamed > 0 {
        writeln!(
            out,
            "… and {} acted on (-v lists every company)",
            plural(unnamed, "more company")
        )?;
    }
    let count = |a: Action| v.rows.iter().filter(|r| r.action == a).count();
    let cleaned = v.rows.iter().filter(|r| r.action.cleaned()).count();
    let mut parts = vec![format!("{cleaned} cleaned")];
    for (a, what) in [
        (Action::Cooldown, "cooling down"),
        (Action::Busy, "busy"),
        (Action::Failed, "failed"),
    ] {
        let n = count(a);
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let below = count(Action::None);
    if below > 0 && !v.verbose {
        parts.push(format!("{below} below {} (-v lists them)", v.threshold));
    }
    writeln!(
        out,
        "total: {} checked, {}{}",
        plural(v.rows.len(), "company"),
        parts.join(", "),
        if v.dry_run {
            " (dry run: nothing was changed)"
        } else {
            ""
        }
    )?;
    if let Some(undo) = &v.undo {
        writeln!(out, "undo: {undo}")?;
    }
    out.flush()
}
