//! Configuration: built-in defaults < config file < environment < flags, resolved once into a
//! plain [`Config`]. Flags and environment variables come through clap (`env = …`), so they
//! arrive here as `Option`s that, when set, beat the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::cli::{GlobalArgs, LogFormat};
use crate::core::notify::NotifyConfig;
use crate::core::rules::Rules;

pub const DEFAULT_SESSIONS_PATH: &str = "/opt/ai-admin/baileys_sessions";
pub const DEFAULT_PREFIX: &str = "company_";
pub const STATE_DIR_NAME: &str = ".janitor";

/// A usage or configuration error: exit code 2, nothing touched.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

#[derive(Clone, Debug)]
pub struct Config {
    pub sessions_path: PathBuf,
    pub single_tenant: bool,
    pub company_prefix: String,
    pub state_dir: PathBuf,
    pub log_level: String,
    pub log_format: LogFormat,
    pub rules: Rules,
    pub emergency_rules: Rules,
    pub trash: bool,
    pub trash_retention: Duration,
    pub trigger: TriggerConfig,
    pub notify: NotifyConfig,
    pub monitor: MonitorConfig,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MonitorConfig {
    pub interval: Duration,
    pub warning: usize,
    pub critical: usize,
    pub emergency: usize,
    pub repeat_warning: Duration,
    pub repeat_critical: Duration,
    pub repeat_emergency: Duration,
    /// A level drops only once the count is this many files below its threshold.
    pub hysteresis: usize,
    pub auto_cleanup: bool,
    pub cleanup_stale_after: Duration,
    pub trigger_stale_after: Duration,
    pub health_failures: u32,
}

impl Config {
    /// All five thresholds of the spec's table.
    pub fn thresholds(&self) -> crate::core::level::Thresholds {
        crate::core::level::Thresholds {
            warning: self.monitor.warning,
            critical: self.monitor.critical,
            trigger: self.trigger.threshold,
            emergency: self.monitor.emergency,
            danger: self.trigger.emergency_threshold,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TriggerConfig {
    /// Files at which a company gets a normal cleanup.
    pub threshold: usize,
    /// Files at which it gets an emergency cleanup.
    pub emergency_threshold: usize,
    /// A company cleaned by the trigger is not triggered again within this.
    pub cooldown: Duration,
}

// ---- the file, as written -------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    sessions_path: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    company_prefix: Option<String>,
    single_tenant: Option<bool>,
    log_level: Option<String>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    cleanup: FileRules,
    #[serde(default)]
    emergency: FileRules,
    #[serde(default)]
    trash: FileTrash,
    #[serde(default)]
    trigger: FileTrigger,
    #[serde(default)]
    notify: FileNotify,
    #[serde(default)]
    monitor: FileMonitor,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMonitor {
    #[serde(default, deserialize_with = "duration")]
    interval: Option<Duration>,
    warning: Option<usize>,
    critical: Option<usize>,
    emergency: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    repeat_warning: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    repeat_critical: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    repeat_emergency: Option<Duration>,
    hysteresis: Option<usize>,
    auto_cleanup: Option<bool>,
    #[serde(default, deserialize_with = "duration")]
    cleanup_stale_after: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    trigger_stale_after: Option<Duration>,
    health_failures: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTrigger {
    threshold: Option<usize>,
    emergency_threshold: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    cooldown: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNotify {
    webhook: Option<String>,
    telegram_bot_token: Option<String>,
    telegram_chat_id: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    timeout: Option<Duration>,
    retries: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    budget: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRules {
    #[serde(default, deserialize_with = "duration")]
    session_max_age: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    sender_key_max_age: Option<Duration>,
    max_pre_keys: Option<usize>,
    #[serde(default, deserialize_with = "duration")]
    min_file_age: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    tmp_max_age: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTrash {
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "duration")]
    retention: Option<Duration>,
}

/// `"14d"`, `"6h"`, `"90s"` (humantime), never a bare number: units are not guessed.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        format!("invalid duration {s:?} ({e}); write it like \"14d\", \"6h\" or \"10m\"")
    })
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        let msg = e
            .to_string()
            .replace('\n', " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        usage(format!("config file {}: {msg}", path.display()))
    })
}

fn resolve_rules(base: Rules, file: &FileRules, table: &str) -> anyhow::Result<Rules> {
    let r = Rules {
        session_max_age: file.session_max_age.unwrap_or(base.session_max_age),
        sender_key_max_age: file.sender_key_max_age.unwrap_or(base.sender_key_max_age),
        max_pre_keys: file.max_pre_keys.unwrap_or(base.max_pre_keys),
        min_age: file.min_file_age.unwrap_or(base.min_age),
        tmp_max_age: file.tmp_max_age.unwrap_or(base.tmp_max_age),
    };
    let ten_years = Duration::from_secs(10 * 365 * 86_400);
    let check = |key: &str, v: Duration, min: Duration| -> anyhow::Result<()> {
        if v < min || v > ten_years {
            return Err(usage(format!(
                "config key {table}.{key} = {}: must be between {} and 10 years",
                humantime::format_duration(v),
                humantime::format_duration(min)
            )));
        }
        Ok(())
    };
    check(
        "session_max_age",
        r.session_max_age,
        Duration::from_secs(3600),
    )?;
    check(
        "sender_key_max_age",
        r.sender_key_max_age,
        Duration::from_secs(3600),
    )?;
    // The live-app guard can be moved, not switched off: Baileys caches keys for ~5 minutes.
    check("min_file_age", r.min_age, Duration::from_secs(5 * 60))?;
    check("tmp_max_age", r.tmp_max_age, Duration::from_secs(5 * 60))?;
    if r.max_pre_keys > 1_000_000 {
        return Err(usage(format!(
            "config key {table}.max_pre_keys = {}: at most 1000000",
            r.max_pre_keys
        )));
    }
    Ok(r)
}

impl Config {
    /// Resolves the configuration from the global flags (which already carry their environment
    /// variables) and the config file they name.
    pub fn load(g: &GlobalArgs) -> anyhow::Result<Config> {
        let file = match &g.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let sessions_path = g
            .sessions_path
            .clone()
            .or(file.sessions_path.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SESSIONS_PATH));
        let single_tenant = g.single_tenant
            || g.multitenancy
                .map(|m| !m)
                .or(file.single_tenant)
                .unwrap_or(false);
        let company_prefix = g
            .company_prefix
            .clone()
            .or(file.company_prefix.clone())
            .unwrap_or_else(|| DEFAULT_PREFIX.into());
        if company_prefix.is_empty() || company_prefix.contains('/') {
            return Err(usage(format!(
                "company prefix {company_prefix:?} must be non-empty and contain no '/'"
            )));
        }
        let state_dir = g
            .state_dir
            .clone()
            .or(file.state_dir.clone())
            .unwrap_or_else(|| default_state_dir(&sessions_path, single_tenant));
        let log_level = g
            .log_level
            .clone()
            .or(file.log_level.clone())
            .unwrap_or_else(|| "info".into());
        if crate::logging::parse_level(&log_level).is_none() {
            return Err(usage(format!(
                "log level {log_level:?} is not one of error, warn, info, debug, trace"
            )));
        }
        let rules = resolve_rules(Rules::NORMAL, &file.cleanup, "cleanup")?;
        let emergency_rules = resolve_rules(Rules::EMERGENCY, &file.emergency, "emergency")?;
        let trash_retention = file
            .trash
            .retention
            .unwrap_or(Duration::from_secs(7 * 86_400));
        if trash_retention < Duration::from_secs(3600) {
            return Err(usage("config key trash.retention: at least 1h"));
        }
        let trigger = TriggerConfig {
            threshold: file.trigger.threshold.unwrap_or(175),
            emergency_threshold: file.trigger.emergency_threshold.unwrap_or(185),
            cooldown: file
                .trigger
                .cooldown
                .unwrap_or(Duration::from_secs(6 * 3600)),
        };
        check_thresholds(
            "trigger",
            &[
                ("threshold", trigger.threshold),
                ("emergency_threshold", trigger.emergency_threshold),
            ],
        )?;
        let notify = resolve_notify(g, &file.notify)?;
        let monitor = resolve_monitor(g, &file.monitor)?;
        Ok(Config {
            monitor,
            trigger,
            notify,
            sessions_path,
            single_tenant,
            company_prefix,
            state_dir,
            log_level,
            log_format: g.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
            rules,
            emergency_rules,
            trash: file.trash.enabled.unwrap_or(true),
            trash_retention,
        })
    }
}

/// Thresholds must be positive, sane and strictly rising.
pub fn check_thresholds(table: &str, values: &[(&str, usize)]) -> anyhow::Result<()> {
    for (key, v) in values {
        if *v == 0 || *v > 10_000_000 {
            return Err(usage(format!(
                "config key {table}.{key} = {v}: must be between 1 and 10000000"
            )));
        }
    }
    for w in values.windows(2) {
        if w[0].1 >= w[1].1 {
            return Err(usage(format!(
                "config key {table}.{} = {} must be below {table}.{} = {}",
                w[0].0, w[0].1, w[1].0, w[1].1
            )));
        }
    }
    Ok(())
}

fn resolve_monitor(g: &GlobalArgs, f: &FileMonitor) -> anyhow::Result<MonitorConfig> {
    let m = MonitorConfig {
        interval: f.interval.unwrap_or(Duration::from_secs(60)),
        warning: f.warning.unwrap_or(150),
        critical: f.critical.unwrap_or(170),
        emergency: f.emergency.unwrap_or(180),
        repeat_warning: f.repeat_warning.unwrap_or(Duration::from_secs(6 * 3600)),
        repeat_critical: f.repeat_critical.unwrap_or(Duration::from_secs(30 * 60)),
        repeat_emergency: f.repeat_emergency.unwrap_or(Duration::from_secs(5 * 60)),
        hysteresis: f.hysteresis.unwrap_or(5),
        auto_cleanup: g.auto_cleanup.or(f.auto_cleanup).unwrap_or(false),
        cleanup_stale_after: f
            .cleanup_stale_after
            .unwrap_or(Duration::from_secs(26 * 3600)),
        trigger_stale_after: f
            .trigger_stale_after
            .unwrap_or(Duration::from_secs(2 * 3600)),
        health_failures: f.health_failures.unwrap_or(3),
    };
    check_thresholds(
        "monitor",
        &[
            ("warning", m.warning),
            ("critical", m.critical),
            ("emergency", m.emergency),
        ],
    )?;
    if m.interval < Duration::from_millis(10) || m.interval > Duration::from_secs(86_400) {
        return Err(usage("config key monitor.interval: between 10ms and 1d"));
    }
    for (key, v) in [
        ("repeat_warning", m.repeat_warning),
        ("repeat_critical", m.repeat_critical),
        ("repeat_emergency", m.repeat_emergency),
        ("cleanup_stale_after", m.cleanup_stale_after),
        ("trigger_stale_after", m.trigger_stale_after),
    ] {
        if v < Duration::from_secs(1) || v > Duration::from_secs(30 * 86_400) {
            return Err(usage(format!(
                "config key monitor.{key}: between 1s and 30d"
            )));
        }
    }
    if m.hysteresis > m.warning {
        return Err(usage(
            "config key monitor.hysteresis: at most monitor.warning",
        ));
    }
    if m.health_failures == 0 || m.health_failures > 1000 {
        return Err(usage(
            "config key monitor.health_failures: between 1 and 1000",
        ));
    }
    Ok(m)
}

fn resolve_notify(g: &GlobalArgs, f: &FileNotify) -> anyhow::Result<NotifyConfig> {
    let d = NotifyConfig::default();
    let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
    let n = NotifyConfig {
        webhook: non_empty(&g.notification_webhook).or(non_empty(&f.webhook)),
        telegram_token: non_empty(&g.telegram_bot_token).or(non_empty(&f.telegram_bot_token)),
        telegram_chat_id: non_empty(&g.telegram_chat_id).or(non_empty(&f.telegram_chat_id)),
        telegram_api: g.telegram_api.clone().unwrap_or(d.telegram_api),
        timeout: f.timeout.unwrap_or(d.timeout),
        retries: f.retries.unwrap_or(d.retries),
        budget: f.budget.unwrap_or(d.budget),
        max_retry_after: d.max_retry_after,
    };
    if let Some(w) = &n.webhook
        && !(w.starts_with("http://") || w.starts_with("https://"))
    {
        // Never echo the URL: it is a secret.
        return Err(usage(
            "the notification webhook must be an http:// or https:// URL",
        ));
    }
    if n.timeout.is_zero() || n.timeout > Duration::from_secs(60) {
        return Err(usage("config key notify.timeout: between 1s and 60s"));
    }
    if n.budget < n.timeout || n.budget > Duration::from_secs(300) {
        return Err(usage(
            "config key notify.budget: at least notify.timeout and at most 5m",
        ));
    }
    if n.retries > 10 {
        return Err(usage("config key notify.retries: at most 10"));
    }
    Ok(n)
}

/// `<sessions>/.janitor`, or for a single auth folder `<parent>/.janitor`: never inside an auth
/// folder, and on the same file system so the trash is a rename.
pub fn default_state_dir(sessions_path: &Path, single_tenant: bool) -> PathBuf {
    if single_tenant {
        let parent = sessions_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        parent.join(STATE_DIR_NAME)
    } else {
        sessions_path.join(STATE_DIR_NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn load(args: &[&str], toml: Option<&str>) -> anyhow::Result<Config> {
        let tmp = tempfile::tempdir().unwrap();
        let mut argv = vec!["baileys-janitor".to_string()];
        if let Some(t) = toml {
            let p = tmp.path().join("c.toml");
            std::fs::write(&p, t).unwrap();
            argv.push("--config".into());
            argv.push(p.display().to_string());
        }
        argv.extend(args.iter().map(|s| s.to_string()));
        argv.push("cleanup".into());
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        Config::load(&cli.global)
    }

    #[test]
    fn defaults_are_the_specs() {
        let c = load(&[], None).unwrap();
        assert_eq!(c.sessions_path, PathBuf::from(DEFAULT_SESSIONS_PATH));
        assert_eq!(
            c.state_dir,
            PathBuf::from("/opt/ai-admin/baileys_sessions/.janitor")
        );
        assert_eq!(c.rules, Rules::NORMAL);
        assert_eq!(c.emergency_rules, Rules::EMERGENCY);
        assert!(c.trash);
    }

    #[test]
    fn file_then_flag() {
        let toml = r#"
            sessions_path = "/srv/s"
            [cleanup]
            session_max_age = "21d"
            max_pre_keys = 80
            [emergency]
            sender_key_max_age = "12h"
        "#;
        let c = load(&[], Some(toml)).unwrap();
        assert_eq!(c.sessions_path, PathBuf::from("/srv/s"));
        assert_eq!(c.rules.session_max_age, Duration::from_secs(21 * 86_400));
        assert_eq!(c.rules.max_pre_keys, 80);
        assert_eq!(c.rules.sender_key_max_age, Rules::NORMAL.sender_key_max_age);
        assert_eq!(
            c.emergency_rules.sender_key_max_age,
            Duration::from_secs(12 * 3600)
        );
        let c = load(&["--sessions-path", "/flag"], Some(toml)).unwrap();
        assert_eq!(c.sessions_path, PathBuf::from("/flag"));
    }

    #[test]
    fn bad_files_name_the_key() {
        let err = |t: &str| load(&[], Some(t)).unwrap_err().to_string();
        assert!(err("[cleanup]\nsession_max_ag = \"1d\"").contains("session_max_ag"));
        assert!(err("[cleanup]\nsession_max_age = 14").contains("session_max_age"));
        assert!(err("[cleanup]\nsession_max_age = \"fortnight\"").contains("fortnight"));
        assert!(err("[cleanup]\nmax_pre_keys = -1").contains("max_pre_keys"));
        assert!(err("[cleanup]\nmin_file_age = \"1s\"").contains("cleanup.min_file_age"));
        assert!(
            err("[cleanup]\nsession_max_age = \"100000d\"").contains("cleanup.session_max_age")
        );
        assert!(err("bogus = 1").contains("bogus"));
        let e = load(&["--config", "/nonexistent/x.toml"], None).unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some());
    }

    #[test]
    fn thresholds_must_rise() {
        let e = load(
            &[],
            Some("[trigger]\nthreshold = 190\nemergency_threshold = 185"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("trigger.threshold = 190 must be below"),
            "{e}"
        );
        let e = load(&[], Some("[trigger]\nthreshold = 0")).unwrap_err();
        assert!(e.to_string().contains("trigger.threshold"), "{e}");
        let c = load(&[], Some("[trigger]\ncooldown = \"1h\"")).unwrap();
        assert_eq!(c.trigger.cooldown, Duration::from_secs(3600));
    }

    #[test]
    fn a_bad_webhook_is_refused_without_echoing_it() {
        let e = load(&[], Some("[notify]\nwebhook = \"ftp://secret-token\"")).unwrap_err();
        assert!(!e.to_string().contains("secret-token"), "{e}");
    }

    #[test]
    fn single_tenant_state_dir_is_beside_the_folder() {
        let c = load(&["--single-tenant", "--sessions-path", "/srv/auth"], None).unwrap();
        assert!(c.single_tenant);
        assert_eq!(c.state_dir, PathBuf::from("/srv/.janitor"));
    }
}
