//! The state directory: locks, trash, backups, run records, cooldowns and history live here,
//! outside every auth folder. It is created on first need (mode 0700) and never by a dry run.
//! This module owns its layout (the names below) and taking the locks kept in it; everything
//! else reaches the state directory through a [`StateDir`].
//!
//! ```text
//! <state>/locks/<company>.lock     per-company lock (cleanup, trigger, monitor, restore, backup)
//! <state>/trigger.lock             one trigger per host
//! <state>/monitor.lock             one monitor per state directory
//! <state>/state.lock               serialises read-modify-write of the records below
//! <state>/runs.json                last run of each command (for the monitor's cron watch)
//! <state>/companies/<company>.json recent cleanups, cooldown, history
//! <state>/monitor.json             alerts already sent (so `monitor --once` from cron does not repeat)
//! <state>/trash/<company>/<run>/   removed files, restorable
//! <state>/backups/<company>/<time>/ copies made by `backup`
//! ```
//!
//! A store that keeps the janitor's state itself (`Store::shared_state`, issue 23) takes over
//! the records, the ledger and the trash: [`StateDir::share`] attaches it, and `core::records`,
//! `store::ledger` and the store's trash go there. What stays here is local to the host: its
//! locks, its logs and `monitor.json` (and the files of an older version, read until the store
//! has its own copy).

use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub mod binding;

use crate::core::folder::Folder;
use crate::core::lock::{self, LockAttempt};
use crate::core::store::SharedState;
use crate::core::store::shared::{Doc, Space};

pub const LOCKS_DIR: &str = "locks";
pub const TRASH_DIR: &str = "trash";
pub const BACKUPS_DIR: &str = "backups";
pub const TRIGGER_LOCK: &str = "trigger.lock";
pub const MONITOR_LOCK: &str = "monitor.lock";

pub struct StateDir {
    path: PathBuf,
    folder: OnceLock<Folder>,
    /// The sessions root this run works on, recorded when the state folder is created.
    root: OnceLock<crate::core::state::binding::RootId>,
    /// The store's own copy of the janitor's state, where it keeps one: records, runs, ledger
    /// and trash live there instead of here. Replaced when a monitor opens its store again.
    /// Several handles on it when a store's tenants are cleaned on several threads
    /// ([`StateDir::widen_shared`]), each used by one caller at a time: workers then never wait
    /// for each other's commits (SQLite: each its own connections to the sibling files).
    shared: std::sync::RwLock<Vec<Mutex<Box<dyn SharedState>>>>,
    /// Whether `shared` holds one: asked without waiting for the lock (by code that may run
    /// while a caller of [`StateDir::with_shared`] holds it).
    attached: std::sync::atomic::AtomicBool,
    /// Documents lately read from `shared`, as hints for this process's next write of them.
    recent: Mutex<std::collections::VecDeque<Recent>>,
}

/// A document lately read from the shared state (`None`: read, and not there), and when.
type Recent = (Space, String, Option<Doc>, Instant);

/// How many documents [`StateDir::remember`] keeps: a few per tenant in flight, whatever the
/// number of tenants (memory stays flat).
const RECENT_DOCS: usize = 64;
/// How long such a hint is used: a tenant's cleanup and its mark are seconds apart. (Versions
/// only grow, but a state schema dropped and made again under a running monitor starts them
/// over: an old hint must not match a new document by chance.)
const RECENT_FOR: Duration = Duration::from_secs(60);

thread_local! {
    /// This thread is inside [`StateDir::with_shared`]: a second call would wait for itself.
    static IN_SHARED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The handle of the shared state this thread used last: taken again first, so a worker
    /// keeps finding its tenant's files open on it.
    static HANDLE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl std::fmt::Debug for StateDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDir")
            .field("path", &self.path)
            .field("shared", &self.has_shared())
            .finish()
    }
}

