//! Every clap type, and nothing else. Environment variables are read by `config` (so booleans
//! parse as operators write them and errors name the variable); the help text names them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::core::level::Level;
use crate::exit::EXIT_CODES_HELP;
use crate::logging::LogFormat;

/// `0.2.0 (commit 1a2b3c4d5e6f)`: the version and the commit the binary was built from
/// (build.rs; "unknown" when built without git).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BAILEYS_JANITOR_COMMIT"),
    ")"
);

/// Keeps Baileys (WhatsApp) multi-file auth folders small without breaking live sessions.
///
/// Baileys keeps each account's keys in a folder of small JSON files that only ever grows.
/// baileys-janitor removes what is safe to remove (old sessions, old sender keys, surplus
/// pre-keys) and never touches creds.json, app-state keys, lid-mappings or tctokens.
#[derive(Debug, Parser)]
#[command(name = "baileys-janitor", version = VERSION, after_long_help = EXIT_CODES_HELP, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Root folder holding one auth folder per company [env: BAILEYS_SESSIONS_PATH] [default: /opt/ai-admin/baileys_sessions]
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Global options"
    )]
    pub sessions_path: Option<PathBuf>,

    /// TOML configuration file [env: BAILEYS_JANITOR_CONFIG] [default: /etc/baileys-janitor/config.toml if it exists]
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub config: Option<PathBuf>,

    /// Where locks, trash, cooldowns and history live (with a --store, only what is local to
    /// this host, locks and monitor state: the rest is kept in the store, shared by every host)
    /// [env: BAILEYS_JANITOR_STATE_DIR] [default: <sessions-path>/.janitor]
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        help_heading = "Global options"
    )]
    pub state_dir: Option<PathBuf>,

    /// Where auth state lives: a folder root (default), sqlite:PATH (a .db file or a folder of
    /// them), postgres://user@host/db, or redis://host:6379/0 [env: BAILEYS_JANITOR_STORE]
    #[arg(
        long,
        global = true,
        value_name = "STORE",
        help_heading = "Global options"
    )]
    pub store: Option<String>,

    /// Where a server keeps auth state. Folders: openclaw, waha, evolution. With a postgres://
    /// store: per-type, waha, postgres-baileys, prisma. With a redis:// store: evolution
    /// (default), baileys-redis-auth, baileys-redis-auth-keys, redis-hash, redis-keys
    /// [env: BAILEYS_JANITOR_STORE_LAYOUT]
    #[arg(
        long,
        global = true,
        value_name = "LAYOUT",
        help_heading = "Global options"
    )]
    pub layout: Option<String>,

    /// Redis: the key pattern, with `*` where the tenant is (evolution: evolution-cache:instance:*,
    /// baileys-redis-auth: *:auth) [env: BAILEYS_JANITOR_KEY_PATTERN]
    #[arg(
        long,
        global = true,
        value_name = "PATTERN",
        help_heading = "Global options"
    )]
    pub key_pattern: Option<String>,

    /// Evolution API with Redis: the PostgreSQL database holding its "Session" (creds) and
    /// "Instance" (names) tables [env: BAILEYS_JANITOR_CREDS]
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "Global options"
    )]
    pub creds: Option<String>,

    /// The sessions path is one auth folder, not a root of company folders [env: ENABLE_MULTITENANCY=false]
    #[arg(long, global = true, help_heading = "Global options")]
    pub single_tenant: bool,

    /// Finding no company folder is fine (a fresh install), not a failure [env: BAILEYS_JANITOR_ALLOW_EMPTY]
    #[arg(long, global = true, help_heading = "Global options")]
    pub allow_empty: bool,

    /// Prefix of company folder names [env: BAILEYS_JANITOR_COMPANY_PREFIX] [default: company_]
    #[arg(
        long,
        global = true,
        value_name = "PREFIX",
        help_heading = "Global options"
    )]
    pub company_prefix: Option<String>,

    /// Log level: error, warn, info, debug or trace [env: BAILEYS_JANITOR_LOG] [default: info]
    #[arg(
        long,
        global = true,
        value_name = "LEVEL",
        help_heading = "Global options"
    )]
    pub log_level: Option<String>,

    /// Webhook for notifications (Slack, Discord, or anything that takes JSON) [env: NOTIFICATION_WEBHOOK]
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "Notifications"
    )]
    pub notification_webhook: Option<String>,

    /// Telegram bot token for notifications (prefer the environment: flags show in `ps`) [env: TELEGRAM_BOT_TOKEN]
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        help_heading = "Notifications"
    )]
    pub telegram_bot_token: Option<String>,

    /// Telegram chat to notify [env: TELEGRAM_CHAT_ID]
    #[arg(long, global = true, value_name = "ID", help_heading = "Notifications")]
    pub telegram_chat_id: Option<String>,

    /// Log format on stderr [env: BAILEYS_JANITOR_LOG_FORMAT] [default: text]
    #[arg(
        long,
        global = true,
        value_name = "FORMAT",
        help_heading = "Global options"
    )]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Cleanup(CleanupArgs),
    Trigger(TriggerArgs),
    Status(StatusArgs),
    Restore(RestoreArgs),
    Backup(BackupArgs),
    Monitor(MonitorArgs),
    Config(ConfigArgs),
    Completions(CompletionsArgs),
    #[command(hide = true)]
    Man(ManArgs),
}

