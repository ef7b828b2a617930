//! One module per subcommand; each only wires: resolved config in, one core call, a renderer,
//! an exit code out.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::config::{Config, usage};
use crate::core::companies::{self, Company};
use crate::core::effects::{EffectsSpec, RunEffects};
use crate::core::folder::Folder;
use crate::core::state::StateDir;
use crate::exit::Exit;

pub mod backup;
pub mod cleanup;
pub mod completions;
pub mod config;
pub mod monitor;
pub mod restore;
pub mod status;
pub mod store;
pub mod trigger;

/// Says plainly, before a report (and in the log), that an operator's keep-N removes pre-keys
/// the WhatsApp server still hands out, so first messages from new contacts will fail.
/// `rules`: the rule sets this command may clean with (status and config: both).
pub(crate) fn warn_keep_n(rules: &[crate::core::rules::Rules], json: bool) {
    use std::io::Write as _;
    if !rules.iter().any(|r| r.pre_keys.breaks_first_contact()) {
        return;
    }
    let text = crate::core::rules::KEEP_NEWEST_WARNING;
    tracing::warn!("{text}");
    if !json {
        let mut out = crate::render::stdout();
        let _ = writeln!(out, "warning: {text}");
        let _ = out.flush();
    }
}

/// What every command gets: the resolved configuration and the time the run started.
pub struct Context {
    pub config: Config,
    pub now: SystemTime,
    pub state: StateDir,
}

impl Context {
    pub fn new(config: Config, now: SystemTime) -> Context {
        let state = StateDir::new(config.state_dir.clone());
        Context { config, now, state }
    }

    pub fn now_utc(&self) -> DateTime<Utc> {
        self.now.into()
    }

    /// Evolution's files mode with `--creds`: its `"Session"` table, one connection per run.
    pub fn creds_from(&self) -> anyhow::Result<Option<crate::core::clean::CredsFrom>> {
        let Some(url) = &self.config.folder_creds else {
            return Ok(None);
        };
        let app = format!("baileys-janitor@{}", crate::core::util::hostname());
        let table = crate::core::store::session_creds::SessionTable::connect(url, &app)
            .map_err(crate::cmd::store::to_anyhow)?;
        Ok(Some(crate::core::clean::CredsFrom(std::sync::Arc::new(
            table,
        ))))
    }

    /// `20261128T030000Z-4242`: sortable, unique per process.
    pub fn run_id(&self) -> String {
        format!(
            "{}-{}",
            self.now_utc().format("%Y%m%dT%H%M%SZ"),
            std::process::id()
        )
    }

