//! `backup`: copy a company folder into the state directory, or list the backups.

use std::io::Write;

use anyhow::Result;

use crate::cli::BackupArgs;
use crate::cmd::{Context, Run};
use crate::core::lock;
use crate::core::restore;
use crate::core::state::BACKUPS_DIR;
use crate::exit::Exit;

impl Run for BackupArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        let (root, all) = ctx.fleet()?;
        let mut out = std::io::stdout().lock();
        if self.list {
            let wanted: Vec<String> = self.company.iter().cloned().collect();
            let companies = ctx.select(all, &wanted)?;
            let mut listing = serde_json::Map::new();
            for c in &companies {
                let backups = restore::list(&ctx.state, BACKUPS_DIR, &c.name);
                if self.json {
                    listing.insert(c.name.clone(), backups.into());
                } else {
                    for b in backups {
                        writeln!(out, "{}  {b}", c.name)?;
                    }
                }
            }
            if self.json {
                serde_json::to_writer(&mut out, &listing)?;
                writeln!(out)?;
            }
            return Ok(Exit::Ok);
        }
        let id = self.company.clone().unwrap_or_default();
        let company = ctx.select(all, &[id])?.remove(0);
        let now: chrono::DateTime<chrono::Utc> = ctx.now.into();
        let _guard = match restore::lock_company(
            &ctx.state,
            &company.name,
            &lock::holder_text("backup", now),
        )? {
            Ok(g) => g,
            Err(holder) => {
                eprintln!(
                    "baileys-janitor: {} is locked by {holder}; try again when it is done",
                    company.name
                );
                return Ok(Exit::Busy);
            }
        };
        let time = now.format("%Y%m%dT%H%M%SZ").to_string();
        let report = restore::backup(&root, &company, &ctx.state, &time)?;
        tracing::info!(company = %company.name, files = report.files, bytes = report.bytes, path = %report.path, "backup written");
        if self.json {
            serde_json::to_writer(&mut out, &report)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{}: {} files ({} bytes) copied to {}\nrestore with: baileys-janitor restore --company {} --backup {}",
                report.company,
                report.files,
                report.bytes,
                report.path,
                report.company,
                report.backup
            )?;
        }
        Ok(Exit::Ok)
    }
}
