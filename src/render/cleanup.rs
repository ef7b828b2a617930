//! `cleanup`'s report. JSON is streamed, one company at a time, so memory does not grow with the
//! number of companies. The human output is either detailed (`-v`, or one `--company`: every
//! company and, in a dry run, every file) or a summary that fits a screen: the companies with
//! the most removed or a problem, then the total.

use std::io::{self, Write};

use serde::Serialize;

use crate::core::classify;
use crate::core::report::{CompanyReport, Status, Totals};
use crate::core::util::{fmt_bytes, plural};
use crate::render::{SUMMARY_ROWS, name};

pub struct CleanupPrinter<W: Write> {
    out: W,
    json: bool,
    /// Every company and its files, not a summary.
    detail: bool,
    verbose: bool,
    dry_run: bool,
    first: bool,
    /// Summary mode: the companies worth naming (problems and the largest removals), bounded.
    worst: Vec<CompanyReport>,
    unnamed: usize,
    /// The command that undoes this run, printed after the total.
    undo: Option<String>,
}

/// Problems first, then the most removed.
fn rank(r: &CompanyReport) -> (bool, usize) {
    (r.has_failure() || r.status == Status::Busy, r.removed)
}

impl<W: Write> CleanupPrinter<W> {
    pub fn start(
        mut out: W,
        json: bool,
        detail: bool,
        verbose: bool,
        dry_run: bool,
        header: impl Serialize,
    ) -> io::Result<Self> {
        if json {
            let head = serde_json::to_string(&header).map_err(io::Error::other)?;
            // `{...head fields..., "companies": [`
            write!(out, "{},\"companies\":[", head.trim_end_matches('}'))?;
        }
        Ok(CleanupPrinter {
            out,
            json,
            detail: detail || verbose,
            verbose,
            dry_run,
            first: true,
            worst: Vec::new(),
            unnamed: 0,
            undo: None,
        })
    }

    /// The command that undoes this run (when it moved files to the trash).
    pub fn set_undo(&mut self, command: String) {
        self.undo = Some(command);
    }

    pub fn company(&mut self, r: &CompanyReport) -> io::Result<()> {
        if self.json {
            if !self.first {
                self.out.write_all(b",")?;
            }
            self.first = false;
            serde_json::to_writer(&mut self.out, r).map_err(io::Error::other)?;
            return self.out.flush();
        }
        if !self.detail {
            self.remember(r);
            return Ok(());
        }
        self.line(r)?;
        self.files(r)?;
        // One company at a time reaches the log, even when stdout is a file.
        self.out.flush()
    }

    /// Keeps the companies a summary names: at most SUMMARY_ROWS, the worst.
    fn remember(&mut self, r: &CompanyReport) {
        if r.removed == 0 && !r.has_failure() && r.status != Status::Busy {
            self.unnamed += 1;
            return;
        }
        let mut lite = r.clone();
        lite.removed_files = Vec::new();
        lite.decisions = Vec::new();
        lite.skipped_files = Vec::new();
        self.worst.push(lite);
        if self.worst.len() > SUMMARY_ROWS {
            let (i, _) = self
                .worst
                .iter()
                .enumerate()
                .min_by_key(|(_, w)| rank(w))
                .expect("not empty");
            self.worst.swap_remove(i);
            self.unnamed += 1;
        }
    }

