//! `monitor`: the long-running watcher (layer 1). A plain loop with a sleep that wakes on
//! shutdown; notifications go through a queue thread so a hung webhook never delays a tick or
//! the exit.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tracing::{debug, info, warn};

use crate::cli::MonitorArgs;
use crate::cmd::{Context, Run};
use crate::core::alerts::{self, AlertPolicy, AlertState, Notice};
use crate::core::classify::Kind;
use crate::core::clean::{self, CleanSpec, clean_company};
use crate::core::companies::Company;
use crate::core::folder::Folder;
use crate::core::level::Level;
use crate::core::lock;
use crate::core::metrics::Exposition;
use crate::core::notify::{Event, Notifier};
use crate::core::records::{self, Sample};
use crate::core::report::Status;
use crate::exit::Exit;

/// Files per Baileys type in one folder.
type TypeCounts = Vec<(Kind, usize)>;

/// What the monitor remembers of one company between ticks. Bounded: a few words per company,
/// dropped when the company's folder disappears.
#[derive(Default)]
struct Watch {
    alert: AlertState,
    health_failures: u32,
    health_down: bool,
    history_slot: Option<i64>,
}

/// An alert about the other layers (cron jobs not running).
#[derive(Default)]
struct StaleWatch {
    stale: bool,
    last_sent: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
struct Row {
    company: String,
    files: usize,
    level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Notifications are sent by one thread behind a bounded queue.
struct Outbox {
    tx: Option<SyncSender<Event>>,
    done: Arc<AtomicBool>,
    notifier: Arc<Notifier>,
    dropped: u64,
}

impl Outbox {
    fn start(notifier: Notifier) -> Outbox {
        let notifier = Arc::new(notifier);
        let (tx, rx): (SyncSender<Event>, Receiver<Event>) = std::sync::mpsc::sync_channel(1024);
        let done = Arc::new(AtomicBool::new(false));
        let (n, d) = (notifier.clone(), done.clone());
        std::thread::spawn(move || {
            for ev in rx {
                n.send(&ev);
            }
            d.store(true, Ordering::SeqCst);
        });
        Outbox {
            tx: Some(tx),
            done,
            notifier,
            dropped: 0,
        }
    }

    fn send(&mut self, ev: Event) {
        if !self.notifier.enabled() {
            return;
        }
        info!(event = ev.event, level = %ev.level, company = ev.company.as_deref().unwrap_or("-"), "{}", ev.message);
        if let Some(tx) = &self.tx
            && let Err(TrySendError::Full(_)) = tx.try_send(ev)
        {
            self.dropped += 1;
            warn!("notification queue full; notification dropped");
        }
    }

    /// Lets queued notifications go out, waiting at most `wait`.
    fn close(mut self, wait: Duration) {
        self.tx.take();
        let deadline = Instant::now() + wait;
        while !self.done.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

struct Monitor<'a> {
    ctx: &'a Context,
    args: &'a MonitorArgs,
    policy: AlertPolicy,
    watches: HashMap<String, Watch>,
    cleanup_stale: StaleWatch,
    trigger_stale: StaleWatch,
    started: DateTime<Utc>,
    outbox: Outbox,
    health: Option<reqwest::blocking::Client>,
    stop: Arc<AtomicBool>,
    first_tick: bool,
}

impl Run for MonitorArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        let cfg = &ctx.config;
        let interval = self.interval.unwrap_or(cfg.monitor.interval);
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // A second signal while the first is being handled exits at once.
            signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())?;
            signal_hook::flag::register(sig, stop.clone())?;
        }
        let health = match &self.health_url {
            Some(_) => Some(
                reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(2))
                    .build()?,
            ),
            None => None,
        };
        let mut m = Monitor {
            ctx,
            args: self,
            policy: AlertPolicy {
                thresholds: cfg.thresholds(),
                hysteresis: cfg.monitor.hysteresis,
                repeat_warning: cfg.monitor.repeat_warning,
                repeat_critical: cfg.monitor.repeat_critical,
                repeat_emergency: cfg.monitor.repeat_emergency,
            },
            watches: HashMap::new(),
            cleanup_stale: StaleWatch::default(),
            trigger_stale: StaleWatch::default(),
            started: Utc::now(),
            outbox: Outbox::start(Notifier::new(cfg.notify.clone())),
            health,
            stop: stop.clone(),
            first_tick: true,
        };
        if self.once {
            let rows = m.tick()?;
            let exit = m.print(&rows)?;
            m.outbox.close(cfg.notify.budget);
            return Ok(exit);
        }
        info!(interval = ?interval, auto_cleanup = m.auto_cleanup(), "monitor started");
        let mut ticks = 0u64;
        let mut next = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            let began = Instant::now();
            if let Err(e) = m.tick() {
                warn!(error = %format!("{e:#}"), "tick failed");
            }
            ticks += 1;
            if self.max_ticks.is_some_and(|max| ticks >= max) {
                break;
            }
            let took = began.elapsed();
            next += interval;
            if took > interval {
                // Do not stack ticks: skip the missed ones and start again from now.
                warn!(took = ?took, interval = ?interval, "tick took longer than the interval; next tick not stacked");
                next = Instant::now() + interval;
            }
            while !stop.load(Ordering::SeqCst) {
                let now = Instant::now();
                if now >= next {
                    break;
                }
                std::thread::sleep((next - now).min(Duration::from_millis(50)));
            }
        }
        info!(ticks, "monitor stopping");
        m.outbox.close(Duration::from_millis(1000));
        Ok(Exit::Ok)
    }
}

