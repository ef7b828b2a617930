//! `backup`: copy a company folder into the state directory, or list the backups.

use std::io::Write;

use anyhow::Result;

use crate::cli::BackupArgs;
use crate::cmd::{Context, Run};
use crate::core::backup;
use crate::core::lock;
use crate::core::restore;
use crate::exit::Exit;

impl Run for BackupArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        if !ctx.config.store.is_folder() {
            return Err(crate::config::usage(
                "backup copies company folders; with --store use the database's own backups (removed rows are in the trash: restore --run)",
            ));
        }
        let (root, all) = ctx.fleet()?;
        let mut out = crate::render::stdout();
        if self.list {
            let companies = ctx.select_folders(all, &self.company)?;
            let mut listing = serde_json::Map::new();
            let mut partial = 0;
            for c in &companies {
                let l = backup::list(&ctx.state, &c.name);
                partial += l.partial.len();
                if self.json {
                    listing.insert(c.name.clone(), serde_json::to_value(&l)?);
                } else {
                    for b in &l.complete {
                        writeln!(out, "{}  {b}", c.name)?;
                    }
                    for b in &l.partial {
                        crate::say!(
                            "baileys-janitor: {}: {b} is an incomplete backup (interrupted, or without a manifest): not listed, not restorable; remove it with: rm -r {}",
                            c.name,
                            ctx.state
                                .path()
                                .join(backup::BACKUPS_DIR)
                                .join(&c.name)
                                .join(b)
                                .display()
                        );
                    }
                }
            }
            if self.json {
                serde_json::to_writer(&mut out, &listing)?;
                writeln!(out)?;
            } else if partial > 0 {
                writeln!(out, "({partial} incomplete backups not listed; see stderr)")?;
            }
            return Ok(Exit::Ok);
        }
        let now: chrono::DateTime<chrono::Utc> = ctx.now.into();
        let time = now.format("%Y%m%dT%H%M%SZ").to_string();
        let mut exit = Exit::Ok;
        // One company at a time, each under its lock (JSON: one document per company).
        for company in ctx.select_folders(all, &self.company)? {
            let _guard = match restore::lock_company(
                &ctx.state,
                &company.name,
                &lock::holder_text("backup", now),
            )? {
                Ok(g) => g,
                Err(holder) => {
                    crate::say!(
                        "baileys-janitor: {} is locked by {holder}; try again when it is done",
                        company.name
                    );
                    exit = exit.worst(Exit::Busy);
                    continue;
                }
            };
            let report = backup::backup(&root, &company, &ctx.state, &time, now)?;
            tracing::info!(company = %company.name, files = report.files, bytes = report.bytes, path = %report.path, "backup written");
            crate::render::restore::backup(&mut out, &report, self.json)?;
        }
        Ok(exit)
    }
}
