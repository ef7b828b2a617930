//! The planner: entries + creds + rules + now → keep or remove, and why, for every file.
//!
//! A pure function: no file-system access, no clock. `--dry-run` prints the plan, a real run
//! executes the same plan, so the two cannot drift apart.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::core::classify::{self, Kind};
use crate::core::creds::Creds;
use crate::core::folder::{EntryType, Meta};
use crate::core::rules::{PreKeyRule, Rules};
use crate::core::util::fmt_duration;

/// An account silent for less than this is "active now" in `--verbose`'s words.
const QUIET_SHOWN: Duration = Duration::from_secs(3600);

/// How far past `now` a write may lie and still count as the account's activity: the app writes
/// while we scan. A later one is clock skew (a file copied from a host whose clock was ahead, a
/// `touch`): no evidence that the account is active, so it is left out of the last activity.
/// Leaving it out can only make the activity clock earlier, and so keep more.
pub const FUTURE_WRITE_TOLERANCE: Duration = Duration::from_secs(300);

/// What the planner knows of an entry's age and size, whatever holds it: a file's stat, or a
/// store row's clock and value length. How to re-check the entry before removing it (a file's
/// dev/ino) stays with whoever removes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub entry_type: EntryType,
    pub size: u64,
    /// A file's mtime; a row's clock (its `updated_at`, last use, or ledger).
    pub mtime: SystemTime,
    pub nlink: u64,
}

impl Stat {
    /// A store row: one regular "file" of `size` bytes, as old as its clock says.
    pub fn row(size: u64, clock: SystemTime) -> Stat {
        Stat {
            entry_type: EntryType::File,
            size,
            mtime: clock,
            nlink: 1,
        }
    }
}

impl From<Meta> for Stat {
    fn from(m: Meta) -> Stat {
        Stat {
            entry_type: m.entry_type,
            size: m.size,
            mtime: m.mtime,
            nlink: m.nlink,
        }
    }
}

/// A file of a company folder, or a store row, as the planner sees it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: OsString,
    pub entry_type: EntryType,
    pub kind: Kind,
    /// Filled in only where a rule needs the age (see [`wants_meta`]).
    pub stat: Option<Stat>,
    /// Restored by `restore`: not removed before this time.
    pub held_until: Option<SystemTime>,
}

impl Entry {
    pub fn new(name: impl Into<OsString>, entry_type: EntryType) -> Entry {
        let name = name.into();
        let kind = name.to_str().map_or(Kind::Unknown, classify::classify);
        Entry {
            name,
            entry_type,
            kind,
            stat: None,
            held_until: None,
        }
    }

