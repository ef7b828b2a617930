//! `status` on a database store.

use anyhow::Result;

use super::{open, select, to_anyhow};
use crate::cli::StatusArgs;
use crate::cmd::Context;
use crate::core::clean::CleanSpec;
use crate::core::store::clean::{StoreCleanSpec, inspect_tenant};
use crate::core::store::{self, BATCH_DEFAULT};
use crate::exit::Exit;

pub fn status(args: &StatusArgs, ctx: &Context) -> Result<Exit> {
    let cfg = &ctx.config;
    crate::cmd::warn_keep_n(&[cfg.rules, cfg.emergency_rules], args.json);
    let mut store = open(ctx, true)?;
    let all = store.tenants().map_err(to_anyhow)?;
    let tenants = select(ctx, store.as_mut(), all, &args.company)?;
    let spec = StoreCleanSpec {
        clean: CleanSpec {
            rules: cfg.rules,
            dry_run: true,
            trash: false,
            verbose: false,
            now: ctx.now,
            run_id: ctx.run_id(),
            holder: String::new(),
            pause_before_remove: None,
            creds_from: None,
        },
        store_key: store::state_key(&cfg.store),
        remove_legacy: false,
        remove_orphans: false,
        batch: BATCH_DEFAULT,
    };
    let rows: Vec<_> = tenants
        .iter()
        .map(|t| inspect_tenant(store.as_mut(), t, &ctx.state, &spec))
        .collect();
    let facts = tenants
        .iter()
        .map(|t| store::facts(store.as_mut(), t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(to_anyhow)?;
    if facts.iter().any(|f| f.server_bytes.is_some()) {
        // Beside the metrics file, when one is configured; a write failure is logged, not fatal.
        if let Some(file) = &ctx.config.run.metrics_file {
            let path = file.with_file_name("baileys-janitor-store.prom");
            if let Err(err) =
                crate::core::store::exposition::store_metrics(&tenants, &facts).write(&path)
            {
                tracing::warn!(error = %err, "cannot write the store metrics");
            }
        }
    }
    crate::render::store::print_status(
        &mut crate::render::stdout(),
        &store.describe().unwrap_or_else(|| cfg.store.describe()),
        store.transport().map(|t| t.to_string()).as_deref(),
        &rows,
        &facts,
        &ctx.config.thresholds(),
        args.json,
    )?;
    // As for folders (render::status::needs_attention): a failure, corrupt creds or a tenant at
    // warning level or above makes the exit code 1, so cron and scripts see it.
    let thresholds = ctx.config.thresholds();
    let attention = rows.iter().any(|r| {
        r.has_failure()
            || r.creds == Some("corrupt")
            || thresholds.level(r.files_before) >= crate::core::level::Level::Warning
    });
    Ok(if attention { Exit::Failed } else { Exit::Ok })
}
