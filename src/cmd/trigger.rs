//! `trigger`: the half-hourly check that cleans a company once it passes a file-count threshold.

use anyhow::Result;

use crate::cli::TriggerArgs;
use crate::cmd::{Context, FleetFlags, Run};
use crate::core::effects::RunEnd;
use crate::core::lock::{self, LockAttempt};
use crate::core::state::TRIGGER_LOCK;
use crate::core::trigger::{self, Action, TriggerSpec};
use crate::exit::Exit;
use crate::render::trigger::{TriggerView, print};

impl Run for TriggerArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        let cfg = &ctx.config;
        let dry_run = cfg.run.dry_run;
        let (mut fleet, companies) = ctx.open_fleet(FleetFlags {
            read_only: dry_run,
            release_on_signal: true,
            ..FleetFlags::default()
        })?;
        if let Some(exit) = ctx.empty_fleet(&companies) {
            let effects = ctx.effects("trigger");
            effects.finish(&RunEnd {
                failed: true,
                summary: "no company folder found".into(),
                skip_record: ctx.skip_record_for_empty_fleet(),
                ..RunEnd::default()
            })?;
            return Ok(exit);
        }
        let effects = ctx.effects("trigger");
        let (companies, denied) = match ctx.check_access(fleet.as_ref(), companies) {
            Ok(x) => x,
            Err(exit) => {
                let _ = effects.finish(&RunEnd {
                    failed: true,
                    summary: "cannot remove files: wrong user".into(),
                    skip_record: true,
                    ..RunEnd::default()
                });
                return Ok(exit);
            }
        };
        // One trigger at a time on a host, and on a shared store one for all hosts. A dry run
        // writes nothing, not even the lock file.
        let Some(_guard) = host_lock(ctx)? else {
            return Ok(Exit::Busy);
        };
        if !dry_run && let Some(holder) = fleet.lock_fleet().map_err(|e| anyhow::anyhow!(e))? {
            crate::say!(
                "baileys-janitor: another trigger is running on {} ({holder}); exiting",
                fleet.describe()
            );
            return Ok(Exit::Busy);
        }
        effects.start();
        let spec = spec(ctx)?;
        tracing::info!(
            companies = companies.len(),
            threshold = cfg.trigger.threshold,
            emergency_threshold = cfg.trigger.emergency_threshold,
            dry_run,
            "trigger started"
        );
        let (members, _) = fleet.nouns();
        let undo_all = fleet.undo_all();
        let fleet = std::cell::RefCell::new(fleet);
        let mut rows = trigger::run(
            &companies,
            |c| {
                fleet
                    .borrow_mut()
                    .count(c, false, spec.rules.pre_key_margin)
                    .map(|(tally, _)| tally)
                    .map_err(|e| format!("cannot count files: {e}"))
            },
            |c, clean| fleet.borrow_mut().clean(c, &ctx.state, clean),
            &ctx.state,
            &spec,
            &effects,
        );
        rows.extend(
            denied
                .iter()
                .map(|c| trigger::Row::failed(c, crate::cmd::cleanup::DENIED)),
        );
        let exit = finish(ctx, effects, &rows, &spec.run_id, self, members, undo_all)?;
        tracing::info!(companies = rows.len(), "trigger finished");
        Ok(exit)
    }
}

/// The end of a trigger run: the exit code from the rows, the run's
/// effects (record, digest, ping, metrics), the report. `what` names the rows (`companies`,
/// `tenants`).
fn finish(
    ctx: &Context,
    effects: crate::core::effects::RunEffects,
    rows: &[trigger::Row],
    run_id: &str,
    args: &TriggerArgs,
    what: &str,
    undo_all: bool,
) -> Result<Exit> {
    let cfg = &ctx.config;
    let mut exit = Exit::Ok;
    for r in rows {
        exit = exit.worst(match r.action {
            Action::Failed => Exit::Failed,
            Action::Busy => Exit::Busy,
            _ => Exit::Ok,
        });
    }
    let cleaned = rows.iter().filter(|r| r.action.cleaned()).count();
    // A company it meant to clean but found busy was not cleaned: not a success either.
    let end = RunEnd {
        failed: exit != Exit::Ok,
        removed: rows.iter().filter_map(|r| r.removed).sum(),
        summary: format!("{} {what} checked, {cleaned} cleaned", rows.len()),
        whole_fleet: true,
        skip_record: false,
    };
    if let Err(e) = effects.finish(&end) {
        crate::say!("baileys-janitor: {e:#}");
        exit = exit.worst(Exit::Failed);
    }
    crate::cmd::warn_keep_n(&[cfg.rules, cfg.emergency_rules], args.json);
    let view = TriggerView {
        rows,
        run_id,
        dry_run: cfg.run.dry_run,
        threshold: cfg.trigger.threshold,
        emergency_threshold: cfg.trigger.emergency_threshold,
        verbose: args.verbose,
        // Where one `restore --run` cannot undo the whole run, `restore --list` shows how.
        undo: (!cfg.run.dry_run
            && cfg.trash
            && undo_all
            && rows.iter().any(|r| r.removed.unwrap_or(0) > 0))
        .then(|| ctx.undo_command(run_id, &[])),
    };
    print(&mut crate::render::stdout(), &view, args.json)?;
    Ok(exit)
}

/// How this run triggers, from the resolved configuration (folders and stores alike).
pub(crate) fn spec(ctx: &Context) -> Result<TriggerSpec> {
    let cfg = &ctx.config;
    let now = ctx.now_utc();
    Ok(TriggerSpec {
        thresholds: cfg.thresholds(),
        cooldown: chrono::Duration::from_std(cfg.trigger.cooldown)?,
        rules: cfg.rules,
        emergency_rules: cfg.emergency_rules,
        trash: cfg.trash,
        dry_run: cfg.run.dry_run,
        run_id: ctx.run_id(),
        holder: lock::holder_text("trigger", now),
        now,
        creds_from: ctx.creds_from()?,
    })
}

/// One trigger at a time on a host (folders and stores alike). `None`: another trigger holds
/// it, and that was said on stderr. A dry run writes nothing, not even the lock file.
pub(crate) fn host_lock(ctx: &Context) -> Result<Option<Option<crate::core::lock::LockGuard>>> {
    if ctx.config.run.dry_run {
        return Ok(Some(None));
    }
    let holder = lock::holder_text("trigger", ctx.now_utc());
    match ctx.state.lock_host(TRIGGER_LOCK, &holder)? {
        LockAttempt::Acquired(g) => Ok(Some(Some(g))),
        LockAttempt::Busy(holder) => {
            crate::say!(
                "baileys-janitor: another trigger is running ({}); exiting",
                holder.as_deref().unwrap_or("holder unknown")
            );
            Ok(None)
        }
    }
}
