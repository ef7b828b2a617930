//! `restore` on a database store.

use anyhow::{Result, anyhow};

use super::{open, select, to_anyhow};
use crate::cli::RestoreArgs;
use crate::cmd::Context;
use crate::config::usage;
use crate::core::store;
use crate::core::store::clean::restore_tenant_run;
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
