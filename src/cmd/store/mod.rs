//! The database stores (`--store sqlite:…` / `postgres://…`): the same commands, wired to
//! `core::store` instead of the folder code path.

use anyhow::{Result, anyhow};

use crate::cmd::Context;
use crate::config::usage;
use crate::core::store::{self, Store, StoreError};

mod cleanup;
mod restore;
mod status;
mod trigger;

pub use cleanup::cleanup;
pub use restore::restore;
pub use status::status;
pub use trigger::trigger;

/// A store error as the CLI reports it: a wrong schema is a configuration error (exit 2), an
/// unreachable server a failed run (exit 1). Neither ever carries a password.
pub(crate) fn to_anyhow(e: StoreError) -> anyhow::Error {
    if e.is_configuration() {
        usage(e.to_string())
    } else {
        anyhow!("{e}")
    }
}

/// Opens the configured store, after checking that the state directory belongs to it: its
/// trash, holds, cooldowns and records must never cross to another store.
pub(super) fn open(ctx: &Context, read_only: bool) -> Result<Box<dyn Store>> {
    let store = connect(ctx, read_only)?;
    if !read_only && let Some(release) = store.lock_releaser() {
        release_locks_on_signal(release)?;
    }
    Ok(store)
}

fn connect(ctx: &Context, read_only: bool) -> Result<Box<dyn Store>> {
    let store = store::open(&ctx.config.store, read_only).map_err(to_anyhow)?;
    let id = ctx.config.store.root_id().map_err(|e| {
        usage(format!(
            "cannot stat the store {}: {e}",
            ctx.config.store.describe()
        ))
    })?;
    ctx.bind(id)?;
    if let Some(t) = store.transport() {
        tracing::info!(store = %ctx.config.store.describe(), connection = %t, "connected");
    }
    Ok(store)
}

/// SIGINT / SIGTERM during a cleanup, trigger or restore on a store whose locks live on the
/// server (Redis): release them, then exit (130 / 143) as the signal would have. Without this
/// a killed run's lock blocked every other host until it expired. Removal stays safe: each batch
/// is fenced by the lock, so a batch after the release removes nothing; one in flight on the
/// server is atomic. A second signal exits at once.
fn release_locks_on_signal(release: store::LockReleaser) -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut flags = Vec::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let flag = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register_conditional_shutdown(sig, 1, flag.clone())?;
        signal_hook::flag::register(sig, flag.clone())?;
        flags.push((sig, flag));
    }
    std::thread::spawn(move || {
        loop {
            if let Some((sig, _)) = flags.iter().find(|(_, f)| f.load(Ordering::SeqCst)) {
                release();
                crate::say!("baileys-janitor: stopped by a signal; store locks released");
                std::process::exit(128 + sig);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    Ok(())
}

/// The tenants named by `--company` (exact, or with the company prefix), or all of them.
pub(super) fn select(
    ctx: &Context,
    store: &mut dyn Store,
    all: Vec<String>,
    wanted: &[String],
) -> Result<Vec<String>> {
    if wanted.is_empty() {
        return Ok(all);
    }
    let mut out: Vec<String> = Vec::new();
    for w in wanted {
        match store::resolve_tenant_or_label(store, &all, &ctx.config.company_prefix, w) {
            Some(t) if !out.contains(&t) => out.push(t),
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

/// The monitor's view of the configured store (a fresh connection).
pub fn source(ctx: &Context) -> Result<crate::core::store::clean::StoreSource> {
    Ok(crate::core::store::clean::StoreSource {
        // The monitor handles its own signals and drops the store (its locks) on the way out.
        store: connect(ctx, false)?,
        store_key: store::state_key(&ctx.config.store),
    })
}
