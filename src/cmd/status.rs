//! `status`: the spec's manual checks over ssh (`ls | wc -l` per company, lock files, last
//! cleanup, trend) as one read-only command.

use anyhow::Result;

use crate::cli::StatusArgs;
use crate::cmd::{Context, Run};
use crate::core::inspect::{CompanyStatus, inspect};
use crate::exit::Exit;
use crate::render::Paint;
use crate::render::status::{StatusView, needs_attention, print};

impl Run for StatusArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        if !ctx.config.store.is_folder() {
            return crate::cmd::store::status(self, ctx);
        }
        let (root, all) = ctx.fleet()?;
        let companies = ctx.select(all, &self.company)?;
        if let Some(exit) = ctx.empty_fleet(&companies) {
            return Ok(exit);
        }
        crate::cmd::warn_keep_n(&[ctx.config.rules, ctx.config.emergency_rules], self.json);
        let thresholds = ctx.config.thresholds();
        let cooldown = chrono::Duration::from_std(ctx.config.trigger.cooldown)?;
        let now = ctx.now_utc();
        let creds_from = ctx.creds_from()?;
        let rows: Vec<CompanyStatus> = companies
            .iter()
            .map(|c| {
                let margin = ctx.config.rules.pre_key_margin;
                let mut s = inspect(
                    &root,
                    c,
                    &ctx.state,
                    &thresholds,
                    cooldown,
                    crate::core::inspect::CredsRule {
                        margin,
                        from: creds_from.as_ref(),
                    },
                    now,
                );
                if ctx.config.creds_in_folder {
                    crate::core::inspect::flag_orphan(&root, c, &mut s);
                }
                if !self.history {
                    s.history.clear();
                    s.drops.clear();
                }
                s
            })
            .collect();
        // The exit code speaks for every company, also those --level hides.
        let mut attention = needs_attention(&rows);
        if let Some(why) = ctx.state.unreadable() {
            crate::say!(
                "baileys-janitor: warning: {why}; last cleanups, cooldowns and locks are unknown"
            );
            attention = true;
        }
        let view = StatusView {
            rows: &rows,
            now,
            all: self.verbose || !self.company.is_empty(),
            history: self.history,
            min_level: self.level,
            undo: &|run, company| ctx.undo_command(run, &[company.to_owned()]),
        };
        print(
            &mut crate::render::stdout(),
            &view,
            self.json,
            &Paint::detect(),
        )?;
        Ok(if attention { Exit::Failed } else { Exit::Ok })
    }
}
