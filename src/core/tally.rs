//! The figure every level, trigger and alert is about: a folder's (or tenant's) files less the
//! pre-keys the WhatsApp server may still hand out ("reserved"). Baileys 7 uploads 812 pre-keys
//! at pairing, so the raw count calls every healthy v7 account `danger`; what the spec's
//! thresholds (drawn for v6's pool of 30) are about is growth a cleanup can act on.
//!
//! Reserved is exactly what the default pre-key rule never removes (`core::plan`): ids
//! `>= nextPreKeyId - 812 - margin`, ids `>= firstUnuploadedPreKeyId`, and `nextPreKeyId - 1`.
//! Pre-keys below the window (waste) still count, so a reconnect loop that mints hundreds of
//! keys still raises the level.
//!
//! Without readable counters (no creds.json, a corrupt one, one without `nextPreKeyId`) nothing
//! is reserved: the figure errs towards an alert, never towards hiding growth, and no pre-key
//! is removed without counters anyway (docs/prekeys.md, "Levels").

use std::io;

use crate::core::classify;
use crate::core::creds::{Creds, PreKeyGuard};
use crate::core::folder::{Folder, is_counted};
use crate::core::plan::Entry;
use crate::core::rules::PreKeyRule;

/// Files and the reserved pre-keys among them. `reserved <= files` for a folder; a store's count
/// and scan are two reads, so `counted` saturates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Every counted file (regular, not hidden), creds.json included: what `ls | wc -l` says.
    pub files: usize,
    /// Pre-keys the server may still hand out (or not uploaded yet, or `nextPreKeyId - 1`).
    pub reserved: usize,
}

impl Tally {
    /// What the levels count: the files less the reserved pre-keys.
    pub fn counted(&self) -> usize {
        self.files.saturating_sub(self.reserved)
    }

    /// A count that knows nothing of pre-keys (nothing reserved).
    pub fn plain(files: usize) -> Tally {
        Tally { files, reserved: 0 }
    }
}

/// True for a pre-key id the server may still hand out, or that no rule removes: the same set
/// the default rule keeps (`plan::pre_key_decisions`).
pub fn is_reserved(id: u64, guard: PreKeyGuard, margin: u64) -> bool {
    id >= PreKeyRule::window_floor(guard.next_pre_key_id, margin) || guard.protects(id)
}

/// Reserved pre-keys among `ids`; none without counters.
pub fn reserved(
    ids: impl IntoIterator<Item = u64>,
    guard: Option<PreKeyGuard>,
    margin: u64,
) -> usize {
    match guard {
        Some(g) => ids
            .into_iter()
            .filter(|&id| is_reserved(id, g, margin))
            .count(),
        None => 0,
    }
}

/// Per entry: is it a counted, reserved pre-key? For a cleanup's before and after figures.
pub fn reserved_flags(entries: &[Entry], creds: &Creds, margin: u64) -> Vec<bool> {
    let guard = creds.pre_key_guard();
    entries
        .iter()
        .map(|e| {
            guard.is_some_and(|g| {
                is_counted(&e.name, e.entry_type)
                    && e.name_str()
                        .and_then(classify::pre_key_id)
                        .is_some_and(|id| is_reserved(id, g, margin))
            })
        })
        .collect()
}

/// A folder's tally: one `getdents` pass (names only, no stat) and creds.json. `Err` only when
/// the folder cannot be read; an unreadable creds.json reserves nothing.
pub fn folder(dir: &Folder, margin: u64) -> io::Result<Tally> {
    folder_with(dir, margin, &|| crate::core::creds::read_folder(dir).ok())
}

/// The same with the creds from elsewhere (Evolution's files mode: its database); `creds` is
/// asked only when the folder holds pre-keys. `None` reserves nothing.
pub fn folder_with(
    dir: &Folder,
    margin: u64,
    creds: &dyn Fn() -> Option<Creds>,
) -> io::Result<Tally> {
    let mut files = 0;
    let mut ids = Vec::new();
    dir.for_each_entry(|name, t| {
        if is_counted(name, t) {
            files += 1;
            if let Some(id) = name.to_str().and_then(classify::pre_key_id) {
                ids.push(id);
            }
        }
    })?;
    if ids.is_empty() {
        return Ok(Tally::plain(files));
    }
    let guard = creds().and_then(|c| c.pre_key_guard());
    Ok(Tally {
        files,
        reserved: reserved(ids, guard, margin),
    })
}

