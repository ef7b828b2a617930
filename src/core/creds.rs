//! Reading `creds.json`: pairing state, our own ids, and the pre-key counters.
//!
//! Only the few fields the rules need are read; everything else in the file (keys stored as
//! `{"type":"Buffer","data":…}`) is ignored. A creds.json that cannot be trusted is never guessed
//! at: a corrupt one skips the company, a missing counter leaves every pre-key alone.

use serde::Serialize;
use serde_json::Value;

/// creds.json files are a few KiB; anything far larger is not a Baileys creds file.
pub const MAX_CREDS_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredsState {
    /// No creds.json, or no `me`: never paired (or logged out).
    Unpaired,
    /// `me.id` but no `account`: pairing started, not finished.
    Pending,
    /// `me.id` and `account`.
    Paired,
    /// Empty, not JSON, or not shaped like creds: older Baileys would silently start a new identity.
    Corrupt,
}

impl CredsState {
    pub fn as_str(&self) -> &'static str {
        match self {
            CredsState::Unpaired => "unpaired",
            CredsState::Pending => "pending",
            CredsState::Paired => "paired",
            CredsState::Corrupt => "corrupt",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    pub state: Option<CredsState>,
    /// Why the file is corrupt, for the report.
    pub problem: Option<String>,
    pub me_id: Option<String>,
    pub me_lid: Option<String>,
    pub next_pre_key_id: Option<u64>,
    pub first_unuploaded_pre_key_id: Option<u64>,
    /// creds.json was found at all.
    pub present: bool,
}

/// The ids a pre-key may never be removed at (DOMAIN.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreKeyGuard {
    pub next_pre_key_id: u64,
    pub first_unuploaded_pre_key_id: u64,
}

impl PreKeyGuard {
    /// Not uploaded yet, or the last one minted (Baileys re-uploads it when missing).
    pub fn protects(&self, id: u64) -> bool {
        id >= self.first_unuploaded_pre_key_id || Some(id) == self.next_pre_key_id.checked_sub(1)
    }
}

impl Creds {
    pub fn missing() -> Creds {
        Creds {
            state: Some(CredsState::Unpaired),
            ..Creds::default()
        }
    }

    pub fn corrupt(problem: impl Into<String>) -> Creds {
        Creds {
            state: Some(CredsState::Corrupt),
            problem: Some(problem.into()),
            present: true,
            ..Creds::default()
        }
    }

    pub fn state(&self) -> CredsState {
        self.state.clone().unwrap_or(CredsState::Unpaired)
    }

    pub fn is_corrupt(&self) -> bool {
        self.state == Some(CredsState::Corrupt)
    }

    /// Both counters, or nothing: without them no pre-key is safe to remove.
    pub fn pre_key_guard(&self) -> Option<PreKeyGuard> {
        Some(PreKeyGuard {
            next_pre_key_id: self.next_pre_key_id?,
            first_unuploaded_pre_key_id: self.first_unuploaded_pre_key_id?,
        })
    }

    /// Our own users (phone number and LID), the part before `:` / `@`. Empty when unknown.
    pub fn own_users(&self) -> Vec<&str> {
        [self.me_id.as_deref(), self.me_lid.as_deref()]
            .into_iter()
            .flatten()
            .map(jid_user)
            .filter(|u| !u.is_empty())
            .collect()
    }
}

/// Which WhatsApp identity a folder holds (`me.id`, `me.lid`), recorded with every cleanup run
/// and backup so a restore can tell that the company re-paired since.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub me_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub me_lid: Option<String>,
}

impl Identity {
    /// None when creds.json names no identity (missing, unpaired, corrupt).
    pub fn of(creds: &Creds) -> Option<Identity> {
        (creds.me_id.is_some() || creds.me_lid.is_some()).then(|| Identity {
            me_id: creds.me_id.clone(),
            me_lid: creds.me_lid.clone(),
        })
    }

