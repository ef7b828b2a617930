//! `monitor`: the long-running watcher (layer 1). A plain loop with a sleep that wakes on
//! shutdown; the work of a tick is `core::monitor`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use tracing::{info, warn};

use crate::cli::MonitorArgs;
use crate::cmd::{Context, FleetFlags, Run};
use crate::core::alerts::AlertPolicy;
use crate::core::lock::{self, LockAttempt};
use crate::core::monitor::{Monitor, MonitorSpec};
use crate::core::notify::{Notifier, Outbox};
use crate::core::state::MONITOR_LOCK;
use crate::exit::Exit;

impl Run for MonitorArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        let cfg = &ctx.config;
        let m = &cfg.monitor;
        // A missing sessions path or store is an error before anything is written (the state
        // directory defaults to inside the sessions path and is never created with its parents).
        let first = ctx.open_fleet(FleetFlags::default())?;
        if self.once
            && let Some(exit) = ctx.empty_fleet(&first.1)
        {
            return Ok(exit);
        }
        // Two monitors on one state directory would send every alert twice.
        let _guard = match ctx
            .state
            .lock_host(MONITOR_LOCK, &lock::holder_text("monitor", ctx.now_utc()))?
        {
            LockAttempt::Acquired(g) => g,
            LockAttempt::Busy(holder) => {
                crate::say!(
                    "baileys-janitor: another monitor is running on {} ({}); exiting",
                    ctx.state.path().display(),
                    holder.as_deref().unwrap_or("holder unknown")
                );
                return Ok(Exit::Busy);
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // A second signal while the first is being handled exits at once.
            signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())?;
            signal_hook::flag::register(sig, stop.clone())?;
        }
        let spec = MonitorSpec {
            policy: AlertPolicy {
                thresholds: cfg.thresholds(),
                hysteresis: m.hysteresis,
                repeat_warning: m.repeat_warning,
                repeat_critical: m.repeat_critical,
                repeat_emergency: m.repeat_emergency,
            },
            auto_cleanup: m.auto_cleanup,
            cooldown: chrono::Duration::from_std(cfg.trigger.cooldown)?,
            emergency_rules: cfg.emergency_rules,
            trash: cfg.trash,
            cleanup_stale_after: m.cleanup_stale_after,
            trigger_stale_after: m.trigger_stale_after,
            health_url: m.health_url.clone(),
            health_failures: m.health_failures,
            tick_failures: m.tick_failures,
            company_prefix: cfg.company_prefix.clone(),
            metrics_file: cfg.run.metrics_file.clone(),
            creds_in_folder: cfg.creds_in_folder,
            creds_from: ctx.creds_from()?,
        };
        if m.auto_cleanup {
            crate::cmd::warn_keep_n(&[cfg.emergency_rules], self.json);
        }
        let outbox = Outbox::start(Notifier::new(cfg.notify.clone()));
        let mut mon = Monitor::new(&ctx.state, spec, outbox, ctx.now_utc());
        let stopped = || stop.load(Ordering::SeqCst);
        if self.once {
            let (mut fleet, companies) = first;
            let rows = mon.tick(fleet.as_mut(), &companies, chrono::Utc::now(), &stopped);
            crate::render::monitor::print(&mut crate::render::stdout(), &rows, self.json)?;
            mon.outbox.close(cfg.notify.budget);
            let raised = rows.iter().any(|r| {
                r.is_problem()
                    || r.level
                        .is_none_or(|l| l >= crate::core::level::Level::Warning)
            });
            return Ok(if raised { Exit::Failed } else { Exit::Ok });
        }
        drop(first);
        let interval = m.interval;
        info!(interval = ?interval, auto_cleanup = m.auto_cleanup, "monitor started");
        let mut ticks = 0u64;
        let mut late_ticks = 0u64;
        let mut next = Instant::now();
        while !stopped() {
            let began = Instant::now();
            let now = chrono::Utc::now();
            // The fleet is opened again each tick: folders come and go, and a store connection
            // that failed is not reused.
            match ctx.open_fleet(FleetFlags::default()) {
                Ok((mut fleet, companies)) => {
                    if companies.is_empty() && !cfg.allow_empty {
                        warn!(fleet = %fleet.describe(), prefix = %cfg.company_prefix, "no company folder or tenant found");
                    }
                    mon.tick(fleet.as_mut(), &companies, now, &stopped);
                }
                Err(e) => mon.tick_failed(&e, now),
            }
            ticks += 1;
            if self.max_ticks.is_some_and(|max| ticks >= max) {
                break;
            }
            let took = began.elapsed();
            next += interval;
            if took > interval {
                // Do not stack ticks: skip the missed ones and start again from now. Said once
                // at warn, then at debug, so a short interval cannot flood the log.
                late_ticks += 1;
                if late_ticks == 1 {
                    warn!(took = ?took, interval = ?interval, "tick took longer than the interval; next tick not stacked");
                } else {
                    tracing::debug!(took = ?took, "tick took longer than the interval");
                }
                next = Instant::now() + interval;
            }
            while !stopped() {
                let now = Instant::now();
                if now >= next {
                    break;
                }
                std::thread::sleep((next - now).min(Duration::from_millis(50)));
            }
        }
        info!(ticks, "monitor stopping");
        mon.outbox.close(Duration::from_millis(1000));
        Ok(Exit::Ok)
    }
}
