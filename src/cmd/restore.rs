//! `restore`: undo a cleanup from the trash, or put a folder back from a backup.

use std::io::Write;

use anyhow::{Result, bail};

use crate::cli::RestoreArgs;
use crate::cmd::{Context, Run};
use crate::core::lock;
use crate::core::restore::{self, RestoreReport};
use crate::exit::Exit;

impl Run for RestoreArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        let (root, all) = ctx.fleet()?;
        let company = ctx
            .select(all, std::slice::from_ref(&self.company))?
            .remove(0);
        let _guard = if ctx.config.run.dry_run {
            None
        } else {
            match restore::lock_company(
                &ctx.state,
                &company.name,
                &lock::holder_text("restore", ctx.now.into()),
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
        let report = if let Some(time) = &self.backup {
            restore::restore_backup(
                &root,
                &company,
                &ctx.state,
                time,
                self.overwrite,
                &ctx.run_id(),
                ctx.config.run.dry_run,
            )?
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
            restore::restore_run(
                &root,
                &company,
                &ctx.state,
                &run,
                &self.file,
                ctx.config.run.dry_run,
            )?
        };
        tracing::info!(
            company = %company.name,
            source = %report.source,
            restored = report.restored.len(),
            skipped = report.skipped.len(),
            failed = report.failed.len(),
            "restore finished"
        );
        print(&report, self.json)?;
        Ok(if report.failed.is_empty() {
            Exit::Ok
        } else {
            Exit::Failed
        })
    }
}

fn print(r: &RestoreReport, json: bool) -> Result<()> {
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
    for n in &r.skipped {
        writeln!(out, "  skipped {}: {}", n.file, n.reason)?;
    }
    for n in &r.failed {
        writeln!(out, "  FAILED {}: {}", n.file, n.reason)?;
    }
    writeln!(
        out,
        "{}: {verb} {} files from {}, {} skipped, {} failed",
        r.company,
        r.restored.len(),
        r.source,
        r.skipped.len(),
        r.failed.len()
    )?;
    Ok(())
}