/// Print a shell completion script on stdout.
///
/// bash: `baileys-janitor completions bash > /etc/bash_completion.d/baileys-janitor`;
/// zsh: `… zsh > "${fpath[1]}/_baileys-janitor"`;
/// fish: `… fish > ~/.config/fish/completions/baileys-janitor.fish`.
/// The Debian package installs all three.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// Write man pages for the binary and each subcommand (section 1) into a directory.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write `baileys-janitor.1` and `baileys-janitor-<command>.1` into
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

/// Watch every company, alert when a level rises (runs under PM2 or systemd).
///
/// Each tick discovers companies, counts their files and sets a level (warning at 150,
/// critical at 170, trigger at 175, emergency at 180, danger at 185 files). Notifies when a
/// level rises, repeats while it stays raised (every 6h, 30m, 5m), and sends one "resolved" when
/// healthy again; the changes of one tick go out as one message. Also alerts when no daily
/// cleanup succeeded for 26h, no trigger ran for 2h, or ticks keep failing. One monitor per state
/// directory. SIGINT / SIGTERM exit 0 within 2s.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES_HELP)]
pub struct MonitorArgs {
    /// Time between ticks [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub interval: Option<std::time::Duration>,

    /// One tick: print the table, exit 0 if all healthy, 1 if any company is at warning or above
    #[arg(long)]
    pub once: bool,

    /// Give a company at emergency level an emergency cleanup (at most once per cooldown) [env: AUTO_CLEANUP]
    #[arg(long)]
    pub auto_cleanup: bool,

    /// Write Prometheus metrics here after every tick [env: BAILEYS_JANITOR_METRICS_FILE]
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    /// Check each company's connection: GET this URL ({company} and {id} are replaced) [env: BAILEYS_JANITOR_HEALTH_URL]
    #[arg(long, value_name = "URL")]
    pub health_url: Option<String>,

    /// With --once: print JSON instead of the table
    #[arg(long)]
    pub json: bool,

    /// Stop after this many ticks (for soak tests)
    #[arg(long, hide = true)]
    pub max_ticks: Option<u64>,
}

/// One row per company: files, level, creds state, last cleanup, cooldown, lock, trash, advice.
///
/// Replaces the spec's manual checks (`ls -1 | wc -l` per company, lock files, log tails).
/// Levels: healthy < 150 <= warning < 170 <= critical < 175 <= trigger < 180 <= emergency
/// < 185 <= danger. Exits 1 if any company is at warning or above, or cannot be read. Reads only.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES_HELP)]
pub struct StatusArgs {
    /// Only this company; repeatable
    #[arg(long, value_name = "ID")]
    pub company: Vec<String>,

    /// Only companies at this level or above (warning, critical, trigger, emergency, danger)
    #[arg(long, value_name = "LEVEL")]
    pub level: Option<Level>,

    /// Every company, with its counts by type (the default shows the worst ones and totals)
    #[arg(short, long)]
    pub verbose: bool,

