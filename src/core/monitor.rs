//! The monitor's work, one tick at a time: discover, count, step every company's alert state,
//! auto-clean an emergency, watch the cron jobs and its own ticks, write metrics. The changes of
//! one tick go out as one notification; every raise, repeat and resolve is logged whatever the
//! channels. The loop, the signals and the printing stay in the command.

pub mod exposition;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{info, warn};

use crate::core::alerts::{self, AlertPolicy, AlertState, Notice};
use crate::core::classify::Kind;
use crate::core::clean::CleanSpec;
use crate::core::companies::Company;
use crate::core::fleet::Fleet;
use crate::core::level::Level;
use crate::core::metrics::Exposition;
use crate::core::notify::{self, Event, Outbox};
use crate::core::records::{self, Runs, TriggerLevel};
use crate::core::report::Status;
use crate::core::rules::Rules;
use crate::core::state::{self, Loaded, StateDir};
use crate::core::tally::Tally;
use crate::core::trigger;
use crate::core::util::sanitize;

/// Files per Baileys type in one folder.
pub use crate::core::fleet::TypeCounts;

/// How the monitor runs (from the resolved configuration).
#[derive(Clone, Debug)]
pub struct MonitorSpec {
    pub policy: AlertPolicy,
    pub auto_cleanup: bool,
    pub cooldown: chrono::Duration,
    pub emergency_rules: Rules,
    pub trash: bool,
    pub cleanup_stale_after: Duration,
    pub trigger_stale_after: Duration,
    pub health_url: Option<String>,
    pub health_failures: u32,
    pub tick_failures: u32,
    pub company_prefix: String,
    pub metrics_file: Option<std::path::PathBuf>,
    /// Account folders hold their creds.json, so a folder of keys without one lost its
    /// identity (not Evolution API's folders: its creds live in its database).
    pub creds_in_folder: bool,
    /// Creds outside the folders (Evolution's files mode).
    pub creds_from: Option<crate::core::clean::CredsFrom>,
}

/// One company's line of a tick.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub company: String,
    /// Every file (`ls | wc -l`).
    pub files: usize,
    /// Pre-keys the server may still hand out: not counted by the level (core::tally).
    pub reserved_pre_keys: usize,
    /// What the level is about: files less reserved pre-keys.
    pub counted: usize,
    /// `None` when the company could not be counted: never "healthy" by default (as `status`).
    pub level: Option<Level>,
    /// What this tick's auto-cleanup did, in words (files and pre-keys removed, reserved left).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// creds.json is corrupt or missing: the account's identity is at risk whatever the count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creds_problem: Option<String>,
}

impl Row {
    /// Worth a look before any level: it could not be counted, or its creds.json is broken.
    pub fn is_problem(&self) -> bool {
        self.error.is_some() || self.creds_problem.is_some()
    }
}

/// What the monitor remembers of one company between ticks: a few words, dropped when the
/// company's folder disappears.
#[derive(Default)]
struct Watch {
    alert: AlertState,
    /// A `creds_corrupt` alert was sent and not resolved yet.
    creds_alert: bool,
    /// Auto-cleanup found it cannot remove files here (wrong user): said once, not every tick.
    access_denied: bool,
    health_failures: u32,
    health_down: bool,
    history_slot: Option<i64>,
}

/// The cron watch of one command (cleanup or trigger), and the watch on the monitor's own ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleWatch {
    pub stale: bool,
    pub last_sent: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaleNotice {
    Stale,
    Recovered,
}

/// The cron watch, pure: is `last` (or the monitor's start, if nothing was recorded) older than
/// `limit`? Notifies when it becomes stale, repeats every `repeat`, and once when it recovers.
pub fn cron_step(
    w: &mut StaleWatch,
    last: Option<DateTime<Utc>>,
    started: DateTime<Utc>,
    limit: chrono::Duration,
    repeat: chrono::Duration,
    now: DateTime<Utc>,
) -> Option<StaleNotice> {
    // As for alerts: a reminder sent "in the future" counts as sent now, never as not yet due.
    w.last_sent = w.last_sent.map(|t| t.min(now));
    let stale = now - last.unwrap_or(started) > limit;
    let notice = if stale && (!w.stale || w.last_sent.is_none_or(|t| now - t >= repeat)) {
        Some(StaleNotice::Stale)
    } else if !stale && w.stale {
        Some(StaleNotice::Recovered)
    } else {
        None
    };
    w.stale = stale;
    if notice.is_some() {
        w.last_sent = Some(now);
    }
    notice
}

