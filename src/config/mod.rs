//! Configuration: built-in defaults < config file < environment < flags, resolved once into a
//! plain [`Config`] that commands only read. Every subcommand override (thresholds, cooldown,
//! interval, auto-cleanup, trash, dry run) is applied here, and every value is parsed and bounded
//! in [`layers`], whatever its source.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{Cli, Command};
use crate::core::level::Thresholds;
use crate::core::notify::NotifyConfig;
use crate::core::rules::{DEFAULT_PRE_KEY_MARGIN, PreKeyRule, Rules};
use crate::logging::LogFormat;

mod file;
pub mod layers;
mod secrets;

use file::{FileConfig, FilePreKeys, FileRules};
use layers::Layers;
pub use layers::{EnvFn, Origin, Setting};

pub const DEFAULT_SESSIONS_PATH: &str = "/opt/ai-admin/baileys_sessions";
pub const DEFAULT_PREFIX: &str = "company_";
pub const STATE_DIR_NAME: &str = ".janitor";
/// Read when neither `--config` nor `BAILEYS_JANITOR_CONFIG` names a file, if it exists.
pub const SYSTEM_CONFIG: &str = "/etc/baileys-janitor/config.toml";

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
    /// Where auth state lives (folders unless `--store` says otherwise).
    pub store: crate::core::store::StoreSpec,
    /// Finding no company folder is fine (a fresh install), not a failed run.
    pub allow_empty: bool,
    /// Account folders hold their creds.json (not Evolution API's folders: its creds are in
    /// its database), so a folder without one is an orphan worth reporting.
    pub creds_in_folder: bool,
    /// Evolution's files mode: the PostgreSQL database whose `"Session"` table holds the creds
    /// (`--creds` without `--store`); secret.
    pub folder_creds: Option<String>,
    pub log_level: String,
    pub log_format: LogFormat,
    pub rules: Rules,
    pub emergency_rules: Rules,
    pub trash: bool,
    pub trash_retention: Duration,
    /// How long files put back by `restore` are kept from every cleanup.
    pub restore_hold: Duration,
    /// How long `cleanup` waits for a company whose lock another run holds before it gives up
    /// on it (exit 75, run not recorded as a success).
    pub lock_wait: Duration,
    pub trigger: TriggerConfig,
    pub notify: NotifyConfig,
    pub monitor: MonitorConfig,
    pub run: RunConfig,
    /// Every effective value and where it came from (secrets redacted), for `config`.
    pub settings: Vec<Setting>,
    /// Said once at start (after logging is set up): a password on the command line.
    pub warnings: Vec<String>,
}

/// What this one run does to the outside world besides cleaning.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunConfig {
    pub dry_run: bool,
    /// Send notifications even in a dry run (marked `"dry_run": true`).
    pub notify_in_dry_run: bool,
    /// Dead-man's-switch URL: `/start`, success, `/fail`.
    pub ping_url: Option<String>,
    pub metrics_file: Option<PathBuf>,
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
    pub health_url: Option<String>,
    /// Ticks failing this many times in a row raise an alert of their own.
    pub tick_failures: u32,
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