impl Monitor<'_> {
    fn auto_cleanup(&self) -> bool {
        self.args.auto_cleanup || self.ctx.config.monitor.auto_cleanup
    }

    fn tick(&mut self) -> Result<Vec<Row>> {
        let ctx = self.ctx;
        let now = Utc::now();
        let (root, companies) = ctx.fleet()?;
        let mut rows = Vec::with_capacity(companies.len());
        let mut by_type: Vec<(String, TypeCounts)> = Vec::new();
        // Forget vanished companies.
        self.watches
            .retain(|name, _| companies.iter().any(|c| &c.name == name));
        for c in &companies {
            if self.stop.load(Ordering::SeqCst) {
                break; // abandon the tick: shutting down
            }
            if !self.first_tick && !self.watches.contains_key(&c.name) {
                info!(company = %c.name, "watching a new company");
            }
            let counted = self.count(&root, c);
            let (files, types) = match counted {
                Ok(x) => x,
                Err(e) => {
                    warn!(company = %c.name, error = %e, "cannot count files");
                    rows.push(Row {
                        company: c.name.clone(),
                        files: 0,
                        level: Level::Healthy,
                        error: Some(e.to_string()),
                    });
                    continue;
                }
            };
            let mut files = files;
            if self.auto_cleanup() && files >= self.policy.thresholds.emergency {
                files = self.auto_clean(&root, c, files, now).unwrap_or(files);
            }
            let level = self.policy.thresholds.level(files);
            self.alert(c, files, now);
            self.history(c, files, now);
            if let Some(url) = self.args.health_url.clone() {
                self.health_check(c, &url);
            }
            if let Some(t) = types {
                by_type.push((c.name.clone(), t));
            }
            rows.push(Row {
                company: c.name.clone(),
                files,
                level,
                error: None,
            });
        }
        if self.first_tick {
            info!(companies = companies.len(), "watching companies");
            self.first_tick = false;
        }
        // runs.json is read once a tick, for the cron check and the metrics.
        let runs = records::read_runs(&ctx.state);
        self.watch_cron(&runs, now);
        if let Some(path) = &self.args.metrics_file
            && let Err(e) = self.metrics(&rows, &by_type, &runs, now).write(path)
        {
            warn!(path = %path.display(), error = %e, "cannot write the metrics file");
        }
        let raised = rows.iter().filter(|r| r.level >= Level::Warning).count();
        debug!(companies = rows.len(), raised, "tick done");
        Ok(rows)
    }

    /// Files, and files by type when metrics need them (names only: no stat either way).
    fn count(&self, root: &Folder, c: &Company) -> std::io::Result<(usize, Option<TypeCounts>)> {
        let dir = root.open_dir(&c.dir)?;
        if self.args.metrics_file.is_none() {
            return Ok((dir.count_files()?, None));
        }
        let mut counts: std::collections::BTreeMap<Kind, usize> = Default::default();
        let mut files = 0;
        for e in clean::scan(&dir)?.iter().filter(|e| clean::counted(e)) {
            files += 1;
            *counts.entry(e.kind).or_default() += 1;
        }
        Ok((files, Some(counts.into_iter().collect())))
    }

    fn alert(&mut self, c: &Company, files: usize, now: DateTime<Utc>) {
        let policy = self.policy;
        let watch = self.watches.entry(c.name.clone()).or_default();
        let Some(notice) = alerts::step(&mut watch.alert, files, &policy, now) else {
            return;
        };
        let t = policy.thresholds;
        let thresholds =
            json!({ "warning": t.warning, "critical": t.critical, "emergency": t.emergency });
        let ev = match notice {
            Notice::Raised(l) => Event::new(
                "level_raised",
                l.as_str(),
                format!("{} reached {} files: {}", c.name, files, l.as_str()),
            ),
            Notice::Repeat(l) => Event::new(
                "level_repeat",
                l.as_str(),
                format!("{} is still {} at {} files", c.name, l.as_str(), files),
            ),
            Notice::Resolved => Event::new(
                "resolved",
                "healthy",
                format!("{} is healthy again at {} files", c.name, files),
            ),
        };
        self.outbox
            .send(ev.company(&c.name, files).thresholds(thresholds));
    }

    /// An emergency cleanup through the same path as `cleanup --emergency` (same lock), at most
    /// once per trigger cooldown, remembered across restarts. Returns the new count.
    fn auto_clean(
        &mut self,
        root: &Folder,
        c: &Company,
        files: usize,
        now: DateTime<Utc>,
    ) -> Option<usize> {
        let ctx = self.ctx;
        let cooldown = chrono::Duration::from_std(ctx.config.trigger.cooldown).ok()?;
        let record = records::read_company(&ctx.state, &c.name);
        if record.auto_cleanup.is_some_and(|t| t + cooldown > now) {
            return None;
        }
        let spec = CleanSpec {
            rules: ctx.config.emergency_rules,
            dry_run: false,
            trash: ctx.config.trash,
            verbose: false,
            now: now.into(),
            run_id: format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), std::process::id()),
            holder: lock::holder_text("monitor", now),
            pause_before_remove: None,
        };
        let report = clean_company(root, c, &ctx.state, &spec);
        if report.status == Status::Busy {
            return None; // someone else is cleaning it right now
        }
        let _ = records::record_cleanup(&ctx.state, &report, "monitor", true, spec.trash, now);
        let _ = records::update_company(&ctx.state, &c.name, |r| r.auto_cleanup = Some(now));
        let ev = if report.status == Status::Failed {
            Event::new(
                "cleanup_failed",
                "error",
                format!(
                    "auto-cleanup of {} failed: {}",
                    c.name,
                    report.error.as_deref().unwrap_or("")
                ),
            )
        } else {
            Event::new(
                "cleanup_finished",
                "emergency",
                format!("auto-cleanup of {}: removed {} files, {} left", c.name, report.removed, report.files_after),
            )
            .details(json!({ "removed": report.removed, "remaining": report.files_after, "run_id": report.run_id }))
        };
        self.outbox.send(ev.company(&c.name, files));
        (report.status == Status::Ok).then_some(report.files_after)
    }

    /// One history point per slot (an hour), not one write per tick.
    fn history(&mut self, c: &Company, files: usize, now: DateTime<Utc>) {
        let slot = now.timestamp().div_euclid(records::HISTORY.resolution_secs);
        let watch = self.watches.entry(c.name.clone()).or_default();
        if watch.history_slot == Some(slot) {
            return;
        }
        watch.history_slot = Some(slot);
        let sample = Sample(now.timestamp(), files as u32);
        if let Err(e) = records::update_company(&self.ctx.state, &c.name, |r| {
            records::add_sample(&mut r.history, sample, records::HISTORY)
        }) {
            warn!(company = %c.name, error = %e, "cannot record history");
        }
    }

    fn health_check(&mut self, c: &Company, url: &str) {
        let Some(client) = &self.health else { return };
        let id = c
            .name
            .strip_prefix(&self.ctx.config.company_prefix)
            .unwrap_or(&c.name);
        let url = url.replace("{company}", &c.name).replace("{id}", id);
        let ok = client
            .get(&url)
            .send()
            .is_ok_and(|r| r.status().is_success());
        let limit = self.ctx.config.monitor.health_failures;
        let watch = self.watches.entry(c.name.clone()).or_default();
        let ev = if ok {
            watch.health_failures = 0;
            if !watch.health_down {
                return;
            }
            watch.health_down = false;
            Event::new(
                "health_recovered",
                "healthy",
                format!("{} connection check passes again", c.name),
            )
        } else {
            watch.health_failures += 1;
            if watch.health_failures != limit {
                return;
            }
            watch.health_down = true;
            Event::new(
                "health_failed",
                "critical",
                format!("{} connection check failed {limit} times in a row", c.name),
            )
        };
        self.outbox.send(ev.company(&c.name, 0));
    }

    /// Alerts when the daily cleanup or the trigger stopped running (cron broken).
    fn watch_cron(&mut self, runs: &records::Runs, now: DateTime<Utc>) {
        let cfg = &self.ctx.config.monitor;
        let repeat =
            chrono::Duration::from_std(cfg.repeat_warning).unwrap_or(chrono::Duration::MAX);
        let checks = [
            (
                "cleanup",
                runs.cleanup.last_success,
                cfg.cleanup_stale_after,
            ),
            (
                "trigger",
                runs.trigger.last_success.or(runs.trigger.last_start),
                cfg.trigger_stale_after,
            ),
        ];
        for (name, last, limit) in checks {
            let limit = chrono::Duration::from_std(limit).unwrap_or(chrono::Duration::MAX);
            // Nothing recorded yet: count from the monitor's own start.
            let since = last.unwrap_or(self.started);
            let stale = now - since > limit;
            let w = if name == "cleanup" {
                &mut self.cleanup_stale
            } else {
                &mut self.trigger_stale
            };
            let ev = if stale && (!w.stale || w.last_sent.is_none_or(|t| now - t >= repeat)) {
                let when = last.map_or("never".to_owned(), |t| {
                    t.format("%Y-%m-%d %H:%M UTC").to_string()
                });
                Some(Event::new(
                    "cron_stale",
                    "warning",
                    format!("no successful {name} run since {when}: check cron"),
                ))
            } else if !stale && w.stale {
                Some(Event::new(
                    "cron_resolved",
                    "healthy",
                    format!("{name} is running again"),
                ))
            } else {
                None
            };
            w.stale = stale;
            if let Some(ev) = ev {
                w.last_sent = Some(now);
                self.outbox.send(ev.details(json!({ "command": name })));
            }
        }
    }

    fn metrics(
        &self,
        rows: &[Row],
        by_type: &[(String, TypeCounts)],
        runs: &records::Runs,
        now: DateTime<Utc>,
    ) -> Exposition {
        let mut e = Exposition::default();
        e.family(
            "baileys_janitor_company_files",
            "gauge",
            "Files in a company's auth folder.",
        );
        for r in rows {
            e.sample(
                "baileys_janitor_company_files",
                &[("company", &r.company)],
                r.files as f64,
            );
        }
        e.family(
            "baileys_janitor_company_files_by_type",
            "gauge",
            "Files in a company's auth folder, by Baileys type.",
        );
        for (c, types) in by_type {
            for (k, n) in types {
                e.sample(
                    "baileys_janitor_company_files_by_type",
                    &[("company", c), ("type", k.as_str())],
                    *n as f64,
                );
            }
        }
        e.family(
            "baileys_janitor_company_level",
            "gauge",
            "0 healthy, 1 warning, 2 critical, 3 trigger, 4 emergency, 5 danger.",
        );
        for r in rows {
            e.sample(
                "baileys_janitor_company_level",
                &[("company", &r.company)],
                r.level.code() as f64,
            );
        }
        e.family("baileys_janitor_companies", "gauge", "Companies watched.")
            .sample("baileys_janitor_companies", &[], rows.len() as f64);
        e.family(
            "baileys_janitor_monitor_last_tick_timestamp_seconds",
            "gauge",
            "When the monitor last finished a tick.",
        )
        .sample(
            "baileys_janitor_monitor_last_tick_timestamp_seconds",
            &[],
            now.timestamp() as f64,
        );
        e.family(
            "baileys_janitor_last_success_timestamp_seconds",
            "gauge",
            "Last successful cleanup / trigger run.",
        );
        for (name, t) in [
            ("cleanup", runs.cleanup.last_success),
            ("trigger", runs.trigger.last_success),
        ] {
            e.sample(
                "baileys_janitor_last_success_timestamp_seconds",
                &[("command", name)],
                t.map_or(0.0, |t| t.timestamp() as f64),
            );
        }
        e.family(
            "baileys_janitor_notifications_total",
            "counter",
            "Notifications sent and failed since the monitor started.",
        );
        e.sample(
            "baileys_janitor_notifications_total",
            &[("result", "sent")],
            self.outbox.notifier.sent() as f64,
        );
        e.sample(
            "baileys_janitor_notifications_total",
            &[("result", "failed")],
            (self.outbox.notifier.failed() + self.outbox.dropped) as f64,
        );
        e
    }

    fn print(&self, rows: &[Row]) -> Result<Exit> {
        let mut out = std::io::stdout().lock();
        if self.args.json {
            serde_json::to_writer(
                &mut out,
                &json!({ "command": "monitor", "companies": rows }),
            )?;
            writeln!(out)?;
        } else {
            let w = rows
                .iter()
                .map(|r| r.company.len())
                .max()
                .unwrap_or(7)
                .max(7);
            writeln!(out, "{:w$}  {:>5}  LEVEL", "COMPANY", "FILES")?;
            for r in rows {
                writeln!(
                    out,
                    "{:w$}  {:>5}  {}{}",
                    r.company,
                    r.files,
                    r.level.as_str(),
                    r.error
                        .as_ref()
                        .map_or(String::new(), |e| format!("  error: {e}"))
                )?;
            }
        }
        let any_raised = rows
            .iter()
            .any(|r| r.level >= Level::Warning || r.error.is_some());
        Ok(if any_raised { Exit::Failed } else { Exit::Ok })
    }
}
