//! The fleet seam: where accounts live, seen the same way by every command. A [`Fleet`] is a
//! root of company folders or a store's tenants; it counts a member, cleans it, restores it,
//! and locks it. `cleanup`, `trigger`, `restore` and `monitor` run over a `dyn Fleet` and never
//! ask which kind it is.
//!
//! "One level up, not one level down": each implementation keeps its own safety model below the
//! seam. Folders: no-follow dirfd I/O, dev/ino re-checks, renames into the trash
//! (`core::clean`, `core::remove`, `core::restore`). Stores: re-checked transaction batches or
//! compare-and-delete scripts, the trash written before the commit (`core::store`). What they
//! share above it, the decisions (`core::plan`), pairs, holds, records and run effects, is one
//! copy.

use std::collections::BTreeMap;
use std::io;

use crate::core::classify::{self, Kind};
use crate::core::clean::{self, CleanSpec, clean_company};
use crate::core::companies::Company;
use crate::core::folder::Folder;
use crate::core::lock::LockGuard;
use crate::core::report::CompanyReport;
use crate::core::restore::{self, RestoreError, RestoreOptions, RestoreReport};
use crate::core::state::StateDir;
use crate::core::store::{self, Store, TenantLock};
use crate::core::tally::{self, Tally};

/// Files (keys) by type.
pub type TypeCounts = Vec<(Kind, usize)>;

/// What `status` needs to look at a fleet.
#[derive(Clone, Debug)]
pub struct StatusSpec {
    pub thresholds: crate::core::level::Thresholds,
    pub cooldown: chrono::Duration,
    pub rules: crate::core::rules::Rules,
    pub now: std::time::SystemTime,
    pub run_id: String,
    /// The layout keeps creds in the folder: a folder without them is a possible orphan.
    pub creds_in_folder: bool,
}

/// What `status` found, per member, in the shape each kind can tell.
pub enum StatusRows {
    /// Company folders: counts, creds, records, locks, trash, pre-key windows.
    Folders(Vec<crate::core::inspect::CompanyStatus>),
    /// Store tenants: what a cleanup would do now, and what the server can tell.
    Tenants {
        reports: Vec<CompanyReport>,
        facts: Vec<store::TenantFacts>,
        /// What the store says it is (the Evolution prefix it found), and how it is reached.
        target: String,
        transport: Option<String>,
        /// Where the store keeps the janitor's state: what every host did.
        shared: Option<SharedStatus>,
    },
}

/// What `status` shows of the janitor's state kept in a store (every host's).
#[derive(Clone, Debug, Default)]
pub struct SharedStatus {
    /// Each tenant's last cleanup (in the order of the reports), whichever host ran it.
    pub last_cleanups: Vec<Option<crate::core::records::CleanupMark>>,
    /// Every host's last runs, by host name.
    pub runs_by_host: Vec<(String, crate::core::records::Runs)>,
    /// Each tenant's cooldown (the trigger's and the monitor's, `trigger::cooldown_until`),
    /// whichever host started it.
    pub cooldowns: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    /// Each tenant's rows on hold after a restore, whichever host ran it: how many, and until
    /// when the last hold runs.
    pub holds: Vec<(usize, Option<chrono::DateTime<chrono::Utc>>)>,
}

/// A member's lock: the guard of the state directory's file lock (none in a dry run), or who
/// holds it.
pub type Locked = Result<Option<LockGuard>, String>;

pub trait Fleet {
    /// What it is, for headers and messages: `sessions root /srv/x`, `store sqlite:/srv/a.db`.
    fn describe(&self) -> String;

