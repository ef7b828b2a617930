//! What a run does to the outside world besides cleaning: run records in the state directory,
//! the metrics file, the dead-man's-switch ping and notifications. One [`RunEffects`] is built
//! per run; cleanup, trigger and monitor end their runs through it, so a dry run cannot leak a
//! side effect from some forgotten `if !dry_run`: it records nothing, pings nothing, marks its
//! metrics as dry and sends nothing unless `--notify` asked for it (then marked `dry_run`).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tracing::warn;

use crate::core::metrics::{self, RunFacts};
use crate::core::notify::{self, Event, Notifier, NotifyConfig};
use crate::core::records::{self, RunMark, Sample};
use crate::core::report::CompanyReport;
use crate::core::state::StateDir;

/// What a run's effects are made of (from the resolved configuration).
#[derive(Clone, Debug)]
pub struct EffectsSpec {
    /// `cleanup`, `trigger`, `monitor`.
    pub command: &'static str,
    pub dry_run: bool,
    pub notify_in_dry_run: bool,
    pub notify: NotifyConfig,
    pub ping_url: Option<String>,
    pub metrics_file: Option<PathBuf>,
}

/// How a run ended, for its record, ping, metrics and digest.
#[derive(Clone, Debug, Default)]
pub struct RunEnd {
    pub failed: bool,
    pub removed: usize,
    /// One line for `runs.json` and `status`.
    pub summary: String,
    /// Only a run over the whole fleet counts as the daily cleanup the monitor watches for.
    pub whole_fleet: bool,
    /// Record nothing in the state directory (it does not exist, and the run found no company:
    /// creating it would put a `.janitor` inside whatever folder a mistyped path names).
    pub skip_record: bool,
}

pub struct RunEffects<'a> {
    spec: EffectsSpec,
    state: &'a StateDir,
    notifier: Notifier,
    events: Mutex<Vec<Event>>,
    started: Instant,
    started_at: DateTime<Utc>,
}

impl<'a> RunEffects<'a> {
    pub fn new(spec: EffectsSpec, state: &'a StateDir, started_at: DateTime<Utc>) -> Self {
        let notifier = if spec.dry_run && !spec.notify_in_dry_run {
            Notifier::disabled()
        } else {
            Notifier::for_run(spec.notify.clone())
        };
        RunEffects {
            spec,
            state,
            notifier,
            events: Mutex::new(Vec::new()),
            started: Instant::now(),
            started_at,
        }
    }

    /// The run begins: the ping's `/start`.
    pub fn start(&self) {
        if let Some(url) = self.ping_url() {
            self.notifier.ping(url, "/start");
        }
    }

    fn ping_url(&self) -> Option<&str> {
        (!self.spec.dry_run)
            .then_some(self.spec.ping_url.as_deref())
            .flatten()
    }

    /// A company was cleaned: remembered for `status`, `restore` and the trigger. Returns the
    /// error so the caller can report that company (nothing is recorded in a dry run).
    pub fn record_cleanup(
        &self,
        report: &CompanyReport,
        emergency: bool,
        trashed: bool,
    ) -> std::io::Result<()> {
        if self.spec.dry_run {
            return Ok(());
        }
        records::record_cleanup(
            self.state,
            report,
            self.spec.command,
            emergency,
            trashed,
            self.started_at,
        )
    }

    /// Runs `f` on a company's record (cooldown, history, alert marks); not in a dry run.
    pub fn update_company(
        &self,
        company: &str,
        f: impl FnMut(&mut records::CompanyRecord),
    ) -> std::io::Result<()> {
        if self.spec.dry_run {
            return Ok(());
        }
        records::update_company(self.state, company, f)
    }

    /// One point of a company's file-count history.
    pub fn record_sample(&self, company: &str, files: usize, now: DateTime<Utc>) {
        let sample = Sample(now.timestamp(), files as u32);
        if let Err(e) = self.update_company(company, |r| {
            records::add_sample(&mut r.history, sample, records::HISTORY)
        }) {
            warn!(company = %crate::core::util::sanitize(company.as_ref()), error = %e, "cannot record history");
        }
    }

    /// Something to tell an operator: collected, and sent as one digest when the run ends.
    pub fn notify(&self, mut ev: Event) {
        if !self.notifier.enabled() {
            return;
        }
        ev.dry_run = self.spec.dry_run;
        if let Ok(mut e) = self.events.lock() {
            e.push(ev);
        }
    }

    /// The run is over: record it, send the digest, ping, write the metrics file.
    pub fn finish(self, end: &RunEnd) -> anyhow::Result<()> {
        let mut record_error = None;
        if !self.spec.dry_run
            && !end.skip_record
            && (end.whole_fleet || self.spec.command != "cleanup")
        {
            let now = Utc::now();
            let (command, started, summary) = (self.spec.command, self.started_at, &end.summary);
            let result = records::update_runs(self.state, |runs| {
                let mark: &mut RunMark = if command == "cleanup" {
                    &mut runs.cleanup
                } else {
                    &mut runs.trigger
                };
                mark.last_start = Some(started);
                if end.failed {
                    mark.last_failure = Some(now);
                } else {
                    mark.last_success = Some(now);
                }
                mark.summary = summary.clone();
            });
            if let Err(e) = result {
                record_error = Some(e);
            }
        }
        let events = std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some(digest) = notify::digest(events, self.spec.command) {
            self.notifier.send(&digest);
        }
        if let Some(url) = self.ping_url() {
            let failed = end.failed || record_error.is_some();
            self.notifier.ping(url, if failed { "/fail" } else { "" });
        }
        if let Some(path) = &self.spec.metrics_file {
            let m = metrics::run_metrics(&RunFacts {
                command: self.spec.command,
                dry_run: self.spec.dry_run,
                ok: !end.failed && record_error.is_none(),
                removed: end.removed,
                duration_secs: self.started.elapsed().as_secs_f64(),
                when: Utc::now().timestamp(),
                notifications_sent: self.notifier.sent(),
                notifications_failed: self.notifier.failed(),
            });
            if let Err(e) = m.write(path) {
                warn!(path = %path.display(), error = %e, "cannot write the metrics file");
            }
        }
        match record_error {
            Some(e) => Err(anyhow::Error::new(e).context(format!(
                "cannot record the run in {}",
                self.state.path().display()
            ))),
            None => Ok(()),
        }
    }
}
