//! The one place a file leaves a company folder.
//!
//! Every removal re-checks the file right before acting: still the same inode, same mtime and size
//! as when it was planned, still a regular file. The app may have rewritten it since (Baileys
//! writes in place, or via `X.json.tmp` + rename); a changed file is skipped, never removed.
//! In trash mode the file is renamed into the run's trash folder (same file system, atomic), and
//! moved straight back if what arrived there is not the file that was planned.

use std::cell::{OnceCell, RefCell};
use std::ffi::OsStr;
use std::io::{self, Write};

use crate::core::folder::{EntryType, Folder, Meta};
use crate::core::trash::{self, Listed};

/// What removal means for this run.
pub enum Disposal<'a> {
    /// `unlinkat`: the file is gone.
    Unlink,
    /// Rename into a trash folder.
    Trash(&'a Trash<'a>),
}

/// A run's trash folder, created on first use (a run that removes nothing leaves no folder),
/// and the list of what [`remove`] moved into it ([`trash::REMOVED_LIST`]).
pub struct Trash<'a> {
    make: Box<dyn Fn() -> io::Result<Folder> + 'a>,
    folder: OnceCell<Folder>,
    listed: RefCell<Vec<Listed>>,
    /// The list as it grows: one line per file, so a run killed mid-way leaves what it moved.
    journal: RefCell<Option<std::fs::File>>,
}