    /// Another identity: an id known on both sides that differs. Unknown fields never count.
    pub fn differs(&self, other: &Identity) -> bool {
        let differ =
            |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a != b);
        differ(&self.me_id, &other.me_id) || differ(&self.me_lid, &other.me_lid)
    }

    pub fn describe(&self) -> String {
        match (&self.me_id, &self.me_lid) {
            (Some(id), Some(lid)) => format!("{id} / {lid}"),
            (Some(id), None) => id.clone(),
            (None, Some(lid)) => lid.clone(),
            (None, None) => "none".into(),
        }
    }
}

/// `5511999999999:12@s.whatsapp.net` → `5511999999999`.
pub fn jid_user(jid: &str) -> &str {
    let end = jid.find([':', '@']).unwrap_or(jid.len());
    &jid[..end]
}

/// Parses creds.json bytes. Never fails: problems become `Corrupt` with a reason.
pub fn parse(bytes: &[u8]) -> Creds {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Creds::corrupt("creds.json is empty");
    }
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return Creds::corrupt(format!("creds.json is not valid JSON ({e})")),
    };
    let Some(obj) = value.as_object() else {
        return Creds::corrupt("creds.json is not a JSON object");
    };
    let mut creds = Creds {
        present: true,
        ..Creds::default()
    };
    match obj.get("me") {
        None | Some(Value::Null) => {}
        Some(Value::Object(me)) => {
            creds.me_id = me.get("id").and_then(Value::as_str).map(str::to_owned);
            creds.me_lid = me.get("lid").and_then(Value::as_str).map(str::to_owned);
        }
        Some(_) => return Creds::corrupt("creds.json has a `me` that is not an object"),
    }
    // A counter of the wrong type is left unknown, which leaves every pre-key alone.
    creds.next_pre_key_id = obj.get("nextPreKeyId").and_then(Value::as_u64);
    creds.first_unuploaded_pre_key_id = obj.get("firstUnuploadedPreKeyId").and_then(Value::as_u64);
    let has_account = matches!(obj.get("account"), Some(v) if !v.is_null());
    creds.state = Some(match (&creds.me_id, has_account) {
        (None, _) => CredsState::Unpaired,
        (Some(_), false) => CredsState::Pending,
        (Some(_), true) => CredsState::Paired,
    });
    creds
}

/// Reads and parses creds.json. `Err` when it exists but cannot be read at all.
///
/// Baileys rewrites creds.json in place on every connect, so a read can land mid-write and see
/// an empty or half-written file. Only a file that stays unparsable over ~300 ms is corrupt.
pub fn read_folder(dir: &crate::core::folder::Folder) -> Result<Creds, String> {
    // Growing waits (315 ms in all): the re-reads cannot fall in step with a writer's period,
    // and a writer slowed down by a loaded machine still gets time to finish.
    const WAITS_MS: [u64; 6] = [5, 10, 20, 40, 80, 160];
    let mut creds = read_folder_once(dir)?;
    for wait in WAITS_MS {
        if !creds.is_corrupt() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(wait));
        creds = read_folder_once(dir)?;
    }
    Ok(creds)
}

