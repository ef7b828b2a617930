//! baileys-janitor: keeps Baileys multi-file auth folders small without breaking live sessions.
//!
//! `core` decides and acts (classification, rules, planning, locks, removal, state); `cmd` holds
//! one thin module per subcommand; `cli` the clap types; `config` turns flags, environment and
//! the config file into one `Config`.

pub mod cli;
pub(crate) mod cmd;
pub(crate) mod config;
pub mod core;
pub(crate) mod exit;
pub(crate) mod logging;
pub(crate) mod render;
pub(crate) mod units;

use crate::cli::{Cli, Command};
use crate::cmd::{Context, Run};
use crate::config::{Config, UsageError};
use crate::exit::Exit;

/// Runs a parsed command line; every error becomes a one-line message and an exit code.
pub fn main_with(cli: Cli) -> Exit {
    let result = match &cli.command {
        // Generated from the clap definitions alone: they work whatever the configuration says.
        Command::Completions(a) => a.write(&mut std::io::stdout().lock()),
        Command::Man(a) => a.write(),
        command => {
            let env = |k: &str| std::env::var(k).ok();
            let config = match Config::resolve(&cli, &env) {
                Ok(c) => c,
                Err(e) => {
                    say!("baileys-janitor: {e:#}");
                    return Exit::Usage;
                }
            };
            logging::init(&config.log_level, config.log_format);
            for w in &config.warnings {
                tracing::warn!("{w}");
            }
            let now = match fixed_clock(&env) {
                Ok(t) => t,
                Err(e) => {
                    say!("baileys-janitor: {e}");
                    return Exit::Usage;
                }
            };
            run(command, &Context::new(config, now))
        }
    };
    finish(result)
}

fn run(command: &Command, ctx: &Context) -> anyhow::Result<Exit> {
    match command {
        Command::Cleanup(a) => a.run(ctx),
        Command::Trigger(a) => a.run(ctx),
        Command::Status(a) => a.run(ctx),
        Command::Restore(a) => a.run(ctx),
        Command::Backup(a) => a.run(ctx),
        Command::Monitor(a) => a.run(ctx),
        Command::Config(a) => a.run(ctx),
        Command::Completions(a) => a.write(&mut std::io::stdout().lock()),
        Command::Man(a) => a.write(),
    }
}

/// A command's result as an exit code; errors become one line on stderr.
fn finish(result: anyhow::Result<Exit>) -> Exit {
    match result {
        Ok(exit) => exit,
        // Output piped into `head`: the reader has what it wanted.
        Err(e) if is_broken_pipe(&e) => Exit::Ok,
        Err(e) => {
            say!("baileys-janitor: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                Exit::Usage
            } else {
                Exit::Failed
            }
        }
    }
}

/// `BAILEYS_JANITOR_NOW=2026-11-29T03:00:00Z` runs as if it were that time (for reproducing a
/// report and for the golden-output tests); otherwise the clock.
fn fixed_clock(env: &dyn Fn(&str) -> Option<String>) -> Result<std::time::SystemTime, String> {
    match env("BAILEYS_JANITOR_NOW").filter(|v| !v.is_empty()) {
        None => Ok(std::time::SystemTime::now()),
        Some(v) => chrono::DateTime::parse_from_rfc3339(&v)
            .map(|t| t.with_timezone(&chrono::Utc).into())
            .map_err(|e| format!("environment variable BAILEYS_JANITOR_NOW: {v:?}: {e}")),
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                == Some(BrokenPipe)
    })
}
