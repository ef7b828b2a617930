//! Per-company and process-wide locks: OS file locks (`flock` through `File::try_lock`), so a
//! crashed or killed run never leaves a stale lock. Lock files are never deleted (deleting a lock
//! file while another process holds it would let a third one lock a new file of the same name);
//! their text says who holds them, for people.

use std::ffi::OsStr;
use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, Write};

use crate::core::folder::Folder;

/// Held while the lock is; dropping it (or the process dying) releases it.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
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
            Ok(LockAttempt::Acquired(LockGuard { _file: file }))
        }
        Err(TryLockError::WouldBlock) => Ok(LockAttempt::Busy(read_holder(&mut file))),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Who holds `dir/name` right now, or `None` when it is free (or was never created).
pub fn current_holder(dir: &Folder, name: &OsStr) -> Option<String> {
    let mut file = dir.open_file(name).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => read_holder(&mut file).or(Some("unknown".into())),
        Err(TryLockError::Error(_)) => None,
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
        assert_eq!(current_holder(&dir, name).as_deref(), Some("pid=1 first"));
        drop(guard);
        assert_eq!(current_holder(&dir, name), None);
        assert!(matches!(
            try_lock(&dir, name, "x").unwrap(),
            LockAttempt::Acquired(_)
        ));
    }

    #[test]
    fn holder_text_names_pid_and_host() {
        let t = holder_text("cleanup", chrono::Utc::now());
        assert!(t.starts_with(&format!("pid={} host=", std::process::id())));
        assert!(t.contains("command=cleanup"));
    }
}
