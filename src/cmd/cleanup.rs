//! `cleanup`: the daily maintenance run, or a manual run for some companies.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use crate::cli::CleanupArgs;
use crate::cmd::{Context, Run};
use crate::core::clean::{CleanSpec, clean_company};
use crate::core::companies::Company;
use crate::core::lock;
use crate::core::notify::{Event, Notifier};
use crate::core::parallel;
use crate::core::records;
use crate::core::report::{Status, Totals};
use crate::core::trash;
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
        let whole_fleet = self.company.is_empty();
        let companies = ctx.select(all, &self.company)?;
        let notifier = Notifier::new(ctx.config.notify.clone());
        if let Some(url) = &self.ping_url {
            notifier.ping(url, "/start");
        }
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
        // Buffered, flushed once per company: a dry run lists every file, and a write(2) per
        // line was a third of the run's system calls.
        let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
        let mut printer =
            CleanupPrinter::start(stdout, self.json, self.verbose, self.dry_run, header)?;
        let mut totals = Totals::default();
        let mut output_error: Option<std::io::Error> = None;
        let mut exit = Exit::Ok;
        let jobs = self.jobs.map_or_else(parallel::default_jobs, usize::from);
        // Workers clean and record; this thread totals and prints, in company order.
        let work = |company: &Company| {
            let report = clean_company(&root, company, &ctx.state, &spec);
            if !self.dry_run {
                let now = ctx.now.into();
                if let Err(e) = records::record_cleanup(
                    &ctx.state,
                    &report,
                    "cleanup",
                    self.emergency,
                    spec.trash,
                    now,
                ) {
                    tracing::warn!(company = %company.name, error = %e, "cannot record the cleanup in the state directory");
                }
                if report.status == Status::Failed {
                    let err = report.error.as_deref().unwrap_or("");
                    notifier.send(
                        &Event::new(
                            "cleanup_failed",
                            "error",
                            format!("cleanup of {} failed: {err}", company.name),
                        )
                        .company(&company.name, report.files_before),
                    );
                }
            }
            report
        };
        parallel::for_each_ordered(&companies, jobs, work, |_, report| {
            totals.add(&report);
            if report.has_failure() {
                exit = exit.worst(Exit::Failed);
            } else if report.status == Status::Busy {
                exit = exit.worst(Exit::Busy);
            }
            // A closed stdout (a pipe into `head`) must not stop the cleaning half-way.
            if let Err(e) = printer.company(&report) {
                output_error.get_or_insert(e);
            }
        });
        if !self.dry_run {
            match trash::purge(ctx.state.path(), ctx.config.trash_retention, ctx.now.into()) {
                Ok(p) if p.runs > 0 => {
                    tracing::info!(runs = p.runs, files = p.files, "old trash purged")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot purge the trash");
                    exit = exit.worst(Exit::Failed);
                }
            }
            // Only a run over the whole fleet counts as the daily cleanup the monitor watches for.
            if whole_fleet {
                let failed = exit == Exit::Failed;
                let summary = format!(
                    "{} companies, {} files removed",
                    totals.companies, totals.removed
                );
                records::update_runs(&ctx.state, |runs| {
                    let now = chrono::Utc::now();
                    runs.cleanup.last_start = Some(ctx.now.into());
                    if failed {
                        runs.cleanup.last_failure = Some(now);
                    } else {
                        runs.cleanup.last_success = Some(now);
                    }
                    runs.cleanup.summary = summary;
                })?;
            }
        }
        if let Some(url) = &self.ping_url {
            notifier.ping(url, if exit == Exit::Failed { "/fail" } else { "" });
        }
        totals.duration_ms = started.elapsed().as_millis() as u64;
        if let Some(path) = &self.metrics_file {
            let m = crate::core::metrics::run_metrics(
                "cleanup",
                exit != Exit::Failed,
                totals.removed,
                started.elapsed().as_secs_f64(),
                chrono::Utc::now().timestamp(),
            );
            if let Err(e) = m.write(path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the metrics file");
            }
        }
        if let Some(e) = output_error {
            return Err(e.into());
        }
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