impl<'a> Trash<'a> {
    pub fn new(make: impl Fn() -> io::Result<Folder> + 'a) -> Trash<'a> {
        Trash {
            make: Box::new(make),
            folder: OnceCell::new(),
            listed: RefCell::new(Vec::new()),
            journal: RefCell::new(None),
        }
    }

    /// Notes a file that arrived in the trash. A line that cannot be appended is not lost:
    /// [`Trash::finish`] writes the whole list.
    fn note(&self, name: &OsStr, size: u64) {
        // Names that are not UTF-8 are never restored (restore skips them), so never listed.
        let Some(name) = name.to_str() else { return };
        let item = Listed {
            name: name.to_owned(),
            size,
        };
        let mut journal = self.journal.borrow_mut();
        if journal.is_none()
            && let Some(folder) = self.folder.get()
        {
            *journal = folder.open_append(OsStr::new(trash::REMOVED_LIST)).ok();
        }
        if let Some(f) = journal.as_mut() {
            let mut line = serde_json::to_vec(&item).expect("serializable");
            line.push(b'\n');
            if f.write_all(&line).is_err() {
                *journal = None;
            }
        }
        self.listed.borrow_mut().push(item);
    }

    /// Ends the run's removals: the list of what was moved, written whole and atomically
    /// (temporary file, fsync, rename). Nothing to do when nothing was moved.
    pub fn finish(&self) -> io::Result<()> {
        self.journal.borrow_mut().take();
        let listed = self.listed.borrow();
        match self.folder.get() {
            Some(folder) if !listed.is_empty() => {
                trash::write_list(folder, trash::REMOVED_LIST, &listed)
            }
            _ => Ok(()),
        }
    }

    pub fn folder(&self) -> io::Result<&Folder> {
        if let Some(f) = self.folder.get() {
            return Ok(f);
        }
        let f = (self.make)()?;
        Ok(self.folder.get_or_init(|| f))
    }
}

#[derive(Debug)]
pub enum Outcome {
    Removed {
        bytes: u64,
    },
    /// Gone before we got to it (the app deleted it): nothing to do.
    Vanished,
    /// Not the file that was planned any more: left alone.
    Changed(&'static str),
    Failed(io::Error),
}

fn recheck(dir: &Folder, name: &OsStr, planned: &Meta) -> Result<(), Outcome> {
    match dir.stat(name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Outcome::Vanished),
        Err(e) => Err(Outcome::Failed(e)),
        Ok(now) if now.entry_type != EntryType::File => {
            Err(Outcome::Changed("no longer a regular file"))
        }
        Ok(now) if now.nlink > 1 => Err(Outcome::Changed("gained a hard link")),
        Ok(now) if now.dev != planned.dev || now.ino != planned.ino => {
            Err(Outcome::Changed("replaced by a new file"))
        }
        Ok(now) if !now.same_file(planned) => {
            Err(Outcome::Changed("modified since it was planned"))
        }
        Ok(_) => Ok(()),
    }
}

/// Removes `name` from `dir` if it is still the file described by `planned`.
pub fn remove(dir: &Folder, name: &OsStr, planned: &Meta, disposal: &Disposal<'_>) -> Outcome {
    if let Err(outcome) = recheck(dir, name, planned) {
        return outcome;
    }
    match disposal {
        Disposal::Unlink => match dir.unlink(name) {
            Ok(()) => Outcome::Removed {
                bytes: planned.size,
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Outcome::Vanished,
            Err(e) => Outcome::Failed(e),
        },
        Disposal::Trash(trash) => {
            let trash_dir = match trash.folder() {
                Ok(t) => t,
                Err(e) => return Outcome::Failed(e),
            };
            match dir.move_to(name, trash_dir, name) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Outcome::Vanished,
                Err(e) => return Outcome::Failed(e),
            }
            // The window between the re-check and the rename is tiny, but it exists: verify what
            // arrived and put it back if it is not what was planned.
            match trash_dir.stat(name) {
                Ok(moved) if moved.same_file(planned) => {
                    trash.note(name, planned.size);
                    Outcome::Removed {
                        bytes: planned.size,
                    }
                }
                Ok(_) => match trash_dir.move_to(name, dir, name) {
                    Ok(()) => Outcome::Changed("replaced while it was being moved; moved back"),
                    Err(e) => Outcome::Failed(io::Error::new(
                        e.kind(),
                        format!(
                            "replaced while being moved, and could not be moved back from the trash: {e}"
                        ),
                    )),
                },
                Err(e) => Outcome::Failed(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn setup() -> (tempfile::TempDir, Folder, Meta) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("session-1.0.json"), "{}").unwrap();
        let dir = Folder::open(tmp.path()).unwrap();
        let meta = dir.stat(OsStr::new("session-1.0.json")).unwrap();
        (tmp, dir, meta)
    }

    #[test]
    fn unlinks_the_planned_file() {
        let (tmp, dir, meta) = setup();
        let out = remove(
            &dir,
            OsStr::new("session-1.0.json"),
            &meta,
            &Disposal::Unlink,
        );
        assert!(matches!(out, Outcome::Removed { bytes: 2 }), "{out:?}");
        assert!(!tmp.path().join("session-1.0.json").exists());
    }

    #[test]
    fn a_rewritten_file_is_left_alone() {
        let (tmp, dir, meta) = setup();
        dir.set_mtime(
            OsStr::new("session-1.0.json"),
            SystemTime::now() + Duration::from_secs(5),
        )
        .unwrap();
        let out = remove(
            &dir,
            OsStr::new("session-1.0.json"),
            &meta,
            &Disposal::Unlink,
        );
        assert!(matches!(out, Outcome::Changed(_)), "{out:?}");
        assert!(tmp.path().join("session-1.0.json").exists());
    }

    #[test]
    fn a_replaced_file_is_left_alone() {
        let (tmp, dir, meta) = setup();
        let p = tmp.path().join("session-1.0.json");
        std::fs::write(tmp.path().join("new"), "{}").unwrap();
        std::fs::rename(tmp.path().join("new"), &p).unwrap();
        let out = remove(
            &dir,
            OsStr::new("session-1.0.json"),
            &meta,
            &Disposal::Unlink,
        );
        assert!(
            matches!(out, Outcome::Changed("replaced by a new file")),
            "{out:?}"
        );
        assert!(p.exists());
    }

    #[test]
    fn a_vanished_file_is_not_an_error() {
        let (tmp, dir, meta) = setup();
        std::fs::remove_file(tmp.path().join("session-1.0.json")).unwrap();
        let out = remove(
            &dir,
            OsStr::new("session-1.0.json"),
            &meta,
            &Disposal::Unlink,
        );
        assert!(matches!(out, Outcome::Vanished));
    }

    #[test]
    fn trash_moves_and_keeps_mtime() {
        let (tmp, dir, meta) = setup();
        std::fs::create_dir(tmp.path().join("trash")).unwrap();
        let trash = Trash::new(|| dir.open_dir(OsStr::new("trash")));
        let out = remove(
            &dir,
            OsStr::new("session-1.0.json"),
            &meta,
            &Disposal::Trash(&trash),
        );
        assert!(matches!(out, Outcome::Removed { .. }), "{out:?}");
        let moved = trash
            .folder()
            .unwrap()
            .stat(OsStr::new("session-1.0.json"))
            .unwrap();
        assert_eq!(moved.mtime, meta.mtime);
        // Listed as it arrived, and again, whole, when the run ends.
        let trash_dir = Folder::open(&tmp.path().join("trash")).unwrap();
        let listed = || trash::read_list(&trash_dir, trash::REMOVED_LIST).unwrap();
        let expected = vec![Listed {
            name: "session-1.0.json".into(),
            size: 2,
        }];
        assert_eq!(listed(), Some(expected.clone()));
        trash.finish().unwrap();
        assert_eq!(listed(), Some(expected));
    }

    #[test]
    fn a_failing_trash_leaves_the_file() {
        let (tmp, dir, meta) = setup();
        let trash = Trash::new(|| Err(io::Error::other("disk full")));
        let out = remove(
            &dir,
            OsStr::new("session-1.0.json"),
            &meta,
            &Disposal::Trash(&trash),
        );
        assert!(matches!(out, Outcome::Failed(_)));
        assert!(tmp.path().join("session-1.0.json").exists());
    }
}