    fn line(&mut self, r: &CompanyReport) -> io::Result<()> {
        let out = &mut self.out;
        let company = name(&r.company);
        match r.status {
            Status::Busy => writeln!(
                out,
                "{company}  busy: locked by {}; skipped",
                r.lock_holder.as_deref().unwrap_or("another run")
            )?,
            Status::Failed => writeln!(
                out,
                "{company}  FAILED: {}",
                r.error.as_deref().unwrap_or("unknown error")
            )?,
            Status::Ok => {
                let by_type: Vec<String> = r
                    .removed_by_type
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect();
                let verb = if self.dry_run {
                    "would remove"
                } else {
                    "removed"
                };
                let detail = if by_type.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", by_type.join(", "))
                };
                writeln!(
                    out,
                    "{company}  {} → {} files  {verb} {}{detail}  {} freed  {} ms",
                    r.files_before,
                    r.files_after,
                    r.removed,
                    fmt_bytes(r.bytes_freed),
                    r.duration_ms
                )?;
            }
        }
        for n in &r.failed_files {
            writeln!(out, "  failed: {}: {}", n.file, n.reason)?;
        }
        Ok(())
    }

    fn files(&mut self, r: &CompanyReport) -> io::Result<()> {
        let out = &mut self.out;
        if self.verbose {
            if let Some(t) = r.last_activity {
                writeln!(
                    out,
                    "  last activity: {} (sessions and sender keys are aged up to it)",
                    t.format("%Y-%m-%d %H:%M UTC")
                )?;
            }
            let width = r
                .decisions
                .iter()
                .map(|d| d.file.chars().count())
                .max()
                .unwrap_or(0);
            for d in &r.decisions {
                writeln!(
                    out,
                    "  {:width$}  {:<22}  {:<44}  {}",
                    d.file,
                    d.kind.as_str(),
                    d.reason,
                    d.action
                )?;
            }
        } else if self.dry_run {
            let mut names: Vec<&String> = r.removed_files.iter().collect();
            names.sort();
            for f in names {
                writeln!(out, "  would remove {f}  ({})", classify::classify(f))?;
            }
        }
        if self.verbose {
            for n in &r.skipped_files {
                writeln!(out, "  skipped: {}: {}", n.file, n.reason)?;
            }
        }
        Ok(())
    }

    pub fn finish(mut self, t: &Totals) -> io::Result<()> {
        if !self.json && !self.detail {
            let mut worst = std::mem::take(&mut self.worst);
            worst.sort_by(|a, b| rank(b).cmp(&rank(a)).then(a.company.cmp(&b.company)));
            for r in &worst {
                self.line(r)?;
            }
            if self.unnamed > 0 && worst.is_empty() {
                writeln!(
                    self.out,
                    "{}: nothing to remove; -v lists every company",
                    plural(self.unnamed, "company")
                )?;
            } else if self.unnamed > 0 {
                writeln!(
                    self.out,
                    "… and {} (fewer or no files to remove); -v lists every company{}",
                    plural(self.unnamed, "more company"),
                    if self.dry_run { " and file" } else { "" }
                )?;
            }
        }
        if self.json {
            write!(self.out, "],\"totals\":")?;
            serde_json::to_writer(&mut self.out, t).map_err(io::Error::other)?;
            if let Some(undo) = self.undo.as_ref().filter(|_| t.removed > 0) {
                write!(self.out, ",\"undo\":")?;
                serde_json::to_writer(&mut self.out, undo).map_err(io::Error::other)?;
            }
            writeln!(self.out, "}}")?;
        } else {
            let verb = if self.dry_run {
                "would be removed"
            } else {
                "removed"
            };
            write!(
                self.out,
                "total: {}, {} → {} files, {} {verb} ({})",
                plural(t.companies, "company"),
                t.files_before,
                t.files_after,
                t.removed,
                fmt_bytes(t.bytes_freed)
            )?;
            if t.busy > 0 {
                write!(self.out, ", {} busy", t.busy)?;
            }
            if t.failed > 0 {
                write!(self.out, ", {} failed", plural(t.failed, "company"))?;
            }
            if t.failed_files > 0 {
                write!(self.out, ", {} failed", plural(t.failed_files, "file"))?;
            }
            if t.skipped_files > 0 {
                // Not all "changed since planned": a file may be gone already, kept with a
                // partner that stayed, or an orphan left alone; each report line says which.
                write!(
                    self.out,
                    ", {} skipped (the reason of each with -v or --json)",
                    t.skipped_files
                )?;
            }
            writeln!(self.out, ", {:.2} s", t.duration_ms as f64 / 1000.0)?;
            if self.dry_run {
                writeln!(self.out, "dry run: nothing was changed")?;
            }
            if let Some(undo) = self.undo.as_ref().filter(|_| t.removed > 0) {
                writeln!(self.out, "undo: {undo}")?;
            }
        }
        self.out.flush()
    }
}
