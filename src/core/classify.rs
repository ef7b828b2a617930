//! What a file in a Baileys auth folder is, judged by its name alone.
//!
//! `useMultiFileAuthState` writes `creds.json` and one `${type}-${id}.json` per key (after
//! `fixFileName`: `/` → `__`, `:` → `-`). Newer Baileys also leaves `X.json.tmp` (atomic write in
//! progress) and `X.json.bak` (previous value, read back when `X.json` is missing). The longest
//! matching prefix wins, so `sender-key-memory-` is never mistaken for `sender-key-`.

use serde::Serialize;

/// The type of a file, as Baileys' `SignalDataTypeMap` names it, plus our own companions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Creds,
    PreKey,
    Session,
    IdentityKey,
    SenderKey,
    SenderKeyMemory,
    AppStateSyncKey,
    AppStateSyncVersion,
    LidMapping,
    DeviceList,
    Tctoken,
    /// `X.json.bak`: the previous value of `X.json`.
    Bak,
    /// `X.json.tmp`: an atomic write in progress, or its leftover after a crash.
    Temp,
    Unknown,
}

/// Key-file prefixes, longest first where one is a prefix of another.
const PREFIXES: [(&str, Kind); 10] = [
    ("sender-key-memory-", Kind::SenderKeyMemory),
    ("app-state-sync-version-", Kind::AppStateSyncVersion),
    ("app-state-sync-key-", Kind::AppStateSyncKey),
    ("identity-key-", Kind::IdentityKey),
    ("device-list-", Kind::DeviceList),
    ("lid-mapping-", Kind::LidMapping),
    ("sender-key-", Kind::SenderKey),
    ("pre-key-", Kind::PreKey),
    ("session-", Kind::Session),
    ("tctoken-", Kind::Tctoken),
];

pub const ALL_KINDS: [Kind; 14] = [
    Kind::Creds,
    Kind::PreKey,
    Kind::Session,
    Kind::IdentityKey,
    Kind::SenderKey,
    Kind::SenderKeyMemory,
    Kind::AppStateSyncKey,
    Kind::AppStateSyncVersion,
    Kind::LidMapping,
    Kind::DeviceList,
    Kind::Tctoken,
    Kind::Bak,
    Kind::Temp,
    Kind::Unknown,
];

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Creds => "creds",
            Kind::PreKey => "pre-key",
            Kind::Session => "session",
            Kind::IdentityKey => "identity-key",
            Kind::SenderKey => "sender-key",
            Kind::SenderKeyMemory => "sender-key-memory",
            Kind::AppStateSyncKey => "app-state-sync-key",
            Kind::AppStateSyncVersion => "app-state-sync-version",
            Kind::LidMapping => "lid-mapping",
            Kind::DeviceList => "device-list",
            Kind::Tctoken => "tctoken",
            Kind::Bak => "bak",
            Kind::Temp => "temp",
            Kind::Unknown => "unknown",
        }
    }

    /// Types that no rule and no flag ever removes (DOMAIN.md). Unknown files are kept too.
    pub fn is_protected(self) -> bool {
        matches!(
            self,
            Kind::Creds
                | Kind::AppStateSyncKey
                | Kind::AppStateSyncVersion
                | Kind::LidMapping
                | Kind::Tctoken
                | Kind::DeviceList
                | Kind::Unknown
        )
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies a file name. Names that are not UTF-8 are `Unknown` (and so kept).
pub fn classify(name: &str) -> Kind {
    if name == "creds.json" {
        return Kind::Creds;
    }
    if companion_base(name, ".bak").is_some() {
        return Kind::Bak;
    }
    if companion_base(name, ".tmp").is_some() {
        return Kind::Temp;
    }
    key_type(name).map_or(Kind::Unknown, |(kind, _)| kind)
}

/// For `X.json.bak` / `X.json.tmp`: the `X.json` it belongs to.
pub fn base_of(name: &str) -> Option<&str> {
    companion_base(name, ".bak").or_else(|| companion_base(name, ".tmp"))
}

fn companion_base<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    let base = name.strip_suffix(suffix)?;
    (base.ends_with(".json") && base.len() > ".json".len() && !base.starts_with('.'))
        .then_some(base)
}

