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

#[derive(Serialize)]
struct Line {
    t: String,
    i: String,
    h: String,
    f: i64,
    c: i64,
}

/// Keys are [`key_into`]'s `<type length>:<type><id>`: one string, so a lookup borrows a reused
/// buffer instead of allocating a `(String, String)` pair per row.
#[derive(Debug)]
pub struct Ledger {
    rows: HashMap<String, Seen>,
    next: HashMap<String, Seen>,
    /// False for dry runs: observations are answered but not kept (nothing is saved).
    recording: bool,
    /// Read from the store's shared state: the document's version and a fingerprint of its
    /// body, so `save` writes in one step, and not at all when nothing changed.
    stored: Option<(u64, u64)>,
    scratch: String,
}

/// `<type length>:<type><id>` into `buf`: unambiguous whatever the type and id contain.
fn key_into(buf: &mut String, key_type: &str, id: &str) {
    use std::fmt::Write;
    buf.clear();
    let _ = write!(buf, "{}:", key_type.len());
    buf.push_str(key_type);
    buf.push_str(id);
}

/// `(type, id)` of a [`key_into`] key.
fn split_key(key: &str) -> (&str, &str) {
    let (len, rest) = key
        .split_once(':')
        .expect("ledger keys carry their type length");
    rest.split_at(len.parse().expect("ledger keys carry their type length"))
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
        Ledger::load_from(state, store_key, tenant, shared)
    }

    /// [`Ledger::load`] from a read of the store already made (`read`: `None` where the state
    /// directory holds everything).
    pub fn load_from(
        state: &StateDir,
        store_key: &str,
        tenant: &str,
        shared: Option<super::Result<Option<super::shared::Doc>>>,
    ) -> Ledger {
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
            recording: true,
            scratch: String::new(),
        }
    }

    /// For a dry run: [`Ledger::observe`] answers as it would in a real run, but keeps nothing
    /// (a dry run never saves the ledger, so recording would only cost time).
    pub fn answering_only(mut self) -> Ledger {
        self.recording = false;
        self
    }

    /// Records this run's sight of a key and returns what the ledger now knows of it.
    pub fn observe(&mut self, key_type: &str, id: &str, hash: u64, now: i64) -> Seen {
        key_into(&mut self.scratch, key_type, id);
        let seen = match self.rows.get(self.scratch.as_str()) {
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
        if self.recording {
            self.next.insert(self.scratch.clone(), seen);
        }
        seen
    }

    /// What the ledger knew of a key when it was loaded (read only: for `restore`).
    pub fn seen(&self, key_type: &str, id: &str) -> Option<Seen> {
        let mut key = String::new();
        key_into(&mut key, key_type, id);
        self.rows.get(&key).copied()
    }

    /// Forgets a key (it was removed).
    pub fn forget(&mut self, key_type: &str, id: &str) {
        key_into(&mut self.scratch, key_type, id);
        self.next.remove(self.scratch.as_str());
    }

    /// Writes what this run observed (keys no longer there are dropped), atomically: a file in
    /// the state directory, or the tenant's document in the store's shared state. A dry run's
    /// ledger ([`Ledger::answering_only`]) kept nothing: saving it is a no-op, never an empty
    /// ledger that would restart every age.
    pub fn save(&self, state: &StateDir, store_key: &str, tenant: &str) -> io::Result<()> {
        if !self.recording {
            return Ok(());
        }
        let body = self.lines()?;
        let shared = state.with_shared(|sh| -> super::Result<bool> {
            let mut expected = self.stored.map(|(version, _)| version);
            if self
                .stored
                .is_some_and(|(_, was)| was == super::fingerprint(body.as_bytes()))
            {
                return Ok(true); // unchanged since it was read: nothing to write
            }
            // Lazy: a ledger lost on a server crash is the old one, and an old ledger only makes
            // keys younger (or remembers removed ones): what a run killed before this write leaves.
            if sh.swap_lazy(Space::Ledger, tenant, expected, body.as_bytes())? {
                return Ok(true);
            }
            // The tenant's lock is held: this run's view is the truth. A version that moved on
            // meanwhile (a run that ignored the lock) is replaced, as the file would be.
            for _ in 0..10 {
                expected = sh.read(Space::Ledger, tenant)?.map(|d| d.version);
                if sh.swap_lazy(Space::Ledger, tenant, expected, body.as_bytes())? {
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
        // Sorted by type, then id, as before the keys were one string.
        let mut keys: Vec<_> = self.next.iter().map(|(k, s)| (split_key(k), s)).collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::with_capacity(keys.len() * 80);
        for ((t, i), s) in keys {
            let line = Line {
                t: t.to_owned(),
                i: i.to_owned(),
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
/// A [`Line`] as read: its strings borrowed from the text where they hold no escape (a ledger
/// is read for every tenant of every run, dry runs included: three allocations a line were a
/// tenth of a SQLite dry run).
#[derive(Deserialize)]
struct LineIn<'a> {
    #[serde(borrow)]
    t: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    i: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    h: std::borrow::Cow<'a, str>,
    f: i64,
    c: i64,
}

fn parse(text: &str) -> HashMap<String, Seen> {
    let mut rows = HashMap::with_capacity(text.len() / 64);
    for line in text.lines() {
        let Ok(l) = serde_json::from_str::<LineIn>(line) else {
            continue;
        };
        let Ok(hash) = u64::from_str_radix(&l.h, 16) else {
            continue;
        };
        let mut key = String::with_capacity(l.t.len() + l.i.len() + 4);
        key_into(&mut key, &l.t, &l.i);
        rows.insert(
            key,
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
    fn ids_with_escapes_and_any_text_come_back_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let odd = "g\"q\\b\u{1}ü::5511::0\n";
        let mut l = Ledger::load(&state, "s", "t");
        l.observe("sender-key", odd, 7, 100);
        l.observe("pre-key", "5", 9, 100);
        l.save(&state, "s", "t").unwrap();
        let l = Ledger::load(&state, "s", "t");
        assert_eq!(l.seen("sender-key", odd).unwrap().first_seen, 100);
        assert_eq!(l.seen("pre-key", "5").unwrap().hash, 9);
        assert_eq!(l.seen("sender-key", "g"), None);
    }

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
        assert_eq!(shared.lazy_swaps(), 2, "both writes may skip the log flush");
        let mut l = Ledger::load(&state, "s", "t");
        assert_eq!(l.observe("pre-key", "5", 10, 950).last_changed, 900);
        assert!(
            !dir.path().join("state").exists(),
            "nothing in the state directory"
        );
    }

    #[test]
    fn keys_cannot_pass_for_one_another_and_survive_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let mut l = Ledger::load(&state, "s", "t");
        // "ab" + "c" and "a" + "bc" are different keys, even with digits and colons about.
        l.observe("ab", "c", 1, 100);
        assert_eq!(l.observe("a", "bc", 2, 200).first_seen, 200);
        l.observe("1:", "2:x", 3, 300);
        l.observe("creds", "", 4, 400);
        l.save(&state, "s", "t").unwrap();
        let text = std::fs::read_to_string(state.path().join(LEDGER_DIR).join("s").join("t.jsonl"))
            .unwrap();
        let types: Vec<&str> = text.lines().map(|l| l.split('"').nth(3).unwrap()).collect();
        assert_eq!(types, ["1:", "a", "ab", "creds"], "sorted by type: {text}");
        let l = Ledger::load(&state, "s", "t");
        assert_eq!(l.seen("ab", "c").map(|s| s.hash), Some(1));
        assert_eq!(l.seen("a", "bc").map(|s| s.hash), Some(2));
        assert_eq!(l.seen("1:", "2:x").map(|s| s.first_seen), Some(300));
        assert_eq!(l.seen("creds", "").map(|s| s.hash), Some(4));
        assert_eq!(l.seen("a", "b"), None);
    }

    #[test]
    fn a_dry_run_ledger_answers_like_a_real_one_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let mut l = Ledger::load(&state, "s", "t");
        l.observe("pre-key", "5", 9, 100);
        l.save(&state, "s", "t").unwrap();

        let mut real = Ledger::load(&state, "s", "t");
        let mut dry = Ledger::load(&state, "s", "t").answering_only();
        assert!(real.recording && !dry.recording);
        for (hash, now) in [(9, 500), (10, 600), (11, 700)] {
            assert_eq!(
                dry.observe("pre-key", "5", hash, now),
                real.observe("pre-key", "5", hash, now)
            );
        }
        assert_eq!(dry.observe("session", "x", 1, 800).first_seen, 800);
        assert!(dry.next.is_empty());
        assert_eq!(real.next.len(), 1);
        // Saving it changes nothing: the ages on disk stay.
        dry.save(&state, "s", "t").unwrap();
        let again = Ledger::load(&state, "s", "t");
        assert_eq!(
            again.seen("pre-key", "5").map(|s| s.last_changed),
            Some(100)
        );
    }

    #[test]
    fn tenant_file_names_cannot_escape() {
        assert_eq!(file_name("company_1"), "company_1.jsonl");
        assert_eq!(file_name("../x"), "%2E.%2Fx.jsonl");
        assert_eq!(file_name("a b"), "a%20b.jsonl");
    }
}
