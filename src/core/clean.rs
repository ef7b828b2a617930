//! Cleaning one company: open → lock → scan → read creds → plan → execute → report.
//! Every command that cleans (`cleanup`, `trigger`, `monitor --auto-cleanup`) comes through here,
//! so they share one lock, one planner and one removal path.

use std::io;
use std::time::{Duration, Instant, SystemTime};

use tracing::{debug, info, warn};

use crate::core::companies::Company;
use crate::core::creds::{self, Creds};
use crate::core::execute::{self, Execution, Removal, Remover};
use crate::core::folder::{Folder, Meta};
use crate::core::lock::LockAttempt;
use crate::core::plan::{self, Action, Entry};
use crate::core::remove::{self, Disposal, Outcome, Trash};
use crate::core::report::{CompanyReport, FileDecision, FileNote, Status};
use crate::core::rules::Rules;
use crate::core::state::StateDir;
use crate::core::util::sanitize;

/// How to clean.
#[derive(Clone, Debug)]
pub struct CleanSpec {
    pub rules: Rules,
    pub dry_run: bool,
    /// Move into the state directory's trash instead of unlinking.
    pub trash: bool,
    /// Keep every file's decision in the report.
    pub verbose: bool,
    pub now: SystemTime,
    pub run_id: String,
    /// What the lock file says holds it (`cleanup`, `trigger`, …).
    pub holder: String,
    /// Test hook: sleep between planning and removal, to let a test race the run.
    pub pause_before_remove: Option<Duration>,
    /// Where creds are when not in the folder (Evolution's files mode: its database).
    pub creds_from: Option<CredsFrom>,
}

/// Creds kept outside the company folder, by company name.
pub trait CredsSource: Send + Sync {
    /// The creds JSON as Baileys wrote it; `None`: no creds for this company.
    fn creds(&self, company: &str) -> Result<Option<Vec<u8>>, String>;
    /// Where they are, for messages.
    fn describe(&self) -> String;
}

/// A shared [`CredsSource`] that cleaning specs can carry and clone.
#[derive(Clone)]
pub struct CredsFrom(pub std::sync::Arc<dyn CredsSource>);

impl std::fmt::Debug for CredsFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.describe())
    }
}

impl CredsFrom {
    /// The company's creds, parsed; `Err` when the source cannot be read.
    pub fn read(&self, company: &str) -> Result<Creds, String> {
        Ok(match self.0.creds(company)? {
            Some(bytes) => creds::parse(&bytes),
            None => Creds::missing(),
        })
    }
}

pub use crate::core::creds::read_folder as read_creds;

/// Reads a folder's entries and classifies them (no stat).
pub fn scan(dir: &Folder) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    dir.for_each_entry(|name, t| entries.push(Entry::new(name, t)))?;
    Ok(entries)
}

/// Regular, non-hidden files: the count the thresholds are about.
pub fn counted(e: &Entry) -> bool {
    crate::core::folder::is_counted(&e.name, e.entry_type)
}

pub fn clean_company(
    root: &Folder,
    company: &Company,
    state: &StateDir,
    spec: &CleanSpec,
) -> CompanyReport {
    let started = Instant::now();
    let mut report = clean_inner(root, company, state, spec);
    report.duration_ms = started.elapsed().as_millis() as u64;
    match report.status {
        Status::Ok => info!(
            company = %sanitize(company.name.as_ref()),
            before = report.files_before,
            after = report.files_after,
            removed = report.removed,
            bytes = report.bytes_freed,
            dry_run = spec.dry_run,
            "company cleaned"
        ),
        Status::Busy => {
            warn!(company = %sanitize(company.name.as_ref()), holder = report.lock_holder.as_deref().unwrap_or("unknown"), "company skipped: lock busy")
        }
        Status::Failed => {
            warn!(company = %sanitize(company.name.as_ref()), error = report.error.as_deref().unwrap_or(""), "company failed")
        }
    }
    report
}

