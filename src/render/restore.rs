//! `restore`'s and `backup`'s reports.

use std::io::{self, Write};

use crate::core::backup::BackupReport;
use crate::core::restore::RestoreReport;

pub fn print(out: &mut impl Write, r: &RestoreReport, company: &str, json: bool) -> io::Result<()> {
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
    if !r.skipped.is_empty() {
        writeln!(
            out,
            "{} files were NOT restored because the folder holds something else now (listed above); exit code 1",
            r.skipped.len()
        )?;
    }
    if let Some(until) = r.on_hold_until {
        writeln!(
            out,
            "on hold until {}: no cleanup removes them before (end it with: baileys-janitor restore --company {company} --release)",
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