impl Config {
    /// All five thresholds of the spec's table: the one level vocabulary of every command.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            warning: self.monitor.warning,
            critical: self.monitor.critical,
            trigger: self.trigger.threshold,
            emergency: self.monitor.emergency,
            danger: self.trigger.emergency_threshold,
        }
    }

    /// Resolves the configuration of this command line, reading the environment through `env`.
    pub fn resolve(cli: &Cli, env: EnvFn) -> anyhow::Result<Config> {
        let mut l = Layers::new(env);
        let o = Overrides::of(&cli.command);
        let g = &cli.global;

        let config_file = match (&g.config, l.env("BAILEYS_JANITOR_CONFIG")) {
            (Some(p), _) => Some((p.clone(), Origin::Flag("--config"))),
            (None, Some(p)) => Some((PathBuf::from(p), Origin::Env("BAILEYS_JANITOR_CONFIG"))),
            (None, None) => {
                // Packagers and tests can move the system file (tests must never read the
                // machine's own /etc/baileys-janitor/config.toml).
                let system = l
                    .env("BAILEYS_JANITOR_SYSTEM_CONFIG")
                    .unwrap_or_else(|| SYSTEM_CONFIG.to_owned());
                Path::new(&system)
                    .exists()
                    .then(|| (PathBuf::from(system), Origin::Default))
            }
        };
        let file = match &config_file {
            Some((p, _)) => file::read(p)?,
            None => FileConfig::default(),
        };
        if let Some((p, origin)) = &config_file {
            l.record("config", p.display().to_string(), origin.clone());
        }

        // `--layout` first: a server layout (openclaw, waha, evolution) moves the sessions path.
        let layout_name = l
            .text(
                "store.layout",
                flag(g.layout.clone(), "--layout"),
                Some("BAILEYS_JANITOR_STORE_LAYOUT"),
                file.store.layout.clone().or_else(|| file.layout.clone()),
                false,
            )
            .map(|n| n.trim().to_owned());
        let store_url_given = g.store.as_deref().is_some_and(|s| !s.trim().is_empty())
            || l.env("BAILEYS_JANITOR_STORE").is_some()
            || file.store.url.is_some();
        let server_layout = layout_name
            .as_deref()
            .and_then(server_folders)
            .filter(|_| !store_url_given);
        let base = l.text(
            "sessions_path",
            flag(path_text(&g.sessions_path), "--sessions-path"),
            Some("BAILEYS_SESSIONS_PATH"),
            file.sessions_path.as_ref().map(|p| p.display().to_string()),
            false,
        );
        let sessions_path = match (server_layout, base) {
            // The server's own base folder (given, or its default), then where it keeps accounts.
            (Some(sl), base) => {
                let base = base
                    .map(PathBuf::from)
                    .unwrap_or_else(|| (sl.default_base)(&l));
                let p = base.join(sl.accounts);
                l.record("sessions_path", p.display().to_string(), Origin::Default);
                p
            }
            (None, Some(p)) => PathBuf::from(p),
            (None, None) => {
                l.record(
                    "sessions_path",
                    DEFAULT_SESSIONS_PATH.into(),
                    Origin::Default,
                );
                PathBuf::from(DEFAULT_SESSIONS_PATH)
            }
        };
        // ENABLE_MULTITENANCY=false is the spec's way of saying --single-tenant.
        let multitenancy = match l.env("ENABLE_MULTITENANCY") {
            Some(v) => Some(
                crate::units::parse_bool(&v)
                    .map_err(|e| usage(format!("environment variable ENABLE_MULTITENANCY: {e}")))?,
            ),
            None => None,
        };
        let single_tenant = match multitenancy {
            Some(m) if !g.single_tenant => {
                l.record(
                    "single_tenant",
                    (!m).to_string(),
                    Origin::Env("ENABLE_MULTITENANCY"),
                );
                !m
            }
            _ => l.boolean(
                "single_tenant",
                g.single_tenant.then_some((true, "--single-tenant")),
                None,
                file.single_tenant,
                false,
            )?,
        };
        let company_prefix = l
            .text(
                "company_prefix",
                flag(g.company_prefix.clone(), "--company-prefix"),
                Some("BAILEYS_JANITOR_COMPANY_PREFIX"),
                file.company_prefix.clone(),
                false,
            )
            .unwrap_or_else(|| {
                // Server layouts name accounts as they like: every valid sub-folder is one.
                let p = if server_layout.is_some() {
                    ""
                } else {
                    DEFAULT_PREFIX
                };
                l.record("company_prefix", p.into(), Origin::Default);
                p.into()
            });
        if company_prefix.contains('/') || company_prefix.chars().any(char::is_control) {
            return Err(usage(format!(
                "company prefix {company_prefix:?} must contain no '/' or control characters"
            )));
        }
        let mut warnings = Vec::new();
        let (store, folder_creds) = resolve_store(
            &mut l,
            g,
            &file,
            layout_name.as_deref(),
            &mut warnings,
            // `config` shows where settings come from; it never reads a secret.
            !matches!(cli.command, Command::Config(_)),
        )?;
        // One spelling of the root for every run: `--sessions-path .` from inside a folder and
        // cron's absolute path must name the same state directory and take the same locks.
        let sessions_path = if store.is_folder() {
            let p = canonical(&sessions_path);
            l.resolved("sessions_path", p.display().to_string());
            p
        } else {
            sessions_path
        };
        let state_dir = match l.text(
            "state_dir",
            flag(path_text(&g.state_dir), "--state-dir"),
            Some("BAILEYS_JANITOR_STATE_DIR"),
            file.state_dir.as_ref().map(|p| p.display().to_string()),
            false,
        ) {
            Some(s) => {
                let p = canonical(Path::new(&s));
                l.resolved("state_dir", p.display().to_string());
                p
            }
            None => {
                let d = match &store {
                    crate::core::store::StoreSpec::Sqlite(p) => {
                        default_state_dir(p, p.extension().is_some_and(|e| e == "db"))
                    }
                    _ => default_state_dir(&sessions_path, single_tenant),
                };
                l.record("state_dir", d.display().to_string(), Origin::Default);
                d
            }
        };
        if store.is_folder() {
            state_outside_accounts(&state_dir, &sessions_path, single_tenant, &company_prefix)?;
        }
        let allow_empty = l.boolean(
            "allow_empty",
            g.allow_empty.then_some((true, "--allow-empty")),
            Some("BAILEYS_JANITOR_ALLOW_EMPTY"),
            file.allow_empty,
            false,
        )?;
        let log_level = l
            .text(
                "log_level",
                flag(g.log_level.clone(), "--log-level"),
                Some("BAILEYS_JANITOR_LOG"),
                file.log_level.clone(),
                false,
            )
            .unwrap_or_else(|| {
                l.record("log_level", "info".into(), Origin::Default);
                "info".into()
            });
        if crate::logging::parse_level(&log_level).is_none() {
            return Err(usage(format!(
                "log level {log_level:?} is not one of error, warn, info, debug, trace"
            )));
        }
        let log_format = match (g.log_format, l.env("BAILEYS_JANITOR_LOG_FORMAT")) {
            (Some(f), _) => {
                l.record(
                    "log_format",
                    f.as_str().into(),
                    Origin::Flag("--log-format"),
                );
                f
            }
            (None, Some(v)) => {
                let f = LogFormat::parse(&v).ok_or_else(|| {
                    usage(format!(
                        "environment variable BAILEYS_JANITOR_LOG_FORMAT: {v:?} is not text, json or journald"
                    ))
                })?;
                l.record(
                    "log_format",
                    f.as_str().into(),
                    Origin::Env("BAILEYS_JANITOR_LOG_FORMAT"),
                );
                f
            }
            (None, None) => {
                let (f, origin) = file
                    .log_format
                    .map_or((LogFormat::Text, Origin::Default), |f| (f, Origin::File));
                l.record("log_format", f.as_str().into(), origin);
                f
            }
        };

        let mut rules = resolve_rules(&mut l, Rules::NORMAL, &file.cleanup, RULE_KEYS_NORMAL)?;
        (rules.pre_keys, rules.pre_key_margin) =
            resolve_pre_keys(&mut l, &file.cleanup, &file.pre_keys)?;
        let mut emergency_rules = resolve_rules(
            &mut l,
            Rules::EMERGENCY,
            &file.emergency,
            RULE_KEYS_EMERGENCY,
        )?;
        emergency_rules.pre_key_margin = rules.pre_key_margin;
        emergency_rules.pre_keys =
            resolve_emergency_pre_keys(&mut l, file.emergency.max_pre_keys, rules.pre_keys)?;
        let trash =
            !o.no_trash && l.boolean("trash.enabled", None, None, file.trash.enabled, true)?;
        if o.no_trash {
            l.record("trash.enabled", "false".into(), Origin::Flag("--no-trash"));
        }
        let trash_retention = l.duration(
            "trash.retention",
            None,
            None,
            file.trash.retention.as_deref(),
            Duration::from_secs(7 * DAY),
            (
                Duration::from_secs(3600),
                Duration::from_secs(10 * 365 * DAY),
            ),
        )?;
        let restore_hold = l.duration(
            "restore.hold",
            None,
            None,
            file.restore.hold.as_deref(),
            Duration::from_secs(7 * DAY),
            (Duration::ZERO, Duration::from_secs(365 * DAY)),
        )?;

        if file.emergency.lock_wait.is_some() {
            return Err(usage(
                "config key emergency.lock_wait does not exist; set cleanup.lock_wait",
            ));
        }
        let lock_wait = l.duration(
            "cleanup.lock_wait",
            flag(o.lock_wait, "--lock-wait"),
            Some("BAILEYS_JANITOR_LOCK_WAIT"),
            file.cleanup.lock_wait.as_deref(),
            Duration::from_secs(60),
            (Duration::ZERO, Duration::from_secs(3600)),
        )?;

        let trigger = TriggerConfig {
            threshold: l.count(
                "trigger.threshold",
                flag(o.threshold, "--threshold"),
                None,
                file.trigger.threshold,
                Thresholds::SPEC.trigger,
                THRESHOLD_BOUNDS,
            )?,
            emergency_threshold: l.count(
                "trigger.emergency_threshold",
                flag(o.emergency_threshold, "--emergency-threshold"),
                None,
                file.trigger.emergency_threshold,
                Thresholds::SPEC.danger,
                THRESHOLD_BOUNDS,
            )?,
            cooldown: l.duration(
                "trigger.cooldown",
                flag(o.cooldown, "--cooldown"),
                None,
                file.trigger.cooldown.as_deref(),
                Duration::from_secs(6 * 3600),
                (Duration::from_secs(60), Duration::from_secs(30 * DAY)),
            )?,
        };
        rising(&[
            ("trigger.threshold", trigger.threshold),
            ("trigger.emergency_threshold", trigger.emergency_threshold),
        ])?;
        let notify = resolve_notify(&mut l, g, &file)?;
        let monitor = resolve_monitor(&mut l, &file, &o)?;
        // The monitor's levels must not contradict the trigger's: a company the trigger
        // already cleans as an emergency cannot be merely "critical" for the monitor.
        rising(&[
            ("monitor.critical", monitor.critical),
            ("trigger.emergency_threshold", trigger.emergency_threshold),
        ])?;
        if monitor.emergency > trigger.emergency_threshold {
            return Err(usage(format!(
                "config key monitor.emergency = {} must not be above trigger.emergency_threshold = {}",
                monitor.emergency, trigger.emergency_threshold
            )));
        }

        let dry_run = l.boolean(
            "dry_run",
            o.dry_run.then_some((true, "--dry-run")),
            o.dry_run_env.then_some("DRY_RUN"),
            None,
            false,
        )?;
        let run = RunConfig {
            dry_run,
            notify_in_dry_run: o.notify,
            ping_url: l.text(
                "notify.ping_url",
                flag(o.ping_url.clone(), "--ping-url"),
                Some("BAILEYS_JANITOR_PING_URL"),
                file.notify.ping_url.clone(),
                true,
            ),
            metrics_file: l
                .text(
                    "metrics_file",
                    flag(path_text(&o.metrics_file), "--metrics-file"),
                    Some("BAILEYS_JANITOR_METRICS_FILE"),
                    file.metrics_file.as_ref().map(|p| p.display().to_string()),
                    false,
                )
                // One config file serves cleanup, trigger and monitor: `{command}` gives each
                // its own metrics file instead of three commands overwriting one.
                .map(|p| PathBuf::from(p.replace("{command}", command_name(&cli.command)))),
        };
        if let Some(u) = &run.ping_url {
            check_url(u, "the ping URL")?;
        }
        Ok(Config {
            sessions_path,
            single_tenant,
            company_prefix,
            state_dir,
            store,
            allow_empty,
            creds_in_folder: layout_name.as_deref() != Some("evolution"),
            folder_creds,
            log_level,
            log_format,
            rules,
            emergency_rules,
            trash,
            trash_retention,
            restore_hold,
            lock_wait,
            trigger,
            notify,
            monitor,
            run,
            settings: l.settings,
            warnings,
        })
    }
}

