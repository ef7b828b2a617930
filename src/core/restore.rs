//! Undo: files back from the trash, or a folder back from a backup. All of it under the
//! company's lock, so it never races a cleanup; and none of it makes a folder worse:
//!
//! - it refuses a folder that re-paired since (another WhatsApp identity) unless forced;
//! - it never removes a file before its replacement is complete: a copy goes to a temporary name
//!   (`O_EXCL`), gets the recorded owner, mode and mtime, is flushed to disk, and is swapped in atomically;
//!   only then does the old version go to the trash;
//! - it keeps the pairs cleanup keeps (`core::pairs`);
//! - what it puts back is on hold: no cleanup removes it again for a while.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::backup::{self, Unusable, copy_new, regular_files};
use crate::core::clean::read_creds;
use crate::core::companies::Company;
use crate::core::creds::{Creds, Identity};
use crate::core::folder::{EntryType, Folder};
use crate::core::lock::{LockAttempt, LockGuard};
use crate::core::manifest::{self, Manifest};
use crate::core::pairs::{self, Fate};
use crate::core::records;
use crate::core::report::FileNote;
use crate::core::state::StateDir;
use crate::core::state::TRASH_DIR;
use crate::core::store::shared::TrashRun;
use crate::core::trash;

/// Why a restore did not start. Nothing was changed in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The operator named something that does not exist (exit 2).
    #[error("{0}")]
    Usage(String),
    /// It exists, but restoring it would make things worse (exit 1).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<Unusable> for RestoreError {
    fn from(u: Unusable) -> RestoreError {
        match u {
            Unusable::Unknown(m) => RestoreError::Usage(m),
            Unusable::Refused(m) => RestoreError::Refused(m),
            Unusable::Io(e) => RestoreError::Io(e),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub company: String,
    pub source: String,
    pub dry_run: bool,
    pub restored: Vec<String>,
    /// Already in the folder with the same contents: nothing to do.
    pub identical: usize,
    /// Not put back because something newer is there now, in the folder or the store (and why):
    /// the run fails.
    pub skipped: Vec<FileNote>,
    pub failed: Vec<FileNote>,
    /// Files the run's list says it moved into the trash that are no longer there and that no
    /// earlier restore put back (someone deleted them from the trash): the run fails.
    pub missing: Vec<FileNote>,
    /// Where the run's trash is, when files are missing from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trash: Option<String>,
    /// The run left no list of what it moved into the trash (older versions, a run killed
    /// before it wrote one, a list deleted by hand): only what the trash holds could be checked.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unlisted: bool,
    /// Partners `--file` brought along.
    pub brought_along: Vec<FileNote>,
    /// Restored files are not cleaned up again before this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_hold_until: Option<DateTime<Utc>>,
    /// Why the restore stopped early (a full disk), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl RestoreReport {
    pub fn new(company: &str, source: String, dry_run: bool) -> RestoreReport {
        RestoreReport {
            company: company.to_owned(),
            source,
            dry_run,
            restored: Vec::new(),
            identical: 0,
            skipped: Vec::new(),
            failed: Vec::new(),
            missing: Vec::new(),
            trash: None,
            unlisted: false,
            brought_along: Vec::new(),
            on_hold_until: None,
            stopped: None,
        }
    }

    /// Everything asked for is in the folder as asked.
    pub fn complete(&self) -> bool {
        self.skipped.is_empty()
            && self.failed.is_empty()
            && self.missing.is_empty()
            && self.stopped.is_none()
    }
}

/// How to restore.
#[derive(Clone, Debug)]
pub struct RestoreOptions<'a> {
    /// Only these files (and their partners); empty = all.
    pub only: &'a [String],
    /// From a backup: replace files that differ (the current version goes to the trash).
    pub overwrite: bool,
    /// Restore into a folder that re-paired since.
    pub force: bool,
    pub dry_run: bool,
    /// Where replaced files go in the trash.
    pub run_id: &'a str,
    pub now: DateTime<Utc>,
    /// How long restored files stay on hold.
    pub hold: Duration,
}

/// Takes the company's lock, or says who holds it.
pub fn lock_company(
    state: &StateDir,
    company: &str,
    holder: &str,
) -> io::Result<Result<LockGuard, String>> {
    Ok(match state.lock_company(company, holder)? {
        LockAttempt::Acquired(g) => Ok(g),
        LockAttempt::Busy(h) => Err(h.unwrap_or_else(|| "unknown".into())),
    })
}

