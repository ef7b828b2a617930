//! `cleanup`: the daily maintenance run, or a manual run for some companies (folders or a
//! store's tenants: the same run over the fleet seam).

use anyhow::Result;
use serde::Serialize;

use crate::cli::CleanupArgs;
use crate::cmd::{Context, FleetFlags, Run};
use crate::core::clean::CleanSpec;
use crate::core::effects::RunEnd;
use crate::core::fleet::{self, FleetOutcome, FleetSpec};
use crate::core::lock;
use crate::exit::Exit;
use crate::render::cleanup::CleanupPrinter;

/// A company this user may not clean, as its report says (the one line before says more).
pub(crate) const DENIED: &str = "this user cannot remove files here (see the line on stderr)";

#[derive(Serialize)]
struct Header<'a> {
    command: &'static str,
    run_id: &'a str,
    dry_run: bool,
    emergency: bool,
    /// `sessions_path` or `store`.
    #[serde(flatten)]
    place: std::collections::BTreeMap<&'static str, String>,
}

impl Run for CleanupArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        let cfg = &ctx.config;
        let (mut fleet, all) = ctx.open_fleet(FleetFlags {
            read_only: cfg.run.dry_run,
            remove_legacy: self.legacy_rows,
            remove_orphans: self.remove_orphans,
            release_on_signal: true,
        })?;
        let whole_fleet = self.company.is_empty();
        let companies = ctx.select(fleet.as_mut(), all, &self.company)?;
        let effects = ctx.effects("cleanup");
        if let Some(exit) = ctx.empty_fleet(&companies) {
            effects.finish(&RunEnd {
                failed: true,
                summary: "no company folder or tenant found".into(),
                whole_fleet,
                skip_record: ctx.skip_record_for_empty_fleet(),
                ..RunEnd::default()
            })?;
            return Ok(exit);
        }
        let (companies, denied) = match ctx.check_access(fleet.as_ref(), companies) {
            Ok(x) => x,
            Err(exit) => {
                // Nothing touched, nothing recorded (the state directory may be the problem);
                // the ping and the metrics still say the run failed.
                let _ = effects.finish(&RunEnd {
                    failed: true,
                    summary: "cannot remove files: wrong user".into(),
                    whole_fleet,
                    skip_record: true,
                    ..RunEnd::default()
                });
                return Ok(exit);
            }
        };
        effects.start();
        let run_id = ctx.run_id();
        let spec = CleanSpec {
            rules: if self.emergency {
                cfg.emergency_rules
            } else {
                cfg.rules
            },
            dry_run: cfg.run.dry_run,
            trash: cfg.trash,
            verbose: self.verbose,
            now: ctx.now,
            run_id: run_id.clone(),
            holder: lock::holder_text("cleanup", ctx.now_utc()),
            pause_before_remove: self.debug_pause_before_remove,
            creds_from: ctx.creds_from()?,
        };
        crate::cmd::warn_keep_n(&[spec.rules], self.json);
        tracing::info!(fleet = %fleet.describe(), companies = companies.len(), dry_run = spec.dry_run, emergency = self.emergency, run_id = %run_id, "cleanup started");
        let header = Header {
            command: "cleanup",
            run_id: &run_id,
            dry_run: spec.dry_run,
            emergency: self.emergency,
            place: [fleet.header()].into(),
        };
        let detail = !whole_fleet || companies.len() == 1;
        let mut printer = CleanupPrinter::start(
            crate::render::stdout(),
            self.json,
            detail,
            self.verbose,
            spec.dry_run,
            header,
        )?;
        let mut output_error: Option<std::io::Error> = None;
        let jobs = self.jobs.map_or_else(|| fleet.default_jobs(), usize::from);
        let started = std::time::Instant::now();
        let mut outcome = fleet::clean_fleet(
            fleet.as_mut(),
            &companies,
            &ctx.state,
            &spec,
            FleetSpec {
                jobs,
                emergency: self.emergency,
                trash_retention: cfg.trash_retention,
                lock_wait: cfg.lock_wait,
            },
            &effects,
            |report| {
                // A full disk under stdout must not stop the cleaning half-way.
                if let Err(e) = printer.company(report) {
                    output_error.get_or_insert(e);
                }
            },
        );
        outcome.totals.duration_ms = started.elapsed().as_millis() as u64;
        // Those this user may not clean: a failed row each (the reason is the line above).
        for c in &denied {
            let report = crate::core::report::CompanyReport::failed(&c.name, DENIED);
            outcome.add(&report);
            if let Err(e) = printer.company(&report) {
                output_error.get_or_insert(e);
            }
        }
        let (members, items) = fleet.nouns();
        let summary = format!(
            "{} {members}, {} {items} removed",
            outcome.totals.companies, outcome.totals.removed
        );
        if !spec.dry_run && spec.trash && fleet.undo_all() {
            printer.set_undo(ctx.undo_command(&run_id, &[]));
        }
        let t = outcome.totals.clone();
        let exit = finish(
            effects,
            outcome,
            whole_fleet,
            summary,
            printer,
            output_error,
        )?;
        tracing::info!(
            companies = t.companies,
            removed = t.removed,
            bytes = t.bytes_freed,
            busy = t.busy,
            failed = t.failed,
            "cleanup finished"
        );
        Ok(exit)
    }
}

/// The end of a cleanup: the run's effects (record, digest, ping, metrics), then the report's
/// total. Output errors are returned only after the run is recorded.
fn finish<W: std::io::Write>(
    effects: crate::core::effects::RunEffects,
    outcome: FleetOutcome,
    whole_fleet: bool,
    summary: String,
    printer: CleanupPrinter<W>,
    output_error: Option<std::io::Error>,
) -> Result<Exit> {
    let mut exit = outcome.exit;
    let t = &outcome.totals;
    // A company left busy was not cleaned: not a success (runs.json, metrics, ping /fail),
    // though the exit code stays 75 so the units' SuccessExitStatus can tell it apart.
    let end = RunEnd {
        failed: exit != Exit::Ok,
        removed: t.removed,
        summary,
        whole_fleet,
        skip_record: false,
    };
    if let Err(e) = effects.finish(&end) {
        crate::say!("baileys-janitor: {e:#}");
        exit = exit.worst(Exit::Failed);
    }
    if let Some(e) = output_error {
        return Err(e.into());
    }
    printer.finish(t)?;
    Ok(exit)
}
