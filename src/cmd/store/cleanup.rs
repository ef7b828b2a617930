//! `cleanup` on a database store.

use anyhow::Result;
use serde::Serialize;

use super::{open, select, to_anyhow};
use crate::cli::CleanupArgs;
use crate::cmd::Context;
use crate::core::clean::CleanSpec;
use crate::core::effects::RunEnd;
use crate::core::lock;
use crate::core::store::clean::{StoreCleanSpec, clean_tenants};
use crate::core::store::{self, BATCH_DEFAULT};
use crate::exit::Exit;
use crate::render::cleanup::CleanupPrinter;

#[derive(Serialize)]
struct Header<'a> {
    command: &'static str,
    run_id: &'a str,
    dry_run: bool,
    emergency: bool,
    store: String,
}

pub fn cleanup(args: &CleanupArgs, ctx: &Context) -> Result<Exit> {
    let cfg = &ctx.config;
    let mut store = open(ctx, cfg.run.dry_run)?;
    let all = store.tenants().map_err(to_anyhow)?;
    if args.remove_orphans {
        crate::core::store::clean::orphan_majority(store.as_mut(), &all)
            .map_err(crate::config::usage)?;
    }
    let tenants = select(ctx, store.as_mut(), all, &args.company)?;
    let whole_fleet = args.company.is_empty();
    let effects = ctx.effects("cleanup");
    if tenants.is_empty() && !cfg.allow_empty {
        crate::say!(
            "baileys-janitor: warning: no tenant in {}; check --store and --layout, or pass --allow-empty for a fresh install",
            cfg.store.describe()
        );
        // As for folders: a run that finds nothing to clean is a failed run (record, fail
        // ping, metrics), so a wrong store or key pattern never looks like success.
        effects.finish(&RunEnd {
            failed: true,
            summary: "no tenant found".into(),
            whole_fleet,
            ..RunEnd::default()
        })?;
        return Ok(Exit::Failed);
    }
    effects.start();
    let run_id = ctx.run_id();
    let spec = StoreCleanSpec {
        clean: CleanSpec {
            rules: if args.emergency {
                cfg.emergency_rules
            } else {
                cfg.rules
            },
            dry_run: cfg.run.dry_run,
            trash: cfg.trash,
            verbose: args.verbose,
            now: ctx.now,
            run_id: run_id.clone(),
            holder: lock::holder_text("cleanup", ctx.now_utc()),
            pause_before_remove: args.debug_pause_before_remove,
            creds_from: None,
        },
        store_key: store::state_key(&cfg.store),
        remove_legacy: args.legacy_rows,
        remove_orphans: args.remove_orphans,
        batch: BATCH_DEFAULT,
    };
    crate::cmd::warn_keep_n(&[spec.clean.rules], args.json);
    tracing::info!(store = %cfg.store.describe(), tenants = tenants.len(), dry_run = spec.clean.dry_run, run_id = %run_id, "cleanup started");
    let header = Header {
        command: "cleanup",
        run_id: &run_id,
        dry_run: spec.clean.dry_run,
        emergency: args.emergency,
        store: cfg.store.describe(),
    };
    let detail = !whole_fleet || tenants.len() == 1;
    let mut printer = CleanupPrinter::start(
        crate::render::stdout(),
        args.json,
        detail,
        args.verbose,
        spec.clean.dry_run,
        header,
    )?;
    let mut output_error: Option<std::io::Error> = None;
    let started = std::time::Instant::now();
    let mut outcome = clean_tenants(
        store.as_mut(),
        &tenants,
        &ctx.state,
        &spec,
        crate::core::clean::FleetSpec {
            jobs: 1,
            emergency: args.emergency,
            trash_retention: cfg.trash_retention,
            lock_wait: cfg.lock_wait,
        },
        &effects,
        |report| {
            if let Err(e) = printer.company(report) {
                output_error.get_or_insert(e);
            }
        },
    );
    outcome.totals.duration_ms = started.elapsed().as_millis() as u64;
    let summary = format!(
        "{} tenants, {} keys removed",
        outcome.totals.companies, outcome.totals.removed
    );
    crate::cmd::cleanup::finish(
        effects,
        outcome,
        whole_fleet,
        summary,
        printer,
        output_error,
    )
}
