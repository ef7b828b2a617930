//! Per-company and process-wide locks: OS file locks (`flock` through `File::try_lock`), so a
//! crashed or killed run never leaves a stale lock. Lock files are never deleted (deleting a lock
//! file while another process holds it would let a third one lock a new file of the same name);
//! their text says who holds them while they are held, and is emptied on release, so a reader
//! can tell who holds a lock without trying to take it.

use std::ffi::OsStr;
use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, Write};

use crate::core::folder::Folder;

/// Held while the lock is; dropping it (or the process dying) releases it.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Emptied while still locked: the next holder writes its own text after taking it.
        let _ = self.file.set_len(0);
    }
}

#[derive(Debug)]
pub enum LockAttempt {
    Acquired(LockGuard),
    /// Someone else holds it; what they wrote in the file, if readable.
    Busy(Option<String>),
}

/// Who holds a lock, as written into the lock file.
pub fn holder_text(command: &str, started: chrono::DateTime<chrono::Utc>) -> String {
    let host = crate::core::util::hostname();
    format!(
        "pid={} host={} command={} started={}\n",
        std::process::id(),
        host,
        command,
        started.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// Tries to take the lock `dir/name` without waiting.
pub fn try_lock(dir: &Folder, name: &OsStr, holder: &str) -> io::Result<LockAttempt> {
    let mut file = dir.open_rw(name)?;
    match file.try_lock() {
        Ok(()) => {
            // Best effort: the lock is what matters, the text is for people.
            let _ = file
                .set_len(0)
                .and_then(|_| file.write_all(holder.as_bytes()));
            Ok(LockAttempt::Acquired(LockGuard { file }))
        }
        Err(TryLockError::WouldBlock) => Ok(LockAttempt::Busy(read_holder(&mut file))),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Who holds `dir/name` right now, from the text the holder wrote, without touching the lock.
/// `None` when it is free, was never created, or its holder on this host is dead (killed -9).
pub fn holder_of(dir: &Folder, name: &OsStr) -> Option<String> {
    let mut file = dir.open_file(name).ok()?;
    let text = read_holder(&mut file)?;
    holder_alive(&text).then_some(text)
}

/// A holder text names a live process, unless it is on this host and its pid is gone.
fn holder_alive(text: &str) -> bool {
    let field = |k: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(k).map(str::to_owned))
    };
    let same_host = field("host=").is_some_and(|h| h == crate::core::util::hostname());
    match field("pid=").and_then(|p| p.parse::<i32>().ok()) {
        Some(pid) if same_host => rustix::process::Pid::from_raw(pid).is_some_and(|p| {
            // EPERM: alive, another user's. Only ESRCH means gone.
            rustix::process::test_kill_process(p) != Err(rustix::io::Errno::SRCH)
        }),
        _ => true,
    }
}

fn read_holder(file: &mut File) -> Option<String> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(4096).read_to_string(&mut text).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_busy_and_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Folder::open(tmp.path()).unwrap();
        let name = OsStr::new("company_1.lock");
        let LockAttempt::Acquired(guard) = try_lock(&dir, name, "pid=1 first\n").unwrap() else {
            panic!("first lock must succeed");
        };
        match try_lock(&dir, name, "pid=2 second\n").unwrap() {
            LockAttempt::Busy(Some(h)) => assert_eq!(h, "pid=1 first"),
            other => panic!("expected busy, got {other:?}"),
        }
        let alive = holder_text("cleanup", chrono::Utc::now());
        let alive = alive.trim();
        drop(guard);
        assert_eq!(holder_of(&dir, name), None, "released: emptied");
        let LockAttempt::Acquired(guard) = try_lock(&dir, name, alive).unwrap() else {
            panic!("free again");
        };
        assert_eq!(holder_of(&dir, name).as_deref(), Some(alive));
        drop(guard);
        assert_eq!(holder_of(&dir, name), None);
        assert!(matches!(
            try_lock(&dir, name, "x").unwrap(),
            LockAttempt::Acquired(_)
        ));
    }

    #[test]
    fn a_dead_holder_is_no_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Folder::open(tmp.path()).unwrap();
        let host = crate::core::util::hostname();
        // A kill -9 leaves the text behind; pid 0x3fffffff does not exist.
        std::fs::write(
            tmp.path().join("c.lock"),
            format!("pid=1073741823 host={host} command=cleanup started=x\n"),
        )
        .unwrap();
        assert_eq!(holder_of(&dir, OsStr::new("c.lock")), None);
        // Another host's holder cannot be checked from here: shown.
        std::fs::write(tmp.path().join("d.lock"), "pid=1073741823 host=elsewhere\n").unwrap();
        assert!(holder_of(&dir, OsStr::new("d.lock")).is_some());
    }

    #[test]
    fn holder_text_names_pid_and_host() {
        let t = holder_text("cleanup", chrono::Utc::now());
        assert!(t.starts_with(&format!("pid={} host=", std::process::id())));
        assert!(t.contains("command=cleanup"));
    }
}
