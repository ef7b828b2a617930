//! `completions` and the hidden `man`: shell completions and man pages generated from the clap
//! definitions (clap_complete, clap_mangen), never written by hand. They need no configuration,
//! so they run before it is loaded.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionShell, CompletionsArgs, ManArgs};
use crate::exit::Exit;

pub const BIN: &str = "baileys-janitor";

impl CompletionsArgs {
    pub fn write(&self, out: &mut dyn Write) -> Result<Exit> {
        let shell = match self.shell {
            CompletionShell::Bash => clap_complete::Shell::Bash,
            CompletionShell::Zsh => clap_complete::Shell::Zsh,
            CompletionShell::Fish => clap_complete::Shell::Fish,
        };
        // Into a buffer first: clap_complete panics on a write error (a closed pipe).
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), BIN, &mut script);
        out.write_all(&script)?;
        out.flush()?;
        Ok(Exit::Ok)
    }
}

impl ManArgs {
    pub fn write(&self) -> Result<Exit> {
        write_man_pages(&self.dir)?;
        Ok(Exit::Ok)
    }
}

/// `baileys-janitor.1` and one `baileys-janitor-<command>.1` per visible subcommand.
pub fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create man page directory {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write man pages into {}", dir.display()))
}
