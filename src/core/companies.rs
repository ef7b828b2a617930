//! Finding the company folders under a sessions root.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;

use crate::core::folder::{EntryType, Folder};

/// One auth folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Company {
    /// The folder's name (`company_962302`); the key for locks, trash and state.
    pub name: String,
    /// Where it is, relative to the root folder (`.` in single-tenant mode).
    pub dir: OsString,
}

/// An entry that looks like a company but is not handled, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    pub name: String,
    pub why: &'static str,
}

/// Whether `id` (the name after the prefix) is a company id: letters, digits, `-`, `_`.
/// `company_1.bak-before-repair` (a manual copy) is not a company.
pub fn is_company_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Company folders directly under `root` named `<prefix><id>`, sorted by name. Symlinks, other
/// names with the prefix (manual copies such as `company_1.bak`) and non-UTF-8 names are listed
/// as ignored: they are never cleaned, and a symlinked company is never followed.
pub fn discover(root: &Folder, prefix: &str) -> io::Result<(Vec<Company>, Vec<Ignored>)> {
    let mut found = Vec::new();
    let mut ignored = Vec::new();
    root.for_each_entry(|name, t| {
        if !name.as_bytes().starts_with(prefix.as_bytes()) || name.len() == prefix.len() {
            return;
        }
        let shown = crate::core::util::sanitize(name);
        let id_ok = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .is_some_and(is_company_id);
        match (t, name.to_str()) {
            (EntryType::Dir, Some(_)) if !id_ok => ignored.push(Ignored {
                name: shown,
                why: "not a company name (<prefix><letters, digits, - or _>)",
            }),
            (EntryType::Dir, Some(n)) => found.push(Company {
                name: n.to_owned(),
                dir: name.to_owned(),
            }),
            (EntryType::Dir, None) => ignored.push(Ignored {
                name: shown,
                why: "name is not UTF-8",
            }),
            (EntryType::Symlink, _) => ignored.push(Ignored {
                name: shown,
                why: "is a symlink; company folders are never followed",
            }),
            _ => {}
        }
    })?;
    found.sort_by(|a, b| a.name.cmp(&b.name));
    ignored.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((found, ignored))
}

/// `962302` or `company_962302` → the company of that name.
pub fn resolve<'a>(companies: &'a [Company], prefix: &str, wanted: &str) -> Option<&'a Company> {
    companies
        .iter()
        .find(|c| c.name == wanted || c.name.strip_prefix(prefix) == Some(wanted))
}

/// The auth folder itself, in single-tenant mode.
pub fn single(name: &str) -> Company {
    Company {
        name: name.to_owned(),
        dir: OsString::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovers_and_resolves() {
        let tmp = tempfile::tempdir().unwrap();
        for d in [
            "company_2",
            "company_10",
            "other",
            "company_",
            ".janitor",
            "company_1.bak-before-repair",
        ] {
            std::fs::create_dir(tmp.path().join(d)).unwrap();
        }
        std::fs::write(tmp.path().join("company_file"), "").unwrap();
        std::os::unix::fs::symlink("/tmp", tmp.path().join("company_evil")).unwrap();
        let root = Folder::open(tmp.path()).unwrap();
        let (found, ignored) = discover(&root, "company_").unwrap();
        let names: Vec<_> = found.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["company_10", "company_2"]);
        let ignored: Vec<_> = ignored.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(ignored, vec!["company_1.bak-before-repair", "company_evil"]);
        assert_eq!(resolve(&found, "company_", "2").unwrap().name, "company_2");
        assert_eq!(
            resolve(&found, "company_", "company_10").unwrap().name,
            "company_10"
        );
        assert!(resolve(&found, "company_", "3").is_none());
    }
}