/// The type of `base` as it would be classified, for companions (`creds.json.bak` → `Creds`).
pub fn base_kind(name: &str) -> Option<Kind> {
    base_of(name).map(classify)
}

/// `(type, id)` of a key file `${type}-${id}.json`; the id is what Baileys passed to `keys.set`
/// after `fixFileName`.
pub fn key_type(name: &str) -> Option<(Kind, &str)> {
    let stem = name.strip_suffix(".json")?;
    PREFIXES.iter().find_map(|&(prefix, kind)| {
        let id = stem.strip_prefix(prefix)?;
        (!id.is_empty()).then_some((kind, id))
    })
}

/// The numeric id of `pre-key-<id>.json`.
pub fn pre_key_id(name: &str) -> Option<u64> {
    match key_type(name)? {
        (Kind::PreKey, id) if id.bytes().all(|b| b.is_ascii_digit()) => id.parse().ok(),
        _ => None,
    }
}

/// A sender key's parts: `sender-key-<group>--<user>--<device>.json` (the `::` of libsignal's
/// `SenderKeyName` became `--`).
#[derive(Debug, PartialEq, Eq)]
pub struct SenderKeyName<'a> {
    pub group: &'a str,
    pub user: &'a str,
    pub device: &'a str,
}

pub fn sender_key_name(name: &str) -> Option<SenderKeyName<'_>> {
    let (Kind::SenderKey, id) = key_type(name)? else {
        return None;
    };
    // Split from the right: group ids never contain `--`, but be strict about the last two parts.
    let (rest, device) = id.rsplit_once("--")?;
    let (group, user) = rest.rsplit_once("--")?;
    (!group.is_empty() && !user.is_empty() && !device.is_empty()).then_some(SenderKeyName {
        group,
        user,
        device,
    })
}

/// The bare user of a signal address user part: `123456789012345_1` (LID domain) → `123456789012345`.
pub fn bare_user(user: &str) -> &str {
    match user.rsplit_once('_') {
        Some((bare, domain))
            if !domain.is_empty() && domain.bytes().all(|b| b.is_ascii_digit()) =>
        {
            bare
        }
        _ => user,
    }
}