/// Run ids of a company's trash, sorted (they sort by time): the state directory's, and where
/// the store keeps the janitor's state, the runs of its trash with rows still in it.
pub fn runs(state: &StateDir, company: &str) -> Vec<String> {
    let mut v = local_runs(state, company);
    v.extend(
        shared_runs(state, Some(company))
            .into_iter()
            .map(|r| r.run_id),
    );
    v.sort();
    v.dedup();
    v
}

fn local_runs(state: &StateDir, company: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(state.path().join(TRASH_DIR).join(company)) else {
        return Vec::new();
    };
    let mut v: Vec<String> = dir
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

/// The runs of the store's trash (of one company, or all) that still hold rows, where the store
/// keeps the janitor's state; none without one. A trash that cannot be read is said in the log
/// and counts as empty here (a restore of a named run reports the error itself).
fn shared_runs(state: &StateDir, company: Option<&str>) -> Vec<TrashRun> {
    match state.with_shared(|sh| (sh.describe(), sh.trash_runs(company))) {
        None => Vec::new(),
        Some((_, Ok(runs))) => runs.into_iter().filter(|r| r.rows > 0).collect(),
        Some((what, Err(e))) => {
            tracing::warn!(error = %e, "cannot list the trash in {what}");
            Vec::new()
        }
    }
}

/// Why `run` has nothing left to undo when a run by that id existed: every row of it was put
/// back already (the store's trash remembers), or the records of `members` name it but its
/// trash is gone (purged after `trash.retention`). `None` when nothing knows the run.
pub fn why_nothing_left(state: &StateDir, run: &str, members: &[String]) -> Option<String> {
    let listed = state
        .with_shared(|sh| sh.trash_runs(None).ok())
        .flatten()
        .unwrap_or_default();
    let back: Vec<&TrashRun> = listed
        .iter()
        .filter(|r| r.run_id == run && r.rows == 0 && r.restored > 0)
        .collect();
    if !back.is_empty() {
        let rows: usize = back.iter().map(|r| r.restored).sum();
        let tenants: Vec<&str> = back.iter().map(|r| r.tenant.as_str()).collect();
        return Some(format!(
            "every row of run {run:?} was put back already ({rows} in {}): nothing left to undo",
            tenants.join(", ")
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut when = None;
    for m in members {
        let Ok(rec) = records::try_read_company(state, m) else {
            continue;
        };
        if let Some(c) = rec
            .cleanups
            .iter()
            .find(|c| c.run_id == run && c.trashed && c.removed > 0)
        {
            seen.push(m);
            when = Some(c.time);
        }
    }
    let when = when?;
    Some(format!(
        "run {run:?} ({}, {}) is no longer in the trash: it keeps a run for trash.retention, then purges it; nothing left to undo",
        when.format("%Y-%m-%d %H:%M UTC"),
        seen.join(", ")
    ))
}

/// One run that can be undone: what it removed into the trash, over the companies asked about.
#[derive(Clone, Debug, Serialize)]
pub struct UndoableRun {
    pub run_id: String,
    pub time: Option<DateTime<Utc>>,
    /// `cleanup`, `trigger`, `monitor` (auto-cleanup), `restore` (files a restore replaced);
    /// `None` when no record names it (records are bounded).
    pub command: Option<String>,
    /// The host that ran it, where the store's trash says (many hosts share one store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub companies: Vec<String>,
    /// Files (or, for a database store, rows) in the trash.
    pub files: usize,
    pub bytes: u64,
}

/// Every run with something in the trash of `companies` (all companies with a trash when
/// empty), newest first: what `restore --list` shows. The state directory's trash and, where
/// the store keeps the janitor's state, the store's (every host's runs).
pub fn undoable(state: &StateDir, companies: &[String]) -> Vec<UndoableRun> {
    let trash_dir = state.path().join(TRASH_DIR);
    let shared: Vec<TrashRun> = if companies.is_empty() {
        shared_runs(state, None)
    } else {
        companies
            .iter()
            .flat_map(|c| shared_runs(state, Some(c)))
            .collect()
    };
    let names: Vec<String> = if companies.is_empty() {
        let mut v: Vec<String> = std::fs::read_dir(&trash_dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        v.extend(shared.iter().map(|r| r.tenant.clone()));
        v.sort();
        v.dedup();
        v
    } else {
        companies.to_vec()
    };
    let mut by_run: BTreeMap<String, UndoableRun> = BTreeMap::new();
    for company in &names {
        let record = records::try_read_company(state, company).unwrap_or_default();
        let command_of = |run: &str| {
            record
                .cleanups
                .iter()
                .find(|c| c.run_id == run)
                .map(|c| c.by.clone())
        };
        let mut add = |run: &str, files: usize, bytes: u64, host: Option<&str>, time| {
            let entry = by_run.entry(run.to_owned()).or_insert_with(|| UndoableRun {
                run_id: run.to_owned(),
                time,
                command: None,
                host: None,
                companies: Vec::new(),
                files: 0,
                bytes: 0,
            });
            if entry.command.is_none() {
                entry.command = command_of(run);
            }
            if entry.host.is_none() {
                entry.host = host.map(str::to_owned);
            }
            if !entry.companies.contains(company) {
                entry.companies.push(company.clone());
            }
            entry.files += files;
            entry.bytes += bytes;
        };
        for run in local_runs(state, company) {
            let (files, bytes) = trash::run_size(&trash_dir.join(company).join(&run));
            if files == 0 {
                continue;
            }
            add(&run, files, bytes, None, trash::run_time(&run));
        }
        for r in shared.iter().filter(|r| &r.tenant == company) {
            add(
                &r.run_id,
                r.rows,
                r.bytes,
                Some(&r.host),
                Some(r.removed_at),
            );
        }
    }
    let mut out: Vec<UndoableRun> = by_run.into_values().collect();
    out.sort_by(|a, b| (b.time, &b.run_id).cmp(&(a.time, &a.run_id)));
    out
}

/// The companies whose trash holds `run` (among `companies`, or all when empty).
pub fn companies_of_run(state: &StateDir, run: &str, companies: &[String]) -> Vec<String> {
    undoable(state, companies)
        .into_iter()
        .find(|r| r.run_id == run)
        .map(|r| r.companies)
        .unwrap_or_default()
}

/// The most recent run of a company that still has files (or rows) in the trash.
pub fn latest_run(state: &StateDir, company: &str) -> Option<String> {
    let local = local_runs(state, company).into_iter().rev().find(|run| {
        std::fs::read_dir(state.path().join(TRASH_DIR).join(company).join(run))
            .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| !trash::is_list(&e.file_name()))))
    });
    // Run ids sort by time, whichever host wrote them.
    let shared = shared_runs(state, Some(company))
        .into_iter()
        .map(|r| r.run_id)
        .max();
    local.max(shared)
}

/// What the run's list says it moved into the trash that is neither there now nor put back by
/// an earlier restore. `None` when the run left no list.
fn missing_from_trash(
    trash_dir: &Folder,
    in_trash: &BTreeSet<String>,
) -> io::Result<Option<Vec<String>>> {
    let Some(listed) = trash::read_list(trash_dir, trash::REMOVED_LIST)? else {
        return Ok(None);
    };
    let restored: BTreeSet<String> = trash::read_list(trash_dir, trash::RESTORED_LIST)?
        .unwrap_or_default()
        .into_iter()
        .map(|l| l.name)
        .collect();
    let mut missing: Vec<String> = listed
        .into_iter()
        .map(|l| l.name)
        .filter(|n| !in_trash.contains(n) && !restored.contains(n))
        .collect();
    missing.sort();
    missing.dedup();
    Ok(Some(missing))
}

fn valid_name(name: &str) -> bool {
    !(name.contains('/') || name == ".." || name == "." || name.is_empty())
}

/// Refuses a restore into a folder whose identity differs from the source's, unless forced.
pub(crate) fn check_identity(
    company: &str,
    source: &str,
    then: Option<&Identity>,
    now: &Creds,
    force: bool,
) -> Result<(), RestoreError> {
    let (Some(then), Some(current)) = (then, Identity::of(now)) else {
        return Ok(());
    };
    if then.differs(&current) && !force {
        return Err(RestoreError::Refused(format!(
            "{company} re-paired since {source} (then {}, now {}): its old sessions and keys belong to another WhatsApp identity; nothing was changed (--force restores anyway)",
            then.describe(),
            current.describe()
        )));
    }
    Ok(())
}

/// The account identity a cleanup run recorded (the creds it saw), if it recorded one.
pub(crate) fn identity_of_run(record: &records::CompanyRecord, run: &str) -> Option<Identity> {
    record
        .cleanups
        .iter()
        .rev()
        .find(|m| m.run_id == run)
        .and_then(|m| m.identity.clone())
}

/// Our own users, from the folder's creds or else from the source's identity.
pub(crate) fn own_users(creds: &Creds, then: Option<&Identity>) -> Vec<String> {
    let mut own: Vec<String> = creds.own_users().into_iter().map(str::to_owned).collect();
    if own.is_empty()
        && let Some(t) = then
    {
        for jid in [&t.me_id, &t.me_lid].into_iter().flatten() {
            let u = crate::core::creds::jid_user(jid);
            if !u.is_empty() {
                own.push(u.to_owned());
            }
        }
    }
    own
}

/// Regular files of the folder, by name (UTF-8 names only: the others are never ours).
fn names_in(dir: &Folder) -> io::Result<BTreeSet<String>> {
    Ok(regular_files(dir)?
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .collect())
}

/// The files to consider: all of the source, or `--file` names plus their partners. Names
/// the source does not have are failures.
fn candidates(
    source: &BTreeSet<String>,
    only: &[String],
    own: &[&str],
    what: &str,
    report: &mut RestoreReport,
) -> BTreeSet<String> {
    if only.is_empty() {
        return source.clone();
    }
    for w in only {
        if !source.contains(w) {
            report.failed.push(FileNote {
                file: crate::core::util::sanitize(OsStr::new(w)),
                reason: format!("not in {what}"),
            });
        }
    }
    let (chosen, added) = pairs::with_partners(only, source, own);
    for (p, because) in added {
        report.brought_along.push(FileNote {
            file: p,
            reason: format!("restored together with {because}"),
        });
    }
    chosen.into_iter().filter(|n| source.contains(n)).collect()
}

/// Moves files of `run` from the trash back into the company folder. Never overwrites.
pub fn restore_run(
    root: &Folder,
    company: &Company,
    state: &StateDir,
    run: &str,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    let dir = root.open_dir(&company.dir)?;
    let known = runs(state, &company.name);
    if !valid_name(run) || !known.iter().any(|r| r == run) {
        let list = if known.is_empty() {
            "the trash is empty".to_owned()
        } else {
            format!("runs in the trash: {}", known.join(", "))
        };
        return Err(RestoreError::Usage(format!(
            "no run {run:?} in the trash of {}; {list}",
            company.name
        )));
    }
    let trash = state
        .folder()?
        .open_dir(OsStr::new(TRASH_DIR))?
        .open_dir(OsStr::new(&company.name))?
        .open_dir(OsStr::new(run))?;
    let creds = read_creds(&dir).map_err(RestoreError::Refused)?;
    let record = records::try_read_company(state, &company.name).unwrap_or_default();
    let then = identity_of_run(&record, run);
    check_identity(
        &company.name,
        &format!("run {run}"),
        then.as_ref(),
        &creds,
        opts.force,
    )?;
    let own = own_users(&creds, then.as_ref());
    let own: Vec<&str> = own.iter().map(String::as_str).collect();
    let mut report = RestoreReport::new(&company.name, run.to_owned(), opts.dry_run);
    let mut source = names_in(&trash)?;
    source.retain(|n| !trash::is_list(OsStr::new(n)));
    // Only a whole-run restore answers for every file of the run (`--file` answers for its own).
    if opts.only.is_empty() {
        match missing_from_trash(&trash, &source)? {
            None => report.unlisted = true,
            Some(missing) if !missing.is_empty() => {
                report.trash = Some(trash.path().display().to_string());
                for file in missing {
                    report.missing.push(FileNote {
                        file: crate::core::util::sanitize(OsStr::new(&file)),
                        reason: format!(
                            "run {run} moved it into the trash, it is not there any more and no restore put it back"
                        ),
                    });
                }
            }
            Some(_) => {}
        }
    }
    let wanted = candidates(
        &source,
        opts.only,
        &own,
        &format!("the trash of run {run}"),
        &mut report,
    );
    let folder = names_in(&dir)?;
    let mut fates: BTreeMap<String, Fate> = BTreeMap::new();
    for name in &wanted {
        let fate = match dir.stat(OsStr::new(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Fate::Restore,
            Err(e) => Fate::Kept(format!("cannot stat the folder's copy: {e}")),
            Ok(_) if same_bytes(&dir, &trash, name) => Fate::Same,
            Ok(_) => {
                Fate::Kept("exists again in the folder (the app wrote a newer one): kept".into())
            }
        };
        fates.insert(name.clone(), fate);
    }
    let since = trash::run_time(run);
    pairs::keep_pairs(&mut fates, &folder, |p| written_after(&dir, p, since), &own);
    for (name, fate) in fates {
        let os = OsStr::new(&name);
        match fate {
            Fate::Same => report.identical += 1,
            Fate::Kept(reason) => report.skipped.push(FileNote { file: name, reason }),
            Fate::Restore if opts.dry_run => report.restored.push(name),
            // RENAME_NOREPLACE: if the app creates the file in between, the rename fails.
            Fate::Restore => match trash.move_to(os, &dir, os) {
                Ok(()) => report.restored.push(name),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    report.skipped.push(FileNote {
                        file: name,
                        reason: "appeared in the folder meanwhile: kept".into(),
                    })
                }
                Err(e) => report.failed.push(FileNote {
                    file: name,
                    reason: e.to_string(),
                }),
            },
        }
    }
    if !opts.dry_run {
        dir.sync()?;
        // Before anything else: what this restore put back is not missing to the next one.
        let put_back: Vec<trash::Listed> = report
            .restored
            .iter()
            .map(|n| trash::Listed {
                name: n.clone(),
                size: 0,
            })
            .collect();
        // The files are back either way; failing here would lose the report of what was done.
        if let Err(e) = trash::append_list(&trash, trash::RESTORED_LIST, &put_back) {
            report.failed.push(FileNote {
                file: trash::RESTORED_LIST.into(),
                reason: format!(
                    "restored, but could not record it in the run's trash ({e}): a later restore of run {run} will call them missing"
                ),
            });
        }
        let left = regular_files(&trash)?
            .into_iter()
            .any(|n| !trash::is_list(&n));
        // A run with files missing keeps its folder (and lists): the next restore says so again.
        if !left && report.missing.is_empty() {
            for list in [trash::REMOVED_LIST, trash::RESTORED_LIST] {
                let _ = trash.unlink(OsStr::new(list));
            }
            let company_trash = state
                .folder()?
                .open_dir(OsStr::new(TRASH_DIR))?
                .open_dir(OsStr::new(&company.name))?;
            let _ = company_trash.remove_dir(OsStr::new(run));
        }
    }
    hold(state, company, &mut report, opts)?;
    Ok(report)
}

/// Same size and bytes (files the app keeps are small; a large one is simply "different").
fn same_bytes(a: &Folder, b: &Folder, name: &str) -> bool {
    let n = OsStr::new(name);
    matches!((a.read_file(n, 64 << 20), b.read_file(n, 64 << 20)), (Ok(x), Ok(y)) if x == y)
}

/// The folder's `name` changed after `since` (unknown time: assume it did).
fn written_after(dir: &Folder, name: &str, since: Option<DateTime<Utc>>) -> bool {
    match (dir.stat(OsStr::new(name)), since) {
        (Ok(m), Some(t)) => DateTime::<Utc>::from(m.mtime) > t,
        (Ok(_), None) => true,
        (Err(_), _) => false,
    }
}

/// Puts `names` (what was restored, as the planner names them) on hold in the member's record:
/// no cleanup, trigger or monitor removes them before `now + hold`. Folders and stores alike.
pub(crate) fn hold_restored(
    state: &StateDir,
    member: &str,
    names: &[String],
    report: &mut RestoreReport,
    now: DateTime<Utc>,
    hold: Duration,
    dry_run: bool,
) -> io::Result<()> {
    if report.restored.is_empty() || hold.is_zero() {
        return Ok(());
    }
    let until = now + chrono::Duration::from_std(hold).unwrap_or(chrono::Duration::days(3650));
    report.on_hold_until = Some(until);
    if dry_run {
        return Ok(());
    }
    records::update_company(state, member, |rec| rec.hold(names, until, now))
}

fn hold(
    state: &StateDir,
    company: &Company,
    report: &mut RestoreReport,
    opts: &RestoreOptions,
) -> io::Result<()> {
    let names = report.restored.clone();
    hold_restored(
        state,
        &company.name,
        &names,
        report,
        opts.now,
        opts.hold,
        opts.dry_run,
    )
}

/// Ends every hold of a company; returns how many files were on hold.
pub fn release(state: &StateDir, company: &str, now: DateTime<Utc>) -> io::Result<usize> {
    let mut n = 0;
    if records::try_read_company(state, company)
        .unwrap_or_default()
        .holds
        .is_empty()
    {
        return Ok(0);
    }
    records::update_company(state, company, |rec| {
        n = rec.active_holds(now).count();
        rec.holds.clear();
    })?;
    Ok(n)
}

/// What a backup's file is, next to the folder's.
enum Current {
    Missing,
    Same,
    Differs,
    Other(EntryType),
}

fn current(dir: &Folder, f: &manifest::FileRecord) -> io::Result<Current> {
    let name = OsStr::new(&f.name);
    let meta = match dir.stat(name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Current::Missing),
        Err(e) => return Err(e),
        Ok(m) => m,
    };
    if meta.entry_type != EntryType::File {
        return Ok(Current::Other(meta.entry_type));
    }
    if meta.size != f.size {
        return Ok(Current::Differs);
    }
    let (_, sum) = manifest::checksum(dir.open_file(name)?)?;
    Ok(if sum == f.fnv1a64 {
        Current::Same
    } else {
        Current::Differs
    })
}

fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error())
}

