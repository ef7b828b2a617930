//! `restore`: undo a cleanup from the trash, put a folder back from a backup, or end the hold on
//! restored files.

use std::io::Write;

use anyhow::{Result, bail};

use crate::cli::RestoreArgs;
use crate::cmd::{Context, Run};
use crate::config::usage;
use crate::core::lock;
use crate::core::restore::{self, RestoreError, RestoreOptions};
use crate::exit::Exit;

impl Run for RestoreArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        if !ctx.config.store.is_folder() {
            return crate::cmd::store::restore(self, ctx);
        }
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
                    crate::say!(
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
                crate::render::stdout(),
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
        crate::render::restore::print(
            &mut crate::render::stdout(),
            &report,
            &company.name,
            self.json,
        )?;
        Ok(if report.complete() {
            Exit::Ok
        } else {
            Exit::Failed
        })
    }
}