const DAY: u64 = 86_400;
const THRESHOLD_BOUNDS: (usize, usize) = (1, 10_000_000);

/// The flags of the subcommand that override configuration.
#[derive(Default)]
struct Overrides {
    dry_run: bool,
    /// Whether `DRY_RUN` applies to this command.
    dry_run_env: bool,
    notify: bool,
    no_trash: bool,
    ping_url: Option<String>,
    metrics_file: Option<PathBuf>,
    threshold: Option<usize>,
    emergency_threshold: Option<usize>,
    cooldown: Option<Duration>,
    lock_wait: Option<Duration>,
    interval: Option<Duration>,
    auto_cleanup: bool,
    health_url: Option<String>,
}

impl Overrides {
    fn of(c: &Command) -> Overrides {
        match c {
            Command::Cleanup(a) => Overrides {
                dry_run: a.dry_run,
                dry_run_env: true,
                notify: a.notify,
                no_trash: a.no_trash,
                ping_url: a.ping_url.clone(),
                metrics_file: a.metrics_file.clone(),
                lock_wait: a.lock_wait,
                ..Overrides::default()
            },
            Command::Trigger(a) => Overrides {
                dry_run: a.dry_run,
                dry_run_env: true,
                notify: a.notify,
                no_trash: a.no_trash,
                ping_url: a.ping_url.clone(),
                metrics_file: a.metrics_file.clone(),
                threshold: a.threshold,
                emergency_threshold: a.emergency_threshold,
                cooldown: a.cooldown,
                ..Overrides::default()
            },
            Command::Monitor(a) => Overrides {
                metrics_file: a.metrics_file.clone(),
                interval: a.interval,
                auto_cleanup: a.auto_cleanup,
                health_url: a.health_url.clone(),
                ..Overrides::default()
            },
            // `config` shows (and checks) what cron's DRY_RUN would do.
            Command::Config(_) => Overrides {
                dry_run_env: true,
                ..Overrides::default()
            },
            Command::Restore(a) => Overrides {
                dry_run: a.dry_run,
                dry_run_env: true,
                ..Overrides::default()
            },
            _ => Overrides::default(),
        }
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Cleanup(_) => "cleanup",
        Command::Trigger(_) => "trigger",
        Command::Status(_) => "status",
        Command::Restore(_) => "restore",
        Command::Backup(_) => "backup",
        Command::Monitor(_) => "monitor",
        _ => "other",
    }
}

