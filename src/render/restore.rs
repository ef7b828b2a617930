//! `restore`'s and `backup`'s reports.

use std::io::{self, Write};

use chrono::{DateTime, Utc};

use crate::core::backup::BackupReport;
use crate::core::restore::{RestoreReport, UndoableRun};
use crate::core::util::{fmt_bytes, plural};

/// `restore --list`: one line per run, newest first, then the command that undoes it.
pub fn list(
    out: &mut impl Write,
    runs: &[UndoableRun],
    undo: &[String],
    now: DateTime<Utc>,
    json: bool,
) -> io::Result<()> {
    if json {
        let rows: Vec<serde_json::Value> = runs
            .iter()
            .zip(undo)
            .map(|(r, u)| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["undo"] = serde_json::Value::from(u.as_str());
                v
            })
            .collect();
        serde_json::to_writer(
            &mut *out,
            &serde_json::json!({ "command": "restore", "runs": rows }),
        )
        .map_err(io::Error::other)?;
        writeln!(out)?;
        return out.flush();
    }
    if runs.is_empty() {
        writeln!(
            out,
            "nothing in the trash to undo (runs with --no-trash cannot be undone; the trash keeps runs for trash.retention)"
        )?;
        return out.flush();
    }
    for (r, u) in runs.iter().zip(undo) {
        let when = r.time.map_or("?".to_owned(), |t| {
            format!(
                "{} ({})",
                t.format("%Y-%m-%d %H:%M UTC"),
                crate::render::ago(Some(t), now)
            )
        });
        let companies = if r.companies.len() == 1 {
            crate::render::name(&r.companies[0]).to_string()
        } else {
            plural(r.companies.len(), "company")
        };
        // Many hosts share one store: say which one ran it, where the trash says.
        let host = r
            .host
            .as_deref()
            .map(|h| format!(" on {}", crate::render::name(h)))
            .unwrap_or_default();
        writeln!(
            out,
            "{}  {when}  {:<8}  {companies}{host}: {}, {}",
            r.run_id,
            r.command.as_deref().unwrap_or("?"),
            plural(r.files, "file"),
            fmt_bytes(r.bytes)
        )?;
        writeln!(out, "    undo: {u}")?;
    }
    out.flush()
}

/// `release`: the command that ends the hold on what was restored, as the operator can run it.
pub fn print(out: &mut impl Write, r: &RestoreReport, release: &str, json: bool) -> io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, r).map_err(io::Error::other)?;
        writeln!(out)?;
        return out.flush();
    }
    let verb = if r.dry_run {
        "would restore"
    } else {
        "restored"
    };
    for f in &r.restored {
        writeln!(out, "  {verb} {f}")?;
    }
    for n in &r.brought_along {
        writeln!(out, "  with {}: {}", n.file, n.reason)?;
    }
    for n in &r.skipped {
        writeln!(out, "  NOT RESTORED {}: {}", n.file, n.reason)?;
    }
    for n in &r.failed {
        writeln!(out, "  FAILED {}: {}", n.file, n.reason)?;
    }
    for n in &r.missing {
        writeln!(out, "  MISSING {}: {}", n.file, n.reason)?;
    }
    writeln!(
        out,
        "{}: {verb} {} files from {}, {} already identical, {} not restored (kept as they are), {} failed",
        r.company,
        r.restored.len(),
        r.source,
        r.identical,
        r.skipped.len(),
        r.failed.len()
    )?;
    if let Some(why) = &r.stopped {
        writeln!(out, "STOPPED: {why}")?;
    }
    if !r.missing.is_empty() {
        writeln!(
            out,
            "{} files of run {} are missing from its trash ({}) and were not restored before: they cannot be put back (listed above); exit code 1",
            r.missing.len(),
            r.source,
            r.trash.as_deref().unwrap_or("?")
        )?;
    }
    if r.unlisted {
        writeln!(
            out,
            "note: run {} left no list of what it moved into the trash: only the files still in the trash were checked",
            r.source
        )?;
    }
    if !r.skipped.is_empty() {
        writeln!(
            out,
            "{} files were NOT restored: each is kept as it is now, for the reason listed above (something newer is there); exit code 1",
            r.skipped.len()
        )?;
    }
    if let Some(until) = r.on_hold_until {
        writeln!(
            out,
            "on hold until {}: no cleanup removes them before (end it with: {release})",
            until.format("%Y-%m-%d %H:%M UTC")
        )?;
    }
    out.flush()
}

/// What `backup` wrote, and how to undo with it.
pub fn backup(out: &mut impl Write, report: &BackupReport, json: bool) -> io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, report).map_err(io::Error::other)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}: {} files ({} bytes) copied to {}\nrestore with: baileys-janitor restore --company {} --backup {}",
            report.company, report.files, report.bytes, report.path, report.company, report.backup
        )?;
    }
    out.flush()
}