fn clean_inner(
    root: &Folder,
    company: &Company,
    state: &StateDir,
    spec: &CleanSpec,
) -> CompanyReport {
    let mut report = CompanyReport::new(&company.name);
    let dir = match root.open_dir(&company.dir) {
        Ok(d) => d,
        Err(e) => return CompanyReport::failed(&company.name, open_error(&e)),
    };
    if company.dir != "." && is_other_mount(root, &dir) {
        return CompanyReport::failed(&company.name, "is a mount point; not crossed");
    }

    // A dry run changes nothing, not even a lock file.
    let _guard = if spec.dry_run {
        None
    } else {
        match state.lock_company(&company.name, &spec.holder) {
            Ok(LockAttempt::Acquired(g)) => Some(g),
            Ok(LockAttempt::Busy(holder)) => {
                report.status = Status::Busy;
                report.lock_holder = Some(holder.unwrap_or_else(|| "unknown".into()));
                return report;
            }
            Err(e) => {
                return CompanyReport::failed(&company.name, format!("cannot take the lock: {e}"));
            }
        }
    };

    let mut entries = match scan(&dir) {
        Ok(e) => e,
        Err(e) => {
            return CompanyReport::failed(&company.name, format!("cannot read the folder: {e}"));
        }
    };
    let creds = match &spec.creds_from {
        Some(from) => from.read(&company.name),
        None => read_creds(&dir),
    };
    let creds = match creds {
        Ok(c) => c,
        Err(e) => return CompanyReport::failed(&company.name, e),
    };
    report.creds = Some(creds.state().as_str());
    report.identity = creds::Identity::of(&creds);
    // Files put back by `restore` stay until their hold ends.
    let record = match crate::core::records::try_read_company(state, &company.name) {
        Ok(r) => r,
        // Without the record the holds are unknown: cleaning could remove restored files.
        Err(why) => {
            return CompanyReport::failed(
                &company.name,
                format!("{why}; holds of restored files unknown, nothing changed"),
            );
        }
    };
    if !record.holds.is_empty() {
        for e in entries.iter_mut() {
            if let Some(until) = e.name.to_str().and_then(|n| record.holds.get(n)) {
                e.held_until = Some((*until).into());
            }
        }
    }
    report.next_pre_key_id = creds.next_pre_key_id;
    for e in entries.iter().filter(|e| counted(e)) {
        report.files_before += 1;
        *report.files_by_type.entry(e.kind).or_default() += 1;
    }
    let reserved = crate::core::tally::reserved_flags(&entries, &creds, spec.rules.pre_key_margin);
    report.reserved_before = reserved.iter().filter(|r| **r).count();
    report.reserved_after = report.reserved_before;
    if creds.is_corrupt() {
        let problem = creds.problem.clone().unwrap_or_default();
        return CompanyReport {
            status: Status::Failed,
            error: Some(format!(
                "{problem} (still so after re-reading for 300 ms); company skipped, nothing changed. Leave creds.json as it is and check the app's log: it may be rewriting it"
            )),
            files_after: report.files_before,
            reserved_after: report.reserved_before,
            ..report
        };
    }

    let wants = plan::wants_meta(&entries, &creds, &spec.rules);
    // The planner sees age and size; the folder keeps dev/ino to re-check before removing.
    let mut file_ids: Vec<Option<FileId>> = vec![None; entries.len()];
    for ((e, want), id) in entries.iter_mut().zip(wants).zip(file_ids.iter_mut()) {
        if !want {
            continue;
        }
        match dir.stat(&e.name) {
            Ok(m) => {
                e.stat = Some(m.into());
                *id = Some(FileId {
                    dev: m.dev,
                    ino: m.ino,
                });
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => report.failed_files.push(FileNote {
                file: sanitize(&e.name),
                reason: format!("cannot stat: {err}"),
            }),
        }
    }
    let plan = plan::plan(&entries, &creds, &spec.rules, spec.now);
    report.last_activity = plan::last_activity(&entries, spec.now).map(|t| t.min(spec.now).into());
    if spec.verbose {
        report.decisions = entries
            .iter()
            .zip(&plan.decisions)
            .map(|(e, d)| FileDecision {
                file: sanitize(&e.name),
                kind: e.kind,
                action: match d.action {
                    Action::Keep => "keep",
                    Action::Remove => "remove",
                },
                reason: d.reason.to_string(),
            })
            .collect();
    }
    // Only what was stat'ed can be re-checked, so only that is removed.
    let order: Vec<usize> = plan
        .removal_order(&entries)
        .into_iter()
        .filter(|&i| file_ids[i].is_some())
        .collect();
    report.run_id = Some(spec.run_id.clone());
    let removal = |i: usize| Removal {
        shown: sanitize(&entries[i].name),
        kind: entries[i].kind,
        size: entries[i].stat.map_or(0, |m| m.size),
        reserved: reserved[i],
        requires: &plan.decisions[i].requires,
    };
    let trash =
        Trash::new(|| state.run_dir(crate::core::state::TRASH_DIR, &company.name, &spec.run_id));
    let disposal = if spec.trash {
        Disposal::Trash(&trash)
    } else {
        Disposal::Unlink
    };
    let mut remover = FolderRemover {
        dir: &dir,
        company: &company.name,
        entries: &entries,
        file_ids: &file_ids,
        reasons: &plan.decisions,
        disposal: &disposal,
    };
    let how = Execution {
        dry_run: spec.dry_run,
        batch: 1,
        pause_before_remove: spec.pause_before_remove,
    };
    execute::execute(
        entries.len(),
        &removal,
        &order,
        how,
        &mut remover,
        &mut report,
    );
    // The list of what went into the trash: restore reports any of it that is gone since.
    if let Err(err) = trash.finish() {
        warn!(company = %sanitize(company.name.as_ref()), error = %err, "could not write the list of the run's trash; restore will only know what the trash holds");
    }
    report
}

/// Which file an entry was when it was stat'ed: what the re-check compares besides its [`plan::Stat`].
#[derive(Clone, Copy, Debug)]
struct FileId {
    dev: u64,
    ino: u64,
}

/// Removes one file at a time: re-checked against its stat, then renamed into the trash or
/// unlinked ([`remove::remove`]).
struct FolderRemover<'a> {
    dir: &'a Folder,
    company: &'a str,
    entries: &'a [Entry],
    file_ids: &'a [Option<FileId>],
    reasons: &'a [plan::Decision],
    disposal: &'a Disposal<'a>,
}