/// Puts files back from a backup. Missing files are copied; identical ones left; different
/// ones kept unless `overwrite`. The manifest is verified before anything is touched.
pub fn restore_backup(
    root: &Folder,
    company: &Company,
    state: &StateDir,
    wanted_name: &str,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    let dir = root.open_dir(&company.dir)?;
    let name = backup::resolve(state, &company.name, wanted_name)?;
    if !valid_name(&name) {
        return Err(RestoreError::Usage(format!(
            "{name:?} is not a backup name"
        )));
    }
    let (src, m): (Folder, Manifest) = backup::open_verified(state, &company.name, &name)?;
    let creds = read_creds(&dir).map_err(RestoreError::Refused)?;
    check_identity(
        &company.name,
        &format!("backup {name}"),
        m.identity.as_ref(),
        &creds,
        opts.force,
    )?;
    let own = own_users(&creds, m.identity.as_ref());
    let own: Vec<&str> = own.iter().map(String::as_str).collect();
    let mut report = RestoreReport::new(&company.name, format!("backup {name}"), opts.dry_run);
    let by_name: BTreeMap<&str, &manifest::FileRecord> =
        m.files.iter().map(|f| (f.name.as_str(), f)).collect();
    let source: BTreeSet<String> = by_name.keys().map(|s| s.to_string()).collect();
    let wanted = candidates(
        &source,
        opts.only,
        &own,
        &format!("backup {name}"),
        &mut report,
    );
    let folder = names_in(&dir)?;
    let mut fates: BTreeMap<String, Fate> = BTreeMap::new();
    let mut replaces: BTreeSet<String> = BTreeSet::new();
    for n in &wanted {
        let fate = match current(&dir, by_name[n.as_str()]) {
            Ok(Current::Missing) => Fate::Restore,
            Ok(Current::Same) => Fate::Same,
            Ok(Current::Differs) if opts.overwrite => {
                replaces.insert(n.clone());
                Fate::Restore
            }
            Ok(Current::Differs) => Fate::Kept("differs: kept (--overwrite replaces it)".into()),
            Ok(Current::Other(t)) => {
                Fate::Kept(format!("is a {} in the folder: not touched", t.as_str()))
            }
            Err(e) => Fate::Kept(format!("cannot read the folder's copy: {e}")),
        };
        fates.insert(n.clone(), fate);
    }
    pairs::keep_pairs(
        &mut fates,
        &folder,
        |p| written_after(&dir, p, Some(m.created)),
        &own,
    );
    let trash =
        crate::core::remove::Trash::new(|| state.run_dir(TRASH_DIR, &company.name, opts.run_id));
    let todo: Vec<(String, Fate)> = fates.into_iter().collect();
    let total_restore = todo.iter().filter(|(_, f)| *f == Fate::Restore).count();
    let mut done_restore = 0;
    // Stage 1: every copy under a temporary name (nothing in the folder changes yet).
    let mut staged: Vec<(String, String)> = Vec::new();
    for (n, fate) in todo {
        match fate {
            Fate::Same => {
                report.identical += 1;
                // Same bytes, wrong owner or mode (say, put back by hand as root): fix those.
                let f = by_name[n.as_str()];
                if !opts.dry_run
                    && dir.owner(OsStr::new(&n)).is_ok_and(|o| o != f.owner)
                    && let Err(e) = dir
                        .open_file(OsStr::new(&n))
                        .and_then(|file| f.owner.apply(&file))
                {
                    report.failed.push(FileNote {
                        file: n,
                        reason: format!(
                            "identical, but cannot give it its owner and mode back: {e}"
                        ),
                    });
                }
            }
            Fate::Kept(reason) => report.skipped.push(FileNote { file: n, reason }),
            Fate::Restore if opts.dry_run => report.restored.push(n),
            Fate::Restore if report.stopped.is_some() => report.skipped.push(FileNote {
                file: n,
                reason:
                    "not restored: the restore stopped (disk full); the folder's copy is unchanged"
                        .into(),
            }),
            Fate::Restore => {
                let f = by_name[n.as_str()];
                match stage(&src, f, &dir, replaces.contains(&n), &trash) {
                    Ok(tmp) => staged.push((n, tmp)),
                    Err(e) if is_disk_full(&e) => {
                        report.stopped = Some(format!(
                            "no space left on the device while copying {n}; it and the {} files after it were not restored, and the folder's own copies of them are unchanged",
                            total_restore - done_restore - 1
                        ));
                        report.failed.push(FileNote {
                            file: n,
                            reason: format!("{e}: not restored, the folder's copy is unchanged"),
                        });
                    }
                    Err(e) => report.failed.push(FileNote {
                        file: n,
                        reason: format!("{e}: not restored, the folder's copy is unchanged"),
                    }),
                }
                done_restore += 1;
            }
        }
    }
    // One flush for all copies (an fsync per file costs minutes on a 37,000-file folder), then
    // stage 2: each copy renamed (or exchanged) into place.
    if !staged.is_empty()
        && let Err(e) = dir.sync_fs()
    {
        for (n, tmp) in staged.drain(..) {
            let _ = dir.unlink(OsStr::new(&tmp));
            report.failed.push(FileNote {
                file: n,
                reason: format!("cannot flush the copies to disk ({e}): not restored, the folder's copy is unchanged"),
            });
        }
    }
    for (n, tmp) in staged {
        match commit(
            &dir,
            OsStr::new(&tmp),
            OsStr::new(&n),
            replaces.contains(&n),
            &trash,
        ) {
            Ok(Put::Done) => report.restored.push(n),
            Ok(Put::DoneOldLeft(why)) => {
                report.failed.push(FileNote {
                    file: n.clone(),
                    reason: why,
                });
                report.restored.push(n);
            }
            Ok(Put::Appeared) => report.skipped.push(FileNote {
                file: n,
                reason: "appeared in the folder meanwhile: kept".into(),
            }),
            Err(e) => report.failed.push(FileNote {
                file: n,
                reason: format!("{e}: not restored, the folder's copy is unchanged"),
            }),
        }
    }
    if !opts.dry_run {
        dir.sync()?;
        if opts.only.is_empty()
            && dir.own_owner()? != m.folder
            && let Err(e) = dir.set_own_owner(m.folder)
        {
            report.failed.push(FileNote {
                file: ".".into(),
                reason: format!("cannot give the folder its owner and mode back: {e}"),
            });
        }
    }
    hold(state, company, &mut report, opts)?;
    Ok(report)
}