impl StateDir {
    pub fn new(path: impl Into<PathBuf>) -> StateDir {
        StateDir {
            path: path.into(),
            folder: OnceLock::new(),
            root: OnceLock::new(),
            shared: std::sync::RwLock::new(Vec::new()),
            attached: std::sync::atomic::AtomicBool::new(false),
            recent: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// Keeps `doc`, just read from the shared state (`None`: not there), as a hint for the next
    /// write of it: a compare-and-swap that starts from it saves a round trip. Never an answer to a read (a
    /// decision reads the store); a stale hint only makes the swap fail and read again.
    pub fn remember(&self, space: Space, name: &str, doc: Option<Doc>) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.retain(|(s, n, _, _)| !(*s == space && n == name));
        if recent.len() >= RECENT_DOCS {
            recent.pop_front();
        }
        recent.push_back((space, name.to_owned(), doc, Instant::now()));
    }

    /// The hint [`StateDir::remember`] kept for this document, taken (used once).
    pub fn recall(&self, space: Space, name: &str) -> Option<Option<Doc>> {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let at = recent
            .iter()
            .position(|(s, n, _, _)| *s == space && n == name)?;
        recent
            .remove(at)
            .filter(|(_, _, _, at)| at.elapsed() < RECENT_FOR)
            .map(|(_, _, doc, _)| doc)
    }

    /// Keeps the janitor's state in `shared` (the store's) from now on; replaces an earlier one.
    pub fn share(&self, shared: Box<dyn SharedState>) {
        *self.shared.write().unwrap_or_else(|p| p.into_inner()) = vec![Mutex::new(shared)];
        self.attached
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether a store keeps the janitor's state (see [`StateDir::share`]).
    pub fn has_shared(&self) -> bool {
        self.attached.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A run's id: `20261128T030000Z-4242`, sortable, unique per process. Where many hosts share
    /// the state (the store's), `20261128T030000Z-bot-2-4242`: containers (each its own pid 1)
    /// that cron starts in the same second must not write their trash under one id.
    pub fn run_id(&self, now: chrono::DateTime<chrono::Utc>) -> String {
        let stamp = now.format("%Y%m%dT%H%M%SZ");
        let pid = std::process::id();
        if !self.has_shared() {
            return format!("{stamp}-{pid}");
        }
        let host: String = crate::core::util::hostname()
            .chars()
            .take(64)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{stamp}-{host}-{pid}")
    }

    /// Runs `f` on the store's shared state, one caller at a time per handle (`None`: there is
    /// none, the state directory holds everything). `f` must not call `with_shared` again: that
    /// would wait for itself, so it panics instead (a bug, never a hang).
    pub fn with_shared<T>(&self, f: impl FnOnce(&mut dyn SharedState) -> T) -> Option<T> {
        if !self.has_shared() {
            return None;
        }
        assert!(
            !IN_SHARED.get(),
            "StateDir::with_shared called inside with_shared"
        );
        let handles = self.shared.read().unwrap_or_else(|p| p.into_inner());
        if handles.is_empty() {
            return None;
        }
        // This thread's handle if it is free, else any free one, else wait for this thread's.
        let mine = HANDLE.get() % handles.len();
        let free = (0..handles.len())
            .map(|k| (mine + k) % handles.len())
            .find_map(|i| match handles[i].try_lock() {
                Ok(g) => Some((i, g)),
                Err(std::sync::TryLockError::Poisoned(p)) => Some((i, p.into_inner())),
                Err(std::sync::TryLockError::WouldBlock) => None,
            });
        let (i, mut guard) = match free {
            Some(found) => found,
            None => (
                mine,
                handles[mine].lock().unwrap_or_else(|p| p.into_inner()),
            ),
        };
        HANDLE.set(i);
        IN_SHARED.set(true);
        let _reset = ResetOnDrop;
        Some(f(guard.as_mut()))
    }

    /// Opens more handles on the shared state, up to `n` in all, for `n` workers
    /// (`SharedState::another`); as many as the store gives (it may give none: one handle is
    /// then shared). Returns how many there are.
    pub fn widen_shared(&self, n: usize) -> usize {
        assert!(
            !IN_SHARED.get(),
            "StateDir::widen_shared called inside with_shared"
        );
        let mut handles = self.shared.write().unwrap_or_else(|p| p.into_inner());
        while !handles.is_empty() && handles.len() < n {
            let first = handles[0].get_mut().unwrap_or_else(|p| p.into_inner());
            match first.another() {
                Ok(Some(h)) => handles.push(Mutex::new(h)),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open another handle on the janitor's state; the workers share one");
                    break;
                }
            }
        }
        handles.len()
    }

    /// Says which sessions root this run works on (see `core::binding`).
    pub fn bind_root(&self, root: crate::core::state::binding::RootId) {
        let _ = self.root.set(root);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state folder, created (with its parents) if missing.
    pub fn folder(&self) -> io::Result<&Folder> {
        if let Some(f) = self.folder.get() {
            return Ok(f);
        }
        let f = match Folder::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Only the state directory itself: a missing parent (a mistyped sessions path)
                // is an error, never created.
                let created = match std::fs::DirBuilder::new()
                    .recursive(false)
                    .mode(0o700)
                    .create(&self.path)
                {
                    // Another worker thread (or process) created it a moment ago, and records
                    // the root: two writers of that file at once would trip over each other.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                    r => {
                        r.map_err(|e| with_path(e, &self.path, "cannot create state directory"))?;
                        true
                    }
                };
                let f = Folder::open(&self.path)?;
                if created
                    && let Some(root) = self.root.get()
                    && let Err(e) = crate::core::state::binding::record(&f, root)
                {
                    // Not fatal: the next run that can write records it.
                    tracing::warn!(error = %e, "cannot record the sessions root in the state directory");
                }
                f
            }
            Err(e) => return Err(with_path(e, &self.path, "cannot open state directory")),
        };
        Ok(self.folder.get_or_init(|| f))
    }