/// A pre-key row's id as the number the counters compare it with; `None` for anything but
/// plain digits (such a row is never a reserved pre-key).
pub fn pre_key_number(id: &str) -> Option<u64> {
    id.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| id.parse().ok())
        .flatten()
}

/// A database tenant's tally: the store's own count (creds counted as one, as creds.json is for
/// folders), and the pre-key ids of one scan against its creds' counters.
pub fn store(
    store: &mut dyn crate::core::store::Store,
    tenant: &str,
    margin: u64,
) -> crate::core::store::Result<Tally> {
    let files = store.count(tenant)?;
    let guard = store
        .creds(tenant)?
        .as_deref()
        .map(crate::core::creds::parse)
        .and_then(|c| c.pre_key_guard());
    // Without counters nothing is reserved: the ids would not change the figure.
    let Some(guard) = guard else {
        return Ok(Tally::plain(files));
    };
    let mut ids = Vec::new();
    store.pre_key_ids(tenant, &mut |id| ids.extend(pre_key_number(id)))?;
    Ok(Tally {
        files,
        reserved: reserved(ids, Some(guard), margin),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(next: u64, first: u64) -> PreKeyGuard {
        PreKeyGuard {
            next_pre_key_id: next,
            first_unuploaded_pre_key_id: first,
        }
    }

    #[test]
    fn a_freshly_paired_v7_account_reserves_its_whole_upload() {
        // 812 uploaded, nothing used: all reserved, 0 counted of them.
        let t = Tally {
            files: 822,
            reserved: reserved(1..=812, Some(guard(813, 813)), 100),
        };
        assert_eq!(t.reserved, 812);
        assert_eq!(t.counted(), 10);
    }

    #[test]
    fn waste_below_the_window_still_counts() {
        // Two full batches: the first one's rest is waste (a reconnect loop raises the level).
        let ids = 1..=1624u64;
        let r = reserved(ids, Some(guard(1625, 1625)), 100);
        assert_eq!(r, 812 + 100);
        // A v6 pool of 30: everything is in the window, as before (30 files are never a level).
        assert_eq!(reserved(1..=30, Some(guard(31, 31)), 100), 30);
    }

    #[test]
    fn without_counters_nothing_is_reserved() {
        assert_eq!(reserved(1..=812, None, 100), 0);
        assert_eq!(Tally::plain(5).counted(), 5);
    }

    #[test]
    fn a_store_tenant_reserves_its_window_and_nothing_without_counters() {
        use crate::core::store::memory::MemoryStore;
        let mut s = MemoryStore::new();
        for id in ["1", "2", "900", "x"] {
            s.put("t", "pre-key", id, "{}", None);
        }
        s.put("t", "session", "900", "{}", None);
        // next 1000, margin 0: the window starts at 188, so 900 is reserved, 1 and 2 are not;
        // a session with a pre-key's id and a pre-key with no number are never counted as one.
        s.tenant("t").creds =
            Some(r#"{"nextPreKeyId":1000,"firstUnuploadedPreKeyId":1000}"#.into());
        let t = store(&mut s, "t", 0).unwrap();
        assert_eq!((t.files, t.reserved), (6, 1));
        // Without counters: nothing reserved (the ids are not even read).
        s.tenant("t").creds = Some("{}".into());
        assert_eq!(store(&mut s, "t", 0).unwrap(), Tally::plain(6));
        s.tenant("t").creds = None;
        assert_eq!(store(&mut s, "t", 0).unwrap(), Tally::plain(5));
    }

    #[test]
    fn unuploaded_and_last_minted_ids_are_reserved_whatever_the_margin() {
        // next 5000, first unuploaded 4990: the window floor is 4088 with margin 100.
        let g = guard(5000, 4990);
        assert!(is_reserved(4999, g, 0));
        assert!(is_reserved(4995, g, 0));
        assert!(is_reserved(4188, g, 0));
        assert!(!is_reserved(4187, g, 0));
        // Minted but never uploaded (develop's failed upload): reserved below the window too.
        let g = guard(5000, 100);
        assert!(is_reserved(100, g, 0));
        assert!(!is_reserved(99, g, 0));
    }
}