    /// Print one JSON document
    #[arg(long)]
    pub json: bool,

    /// Show each company's file-count trend over the last days
    #[arg(long)]
    pub history: bool,
}

/// Put removed files back from the trash (or a whole folder back from a backup).
///
/// `--list` shows every run that can be undone (time, command, files, bytes) and the command
/// that undoes it. `--run ID` undoes that run, in every company it cleaned (or only those
/// named by --company). Without --run, the company's most recent run with files in the trash. Files
/// come back with their bytes, mtimes, owner and mode. A file that exists again in the folder
/// (the app wrote a newer one) is never overwritten, and neither is its partner (a `.bak`, the
/// session of an identity key, the memory of our own sender key): both are reported and the
/// exit code is 1. A folder that re-paired since is refused (exit 1) unless --force. Restored
/// files are on hold: no cleanup removes them again for `restore.hold` (default 7d).
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES_HELP)]
pub struct RestoreArgs {
    /// The company (`962302` or `company_962302`); repeatable. Needed unless --run or --list
    #[arg(long, value_name = "ID", required_unless_present_any = ["run", "list"])]
    pub company: Vec<String>,

    /// The run to undo (a run id from `restore --list`, `status` or a run's report)
    #[arg(long, value_name = "RUN_ID", conflicts_with = "backup")]
    pub run: Option<String>,

    /// List the runs that can be undone (of the companies named, or all), newest first
    #[arg(long, conflicts_with_all = ["run", "backup", "file", "overwrite", "force", "release"])]
    pub list: bool,

    /// Only these files (and their partners); repeatable
    #[arg(long, value_name = "NAME")]
    pub file: Vec<String>,

    /// Restore from a backup: a name listed by `backup --list`, or `latest`
    #[arg(long, value_name = "NAME")]
    pub backup: Option<String>,

    /// With --backup: replace files that differ (each current one goes to the trash after its
    /// replacement is in place)
    #[arg(long, requires = "backup")]
    pub overwrite: bool,

    /// Restore even into a folder that re-paired since (another WhatsApp identity)
    #[arg(long)]
    pub force: bool,

    /// End the hold on the company's restored files (cleanup may remove them again)
    #[arg(long, conflicts_with_all = ["run", "backup", "file", "overwrite", "force"])]
    pub release: bool,

    /// Show what would be restored, change nothing [env: DRY_RUN]
    #[arg(long)]
    pub dry_run: bool,

    /// Print one JSON document
    #[arg(long)]
    pub json: bool,
}

/// Copy a company folder into the state directory (the spec's "backup current session").
///
/// The copy keeps every file's bytes and mtime, in `<state>/backups/<company>/<time>/`, with a
/// manifest of every file's size, mtime, owner, mode and checksum. It is written under a hidden
/// name and renamed into place only when complete; `--list` shows complete backups only.
/// Refuses (exit 75) while the company is locked by a cleanup.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES_HELP)]
pub struct BackupArgs {
    /// The company (`962302` or `company_962302`); repeatable
    #[arg(long, value_name = "ID", required_unless_present = "list")]
    pub company: Vec<String>,

    /// List the backups instead
    #[arg(long)]
    pub list: bool,

    /// Print one JSON document
    #[arg(long)]
    pub json: bool,
}

/// Print the effective configuration and where each value came from (secrets hidden).
///
/// Default, config file, environment or flag, for every key: the first thing to attach to a
/// support request. Validates like every other command (exit 2 on a bad value).
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES_HELP)]
pub struct ConfigArgs {
    /// Print one JSON document
    #[arg(long)]
    pub json: bool,
}

/// Clean every company whose folder passed the file-count threshold (the half-hourly cron check).
///
/// At --threshold files (default 175) a company gets a normal cleanup, at --emergency-threshold
/// (185) an emergency one. A company cleaned by the trigger is not triggered again within the
/// cooldown (6h), across runs; an emergency overrides a normal trigger's cooldown once. Only one
/// trigger runs at a time on a host: a second one exits at once with code 75. Prints the
/// companies it acted on and a total; -v lists every company.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES_HELP)]
pub struct TriggerArgs {
    /// Decide and report, touch nothing, write no cooldown, notify no one [env: DRY_RUN]
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: send the notifications anyway, marked "dry_run": true
    #[arg(long)]
    pub notify: bool,

