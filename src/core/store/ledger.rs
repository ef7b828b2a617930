//! The janitor's own clock for rows that carry none (sender keys, pre-keys, memories in stores
//! without `updated_at`): per tenant, each key's value fingerprint, when we first saw it and when
//! we last saw it change. "3 days old" then means "unchanged for 3 days of our observation".
//!
//! One small JSON-lines file per tenant under `<state>/ledger/<store>/`, rewritten atomically
//! after each real run. A key we have never seen is 0 seconds old, so nothing is removed by the
//! ledger's clock before it has watched the key for the rule's whole age.
//!
//! Where the store keeps the janitor's state (issue 23), the same JSON lines are the tenant's
//! `ledger` document there, so every host ages keys by one clock. While the store has none yet
//! (a host upgrading), the state directory's file is read, and the next save moves it over.

use std::collections::HashMap;
use std::io;

use serde::{Deserialize, Serialize};

use super::shared::Space;
use crate::core::state::{self, StateDir};

pub const LEDGER_DIR: &str = "ledger";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub hash: u64,
    /// Seconds since the epoch.
    pub first_seen: i64,
    pub last_changed: i64,
}

#[derive(Serialize, Deserialize)]
struct Line {
    t: String,
    i: String,
    h: String,
    f: i64,
    c: i64,
}

#[derive(Debug, Default)]
pub struct Ledger {
    rows: HashMap<(String, String), Seen>,
    next: HashMap<(String, String), Seen>,
    /// Read from the store's shared state: the document's version and a fingerprint of its
    /// body, so `save` writes in one step, and not at all when nothing changed.
    stored: Option<(u64, u64)>,
}

/// A file name for a tenant's ledger: [`file_stem`] and `.jsonl`.
pub fn file_name(tenant: &str) -> String {
    file_stem(tenant) + ".jsonl"
}

/// Longest stem kept as written; longer ones are cut and end in a hash of the whole name.
const STEM_MAX: usize = 120;

/// A tenant as a file name stem (ledger, lock): safe characters kept, everything else `%XX`.
/// A stem that would not fit a file name (a long non-ASCII tenant name triples in length) is
/// cut and ends in `~` and a hash of the whole name, so it always fits and stays unique.
pub fn file_stem(tenant: &str) -> String {
    let mut s = String::with_capacity(tenant.len() + 6);
    for b in tenant.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && !s.is_empty()) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    if s.len() > STEM_MAX {
        // `s` is ASCII: any byte index is a char boundary.
        s.truncate(STEM_MAX - 17);
        s.push_str(&format!("~{:016x}", super::fingerprint(tenant.as_bytes())));
    }
    s
}

impl Ledger {
    /// Loads a tenant's ledger; missing or unreadable lines mean "never seen" (younger, so safer).
    pub fn load(state: &StateDir, store_key: &str, tenant: &str) -> Ledger {
        let shared = state.with_shared(|sh| sh.read(Space::Ledger, tenant));
        let mut stored = None;
        let text = match shared {
            Some(Ok(Some(doc))) => {
                stored = Some((doc.version, super::fingerprint(&doc.body)));
                String::from_utf8_lossy(&doc.body).into_owned()
            }
            Some(Err(e)) => {
                tracing::warn!(company = %tenant, error = %e, "cannot read the ledger from the store; every timestamp-less key counts as new");
                String::new()
            }
            None | Some(Ok(None)) => {
                let path = state
                    .path()
                    .join(LEDGER_DIR)
                    .join(store_key)
                    .join(file_name(tenant));
                std::fs::read_to_string(path).unwrap_or_default()
            }
        };
        Ledger {
            rows: parse(&text),
            next: HashMap::new(),
            stored,
        }
    }

    /// Records this run's sight of a key and returns what the ledger now knows of it.
    pub fn observe(&mut self, key_type: &str, id: &str, hash: u64, now: i64) -> Seen {
        let k = (key_type.to_owned(), id.to_owned());
        let seen = match self.rows.get(&k) {
            Some(s) if s.hash == hash => *s,
            Some(s) => Seen {
                hash,
                first_seen: s.first_seen,
                last_changed: now,
            },
            None => Seen {
                hash,
                first_seen: now,
                last_changed: now,
            },
        };
        self.next.insert(k, seen);
        seen
    }

    /// What the ledger knew of a key when it was loaded (read only: for `restore`).
    pub fn seen(&self, key_type: &str, id: &str) -> Option<Seen> {
        self.rows
            .get(&(key_type.to_owned(), id.to_owned()))
            .copied()
    }

    /// Forgets a key (it was removed).
    pub fn forget(&mut self, key_type: &str, id: &str) {
        self.next.remove(&(key_type.to_owned(), id.to_owned()));
    }

