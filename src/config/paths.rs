//! Where the accounts are and where the janitor keeps its state: `sessions_path`,
//! `single_tenant`, `company_prefix`, `state_dir` (with `--layout`'s server folders).

use std::path::{Path, PathBuf};

use super::file::FileConfig;
use super::layers::Layers;
use super::{
    DEFAULT_PREFIX, DEFAULT_SESSIONS_PATH, Origin, STATE_DIR_NAME, flag, path_text, usage,
};
use crate::cli::GlobalArgs;
use crate::core::store::StoreSpec;
use crate::core::store::registry::FolderLayout;

/// Where the accounts are, before the store is known.
pub(super) struct Accounts {
    pub sessions_path: PathBuf,
    pub single_tenant: bool,
    pub company_prefix: String,
}

/// `server_layout`: the folder layout `--layout` names when no store URL is given (it moves
/// the sessions path and takes every valid sub-folder as an account).
pub(super) fn resolve_accounts(
    l: &mut Layers,
    g: &GlobalArgs,
    file: &FileConfig,
    server_layout: Option<&FolderLayout>,
) -> anyhow::Result<Accounts> {
    let base = l.text(
        "sessions_path",
        flag(path_text(&g.sessions_path), "--sessions-path"),
        Some("BAILEYS_SESSIONS_PATH"),
        file.sessions_path.as_ref().map(|p| p.display().to_string()),
        false,
    );
    let sessions_path = match (server_layout, base) {
        // The server's own base folder (given, or its default), then where it keeps accounts.
        (Some(sl), base) => {
            let base = base
                .map(PathBuf::from)
                .unwrap_or_else(|| (sl.default_base)(l.env("HOME").as_deref()));
            let p = base.join(sl.accounts);
            l.record("sessions_path", p.display().to_string(), Origin::Default);
            p
        }
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => {
            l.record(
                "sessions_path",
                DEFAULT_SESSIONS_PATH.into(),
                Origin::Default,
            );
            PathBuf::from(DEFAULT_SESSIONS_PATH)
        }
    };
    // ENABLE_MULTITENANCY=false is the spec's way of saying --single-tenant.
    let multitenancy = match l.env("ENABLE_MULTITENANCY") {
        Some(v) => Some(
            crate::units::parse_bool(&v)
                .map_err(|e| usage(format!("environment variable ENABLE_MULTITENANCY: {e}")))?,
        ),
        None => None,
    };
    let single_tenant = match multitenancy {
        Some(m) if !g.single_tenant => {
            l.record(
                "single_tenant",
                (!m).to_string(),
                Origin::Env("ENABLE_MULTITENANCY"),
            );
            !m
        }
        _ => l.boolean(
            "single_tenant",
            g.single_tenant.then_some((true, "--single-tenant")),
            None,
            file.single_tenant,
            false,
        )?,
    };
    let company_prefix = l
        .text(
            "company_prefix",
            flag(g.company_prefix.clone(), "--company-prefix"),
            Some("BAILEYS_JANITOR_COMPANY_PREFIX"),
            file.company_prefix.clone(),
            false,
        )
        .unwrap_or_else(|| {
            // Server layouts name accounts as they like: every valid sub-folder is one.
            let p = if server_layout.is_some() {
                ""
            } else {
                DEFAULT_PREFIX
            };
            l.record("company_prefix", p.into(), Origin::Default);
            p.into()
        });
    if company_prefix.contains('/') || company_prefix.chars().any(char::is_control) {
        return Err(usage(format!(
            "company prefix {company_prefix:?} must contain no '/' or control characters"
        )));
    }
    Ok(Accounts {
        sessions_path,
        single_tenant,
        company_prefix,
    })
}

/// The sessions path in one spelling for every run, and the state directory (by default beside
/// the accounts, or beside a SQLite file), never inside an account's folder.
pub(super) fn resolve_state_dir(
    l: &mut Layers,
    g: &GlobalArgs,
    file: &FileConfig,
    store: &StoreSpec,
    accounts: &Accounts,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let Accounts {
        sessions_path,
        single_tenant,
        company_prefix,
    } = accounts;
    let single_tenant = *single_tenant;
    // One spelling of the root for every run: `--sessions-path .` from inside a folder and
    // cron's absolute path must name the same state directory and take the same locks.
    let sessions_path = if store.is_folder() {
        let p = canonical(sessions_path);
        l.resolved("sessions_path", p.display().to_string());
        p
    } else {
        sessions_path.clone()
    };
    let state_dir = match l.text(
        "state_dir",
        flag(path_text(&g.state_dir), "--state-dir"),
        Some("BAILEYS_JANITOR_STATE_DIR"),
        file.state_dir.as_ref().map(|p| p.display().to_string()),
        false,
    ) {
        Some(s) => {
            let p = canonical(Path::new(&s));
            l.resolved("state_dir", p.display().to_string());
            p
        }
        None => {
            let d = match store {
                StoreSpec::Sqlite(p) => {
                    default_state_dir(p, p.extension().is_some_and(|e| e == "db"))
                }
                _ => default_state_dir(&sessions_path, single_tenant),
            };
            l.record("state_dir", d.display().to_string(), Origin::Default);
            d
        }
    };
    if store.is_folder() {
        state_outside_accounts(&state_dir, &sessions_path, single_tenant, company_prefix)?;
    }
    Ok((sessions_path, state_dir))
}

