//! The pairs that cleanup removes only together, seen from the restore side: putting back one
//! member next to a partner the app wrote again since makes a state Baileys cannot use.
//!
//! - `X.json` and `X.json.bak` (Baileys reads the `.bak` when `X.json` is missing);
//! - `identity-key-A` and `session-A` (the same address);
//! - our own sender key of a group and that group's `sender-key-memory` ("new key, old memory"
//!   stops every recipient from decrypting our group messages).
//!
//! Pure: names in, decisions out; the caller says which names changed in the folder.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::classify::{self, Kind};

/// The members of `universe` that `name` must be restored (or kept) together with.
pub fn partners<'a>(name: &str, universe: &'a BTreeSet<String>, own: &[&str]) -> Vec<&'a str> {
    let mut want: Vec<String> = Vec::new();
    if let Some(base) = name.strip_suffix(".bak").filter(|b| b.ends_with(".json")) {
        want.push(base.to_owned());
    } else if name.ends_with(".json") {
        want.push(format!("{name}.bak"));
    }
    if let Some(address) = name.strip_prefix("identity-key-") {
        want.push(format!("session-{address}"));
    }
    if let Some(address) = name.strip_prefix("session-") {
        want.push(format!("identity-key-{address}"));
    }
    if let Some(sk) = classify::sender_key_name(name)
        && ours(sk.user, own)
    {
        want.push(classify::sender_key_memory_file(sk.group));
    }
    let mut out: Vec<&'a str> = want
        .iter()
        .filter_map(|w| universe.get(w.as_str()).map(String::as_str))
        .collect();
    if classify::classify(name) == Kind::SenderKeyMemory
        && let Some(group) = name
            .strip_prefix("sender-key-memory-")
            .and_then(|g| g.strip_suffix(".json"))
    {
        let prefix = format!("sender-key-{group}--");
        for key in universe.range(prefix.clone()..) {
            if !key.starts_with(&prefix) {
                break;
            }
            if let Some(sk) = classify::sender_key_name(key)
                && sk.group == group
                && ours(sk.user, own)
            {
                out.push(key);
            }
        }
    }
    out.retain(|p| *p != name);
    out
}

/// Our own sender key: its user is one of ours (without our ids, any sender key might be ours).
fn ours(user: &str, own: &[&str]) -> bool {
    own.is_empty() || own.contains(&classify::bare_user(user))
}

/// What a restore does with one file of its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Put back (missing from the folder, or replaced with `--overwrite`).
    Restore,
    /// Already in the folder with the same contents.
    Same,
    /// Not put back, and why.
    Kept(String),
}

/// Marks `Kept` every file to restore whose partner stays different in the folder: a partner
/// that is itself kept, or one the source does not have and that `changed` says the app wrote
/// after the source was made. Repeats until nothing changes, so chains (`X.bak` → `X` → its
/// identity key) are followed.
pub fn keep_pairs(
    fates: &mut BTreeMap<String, Fate>,
    folder: &BTreeSet<String>,
    changed: impl Fn(&str) -> bool,
    own: &[&str],
) {
    let universe: BTreeSet<String> = fates.keys().chain(folder.iter()).cloned().collect();
    loop {
        let mut newly: Vec<(String, String)> = Vec::new();
        for (name, fate) in fates.iter() {
            if *fate != Fate::Restore {
                continue;
            }
            for p in partners(name, &universe, own) {
                let why = match fates.get(p) {
                    Some(Fate::Kept(_)) => "is kept as it is in the folder",
                    None if folder.contains(p) && changed(p) => {
                        "was written again since, and is not in the source"
                    }
                    _ => continue,
                };
                newly.push((
                    name.clone(),
                    format!("kept with its partner {p}, which {why}"),
                ));
                break;
            }
        }
        if newly.is_empty() {
            return;
        }
        for (name, why) in newly {
            fates.insert(name, Fate::Kept(why));
        }
    }
}

