//! Can this process remove files where a run is about to? Checked once, before anything is
//! touched: a run as the wrong user otherwise fails file by file (one warning per file, and a
//! "younger than the age limits" advice that sends the operator the wrong way). The answer is
//! one line naming the folders' owner and the two ways to fix it.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::core::companies::Company;
use crate::core::folder::{Folder, Owner};

/// What stands in the way, as one line for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The companies this process cannot clean (empty when the state directory is the problem).
    pub companies: Vec<String>,
    pub message: String,
}

/// Checks the state directory (it can be created, or written) and every company folder (its
/// entries can be removed: write and search permission, and not a sticky directory owned by
/// someone else). `Ok` when all is well; else which companies cannot be cleaned and the line
/// that says why and how to fix it. `Err(Denied)` with no companies means nothing can run.
pub fn check(root: &Folder, companies: &[Company], state_dir: &Path) -> Result<(), Denied> {
    let me = rustix::process::geteuid();
    if let Some((path, owner)) = state_denied(state_dir) {
        return Err(Denied {
            companies: Vec::new(),
            message: line(
                &format!(
                    "cannot create or write the state directory {}",
                    state_dir.display()
                ),
                &path,
                owner,
                me.as_raw(),
            ),
        });
    }
    let mut denied: Vec<(&Company, Owner)> = Vec::new();
    for c in companies {
        let name = OsStr::new(&c.dir);
        let Ok(owner) = (if c.dir == "." {
            root.own_owner()
        } else {
            root.owner(name)
        }) else {
            continue; // a folder that cannot be stat'ed is the cleaner's error to report
        };
        let writable = root.entries_writable(name).unwrap_or(true);
        // Sticky: only a file's owner (or the folder's) removes it. The app's files are owned
        // like its creds.json: fine when that is us.
        let sticky = owner.mode & 0o1000 != 0
            && owner.uid != me.as_raw()
            && !me.is_root()
            && root
                .open_dir(name)
                .and_then(|d| d.owner(OsStr::new("creds.json")))
                .map_or(true, |f| f.uid != me.as_raw());
        if !writable || sticky {
            denied.push((c, owner));
        }
    }
    let Some((first, owner)) = denied.first().copied() else {
        return Ok(());
    };
    let path = if first.dir == "." {
        root.path().to_owned()
    } else {
        root.path().join(&first.dir)
    };
    let what = if denied.len() == companies.len() && companies.len() > 1 {
        format!(
            "cannot remove files in any of the {} company folders under {}",
            companies.len(),
            root.path().display()
        )
    } else if denied.len() > 1 {
        format!(
            "cannot remove files in {} of {} company folders ({} …)",
            denied.len(),
            companies.len(),
            path.display()
        )
    } else {
        format!("cannot remove files in {}", path.display())
    };
    Err(Denied {
        companies: denied.iter().map(|(c, _)| c.name.clone()).collect(),
        message: line(&what, &path, owner, me.as_raw()),
    })
}

/// The state directory exists and cannot be written, or does not and its parent cannot be
/// written: the path and owner to name.
fn state_denied(state_dir: &Path) -> Option<(PathBuf, Owner)> {
    let (path, folder) = match Folder::open(state_dir) {
        Ok(f) => (state_dir, f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A missing parent is a wrong path, reported as such by the run.
            let parent = state_dir.parent()?;
            (parent, Folder::open(parent).ok()?)
        }
        Err(_) => {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(state_dir).ok()?;
            let owner = Owner {
                uid: m.uid(),
                gid: m.gid(),
                mode: m.mode() & 0o7777,
            };
            return Some((state_dir.to_owned(), owner));
        }
    };
    if folder.entries_writable(OsStr::new(".")).unwrap_or(true) {
        return None;
    }
    Some((path.to_owned(), folder.own_owner().ok()?))
}

fn line(what: &str, path: &Path, owner: Owner, me: u32) -> String {
    let user = user_name(owner.uid);
    let group = group_name(owner.gid);
    format!(
        "{what}: {} is owned by {user} (group {group}, mode {:04o}) and this runs as {}; run as the folders' owner (`systemctl edit baileys-janitor-cleanup.service`, and the same for baileys-janitor-trigger.service: [Service] User={user}; or the crontab of {user}), or give group {group} write access (chmod -R g+w and SupplementaryGroups={group}); see docs/operations.md, \"Which user\"",
        path.display(),
        owner.mode & 0o7777,
        user_name(me)
    )
}

/// A user's name from /etc/passwd, or its number.
pub fn user_name(uid: u32) -> String {
    name_in("/etc/passwd", uid).unwrap_or_else(|| uid.to_string())
}

/// A group's name from /etc/group, or its number.
pub fn group_name(gid: u32) -> String {
    name_in("/etc/group", gid).unwrap_or_else(|| gid.to_string())
}

/// `name:x:id:…` lines: the name whose third field is `id`.
fn name_in(file: &str, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _ = f.next();
        (f.next()?.parse::<u32>().ok()? == id).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_third_field() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("passwd");
        std::fs::write(
            &f,
            "root:x:0:0:root:/root:/bin/bash\nai-admin:x:1000:1000::/home/ai-admin:/bin/sh\nbroken\n",
        )
        .unwrap();
        let f = f.to_str().unwrap();
        assert_eq!(name_in(f, 1000).as_deref(), Some("ai-admin"));
        assert_eq!(name_in(f, 0).as_deref(), Some("root"));
        assert_eq!(name_in(f, 7), None);
        let line = line(
            "cannot remove files in /srv/s/company_1",
            Path::new("/srv/s/company_1"),
            Owner {
                uid: 0,
                gid: 0,
                mode: 0o40755,
            },
            0,
        );
        assert!(
            line.contains("mode 0755") && line.contains("User=root"),
            "{line}"
        );
        assert!(!line.contains('\n'), "one line");
    }

    #[test]
    fn root_is_named() {
        assert_eq!(user_name(0), "root");
        assert_eq!(user_name(4_000_000_000), "4000000000");
    }
}
