//! One state directory, one sessions root. The state directory records the root it belongs to
//! (`root.json`: path, device, inode) the first time it is used; a run against another root is
//! refused, so a state directory shared by two roots (production and staging) can never move one
//! root's files into the other or apply one's cooldowns to the other.
//!
//! The same root is the same directory (device and inode), or the same path with the same inode
//! (the device number of some block devices changes across reboots).

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::core::folder::Folder;
use crate::core::state::{self, Loaded};

pub const ROOT_FILE: &str = "root.json";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootId {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
}

impl RootId {
    pub fn of(path: &Path, root: &Folder) -> io::Result<RootId> {
        let meta = root.meta()?;
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        Ok(RootId {
            path: path.display().to_string(),
            dev: meta.dev,
            ino: meta.ino,
        })
    }

    pub fn same(&self, other: &RootId) -> bool {
        self.ino == other.ino && (self.dev == other.dev || self.path == other.path)
    }
}

/// Checks that `state` belongs to `root`. Reads only; a state directory that records no root
/// yet belongs to anyone. The error is one line, for the operator.
pub fn check(state: &Folder, root: &RootId) -> Result<(), String> {
    match state::read_json::<RootId>(state, ROOT_FILE) {
        Loaded::Ok(known) if !known.same(root) => Err(format!(
            "state directory {} belongs to sessions root {} (device {}, inode {}), not {}; give each root its own state directory (--state-dir), or delete {} if the root really moved",
            state.path().display(),
            known.path,
            known.dev,
            known.ino,
            root.path,
            state.path().join(ROOT_FILE).display()
        )),
        Loaded::Corrupt(why) => Err(format!(
            "{why} in {}; delete it to let the next run record the sessions root again",
            state.path().display()
        )),
        _ => Ok(()),
    }
}

/// Records `root` in `state` unless a root is recorded already.
pub fn record(state: &Folder, root: &RootId) -> io::Result<()> {
    match state::read_json::<RootId>(state, ROOT_FILE) {
        Loaded::Missing => state::write_json(state, ROOT_FILE, root),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(path: &str, dev: u64, ino: u64) -> RootId {
        RootId {
            path: path.into(),
            dev,
            ino,
        }
    }

    #[test]
    fn same_root_by_inode_or_by_path() {
        let a = id("/srv/prod", 1, 100);
        assert!(a.same(&id("/srv/prod", 1, 100)));
        assert!(a.same(&id("/mnt/alias", 1, 100)), "a bind mount or symlink");
        assert!(
            a.same(&id("/srv/prod", 7, 100)),
            "device renumbered at boot"
        );
        assert!(!a.same(&id("/srv/staging", 1, 200)));
        assert!(
            !a.same(&id("/srv/prod", 2, 5)),
            "another volume at the same path"
        );
    }

    #[test]
    fn first_use_records_and_another_root_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let state = Folder::open(tmp.path()).unwrap();
        let prod = id("/srv/prod", 1, 100);
        assert!(check(&state, &prod).is_ok());
        record(&state, &prod).unwrap();
        record(&state, &id("/srv/staging", 1, 200)).unwrap();
        assert!(check(&state, &prod).is_ok());
        let err = check(&state, &id("/srv/staging", 1, 200)).unwrap_err();
        assert!(
            err.contains("/srv/prod") && err.contains("/srv/staging"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }
}
