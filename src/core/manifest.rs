//! A backup's manifest: every file with its size, mtime, owner, mode and checksum, written last,
//! just before the backup folder is renamed into place. A backup without one is not a backup.
//!
//! The checksum is 64-bit FNV-1a (a dozen lines, no dependency). It finds a truncated, torn or
//! bit-rotted copy; it is not meant to resist someone who forges files in the state directory
//! (that person is root already).

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::creds::Identity;
use crate::core::folder::Owner;

pub const MANIFEST: &str = "manifest.json";
pub const VERSION: u32 = 1;

/// 64-bit FNV-1a, fed in pieces.
#[derive(Clone, Copy, Debug)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Hashes everything read from `r`; returns the size and the checksum.
pub fn checksum(mut r: impl io::Read) -> io::Result<(u64, String)> {
    let mut h = Fnv64::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let got = r.read(&mut buf)?;
        if got == 0 {
            return Ok((n, h.hex()));
        }
        h.update(&buf[..got]);
        n += got as u64;
    }
}

/// Seconds and nanoseconds since the epoch (as `stat` gives them) → a time.
pub fn system_time(secs: i64, nsec: u32) -> SystemTime {
    let nsec = nsec.min(999_999_999);
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsec)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nsec.into())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub name: String,
    pub size: u64,
    /// Seconds and nanoseconds since the epoch.
    pub mtime: i64,
    pub mtime_nsec: u32,
    #[serde(flatten)]
    pub owner: Owner,
    pub fnv1a64: String,
}

impl FileRecord {
    pub fn mtime(&self) -> SystemTime {
        system_time(self.mtime, self.mtime_nsec)
    }

    #[cfg(test)]
    pub fn split_mtime(t: SystemTime) -> (i64, u32) {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => {
                let d = e.duration();
                let (mut s, mut n) = (-(d.as_secs() as i64), d.subsec_nanos());
                if n > 0 {
                    s -= 1;
                    n = 1_000_000_000 - n;
                }
                (s, n)
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub company: String,
    pub created: DateTime<Utc>,
    /// The company folder's own owner and mode.
    pub folder: Owner,
    /// The identity creds.json held when the backup was made.
    #[serde(default)]
    pub identity: Option<Identity>,
    pub files: Vec<FileRecord>,
}

impl Manifest {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_values() {
        // Reference values of 64-bit FNV-1a.
        let h = |s: &[u8]| {
            let mut f = Fnv64::default();
            f.update(s);
            f.hex()
        };
        assert_eq!(h(b""), "cbf29ce484222325");
        assert_eq!(h(b"a"), "af63dc4c8601ec8c");
        assert_eq!(h(b"foobar"), "85944171f73967e8");
        let (n, sum) = checksum(&b"foobar"[..]).unwrap();
        assert_eq!((n, sum.as_str()), (6, "85944171f73967e8"));
    }

    #[test]
    fn mtimes_round_trip_before_and_after_the_epoch() {
        for t in [
            UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            UNIX_EPOCH - Duration::new(10, 250),
        ] {
            let (s, n) = FileRecord::split_mtime(t);
            let r = FileRecord {
                name: "x".into(),
                size: 0,
                mtime: s,
                mtime_nsec: n,
                owner: Owner {
                    uid: 1,
                    gid: 2,
                    mode: 0o640,
                },
                fnv1a64: String::new(),
            };
            assert_eq!(r.mtime(), t);
        }
    }
}
