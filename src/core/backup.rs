//! Backups: `<state>/backups/<company>/<time>/`, each file copied with its bytes and mtime, and a
//! manifest (`core::manifest`) naming every file with its size, mtime, owner, mode and checksum.
//!
//! A backup is complete or it does not exist: it is written into a hidden
//! `.partial-<time>-<pid>/` folder, the manifest goes in last, and only then is the folder renamed
//! to its visible name. A backup stopped half-way stays hidden and is never listed as one.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::clean::read_creds;
use crate::core::companies::Company;
use crate::core::creds::Identity;
use crate::core::folder::{self, EntryType, Folder, Owner};
use crate::core::manifest::{self, FileRecord, Fnv64, MANIFEST, Manifest};
use crate::core::state::{self, Loaded, StateDir};

pub use crate::core::state::BACKUPS_DIR;
pub const PARTIAL_PREFIX: &str = ".partial-";

#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub company: String,
    pub backup: String,
    pub path: String,
    pub files: usize,
    pub bytes: u64,
}

/// Regular files of a folder, by name, sorted.
pub fn regular_files(dir: &Folder) -> io::Result<Vec<OsString>> {
    let mut v: Vec<OsString> = dir
        .entries()?
        .into_iter()
        .filter(|e| e.entry_type == EntryType::File)
        .map(|e| e.name)
        .collect();
    v.sort();
    Ok(v)
}

/// Copies `from/name` into a new file `to/to_name` (created with `O_EXCL`), hashing what it
/// copies. Returns the source's stat facts, the size and the checksum. The copy carries the
/// source's mtime (or `mtime`), is fsync'd when `sync` (else the caller syncs the file system
/// before relying on it), and is removed on error.
pub fn copy_new(
    from: &Folder,
    name: &OsStr,
    to: &Folder,
    to_name: &OsStr,
    owner: Option<Owner>,
    mtime: Option<std::time::SystemTime>,
    sync: bool,
) -> io::Result<(rustix::fs::Stat, u64, String)> {
    let mut src = from.open_file(name)?;
    let st = rustix::fs::fstat(&src)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut dst = to.create_new(to_name)?;
    let result = (|| {
        let mut h = Fnv64::default();
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0u64;
        loop {
            let got = src.read(&mut buf)?;
            if got == 0 {
                break;
            }
            h.update(&buf[..got]);
            dst.write_all(&buf[..got])?;
            n += got as u64;
        }
        if let Some(o) = owner {
            o.apply(&dst)?;
        }
        let t =
            mtime.unwrap_or_else(|| manifest::system_time(st.st_mtime, st.st_mtime_nsec as u32));
        folder::set_file_mtime(&dst, t)?;
        if sync {
            dst.sync_all()?;
        }
        Ok((n, h.hex()))
    })();
    match result {
        Ok((n, sum)) => Ok((st, n, sum)),
        Err(e) => {
            drop(dst);
            let _ = to.unlink(to_name);
            Err(e)
        }
    }
}

/// Copies every regular file of a company folder into a new complete backup named `time`
/// (or `time-2`, `time-3`, … when that name is taken).
pub fn backup(
    root: &Folder,
    company: &Company,
    state: &StateDir,
    time: &str,
    now: DateTime<Utc>,
) -> io::Result<BackupReport> {
    let dir = root.open_dir(&company.dir)?;
    let backups = state
        .subdir(BACKUPS_DIR)?
        .ensure_dir(OsStr::new(&company.name))?;
    let partial = format!("{PARTIAL_PREFIX}{time}-{}", std::process::id());
    let dest = backups.create_dir_new(OsStr::new(&partial))?;
    let result = (|| {
        let identity = read_creds(&dir).ok().and_then(|c| Identity::of(&c));
        let mut files = Vec::new();
        for name in regular_files(&dir)? {
            let Some(text) = name.to_str() else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "file name {} is not UTF-8: cannot record it",
                        crate::core::util::sanitize(&name)
                    ),
                ));
            };
            let (st, size, sum) = match copy_new(&dir, &name, &dest, &name, None, None, false) {
                Ok(x) => x,
                // Removed by the app since the listing: not part of the folder any more.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{}: {e}", crate::core::util::sanitize(&name)),
                    ));
                }
            };
            files.push(FileRecord {
                name: text.to_owned(),
                size,
                mtime: st.st_mtime,
                mtime_nsec: st.st_mtime_nsec as u32,
                owner: Owner {
                    uid: st.st_uid,
                    gid: st.st_gid,
                    mode: st.st_mode & 0o7777,
                },
                fnv1a64: sum,
            });
        }
        // One flush of the file system for all the copies (an fsync per file costs minutes on a
        // 37,000-file folder); the manifest, written after it, vouches only for durable files.
        dest.sync_fs()?;
        let manifest = Manifest {
            version: manifest::VERSION,
            company: company.name.clone(),
            created: now,
            folder: dir.own_owner()?,
            identity,
            files,
        };
        state::write_json(&dest, MANIFEST, &manifest)?;
        Ok(manifest)
    })();
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            remove_partial(&backups, &partial);
            return Err(e);
        }
    };
    let mut name = time.to_owned();
    for n in 2.. {
        match backups.move_to(OsStr::new(&partial), &backups, OsStr::new(&name)) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => {
                name = format!("{time}-{n}");
            }
            Err(e) => {
                remove_partial(&backups, &partial);
                return Err(e);
            }
        }
    }
    backups.sync()?;
    Ok(BackupReport {
        company: company.name.clone(),
        path: backups.path().join(&name).display().to_string(),
        backup: name,
        files: manifest.files.len(),
        bytes: manifest.bytes(),
    })
}