/// `--file` names plus every partner the source holds, and which partner came because of which.
pub fn with_partners(
    only: &[String],
    source: &BTreeSet<String>,
    own: &[&str],
) -> (BTreeSet<String>, Vec<(String, String)>) {
    let mut chosen: BTreeSet<String> = only.iter().cloned().collect();
    let mut added = Vec::new();
    let mut todo: Vec<String> = only.to_vec();
    while let Some(name) = todo.pop() {
        for p in partners(&name, source, own) {
            if chosen.insert(p.to_owned()) {
                added.push((p.to_owned(), name.clone()));
                todo.push(p.to_owned());
            }
        }
    }
    (chosen, added)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &[&str] = &["5511999999999", "123456789012345"];
    const OUR_KEY: &str = "sender-key-120363@g.us--123456789012345_1--0.json";
    const THEIR_KEY: &str = "sender-key-120363@g.us--5511888888888--0.json";
    const MEMORY: &str = "sender-key-memory-120363@g.us.json";

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn partners_are_symmetric_and_only_ours() {
        let u = set(&[
            OUR_KEY,
            THEIR_KEY,
            MEMORY,
            "session-1.0.json",
            "identity-key-1.0.json",
            "session-1.0.json.bak",
            "pre-key-5.json",
        ]);
        assert_eq!(partners(MEMORY, &u, OWN), vec![OUR_KEY]);
        assert_eq!(partners(OUR_KEY, &u, OWN), vec![MEMORY]);
        assert!(partners(THEIR_KEY, &u, OWN).is_empty());
        let mut s = partners("session-1.0.json", &u, OWN);
        s.sort();
        assert_eq!(s, vec!["identity-key-1.0.json", "session-1.0.json.bak"]);
        assert_eq!(
            partners("session-1.0.json.bak", &u, OWN),
            vec!["session-1.0.json"]
        );
        assert!(partners("pre-key-5.json", &u, OWN).is_empty());
        // Without our ids every sender key might be ours.
        assert_eq!(partners(MEMORY, &u, &[]).len(), 2);
    }

    #[test]
    fn old_memory_is_not_put_back_next_to_a_new_own_key() {
        let mut f = BTreeMap::from([(MEMORY.to_string(), Fate::Restore)]);
        keep_pairs(&mut f, &set(&[OUR_KEY]), |_| true, OWN);
        assert!(
            matches!(&f[MEMORY], Fate::Kept(why) if why.contains(OUR_KEY)),
            "{f:?}"
        );
        // The key is there but unchanged since the source: the memory may come back.
        let mut f = BTreeMap::from([(MEMORY.to_string(), Fate::Restore)]);
        keep_pairs(&mut f, &set(&[OUR_KEY]), |_| false, OWN);
        assert_eq!(f[MEMORY], Fate::Restore);
    }

    #[test]
    fn a_kept_member_keeps_its_chain() {
        let mut f = BTreeMap::from([
            ("session-1.0.json".to_string(), Fate::Kept("differs".into())),
            ("session-1.0.json.bak".to_string(), Fate::Restore),
            ("identity-key-1.0.json".to_string(), Fate::Restore),
            ("pre-key-1.json".to_string(), Fate::Restore),
        ]);
        keep_pairs(&mut f, &set(&["session-1.0.json"]), |_| false, OWN);
        assert!(matches!(f["session-1.0.json.bak"], Fate::Kept(_)));
        assert!(matches!(f["identity-key-1.0.json"], Fate::Kept(_)));
        assert_eq!(f["pre-key-1.json"], Fate::Restore);
        // Same contents is not a conflict.
        let mut f = BTreeMap::from([
            ("X.json".to_string(), Fate::Same),
            ("X.json.bak".to_string(), Fate::Restore),
        ]);
        keep_pairs(&mut f, &set(&["X.json"]), |_| true, OWN);
        assert_eq!(f["X.json.bak"], Fate::Restore);
    }

    #[test]
    fn file_brings_its_partners_transitively() {
        let src = set(&[
            "session-1.0.json",
            "session-1.0.json.bak",
            "identity-key-1.0.json",
            "pre-key-1.json",
        ]);
        let (chosen, added) = with_partners(&["identity-key-1.0.json".into()], &src, OWN);
        assert_eq!(
            chosen,
            set(&[
                "session-1.0.json",
                "session-1.0.json.bak",
                "identity-key-1.0.json"
            ])
        );
        assert_eq!(added.len(), 2);
    }
}