/// The name of the sender-key-memory file of a group.
pub fn sender_key_memory_file(group: &str) -> String {
    format!("sender-key-memory-{group}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_baileys_type_is_recognised() {
        let cases = [
            ("creds.json", Kind::Creds),
            ("pre-key-1234.json", Kind::PreKey),
            ("session-5511999999999.0.json", Kind::Session),
            ("session-123456789012345_1.0.json", Kind::Session),
            ("identity-key-123456789012345_1.0.json", Kind::IdentityKey),
            (
                "sender-key-120363025246125888@g.us--123456789012345_1--0.json",
                Kind::SenderKey,
            ),
            (
                "sender-key-memory-120363025246125888@g.us.json",
                Kind::SenderKeyMemory,
            ),
            ("app-state-sync-key-AAAAAOb5.json", Kind::AppStateSyncKey),
            (
                "app-state-sync-version-regular_high.json",
                Kind::AppStateSyncVersion,
            ),
            ("lid-mapping-5511999999999.json", Kind::LidMapping),
            ("lid-mapping-123456789012345_reverse.json", Kind::LidMapping),
            ("device-list-5511999999999.json", Kind::DeviceList),
            ("tctoken-123456789012345@lid.json", Kind::Tctoken),
        ];
        for (name, kind) in cases {
            assert_eq!(classify(name), kind, "{name}");
        }
    }

    #[test]
    fn longest_prefix_wins() {
        assert_eq!(
            classify("sender-key-memory-1@g.us.json"),
            Kind::SenderKeyMemory
        );
        assert_eq!(classify("sender-key-1@g.us--2--0.json"), Kind::SenderKey);
        assert_eq!(
            classify("app-state-sync-version-critical_block.json"),
            Kind::AppStateSyncVersion
        );
        assert_eq!(
            classify("app-state-sync-key-AAAA.json"),
            Kind::AppStateSyncKey
        );
    }

    #[test]
    fn fix_file_name_replacements_stay_in_the_id() {
        // `/` became `__` and `:` became `-` in ids; the type is still read from the prefix.
        assert_eq!(
            classify("app-state-sync-key-AB__CD.json"),
            Kind::AppStateSyncKey
        );
        assert_eq!(classify("session-5511999999999-12.0.json"), Kind::Session);
        assert_eq!(
            key_type("tctoken-1@lid.json"),
            Some((Kind::Tctoken, "1@lid"))
        );
    }

    #[test]
    fn companions_and_their_bases() {
        assert_eq!(classify("session-1.0.json.bak"), Kind::Bak);
        assert_eq!(classify("pre-key-7.json.tmp"), Kind::Temp);
        assert_eq!(classify("creds.json.bak"), Kind::Bak);
        assert_eq!(base_of("session-1.0.json.bak"), Some("session-1.0.json"));
        assert_eq!(base_kind("creds.json.tmp"), Some(Kind::Creds));
        assert_eq!(base_kind("lid-mapping-1.json.bak"), Some(Kind::LidMapping));
        // Not companions: no `.json` before the suffix, or nothing before `.json`.
        assert_eq!(classify("notes.bak"), Kind::Unknown);
        assert_eq!(classify(".json.tmp"), Kind::Unknown);
    }

    #[test]
    fn unknown_names_are_unknown() {
        for name in [
            "contacts.json",
            "session-.json",
            "pre-key-.json",
            "session-1.0.txt",
            "creds.json.old",
            ".cleanup.lock",
            "Creds.json",
            "pre-key-12.json~",
            "",
        ] {
            assert_eq!(classify(name), Kind::Unknown, "{name:?}");
        }
    }

    #[test]
    fn pre_key_ids() {
        assert_eq!(pre_key_id("pre-key-1234.json"), Some(1234));
        assert_eq!(pre_key_id("pre-key-0.json"), Some(0));
        assert_eq!(pre_key_id("pre-key-abc.json"), None);
        assert_eq!(pre_key_id("pre-key--5.json"), None);
        assert_eq!(pre_key_id("pre-key-99999999999999999999999.json"), None);
        assert_eq!(pre_key_id("session-12.json"), None);
    }

    #[test]
    fn sender_key_parts() {
        let parsed = sender_key_name("sender-key-120363@g.us--123456789012345_1--0.json").unwrap();
        assert_eq!(
            parsed,
            SenderKeyName {
                group: "120363@g.us",
                user: "123456789012345_1",
                device: "0"
            }
        );
        assert_eq!(bare_user(parsed.user), "123456789012345");
        assert_eq!(bare_user("5511999999999"), "5511999999999");
        assert_eq!(sender_key_name("sender-key-garbage.json"), None);
        assert_eq!(sender_key_name("sender-key-memory-1@g.us.json"), None);
        assert_eq!(
            sender_key_memory_file("120363@g.us"),
            "sender-key-memory-120363@g.us.json"
        );
    }

    #[test]
    fn protected_types() {
        let protected = [
            Kind::Creds,
            Kind::AppStateSyncKey,
            Kind::AppStateSyncVersion,
            Kind::LidMapping,
            Kind::Tctoken,
            Kind::DeviceList,
            Kind::Unknown,
        ];
        let removable = [
            Kind::PreKey,
            Kind::Session,
            Kind::IdentityKey,
            Kind::SenderKey,
            Kind::SenderKeyMemory,
            Kind::Bak,
            Kind::Temp,
        ];
        assert_eq!(protected.len() + removable.len(), ALL_KINDS.len());
        assert!(protected.iter().all(|k| k.is_protected()));
        assert!(removable.iter().all(|k| !k.is_protected()));
    }
}