    /// Where it is, as a report header field: (`sessions_path`, path) or (`store`, target).
    fn header(&self) -> (&'static str, String);

    /// What its members and their items are called in summaries: (`companies`, `files`),
    /// (`tenants`, `keys`).
    fn nouns(&self) -> (&'static str, &'static str);

    /// Files (keys) of a member and the reserved pre-keys among them (`margin`: the server
    /// window's, `core::tally`), and by type when `by_type` (for the metrics).
    fn count(
        &mut self,
        c: &Company,
        by_type: bool,
        margin: u64,
    ) -> io::Result<(Tally, Option<TypeCounts>)>;

    /// Cleans one member with `spec`: lock, plan, remove through the trash, report.
    fn clean(&mut self, c: &Company, state: &StateDir, spec: &CleanSpec) -> CompanyReport;

    /// Cleans `members` and hands each report to `each`, in order; a busy member is tried again
    /// until `fleet.lock_wait` has passed. `settle` runs right after each member is cleaned (on
    /// the worker, where there are several).
    fn clean_each(
        &mut self,
        members: &[Company],
        state: &StateDir,
        spec: &CleanSpec,
        fleet: &FleetSpec,
        settle: &(dyn Fn(&mut CompanyReport) + Sync),
        each: &mut dyn FnMut(CompanyReport),
    );

    /// What `status` shows of `members` (reads only: no lock, nothing written).
    fn status(
        &mut self,
        members: &[Company],
        state: &StateDir,
        spec: &StatusSpec,
    ) -> Result<StatusRows, String>;

    /// The member `wanted` names: its name, or with the company prefix left off (and for stores
    /// its SQLite file name or its label, as `status` shows it).
    fn resolve(&mut self, members: &[Company], prefix: &str, wanted: &str) -> Option<Company> {
        crate::core::companies::resolve(members, prefix, wanted).cloned()
    }

    /// Can this user remove what a run would remove, and write the state directory? (Folders:
    /// owners and modes, `core::access`.)
    fn check_access(
        &self,
        _members: &[Company],
        _state_dir: &std::path::Path,
    ) -> Result<(), crate::core::access::Denied> {
        Ok(())
    }

    /// Whether one `restore --run` undoes a whole run (stores restore tenant by tenant:
    /// `restore --list --company T` shows theirs).
    fn undo_all(&self) -> bool {
        false
    }

    /// What is wrong with a member's creds (corrupt, or missing beside its keys), if anything.
    fn creds_problem(&mut self, _c: &Company) -> Option<String> {
        None
    }

    /// Takes a member's lock as a cleanup does (restore, release); `unlock` after.
    fn lock(&mut self, c: &Company, state: &StateDir, holder: &str) -> io::Result<Locked>;

    /// Members cleaned at once without `--jobs` ([`crate::core::parallel::default_jobs`]).
    fn default_jobs(&self) -> usize {
        crate::core::parallel::default_jobs()
    }

    fn unlock(&mut self, _c: &Company) {}

    /// Takes the lock a trigger run holds over the whole fleet on every host (PostgreSQL,
    /// Redis); `Some(holder)` when another has it.
    fn lock_fleet(&mut self) -> Result<Option<String>, String> {
        Ok(None)
    }

    /// Puts a cleanup run back from the trash (under the member's lock).
    fn restore_run(
        &mut self,
        c: &Company,
        state: &StateDir,
        run: &str,
        opts: &RestoreOptions,
    ) -> Result<RestoreReport, RestoreError>;

    /// Puts a member back from a backup (under the member's lock).
    fn restore_backup(
        &mut self,
        _c: &Company,
        _state: &StateDir,
        _name: &str,
        _opts: &RestoreOptions,
    ) -> Result<RestoreReport, RestoreError> {
        Err(RestoreError::Usage(format!(
            "restore --backup works on folders only; {} restores from the trash (--run)",
            self.describe()
        )))
    }
}

/// Company folders under a root.
pub struct Folders {
    pub root: Folder,
    pub path: String,
    /// Where the creds are when they are not in the folders (Evolution's files mode).
    pub creds_from: Option<clean::CredsFrom>,
}

impl Folders {
    fn creds(&self, dir: &Folder, c: &Company) -> Option<crate::core::creds::Creds> {
        match &self.creds_from {
            Some(from) => from.read(&c.name).ok(),
            None => crate::core::creds::read_folder(dir).ok(),
        }
    }
}

impl Fleet for Folders {
    fn describe(&self) -> String {
        // Printed and logged: no control or bidi character of a path may reach a terminal.
        format!(
            "sessions root {}",
            crate::core::util::sanitize(std::ffi::OsStr::new(&self.path))
        )
    }

    fn nouns(&self) -> (&'static str, &'static str) {
        ("companies", "files")
    }

    fn header(&self) -> (&'static str, String) {
        ("sessions_path", self.path.clone())
    }