    pub fn name_str(&self) -> Option<&str> {
        self.name.to_str()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Keep,
    Remove,
}

/// Why a file is kept or removed. Shown by `--verbose` and in `--json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Protected(Kind),
    Unknown,
    NotRegular(EntryType),
    NoMeta,
    HardLinked(u64),
    Fresh {
        age: Duration,
        min: Duration,
    },
    /// `age`: how long it was idle before the account's last activity (its own age when the
    /// account is active now); `quiet`: how long the account has been silent.
    Young {
        age: Duration,
        max: Duration,
        quiet: Duration,
    },
    Old {
        age: Duration,
        max: Duration,
        quiet: Duration,
    },
    PreKeyNewest {
        keep: usize,
    },
    PreKeyBeyondNewest {
        keep: usize,
    },
    /// The server may still hand it out: `id >= floor` (`nextPreKeyId - 812 - margin`).
    PreKeyInServerWindow {
        floor: u64,
    },
    /// Below every id the server may still hand out (docs/prekeys.md).
    PreKeyBelowServerWindow {
        floor: u64,
    },
    PreKeyNotUploaded,
    PreKeyLastMinted,
    PreKeyNoCounters,
    PreKeyBadId,
    IdentityWithSession,
    IdentitySessionStays,
    OwnSenderKeyWithMemory,
    OwnSenderKeyMemoryStays,
    BackupWithBase,
    BackupOfKept,
    OrphanBackup,
    BackupStays,
    TempStale {
        age: Duration,
        max: Duration,
    },
    TempOfProtected,
    /// Put back by `restore`; kept until the hold ends.
    OnHold {
        left: Duration,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: &Duration| fmt_duration(*d);
        match self {
            Reason::Protected(kind) => write!(f, "{kind} files are never removed"),
            Reason::Unknown => f.write_str("not a Baileys key file: kept"),
            Reason::NotRegular(t) => write!(f, "{}: only regular files are removed", t.as_str()),
            Reason::NoMeta => f.write_str("could not stat it: kept"),
            Reason::HardLinked(n) => write!(f, "has {n} hard links: kept"),
            Reason::Fresh { age, min } => write!(f, "changed {} ago < {}: in use", d(age), d(min)),
            // Idle time is always measured to the account's last activity; its silence is
            // worth a mention only once it is longer than a moment between two writes.
            Reason::Young { age, max, quiet } if *quiet < QUIET_SHOWN => {
                write!(f, "{} old <= {}", d(age), d(max))
            }
            Reason::Old { age, max, quiet } if *quiet < QUIET_SHOWN => {
                write!(f, "{} old > {}", d(age), d(max))
            }
            Reason::Young { age, max, quiet } => write!(
                f,
                "{} idle <= {} (before the account went quiet {} ago)",
                d(age),
                d(max),
                d(quiet)
            ),
            Reason::Old { age, max, quiet } => write!(
                f,
                "{} idle > {} (before the account went quiet {} ago)",
                d(age),
                d(max),
                d(quiet)
            ),
            Reason::PreKeyNewest { keep } => write!(f, "among the newest {keep} pre-keys"),
            Reason::PreKeyBeyondNewest { keep } => {
                write!(f, "older than the newest {keep} pre-keys")
            }
            Reason::PreKeyInServerWindow { floor } => write!(
                f,
                "id >= {floor} (nextPreKeyId - 812 - margin): the server may still hand it out"
            ),
            Reason::PreKeyBelowServerWindow { floor } => write!(
                f,
                "id < {floor} (nextPreKeyId - 812 - margin): the server can no longer hand it out"
            ),
            Reason::PreKeyNotUploaded => {
                f.write_str("id >= firstUnuploadedPreKeyId: not uploaded yet")
            }
            Reason::PreKeyLastMinted => {
                f.write_str("id = nextPreKeyId - 1: Baileys re-uploads it if missing")
            }
            Reason::PreKeyNoCounters => {
                f.write_str("creds.json has no pre-key counters: pre-keys left alone")
            }
            Reason::PreKeyBadId => f.write_str("pre-key id is not a number"),
            Reason::IdentityWithSession => f.write_str("goes with the session of the same address"),
            Reason::IdentitySessionStays => f.write_str("the session of the same address stays"),
            Reason::OwnSenderKeyWithMemory => {
                f.write_str("our own sender key, goes with the group's sender-key-memory")
            }
            Reason::OwnSenderKeyMemoryStays => {
                f.write_str("our own sender key: the group's sender-key-memory stays")
            }
            Reason::BackupWithBase => f.write_str("previous value of a file that goes"),
            Reason::BackupOfKept => f.write_str("previous value of a file that stays"),
            Reason::OrphanBackup => {
                f.write_str("its file is missing, so Baileys reads this backup as the value")
            }
            Reason::BackupStays => f.write_str("its .bak cannot go, and would bring it back"),
            Reason::TempStale { age, max } => {
                write!(f, "leftover temp file, {} old > {}", d(age), d(max))
            }
            Reason::TempOfProtected => {
                f.write_str("temp file of a protected file: kept for recovery")
            }
            Reason::OnHold { left } => write!(
                f,
                "restored: on hold for {} more (restore --release ends it)",
                d(left)
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub reason: Reason,
    /// Entries whose removal must succeed first (a `.bak`, a session, a sender-key-memory).
    pub requires: Vec<usize>,
}

impl Decision {
    fn keep(reason: Reason) -> Decision {
        Decision {
            action: Action::Keep,
            reason,
            requires: Vec::new(),
        }
    }
    fn remove(reason: Reason) -> Decision {
        Decision {
            action: Action::Remove,
            reason,
            requires: Vec::new(),
        }
    }
    pub fn removes(&self) -> bool {
        self.action == Action::Remove
    }
}

/// Where a kind stands in the removal order: a requirement (a `.bak`; a session, a
/// sender-key-memory) always ranks below what needs it gone (a file; an identity key, our own
/// sender key), so it is settled before the entry that needs it is tried.
pub fn requirement_rank(kind: Kind) -> u8 {
    match kind {
        Kind::Bak => 0,
        Kind::IdentityKey | Kind::SenderKey => 2,
        _ => 1,
    }
}

/// One decision per entry, in the entries' order.
#[derive(Clone, Debug)]
pub struct Plan {
    pub decisions: Vec<Decision>,
}

impl Plan {
    /// Indices of the entries to remove, in an order where every requirement comes first:
    /// backups, then sessions / sender-key-memories / pre-keys / temp files, then identity keys
    /// and our own sender keys.
    pub fn removal_order(&self, entries: &[Entry]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..entries.len())
            .filter(|&i| self.decisions[i].removes())
            .collect();
        order.sort_by_key(|&i| requirement_rank(entries[i].kind));
        order
    }

    #[cfg(test)]
    pub fn removal_count(&self) -> usize {
        self.decisions.iter().filter(|d| d.removes()).count()
    }
}

/// Pre-keys decided by the rule: kept by the server window or among the newest N, protected by
/// the counters, or candidates for removal. Shared by [`wants_meta`] and [`plan`] so they agree.
fn pre_key_decisions(entries: &[Entry], creds: &Creds, rules: &Rules) -> HashMap<usize, Decision> {
    let mut out = HashMap::new();
    let mut ids: Vec<(u64, usize)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.kind != Kind::PreKey || e.entry_type != EntryType::File {
            continue;
        }
        match e.name_str().and_then(classify::pre_key_id) {
            Some(id) => ids.push((id, i)),
            None => {
                out.insert(i, Decision::keep(Reason::PreKeyBadId));
            }
        }
    }
    let Some(guard) = creds.pre_key_guard() else {
        for (_, i) in ids {
            out.insert(i, Decision::keep(Reason::PreKeyNoCounters));
        }
        return out;
    };
    ids.sort_unstable_by(|a, b| b.cmp(a));
    for (rank, (id, i)) in ids.into_iter().enumerate() {
        let by_rule = match rules.pre_keys {
            PreKeyRule::ServerWindow => {
                let floor = PreKeyRule::window_floor(guard.next_pre_key_id, rules.pre_key_margin);
                if id >= floor {
                    Err(Reason::PreKeyInServerWindow { floor })
                } else {
                    Ok(Reason::PreKeyBelowServerWindow { floor })
                }
            }
            PreKeyRule::KeepNewest(keep) if rank < keep => Err(Reason::PreKeyNewest { keep }),
            PreKeyRule::KeepNewest(keep) => Ok(Reason::PreKeyBeyondNewest { keep }),
        };
        let d = match by_rule {
            Err(kept) => Decision::keep(kept),
            Ok(_) if id >= guard.first_unuploaded_pre_key_id => {
                Decision::keep(Reason::PreKeyNotUploaded)
            }
            Ok(_) if guard.protects(id) => Decision::keep(Reason::PreKeyLastMinted),
            Ok(gone) => Decision::remove(gone),
        };
        out.insert(i, d);
    }
    out
}

/// Which entries need a `stat` before planning: only those a rule could remove.
/// Everything else is decided from the name and the directory entry alone.
pub fn wants_meta(entries: &[Entry], creds: &Creds, rules: &Rules) -> Vec<bool> {
    let pre_keys = pre_key_decisions(entries, creds, rules);
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            e.entry_type == EntryType::File
                && match e.kind {
                    Kind::Session | Kind::IdentityKey | Kind::SenderKey | Kind::SenderKeyMemory => {
                        true
                    }
                    Kind::PreKey => pre_keys.get(&i).is_some_and(Decision::removes),
                    // Its mtime is when the account last connected: part of its last activity.
                    Kind::Creds => true,
                    Kind::Bak | Kind::Temp => e
                        .name_str()
                        .and_then(classify::base_kind)
                        .is_some_and(|k| !k.is_protected()),
                    _ => false,
                }
        })
        .collect()
}