/// Alert states kept across runs (`--once` from cron, and a monitor restarted by PM2 or
/// systemd), so a restart never pages again for what was already sent.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Persisted {
    #[serde(default)]
    alerts: BTreeMap<String, AlertState>,
    /// Companies with an unresolved `creds_corrupt` alert.
    #[serde(default)]
    creds: std::collections::BTreeSet<String>,
    /// Companies with an unresolved `health_failed` alert.
    #[serde(default)]
    health: std::collections::BTreeSet<String>,
    #[serde(default)]
    cleanup_stale: StaleWatch,
    #[serde(default)]
    trigger_stale: StaleWatch,
    /// When the monitor first watched this state directory: the cron watch's baseline while no
    /// run is recorded (a restart must not make a stale cron job look recovered).
    #[serde(default)]
    watching_since: Option<DateTime<Utc>>,
}

const MONITOR_FILE: &str = "monitor.json";

pub struct Monitor<'a> {
    state: &'a StateDir,
    spec: MonitorSpec,
    watches: HashMap<String, Watch>,
    cleanup_stale: StaleWatch,
    trigger_stale: StaleWatch,
    ticks_failing: u32,
    tick_alarm: bool,
    started: DateTime<Utc>,
    pub outbox: Outbox,
    health: Option<reqwest::blocking::Client>,
    first_tick: bool,
    /// This tick's notifications, sent as one message at its end.
    pending: Vec<Event>,
    /// What `monitor.json` holds now: written again only when it changes.
    saved: Option<Persisted>,
}

