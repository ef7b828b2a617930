//! What this one run does to the outside world besides cleaning: dry run, the
//! dead-man's-switch ping, the metrics file.

use std::path::PathBuf;

use super::file::FileConfig;
use super::layers::Layers;
use super::notify::check_url;
use super::{Overrides, flag, path_text};
use crate::cli::Command;

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

pub(super) fn resolve_run(
    l: &mut Layers,
    file: &FileConfig,
    o: &Overrides,
    command: &Command,
) -> anyhow::Result<RunConfig> {
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
            .map(|p| PathBuf::from(p.replace("{command}", command_name(command)))),
    };
    if let Some(u) = &run.ping_url {
        check_url(u, "the ping URL")?;
    }
    Ok(run)
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
