//! Notifications: a JSON webhook (Slack's `text` and Discord's `content` both set, plus structured
//! fields) and Telegram's `sendMessage`; and dead-man's-switch pings for cron.
//!
//! A notification never blocks or fails the job: every message has a time budget across its
//! attempts, 5xx and network errors are retried with backoff, 429 honours `Retry-After` up to a
//! cap, and a failure is logged and counted. Secrets (the webhook URL's path, the bot token) never
//! reach a log line or an error: only the host is ever printed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tracing::{debug, warn};

#[derive(Clone, Debug)]
pub struct NotifyConfig {
    pub webhook: Option<String>,
    pub telegram_token: Option<String>,
    pub telegram_chat_id: Option<String>,
    /// Base of the Telegram Bot API (changed only by tests).
    pub telegram_api: String,
    /// One attempt's timeout.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// All attempts of one message together never take longer than this.
    pub budget: Duration,
    /// A 429's `Retry-After` longer than this is not waited for.
    pub max_retry_after: Duration,
    /// At least this long between two messages on one channel (Slack takes about one a second).
    pub pace: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            webhook: None,
            telegram_token: None,
            telegram_chat_id: None,
            telegram_api: "https://api.telegram.org".into(),
            timeout: Duration::from_secs(5),
            retries: 2,
            budget: Duration::from_secs(12),
            max_retry_after: Duration::from_secs(10),
            pace: Duration::from_secs(1),
        }
    }
}

/// One thing worth telling an operator.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// `trigger_fired`, `cleanup_finished`, `cleanup_failed`, `still_above_threshold`, …
    pub event: &'static str,
    pub level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<usize>,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub thresholds: Value,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub details: Value,
    pub host: String,
    pub time: String,
    /// The human sentence (also sent as `text` / `content`).
    pub message: String,
    /// Set when a dry run was asked to notify (`--notify`): nothing was changed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// In a digest: every event it summarises, with all their fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

impl Event {
    pub fn new(event: &'static str, level: impl Into<String>, message: impl Into<String>) -> Event {
        Event {
            event,
            level: level.into(),
            company: None,
            files: None,
            thresholds: Value::Null,
            details: Value::Null,
            host: hostname(),
            time: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            message: message.into(),
            dry_run: false,
            events: Vec::new(),
        }
    }

    pub fn company(mut self, company: &str, files: usize) -> Event {
        self.company = Some(company.to_owned());
        self.files = Some(files);
        self
    }

    pub fn thresholds(mut self, v: Value) -> Event {
        self.thresholds = v;
        self
    }

    pub fn details(mut self, v: Value) -> Event {
        self.details = v;
        self
    }

    /// The webhook body: the structured fields plus `text` (Slack) and `content` (Discord).
    /// The text names the host: one channel often serves a fleet, and the on-call person reads
    /// the text, not the JSON.
    pub fn webhook_body(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        let text = format!(
            "[baileys-janitor on {}]{} {}",
            crate::core::util::sanitize(std::ffi::OsStr::new(&self.host)),
            if self.dry_run { " (dry run)" } else { "" },
            self.message
        );
        v["text"] = Value::String(text.clone());
        v["content"] = Value::String(text);
        v
    }
}

pub use crate::core::util::hostname;

/// Lines of a digest's text; the rest are counted, and all are in `events`.
const DIGEST_LINES: usize = 10;

/// How urgent an event is, for "worst first": failures, then by level, then by files.
fn urgency(ev: &Event) -> (u8, u8, usize) {
    let failed = ev.event.ends_with("_failed") || ev.event == "tick_failing";
    let level = ev
        .level
        .parse::<crate::core::level::Level>()
        .map_or(0, |l| l.code());
    (u8::from(failed), level, ev.files.unwrap_or(0))
}

/// The events of one run or one monitor tick as one message: the worst first, then counts.
/// One event goes out as itself; none, as nothing.
pub fn digest(mut events: Vec<Event>, what: &str) -> Option<Event> {
    match events.len() {
        0 => return None,
        1 => {
            let mut ev = events.pop()?;
            ev.events = vec![ev.clone()];
            return Some(ev);
        }
        _ => {}
    }
    events.sort_by_key(|e| std::cmp::Reverse(urgency(e)));
    let companies: std::collections::BTreeSet<&str> =
        events.iter().filter_map(|e| e.company.as_deref()).collect();
    let mut by_event: std::collections::BTreeMap<&str, usize> = Default::default();
    for e in &events {
        *by_event.entry(e.event).or_default() += 1;
    }
    let counts: Vec<String> = by_event.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let mut text = format!(
        "{what}: {} across {} ({})",
        crate::core::util::plural(events.len(), "event"),
        crate::core::util::plural(companies.len(), "company"),
        counts.join(", ")
    );
    for e in events.iter().take(DIGEST_LINES) {
        text.push_str("\n• ");
        text.push_str(&e.message);
    }
    if events.len() > DIGEST_LINES {
        text.push_str(&format!("\n… and {} more", events.len() - DIGEST_LINES));
    }
    let worst = events[0].level.clone();
    let dry_run = events.iter().any(|e| e.dry_run);
    let mut ev = Event::new("digest", worst, text).details(json!({ "counts": by_event }));
    ev.dry_run = dry_run;
    ev.events = events;
    Some(ev)
}