/// `path` made absolute and canonical (symlinks and `.`/`..` resolved) when it exists, else
/// absolute (against the working directory), with whatever prefix of it exists resolved: the
/// error for a missing path then names the path the operator meant.
fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or(abs),
        _ => abs,
    }
}

/// The state directory (trash, locks, records) never goes inside an account's folder: Baileys
/// would find the janitor's files among its own, and a cleanup of that folder would see them.
/// Both paths are canonical.
fn state_outside_accounts(
    state_dir: &Path,
    sessions_path: &Path,
    single_tenant: bool,
    prefix: &str,
) -> anyhow::Result<()> {
    let Ok(inside) = state_dir.strip_prefix(sessions_path) else {
        return Ok(());
    };
    let account = if single_tenant {
        Some(sessions_path.to_owned())
    } else {
        // Beside the company folders (the default `<root>/.janitor`) is fine; inside one is not.
        let mut parts = inside.components();
        match (parts.next(), parts.next()) {
            (Some(first), Some(_)) => {
                let name = first.as_os_str().to_string_lossy();
                (!name.starts_with('.') && name.starts_with(prefix))
                    .then(|| sessions_path.join(first))
            }
            _ => None,
        }
    };
    match account {
        Some(folder) => Err(usage(format!(
            "state directory {} is inside the auth folder {}; put it beside the folder (the default: {}) or pass --state-dir with a path outside it",
            state_dir.display(),
            folder.display(),
            default_state_dir(&folder, true).display()
        ))),
        None => Ok(()),
    }
}

pub fn default_state_dir(sessions_path: &Path, single_tenant: bool) -> PathBuf {
    if single_tenant {
        let parent = sessions_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        parent.join(STATE_DIR_NAME)
    } else {
        sessions_path.join(STATE_DIR_NAME)
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::super::tests::load;
    use super::*;

    #[test]
    fn single_tenant_state_dir_is_beside_the_folder() {
        let c = load(&["--single-tenant", "--sessions-path", "/srv/auth"], None).unwrap();
        assert!(c.single_tenant);
        assert_eq!(c.state_dir, PathBuf::from("/srv/.janitor"));
    }

    #[test]
    fn state_never_goes_inside_an_auth_folder() {
        let root = Path::new("/srv/s");
        let ok = |state: &str, single: bool| {
            state_outside_accounts(Path::new(state), root, single, "company_").is_ok()
        };
        // Multi-tenant: beside the company folders, or outside the root, is fine.
        assert!(ok("/srv/s/.janitor", false));
        assert!(ok("/var/lib/baileys-janitor", false));
        assert!(ok("/srv/s/state/deep", false), "not a company folder");
        // Inside a company folder is not.
        assert!(!ok("/srv/s/company_1/.janitor", false));
        // Single tenant: anywhere under the auth folder is refused, beside it is fine.
        assert!(!ok("/srv/s/.janitor", true));
        assert!(!ok("/srv/s", true));
        assert!(ok("/srv/.janitor", true));
        let e = state_outside_accounts(Path::new("/srv/s/x"), root, true, "").unwrap_err();
        assert!(e.to_string().contains("/srv/.janitor"), "{e}");
    }

    #[test]
    fn paths_are_made_absolute_and_canonical() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, tmp.path().join("link")).unwrap();
        let real = real.canonicalize().unwrap();
        assert_eq!(canonical(&tmp.path().join("link")), real);
        assert_eq!(canonical(&tmp.path().join("link/../real/.")), real);
        // A missing last part keeps its name under the resolved parent.
        assert_eq!(canonical(&tmp.path().join("link/new")), real.join("new"));
        assert!(canonical(Path::new("relative/missing")).is_absolute());
    }
}