fn flag<T>(v: Option<T>, name: &'static str) -> Option<(T, &'static str)> {
    v.map(|v| (v, name))
}

fn path_text(p: &Option<PathBuf>) -> Option<String> {
    p.as_ref().map(|p| p.display().to_string())
}

struct RuleKeys {
    session_max_age: &'static str,
    sender_key_max_age: &'static str,
    max_pre_keys: &'static str,
    min_file_age: &'static str,
    tmp_max_age: &'static str,
}

const RULE_KEYS_NORMAL: RuleKeys = RuleKeys {
    session_max_age: "cleanup.session_max_age",
    sender_key_max_age: "cleanup.sender_key_max_age",
    max_pre_keys: "cleanup.max_pre_keys",
    min_file_age: "cleanup.min_file_age",
    tmp_max_age: "cleanup.tmp_max_age",
};

const RULE_KEYS_EMERGENCY: RuleKeys = RuleKeys {
    session_max_age: "emergency.session_max_age",
    sender_key_max_age: "emergency.sender_key_max_age",
    max_pre_keys: "emergency.max_pre_keys",
    min_file_age: "emergency.min_file_age",
    tmp_max_age: "emergency.tmp_max_age",
};

fn resolve_rules(
    l: &mut Layers,
    base: Rules,
    f: &FileRules,
    keys: RuleKeys,
) -> anyhow::Result<Rules> {
    let ten_years = Duration::from_secs(10 * 365 * DAY);
    let hour = Duration::from_secs(3600);
    // The live-app guard can be moved, not switched off: Baileys caches keys for ~5 minutes.
    let five_minutes = Duration::from_secs(5 * 60);
    Ok(Rules {
        session_max_age: l.duration(
            keys.session_max_age,
            None,
            None,
            f.session_max_age.as_deref(),
            base.session_max_age,
            (hour, ten_years),
        )?,
        sender_key_max_age: l.duration(
            keys.sender_key_max_age,
            None,
            None,
            f.sender_key_max_age.as_deref(),
            base.sender_key_max_age,
            (hour, ten_years),
        )?,
        // Decided by `resolve_pre_keys` / `resolve_emergency_pre_keys`.
        pre_keys: base.pre_keys,
        pre_key_margin: base.pre_key_margin,
        min_age: l.duration(
            keys.min_file_age,
            None,
            None,
            f.min_file_age.as_deref(),
            base.min_age,
            (five_minutes, ten_years),
        )?,
        tmp_max_age: l.duration(
            keys.tmp_max_age,
            None,
            None,
            f.tmp_max_age.as_deref(),
            base.tmp_max_age,
            (five_minutes, ten_years),
        )?,
    })
}

/// The emergency pre-key rule: the newest N only when `emergency.max_pre_keys` is set (an
/// operator's explicit choice); otherwise the daily rule, so no layer removes a key the server
/// still hands out unless someone asked for it (docs/prekeys.md).
fn resolve_emergency_pre_keys(
    l: &mut Layers,
    max_pre_keys: Option<usize>,
    daily: PreKeyRule,
) -> anyhow::Result<PreKeyRule> {
    Ok(match max_pre_keys {
        Some(n) => PreKeyRule::KeepNewest(l.count(
            RULE_KEYS_EMERGENCY.max_pre_keys,
            None,
            None,
            Some(n),
            n,
            (0, 1_000_000),
        )?),
        None => {
            let shown = match daily {
                PreKeyRule::ServerWindow => "server window (as the daily rule)".to_owned(),
                PreKeyRule::KeepNewest(n) => format!("{n} (as pre_keys.keep)"),
            };
            l.record(RULE_KEYS_EMERGENCY.max_pre_keys, shown, Origin::Default);
            daily
        }
    })
}

/// The daily pre-key rule and the margin: `pre_keys.keep = N` (or its older spelling
/// `cleanup.max_pre_keys`) keeps the newest N; otherwise the server window with
/// `pre_keys.margin`.
fn resolve_pre_keys(
    l: &mut Layers,
    cleanup: &FileRules,
    f: &FilePreKeys,
) -> anyhow::Result<(PreKeyRule, u64)> {
    let (keep, key) = match (f.keep, cleanup.max_pre_keys) {
        (Some(_), Some(_)) => {
            return Err(usage(
                "config keys pre_keys.keep and cleanup.max_pre_keys say the same thing: set only pre_keys.keep",
            ));
        }
        (Some(n), None) => (Some(n), "pre_keys.keep"),
        (None, Some(n)) => (Some(n), "cleanup.max_pre_keys"),
        (None, None) => (None, "pre_keys.keep"),
    };
    let margin = l.count(
        "pre_keys.margin",
        None,
        None,
        f.margin,
        DEFAULT_PRE_KEY_MARGIN as usize,
        (0, 100_000),
    )? as u64;
    let rule = match keep {
        Some(_) => PreKeyRule::KeepNewest(l.count(key, None, None, keep, 0, (0, 1_000_000))?),
        None => {
            l.record("pre_keys.keep", "server window".into(), Origin::Default);
            PreKeyRule::ServerWindow
        }
    };
    Ok((rule, margin))
}

/// Thresholds must be strictly rising; the error names both keys.
fn rising(values: &[(&str, usize)]) -> anyhow::Result<()> {
    for w in values.windows(2) {
        if w[0].1 >= w[1].1 {
            return Err(usage(format!(
                "config key {} = {} must be below {} = {}",
                w[0].0, w[0].1, w[1].0, w[1].1
            )));
        }
    }
    Ok(())
}