/// The age-independent checks every removal passes: a regular file, stat'ed, one link, not fresh.
fn removable(e: &Entry, rules: &Rules, now: SystemTime) -> Result<Duration, Reason> {
    let Some(meta) = e.stat else {
        return Err(Reason::NoMeta);
    };
    if meta.entry_type != EntryType::File {
        return Err(Reason::NotRegular(meta.entry_type));
    }
    if meta.nlink > 1 {
        return Err(Reason::HardLinked(meta.nlink));
    }
    let age = now.duration_since(meta.mtime).unwrap_or(Duration::ZERO);
    if age < rules.min_age {
        return Err(Reason::Fresh {
            age,
            min: rules.min_age,
        });
    }
    Ok(age)
}

/// The account's last activity: the newest mtime among the entries that carry one (creds.json,
/// and every file a rule could remove; on a store every row's clock). A lower bound of the newest
/// write in the folder, so idleness measured from it can only come out shorter: it keeps more.
/// Writes from the future (beyond [`FUTURE_WRITE_TOLERANCE`]) are clock skew, not activity: one
/// such file must not make an account that was offline for weeks look active now and lose every
/// session at once. (The skewed file itself is young by any clock, so it is kept.)
pub fn last_activity(entries: &[Entry], now: SystemTime) -> Option<SystemTime> {
    entries
        .iter()
        .filter_map(|e| e.stat.map(|m| m.mtime))
        .filter(|t| !from_the_future(*t, now))
        .max()
}