/// Only the host of a URL, for logs: the path of a webhook URL is its secret.
pub fn safe_host(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
        })
        .unwrap_or_else(|| "(invalid url)".into())
}

pub struct Notifier {
    cfg: NotifyConfig,
    client: Option<reqwest::blocking::Client>,
    sent: AtomicU64,
    failed: AtomicU64,
    /// Past this, nothing more is sent: one run is never delayed beyond one budget.
    run_deadline: Option<Instant>,
    /// When each channel last sent, for pacing.
    last_sent: Mutex<Vec<(&'static str, Instant)>>,
}

impl Notifier {
    pub fn new(cfg: NotifyConfig) -> Notifier {
        let wanted = cfg.webhook.is_some()
            || (cfg.telegram_token.is_some() && cfg.telegram_chat_id.is_some());
        let client = if wanted {
            reqwest::blocking::Client::builder()
                .timeout(cfg.timeout)
                .connect_timeout(cfg.timeout)
                .user_agent(concat!("baileys-janitor/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| warn!(error = %e.without_url(), "cannot start the HTTP client; notifications are off"))
                .ok()
        } else {
            None
        };
        Notifier {
            cfg,
            client,
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            run_deadline: None,
            last_sent: Mutex::new(Vec::new()),
        }
    }

    /// A notifier for one run (cleanup, trigger): all its sends together take at most one
    /// `budget`, however many messages and however slow the channels.
    pub fn for_run(cfg: NotifyConfig) -> Notifier {
        let deadline = Instant::now() + cfg.budget;
        Notifier {
            run_deadline: Some(deadline),
            ..Notifier::new(cfg)
        }
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier::new(NotifyConfig::default())
    }

    pub fn enabled(&self) -> bool {
        self.client.is_some()
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Sends to every configured channel. Never fails; the outcome is logged and counted.
    pub fn send(&self, ev: &Event) {
        let Some(client) = &self.client else { return };
        if let Some(url) = &self.cfg.webhook {
            let body = ev.webhook_body();
            self.deliver(client, "webhook", url, &safe_host(url), &body);
        }
        if let (Some(token), Some(chat)) = (&self.cfg.telegram_token, &self.cfg.telegram_chat_id) {
            let url = format!(
                "{}/bot{}/sendMessage",
                self.cfg.telegram_api.trim_end_matches('/'),
                token
            );
            let body = json!({ "chat_id": chat, "text": ev.webhook_body()["text"] });
            self.deliver(
                client,
                "telegram",
                &url,
                &safe_host(&self.cfg.telegram_api),
                &body,
            );
        }
    }

    /// Waits until the channel's pace allows another message; false if the deadline is
    /// reached first.
    fn pace(&self, channel: &'static str, deadline: Instant) -> bool {
        let last = self
            .last_sent
            .lock()
            .ok()
            .and_then(|l| l.iter().find(|(c, _)| *c == channel).map(|(_, t)| *t));
        if let Some(t) = last {
            let ready = t + self.cfg.pace;
            if ready >= deadline {
                return false;
            }
            std::thread::sleep(ready.saturating_duration_since(Instant::now()));
        }
        if let Ok(mut l) = self.last_sent.lock() {
            l.retain(|(c, _)| *c != channel);
            l.push((channel, Instant::now()));
        }
        true
    }

    fn deliver(
        &self,
        client: &reqwest::blocking::Client,
        channel: &'static str,
        url: &str,
        host: &str,
        body: &Value,
    ) {
        let mut deadline = Instant::now() + self.cfg.budget;
        if let Some(run) = self.run_deadline {
            deadline = deadline.min(run);
        }
        if !self.pace(channel, deadline) {
            self.failed.fetch_add(1, Ordering::Relaxed);
            warn!(
                channel,
                host, "notification dropped: the run's notification budget is used up"
            );
            return;
        }
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let mut backoff = Duration::from_millis(500);
        let mut last_error = String::new();
        for attempt in 0..=self.cfg.retries {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                last_error = format!("time budget of {:?} used up", self.cfg.budget);
                break;
            }
            let result = client
                .post(url)
                .timeout(left.min(self.cfg.timeout))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone())
                .send();
            let wait = match result {
                Ok(resp) if resp.status().is_success() => {
                    self.sent.fetch_add(1, Ordering::Relaxed);
                    debug!(channel, host, attempt, "notification sent");
                    return;
                }
                Ok(resp) if resp.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                    let after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map(Duration::from_secs)
                        .unwrap_or(backoff);
                    last_error = format!("rate limited (429, retry after {after:?})");
                    if after > self.cfg.max_retry_after {
                        break;
                    }
                    after
                }
                Ok(resp) if resp.status().is_server_error() => {
                    last_error = format!("server answered {}", resp.status());
                    backoff
                }
                Ok(resp) => {
                    // 4xx other than 429: retrying will not help.
                    last_error = format!("server answered {}", resp.status());
                    break;
                }
                Err(e) => {
                    last_error = e.without_url().to_string();
                    backoff
                }
            };
            if attempt == self.cfg.retries || Instant::now() + wait >= deadline {
                break;
            }
            std::thread::sleep(wait);
            backoff *= 2;
        }
        self.failed.fetch_add(1, Ordering::Relaxed);
        warn!(channel, host, error = %last_error, "notification failed; the run goes on");
    }