fn dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl<'a> Monitor<'a> {
    pub fn new(
        state: &'a StateDir,
        spec: MonitorSpec,
        outbox: Outbox,
        now: DateTime<Utc>,
    ) -> Monitor<'a> {
        let health = spec.health_url.as_ref().and_then(|_| {
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .ok()
        });
        let mut m = Monitor {
            state,
            spec,
            watches: HashMap::new(),
            cleanup_stale: StaleWatch::default(),
            trigger_stale: StaleWatch::default(),
            ticks_failing: 0,
            tick_alarm: false,
            started: now,
            outbox,
            health,
            first_tick: true,
            pending: Vec::new(),
            saved: None,
        };
        m.load_alerts();
        m
    }

    fn load_alerts(&mut self) {
        let Some(dir) = self.state.existing() else {
            return;
        };
        let loaded = state::read_json::<Persisted>(dir, MONITOR_FILE);
        if let Loaded::Corrupt(why) = &loaded {
            // Starting afresh re-sends every open alert: say why, or the pages look like a bug.
            warn!(error = %why, "the alerts already sent are unknown ({MONITOR_FILE} is damaged): open alerts are sent again and the file rewritten");
        }
        if let Loaded::Ok(p) = loaded {
            for (company, alert) in &p.alerts {
                self.watches.entry(company.clone()).or_default().alert = *alert;
            }
            for company in &p.creds {
                self.watches.entry(company.clone()).or_default().creds_alert = true;
            }
            for company in &p.health {
                let w = self.watches.entry(company.clone()).or_default();
                w.health_down = true;
                // Already alerted: further failures do not count up to a new alert.
                w.health_failures = self.spec.health_failures;
            }
            self.cleanup_stale = p.cleanup_stale;
            self.trigger_stale = p.trigger_stale;
            if let Some(since) = p.watching_since.filter(|t| *t < self.started) {
                self.started = since;
            }
            self.saved = Some(p);
        }
    }

    fn save_alerts(&mut self) {
        let p = Persisted {
            alerts: self
                .watches
                .iter()
                .filter(|(_, w)| w.alert != AlertState::default())
                .map(|(c, w)| (c.clone(), w.alert))
                .collect(),
            creds: self
                .watches
                .iter()
                .filter(|(_, w)| w.creds_alert)
                .map(|(c, _)| c.clone())
                .collect(),
            health: self
                .watches
                .iter()
                .filter(|(_, w)| w.health_down)
                .map(|(c, _)| c.clone())
                .collect(),
            cleanup_stale: self.cleanup_stale,
            trigger_stale: self.trigger_stale,
            watching_since: Some(self.started),
        };
        if self.saved.as_ref() == Some(&p) {
            return;
        }
        // Nothing sent yet: no reason to create a state directory (inside whatever folder a
        // mistyped path names) just to say so.
        let nothing_sent = p.alerts.is_empty()
            && p.creds.is_empty()
            && p.health.is_empty()
            && p.cleanup_stale == StaleWatch::default()
            && p.trigger_stale == StaleWatch::default();
        if nothing_sent && self.state.existing().is_none() {
            return;
        }
        let result = self
            .state
            .folder()
            .and_then(|d| state::write_json(d, MONITOR_FILE, &p));
        match result {
            Ok(()) => self.saved = Some(p),
            Err(e) => {
                warn!(error = %e, "cannot remember the alerts sent; a restart may repeat them")
            }
        }
    }

    /// A tick that could not even list the companies (sessions path gone): counted, and after
    /// `tick_failures` in a row an alert of its own.
    pub fn tick_failed(&mut self, error: &anyhow::Error, now: DateTime<Utc>) {
        self.ticks_failing += 1;
        warn!(error = %format!("{error:#}"), failures = self.ticks_failing, "tick failed");
        if self.ticks_failing >= self.spec.tick_failures && !self.tick_alarm {
            self.tick_alarm = true;
            self.queue(Event::new(
                "tick_failing",
                Level::Emergency.as_str(),
                format!(
                    "the monitor failed {} ticks in a row: {error:#}",
                    self.ticks_failing
                ),
            ));
        }
        self.flush(now);
    }

    /// Records a notification: logged now whatever the channels, sent at the tick's end.
    fn queue(&mut self, ev: Event) {
        let company = ev.company.as_deref().unwrap_or("-");
        if ev.event == "level_raised"
            || ev.event == "creds_corrupt"
            || ev.event.ends_with("_failed")
            || ev.event == "tick_failing"
            || ev.event == "cron_stale"
        {
            warn!(event = ev.event, company_level = %ev.level, company, "{}", ev.message);
        } else {
            info!(event = ev.event, company_level = %ev.level, company, "{}", ev.message);
        }
        self.pending.push(ev);
    }

    fn flush(&mut self, _now: DateTime<Utc>) {
        let events = std::mem::take(&mut self.pending);
        if let Some(d) = notify::digest(events, "monitor") {
            self.outbox.send(d);
        }
    }

    /// One tick over `companies` of a [`Fleet`] (folders, or a database store's tenants).
    pub fn tick(
        &mut self,
        source: &mut dyn Fleet,
        companies: &[Company],
        now: DateTime<Utc>,
        stop: &dyn Fn() -> bool,
    ) -> Vec<Row> {
        if self.tick_alarm {
            self.tick_alarm = false;
            self.queue(Event::new(
                "tick_recovered",
                Level::Healthy.as_str(),
                "the monitor's ticks succeed again".to_string(),
            ));
        }
        self.ticks_failing = 0;
        let mut rows = Vec::with_capacity(companies.len());
        let mut by_type: Vec<(String, TypeCounts)> = Vec::new();
        // Forget vanished companies.
        self.watches
            .retain(|name, _| companies.iter().any(|c| &c.name == name));
        for c in companies {
            if stop() {
                break; // abandon the tick: shutting down
            }
            let shown = sanitize(c.name.as_ref());
            if !self.first_tick && !self.watches.contains_key(&c.name) {
                info!(company = %shown, "watching a new company");
            }
            let margin = self.spec.emergency_rules.pre_key_margin;
            let (mut tally, types) = match source.count(c, self.spec.metrics_file.is_some(), margin)
            {
                Ok(x) => x,
                Err(e) => {
                    warn!(company = %shown, error = %e, "cannot count files");
                    rows.push(Row {
                        company: shown,
                        files: 0,
                        reserved_pre_keys: 0,
                        counted: 0,
                        level: None,
                        cleanup: None,
                        error: Some(e.to_string()),
                        creds_problem: None,
                    });
                    continue;
                }
            };
            let mut cleanup = None;
            if self.spec.auto_cleanup
                && tally.counted() >= self.spec.policy.thresholds.emergency
                && let Some((after, words)) = self.auto_clean(source, c, tally, now)
            {
                tally = after;
                cleanup = Some(words);
            }
            let counted = tally.counted();
            let creds_problem = if self.spec.creds_in_folder {
                source.creds_problem(c)
            } else {
                None
            };
            // Without readable creds the reserved pre-keys are unknown and the count means
            // nothing: an error row, no level, and one alert (creds_corrupt), not a level too.
            let level = match creds_problem {
                None => {
                    self.alert(c, tally, now);
                    Some(self.spec.policy.thresholds.level(counted))
                }
                Some(_) => None,
            };
            self.creds_alert(c, tally.files, creds_problem.as_deref());
            self.history(c, tally.files, now);
            if let Some(url) = self.spec.health_url.clone() {
                self.health_check(c, &url);
            }
            if let Some(t) = types {
                by_type.push((shown.clone(), t));
            }
            rows.push(Row {
                company: shown,
                files: tally.files,
                reserved_pre_keys: tally.reserved,
                counted,
                level,
                cleanup,
                error: None,
                creds_problem,
            });
        }
        if self.first_tick {
            info!(companies = companies.len(), "watching companies");
            self.first_tick = false;
        }
        // runs.json is read once a tick, for the cron check and the metrics.
        let runs = records::read_runs(self.state);
        self.watch_cron(&runs, now);
        self.flush(now);
        self.save_alerts();
        if let Some(path) = &self.spec.metrics_file
            && let Err(e) = self.metrics(&rows, &by_type, &runs, now).write(path)
        {
            warn!(path = %path.display(), error = %e, "cannot write the metrics file");
        }
        rows
    }

    fn alert(&mut self, c: &Company, tally: Tally, now: DateTime<Utc>) {
        let policy = self.spec.policy;
        let files = tally.counted();
        let watch = self.watches.entry(c.name.clone()).or_default();
        let Some(notice) = alerts::step(&mut watch.alert, files, &policy, now) else {
            return;
        };
        let reserved = tally.reserved;
        let t = policy.thresholds;
        let thresholds = json!({ "warning": t.warning, "critical": t.critical, "trigger": t.trigger, "emergency": t.emergency, "danger": t.danger });
        // The level named is the company's real level, the same word status and the trigger use.
        let level = t.level(files);
        let name = sanitize(c.name.as_ref());
        let ev = match notice {
            Notice::Raised(_) => Event::new(
                "level_raised",
                level.as_str(),
                format!(
                    "{name} reached {files} counted files ({reserved} reserved pre-keys not counted): {level}"
                ),
            ),
            Notice::Repeat(_) => Event::new(
                "level_repeat",
                level.as_str(),
                format!(
                    "{name} is still {level} at {files} counted files ({reserved} reserved pre-keys not counted)"
                ),
            ),
            Notice::Resolved => Event::new(
                "resolved",
                level.as_str(),
                format!(
                    "{name} is healthy again at {files} counted files ({reserved} reserved pre-keys not counted)"
                ),
            ),
        };
        let counts =
            json!({ "files": tally.files, "reserved_pre_keys": reserved, "counted": files });
        self.queue(
            ev.company(&name, tally.files)
                .thresholds(thresholds)
                .details(counts),
        );
    }

    /// One alert when a company's creds.json breaks, one "resolved" when it is readable again.
    fn creds_alert(&mut self, c: &Company, files: usize, problem: Option<&str>) {
        let name = sanitize(c.name.as_ref());
        let watch = self.watches.entry(c.name.clone()).or_default();
        let ev = match (problem, watch.creds_alert) {
            (Some(p), false) => {
                watch.creds_alert = true;
                Event::new(
                    "creds_corrupt",
                    Level::Emergency.as_str(),
                    format!("{name}: {p}"),
                )
            }
            (None, true) => {
                watch.creds_alert = false;
                Event::new(
                    "creds_resolved",
                    Level::Healthy.as_str(),
                    format!("{name}: creds.json is readable again"),
                )
            }
            _ => return,
        };
        self.queue(ev.company(&name, files));
    }

    /// An emergency cleanup through the same path as `cleanup --emergency` (same lock), at most
    /// once per trigger cooldown, remembered across restarts. Returns the new count and what it
    /// did, in words.
    fn auto_clean(
        &mut self,
        source: &mut dyn Fleet,
        c: &Company,
        tally: Tally,
        now: DateTime<Utc>,
    ) -> Option<(Tally, String)> {
        let name = sanitize(c.name.as_ref());
        let record = match records::try_read_company(self.state, &c.name) {
            Ok(r) => r,
            Err(e) => {
                warn!(company = %name, error = %e, "auto-cleanup skipped: cannot read the company's record");
                return None;
            }
        };
        // One cooldown with the trigger's (core::trigger's rule): an emergency trigger's mark
        // or an auto-cleanup's on any host keeps it back, a normal trigger's does not. Read
        // first, so a tick of a company in cooldown writes nothing.
        let cooldown = self.spec.cooldown;
        let marks = trigger::cooldown_marks(&record);
        if trigger::cooling_down(TriggerLevel::Emergency, cooldown, &marks, now).is_some() {
            return None;
        }
        // The wrong user would fail file by file: say it once (until it is fixed) instead.
        if let Err(why) = source
            .check_access(std::slice::from_ref(c), self.state.path())
            .map(|_| ())
            .map_err(|d| d.message)
        {
            let watch = self.watches.entry(c.name.clone()).or_default();
            if !watch.access_denied {
                watch.access_denied = true;
                let level = self.spec.policy.thresholds.level(tally.counted());
                let ev = Event::new(
                    "cleanup_failed",
                    level.as_str(),
                    format!("auto-cleanup of {name} not possible: {why}"),
                );
                self.queue(ev.company(&name, tally.files));
            }
            return None;
        }
        self.watches
            .entry(c.name.clone())
            .or_default()
            .access_denied = false;
        let spec = CleanSpec {
            rules: self.spec.emergency_rules,
            dry_run: false,
            trash: self.spec.trash,
            verbose: false,
            now: now.into(),
            run_id: self.state.run_id(now),
            holder: crate::core::lock::holder_text("monitor", now),
            pause_before_remove: None,
            creds_from: self.spec.creds_from.clone(),
        };
        // Marked before cleaning, in one step with the check (trigger::claim says why): of two
        // hosts ticking together, or a monitor and a trigger, one cleans.
        let mut before = None;
        let claimed = trigger::claim(
            self.state,
            &c.name,
            TriggerLevel::Emergency,
            cooldown,
            now,
            |r| {
                before = r.auto_cleanup;
                r.auto_cleanup = Some(now);
            },
        );
        match claimed {
            Ok(None) => {}
            Ok(Some(_)) => return None, // another host or layer just started the cooldown
            Err(e) => {
                warn!(company = %name, error = %e, "auto-cleanup skipped: cannot start the cooldown in the company's record");
                return None;
            }
        }
        let report = source.clean(c, self.state, &spec);
        if report.status == Status::Busy {
            // Someone else is cleaning it right now: nothing was done, so no cooldown either
            // (unless another writer marked it since).
            if let Err(e) = records::update_company(self.state, &c.name, |r| {
                if r.auto_cleanup == Some(now) {
                    r.auto_cleanup = before;
                }
            }) {
                warn!(company = %name, error = %e, "cannot take back the auto-cleanup's cooldown; it starts without a cleanup");
            }
            return None;
        }
        if let Err(e) =
            records::record_cleanup(self.state, &report, "monitor", true, spec.trash, now)
        {
            warn!(company = %name, error = %e, "cannot record the auto-cleanup");
        }
        let level = self.spec.policy.thresholds.level(tally.counted());
        let words = crate::core::report::removal_words(&report, "removed");
        let ev =
            if report.status == Status::Failed {
                Event::new(
                    "cleanup_failed",
                    level.as_str(),
                    format!(
                        "auto-cleanup of {name} failed: {}",
                        report.error.as_deref().unwrap_or("")
                    ),
                )
            } else {
                Event::new(
                "cleanup_finished",
                level.as_str(),
                format!("auto-cleanup of {name} at {} counted files: {words}", tally.counted()),
            )
            .details(json!({
                "removed": report.removed,
                "removed_pre_keys": report.removed_by_type.get(&Kind::PreKey).copied().unwrap_or(0),
                "removed_reserved_pre_keys": report.reserved_removed(),
                "remaining": report.files_after,
                "remaining_reserved_pre_keys": report.reserved_after,
                "remaining_counted": report.counted_after(),
                "run_id": report.run_id,
            }))
            };
        self.queue(ev.company(&name, tally.files));
        (report.status == Status::Ok).then(|| {
            let after = Tally {
                files: report.files_after,
                reserved: report.reserved_after,
            };
            (after, words)
        })
    }

    /// One history point per slot (an hour), not one write per tick.
    fn history(&mut self, c: &Company, files: usize, now: DateTime<Utc>) {
        let slot = now.timestamp().div_euclid(records::HISTORY.resolution_secs);
        let watch = self.watches.entry(c.name.clone()).or_default();
        if watch.history_slot == Some(slot) {
            return;
        }
        watch.history_slot = Some(slot);
        let sample = records::Sample(now.timestamp(), files as u32);
        if let Err(e) = records::update_company(self.state, &c.name, |r| {
            records::add_sample(&mut r.history, sample, records::HISTORY)
        }) {
            warn!(company = %sanitize(c.name.as_ref()), error = %e, "cannot record history");
        }
    }

    fn health_check(&mut self, c: &Company, url: &str) {
        let Some(client) = &self.health else { return };
        let id = c
            .name
            .strip_prefix(&self.spec.company_prefix)
            .unwrap_or(&c.name);
        let url = url.replace("{company}", &c.name).replace("{id}", id);
        let ok = client
            .get(&url)
            .send()
            .is_ok_and(|r| r.status().is_success());
        let limit = self.spec.health_failures;
        let name = sanitize(c.name.as_ref());
        let watch = self.watches.entry(c.name.clone()).or_default();
        let ev = if ok {
            watch.health_failures = 0;
            if !watch.health_down {
                return;
            }
            watch.health_down = false;
            Event::new(
                "health_recovered",
                Level::Healthy.as_str(),
                format!("{name} connection check passes again"),
            )
        } else {
            watch.health_failures += 1;
            if watch.health_failures != limit {
                return;
            }
            watch.health_down = true;
            Event::new(
                "health_failed",
                Level::Critical.as_str(),
                format!("{name} connection check failed {limit} times in a row"),
            )
        };
        self.queue(ev.company(&name, 0));
    }

    /// Alerts when the daily cleanup or the trigger stopped running (cron broken).
    fn watch_cron(&mut self, runs: &Runs, now: DateTime<Utc>) {
        let repeat = dur(self.spec.policy.repeat_warning);
        let checks = [
            (
                "cleanup",
                runs.cleanup.last_success,
                self.spec.cleanup_stale_after,
            ),
            (
                "trigger",
                runs.trigger.last_success.or(runs.trigger.last_start),
                self.spec.trigger_stale_after,
            ),
        ];
        for (name, last, limit) in checks {
            let w = if name == "cleanup" {
                &mut self.cleanup_stale
            } else {
                &mut self.trigger_stale
            };
            let ev = match cron_step(w, last, self.started, dur(limit), repeat, now) {
                Some(StaleNotice::Stale) => {
                    let when =
                        last.map_or("never".to_owned(), |t| crate::core::util::fmt_time(t, now));
                    Event::new(
                        "cron_stale",
                        Level::Warning.as_str(),
                        format!("no successful {name} run since {when}: check cron"),
                    )
                }
                Some(StaleNotice::Recovered) => Event::new(
                    "cron_resolved",
                    Level::Healthy.as_str(),
                    format!("{name} is running again"),
                ),
                None => continue,
            };
            self.queue(ev.details(json!({ "command": name })));
        }
    }

    fn metrics(
        &self,
        rows: &[Row],
        by_type: &[(String, TypeCounts)],
        runs: &Runs,
        now: DateTime<Utc>,
    ) -> Exposition {
        exposition::monitor_metrics(&exposition::MonitorFacts {
            rows,
            by_type,
            runs,
            now,
            sent: self.outbox.sent(),
            failed: self.outbox.failed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap()
    }

    #[test]
    fn a_stale_reminder_sent_in_the_future_counts_as_sent_now() {
        let mut w = StaleWatch {
            stale: true,
            last_sent: Some(t(24 * 365)),
        };
        let limit = chrono::Duration::hours(26);
        let repeat = chrono::Duration::hours(6);
        assert_eq!(cron_step(&mut w, None, t(0), limit, repeat, t(30)), None);
        assert_eq!(
            cron_step(&mut w, None, t(0), limit, repeat, t(36)),
            Some(StaleNotice::Stale)
        );
    }

    #[test]
    fn cron_watch_raises_repeats_and_recovers() {
        let mut w = StaleWatch::default();
        let limit = chrono::Duration::hours(26);
        let repeat = chrono::Duration::hours(6);
        // Nothing recorded: counted from the monitor's start.
        assert_eq!(cron_step(&mut w, None, t(0), limit, repeat, t(25)), None);
        assert_eq!(
            cron_step(&mut w, None, t(0), limit, repeat, t(27)),
            Some(StaleNotice::Stale)
        );
        assert_eq!(cron_step(&mut w, None, t(0), limit, repeat, t(30)), None);
        assert_eq!(
            cron_step(&mut w, None, t(0), limit, repeat, t(33)),
            Some(StaleNotice::Stale),
            "repeats"
        );
        assert_eq!(
            cron_step(&mut w, Some(t(34)), t(0), limit, repeat, t(35)),
            Some(StaleNotice::Recovered)
        );
        assert_eq!(
            cron_step(&mut w, Some(t(34)), t(0), limit, repeat, t(36)),
            None
        );
    }
}