/// A clock reading later than `now` by more than the tolerance: skew, not activity.
pub fn from_the_future(t: SystemTime, now: SystemTime) -> bool {
    t > now + FUTURE_WRITE_TOLERANCE
}

/// The clock idleness is measured against: the account's last activity, never later than now.
/// An account that is online writes keys all the time, so for it this is now; one that was
/// offline for three weeks keeps the sessions it used in the limit before it went quiet.
pub fn activity_clock(entries: &[Entry], now: SystemTime) -> SystemTime {
    last_activity(entries, now).map_or(now, |a| a.min(now))
}

/// Age-limited files: fresh (changed in the last minutes, by the wall clock) stays; otherwise
/// idleness until the account's last activity (`clock`) against `max`.
fn by_age(e: &Entry, rules: &Rules, now: SystemTime, clock: SystemTime, max: Duration) -> Decision {
    if let Err(r) = removable(e, rules, now) {
        return Decision::keep(r);
    }
    let mtime = e.stat.map_or(now, |m| m.mtime);
    let age = clock.duration_since(mtime).unwrap_or(Duration::ZERO);
    let quiet = now.duration_since(clock).unwrap_or(Duration::ZERO);
    if age > max {
        Decision::remove(Reason::Old { age, max, quiet })
    } else {
        Decision::keep(Reason::Young { age, max, quiet })
    }
}

/// Plans one company folder. `entries` carry `meta` where [`wants_meta`] asked for it.
pub fn plan(entries: &[Entry], creds: &Creds, rules: &Rules, now: SystemTime) -> Plan {
    plan_with_activity(entries, creds, rules, now, None)
}

