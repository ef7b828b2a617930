//! `status`: the spec's manual checks over ssh (`ls | wc -l` per company, lock files, last
//! cleanup, trend) as one read-only command, over folders or a store's tenants.

use anyhow::Result;

use crate::cli::StatusArgs;
use crate::cmd::{Context, FleetFlags, Run};
use crate::core::fleet::{SharedStatus, StatusRows, StatusSpec};
use crate::core::inspect::CompanyStatus;
use crate::core::report::CompanyReport;
use crate::core::store::TenantFacts;
use crate::exit::Exit;
use crate::render::Paint;
use crate::render::status::{StatusView, needs_attention, print};

impl Run for StatusArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        let cfg = &ctx.config;
        let (mut fleet, all) = ctx.open_fleet(FleetFlags {
            read_only: true,
            ..FleetFlags::default()
        })?;
        let companies = ctx.select(fleet.as_mut(), all, &self.company)?;
        if let Some(exit) = ctx.empty_fleet(&companies) {
            return Ok(exit);
        }
        crate::cmd::warn_keep_n(&[cfg.rules, cfg.emergency_rules], self.json);
        let spec = StatusSpec {
            thresholds: cfg.thresholds(),
            cooldown: chrono::Duration::from_std(cfg.trigger.cooldown)?,
            rules: cfg.rules,
            now: ctx.now,
            run_id: ctx.run_id(),
            creds_in_folder: cfg.creds_in_folder,
        };
        let rows = fleet
            .status(&companies, &ctx.state, &spec)
            .map_err(|e| anyhow::anyhow!(e))?;
        // The exit code speaks for every company, also those --level hides.
        let mut attention = match rows {
            StatusRows::Folders(rows) => self.folders(ctx, rows)?,
            StatusRows::Tenants {
                reports,
                facts,
                target,
                transport,
                shared,
            } => self.tenants(
                ctx,
                &reports,
                &facts,
                &target,
                transport.as_deref(),
                shared.as_ref(),
            )?,
        };
        if let Some(why) = ctx.state.unreadable() {
            crate::say!(
                "baileys-janitor: warning: {why}; last cleanups, cooldowns and locks are unknown"
            );
            attention = true;
        }
        Ok(if attention { Exit::Failed } else { Exit::Ok })
    }
}

impl StatusArgs {
    /// Company folders: the status table. Returns whether anything needs attention.
    fn folders(&self, ctx: &Context, mut rows: Vec<CompanyStatus>) -> Result<bool> {
        if !self.history {
            for s in &mut rows {
                s.history.clear();
                s.drops.clear();
            }
        }
        let attention = needs_attention(&rows);
        let view = StatusView {
            rows: &rows,
            now: ctx.now_utc(),
            all: self.verbose || !self.company.is_empty(),
            history: self.history,
            min_level: self.level,
            undo: &|run, company| ctx.undo_command(run, &[company.to_owned()]),
            release: &|company| ctx.release_command(company),
        };
        print(
            &mut crate::render::stdout(),
            &view,
            self.json,
            &Paint::detect(),
        )?;
        Ok(attention)
    }

    /// Store tenants: keys by type, level, what a cleanup would remove now, the server's facts
    /// (and their metrics file beside `--metrics-file`). Attention as for folders: a failure,
    /// corrupt creds or a tenant at warning level or above.
    fn tenants(
        &self,
        ctx: &Context,
        reports: &[CompanyReport],
        facts: &[TenantFacts],
        target: &str,
        transport: Option<&str>,
        shared: Option<&SharedStatus>,
    ) -> Result<bool> {
        let cfg = &ctx.config;
        if facts.iter().any(|f| f.server_bytes.is_some())
            && let Some(file) = &cfg.run.metrics_file
        {
            // A write failure is logged, not fatal.
            let path = file.with_file_name("baileys-janitor-store.prom");
            let tenants: Vec<String> = reports.iter().map(|r| r.company.clone()).collect();
            if let Err(err) =
                crate::core::store::exposition::store_metrics(&tenants, facts).write(&path)
            {
                tracing::warn!(error = %err, "cannot write the store metrics");
            }
        }
        let thresholds = cfg.thresholds();
        crate::render::store::print_status(
            &mut crate::render::stdout(),
            &crate::render::store::StoreStatus {
                store: target,
                connection: transport,
                reports,
                facts,
                shared,
                thresholds: &thresholds,
                now: ctx.now_utc(),
                release: &|tenant| ctx.release_command(tenant),
            },
            self.json,
        )?;
        Ok(reports.iter().any(|r| {
            r.has_failure()
                || r.creds == Some("corrupt")
                || thresholds.level(r.counted_before()) >= crate::core::level::Level::Warning
        }))
    }
}