    /// Writes what this run observed (keys no longer there are dropped), atomically: a file in
    /// the state directory, or the tenant's document in the store's shared state.
    pub fn save(&self, state: &StateDir, store_key: &str, tenant: &str) -> io::Result<()> {
        let body = self.lines()?;
        let shared = state.with_shared(|sh| -> super::Result<bool> {
            let mut expected = self.stored.map(|(version, _)| version);
            if self
                .stored
                .is_some_and(|(_, was)| was == super::fingerprint(body.as_bytes()))
            {
                return Ok(true); // unchanged since it was read: nothing to write
            }
            if sh.swap(Space::Ledger, tenant, expected, body.as_bytes())? {
                return Ok(true);
            }
            // The tenant's lock is held: this run's view is the truth. A version that moved on
            // meanwhile (a run that ignored the lock) is replaced, as the file would be.
            for _ in 0..10 {
                expected = sh.read(Space::Ledger, tenant)?.map(|d| d.version);
                if sh.swap(Space::Ledger, tenant, expected, body.as_bytes())? {
                    return Ok(true);
                }
            }
            Ok(false)
        });
        match shared {
            None => {}
            Some(Ok(true)) => return Ok(()),
            Some(Ok(false)) => {
                return Err(io::Error::other(
                    "other hosts kept writing the ledger at the same time",
                ));
            }
            Some(Err(e)) => return Err(io::Error::other(e.to_string())),
        }
        let dir = state.subdir(LEDGER_DIR)?.ensure_dir(store_key.as_ref())?;
        state::write_atomic(&dir, &file_name(tenant), body.as_bytes())
    }

    /// The JSON lines of what this run observed, sorted by key.
    fn lines(&self) -> io::Result<String> {
        let mut keys: Vec<_> = self.next.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = String::with_capacity(keys.len() * 80);
        for ((t, i), s) in keys {
            let line = Line {
                t: t.clone(),
                i: i.clone(),
                h: format!("{:016x}", s.hash),
                f: s.first_seen,
                c: s.last_changed,
            };
            out.push_str(&serde_json::to_string(&line).map_err(io::Error::other)?);
            out.push('\n');
        }
        Ok(out)
    }
}

/// The ledger's JSON lines; a line that cannot be read is skipped (that key counts as new).
fn parse(text: &str) -> HashMap<(String, String), Seen> {
    let mut rows = HashMap::new();
    for line in text.lines() {
        let Ok(l) = serde_json::from_str::<Line>(line) else {
            continue;
        };
        let Ok(hash) = u64::from_str_radix(&l.h, 16) else {
            continue;
        };
        rows.insert(
            (l.t, l.i),
            Seen {
                hash,
                first_seen: l.f,
                last_changed: l.c,
            },
        );
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_keys_age_and_changed_ones_start_again() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let mut l = Ledger::load(&state, "s", "t/1");
        assert_eq!(l.observe("sender-key", "g::u::0", 7, 100).last_changed, 100);
        l.observe("pre-key", "5", 9, 100);
        l.save(&state, "s", "t/1").unwrap();

        let mut l = Ledger::load(&state, "s", "t/1");
        let same = l.observe("sender-key", "g::u::0", 7, 500);
        assert_eq!((same.first_seen, same.last_changed), (100, 100));
        let changed = l.observe("pre-key", "5", 10, 500);
        assert_eq!((changed.first_seen, changed.last_changed), (100, 500));
        l.save(&state, "s", "t/1").unwrap();

        // A key not seen in a run is dropped; seen again later it starts from zero.
        let mut l = Ledger::load(&state, "s", "t/1");
        l.save(&state, "s", "t/1").unwrap();
        let mut l2 = Ledger::load(&state, "s", "t/1");
        assert_eq!(l2.observe("pre-key", "5", 10, 900).last_changed, 900);
        let _ = &mut l;
    }

    #[test]
    fn in_the_store_an_unchanged_ledger_is_not_written_and_a_changed_one_once() {
        use crate::core::store::SharedState;
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let shared = crate::core::store::memory_state::MemoryState::new();
        state.share(Box::new(shared.clone()));
        let mut probe: Box<dyn SharedState> = Box::new(shared.clone());
        let version =
            |p: &mut Box<dyn SharedState>| p.read(Space::Ledger, "t").unwrap().unwrap().version;

        let mut l = Ledger::load(&state, "s", "t");
        l.observe("pre-key", "5", 9, 100);
        l.save(&state, "s", "t").unwrap();
        let v1 = version(&mut probe);
        // Seen again unchanged: nothing to write.
        let mut l = Ledger::load(&state, "s", "t");
        assert_eq!(l.observe("pre-key", "5", 9, 500).last_changed, 100);
        l.save(&state, "s", "t").unwrap();
        assert_eq!(version(&mut probe), v1);
        // Changed: written, with the version it read (no lost race).
        let mut l = Ledger::load(&state, "s", "t");
        l.observe("pre-key", "5", 10, 900);
        l.save(&state, "s", "t").unwrap();
        assert_ne!(version(&mut probe), v1);
        assert_eq!(shared.lost_swaps(), 0);
        let mut l = Ledger::load(&state, "s", "t");
        assert_eq!(l.observe("pre-key", "5", 10, 950).last_changed, 900);
        assert!(
            !dir.path().join("state").exists(),
            "nothing in the state directory"
        );
    }

    #[test]
    fn tenant_file_names_cannot_escape() {
        assert_eq!(file_name("company_1"), "company_1.jsonl");
        assert_eq!(file_name("../x"), "%2E.%2Fx.jsonl");
        assert_eq!(file_name("a b"), "a%20b.jsonl");
    }
}