/// [`plan`], with a write the entries do not show counted as the account's activity too (a
/// store's creds row, which is no entry: its last change in the ledger).
pub fn plan_with_activity(
    entries: &[Entry],
    creds: &Creds,
    rules: &Rules,
    now: SystemTime,
    activity: Option<SystemTime>,
) -> Plan {
    let index: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((e.name_str()?, i)))
        .collect();
    let mut pre_keys = pre_key_decisions(entries, creds, rules);
    let own_users = creds.own_users();
    let activity = activity.filter(|a| !from_the_future(*a, now));
    let clock = activity_clock(entries, now).max(activity.map_or(UNIX_EPOCH, |a| a.min(now)));
    let mut d: Vec<Option<Decision>> = vec![None; entries.len()];

    // Pass 1: every file on its own.
    for (i, e) in entries.iter().enumerate() {
        let decision = if e.entry_type != EntryType::File {
            Decision::keep(Reason::NotRegular(e.entry_type))
        } else if e.kind == Kind::Unknown {
            Decision::keep(Reason::Unknown)
        } else if e.kind.is_protected() {
            Decision::keep(Reason::Protected(e.kind))
        } else if let Some(left) = e
            .held_until
            .and_then(|until| until.duration_since(now).ok())
            .filter(|left| !left.is_zero())
        {
            Decision::keep(Reason::OnHold { left })
        } else {
            match e.kind {
                Kind::Session => by_age(e, rules, now, clock, rules.session_max_age),
                Kind::SenderKeyMemory | Kind::SenderKey => {
                    by_age(e, rules, now, clock, rules.sender_key_max_age)
                }
                // Decided with its session in pass 3; its own age only has to pass `removable`.
                Kind::IdentityKey => match removable(e, rules, now) {
                    Err(r) => Decision::keep(r),
                    Ok(_) => Decision::remove(Reason::IdentityWithSession),
                },
                Kind::PreKey => match pre_keys.remove(&i) {
                    Some(pk) if pk.removes() => match removable(e, rules, now) {
                        Err(r) => Decision::keep(r),
                        Ok(_) => pk,
                    },
                    Some(pk) => pk,
                    None => Decision::keep(Reason::PreKeyBadId),
                },
                Kind::Temp => {
                    if e.name_str()
                        .and_then(classify::base_kind)
                        .is_none_or(Kind::is_protected)
                    {
                        Decision::keep(Reason::TempOfProtected)
                    } else {
                        match removable(e, rules, now) {
                            Err(r) => Decision::keep(r),
                            Ok(age) if age > rules.tmp_max_age => {
                                Decision::remove(Reason::TempStale {
                                    age,
                                    max: rules.tmp_max_age,
                                })
                            }
                            Ok(age) => Decision::keep(Reason::Young {
                                age,
                                max: rules.tmp_max_age,
                                quiet: Duration::ZERO,
                            }),
                        }
                    }
                }
                // Decided with its base file; here only whether it could go at all.
                Kind::Bak => match removable(e, rules, now) {
                    Err(r) => Decision::keep(r),
                    Ok(_) => Decision::remove(Reason::BackupWithBase),
                },
                _ => Decision::keep(Reason::Protected(e.kind)),
            }
        };
        d[i] = Some(decision);
    }
    let mut d: Vec<Decision> = d
        .into_iter()
        .map(|x| x.expect("every entry decided"))
        .collect();

    let bak_of = |i: usize| -> Option<usize> {
        let name = entries[i].name_str()?;
        index.get(format!("{name}.bak").as_str()).copied()
    };
    // A file goes only with its `.bak` (else Baileys reads the old value back); the `.bak` goes
    // first. A `.bak` goes only with its file.
    let couple = |d: &mut Vec<Decision>, i: usize| {
        let Some(b) = bak_of(i) else { return };
        if d[i].removes() {
            if d[b].removes() {
                d[i].requires.push(b);
            } else {
                d[i] = Decision::keep(Reason::BackupStays);
            }
        }
    };

    // Pass 2: sessions, memories, pre-keys and their backups.
    for (i, e) in entries.iter().enumerate() {
        if matches!(e.kind, Kind::Session | Kind::SenderKeyMemory | Kind::PreKey) {
            couple(&mut d, i);
        }
    }

    // Pass 3: identity keys follow their session; our own sender keys follow the group's memory.
    for (i, e) in entries.iter().enumerate() {
        if !d[i].removes() {
            continue;
        }
        let Some(name) = e.name_str() else { continue };
        match e.kind {
            Kind::IdentityKey => {
                let address = name.strip_prefix("identity-key-").unwrap_or_default();
                match index.get(format!("session-{address}").as_str()) {
                    Some(&s) if d[s].removes() => d[i].requires.push(s),
                    _ => d[i] = Decision::keep(Reason::IdentitySessionStays),
                }
            }
            Kind::SenderKey => {
                let Some(parsed) = classify::sender_key_name(name) else {
                    continue;
                };
                let user = classify::bare_user(parsed.user);
                // Without our own ids every sender key might be ours.
                let ours = own_users.is_empty() || own_users.contains(&user);
                if !ours {
                    continue;
                }
                let memory = classify::sender_key_memory_file(parsed.group);
                let memory_idx = index.get(memory.as_str()).copied();
                let memory_bak = index.get(format!("{memory}.bak").as_str()).copied();
                match (memory_idx, memory_bak) {
                    (None, None) => d[i].reason = Reason::OwnSenderKeyWithMemory,
                    (Some(m), _) if d[m].removes() => {
                        d[i].reason = Reason::OwnSenderKeyWithMemory;
                        d[i].requires.push(m);
                    }
                    _ => d[i] = Decision::keep(Reason::OwnSenderKeyMemoryStays),
                }
            }
            _ => {}
        }
    }

    // Pass 4: couple identity keys, sender keys and temp files with their backups.
    for (i, e) in entries.iter().enumerate() {
        if matches!(e.kind, Kind::IdentityKey | Kind::SenderKey) {
            couple(&mut d, i);
        }
    }

    // Pass 5: a backup goes only if its file goes.
    for (i, e) in entries.iter().enumerate() {
        if e.kind != Kind::Bak || !d[i].removes() {
            continue;
        }
        let base = e
            .name_str()
            .and_then(classify::base_of)
            .and_then(|b| index.get(b));
        match base {
            None => d[i] = Decision::keep(Reason::OrphanBackup),
            Some(&b) if d[b].removes() => {}
            Some(_) => d[i] = Decision::keep(Reason::BackupOfKept),
        }
    }
    // Backups decided keep for their own reasons (fresh, protected base) must still say so.
    for (i, e) in entries.iter().enumerate() {
        if e.kind == Kind::Bak
            && !d[i].removes()
            && e.name_str()
                .and_then(classify::base_kind)
                .is_some_and(Kind::is_protected)
        {
            d[i] = Decision::keep(Reason::Protected(
                classify::base_kind(e.name_str().unwrap()).unwrap(),
            ));
        }
    }

    Plan { decisions: d }
}

#[cfg(test)]
mod tests;