    /// A dead-man's-switch ping (healthchecks.io style): `url`, `url/start`, `url/fail`.
    pub fn ping(&self, url: &str, suffix: &str) {
        let full = format!("{}{suffix}", url.trim_end_matches('/'));
        let client = match &self.client {
            Some(c) => c.clone(),
            None => match reqwest::blocking::Client::builder()
                .timeout(self.cfg.timeout)
                .build()
            {
                Ok(c) => c,
                Err(_) => return,
            },
        };
        match client.get(&full).timeout(self.cfg.timeout).send() {
            Ok(r) if r.status().is_success() => debug!(host = %safe_host(url), suffix, "ping sent"),
            Ok(r) => warn!(host = %safe_host(url), suffix, status = %r.status(), "ping failed"),
            Err(e) => {
                warn!(host = %safe_host(url), suffix, error = %e.without_url(), "ping failed")
            }
        }
    }
}

/// Notifications sent by one thread behind a bounded queue, so a hung channel delays neither
/// the monitor's ticks nor its exit.
pub struct Outbox {
    tx: Option<SyncSender<Event>>,
    done: Arc<AtomicBool>,
    notifier: Arc<Notifier>,
    dropped: AtomicU64,
}

impl Outbox {
    pub fn start(notifier: Notifier) -> Outbox {
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
            dropped: AtomicU64::new(0),
        }
    }

    pub fn send(&self, ev: Event) {
        if !self.notifier.enabled() {
            return;
        }
        if let Some(tx) = &self.tx
            && let Err(TrySendError::Full(_)) = tx.try_send(ev)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            warn!("notification queue full; notification dropped");
        }
    }

    pub fn sent(&self) -> u64 {
        self.notifier.sent()
    }

    /// Failed or dropped.
    pub fn failed(&self) -> u64 {
        self.notifier.failed() + self.dropped.load(Ordering::Relaxed)
    }

    /// Lets queued notifications go out, waiting at most `wait`.
    pub fn close(mut self, wait: Duration) {
        self.tx.take();
        let deadline = Instant::now() + wait;
        while !self.done.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_puts_the_worst_first_and_keeps_every_event() {
        let evs: Vec<Event> = (0..15)
            .map(|i| {
                Event::new("level_raised", "warning", format!("c{i} at warning"))
                    .company(&format!("c{i}"), 150 + i)
            })
            .chain([Event::new("cleanup_failed", "danger", "c99 failed").company("c99", 190)])
            .collect();
        let d = digest(evs, "monitor").unwrap();
        assert_eq!(d.event, "digest");
        assert_eq!(d.events.len(), 16);
        assert_eq!(d.events[0].company.as_deref(), Some("c99"));
        assert_eq!(d.level, "danger");
        assert!(
            d.message.contains("16 events across 16 companies"),
            "{}",
            d.message
        );
        assert!(d.message.contains("and 6 more"), "{}", d.message);
        let one = digest(vec![Event::new("x", "warning", "m")], "run").unwrap();
        assert_eq!(one.event, "x");
        assert!(digest(Vec::new(), "run").is_none());
    }

    #[test]
    fn webhook_body_has_slack_and_discord_fields() {
        let ev = Event::new("trigger_fired", "emergency", "company_1 has 190 files")
            .company("company_1", 190)
            .thresholds(json!({"trigger": 175, "emergency": 185}));
        let v = ev.webhook_body();
        // Regression (issue 20): the host was only in the JSON, not in what people read.
        assert_eq!(
            v["text"],
            format!(
                "[baileys-janitor on {}] company_1 has 190 files",
                hostname()
            )
        );
        assert_eq!(v["content"], v["text"]);
        assert_eq!(v["event"], "trigger_fired");
        assert_eq!(v["files"], 190);
        assert_eq!(v["thresholds"]["emergency"], 185);
        assert!(v.get("details").is_none());
    }

    #[test]
    fn safe_host_hides_the_path() {
        assert_eq!(
            safe_host("https://hooks.slack.com/services/T0/B0/SECRET"),
            "hooks.slack.com"
        );
        assert_eq!(safe_host("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
        assert_eq!(safe_host("not a url"), "(invalid url)");
    }

    #[test]
    fn disabled_sends_nothing() {
        let n = Notifier::disabled();
        assert!(!n.enabled());
        n.send(&Event::new("x", "info", "y"));
        assert_eq!((n.sent(), n.failed()), (0, 0));
    }
}
