//! `trigger` on a database store.

use anyhow::Result;

use super::{open, to_anyhow};
use crate::cmd::Context;
use crate::core::store::clean::{StoreCleanSpec, clean_tenant};
use crate::core::store::{self, BATCH_DEFAULT};
use crate::exit::Exit;

/// `trigger` on a database store: counts keys per tenant (creds included, as creds.json counts
/// for folders; reserved pre-keys left out, core::tally), and cleans those past a threshold with the same decision rules. One trigger at
/// a time per host (the state lock) and per store (PostgreSQL: an advisory lock).
pub fn trigger(args: &crate::cli::TriggerArgs, ctx: &Context) -> Result<Exit> {
    use crate::core::companies;

    use crate::core::trigger::{self};

    use std::cell::RefCell;

    let cfg = &ctx.config;
    let dry_run = cfg.run.dry_run;
    let mut store = open(ctx, dry_run)?;
    let Some(_guard) = crate::cmd::trigger::host_lock(ctx)? else {
        return Ok(Exit::Busy);
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
        effects.finish(&crate::core::effects::RunEnd {
            failed: true,
            summary: "no tenant found".into(),
            ..Default::default()
        })?;
        return Ok(Exit::Failed);
    }
    effects.start();
    let spec = crate::cmd::trigger::spec(ctx)?;
    let store_key = store::state_key(&cfg.store);
    let store = RefCell::new(store);
    let rows = trigger::run_with(
        &tenants,
        |c| {
            crate::core::tally::store(
                store.borrow_mut().as_mut(),
                &c.name,
                spec.rules.pre_key_margin,
            )
            .map_err(|e| e.to_string())
        },
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
    crate::cmd::trigger::finish(ctx, effects, &rows, &spec.run_id, args, "tenants")
}
