//! Any file name: classification, id parsing and companion lookup never panic, and agree.
#![no_main]
use baileys_janitor::core::classify::{self, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else { return };
    let kind = classify::classify(name);
    if let Some(id) = classify::pre_key_id(name) {
        assert_eq!(kind, Kind::PreKey, "{name:?} has pre-key id {id}");
    }
    if let Some(sk) = classify::sender_key_name(name) {
        assert_eq!(kind, Kind::SenderKey);
        let _ = classify::bare_user(sk.user);
    }
    if matches!(kind, Kind::Bak | Kind::Temp) {
        assert!(classify::base_of(name).is_some());
    }
    if name == "creds.json" {
        assert!(kind.is_protected());
    }
});