    fn count(
        &mut self,
        c: &Company,
        by_type: bool,
        margin: u64,
    ) -> io::Result<(Tally, Option<TypeCounts>)> {
        let dir = self.root.open_dir(&c.dir)?;
        if !by_type {
            let t = match &self.creds_from {
                None => tally::folder(&dir, margin)?,
                Some(_) => tally::folder_with(&dir, margin, &|| self.creds(&dir, c))?,
            };
            return Ok((t, None));
        }
        let mut counts: BTreeMap<Kind, usize> = Default::default();
        let entries = clean::scan(&dir)?;
        for e in entries.iter().filter(|e| clean::counted(e)) {
            *counts.entry(e.kind).or_default() += 1;
        }
        let reserved = match counts.contains_key(&Kind::PreKey) {
            true => self
                .creds(&dir, c)
                .map(|creds| tally::reserved_flags(&entries, &creds, margin))
                .unwrap_or_default()
                .into_iter()
                .filter(|r| *r)
                .count(),
            false => 0,
        };
        let t = Tally {
            files: counts.values().sum(),
            reserved,
        };
        Ok((t, Some(counts.into_iter().collect())))
    }

    fn clean(&mut self, c: &Company, state: &StateDir, spec: &CleanSpec) -> CompanyReport {
        clean_company(&self.root, c, state, spec)
    }

    /// Companies are independent: cleaned on `jobs` threads, handed on in company order.
    fn clean_each(
        &mut self,
        members: &[Company],
        state: &StateDir,
        spec: &CleanSpec,
        fleet: &FleetSpec,
        settle: &(dyn Fn(&mut CompanyReport) + Sync),
        each: &mut dyn FnMut(CompanyReport),
    ) {
        let root = &self.root;
        let work = |c: &Company| {
            let mut report = clean::clean_company_waiting(root, c, state, spec, fleet.lock_wait);
            settle(&mut report);
            report
        };
        crate::core::parallel::for_each_ordered(members, fleet.jobs, work, |_, r| each(r));
    }

    fn creds_problem(&mut self, c: &Company) -> Option<String> {
        let dir = self.root.open_dir(&c.dir).ok()?;
        clean::folder_creds_problem(&dir)
    }

    fn check_access(
        &self,
        members: &[Company],
        state_dir: &std::path::Path,
    ) -> Result<(), crate::core::access::Denied> {
        crate::core::access::check(&self.root, members, state_dir)
    }

    fn undo_all(&self) -> bool {
        true
    }

    fn status(
        &mut self,
        members: &[Company],
        state: &StateDir,
        spec: &StatusSpec,
    ) -> Result<StatusRows, String> {
        let now = spec.now.into();
        Ok(StatusRows::Folders(
            members
                .iter()
                .map(|c| {
                    let mut s = crate::core::inspect::inspect(
                        &self.root,
                        c,
                        state,
                        &spec.thresholds,
                        spec.cooldown,
                        crate::core::inspect::CredsRule {
                            margin: spec.rules.pre_key_margin,
                            from: self.creds_from.as_ref(),
                        },
                        now,
                    );
                    if spec.creds_in_folder {
                        crate::core::inspect::flag_orphan(&self.root, c, &mut s);
                    }
                    s
                })
                .collect(),
        ))
    }

    fn lock(&mut self, c: &Company, state: &StateDir, holder: &str) -> io::Result<Locked> {
        restore::lock_company(state, &c.name, holder).map(|r| r.map(Some))
    }

    fn restore_run(
        &mut self,
        c: &Company,
        state: &StateDir,
        run: &str,
        opts: &RestoreOptions,
    ) -> Result<RestoreReport, RestoreError> {
        restore::restore_run(&self.root, c, state, run, opts)
    }

    fn restore_backup(
        &mut self,
        c: &Company,
        state: &StateDir,
        name: &str,
        opts: &RestoreOptions,
    ) -> Result<RestoreReport, RestoreError> {
        restore::restore_backup(&self.root, c, state, name, opts)
    }
}

/// A store's tenants, on one connection (a cleanup: one per worker, where the store gives more).
pub struct Tenants {
    pub store: Box<dyn Store>,
    /// The store's key in the state directory (ledger, locks).
    pub store_key: String,
    pub description: String,
    /// `cleanup --legacy-rows` / `--remove-orphans`; never set by trigger or monitor.
    pub remove_legacy: bool,
    pub remove_orphans: bool,
}

impl Tenants {
    /// Up to `n` handles on the store for `n` workers, as many as it gives ([`Store::another`]);
    /// fewer than two: the tenants go one after the other on `store`.
    fn workers(&self, n: usize) -> Vec<Box<dyn Store + Send>> {
        let mut out = Vec::new();
        while n > 1 && out.len() < n {
            match self.store.another() {
                Ok(Some(h)) => out.push(h),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open another connection to the store; its tenants go one after the other");
                    break;
                }
            }
        }
        out
    }

