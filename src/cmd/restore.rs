//! `restore`: undo a cleanup from the trash, put a folder back from a backup, or end the hold on
//! restored files.

use std::io::Write;

use anyhow::{Result, bail};

use crate::cli::RestoreArgs;
use crate::cmd::{Context, Run};
use crate::config::usage;
use crate::core::lock;
use crate::core::restore::{self, RestoreError, RestoreOptions, RestoreReport};
use crate::exit::Exit;

impl Run for RestoreArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        let (root, all) = ctx.fleet()?;
        let company = ctx
            .select(all, std::slice::from_ref(&self.company))?
            .remove(0);
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
                    eprintln!(
                        "baileys-janitor: {} is locked by {holder}; try again when it is done",
                        company.name
                    );
                    return Ok(Exit::Busy);
                }
            }
        };
        if self.release {
            let n = if ctx.config.run.dry_run {
                0
            } else {
                restore::release(&ctx.state, &company.name, now)?
            };
            writeln!(
                std::io::stdout().lock(),
                "{}: released {n} files from hold; cleanup may remove them again",
                company.name
            )?;
            return Ok(Exit::Ok);
        }
        let run_id = ctx.run_id();
        let opts = RestoreOptions {
            only: &self.file,
            overwrite: self.overwrite,
            force: self.force,
            dry_run: ctx.config.run.dry_run,
            run_id: &run_id,
            now,
            hold: ctx.config.restore_hold,
        };
        let result = if let Some(name) = &self.backup {
            restore::restore_backup(&root, &company, &ctx.state, name, &opts)
        } else {
            let run = match &self.run {
                Some(r) => r.clone(),
                None => match restore::latest_run(&ctx.state, &company.name) {
                    Some(r) => r,
                    None => bail!(
                        "nothing in the trash of {} (was it cleaned with --no-trash, or purged?)",
                        company.name
                    ),
                },
            };
            restore::restore_run(&root, &company, &ctx.state, &run, &opts)
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
        print(&report, &company.name, self.json)?;
        Ok(if report.complete() {
            Exit::Ok
        } else {
            Exit::Failed
        })
    }
}

fn print(r: &RestoreReport, company: &str, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, r)?;
        writeln!(out)?;
        return Ok(());
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
    Ok(())
}