    /// The state folder if it exists; never creates it (for read-only commands and dry runs).
    pub fn existing(&self) -> Option<&Folder> {
        if let Some(f) = self.folder.get() {
            return Some(f);
        }
        let f = Folder::open(&self.path).ok()?;
        Some(self.folder.get_or_init(|| f))
    }

    /// Why the state directory exists but cannot be opened (permissions), if so: then
    /// "never cleaned" would be a lie.
    pub fn unreadable(&self) -> Option<String> {
        if self.existing().is_some() || std::fs::symlink_metadata(&self.path).is_err() {
            return None;
        }
        Folder::open(&self.path).err().map(|e| {
            format!(
                "cannot open the state directory {}: {e}",
                self.path.display()
            )
        })
    }

    /// `<state>/<kind>/<company>/<name>/` (a run's trash, a backup), created if missing.
    pub fn run_dir(&self, kind: &str, company: &str, name: &str) -> io::Result<Folder> {
        self.subdir(kind)?
            .ensure_dir(OsStr::new(company))?
            .ensure_dir(OsStr::new(name))
    }

    /// A sub-folder, created if missing.
    pub fn subdir(&self, name: &str) -> io::Result<Folder> {
        self.folder()?.ensure_dir(OsStr::new(name))
    }

    /// Takes a company's lock without waiting: every command that changes a company folder
    /// (cleanup, trigger, monitor, restore, backup) comes through here.
    pub fn lock_company(&self, company: &str, holder: &str) -> io::Result<LockAttempt> {
        let locks = self.subdir(LOCKS_DIR)?;
        lock::try_lock(&locks, OsStr::new(&company_lock_name(company)), holder)
    }

