//! `restore`: list the runs that can be undone, undo one (in each company it cleaned) from the
//! trash, put a folder back from a backup, or end the hold on restored files. Folders and store
//! tenants alike (the fleet seam): the member's lock, the identity check, pairs and holds are
//! the same guarantees on both.

use std::io::Write;

use anyhow::{Result, bail};

use crate::cli::RestoreArgs;
use crate::cmd::{Context, FleetFlags, Run};
use crate::config::usage;
use crate::core::companies::{self, Company};
use crate::core::fleet::Fleet;
use crate::core::lock;
use crate::core::restore::{self, RestoreError, RestoreOptions};
use crate::exit::Exit;

impl Run for RestoreArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        if self.list {
            return list(self, ctx);
        }
        let (mut fleet, all) = ctx.open_fleet(FleetFlags {
            read_only: ctx.config.run.dry_run,
            release_on_signal: true,
            ..FleetFlags::default()
        })?;
        let companies = match (&self.run, self.company.is_empty()) {
            // A run id alone: every company whose trash holds it.
            (Some(run), true) => {
                let names = restore::companies_of_run(&ctx.state, run, &[]);
                if names.is_empty() {
                    let members: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
                    if let Some(why) = restore::why_nothing_left(&ctx.state, run, &members) {
                        return Err(usage(why));
                    }
                    return Err(usage(format!(
                        "no run {:?} in the trash; `baileys-janitor restore --list` shows the runs that can be undone",
                        crate::render::name(run)
                    )));
                }
                select_with_trash(ctx, fleet.as_mut(), all, &names)?
            }
            _ => select_with_trash(ctx, fleet.as_mut(), all, &self.company)?,
        };
        // Putting files back needs the same rights as removing them: one line, not a failure
        // per file, when this user lacks them.
        let (companies, denied) = if self.release {
            (companies, Vec::new())
        } else {
            match ctx.check_access(fleet.as_ref(), companies) {
                Ok(x) => x,
                Err(exit) => return Ok(exit),
            }
        };
        let mut exit = if denied.is_empty() {
            Exit::Ok
        } else {
            Exit::Failed
        };
        for company in &companies {
            exit = exit.worst(restore_one(self, ctx, fleet.as_mut(), company)?);
        }
        Ok(exit)
    }
}

/// The members named, where a name the fleet no longer lists still counts when its trash holds
/// runs (a store tenant whose rows were all removed).
fn select_with_trash(
    ctx: &Context,
    fleet: &mut dyn Fleet,
    all: Vec<Company>,
    wanted: &[String],
) -> Result<Vec<Company>> {
    match ctx.select(fleet, all, wanted) {
        Ok(c) => Ok(c),
        Err(_)
            if !wanted.is_empty()
                && wanted
                    .iter()
                    .all(|w| !restore::runs(&ctx.state, w).is_empty()) =>
        {
            Ok(wanted.iter().map(|w| companies::single(w)).collect())
        }
        Err(e) => Err(e),
    }
}

/// `restore --list`: the runs with files in the trash, newest first, each with its undo command.
fn list(args: &RestoreArgs, ctx: &Context) -> Result<Exit> {
    let names: Vec<String> = if args.company.is_empty() {
        // The store's trash (every host's runs), where it keeps one.
        ctx.open_state(true)?;
        Vec::new()
    } else {
        let (mut fleet, all) = ctx.open_fleet(FleetFlags {
            read_only: true,
            ..FleetFlags::default()
        })?;
        select_with_trash(ctx, fleet.as_mut(), all, &args.company)?
            .into_iter()
            .map(|c| c.name)
            .collect()
    };
    let runs = restore::undoable(&ctx.state, &names);
    let undo: Vec<String> = runs
        .iter()
        .map(|r| {
            if ctx.undo_all() {
                ctx.undo_command(&r.run_id, &names)
            } else {
                // A store restores one tenant at a time: one command per tenant.
                r.companies
                    .iter()
                    .map(|t| ctx.undo_command(&r.run_id, std::slice::from_ref(t)))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        })
        .collect();
    crate::render::restore::list(
        &mut crate::render::stdout(),
        &runs,
        &undo,
        ctx.now_utc(),
        args.json,
    )?;
    Ok(Exit::Ok)
}

/// One member, under its lock (as a cleanup takes it).
fn restore_one(
    args: &RestoreArgs,
    ctx: &Context,
    fleet: &mut dyn Fleet,
    company: &Company,
) -> Result<Exit> {
    let now: chrono::DateTime<chrono::Utc> = ctx.now.into();
    let dry_run = ctx.config.run.dry_run;
    let _guard = if dry_run {
        None
    } else {
        match fleet.lock(company, &ctx.state, &lock::holder_text("restore", now))? {
            Ok(g) => g,
            Err(holder) => {
                crate::say!(
                    "baileys-janitor: {} is locked by {holder}; try again when it is done",
                    company.name
                );
                return Ok(Exit::Busy);
            }
        }
    };
    let result = locked(args, ctx, fleet, company, now);
    if !dry_run {
        fleet.unlock(company);
    }
    result
}

fn locked(
    args: &RestoreArgs,
    ctx: &Context,
    fleet: &mut dyn Fleet,
    company: &Company,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Exit> {
    if args.release {
        let n = if ctx.config.run.dry_run {
            0
        } else {
            restore::release(&ctx.state, &company.name, now)?
        };
        let (_, items) = fleet.nouns();
        writeln!(
            crate::render::stdout(),
            "{}: released {n} {items} from hold; cleanup may remove them again",
            company.name
        )?;
        return Ok(Exit::Ok);
    }
    let run_id = ctx.run_id();
    let opts = RestoreOptions {
        only: &args.file,
        overwrite: args.overwrite,
        force: args.force,
        dry_run: ctx.config.run.dry_run,
        run_id: &run_id,
        now,
        hold: ctx.config.restore_hold,
    };
    let result = if let Some(name) = &args.backup {
        fleet.restore_backup(company, &ctx.state, name, &opts)
    } else {
        let run = match &args.run {
            Some(r) => r.clone(),
            None => match restore::latest_run(&ctx.state, &company.name) {
                Some(r) => r,
                None => bail!(
                    "nothing in the trash of {} (was it cleaned with --no-trash, or purged?)",
                    company.name
                ),
            },
        };
        fleet.restore_run(company, &ctx.state, &run, &opts)
    };
    let report = match result {
        Ok(r) => r,
        Err(RestoreError::Usage(m)) => return Err(usage(m)),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(
        company = %company.name,
        source = %report.source,
        restored = report.restored.len(),
        identical = report.identical,
        skipped = report.skipped.len(),
        failed = report.failed.len(),
        "restore finished"
    );
    crate::render::restore::print(
        &mut crate::render::stdout(),
        &report,
        &ctx.release_command(&company.name),
        args.json,
    )?;
    Ok(if report.complete() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}
