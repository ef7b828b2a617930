//! Undo: files back from the trash, and whole folders into and out of backups.
//! All of it under the company's lock, so it never races a cleanup.

use std::ffi::{OsStr, OsString};
use std::io;

use serde::Serialize;

use crate::core::companies::Company;
use crate::core::folder::{EntryType, Folder};
use crate::core::lock::{LockAttempt, LockGuard};
use crate::core::report::FileNote;
use crate::core::state::StateDir;
use crate::core::state::{BACKUPS_DIR, TRASH_DIR};
use crate::core::util::sanitize;

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub company: String,
    pub source: String,
    pub dry_run: bool,
    pub restored: Vec<String>,
    pub skipped: Vec<FileNote>,
    pub failed: Vec<FileNote>,
}

impl RestoreReport {
    fn new(company: &Company, source: String, dry_run: bool) -> RestoreReport {
        RestoreReport {
            company: company.name.clone(),
            source,
            dry_run,
            restored: Vec::new(),
            skipped: Vec::new(),
            failed: Vec::new(),
        }
    }
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

/// Names of the sub-folders of `<state>/<kind>/<company>/`, sorted (run ids and backup times sort
/// by time).
pub fn list(state: &StateDir, kind: &str, company: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(state.path().join(kind).join(company)) else {
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

/// The most recent run of a company that still has files in the trash.
pub fn latest_run(state: &StateDir, company: &str) -> Option<String> {
    list(state, TRASH_DIR, company)
        .into_iter()
        .rev()
        .find(|run| {
            std::fs::read_dir(state.path().join(TRASH_DIR).join(company).join(run))
                .is_ok_and(|mut d| d.next().is_some())
        })
}

fn sub(state: &StateDir, kind: &str, company: &str, name: &str) -> io::Result<Folder> {
    if name.contains('/') || name == ".." || name == "." || name.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a valid name"),
        ));
    }
    state
        .folder()?
        .open_dir(OsStr::new(kind))?
        .open_dir(OsStr::new(company))?
        .open_dir(OsStr::new(name))
}

fn regular_files(dir: &Folder) -> io::Result<Vec<OsString>> {
    let mut v: Vec<OsString> = dir
        .entries()?
        .into_iter()
        .filter(|e| e.entry_type == EntryType::File)
        .map(|e| e.name)
        .collect();
    v.sort();
    Ok(v)
}

/// Moves files of `run` from the trash back into the company folder. Never overwrites.
pub fn restore_run(
    root: &Folder,
    company: &Company,
    state: &StateDir,
    run: &str,
    only: &[String],
    dry_run: bool,
) -> io::Result<RestoreReport> {
    let dir = root.open_dir(&company.dir)?;
    let trash = sub(state, TRASH_DIR, &company.name, run).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("no run {run:?} in the trash of {}: {e}", company.name),
        )
    })?;
    let mut report = RestoreReport::new(company, run.to_owned(), dry_run);
    let files = regular_files(&trash)?;
    for wanted in only {
        if !files.iter().any(|f| f == OsStr::new(wanted)) {
            report.failed.push(FileNote {
                file: wanted.clone(),
                reason: format!("not in the trash of run {run}"),
            });
        }
    }
    for name in files {
        if !only.is_empty() && !only.iter().any(|w| OsStr::new(w) == name) {
            continue;
        }
        let shown = sanitize(&name);
        if dir.stat(&name).is_ok() {
            report.skipped.push(FileNote {
                file: shown,
                reason: "exists again in the folder (the app wrote a newer one): not overwritten"
                    .into(),
            });
            continue;
        }
        if dry_run {
            report.restored.push(shown);
            continue;
        }
        // RENAME_NOREPLACE: if the app creates the file in between, the rename fails, nothing lost.
        match trash.move_to(&name, &dir, &name) {
            Ok(()) => report.restored.push(shown),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => report.skipped.push(FileNote {
                file: shown,
                reason: "exists again in the folder: not overwritten".into(),
            }),
            Err(e) => report.failed.push(FileNote {
                file: shown,
                reason: e.to_string(),
            }),
        }
    }
    if !dry_run && regular_files(&trash)?.is_empty() {
        let company_trash = state
            .folder()?
            .open_dir(OsStr::new(TRASH_DIR))?
            .open_dir(OsStr::new(&company.name))?;
        let _ = company_trash.remove_dir(OsStr::new(run));
    }
    Ok(report)
}

