//! One state directory, one sessions root or one store. The state directory records what it
//! belongs to (`root.json`: path, device, inode, and for a store its identity) the first time it
//! is used; a run against anything else is refused, so a state directory shared by two roots
//! (production and staging) or two stores (two SQLite files, two databases with a tenant of the
//! same name) can never put one's trash into the other or apply one's cooldowns and holds to the
//! other.
//!
//! The same root is the same directory (device and inode), or the same path with the same inode
//! (the device number of some block devices changes across reboots). The same store is the same
//! `StoreSpec::identity` (`core::store`: server, database, layout,
//! key pattern); a SQLite path must also be the same file or folder (inode, as for roots).

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
    /// A store's identity; `None` for a sessions root of folders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}

impl RootId {
    pub fn of(path: &Path, root: &Folder) -> io::Result<RootId> {
        let meta = root.meta()?;
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        Ok(RootId {
            path: path.display().to_string(),
            dev: meta.dev,
            ino: meta.ino,
            store: None,
        })
    }

    pub fn same(&self, other: &RootId) -> bool {
        match (&self.store, &other.store) {
            (None, None) => {
                self.ino == other.ino && (self.dev == other.dev || self.path == other.path)
            }
            // A server store: the same server, database and layout. A SQLite file: also the
            // same inode (a new file at the same path is another account's store).
            (Some(a), Some(b)) => {
                (a == b && self.ino == other.ino)
                    || (self.ino != 0 && self.ino == other.ino && self.dev == other.dev)
            }
            _ => false,
        }
    }

    /// How the operator knows it: `sessions root /srv/x (device 1, inode 2)`, `store …`.
    fn describe(&self) -> String {
        match &self.store {
            None => format!(
                "sessions root {} (device {}, inode {})",
                self.path, self.dev, self.ino
            ),
            Some(_) => format!("store {}", self.path),
        }
    }
}

/// Checks that `state` belongs to `root`. Reads only; a state directory that records no root
/// yet belongs to anyone. The error is one line, for the operator.
pub fn check(state: &Folder, root: &RootId) -> Result<(), String> {
    match state::read_json::<RootId>(state, ROOT_FILE) {
        Loaded::Ok(known) if !known.same(root) => Err(format!(
            "state directory {} belongs to {}, not {}; {}",
            state.path().display(),
            known.describe(),
            if root.store.is_some() {
                format!("store {}", root.path)
            } else {
                format!("sessions root {}", root.path)
            },
            advice(&known, root, &state.path().join(ROOT_FILE))
        )),
        Loaded::Corrupt(why) => Err(format!(
            "{why} in {}; delete it to let the next run record the sessions root again",
            state.path().display()
        )),
        _ => Ok(()),
    }
}

/// What to do about a state directory bound to another root. The common mix-up is a
/// `--single-tenant` run on one company folder of a fleet (its default state directory is the
/// fleet's): say so, and how to do the same through the fleet's root.
fn advice(known: &RootId, root: &RootId, root_file: &Path) -> String {
    let parent_of =
        |child: &str, parent: &str| Path::new(child).parent() == Some(Path::new(parent));
    let name = |p: &str| {
        Path::new(p)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if known.store.is_some() || root.store.is_some() {
        format!(
            "give each sessions root and each store its own state directory (--state-dir), or delete {} if it really moved",
            root_file.display()
        )
    } else if parent_of(&root.path, &known.path) {
        format!(
            "{} is a folder of that root: clean or restore it through the root (baileys-janitor --sessions-path {} <command> --company {}), or give it its own --state-dir",
            root.path,
            known.path,
            name(&root.path)
        )
    } else if parent_of(&known.path, &root.path) {
        format!(
            "a run on the folder {} inside this root (--single-tenant) used it first; if that was a one-off, delete {} (its records and trash keep the company's name), else give each its own --state-dir",
            known.path,
            root_file.display()
        )
    } else {
        format!(
            "give each root its own state directory (--state-dir), or delete {} if the root really moved",
            root_file.display()
        )
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
            store: None,
        }
    }

    fn store(identity: &str, dev: u64, ino: u64) -> RootId {
        RootId {
            path: identity.into(),
            dev,
            ino,
            store: Some(identity.into()),
        }
    }

    #[test]
    fn a_store_is_its_identity_and_a_sqlite_file_its_inode() {
        let pg = store("postgres://db:5432/a layout per-type", 0, 0);
        assert!(pg.same(&store("postgres://db:5432/a layout per-type", 0, 0)));
        assert!(!pg.same(&store("postgres://db:5432/b layout per-type", 0, 0)));
        assert!(!pg.same(&id("/srv/prod", 0, 0)), "a store is never a root");
        assert!(!id("/srv/prod", 0, 0).same(&pg), "a root is never a store");
        let a = store("sqlite:/srv/auth.db", 1, 100);
        assert!(a.same(&store("sqlite:/srv/auth.db", 1, 100)));
        assert!(
            a.same(&store("sqlite:/srv/moved.db", 1, 100)),
            "renamed file"
        );
        assert!(
            !a.same(&store("sqlite:/srv/auth.db", 1, 200)),
            "a new file at the same path"
        );
        assert!(!a.same(&store("sqlite:/srv/other.db", 1, 300)));
    }

    #[test]
    fn a_second_store_is_refused_naming_both() {
        let tmp = tempfile::tempdir().unwrap();
        let state = Folder::open(tmp.path()).unwrap();
        let a = store("sqlite:/srv/a/auth.db", 1, 100);
        record(&state, &a).unwrap();
        let err = check(&state, &store("sqlite:/srv/b/auth.db", 1, 200)).unwrap_err();
        assert!(
            err.contains("store sqlite:/srv/a/auth.db")
                && err.contains("store sqlite:/srv/b/auth.db"),
            "{err}"
        );
        let err = check(&state, &id("/srv/prod", 1, 100)).unwrap_err();
        assert!(err.contains("sessions root /srv/prod"), "{err}");
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

    #[test]
    fn a_company_folder_of_the_bound_root_is_told_to_go_through_it() {
        let file = Path::new("/srv/s/.janitor/root.json");
        let fleet = id("/srv/s", 1, 100);
        let company = id("/srv/s/company_1", 1, 101);
        let a = advice(&fleet, &company, file);
        assert!(
            a.contains("--sessions-path /srv/s <command> --company company_1"),
            "{a}"
        );
        let a = advice(&company, &fleet, file);
        assert!(a.contains("(--single-tenant) used it first"), "{a}");
        let a = advice(&fleet, &id("/srv/staging", 1, 200), file);
        assert!(a.contains("if the root really moved"), "{a}");
    }
}