fn resolve_monitor(l: &mut Layers, f: &FileConfig, o: &Overrides) -> anyhow::Result<MonitorConfig> {
    let m = &f.monitor;
    let second = Duration::from_secs(1);
    let month = Duration::from_secs(30 * DAY);
    let warning = l.count(
        "monitor.warning",
        None,
        None,
        m.warning,
        Thresholds::SPEC.warning,
        THRESHOLD_BOUNDS,
    )?;
    let critical = l.count(
        "monitor.critical",
        None,
        None,
        m.critical,
        Thresholds::SPEC.critical,
        THRESHOLD_BOUNDS,
    )?;
    let emergency = l.count(
        "monitor.emergency",
        None,
        None,
        m.emergency,
        Thresholds::SPEC.emergency,
        THRESHOLD_BOUNDS,
    )?;
    rising(&[
        ("monitor.warning", warning),
        ("monitor.critical", critical),
        ("monitor.emergency", emergency),
    ])?;
    Ok(MonitorConfig {
        // Above 10ms: `--interval 0s` would spin a core and flood the log.
        interval: l.duration(
            "monitor.interval",
            flag(o.interval, "--interval"),
            None,
            m.interval.as_deref(),
            Duration::from_secs(60),
            (Duration::from_millis(10), Duration::from_secs(DAY)),
        )?,
        warning,
        critical,
        emergency,
        repeat_warning: l.duration(
            "monitor.repeat_warning",
            None,
            None,
            m.repeat_warning.as_deref(),
            Duration::from_secs(6 * 3600),
            (second, month),
        )?,
        repeat_critical: l.duration(
            "monitor.repeat_critical",
            None,
            None,
            m.repeat_critical.as_deref(),
            Duration::from_secs(30 * 60),
            (second, month),
        )?,
        repeat_emergency: l.duration(
            "monitor.repeat_emergency",
            None,
            None,
            m.repeat_emergency.as_deref(),
            Duration::from_secs(5 * 60),
            (second, month),
        )?,
        hysteresis: l.count(
            "monitor.hysteresis",
            None,
            None,
            m.hysteresis,
            5,
            (0, warning),
        )?,
        auto_cleanup: l.boolean(
            "monitor.auto_cleanup",
            o.auto_cleanup.then_some((true, "--auto-cleanup")),
            Some("AUTO_CLEANUP"),
            m.auto_cleanup,
            false,
        )?,
        cleanup_stale_after: l.duration(
            "monitor.cleanup_stale_after",
            None,
            None,
            m.cleanup_stale_after.as_deref(),
            Duration::from_secs(26 * 3600),
            (second, month),
        )?,
        trigger_stale_after: l.duration(
            "monitor.trigger_stale_after",
            None,
            None,
            m.trigger_stale_after.as_deref(),
            Duration::from_secs(2 * 3600),
            (second, month),
        )?,
        health_failures: l.count(
            "monitor.health_failures",
            None,
            None,
            m.health_failures,
            3,
            (1, 1000),
        )? as u32,
        health_url: l.text(
            "monitor.health_url",
            flag(o.health_url.clone(), "--health-url"),
            Some("BAILEYS_JANITOR_HEALTH_URL"),
            None,
            false,
        ),
        tick_failures: l.count(
            "monitor.tick_failures",
            None,
            None,
            m.tick_failures,
            3,
            (1, 1000),
        )? as u32,
    })
}

fn resolve_notify(
    l: &mut Layers,
    g: &crate::cli::GlobalArgs,
    f: &FileConfig,
) -> anyhow::Result<NotifyConfig> {
    let d = NotifyConfig::default();
    let n = &f.notify;
    let timeout = l.duration(
        "notify.timeout",
        None,
        None,
        n.timeout.as_deref(),
        d.timeout,
        (Duration::from_secs(1), Duration::from_secs(60)),
    )?;
    let cfg = NotifyConfig {
        webhook: l.text(
            "notify.webhook",
            flag(g.notification_webhook.clone(), "--notification-webhook"),
            Some("NOTIFICATION_WEBHOOK"),
            n.webhook.clone(),
            true,
        ),
        telegram_token: l.text(
            "notify.telegram_bot_token",
            flag(g.telegram_bot_token.clone(), "--telegram-bot-token"),
            Some("TELEGRAM_BOT_TOKEN"),
            n.telegram_bot_token.clone(),
            true,
        ),
        telegram_chat_id: l.text(
            "notify.telegram_chat_id",
            flag(g.telegram_chat_id.clone(), "--telegram-chat-id"),
            Some("TELEGRAM_CHAT_ID"),
            n.telegram_chat_id.clone(),
            false,
        ),
        // A proxy or a self-hosted Bot API server (and the tests); shown by `config` like
        // every other value (the token is never part of it).
        telegram_api: l
            .text(
                "notify.telegram_api",
                None,
                Some("BAILEYS_JANITOR_TELEGRAM_API"),
                None,
                false,
            )
            .unwrap_or_else(|| {
                l.record(
                    "notify.telegram_api",
                    d.telegram_api.clone(),
                    Origin::Default,
                );
                d.telegram_api
            }),
        timeout,
        retries: l.count(
            "notify.retries",
            None,
            None,
            n.retries,
            d.retries as usize,
            (0, 10),
        )? as u32,
        budget: l.duration(
            "notify.budget",
            None,
            None,
            n.budget.as_deref(),
            d.budget,
            (timeout, Duration::from_secs(300)),
        )?,
        pace: l.duration(
            "notify.pace",
            None,
            None,
            n.pace.as_deref(),
            d.pace,
            (Duration::ZERO, Duration::from_secs(60)),
        )?,
        max_retry_after: d.max_retry_after,
    };
    if let Some(w) = &cfg.webhook {
        check_url(w, "the notification webhook")?;
    }
    // Half a Telegram set-up would send nothing, silently.
    if cfg.telegram_token.is_some() != cfg.telegram_chat_id.is_some() {
        return Err(usage(
            "notify.telegram_bot_token (TELEGRAM_BOT_TOKEN) and notify.telegram_chat_id (TELEGRAM_CHAT_ID) go together: set both or neither",
        ));
    }
    Ok(cfg)
}

/// Never echoes the URL: it is a secret.
fn check_url(u: &str, what: &str) -> anyhow::Result<()> {
    if u.starts_with("http://") || u.starts_with("https://") {
        Ok(())
    } else {
        Err(usage(format!("{what} must be an http:// or https:// URL")))
    }
}

/// `<sessions>/.janitor`, or for a single auth folder `<parent>/.janitor`: never inside an auth
/// folder, and on the same file system so the trash is a rename.
/// A Baileys server that keeps one auth folder per account under its own base folder.
#[derive(Clone, Copy)]
struct ServerFolders {
    /// Where the server's base folder is when `--sessions-path` does not say.
    default_base: fn(&Layers) -> PathBuf,
    /// Where, under the base, the account folders are.
    accounts: &'static str,
}