impl Remover for FolderRemover<'_> {
    fn remove(&mut self, batch: &[usize]) -> Vec<execute::Outcome> {
        batch.iter().map(|&i| self.remove_one(i)).collect()
    }
}

impl FolderRemover<'_> {
    fn remove_one(&self, i: usize) -> execute::Outcome {
        let e = &self.entries[i];
        let (Some(stat), Some(id)) = (e.stat, self.file_ids[i]) else {
            return execute::Outcome::Kept("could not stat it: kept".into());
        };
        let meta = Meta {
            entry_type: stat.entry_type,
            size: stat.size,
            mtime: stat.mtime,
            dev: id.dev,
            ino: id.ino,
            nlink: stat.nlink,
        };
        match remove::remove(self.dir, &e.name, &meta, self.disposal) {
            Outcome::Removed { bytes } => {
                debug!(company = %sanitize(self.company.as_ref()), file = %sanitize(&e.name), reason = %self.reasons[i].reason, "removed");
                execute::Outcome::Removed { bytes }
            }
            Outcome::Vanished => execute::Outcome::Vanished,
            Outcome::Changed(why) => execute::Outcome::Kept(why.into()),
            Outcome::Failed(err) => {
                warn!(company = %sanitize(self.company.as_ref()), file = %sanitize(&e.name), error = %err, "removal failed; file left in place");
                // Permission to remove is the folder's (or the trash's), not the file's:
                // the next removal would fail the same way. One failure, not one per file.
                if err.kind() == io::ErrorKind::PermissionDenied {
                    execute::Outcome::FailedAll {
                        reason: err.to_string(),
                        error: format!(
                            "cannot remove files as this user ({err}); the other removals were not tried (docs/operations.md, \"Which user\")"
                        ),
                    }
                } else {
                    execute::Outcome::Failed(err.to_string())
                }
            }
        }
    }
}

/// A company folder on another mount (another file system, or a bind mount) is not crossed.
fn is_other_mount(root: &Folder, dir: &Folder) -> bool {
    match (root.mount_id(), dir.mount_id()) {
        (Some(r), Some(d)) => r != d,
        _ => matches!((root.meta(), dir.meta()), (Ok(r), Ok(d)) if r.dev != d.dev),
    }
}

fn open_error(e: &io::Error) -> String {
    match rustix::io::Errno::from_io_error(e) {
        Some(rustix::io::Errno::LOOP) | Some(rustix::io::Errno::NOTDIR) => {
            "is a symlink or not a directory; not followed".into()
        }
        _ if e.kind() == io::ErrorKind::NotFound => "folder does not exist".into(),
        _ => format!("cannot open the folder: {e}"),
    }
}

/// [`clean_company`], and while the company is busy, again as soon as its lock is free, until
/// `wait` has passed.
pub fn clean_company_waiting(
    root: &Folder,
    company: &Company,
    state: &StateDir,
    spec: &CleanSpec,
    wait: Duration,
) -> CompanyReport {
    let deadline = Instant::now() + wait;
    let mut report = clean_company(root, company, state, spec);
    while report.status == Status::Busy
        && !wait.is_zero()
        && state.wait_company_lock(&company.name, &spec.holder, deadline)
    {
        info!(company = %sanitize(company.name.as_ref()), "lock free again; cleaning");
        report = clean_company(root, company, state, spec);
    }
    report
}

/// A folder's creds.json as `status` and the monitor judge it: corrupt (after the re-reads
/// that ride out a write in progress), unreadable, or missing while the folder holds keys.
pub fn folder_creds_problem(dir: &Folder) -> Option<String> {
    match read_creds(dir) {
        Ok(c) if c.is_corrupt() => {
            Some(c.problem.unwrap_or_else(|| "creds.json is corrupt".into()))
        }
        Ok(c) if !c.present && dir.count_files().is_ok_and(|n| n > 0) => Some(MISSING_CREDS.into()),
        Ok(_) => None,
        Err(e) => Some(e),
    }
}

/// What `status` and the monitor say of a folder of keys without creds.json.
pub const MISSING_CREDS: &str =
    "creds.json is missing: this folder's keys belong to no identity (logged out, or lost)";