    /// Print one JSON document instead of the table
    #[arg(long)]
    pub json: bool,

    /// One row per company, including those with nothing to do
    #[arg(short, long)]
    pub verbose: bool,

    /// Files at which a company is cleaned [default: 175]
    #[arg(long, value_name = "FILES")]
    pub threshold: Option<usize>,

    /// Files at which a company gets an emergency cleanup [default: 185]
    #[arg(long, value_name = "FILES")]
    pub emergency_threshold: Option<usize>,

    /// Do not trigger a company again within this long [default: 6h]
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub cooldown: Option<std::time::Duration>,

    /// Dead-man's-switch URL: URL/start before, URL on success, URL/fail on failure [env: BAILEYS_JANITOR_PING_URL]
    #[arg(long, value_name = "URL")]
    pub ping_url: Option<String>,

    /// Unlink files instead of moving them to the trash
    #[arg(long)]
    pub no_trash: bool,

    /// Write this run's Prometheus metrics here [env: BAILEYS_JANITOR_METRICS_FILE]
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

/// Remove old sessions, sender keys and surplus pre-keys (the daily 3 AM run).
///
/// Without --company every company folder (or SQLite account file) is cleaned, several at a
/// time (--jobs). Protected
/// files (creds.json, app-state-sync-*, lid-mapping-*, tctoken-*, device-list-*, unknown files)
/// are never removed, nor is anything changed in the last 10 minutes. Prints the companies
/// that changed most and a total; -v (or one --company) prints every company and file.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES_HELP)]
pub struct CleanupArgs {
    /// Clean only this company (`962302` or `company_962302`); repeatable
    #[arg(long, value_name = "ID")]
    pub company: Vec<String>,

    /// Touch nothing, notify no one; print exactly what a real run would remove [env: DRY_RUN]
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: send the notifications anyway, marked "dry_run": true
    #[arg(long)]
    pub notify: bool,

    /// Use the stricter emergency rules (sessions 7d, sender keys 1d); pre-keys as the daily rule
    /// (only waste below the server window) unless emergency.max_pre_keys is set
    #[arg(long)]
    pub emergency: bool,

    /// Print one JSON document instead of the summary
    #[arg(long)]
    pub json: bool,

    /// List every company, every file, its type and the rule that decided it
    #[arg(short, long)]
    pub verbose: bool,

    /// Unlink files instead of moving them to the trash
    #[arg(long)]
    pub no_trash: bool,

    /// Database stores: also remove per-type rows whose key_type Baileys never reads (app, lid,
    /// pre, sender: leftovers of a bad migration); without it they are only reported
    #[arg(long)]
    pub legacy_rows: bool,

    /// Stores: also remove every key of an orphan tenant (an Evolution hash whose instance has
    /// no "Instance" row); without it orphans are only reported by status and cleanup
    #[arg(long)]
    pub remove_orphans: bool,

    /// Dead-man's-switch URL: URL/start before, URL on success, URL/fail on failure [env: BAILEYS_JANITOR_PING_URL]
    #[arg(long, value_name = "URL")]
    pub ping_url: Option<String>,

    /// Write this run's Prometheus metrics here [env: BAILEYS_JANITOR_METRICS_FILE]
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    /// Wait this long for a company another run (a trigger, a restore) holds, then give up on
    /// it: exit 75 and the run is not recorded as a success [env: BAILEYS_JANITOR_LOCK_WAIT]
    /// [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub lock_wait: Option<std::time::Duration>,

    /// Companies (or a store's tenants) cleaned at once; a database store gives each worker
    /// connections of its own [default: the number of cores, at most 4; a real cleanup of a
    /// folder of SQLite files: 4, its time is the disk's]
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: Option<u16>,

    /// Test hook: pause this long between planning and removing
    #[arg(long, hide = true, value_parser = humantime::parse_duration)]
    pub debug_pause_before_remove: Option<std::time::Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
