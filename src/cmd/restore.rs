//! `restore`: list the runs that can be undone, undo one (in each company it cleaned) from the
//! trash, put a folder back from a backup, or end the hold on restored files.

use std::io::Write;

use anyhow::{Result, bail};

use crate::cli::RestoreArgs;
use crate::cmd::{Context, Run};
use crate::config::usage;
use crate::core::companies::Company;
use crate::core::folder::Folder;
use crate::core::lock;
use crate::core::restore::{self, RestoreError, RestoreOptions};
use crate::exit::Exit;

impl Run for RestoreArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        if self.list {
            return list(self, ctx);
        }
        if !ctx.config.store.is_folder() {
            return crate::cmd::store::restore(self, ctx);
        }
        let (root, all) = ctx.fleet()?;
        let companies = match (&self.run, self.company.is_empty()) {
            // A run id alone: every company whose trash holds it.
            (Some(run), true) => {
                let names = restore::companies_of_run(&ctx.state, run, &[]);
                if names.is_empty() {
                    return Err(usage(format!(
                        "no run {:?} in the trash; `baileys-janitor restore --list` shows the runs that can be undone",
                        crate::render::name(run)
                    )));
                }
                ctx.select(all, &names)?
            }
            _ => ctx.select(all, &self.company)?,
        };
        // Putting files back needs the same rights as removing them: one line, not a failure
        // per file, when this user lacks them.
        let (companies, denied) = if self.release {
            (companies, Vec::new())
        } else {
            match ctx.check_access(&root, companies) {
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
            exit = exit.worst(restore_one(self, ctx, &root, company)?);
        }
        Ok(exit)
    }
}

/// `restore --list`: the runs with files in the trash, newest first, each with its undo command.
fn list(args: &RestoreArgs, ctx: &Context) -> Result<Exit> {
    let names: Vec<String> = if args.company.is_empty() {
        Vec::new()
    } else if ctx.config.store.is_folder() {
        let (_, all) = ctx.fleet()?;
        ctx.select(all, &args.company)?
            .into_iter()
            .map(|c| c.name)
            .collect()
    } else {
        // A tenant whose rows are all gone is no longer listed by the store: its trash counts.
        args.company.clone()
    };
    let runs = restore::undoable(&ctx.state, &names);
    let undo: Vec<String> = runs
        .iter()
        .map(|r| {
            if ctx.config.store.is_folder() {
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

fn restore_one(
    args: &RestoreArgs,
    ctx: &Context,
    root: &Folder,
    company: &Company,
) -> Result<Exit> {
    let now: chrono::DateTime<chrono::Utc> = ctx.now.into();
    let _guard = if ctx.config.run.dry_run {
        None
    } else {
        match restore::lock_company(
            &ctx.state,
            &company.name,
            &lock::holder_text("restore", now),
        )? {
            Ok(g) => Some(g),
            Err(holder) => {
                crate::say!(
                    "baileys-janitor: {} is locked by {holder}; try again when it is done",
                    company.name
                );
                return Ok(Exit::Busy);
            }
        }
    };
    if args.release {
        let n = if ctx.config.run.dry_run {
            0
        } else {
            restore::release(&ctx.state, &company.name, now)?
        };
        writeln!(
            crate::render::stdout(),
            "{}: released {n} files from hold; cleanup may remove them again",
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
        restore::restore_backup(root, company, &ctx.state, name, &opts)
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
        restore::restore_run(root, company, &ctx.state, &run, &opts)
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
        &company.name,
        args.json,
    )?;
    Ok(if report.complete() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}