    /// The side effects of this run (records, metrics, ping, notifications), from the config.
    pub fn effects(&self, command: &'static str) -> RunEffects<'_> {
        let c = &self.config;
        RunEffects::new(
            EffectsSpec {
                command,
                dry_run: c.run.dry_run,
                notify_in_dry_run: c.run.notify_in_dry_run,
                notify: c.notify.clone(),
                ping_url: c.run.ping_url.clone(),
                metrics_file: c.run.metrics_file.clone(),
            },
            &self.state,
            self.now_utc(),
        )
    }

    /// The sessions root and its companies (or the one auth folder, in single-tenant mode).
    /// Folders that look like companies but are not (a symlink, a manual copy) are named once.
    pub fn fleet(&self) -> Result<(Folder, Vec<Company>)> {
        let path = &self.config.sessions_path;
        let root = Folder::open(path).map_err(|e| missing_path(path, &e))?;
        let id = crate::core::state::binding::RootId::of(path, &root)
            .map_err(|e| usage(format!("cannot stat sessions path {}: {e}", path.display())))?;
        self.bind(id)?;
        if self.config.single_tenant {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("auth")
                .to_owned();
            return Ok((root, vec![companies::single(&name)]));
        }
        let (found, ignored) = companies::discover(&root, &self.config.company_prefix)
            .map_err(|e| anyhow::anyhow!("cannot list {}: {e}", path.display()))?;
        for i in ignored {
            tracing::warn!(folder = %i.name, "ignored: {}", i.why);
        }
        Ok((root, found))
    }

    /// One state directory, one sessions root or one store (`core::binding`): refuses (exit 2)
    /// a state directory that belongs to another, records this one on first use.
    pub fn bind(&self, id: crate::core::state::binding::RootId) -> Result<()> {
        if let Some(state) = self.state.existing() {
            crate::core::state::binding::check(state, &id).map_err(usage)?;
            if let Err(e) = crate::core::state::binding::record(state, &id) {
                tracing::warn!(error = %e, "cannot record what the state directory belongs to");
            }
        }
        self.state.bind_root(id);
        Ok(())
    }

    /// Finding no company is a failed run unless `allow_empty` (a wrong path, a wrong prefix
    /// must not look like success). Says so on stderr; `Some(exit)` when the run should end.
    pub fn empty_fleet(&self, companies: &[Company]) -> Option<Exit> {
        if !companies.is_empty() || self.config.allow_empty {
            return None;
        }
        crate::say!(
            "baileys-janitor: warning: no company folder ({}<id>) under {}; check --sessions-path and --company-prefix, or pass --allow-empty for a fresh install",
            self.config.company_prefix,
            self.config.sessions_path.display()
        );
        Some(Exit::Failed)
    }

    /// Whether a run that found no company may write its failure to the state directory: yes
    /// when it exists or lives outside the sessions path; no when creating it would put a
    /// `.janitor` inside whatever folder a mistyped `--sessions-path` names.
    pub fn skip_record_for_empty_fleet(&self) -> bool {
        self.state.existing().is_none() && self.state.path().starts_with(&self.config.sessions_path)
    }

    /// Before a run that removes anything: can this user remove files there and write the
    /// state directory? When not, one line naming the folders' owner and the fix. `Err(exit)`
    /// when nothing can run; else the companies it may clean and those it may not.
    pub fn check_access(
        &self,
        root: &Folder,
        companies: Vec<Company>,
    ) -> Result<(Vec<Company>, Vec<Company>), Exit> {
        if self.config.run.dry_run {
            return Ok((companies, Vec::new()));
        }
        match crate::core::access::check(root, &companies, self.state.path()) {
            Ok(()) => Ok((companies, Vec::new())),
            Err(denied) => {
                crate::say!("baileys-janitor: {}", denied.message);
                let (out, left): (Vec<Company>, Vec<Company>) = companies
                    .into_iter()
                    .partition(|c| denied.companies.contains(&c.name));
                if denied.companies.is_empty() || left.is_empty() {
                    Err(Exit::Failed)
                } else {
                    Ok((left, out))
                }
            }
        }
    }

    /// The command that undoes run `run_id` (of `companies` only, when given), with the global
    /// flags this run needed to find the same root and state directory.
    pub fn undo_command(&self, run_id: &str, companies: &[String]) -> String {
        let c = &self.config;
        let mut cmd = String::from("baileys-janitor");
        let quote = |p: &Path| crate::render::shell_word(&p.display().to_string());
        use crate::core::store::StoreSpec;
        let default_state = match &c.store {
            StoreSpec::Folder => {
                if c.sessions_path != Path::new(crate::config::DEFAULT_SESSIONS_PATH) {
                    cmd.push_str(&format!(" --sessions-path {}", quote(&c.sessions_path)));
                }
                if c.single_tenant {
                    cmd.push_str(" --single-tenant");
                }
                crate::config::default_state_dir(&c.sessions_path, c.single_tenant)
            }
            StoreSpec::Sqlite(p) => {
                cmd.push_str(&format!(
                    " --store {}",
                    crate::render::shell_word(&format!("sqlite:{}", p.display()))
                ));
                crate::config::default_state_dir(p, p.extension().is_some_and(|e| e == "db"))
            }
            // A server URL may hold a password: it stays where it was set (environment, config).
            _ => crate::config::default_state_dir(&c.sessions_path, c.single_tenant),
        };
        if c.state_dir != default_state {
            cmd.push_str(&format!(" --state-dir {}", quote(&c.state_dir)));
        }
        if c.company_prefix != crate::config::DEFAULT_PREFIX {
            cmd.push_str(&format!(
                " --company-prefix {}",
                crate::render::shell_word(&c.company_prefix)
            ));
        }
        cmd.push_str(&format!(" restore --run {run_id}"));
        for company in companies {
            cmd.push_str(&format!(
                " --company {}",
                crate::render::shell_word(company)
            ));
        }
        cmd
    }

    /// The companies named by `--company`, or all of them.
    pub fn select(&self, all: Vec<Company>, wanted: &[String]) -> Result<Vec<Company>> {
        if wanted.is_empty() {
            return Ok(all);
        }
        let mut out: Vec<Company> = Vec::new();
        for w in wanted {
            match companies::resolve(&all, &self.config.company_prefix, w) {
                Some(c) if !out.contains(c) => out.push(c.clone()),
                Some(_) => {}
                None => {
                    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
                    let known = if names.is_empty() {
                        "there are none".to_owned()
                    } else if names.len() > 20 {
                        format!("{} … ({} in all)", names[..20].join(", "), names.len())
                    } else {
                        names.join(", ")
                    };
                    return Err(usage(format!(
                        "no company {:?} under {}; known companies: {known}",
                        crate::render::name(w),
                        self.config.sessions_path.display()
                    )));
                }
            }
        }
        Ok(out)
    }
}

fn missing_path(path: &Path, e: &io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::NotFound {
        usage(format!(
            "sessions path {} does not exist (set --sessions-path or BAILEYS_SESSIONS_PATH)",
            path.display()
        ))
    } else {
        usage(format!("cannot open sessions path {}: {e}", path.display()))
    }
}

/// A subcommand.
pub trait Run {
    fn run(&self, ctx: &Context) -> Result<Exit>;
}
