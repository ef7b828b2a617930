//! Any bytes as creds.json: parsing never panics, and a file without both counters never
//! allows a pre-key to be removed.
#![no_main]
use baileys_janitor::core::creds;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = creds::parse(data);
    if c.is_corrupt() {
        assert!(c.pre_key_guard().is_none());
        assert!(c.problem.is_some());
    }
    if c.next_pre_key_id.is_none() || c.first_unuploaded_pre_key_id.is_none() {
        assert!(c.pre_key_guard().is_none());
    }
    let _ = c.own_users();
});
