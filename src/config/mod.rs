//! Configuration: built-in defaults < config file < environment < flags, resolved once into a
//! plain [`Config`] that commands only read. Every subcommand override (thresholds, cooldown,
//! interval, auto-cleanup, trash, dry run) is applied here, and every value is parsed and bounded
//! in [`layers`], whatever its source.

//!
//! One file per section, each with its own resolution and tests (the tealdeer way): `paths`
//! (sessions path, tenancy, prefix, state directory), `store` (what the user wrote about the
//! store; `core::store::registry` decides what it means), `log`, `rules` (`[cleanup]`,
//! `[emergency]`, `[pre_keys]`, `[trash]`, `[restore]`), `trigger`, `notify`, `monitor`, `run`.
//! This file keeps the top-level [`Config`] and the order the sections are resolved in (the
//! order `config` lists them).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{Cli, Command};
use crate::core::level::Thresholds;
use crate::core::notify::NotifyConfig;
use crate::core::rules::Rules;
use crate::logging::LogFormat;

mod file;
pub mod layers;
mod log;
mod monitor;
mod notify;
mod paths;
mod rules;
mod run;
mod secrets;
mod store;
mod trigger;

use file::FileConfig;
use layers::Layers;
pub use layers::{EnvFn, Origin, Setting};
pub use monitor::MonitorConfig;
pub use paths::default_state_dir;
pub use run::RunConfig;
pub use trigger::TriggerConfig;

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
    /// PostgreSQL / MySQL: the schema of the janitor's own tables (`store.state_schema`).
    pub state_schema: String,
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
        let layout_name = store::layout_name(&mut l, g, &file);
        let server_layout = store::server_layout(&l, g, &file, layout_name.as_deref());
        let accounts = paths::resolve_accounts(&mut l, g, &file, server_layout)?;
        let mut warnings = Vec::new();
        let (store, folder_creds) = store::resolve_store(
            &mut l,
            g,
            &file,
            layout_name.as_deref(),
            &mut warnings,
            // `config` shows where settings come from; it never reads a secret.
            !matches!(cli.command, Command::Config(_)),
        )?;
        let state_schema = store::resolve_state_schema(&mut l, &file)?;
        let (sessions_path, state_dir) =
            paths::resolve_state_dir(&mut l, g, &file, &store, &accounts)?;
        let allow_empty = l.boolean(
            "allow_empty",
            g.allow_empty.then_some((true, "--allow-empty")),
            Some("BAILEYS_JANITOR_ALLOW_EMPTY"),
            file.allow_empty,
            false,
        )?;
        let (log_level, log_format) = log::resolve_log(&mut l, g, &file)?;
        let cleanup = rules::resolve_cleanup(&mut l, &file, &o)?;
        let trigger = trigger::resolve_trigger(&mut l, &file, &o)?;
        let notify = notify::resolve_notify(&mut l, g, &file)?;
        let monitor = monitor::resolve_monitor(&mut l, &file, &o)?;
        monitor::agrees_with_trigger(&monitor, &trigger)?;
        let run = run::resolve_run(&mut l, &file, &o, &cli.command)?;
        Ok(Config {
            sessions_path,
            single_tenant: accounts.single_tenant,
            company_prefix: accounts.company_prefix,
            state_dir,
            store,
            state_schema,
            allow_empty,
            creds_in_folder: crate::core::store::registry::creds_in_folder(layout_name.as_deref()),
            folder_creds,
            log_level,
            log_format,
            rules: cleanup.rules,
            emergency_rules: cleanup.emergency_rules,
            trash: cleanup.trash,
            trash_retention: cleanup.trash_retention,
            restore_hold: cleanup.restore_hold,
            lock_wait: cleanup.lock_wait,
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

fn flag<T>(v: Option<T>, name: &'static str) -> Option<(T, &'static str)> {
    v.map(|v| (v, name))
}

fn path_text(p: &Option<PathBuf>) -> Option<String> {
    p.as_ref().map(|p| p.display().to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    pub(super) fn load(args: &[&str], toml: Option<&str>) -> anyhow::Result<Config> {
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

    pub(super) fn load_env(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Config> {
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
}