fn read_folder_once(dir: &crate::core::folder::Folder) -> Result<Creds, String> {
    match dir.read_file(std::ffi::OsStr::new("creds.json"), MAX_CREDS_BYTES) {
        Ok(bytes) => Ok(parse(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Creds::missing()),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Ok(Creds::corrupt(format!("creds.json is too large ({e})")))
        }
        Err(e) => Err(format!("cannot read creds.json: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAIRED: &str = r#"{"noiseKey":{"private":{"type":"Buffer","data":"AAAA"}},
        "me":{"id":"5511999999999:12@s.whatsapp.net","lid":"123456789012345:12@lid","name":"Shop"},
        "account":{"details":"x"},"nextPreKeyId":813,"firstUnuploadedPreKeyId":813}"#;

    #[test]
    fn paired_creds() {
        let c = parse(PAIRED.as_bytes());
        assert_eq!(c.state(), CredsState::Paired);
        assert_eq!(c.own_users(), vec!["5511999999999", "123456789012345"]);
        assert_eq!(
            c.pre_key_guard(),
            Some(PreKeyGuard {
                next_pre_key_id: 813,
                first_unuploaded_pre_key_id: 813
            })
        );
    }

    /// postgres-baileys 1.5.0 stores Buffers as `{"type":"Buffer","data":[ints]}`.
    #[test]
    fn buffers_as_integer_arrays_read_like_base64_ones() {
        let ints = PAIRED
            .replace(r#""data":"AAAA""#, r#""data":[0,0,0]"#)
            .replace(
                r#""details":"x""#,
                r#""details":{"type":"Buffer","data":[8,1,16,255]}"#,
            );
        let c = parse(ints.as_bytes());
        assert_eq!(c.state(), CredsState::Paired);
        assert_eq!(c.own_users(), vec!["5511999999999", "123456789012345"]);
        assert_eq!(c.pre_key_guard(), parse(PAIRED.as_bytes()).pre_key_guard());
    }

    #[test]
    fn states() {
        assert_eq!(
            parse(br#"{"me":{"id":"1:2@s.whatsapp.net"}}"#).state(),
            CredsState::Pending
        );
        assert_eq!(
            parse(br#"{"nextPreKeyId":1}"#).state(),
            CredsState::Unpaired
        );
        assert_eq!(parse(br#"{"me":null}"#).state(), CredsState::Unpaired);
        assert_eq!(Creds::missing().state(), CredsState::Unpaired);
        assert!(!Creds::missing().present);
    }

    #[test]
    fn corrupt_files() {
        for bytes in [
            &b""[..],
            b"  \n",
            b"{\"me\":",
            b"[1,2]",
            b"null",
            b"\"x\"",
            br#"{"me":5}"#,
        ] {
            let c = parse(bytes);
            assert!(c.is_corrupt(), "{:?}", String::from_utf8_lossy(bytes));
            assert!(c.problem.is_some());
            assert_eq!(c.pre_key_guard(), None);
        }
    }

    #[test]
    fn wrong_counter_types_leave_pre_keys_alone() {
        let c = parse(br#"{"me":{"id":"1@s.whatsapp.net"},"nextPreKeyId":"813","firstUnuploadedPreKeyId":813}"#);
        assert!(!c.is_corrupt());
        assert_eq!(c.pre_key_guard(), None);
        let c = parse(br#"{"nextPreKeyId":-1,"firstUnuploadedPreKeyId":3}"#);
        assert_eq!(c.pre_key_guard(), None);
    }

    #[test]
    fn guard_protects_unuploaded_and_last() {
        let g = PreKeyGuard {
            next_pre_key_id: 100,
            first_unuploaded_pre_key_id: 90,
        };
        assert!(!g.protects(88));
        assert!(g.protects(90));
        assert!(g.protects(95));
        assert!(g.protects(99));
        let g = PreKeyGuard {
            next_pre_key_id: 100,
            first_unuploaded_pre_key_id: 100,
        };
        assert!(!g.protects(98));
        assert!(g.protects(99));
        let g = PreKeyGuard {
            next_pre_key_id: 0,
            first_unuploaded_pre_key_id: 0,
        };
        assert!(g.protects(0));
    }

    #[test]
    fn jid_users() {
        assert_eq!(jid_user("5511999999999:12@s.whatsapp.net"), "5511999999999");
        assert_eq!(jid_user("123@lid"), "123");
        assert_eq!(jid_user("plain"), "plain");
    }

    #[test]
    fn identity_differs_only_on_a_known_changed_id() {
        let a = Identity::of(&parse(
            br#"{"me":{"id":"1:2@s.whatsapp.net","lid":"9:2@lid"}}"#,
        ))
        .unwrap();
        let same = Identity::of(&parse(br#"{"me":{"id":"1:2@s.whatsapp.net"}}"#)).unwrap();
        let repaired = Identity::of(&parse(
            br#"{"me":{"id":"1:5@s.whatsapp.net","lid":"9:5@lid"}}"#,
        ))
        .unwrap();
        let lid_only = Identity {
            me_id: None,
            me_lid: Some("8:1@lid".into()),
        };
        assert!(!a.differs(&same));
        assert!(a.differs(&repaired));
        assert!(a.differs(&lid_only));
        assert!(!same.differs(&lid_only));
        assert_eq!(Identity::of(&Creds::missing()), None);
    }
}