/// Copies a regular file between folders, keeping its mtime; never follows a symlink.
/// Writes to a temp name and renames into place, so a reader never sees half a file.
fn copy_file(from: &Folder, name: &OsStr, to: &Folder, replace: bool) -> io::Result<u64> {
    let meta = from.stat(name)?;
    let mut src = from.open_file(name)?;
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(".janitor-copy");
    let mut dst = to.create_file(&tmp)?;
    let result = (|| {
        let n = io::copy(&mut src, &mut dst)?;
        dst.sync_all()?;
        to.set_mtime(&tmp, meta.mtime)?;
        if replace {
            to.rename(&tmp, name)?
        } else {
            to.move_to(&tmp, to, name)?
        }
        Ok(n)
    })();
    if result.is_err() {
        let _ = to.unlink(&tmp);
    }
    result
}

#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub company: String,
    pub backup: String,
    pub path: String,
    pub files: usize,
    pub bytes: u64,
}

/// Copies every regular file of a company folder into `<state>/backups/<company>/<time>/`.
pub fn backup(
    root: &Folder,
    company: &Company,
    state: &StateDir,
    time: &str,
) -> io::Result<BackupReport> {
    let dir = root.open_dir(&company.dir)?;
    let dest = state.run_dir(BACKUPS_DIR, &company.name, time)?;
    let mut report = BackupReport {
        company: company.name.clone(),
        backup: time.to_owned(),
        path: dest.path().display().to_string(),
        files: 0,
        bytes: 0,
    };
    for name in regular_files(&dir)? {
        report.bytes += copy_file(&dir, &name, &dest, false)?;
        report.files += 1;
    }
    dest.sync()?;
    Ok(report)
}

/// Puts files back from a backup. Missing files are copied; identical ones skipped; different
/// ones kept unless `overwrite`, in which case the current file first goes to the trash under
/// `run_id`.
pub fn restore_backup(
    root: &Folder,
    company: &Company,
    state: &StateDir,
    time: &str,
    overwrite: bool,
    run_id: &str,
    dry_run: bool,
) -> io::Result<RestoreReport> {
    let dir = root.open_dir(&company.dir)?;
    let src = sub(state, BACKUPS_DIR, &company.name, time).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("no backup {time:?} of {}: {e}", company.name),
        )
    })?;
    let mut report = RestoreReport::new(company, format!("backup {time}"), dry_run);
    let trash = crate::core::remove::Trash::new(|| state.run_dir(TRASH_DIR, &company.name, run_id));
    for name in regular_files(&src)? {
        let shown = sanitize(&name);
        let exists = dir.stat(&name).is_ok();
        if exists {
            let same = match (
                dir.read_file(&name, 64 << 20),
                src.read_file(&name, 64 << 20),
            ) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            if same {
                report.skipped.push(FileNote {
                    file: shown,
                    reason: "identical".into(),
                });
                continue;
            }
            if !overwrite {
                report.skipped.push(FileNote {
                    file: shown,
                    reason: "differs: kept (use --overwrite)".into(),
                });
                continue;
            }
        }
        if dry_run {
            report.restored.push(shown);
            continue;
        }
        let result = (|| {
            if exists {
                dir.move_to(&name, trash.folder()?, &name)?;
            }
            copy_file(&src, &name, &dir, false)
        })();
        match result {
            Ok(_) => report.restored.push(shown),
            Err(e) => report.failed.push(FileNote {
                file: shown,
                reason: e.to_string(),
            }),
        }
    }
    Ok(report)
}