    /// Waits until a company's lock is free (taken and released at once), polling, until
    /// `deadline`. `false` when it stayed held (or cannot be taken at all).
    pub fn wait_company_lock(&self, company: &str, holder: &str, deadline: Instant) -> bool {
        loop {
            match self.lock_company(company, holder) {
                Ok(LockAttempt::Acquired(_)) => return true,
                Ok(LockAttempt::Busy(_)) => {}
                Err(_) => return false,
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(200)));
        }
    }

    /// Takes a host-wide lock (`trigger.lock`, `monitor.lock`) without waiting.
    pub fn lock_host(&self, name: &str, holder: &str) -> io::Result<LockAttempt> {
        lock::try_lock(self.folder()?, OsStr::new(name), holder)
    }

    /// Who holds a company's lock, read without taking it (so `status` never gets in a
    /// cleanup's way); a dead holder is no holder.
    pub fn company_lock_holder(&self, company: &str) -> Option<String> {
        let locks = self.existing()?.open_dir(OsStr::new(LOCKS_DIR)).ok()?;
        lock::holder_of(&locks, OsStr::new(&company_lock_name(company)))
    }
}

/// Leaves [`StateDir::with_shared`] (also when `f` panics).
struct ResetOnDrop;

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        IN_SHARED.set(false);
    }
}

fn company_lock_name(company: &str) -> String {
    format!("{company}.lock")
}

use std::os::unix::fs::DirBuilderExt;

fn with_path(e: io::Error, path: &Path, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Writes `name` in `dir` atomically: a temp file, fsync, rename over the old one, fsync of the
/// folder. A crash or a full disk leaves the old file whole, never a truncated one.
pub fn write_atomic(dir: &Folder, name: &str, bytes: &[u8]) -> io::Result<()> {
    write_atomic_mode(dir, name, bytes, 0o600)
}

/// [`write_atomic`] with a mode of its own: metrics files are read by node_exporter, another
/// user, so they get 0666 less the umask.
pub fn write_atomic_mode(dir: &Folder, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = format!(".{name}.tmp.{}", std::process::id());
    let result = (|| {
        let mut f = dir.create_file_mode(OsStr::new(&tmp), mode)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        dir.rename(OsStr::new(&tmp), OsStr::new(name))?;
        dir.sync()
    })();
    if result.is_err() {
        let _ = dir.unlink(OsStr::new(&tmp));
    }
    result
}

pub fn write_json<T: Serialize>(dir: &Folder, name: &str, value: &T) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(dir, name, &bytes)
}

/// What reading a state file found.
#[derive(Debug)]
pub enum Loaded<T> {
    Missing,
    Ok(T),
    /// Unreadable or not the expected JSON: the caller reports it and starts afresh.
    Corrupt(String),
}

pub const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