fn remove_partial(backups: &Folder, partial: &str) {
    if let Ok(d) = backups.open_dir(OsStr::new(partial)) {
        for f in regular_files(&d).unwrap_or_default() {
            let _ = d.unlink(&f);
        }
    }
    let _ = backups.remove_dir(OsStr::new(partial));
}

/// A company's backups: the complete ones (sorted, oldest first) and the folders that are not
/// (interrupted, or without a manifest).
#[derive(Debug, Default, Serialize)]
pub struct Listing {
    pub complete: Vec<String>,
    pub partial: Vec<String>,
}

pub fn list(state: &StateDir, company: &str) -> Listing {
    let mut l = Listing::default();
    let Ok(dir) = std::fs::read_dir(state.path().join(BACKUPS_DIR).join(company)) else {
        return l;
    };
    for e in dir.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let has_manifest = e
            .path()
            .join(MANIFEST)
            .symlink_metadata()
            .is_ok_and(|m| m.is_file());
        if name.starts_with('.') || !has_manifest {
            l.partial.push(name);
        } else {
            l.complete.push(name);
        }
    }
    l.complete.sort();
    l.partial.sort();
    l
}

/// Why a backup cannot be used.
#[derive(Debug)]
pub enum Unusable {
    /// No such backup (the message lists those that exist): a usage error.
    Unknown(String),
    /// It exists but is incomplete or damaged: refused, nothing changed.
    Refused(String),
    Io(io::Error),
}

/// `latest` or a listed name → the name of a complete backup.
pub fn resolve(state: &StateDir, company: &str, wanted: &str) -> Result<String, Unusable> {
    let l = list(state, company);
    let known = if l.complete.is_empty() {
        format!("there are none (make one with: baileys-janitor backup --company {company})")
    } else {
        format!("backups: {}", l.complete.join(", "))
    };
    if wanted == "latest" {
        return l
            .complete
            .last()
            .cloned()
            .ok_or_else(|| Unusable::Unknown(format!("no complete backup of {company}; {known}")));
    }
    if l.complete.iter().any(|b| b == wanted) {
        return Ok(wanted.to_owned());
    }
    if l.partial.iter().any(|b| b == wanted) {
        return Err(Unusable::Refused(format!(
            "backup {wanted:?} of {company} is incomplete (interrupted, or made before manifests existed): not restorable; nothing was changed; {known}"
        )));
    }
    Err(Unusable::Unknown(format!(
        "no backup {wanted:?} of {company}; {known}"
    )))
}

/// Opens a complete backup and checks every file against its manifest (present, regular, same
/// size, same checksum) before anything is restored from it.
pub fn open_verified(
    state: &StateDir,
    company: &str,
    name: &str,
) -> Result<(Folder, Manifest), Unusable> {
    let dir = state
        .folder()
        .and_then(|s| s.open_dir(OsStr::new(BACKUPS_DIR)))
        .and_then(|b| b.open_dir(OsStr::new(company)))
        .and_then(|c| c.open_dir(OsStr::new(name)))
        .map_err(Unusable::Io)?;
    let damaged = |why: String| {
        Unusable::Refused(format!(
            "backup {name} of {company} is damaged ({why}); nothing was changed"
        ))
    };
    let m: Manifest = match state::read_json(&dir, MANIFEST) {
        Loaded::Ok(m) => m,
        Loaded::Missing => return Err(damaged("no manifest".into())),
        Loaded::Corrupt(why) => return Err(damaged(why)),
    };
    for f in &m.files {
        if f.name.is_empty() || f.name.contains('/') || f.name == "." || f.name == ".." {
            return Err(damaged(format!(
                "bad file name {:?} in the manifest",
                f.name
            )));
        }
        let file = dir
            .open_file(OsStr::new(&f.name))
            .map_err(|e| damaged(format!("{}: {e}", f.name)))?;
        let (size, sum) =
            manifest::checksum(file).map_err(|e| damaged(format!("{}: {e}", f.name)))?;
        if size != f.size || sum != f.fnv1a64 {
            return Err(damaged(format!(
                "{}: {size} bytes with checksum {sum}, the manifest says {} bytes with {}",
                f.name, f.size, f.fnv1a64
            )));
        }
    }
    Ok((dir, m))
}
