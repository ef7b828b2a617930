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
use crate::core::fleet::{Fleet, Folders, Tenants};
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

/// How a command opens its fleet.
#[derive(Clone, Copy, Debug, Default)]
pub struct FleetFlags {
    /// Dry runs and `status`: SQLite files open read-only.
    pub read_only: bool,
    /// `cleanup --legacy-rows` / `--remove-orphans` (stores).
    pub remove_legacy: bool,
    pub remove_orphans: bool,
    /// A store whose locks live on the server (Redis): release them on SIGINT / SIGTERM and
    /// exit as the signal would have (cleanup, trigger, restore; the monitor handles its own).
    pub release_on_signal: bool,
}

/// SIGINT / SIGTERM during a cleanup, trigger or restore on a store whose locks live on the
/// server (Redis): release them, then exit (130 / 143) as the signal would have. Without this
/// a killed run's lock blocked every other host until it expired. Removal stays safe: each batch
/// is fenced by the lock, so a batch after the release removes nothing; one in flight on the
/// server is atomic. A second signal exits at once.
fn release_locks_on_signal(release: crate::core::store::LockReleaser) -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut flags = Vec::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let flag = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register_conditional_shutdown(sig, 1, flag.clone())?;
        signal_hook::flag::register(sig, flag.clone())?;
        flags.push((sig, flag));
    }
    std::thread::spawn(move || {
        loop {
            if let Some((sig, _)) = flags.iter().find(|(_, f)| f.load(Ordering::SeqCst)) {
                release();
                crate::say!("baileys-janitor: stopped by a signal; store locks released");
                std::process::exit(128 + sig);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    Ok(())
}

/// A store error as the CLI reports it: a wrong schema is a configuration error (exit 2), an
/// unreachable server a failed run (exit 1). Neither ever carries a password.
pub fn store_error(e: crate::core::store::StoreError) -> anyhow::Error {
    if e.is_configuration() {
        usage(e.to_string())
    } else {
        anyhow::anyhow!("{e}")
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
            .map_err(store_error)?;
        Ok(Some(crate::core::clean::CredsFrom(std::sync::Arc::new(
            table,
        ))))
    }

    /// `20261128T030000Z-4242`: sortable, unique per process (and per host where a store keeps
    /// the state: `StateDir::run_id`). Asked after `open_fleet`.
    pub fn run_id(&self) -> String {
        self.state.run_id(self.now_utc())
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

    /// The configured fleet and its members: the company folders under the sessions root, or
    /// the tenants of the store `--store` names (the backend follows the URL's scheme,
    /// `core::store::open`). The state directory must belong to it (`core::state::binding`).
    /// The one place that knows which kind it is: commands work on the `dyn Fleet`.
    pub fn open_fleet(&self, flags: FleetFlags) -> Result<(Box<dyn Fleet>, Vec<Company>)> {
        let cfg = &self.config;
        if cfg.store.is_folder() {
            let (root, companies) = self.fleet()?;
            let path = cfg.sessions_path.display().to_string();
            let creds_from = self.creds_from()?;
            let fleet = Folders {
                root,
                path,
                creds_from,
            };
            return Ok((Box::new(fleet), companies));
        }
        let mut store = self.open_store(flags.read_only)?;
        if flags.release_on_signal
            && !flags.read_only
            && let Some(release) = store.lock_releaser()
        {
            release_locks_on_signal(release)?;
        }
        let tenants = store.tenants().map_err(store_error)?;
        if flags.remove_orphans {
            crate::core::store::clean::orphan_majority(store.as_mut(), &tenants).map_err(usage)?;
        }
        let members = tenants.iter().map(|t| companies::single(t)).collect();
        let fleet = Tenants {
            store,
            store_key: crate::core::store::state_key(&cfg.store),
            description: cfg.store.describe(),
            remove_legacy: flags.remove_legacy,
            remove_orphans: flags.remove_orphans,
        };
        Ok((Box::new(fleet), members))
    }

    /// For commands that read the janitor's state without working on members (`restore --list`):
    /// where a store keeps that state, attaches it as `open_fleet` does. Folders: nothing to do.
    pub fn open_state(&self, read_only: bool) -> Result<()> {
        if self.config.store.is_folder() {
            return Ok(());
        }
        self.open_store(read_only).map(drop)
    }

    /// Opens the configured store (not folders), binds the state directory to it and attaches
    /// the janitor's state the store keeps, if it keeps one.
    fn open_store(&self, read_only: bool) -> Result<Box<dyn crate::core::store::Store>> {
        let cfg = &self.config;
        let store = crate::core::store::open(&cfg.store, read_only).map_err(store_error)?;
        let id = cfg.store.root_id().map_err(|e| {
            usage(format!(
                "cannot stat the store {}: {e}",
                cfg.store.describe()
            ))
        })?;
        self.bind(id)?;
        if !read_only {
            // The binding is recorded when the state directory is made, and a store's run may
            // write nothing else there (its locks, records and trash are the store's): made
            // here, so a second store is refused with this one's state directory.
            self.state.folder().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        if let Some(t) = store.transport() {
            tracing::info!(store = %cfg.store.describe(), connection = %t, "connected");
        }
        self.attach_shared_state(store.as_ref(), read_only)?;
        Ok(store)
    }

    /// Where the store keeps the janitor's state (records, runs, ledger, trash: issue 23), the
    /// state directory hands them over to it (`StateDir::share`). Who else can read it is
    /// said once, at start-up. A newer schema or a bad one is exit 2, a server that does not
    /// answer exit 1.
    fn attach_shared_state(
        &self,
        store: &dyn crate::core::store::Store,
        read_only: bool,
    ) -> Result<()> {
        let opts = crate::core::store::shared::SharedOptions {
            schema: self.config.state_schema.clone(),
            read_only,
            trash_retention: self.config.trash_retention,
        };
        let Some(mut shared) = store.shared_state(&opts).map_err(store_error)? else {
            return Ok(());
        };
        // A monitor opens its store again every tick: warn on the first only.
        if !self.state.has_shared() {
            match shared.exposure() {
                Ok(lines) => {
                    for line in lines {
                        tracing::warn!(state = %shared.describe(), "{line}");
                    }
                }
                Err(e) => {
                    tracing::warn!(state = %shared.describe(), error = %e, "cannot check who else can read the janitor's state")
                }
            }
        }
        tracing::debug!(state = %shared.describe(), "the janitor's state is kept in the store");
        self.state.share(shared);
        Ok(())
    }

    /// Whether one `restore --run` undoes a whole run here (`Fleet::undo_all`, known without
    /// opening the fleet): folders yes, stores tenant by tenant.
    pub fn undo_all(&self) -> bool {
        self.config.store.is_folder()
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
        if self.config.store.is_folder() {
            crate::say!(
                "baileys-janitor: warning: no company folder ({}<id>) under {}; check --sessions-path and --company-prefix, or pass --allow-empty for a fresh install",
                self.config.company_prefix,
                self.config.sessions_path.display()
            );
        } else {
            crate::say!(
                "baileys-janitor: warning: no tenant in {}; check --store, --layout and --key-pattern, or pass --allow-empty for a fresh install",
                self.config.store.describe()
            );
        }
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
        fleet: &dyn Fleet,
        companies: Vec<Company>,
    ) -> Result<(Vec<Company>, Vec<Company>), Exit> {
        if self.config.run.dry_run {
            return Ok((companies, Vec::new()));
        }
        match fleet.check_access(&companies, self.state.path()) {
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
        let mut cmd = self.command_prefix();
        cmd.push_str(&format!(" restore --run {run_id}"));
        for company in companies {
            cmd.push_str(&format!(
                " --company {}",
                crate::render::shell_word(company)
            ));
        }
        cmd
    }

    /// The command that ends the hold on the files restored into `company`, with the same
    /// global flags as [`Context::undo_command`], so it works as printed.
    pub fn release_command(&self, company: &str) -> String {
        format!(
            "{} restore --company {} --release",
            self.command_prefix(),
            crate::render::shell_word(company)
        )
    }

    /// `baileys-janitor` and the global flags a printed command needs to find this run's root,
    /// store and state directory.
    fn command_prefix(&self) -> String {
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
        cmd
    }

    /// The companies named by `--company`, or all of them.
    pub fn select(
        &self,
        fleet: &mut dyn Fleet,
        all: Vec<Company>,
        wanted: &[String],
    ) -> Result<Vec<Company>> {
        self.select_by(all, wanted, |all, prefix, w| fleet.resolve(all, prefix, w))
    }

    /// [`Context::select`] among company folders (`backup`, which has no store).
    pub fn select_folders(&self, all: Vec<Company>, wanted: &[String]) -> Result<Vec<Company>> {
        self.select_by(all, wanted, |all, prefix, w| {
            companies::resolve(all, prefix, w).cloned()
        })
    }

    fn select_by(
        &self,
        all: Vec<Company>,
        wanted: &[String],
        mut resolve: impl FnMut(&[Company], &str, &str) -> Option<Company>,
    ) -> Result<Vec<Company>> {
        if wanted.is_empty() {
            return Ok(all);
        }
        let mut out: Vec<Company> = Vec::new();
        let prefix = &self.config.company_prefix;
        for w in wanted {
            match resolve(&all, prefix, w).as_ref() {
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
                    let (what, whats, place) = if self.config.store.is_folder() {
                        (
                            "company",
                            "companies",
                            format!("under {}", self.config.sessions_path.display()),
                        )
                    } else {
                        (
                            "tenant",
                            "tenants",
                            format!("in {}", self.config.store.describe()),
                        )
                    };
                    return Err(usage(format!(
                        "no {what} {:?} {place}; known {whats}: {known}",
                        crate::render::name(w)
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