/// Folder layouts of the servers (sources: OpenClaw `~/.openclaw/credentials/whatsapp/<account>`,
/// WAHA `WAHA_LOCAL_STORE_BASE_DIR` (`/app/.sessions` in Docker) + `noweb/<session>`, Evolution
/// API `INSTANCE_DIR` (`/evolution/instances` in Docker) + `<instance id>`).
fn server_folders(layout: &str) -> Option<ServerFolders> {
    Some(match layout {
        "openclaw" => ServerFolders {
            default_base: |l| {
                PathBuf::from(l.env("HOME").unwrap_or_else(|| "/root".into())).join(".openclaw")
            },
            accounts: "credentials/whatsapp",
        },
        "waha" => ServerFolders {
            default_base: |_| PathBuf::from("/app/.sessions"),
            accounts: "noweb",
        },
        "evolution" => ServerFolders {
            default_base: |_| PathBuf::from("/evolution/instances"),
            accounts: "",
        },
        _ => return None,
    })
}

pub const FOLDER_LAYOUTS: [&str; 3] = ["openclaw", "waha", "evolution"];

/// `--store` / `BAILEYS_JANITOR_STORE` / `[store] url`, the layout, and for Redis the key
/// pattern and where creds are.
fn resolve_store(
    l: &mut Layers,
    g: &crate::cli::GlobalArgs,
    file: &FileConfig,
    layout_name: Option<&str>,
    warnings: &mut Vec<String>,
    read_secrets: bool,
) -> anyhow::Result<(crate::core::store::StoreSpec, Option<String>)> {
    use crate::core::store::redis::RedisLayout;
    use crate::core::store::{Layout, StoreSpec};
    let url = l.text(
        "store.url",
        flag(g.store.clone(), "--store"),
        Some("BAILEYS_JANITOR_STORE"),
        file.store.url.clone(),
        true,
    );
    let key_pattern = l.text(
        "store.key_pattern",
        flag(g.key_pattern.clone(), "--key-pattern"),
        Some("BAILEYS_JANITOR_KEY_PATTERN"),
        file.store.key_pattern.clone(),
        false,
    );
    let creds = l.text(
        "store.creds",
        flag(g.creds.clone(), "--creds"),
        Some("BAILEYS_JANITOR_CREDS"),
        file.store.creds.clone(),
        true,
    );
    let password_file = l
        .text(
            "store.password_file",
            None,
            Some("BAILEYS_JANITOR_STORE_PASSWORD_FILE"),
            file.store
                .password_file
                .as_ref()
                .map(|p| p.display().to_string()),
            false,
        )
        .map(PathBuf::from);
    warnings.extend(
        url.as_deref()
            .and_then(|u| secrets::argv_warning(l, "store.url", u)),
    );
    warnings.extend(
        creds
            .as_deref()
            .and_then(|c| secrets::argv_warning(l, "store.creds", c)),
    );
    if password_file.is_some() && url.as_deref().and_then(secrets::kind_of).is_none() {
        return Err(usage(
            "store.password_file needs a postgres://, mysql:// or redis:// store (sqlite files and folders have no password)",
        ));
    }
    let url = match url {
        Some(u) if !read_secrets => Some(u),
        Some(u) => Some(secrets::fill(l, u, password_file)?),
        None if password_file.is_some() => {
            return Err(usage(
                "store.password_file needs a postgres://, mysql:// or redis:// store",
            ));
        }
        None => None,
    };
    let creds = match creds {
        Some(c) if read_secrets => Some(secrets::fill(l, c, None)?),
        Some(c) => Some(c),
        None => None,
    };
    let Some(u) = url else {
        if let Some(n) = layout_name
            && server_folders(n).is_none()
        {
            return Err(usage(format!(
                "layout {n:?} needs --store (folder layouts: {}); database layouts: {}",
                FOLDER_LAYOUTS.join(", "),
                crate::core::store::registry::all_layouts()
            )));
        }
        if key_pattern.is_some() {
            return Err(usage("--key-pattern needs a redis:// --store"));
        }
        if let Some(c) = &creds {
            // Evolution's files mode: keys in the folders, creds in its "Session" table.
            if layout_name != Some("evolution") {
                return Err(usage(
                    "--creds needs --layout evolution (its files mode) or a redis:// --store",
                ));
            }
            check_creds_url(c)?;
        }
        return Ok((StoreSpec::Folder, creds));
    };
    // Which backend the URL names: the store registry's one table.
    let is_redis = crate::core::store::registry::backend_of(&u).is_some_and(|b| b.name == "redis");
    if is_redis {
        let name = layout_name.unwrap_or("evolution");
        let mut layout = RedisLayout::preset(name).ok_or_else(|| {
            usage(format!(
                "layout {name:?} is not a redis layout (one of {})",
                RedisLayout::PRESETS.join(", ")
            ))
        })?;
        if let Some(p) = &key_pattern {
            layout = layout.with_pattern(p.trim()).map_err(usage)?;
        } else if layout.evolution
            && let Some(prefix) = l.text(
                "store.evolution_prefix",
                None,
                Some("CACHE_REDIS_PREFIX_KEY"),
                file.store.evolution_prefix.clone(),
                false,
            )
        {
            layout = layout.with_evolution_prefix(prefix.trim()).map_err(usage)?;
        }
        if let Some(c) = &creds {
            if !layout.evolution {
                return Err(usage(format!(
                    "--creds is only for the evolution layout (layout {name} keeps creds in Redis)"
                )));
            }
            check_creds_url(c)?;
        }
        return match StoreSpec::parse(&u, Layout::default()).map_err(usage)? {
            StoreSpec::Redis { url, .. } => Ok((
                StoreSpec::Redis {
                    url,
                    layout: Box::new(layout),
                    creds,
                },
                None,
            )),
            _ => Err(usage("store: not a redis connection string")),
        };
    }
    if key_pattern.is_some() || creds.is_some() {
        return Err(usage("--key-pattern and --creds need a redis:// --store"));
    }
    if crate::core::store::registry::backend_of(&u).is_some_and(|b| b.name == "mysql") {
        let name = layout_name.unwrap_or("mysql-baileys");
        let layout = crate::core::store::mysql::layout(&u, name).map_err(usage)?;
        return match StoreSpec::parse(&u, Layout::default()).map_err(usage)? {
            StoreSpec::Mysql { url, .. } => Ok((
                StoreSpec::Mysql {
                    url,
                    layout: Box::new(layout),
                },
                None,
            )),
            _ => Err(usage("store: not a mysql connection string")),
        };
    }
    let layout = match layout_name {
        None => Layout::default(),
        Some(n) => Layout::preset(n).ok_or_else(|| {
            usage(format!(
                "store layout {:?} is not one of {}",
                n,
                Layout::PRESETS.join(", ")
            ))
        })?,
    };
    Ok((StoreSpec::parse(&u, layout).map_err(usage)?, None))
}

