//! `restore` on a database store.

use anyhow::{Result, anyhow};

use super::{open, select, to_anyhow};
use crate::cli::RestoreArgs;
use crate::cmd::Context;
use crate::config::usage;
use crate::core::restore::RestoreError;
use crate::core::store;
use crate::core::store::undo::{StoreRestore, restore_tenant_run};
use crate::exit::Exit;

pub fn restore(args: &RestoreArgs, ctx: &Context) -> Result<Exit> {
    if args.backup.is_some() {
        return Err(usage(
            "restore --backup works on folders only; database stores restore from the trash (--run)",
        ));
    }
    let [wanted] = args.company.as_slice() else {
        return Err(usage(
            "a database store restores one tenant at a time: --company TENANT [--run ID] (restore --list shows the runs)",
        ));
    };
    let dry_run = ctx.config.run.dry_run;
    let mut store = open(ctx, dry_run)?;
    let all = store.tenants().map_err(to_anyhow)?;
    let tenant = select(ctx, store.as_mut(), all, std::slice::from_ref(wanted))
        // A tenant whose rows were all removed is no longer listed: its trash still counts.
        .or_else(|_| Ok::<_, anyhow::Error>(vec![wanted.clone()]))?
        .remove(0);
    let now = ctx.now_utc();
    let holder = crate::core::lock::holder_text("restore", now);
    // The same two locks a cleanup takes: the state directory's and the store's.
    let _local = if dry_run {
        None
    } else {
        match crate::core::store::clean::local_lock(
            &ctx.state,
            &store::state_key(&ctx.config.store),
            &tenant,
            &holder,
        )
        .map_err(|e| anyhow!(e))?
        {
            Ok(g) => Some(g),
            Err(holder) => return Ok(busy(&tenant, &holder)),
        }
    };
    if !dry_run
        && let store::TenantLock::Busy(holder) = store.lock_tenant(&tenant).map_err(to_anyhow)?
    {
        return Ok(busy(&tenant, &holder));
    }
    let result = if args.release {
        release(ctx, &tenant, dry_run)
    } else {
        run(args, ctx, store.as_mut(), &tenant)
    };
    if !dry_run {
        store.unlock_tenant(&tenant);
    }
    result
}

fn busy(tenant: &str, holder: &str) -> Exit {
    crate::say!("baileys-janitor: {tenant} is locked by {holder}; try again when it is done");
    Exit::Busy
}

/// `--release`: ends the hold on restored rows; restores nothing.
fn release(ctx: &Context, tenant: &str, dry_run: bool) -> Result<Exit> {
    use std::io::Write;
    let n = if dry_run {
        0
    } else {
        crate::core::restore::release(&ctx.state, tenant, ctx.now_utc())?
    };
    writeln!(
        crate::render::stdout(),
        "{tenant}: released {n} keys from hold; cleanup may remove them again"
    )?;
    Ok(Exit::Ok)
}

fn run(
    args: &RestoreArgs,
    ctx: &Context,
    store: &mut dyn store::Store,
    tenant: &str,
) -> Result<Exit> {
    let run = match &args.run {
        Some(r) => r.clone(),
        None => crate::core::restore::latest_run(&ctx.state, tenant).ok_or_else(|| {
            anyhow!("nothing in the trash of {tenant} (was it cleaned with --no-trash, or purged?)")
        })?,
    };
    let store_key = store::state_key(&ctx.config.store);
    let opts = StoreRestore {
        only: &args.file,
        force: args.force,
        dry_run: ctx.config.run.dry_run,
        now: ctx.now_utc(),
        hold: ctx.config.restore_hold,
        store_key: &store_key,
    };
    let report = match restore_tenant_run(store, &ctx.state, tenant, &run, &opts) {
        Ok(r) => r,
        Err(RestoreError::Usage(m)) => return Err(usage(m)),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(company = %tenant, source = %report.source, restored = report.restored.len(), skipped = report.skipped.len(), "restore finished");
    crate::render::restore::print(&mut crate::render::stdout(), &report, tenant, args.json)?;
    // As for folders: a row not put back (the app wrote a newer one) fails the run.
    Ok(if report.complete() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}