pub fn read_json<T: DeserializeOwned>(dir: &Folder, name: &str) -> Loaded<T> {
    match dir.read_file(OsStr::new(name), MAX_STATE_BYTES) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Loaded::Missing,
        Err(e) => Loaded::Corrupt(format!("cannot read {name}: {e}")),
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(v) => Loaded::Ok(v),
            Err(e) => Loaded::Corrupt(format!("{name} is not valid ({e})")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Folder::open(tmp.path()).unwrap();
        write_json(&dir, "s.json", &vec![1, 2]).unwrap();
        write_json(&dir, "s.json", &vec![3]).unwrap();
        assert!(matches!(read_json::<Vec<u32>>(&dir, "s.json"), Loaded::Ok(v) if v == vec![3]));
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["s.json"]);
    }

    #[test]
    fn corrupt_and_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Folder::open(tmp.path()).unwrap();
        assert!(matches!(
            read_json::<Vec<u32>>(&dir, "none.json"),
            Loaded::Missing
        ));
        std::fs::write(tmp.path().join("bad.json"), "{trunc").unwrap();
        assert!(matches!(
            read_json::<Vec<u32>>(&dir, "bad.json"),
            Loaded::Corrupt(_)
        ));
    }

    #[test]
    fn a_remembered_document_is_recalled_once_and_only_a_few_are_kept() {
        let s = StateDir::new("/nonexistent");
        let doc = |v: u64| {
            Some(Doc {
                body: v.to_string().into_bytes(),
                version: v,
            })
        };
        s.remember(Space::Company, "t1", doc(1));
        s.remember(Space::Company, "t1", doc(2));
        assert_eq!(s.recall(Space::Ledger, "t1"), None, "another space");
        assert_eq!(
            s.recall(Space::Company, "t1"),
            Some(doc(2)),
            "the latest read"
        );
        assert_eq!(s.recall(Space::Company, "t1"), None, "used once");
        for i in 0..(RECENT_DOCS as u64 + 10) {
            s.remember(Space::Company, &format!("t{i}"), doc(i));
        }
        assert_eq!(s.recall(Space::Company, "t0"), None, "the oldest went");
        let last = RECENT_DOCS as u64 + 9;
        assert_eq!(
            s.recall(Space::Company, &format!("t{last}")),
            Some(doc(last))
        );
        assert!(s.recent.lock().unwrap().len() < RECENT_DOCS);
        // Read and not there is a hint too (a first run's mark inserts without reading).
        s.remember(Space::Company, "new", None);
        assert_eq!(s.recall(Space::Company, "new"), Some(None));
        assert_eq!(s.recall(Space::Company, "new"), None, "used once");
    }

    #[test]
    fn run_ids_name_the_host_where_many_hosts_share_the_state() {
        let tmp = tempfile::tempdir().unwrap();
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let s = StateDir::new(tmp.path().join("a"));
        let pid = std::process::id();
        assert_eq!(s.run_id(now), format!("20270115T080000Z-{pid}"));
        s.share(Box::new(
            crate::core::store::memory_state::MemoryState::new(),
        ));
        let id = s.run_id(now);
        assert!(id.starts_with("20270115T080000Z-"), "{id}");
        assert!(id.ends_with(&format!("-{pid}")), "{id}");
        assert!(id.len() > format!("20270115T080000Z-{pid}").len(), "{id}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)),
            "{id}"
        );
        assert_eq!(crate::core::trash::run_time(&id), Some(now));
    }

    #[test]
    fn workers_each_get_a_handle_on_the_shared_state_where_the_store_gives_more() {
        use crate::core::store::shared::SharedOptions;
        use crate::core::store::sqlite_state::SqliteState;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let tmp = tempfile::tempdir().unwrap();
        let s = StateDir::new(tmp.path().join("state"));
        // A state that gives no second handle: the workers share the one.
        s.share(Box::new(
            crate::core::store::memory_state::MemoryState::new(),
        ));
        assert_eq!(s.widen_shared(4), 1);
        s.share(Box::new(
            SqliteState::open(tmp.path(), false, &SharedOptions::default()).unwrap(),
        ));
        assert_eq!(s.widen_shared(2), 2);
        assert_eq!(s.widen_shared(2), 2);
        // Two callers are inside at the same time, each on its own handle (with one handle the
        // second would wait for the first, which would give up waiting for it).
        let inside = AtomicUsize::new(0);
        let together = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        s.with_shared(|_| {
                            inside.fetch_add(1, Ordering::SeqCst);
                            let end = Instant::now() + Duration::from_secs(5);
                            while inside.load(Ordering::SeqCst) < 2 && Instant::now() < end {
                                std::thread::sleep(Duration::from_millis(5));
                            }
                            inside.load(Ordering::SeqCst) == 2
                        })
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert_eq!(together, [Some(true), Some(true)]);
        // A new state attached (a monitor's next tick) starts again from one handle.
        s.share(Box::new(
            crate::core::store::memory_state::MemoryState::new(),
        ));
        assert_eq!(s.widen_shared(1), 1);
    }

    #[test]
    fn state_dir_is_created_on_demand_only() {
        let tmp = tempfile::tempdir().unwrap();
        let s = StateDir::new(tmp.path().join("a"));
        assert!(s.existing().is_none());
        assert!(!tmp.path().join("a").exists());
        s.subdir("locks").unwrap();
        assert!(tmp.path().join("a/locks").is_dir());
        // A missing parent is never created.
        let s = StateDir::new(tmp.path().join("missing/state"));
        assert!(s.subdir("locks").is_err());
        assert!(!tmp.path().join("missing").exists());
    }
}