enum Put {
    Done,
    /// Restored, but the replaced version could not go to the trash: where it is.
    DoneOldLeft(String),
    /// The app created the file since it was found missing: left alone.
    Appeared,
}

/// Copies `f` from the backup to a temporary name in the folder (`O_EXCL`: never following or
/// opening anything planted there) with the recorded owner, mode and mtime, and checks the copy
/// against the manifest. Returns the temporary name; the caller flushes, then [`commit`]s.
fn stage(
    src: &Folder,
    f: &manifest::FileRecord,
    dir: &Folder,
    replace: bool,
    trash: &crate::core::remove::Trash,
) -> io::Result<String> {
    let name = OsStr::new(&f.name);
    let tmp = format!(".{}.janitor-restore-{}", f.name, std::process::id());
    if replace {
        // The old version must be able to reach the trash by rename before anything changes.
        let t = trash.folder()?;
        if t.meta()?.dev != dir.meta()?.dev {
            return Err(io::Error::other(
                "the trash is on another file system, so the current version could not be kept; not replaced",
            ));
        }
    }
    let (_, size, sum) = copy_new(
        src,
        name,
        dir,
        OsStr::new(&tmp),
        Some(f.owner),
        Some(f.mtime()),
        false,
    )?;
    if size != f.size || sum != f.fnv1a64 {
        let _ = dir.unlink(OsStr::new(&tmp));
        return Err(io::Error::other(
            "the backup's copy changed since it was verified; not restored",
        ));
    }
    Ok(tmp)
}