    fn spec(&self, spec: &CleanSpec) -> store::clean::StoreCleanSpec {
        store::clean::StoreCleanSpec {
            clean: spec.clone(),
            store_key: self.store_key.clone(),
            remove_legacy: self.remove_legacy,
            remove_orphans: self.remove_orphans,
            batch: self.store.batch(),
        }
    }
}

impl Fleet for Tenants {
    fn describe(&self) -> String {
        format!(
            "store {}",
            crate::core::util::sanitize(std::ffi::OsStr::new(&self.description))
        )
    }

    fn nouns(&self) -> (&'static str, &'static str) {
        ("tenants", "keys")
    }

    fn header(&self) -> (&'static str, String) {
        ("store", self.description.clone())
    }

    fn count(
        &mut self,
        c: &Company,
        by_type: bool,
        margin: u64,
    ) -> io::Result<(Tally, Option<TypeCounts>)> {
        let io = |e: store::StoreError| io::Error::other(e.to_string());
        if !by_type {
            let tally = tally::store(self.store.as_mut(), &c.name, margin).map_err(io)?;
            return Ok((tally, None));
        }
        // By type (the metrics): one read of the creds and one scan give both the types and the
        // pre-key ids `tally::store` would read again.
        let files = self.store.count(&c.name).map_err(io)?;
        let creds = self.store.creds(&c.name).map_err(io)?;
        let mut counts: BTreeMap<Kind, usize> = Default::default();
        if creds.is_some() {
            *counts.entry(Kind::Creds).or_default() += 1;
        }
        let mut ids = Vec::new();
        self.store
            .scan(&c.name, &mut |row| {
                let kind = store::clean::planner_name(row.key_type, row.id)
                    .map_or(Kind::Unknown, |n| classify::classify(&n));
                *counts.entry(kind).or_default() += 1;
                if row.key_type == "pre-key" {
                    ids.extend(tally::pre_key_number(row.id));
                }
            })
            .map_err(io)?;
        let guard = creds
            .as_deref()
            .map(crate::core::creds::parse)
            .and_then(|c| c.pre_key_guard());
        let tally = Tally {
            files,
            reserved: tally::reserved(ids, guard, margin),
        };
        Ok((tally, Some(counts.into_iter().collect())))
    }

    fn clean(&mut self, c: &Company, state: &StateDir, spec: &CleanSpec) -> CompanyReport {
        let s = self.spec(spec);
        store::clean::clean_tenant(self.store.as_mut(), &c.name, state, &s)
    }

    /// On `fleet.jobs` threads where the store gives a handle per worker ([`Store::another`]:
    /// every store but Evolution with `--creds`), each with its own handle on the janitor's state; else one tenant
    /// after the other on one connection. Reports are handed on in tenant order either way.
    fn clean_each(
        &mut self,
        members: &[Company],
        state: &StateDir,
        spec: &CleanSpec,
        fleet: &FleetSpec,
        settle: &(dyn Fn(&mut CompanyReport) + Sync),
        each: &mut dyn FnMut(CompanyReport),
    ) {
        let s = self.spec(spec);
        let workers = self.workers(fleet.jobs.min(members.len()));
        if workers.len() < 2 {
            for c in members {
                let mut report = store::clean::clean_tenant_waiting(
                    self.store.as_mut(),
                    &c.name,
                    state,
                    &s,
                    fleet.lock_wait,
                );
                settle(&mut report);
                each(report);
            }
            return;
        }
        state.widen_shared(workers.len());
        let jobs = workers.len();
        let pool = std::sync::Mutex::new(workers);
        let work = |c: &Company| {
            // As many handles as threads: one is always free.
            let mut store = pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop()
                .expect("a handle per worker");
            let mut report = store::clean::clean_tenant_waiting(
                store.as_mut(),
                &c.name,
                state,
                &s,
                fleet.lock_wait,
            );
            pool.lock().unwrap_or_else(|p| p.into_inner()).push(store);
            settle(&mut report);
            report
        };
        crate::core::parallel::for_each_ordered(members, jobs, work, |_, r| each(r));
    }

    fn resolve(&mut self, members: &[Company], prefix: &str, wanted: &str) -> Option<Company> {
        let names: Vec<String> = members.iter().map(|c| c.name.clone()).collect();
        let t = store::resolve_tenant_or_label(self.store.as_mut(), &names, prefix, wanted)?;
        members.iter().find(|c| c.name == t).cloned()
    }

