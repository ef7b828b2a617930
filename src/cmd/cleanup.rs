//! `cleanup`: the daily maintenance run, or a manual run for some companies.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use crate::cli::CleanupArgs;
use crate::cmd::{Context, Run};
use crate::core::clean::{CleanSpec, clean_company};
use crate::core::lock;
use crate::core::report::{Status, Totals};
use crate::exit::Exit;
use crate::render::CleanupPrinter;

#[derive(Serialize)]
struct Header<'a> {
    command: &'static str,
    run_id: &'a str,
    dry_run: bool,
    emergency: bool,
    sessions_path: String,
}

impl Run for CleanupArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        let (root, all) = ctx.fleet()?;
        let companies = ctx.select(all, &self.company)?;
        let run_id = ctx.run_id();
        let spec = CleanSpec {
            rules: if self.emergency {
                ctx.config.emergency_rules
            } else {
                ctx.config.rules
            },
            dry_run: self.dry_run,
            trash: ctx.config.trash && !self.no_trash,
            verbose: self.verbose,
            now: ctx.now,
            run_id: run_id.clone(),
            holder: lock::holder_text("cleanup", ctx.now.into()),
            pause_before_remove: self.debug_pause_before_remove,
        };
        tracing::info!(
            companies = companies.len(),
            dry_run = self.dry_run,
            emergency = self.emergency,
            run_id = %run_id,
            "cleanup started"
        );
        let started = Instant::now();
        let header = Header {
            command: "cleanup",
            run_id: &run_id,
            dry_run: self.dry_run,
            emergency: self.emergency,
            sessions_path: ctx.config.sessions_path.display().to_string(),
        };
        let stdout = std::io::stdout().lock();
        let mut printer =
            CleanupPrinter::start(stdout, self.json, self.verbose, self.dry_run, header)?;
        let mut totals = Totals::default();
        let mut exit = Exit::Ok;
        for company in &companies {
            let report = clean_company(&root, company, &ctx.state, &spec);
            totals.add(&report);
            if report.has_failure() {
                exit = exit.worst(Exit::Failed);
            } else if report.status == Status::Busy {
                exit = exit.worst(Exit::Busy);
            }
            printer.company(&report)?;
        }
        totals.duration_ms = started.elapsed().as_millis() as u64;
        printer.finish(&totals)?;
        tracing::info!(
            companies = totals.companies,
            removed = totals.removed,
            bytes = totals.bytes_freed,
            busy = totals.busy,
            failed = totals.failed,
            "cleanup finished"
        );
        Ok(exit)
    }
}
