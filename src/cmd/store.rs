//! The database stores (`--store sqlite:…` / `postgres://…`): the same commands, wired to
//! `core::store` instead of the folder code path.

use anyhow::{Result, anyhow};
use serde::Serialize;

use crate::cli::{CleanupArgs, RestoreArgs, StatusArgs};
use crate::cmd::Context;
use crate::config::usage;
use crate::core::clean::CleanSpec;
use crate::core::effects::RunEnd;
use crate::core::lock;
use crate::core::store::clean::{StoreCleanSpec, clean_tenant, clean_tenants, restore_tenant_run};
use crate::core::store::{self, BATCH_DEFAULT, Store, StoreError};
use crate::exit::Exit;
use crate::render::cleanup::CleanupPrinter;

/// A store error as the CLI reports it: a wrong schema is a configuration error (exit 2), an
/// unreachable server a failed run (exit 1). Neither ever carries a password.
fn to_anyhow(e: StoreError) -> anyhow::Error {
    if e.is_configuration() {
        usage(e.to_string())
    } else {
        anyhow!("{e}")
    }
}

fn open(ctx: &Context, read_only: bool) -> Result<Box<dyn Store>> {
    store::open(&ctx.config.store, read_only).map_err(to_anyhow)
}

/// The tenants named by `--company` (exact, or with the company prefix), or all of them.
fn select(ctx: &Context, all: Vec<String>, wanted: &[String]) -> Result<Vec<String>> {
    if wanted.is_empty() {
        return Ok(all);
    }
    let mut out: Vec<String> = Vec::new();
    for w in wanted {
        let prefixed = format!("{}{w}", ctx.config.company_prefix);
        match all.iter().find(|t| *t == w || **t == prefixed) {
            Some(t) if !out.contains(t) => out.push(t.clone()),
            Some(_) => {}
            None => {
                let shown: Vec<&str> = all.iter().take(20).map(String::as_str).collect();
                return Err(usage(format!(
                    "no tenant {:?} in {}; known tenants: {}{}",
                    crate::render::name(w),
                    ctx.config.store.describe(),
                    if shown.is_empty() {
                        "there are none".into()
                    } else {
                        shown.join(", ")
                    },
                    if all.len() > 20 {
                        format!(" … ({} in all)", all.len())
                    } else {
                        String::new()
                    }
                )));
            }
        }
    }
    Ok(out)
}

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
    let tenants = select(ctx, store.tenants().map_err(to_anyhow)?, &args.company)?;
    let whole_fleet = args.company.is_empty();
    let effects = ctx.effects("cleanup");
    if tenants.is_empty() && !cfg.allow_empty {
        crate::say!(
            "baileys-janitor: warning: no tenant in {}; check --store and --layout, or pass --allow-empty for a fresh install",
            cfg.store.describe()
        );
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
        },
        store_key: store::state_key(&cfg.store),
        remove_legacy: args.legacy_rows,
        remove_orphans: args.remove_orphans,
        batch: BATCH_DEFAULT,
    };
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
        args.emergency,
        cfg.trash_retention,
        &effects,
        |report| {
            if let Err(e) = printer.company(report) {
                output_error.get_or_insert(e);
            }
        },
    );
    outcome.totals.duration_ms = started.elapsed().as_millis() as u64;
    let t = &outcome.totals;
    let end = RunEnd {
        failed: outcome.exit == Exit::Failed,
        removed: t.removed,
        summary: format!("{} tenants, {} keys removed", t.companies, t.removed),
        whole_fleet,
        skip_record: false,
    };
    if let Err(e) = effects.finish(&end) {
        crate::say!("baileys-janitor: {e:#}");
        outcome.exit = outcome.exit.worst(Exit::Failed);
    }
    if let Some(e) = output_error {
        return Err(e.into());
    }
    printer.finish(t)?;
    Ok(outcome.exit)
}