    /// A corrupt creds row (as the cleaner judges it: such a tenant is skipped). A tenant
    /// without one is an orphan question, reported by `status`, not an alert.
    fn creds_problem(&mut self, c: &Company) -> Option<String> {
        match self.store.creds(&c.name) {
            Ok(Some(bytes)) => {
                let creds = crate::core::creds::parse(&bytes);
                creds
                    .is_corrupt()
                    .then(|| creds.problem.unwrap_or_else(|| "creds are corrupt".into()))
            }
            Ok(None) | Err(_) => None,
        }
    }

    /// A dry run of each tenant (what a cleanup would remove now), and the server's facts.
    fn status(
        &mut self,
        members: &[Company],
        state: &StateDir,
        spec: &StatusSpec,
    ) -> Result<StatusRows, String> {
        let clean = CleanSpec {
            rules: spec.rules,
            dry_run: true,
            trash: false,
            verbose: false,
            now: spec.now,
            run_id: spec.run_id.clone(),
            holder: String::new(),
            pause_before_remove: None,
            creds_from: None,
        };
        let s = self.spec(&clean);
        let mut reports = Vec::new();
        let mut facts = Vec::new();
        for c in members {
            // Quietly: a status is not a cleanup, and must not read like one in the journal.
            reports.push(store::clean::inspect_tenant(
                self.store.as_mut(),
                &c.name,
                state,
                &s,
            ));
            facts.push(store::facts(self.store.as_mut(), &c.name).map_err(|e| e.to_string())?);
        }
        let shared = if state.has_shared() {
            let now = spec.now.into();
            let mut sh = SharedStatus {
                runs_by_host: crate::core::records::read_all_runs(state)?,
                ..SharedStatus::default()
            };
            for c in members {
                let r = crate::core::records::try_read_company(state, &c.name).unwrap_or_default();
                sh.last_cleanups.push(r.last_cleanup().cloned());
                sh.cooldowns
                    .push(crate::core::trigger::cooldown_until(&r, spec.cooldown, now));
                let held = r.active_holds(now);
                sh.holds
                    .push((r.active_holds(now).count(), held.map(|(_, u)| *u).max()));
            }
            Some(sh)
        } else {
            None
        };
        Ok(StatusRows::Tenants {
            shared,
            reports,
            facts,
            target: self
                .store
                .describe()
                .unwrap_or_else(|| self.description.clone()),
            transport: self.store.transport().map(|t| t.to_string()),
        })
    }