fn check_creds_url(c: &str) -> anyhow::Result<()> {
    if !(c.starts_with("postgres://") || c.starts_with("postgresql://")) {
        return Err(usage(
            "--creds must be a postgres://user[:password]@host[:port]/database connection string",
        ));
    }
    crate::core::store::tls::pg_config(c)
        .map(|_| ())
        .map_err(|e| usage(format!("--creds: {e}")))
}

/// `path` made absolute and canonical (symlinks and `.`/`..` resolved) when it exists, else
/// absolute (against the working directory), with whatever prefix of it exists resolved: the
/// error for a missing path then names the path the operator meant.
fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or(abs),
        _ => abs,
    }
}

/// The state directory (trash, locks, records) never goes inside an account's folder: Baileys
/// would find the janitor's files among its own, and a cleanup of that folder would see them.
/// Both paths are canonical.
fn state_outside_accounts(
    state_dir: &Path,
    sessions_path: &Path,
    single_tenant: bool,
    prefix: &str,
) -> anyhow::Result<()> {
    let Ok(inside) = state_dir.strip_prefix(sessions_path) else {
        return Ok(());
    };
    let account = if single_tenant {
        Some(sessions_path.to_owned())
    } else {
        // Beside the company folders (the default `<root>/.janitor`) is fine; inside one is not.
        let mut parts = inside.components();
        match (parts.next(), parts.next()) {
            (Some(first), Some(_)) => {
                let name = first.as_os_str().to_string_lossy();
                (!name.starts_with('.') && name.starts_with(prefix))
                    .then(|| sessions_path.join(first))
            }
            _ => None,
        }
    };
    match account {
        Some(folder) => Err(usage(format!(
            "state directory {} is inside the auth folder {}; put it beside the folder (the default: {}) or pass --state-dir with a path outside it",
            state_dir.display(),
            folder.display(),
            default_state_dir(&folder, true).display()
        ))),
        None => Ok(()),
    }
}

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
        Config::resolve(&cli, &no_system_config)
    }

    /// Unit tests never read the machine's /etc/baileys-janitor/config.toml.
    fn no_system_config(k: &str) -> Option<String> {
        (k == "BAILEYS_JANITOR_SYSTEM_CONFIG").then(|| "/nonexistent/config.toml".to_owned())
    }

    fn load_env(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Config> {
        let mut argv = vec!["baileys-janitor".to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        let cli = crate::cli::Cli::try_parse_from(argv).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::resolve(&cli, &move |k| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .or_else(|| no_system_config(k))
        })
    }

    #[test]
    fn store_passwords_stay_out_of_argv_and_creds_serve_evolution_folders() {
        // A password on the command line works, with one warning; from the environment, none.
        let c = load_env(&["--store", "postgres://u:pw@db/wa", "status"], &[]).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(!c.warnings[0].contains("pw@"), "{:?}", c.warnings);
        let c = load_env(
            &["status"],
            &[("BAILEYS_JANITOR_STORE", "postgres://u:pw@db/wa")],
        )
        .unwrap();
        assert!(c.warnings.is_empty());
        // PGPASSWORD fills a URL without one.
        let c = load_env(
            &["--store", "postgres://u@db/wa?sslmode=require", "status"],
            &[("PGPASSWORD", "pw")],
        )
        .unwrap();
        assert!(c.warnings.is_empty());
        match &c.store {
            crate::core::store::StoreSpec::Postgres { url, .. } => {
                assert_eq!(url, "postgres://u:pw@db/wa?sslmode=require");
            }
            other => panic!("{other:?}"),
        }
        // A password file needs a store that has passwords.
        let e = load_env(
            &["--store", "sqlite:/srv/a.db", "status"],
            &[("BAILEYS_JANITOR_STORE_PASSWORD_FILE", "/etc/pw")],
        )
        .unwrap_err();
        assert!(e.to_string().contains("password_file"), "{e}");
        // Evolution's files mode takes --creds; other folder layouts do not.
        let c = load_env(
            &[
                "--layout",
                "evolution",
                "--creds",
                "postgres://e@db/evo",
                "status",
            ],
            &[],
        )
        .unwrap();
        assert!(c.store.is_folder());
        assert_eq!(c.folder_creds.as_deref(), Some("postgres://e@db/evo"));
        let e = load_env(
            &[
                "--layout",
                "waha",
                "--creds",
                "postgres://e@db/evo",
                "status",
            ],
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("--layout evolution"), "{e}");
    }

    #[test]
    fn booleans_from_the_environment_as_operators_write_them() {
        for v in ["1", "yes", "TRUE", "on"] {
            let c = load_env(&["trigger"], &[("DRY_RUN", v)]).unwrap();
            assert!(c.run.dry_run, "{v}");
        }
        let c = load_env(&["trigger"], &[("DRY_RUN", "off")]).unwrap();
        assert!(!c.run.dry_run);
        // Empty means unset, for every command.
        let c = load_env(&["status"], &[("AUTO_CLEANUP", "")]).unwrap();
        assert!(!c.monitor.auto_cleanup);
        let e = load_env(&["monitor"], &[("AUTO_CLEANUP", "sometimes")]).unwrap_err();
        assert!(e.to_string().contains("AUTO_CLEANUP"), "{e}");
        assert!(
            !e.to_string().contains("--"),
            "names the variable, not a flag: {e}"
        );
    }

    #[test]
    fn every_value_is_bounded_whatever_its_source() {
        let e = load_env(&["monitor", "--interval", "0s"], &[]).unwrap_err();
        assert!(e.to_string().contains("monitor.interval"), "{e}");
        let e = load_env(&["monitor", "--interval", "400d"], &[]).unwrap_err();
        assert!(e.to_string().contains("monitor.interval"), "{e}");
        let e = load_env(&["trigger", "--cooldown", "1000000y"], &[]).unwrap_err();
        assert!(e.to_string().contains("trigger.cooldown"), "{e}");
        let e = load(&[], Some("[trash]\nretention = \"1000000y\"")).unwrap_err();
        assert!(e.to_string().contains("trash.retention"), "{e}");
    }

    #[test]
    fn monitor_levels_cannot_contradict_the_trigger() {
        let e = load(&[], Some("[monitor]\ncritical = 178\nemergency = 190")).unwrap_err();
        assert!(
            e.to_string().contains("monitor.emergency")
                && e.to_string().contains("trigger.emergency_threshold"),
            "{e}"
        );
        let e = load(&[], Some("[monitor]\ncritical = 186\nemergency = 190")).unwrap_err();
        assert!(
            e.to_string().contains("monitor.critical = 186")
                && e.to_string().contains("trigger.emergency_threshold = 185"),
            "{e}"
        );
    }

    #[test]
    fn each_value_says_where_it_came_from() {
        let c = load_env(
            &["--state-dir", "/flag", "trigger", "--threshold", "160"],
            &[
                ("BAILEYS_SESSIONS_PATH", "/env"),
                ("NOTIFICATION_WEBHOOK", "https://h.example/secret"),
            ],
        )
        .unwrap();
        let get = |k: &str| c.settings.iter().find(|s| s.key == k).unwrap().clone();
        assert_eq!(get("state_dir").origin, Origin::Flag("--state-dir"));
        assert_eq!(
            get("sessions_path").origin,
            Origin::Env("BAILEYS_SESSIONS_PATH")
        );
        assert_eq!(get("trigger.threshold").origin, Origin::Flag("--threshold"));
        assert_eq!(get("trigger.cooldown").origin, Origin::Default);
        assert!(!get("notify.webhook").value.contains("secret"));
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
        assert_eq!(c.rules.pre_keys, PreKeyRule::KeepNewest(80));
        assert_eq!(c.rules.sender_key_max_age, Rules::NORMAL.sender_key_max_age);
        assert_eq!(
            c.emergency_rules.sender_key_max_age,
            Duration::from_secs(12 * 3600)
        );
        let c = load(&["--sessions-path", "/flag"], Some(toml)).unwrap();
        assert_eq!(c.sessions_path, PathBuf::from("/flag"));
    }

    #[test]
    fn pre_keys_default_to_the_server_window_on_every_layer_and_keep_n_only_when_set() {
        let c = load(&[], None).unwrap();
        assert_eq!(c.rules.pre_keys, PreKeyRule::ServerWindow);
        assert_eq!(c.rules.pre_key_margin, 100);
        // Regression (issue 20): the emergency rules kept the newest 30 by default and broke
        // first contact on every v7 account.
        assert_eq!(c.emergency_rules.pre_keys, PreKeyRule::ServerWindow);
        assert_eq!(c.emergency_rules.pre_key_margin, 100);
        let c = load(&[], Some("[pre_keys]\nkeep = 50")).unwrap();
        assert_eq!(c.rules.pre_keys, PreKeyRule::KeepNewest(50));
        assert_eq!(c.emergency_rules.pre_keys, PreKeyRule::KeepNewest(50));
        let c = load(&[], Some("[pre_keys]\nmargin = 0")).unwrap();
        assert_eq!(c.rules.pre_keys, PreKeyRule::ServerWindow);
        assert_eq!(c.emergency_rules.pre_key_margin, 0);
        let c = load(&[], Some("[emergency]\nmax_pre_keys = 10")).unwrap();
        assert_eq!(c.emergency_rules.pre_keys, PreKeyRule::KeepNewest(10));
        assert_eq!(c.rules.pre_keys, PreKeyRule::ServerWindow);
        let c = load(
            &[],
            Some("[pre_keys]\nkeep = 50\n[emergency]\nmax_pre_keys = 10"),
        )
        .unwrap();
        assert_eq!(c.rules.pre_keys, PreKeyRule::KeepNewest(50));
        assert_eq!(c.emergency_rules.pre_keys, PreKeyRule::KeepNewest(10));
        let err = |t: &str| load(&[], Some(t)).unwrap_err().to_string();
        assert!(
            err("[pre_keys]\nkeep = 50\n[cleanup]\nmax_pre_keys = 50").contains("pre_keys.keep")
        );
        assert!(err("[pre_keys]\nmargin = 100001").contains("pre_keys.margin"));
        assert!(err("[pre_keys]\nkeep = -1").contains("keep"));
        assert!(err("[pre_keys]\nwindow = 1").contains("window"));
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

    #[test]
    fn state_never_goes_inside_an_auth_folder() {
        let root = Path::new("/srv/s");
        let ok = |state: &str, single: bool| {
            state_outside_accounts(Path::new(state), root, single, "company_").is_ok()
        };
        // Multi-tenant: beside the company folders, or outside the root, is fine.
        assert!(ok("/srv/s/.janitor", false));
        assert!(ok("/var/lib/baileys-janitor", false));
        assert!(ok("/srv/s/state/deep", false), "not a company folder");
        // Inside a company folder is not.
        assert!(!ok("/srv/s/company_1/.janitor", false));
        // Single tenant: anywhere under the auth folder is refused, beside it is fine.
        assert!(!ok("/srv/s/.janitor", true));
        assert!(!ok("/srv/s", true));
        assert!(ok("/srv/.janitor", true));
        let e = state_outside_accounts(Path::new("/srv/s/x"), root, true, "").unwrap_err();
        assert!(e.to_string().contains("/srv/.janitor"), "{e}");
    }

    #[test]
    fn paths_are_made_absolute_and_canonical() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, tmp.path().join("link")).unwrap();
        let real = real.canonicalize().unwrap();
        assert_eq!(canonical(&tmp.path().join("link")), real);
        assert_eq!(canonical(&tmp.path().join("link/../real/.")), real);
        // A missing last part keeps its name under the resolved parent.
        assert_eq!(canonical(&tmp.path().join("link/new")), real.join("new"));
        assert!(canonical(Path::new("relative/missing")).is_absolute());
    }
}