pub fn restore(args: &RestoreArgs, ctx: &Context) -> Result<Exit> {
    if args.backup.is_some() {
        return Err(usage(
            "restore --backup works on folders only; database stores restore from the trash (--run)",
        ));
    }
    let dry_run = ctx.config.run.dry_run;
    let mut store = open(ctx, dry_run)?;
    let tenant = select(
        ctx,
        store.tenants().map_err(to_anyhow)?,
        std::slice::from_ref(&args.company),
    )
    // A tenant whose rows were all removed is no longer listed: its trash still counts.
    .or_else(|_| Ok::<_, anyhow::Error>(vec![args.company.clone()]))?
    .remove(0);
    if !dry_run {
        match store.lock_tenant(&tenant).map_err(to_anyhow)? {
            store::TenantLock::Acquired => {}
            store::TenantLock::Busy(holder) => {
                crate::say!(
                    "baileys-janitor: {tenant} is locked by {holder}; try again when it is done"
                );
                return Ok(Exit::Busy);
            }
        }
    }
    let run = match &args.run {
        Some(r) => r.clone(),
        None => crate::core::restore::latest_run(&ctx.state, &tenant).ok_or_else(|| {
            anyhow!("nothing in the trash of {tenant} (was it cleaned with --no-trash, or purged?)")
        })?,
    };
    let report = restore_tenant_run(
        store.as_mut(),
        &ctx.state,
        &tenant,
        &run,
        &args.file,
        dry_run,
    )
    .map_err(|e| anyhow!(e));
    if !dry_run {
        store.unlock_tenant(&tenant);
    }
    let report = report?;
    tracing::info!(company = %tenant, source = %report.source, restored = report.restored.len(), skipped = report.skipped.len(), "restore finished");
    crate::render::restore::print(&mut crate::render::stdout(), &report, &tenant, args.json)?;
    // As for folders: a row not put back (the app wrote a newer one) fails the run.
    Ok(if report.complete() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

pub fn status(args: &StatusArgs, ctx: &Context) -> Result<Exit> {
    let cfg = &ctx.config;
    let mut store = open(ctx, true)?;
    let tenants = select(ctx, store.tenants().map_err(to_anyhow)?, &args.company)?;
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
        },
        store_key: store::state_key(&cfg.store),
        remove_legacy: false,
        remove_orphans: false,
        batch: BATCH_DEFAULT,
    };
    let rows: Vec<_> = tenants
        .iter()
        .map(|t| clean_tenant(store.as_mut(), t, &ctx.state, &spec))
        .collect();
    let facts = tenants
        .iter()
        .map(|t| store::facts(store.as_mut(), t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(to_anyhow)?;
    if facts.iter().any(|f| f.server_bytes.is_some()) {
        write_store_metrics(ctx, &tenants, &facts);
    }
    crate::render::store::print_status(
        &mut crate::render::stdout(),
        &cfg.store.describe(),
        &rows,
        &facts,
        &ctx.config.thresholds(),
        args.json,
    )?;
    let failed = rows.iter().any(|r| r.has_failure());
    Ok(if failed { Exit::Failed } else { Exit::Ok })
}

/// `trigger` on a database store: counts keys per tenant (creds included, as creds.json counts
/// for folders), and cleans those past a threshold with the same decision rules. One trigger at
/// a time per host (the state lock) and per store (PostgreSQL: an advisory lock).
pub fn trigger(args: &crate::cli::TriggerArgs, ctx: &Context) -> Result<Exit> {
    use crate::core::companies;
    use crate::core::lock::LockAttempt;
    use crate::core::state::TRIGGER_LOCK;
    use crate::core::trigger::{self, Action, TriggerSpec};
    use crate::render::trigger::{TriggerView, print};
    use std::cell::RefCell;

    let cfg = &ctx.config;
    let now = ctx.now_utc();
    let dry_run = cfg.run.dry_run;
    let mut store = open(ctx, dry_run)?;
    let _guard = if dry_run {
        None
    } else {
        match ctx
            .state
            .lock_host(TRIGGER_LOCK, &lock::holder_text("trigger", now))?
        {
            LockAttempt::Acquired(g) => Some(g),
            LockAttempt::Busy(holder) => {
                crate::say!(
                    "baileys-janitor: another trigger is running ({}); exiting",
                    holder.as_deref().unwrap_or("holder unknown")
                );
                return Ok(Exit::Busy);
            }
        }
    };
    if !dry_run && let store::TenantLock::Busy(holder) = store.lock_global().map_err(to_anyhow)? {
        crate::say!(
            "baileys-janitor: another trigger is running on this store ({holder}); exiting"
        );
        return Ok(Exit::Busy);
    }
    let tenants: Vec<_> = store
        .tenants()
        .map_err(to_anyhow)?
        .iter()
        .map(|t| companies::single(t))
        .collect();
    let effects = ctx.effects("trigger");
    if tenants.is_empty() && !cfg.allow_empty {
        crate::say!(
            "baileys-janitor: warning: no tenant in {}",
            cfg.store.describe()
        );
        return Ok(Exit::Failed);
    }
    effects.start();
    let spec = TriggerSpec {
        thresholds: cfg.thresholds(),
        cooldown: chrono::Duration::from_std(cfg.trigger.cooldown)?,
        rules: cfg.rules,
        emergency_rules: cfg.emergency_rules,
        trash: cfg.trash,
        dry_run,
        run_id: ctx.run_id(),
        holder: lock::holder_text("trigger", now),
        now,
    };
    let store_key = store::state_key(&cfg.store);
    let store = RefCell::new(store);
    let rows = trigger::run_with(
        &tenants,
        |c| store.borrow_mut().count(&c.name).map_err(|e| e.to_string()),
        |c, clean| {
            let s = StoreCleanSpec {
                clean: clean.clone(),
                store_key: store_key.clone(),
                remove_legacy: false,
                remove_orphans: false,
                batch: BATCH_DEFAULT,
            };
            clean_tenant(store.borrow_mut().as_mut(), &c.name, &ctx.state, &s)
        },
        &ctx.state,
        &spec,
        &effects,
    );
    let mut exit = Exit::Ok;
    for r in &rows {
        exit = exit.worst(match r.action {
            Action::Failed => Exit::Failed,
            Action::Busy => Exit::Busy,
            _ => Exit::Ok,
        });
    }
    let cleaned = rows.iter().filter(|r| r.action.cleaned()).count();
    let end = RunEnd {
        failed: exit == Exit::Failed,
        removed: rows.iter().filter_map(|r| r.removed).sum(),
        summary: format!("{} tenants checked, {cleaned} cleaned", rows.len()),
        whole_fleet: true,
        skip_record: false,
    };
    if let Err(e) = effects.finish(&end) {
        crate::say!("baileys-janitor: {e:#}");
        exit = exit.worst(Exit::Failed);
    }
    let view = TriggerView {
        rows: &rows,
        run_id: &spec.run_id,
        dry_run,
        threshold: cfg.trigger.threshold,
        emergency_threshold: cfg.trigger.emergency_threshold,
        verbose: args.verbose,
    };
    print(&mut crate::render::stdout(), &view, args.json)?;
    Ok(exit)
}

/// The monitor's view of the configured store (a fresh connection).
pub fn source(ctx: &Context) -> Result<crate::core::store::clean::StoreSource> {
    Ok(crate::core::store::clean::StoreSource {
        store: open(ctx, false)?,
        store_key: store::state_key(&ctx.config.store),
    })
}

/// `status` of a Redis store, when a metrics file is configured, writes
/// `baileys-janitor-store.prom` beside it: keys, bytes and orphans per tenant, for the node
/// exporter's textfile collector. A write failure is logged, not fatal.
fn write_store_metrics(ctx: &Context, tenants: &[String], facts: &[store::TenantFacts]) {
    let mut e = crate::core::metrics::Exposition::default();
    e.family(
        "baileys_janitor_store_keys",
        "gauge",
        "Keys the tenant holds on the store server (Redis: HLEN or counted keys).",
    );
    for (t, f) in tenants.iter().zip(facts) {
        if let Some(k) = f.server_keys {
            e.sample("baileys_janitor_store_keys", &[("company", t)], k as f64);
        }
    }
    e.family(
        "baileys_janitor_store_bytes",
        "gauge",
        "Memory the tenant takes on the store server (Redis: MEMORY USAGE, sampled).",
    );
    for (t, f) in tenants.iter().zip(facts) {
        if let Some(b) = f.server_bytes {
            e.sample("baileys_janitor_store_bytes", &[("company", t)], b as f64);
        }
    }
    e.family(
        "baileys_janitor_store_orphan",
        "gauge",
        "1 when the tenant is an orphan (its account is gone).",
    );
    for (t, f) in tenants.iter().zip(facts) {
        e.sample(
            "baileys_janitor_store_orphan",
            &[("company", t)],
            if f.orphan.is_some() { 1.0 } else { 0.0 },
        );
    }
    let Some(metrics_file) = &ctx.config.run.metrics_file else {
        return;
    };
    let path = metrics_file.with_file_name("baileys-janitor-store.prom");
    if let Err(err) = e.write(&path) {
        tracing::warn!(error = %err, "cannot write the store metrics");
    }
}