    fn lock(&mut self, c: &Company, state: &StateDir, holder: &str) -> io::Result<Locked> {
        // The same locks a cleanup takes: the state directory's (where the store's own lock
        // does not exclude every process) and the store's.
        let guard = match store::clean::local_lock(
            self.store.as_ref(),
            state,
            &self.store_key,
            &c.name,
            holder,
        ) {
            Ok(Ok(g)) => g,
            Ok(Err(holder)) => return Ok(Err(holder)),
            Err(e) => return Err(io::Error::other(e)),
        };
        match self.store.lock_tenant(&c.name) {
            Ok(TenantLock::Acquired) => Ok(Ok(guard)),
            Ok(TenantLock::Busy(holder)) => Ok(Err(holder)),
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }

    fn default_jobs(&self) -> usize {
        self.store.default_jobs()
    }

    fn unlock(&mut self, c: &Company) {
        self.store.unlock_tenant(&c.name);
    }

    fn lock_fleet(&mut self) -> Result<Option<String>, String> {
        match self.store.lock_global() {
            Ok(TenantLock::Acquired) => Ok(None),
            Ok(TenantLock::Busy(holder)) => Ok(Some(holder)),
            Err(e) => Err(e.to_string()),
        }
    }

    fn restore_run(
        &mut self,
        c: &Company,
        state: &StateDir,
        run: &str,
        opts: &RestoreOptions,
    ) -> Result<RestoreReport, RestoreError> {
        let o = store::undo::StoreRestore {
            only: opts.only,
            force: opts.force,
            dry_run: opts.dry_run,
            now: opts.now,
            hold: opts.hold,
            store_key: &self.store_key,
        };
        store::undo::restore_tenant_run(self.store.as_mut(), state, &c.name, run, &o)
    }
}

/// What cleaning a fleet came to.
#[derive(Debug, Default)]
pub struct FleetOutcome {
    pub totals: crate::core::report::Totals,
    pub exit: crate::exit::Exit,
}

impl FleetOutcome {
    /// Counts one company's report: totals, and the exit code (a failure outranks busy).
    pub fn add(&mut self, report: &CompanyReport) {
        use crate::exit::Exit;
        self.totals.add(report);
        if report.has_failure() {
            self.exit = self.exit.worst(Exit::Failed);
        } else if report.status == crate::core::report::Status::Busy {
            self.exit = self.exit.worst(Exit::Busy);
        }
    }
}

/// After one company (or store tenant) is cleaned: records it through `effects` (a failure to
/// record is that company's failure) and raises `cleanup_failed` when it failed. One copy for
/// folders and stores, so a store failure is as loud as a folder's.
pub fn settle(
    report: &mut CompanyReport,
    effects: &crate::core::effects::RunEffects,
    emergency: bool,
    trash: bool,
) {
    use crate::core::notify::Event;
    if let Err(e) = effects.record_cleanup(report, emergency, trash) {
        report.failed_files.push(crate::core::report::FileNote {
            file: "(state directory)".into(),
            reason: format!("cannot record the cleanup: {e}"),
        });
    }
    if report.has_failure() {
        let name = crate::core::util::sanitize(std::ffi::OsStr::new(&report.company));
        let err = report
            .error
            .clone()
            .or_else(|| {
                report
                    .failed_files
                    .first()
                    .map(|f| format!("{}: {}", f.file, f.reason))
            })
            .unwrap_or_default();
        effects.notify(
            Event::new(
                "cleanup_failed",
                "error",
                format!("cleanup of {name} failed: {err}"),
            )
            .company(&name, report.files_before),
        );
    }
}

/// How a fleet run goes beyond the rules.
#[derive(Clone, Copy, Debug, Default)]
pub struct FleetSpec {
    /// Companies (or a store's tenants) cleaned at once. Stores: only where the store gives a
    /// connection per worker ([`Store::another`], SQLite); others go one after the other.
    pub jobs: usize,
    pub emergency: bool,
    pub trash_retention: std::time::Duration,
    /// The daily cleanup and a trigger can start in the same minute: a busy member is tried
    /// again as soon as its lock is free, for at most this long (zero: not at all).
    pub lock_wait: std::time::Duration,
}

/// Cleans `members` of `fleet` (folders on `how.jobs` threads, a busy one waited for up to
/// `how.lock_wait`), records each through `effects` (a failure to record is that member's
/// failure, a failure raises `cleanup_failed`), and hands each report to `each` in order.
/// Then, in a real run, purges trash older than `how.trash_retention`. One copy for folders
/// and stores.
pub fn clean_fleet(
    fleet: &mut dyn Fleet,
    members: &[Company],
    state: &StateDir,
    spec: &CleanSpec,
    how: FleetSpec,
    effects: &crate::core::effects::RunEffects,
    mut each: impl FnMut(&CompanyReport),
) -> FleetOutcome {
    use crate::exit::Exit;
    let mut out = FleetOutcome::default();
    let settle_one = |r: &mut CompanyReport| settle(r, effects, how.emergency, spec.trash);
    fleet.clean_each(members, state, spec, &how, &settle_one, &mut |report| {
        out.add(&report);
        each(&report);
    });
    if !spec.dry_run {
        match crate::core::trash::purge(state.path(), how.trash_retention, spec.now.into()) {
            Ok(p) if p.runs > 0 => {
                tracing::info!(runs = p.runs, files = p.files, "old trash purged")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot purge the trash");
                out.exit = out.exit.worst(Exit::Failed);
            }
        }
        // The store's trash (every host's), where it keeps the janitor's state.
        let now: chrono::DateTime<chrono::Utc> = spec.now.into();
        let cut = now
            - chrono::Duration::from_std(how.trash_retention)
                .unwrap_or(chrono::Duration::days(36_500));
        match state.with_shared(|sh| (sh.describe(), sh.purge(cut))) {
            None => {}
            Some((_, Ok((runs, rows)))) if runs > 0 || rows > 0 => {
                tracing::info!(runs, rows, "old trash purged from the store")
            }
            Some((_, Ok(_))) => {}
            Some((what, Err(e))) => {
                tracing::warn!(error = %e, "cannot purge the trash in {what}");
                out.exit = out.exit.worst(Exit::Failed);
            }
        }
    }
    out
}
