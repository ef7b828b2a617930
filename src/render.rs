//! Human-readable and JSON rendering of run reports. JSON is streamed, one company at a time, so
//! memory does not grow with the number of companies.

use std::io::{self, Write};

use serde::Serialize;

use crate::core::classify;
use crate::core::report::{CompanyReport, Status, Totals};
use crate::core::util::fmt_bytes;

pub struct CleanupPrinter<W: Write> {
    out: W,
    json: bool,
    verbose: bool,
    dry_run: bool,
    first: bool,
}

impl<W: Write> CleanupPrinter<W> {
    pub fn start(
        mut out: W,
        json: bool,
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
            verbose,
            dry_run,
            first: true,
        })
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
        let out = &mut self.out;
        match r.status {
            Status::Busy => writeln!(
                out,
                "{}  busy: locked by {}; skipped",
                r.company,
                r.lock_holder.as_deref().unwrap_or("another run")
            )?,
            Status::Failed => writeln!(
                out,
                "{}  FAILED: {}",
                r.company,
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
                    "{}  {} → {} files  {verb} {}{detail}  {} freed  {} ms",
                    r.company,
                    r.files_before,
                    r.files_after,
                    r.removed,
                    fmt_bytes(r.bytes_freed),
                    r.duration_ms
                )?;
            }
        }
        if self.verbose {
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
        for n in &r.failed_files {
            writeln!(out, "  failed: {}: {}", n.file, n.reason)?;
        }
        if self.verbose {
            for n in &r.skipped_files {
                writeln!(out, "  skipped: {}: {}", n.file, n.reason)?;
            }
        }
        // One company at a time reaches the log, even when stdout is a file.
        out.flush()
    }

    pub fn finish(mut self, t: &Totals) -> io::Result<()> {
        if self.json {
            write!(self.out, "],\"totals\":")?;
            serde_json::to_writer(&mut self.out, t).map_err(io::Error::other)?;
            writeln!(self.out, "}}")?;
        } else {
            let verb = if self.dry_run {
                "would be removed"
            } else {
                "removed"
            };
            write!(
                self.out,
                "total: {} companies, {} → {} files, {} {verb} ({})",
                t.companies,
                t.files_before,
                t.files_after,
                t.removed,
                fmt_bytes(t.bytes_freed)
            )?;
            if t.busy > 0 {
                write!(self.out, ", {} busy", t.busy)?;
            }
            if t.failed > 0 || t.failed_files > 0 {
                write!(
                    self.out,
                    ", {} failed companies, {} failed files",
                    t.failed, t.failed_files
                )?;
            }
            if t.skipped_files > 0 {
                write!(
                    self.out,
                    ", {} changed since planned and left alone",
                    t.skipped_files
                )?;
            }
            writeln!(self.out, ", {:.2} s", t.duration_ms as f64 / 1000.0)?;
            if self.dry_run {
                writeln!(self.out, "dry run: nothing was changed")?;
            }
        }
        self.out.flush()
    }
}