/// Puts a flushed copy in place: an atomic rename that never replaces (missing file) or an
/// atomic exchange (replacement), so the folder has a complete `name` at every moment; the
/// replaced version then goes to the trash. On error the copy is removed and `name` is as it was.
fn commit(
    dir: &Folder,
    tmp: &OsStr,
    name: &OsStr,
    replace: bool,
    trash: &crate::core::remove::Trash,
) -> io::Result<Put> {
    if !replace {
        return match dir.move_to(tmp, dir, name) {
            Ok(()) => Ok(Put::Done),
            Err(e) => {
                let _ = dir.unlink(tmp);
                if e.kind() == io::ErrorKind::AlreadyExists {
                    Ok(Put::Appeared)
                } else {
                    Err(e)
                }
            }
        };
    }
    if let Err(e) = dir.exchange(tmp, name) {
        let _ = dir.unlink(tmp);
        return Err(e);
    }
    // `tmp` now holds the replaced version.
    match trash.folder().and_then(|t| dir.move_to(tmp, t, name)) {
        Ok(()) => Ok(Put::Done),
        Err(e) => Ok(Put::DoneOldLeft(format!(
            "restored, but the replaced version could not go to the trash ({e}); it is still in the folder as {}",
            tmp.to_string_lossy()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trashed(state: &StateDir, company: &str, run: &str, files: &[&str]) {
        let dir = state.path().join(TRASH_DIR).join(company).join(run);
        std::fs::create_dir_all(&dir).unwrap();
        for f in files {
            std::fs::write(dir.join(f), "{}").unwrap();
        }
    }

    #[test]
    fn undoable_runs_are_grouped_by_run_newest_first_with_their_command() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::new(tmp.path().join("state"));
        let (older, newer) = ("20261201T030000Z-1", "20261202T030000Z-2");
        trashed(&state, "company_1", older, &["a.json", "b.json"]);
        trashed(&state, "company_1", newer, &["c.json"]);
        trashed(&state, "company_2", newer, &["d.json", "e.json"]);
        trashed(&state, "company_2", "20261203T030000Z-3", &[]); // emptied by a restore
        records::update_company(&state, "company_1", |r| {
            r.push_cleanup(records::CleanupMark {
                run_id: older.into(),
                time: trash::run_time(older).unwrap(),
                by: "trigger".into(),
                emergency: false,
                status: "ok".into(),
                before: 10,
                after: 8,
                removed: 2,
                trashed: true,
                identity: None,
                next_pre_key_id: None,
                reserved_after: None,
                host: None,
            })
        })
        .unwrap();
        let all = undoable(&state, &[]);
        let ids: Vec<&str> = all.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, [newer, older]);
        assert_eq!(all[0].companies, ["company_1", "company_2"]);
        assert_eq!(all[0].files, 3);
        assert_eq!(all[0].command, None, "no record names it");
        assert_eq!(all[1].command.as_deref(), Some("trigger"));
        assert_eq!(all[1].files, 2);
        let one = undoable(&state, &["company_2".to_owned()]);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].files, 2);
        assert_eq!(
            companies_of_run(&state, newer, &[]),
            ["company_1", "company_2"]
        );
        assert!(companies_of_run(&state, "20200101T000000Z-9", &[]).is_empty());
    }
}
