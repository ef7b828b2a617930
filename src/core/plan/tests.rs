use super::*;
use crate::core::creds;
use std::time::UNIX_EPOCH;

const NOW_SECS: u64 = 1_800_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

fn days(n: f64) -> Duration {
    Duration::from_secs_f64(n * 86_400.0)
}

fn mins(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

/// A folder of regular files, each `age` old, every one stat'ed.
fn entries(files: &[(&str, Duration)]) -> Vec<Entry> {
    files
        .iter()
        .map(|(name, age)| {
            let mut e = Entry::new(*name, EntryType::File);
            e.stat = Some(Stat {
                entry_type: EntryType::File,
                size: 100,
                mtime: now() - *age,
                nlink: 1,
            });
            e
        })
        .collect()
}

fn paired(next: u64, first_unuploaded: u64) -> Creds {
    creds::parse(
        format!(
            r#"{{"me":{{"id":"5511999999999:3@s.whatsapp.net","lid":"123456789012345:3@lid"}},
               "account":{{}},"nextPreKeyId":{next},"firstUnuploadedPreKeyId":{first_unuploaded}}}"#
        )
        .as_bytes(),
    )
}

/// Plans `files` for an account active now: a creds.json written just now is added unless
/// `files` has one (idleness is measured against the account's last activity).
fn run(files: &[(&str, Duration)], creds: &Creds, rules: &Rules) -> (Vec<Entry>, Plan) {
    let mut files = files.to_vec();
    if !files.iter().any(|(n, _)| *n == "creds.json") {
        files.push(("creds.json", Duration::ZERO));
    }
    let e = entries(&files);
    let p = plan(&e, creds, rules, now());
    (e, p)
}

fn removed(files: &[(&str, Duration)], creds: &Creds, rules: &Rules) -> Vec<String> {
    let (e, p) = run(files, creds, rules);
    let mut out: Vec<String> = p
        .removal_order(&e)
        .into_iter()
        .map(|i| e[i].name_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

fn decision<'a>(e: &[Entry], p: &'a Plan, name: &str) -> &'a Decision {
    let i = e.iter().position(|x| x.name_str() == Some(name)).unwrap();
    &p.decisions[i]
}

const N: Rules = Rules::NORMAL;
/// The spec's rule, `pre_keys.keep = 50`.
const K50: Rules = Rules {
    pre_keys: PreKeyRule::KeepNewest(50),
    ..Rules::NORMAL
};

#[test]
fn session_age_boundary_13d_14d_15d() {
    let c = paired(100, 100);
    let files = [
        ("session-1.0.json", days(13.0)),
        ("session-2.0.json", days(14.0)),
        ("session-3.0.json", days(15.0)),
    ];
    assert_eq!(removed(&files, &c, &N), vec!["session-3.0.json"]);
    let (e, p) = run(&files, &c, &N);
    assert_eq!(
        decision(&e, &p, "session-3.0.json").reason.to_string(),
        "15d old > 14d"
    );
    assert_eq!(
        decision(&e, &p, "session-1.0.json").reason.to_string(),
        "13d old <= 14d"
    );
}

#[test]
fn sender_key_age_boundary() {
    let c = paired(100, 100);
    let files = [
        ("sender-key-1@g.us--999_1--0.json", days(2.9)),
        ("sender-key-2@g.us--999_1--0.json", days(3.1)),
        ("sender-key-memory-3@g.us.json", days(3.1)),
        ("sender-key-memory-4@g.us.json", days(2.0)),
    ];
    assert_eq!(
        removed(&files, &c, &N),
        vec![
            "sender-key-2@g.us--999_1--0.json",
            "sender-key-memory-3@g.us.json"
        ]
    );
}

#[test]
fn emergency_rules_are_stricter() {
    let c = paired(100, 100);
    let files = [
        ("session-1.0.json", days(8.0)),
        ("sender-key-memory-1@g.us.json", days(1.5)),
    ];
    assert!(removed(&files, &c, &N).is_empty());
    assert_eq!(removed(&files, &c, &Rules::EMERGENCY).len(), 2);
}

fn pre_keys(ids: impl IntoIterator<Item = u64>) -> Vec<(String, Duration)> {
    ids.into_iter()
        .map(|i| (format!("pre-key-{i}.json"), days(30.0)))
        .collect()
}

fn as_refs(v: &[(String, Duration)]) -> Vec<(&str, Duration)> {
    v.iter().map(|(n, d)| (n.as_str(), *d)).collect()
}

#[test]
fn exactly_fifty_pre_keys_are_all_kept() {
    let files = pre_keys(1..=50);
    assert!(removed(&as_refs(&files), &paired(51, 51), &K50).is_empty());
}

#[test]
fn fifty_one_pre_keys_lose_the_lowest_id() {
    let files = pre_keys(1..=51);
    assert_eq!(
        removed(&as_refs(&files), &paired(52, 52), &K50),
        vec!["pre-key-1.json"]
    );
}

#[test]
fn newest_by_id_not_by_name_order() {
    // Lexical order would call 9 newer than 10; the rule is numeric.
    let files = pre_keys([9, 10, 100, 2]);
    let rules = Rules {
        pre_keys: PreKeyRule::KeepNewest(2),
        ..N
    };
    assert_eq!(
        removed(&as_refs(&files), &paired(101, 101), &rules),
        vec!["pre-key-2.json", "pre-key-9.json"]
    );
}

#[test]
fn unuploaded_and_last_minted_pre_keys_survive_any_limit() {
    // ids 1..=20, first unuploaded 15, next 21: 15..=20 not uploaded, 20 is next-1 too.
    let files = pre_keys(1..=20);
    let rules = Rules {
        pre_keys: PreKeyRule::KeepNewest(0),
        ..N
    };
    let got = removed(&as_refs(&files), &paired(21, 15), &rules);
    let want: Vec<String> = {
        let mut v: Vec<String> = (1..15).map(|i| format!("pre-key-{i}.json")).collect();
        v.sort();
        v
    };
    assert_eq!(got, want);
    let (e, p) = run(&as_refs(&files), &paired(21, 15), &rules);
    assert_eq!(
        decision(&e, &p, "pre-key-15.json").reason,
        Reason::PreKeyNotUploaded
    );
    // next - 1 protected even when it is below first unuploaded (uploaded, then counters moved).
    let (e, p) = run(&as_refs(&files), &paired(10, 30), &rules);
    assert_eq!(
        decision(&e, &p, "pre-key-9.json").reason,
        Reason::PreKeyLastMinted
    );
    assert!(!decision(&e, &p, "pre-key-9.json").removes());
    assert!(decision(&e, &p, "pre-key-8.json").removes());
}

#[test]
fn no_counters_no_pre_key_removal() {
    let files = pre_keys(1..=200);
    for c in [
        Creds::missing(),
        creds::parse(br#"{"me":{"id":"1@s.whatsapp.net"}}"#),
    ] {
        let (e, p) = run(&as_refs(&files), &c, &N);
        assert_eq!(p.removal_count(), 0);
        assert_eq!(
            decision(&e, &p, "pre-key-1.json").reason,
            Reason::PreKeyNoCounters
        );
    }
}

#[test]
fn fresh_files_are_never_removed() {
    let files = pre_keys(1..=60);
    let mut files = as_refs(&files);
    files[0].1 = mins(9); // pre-key-1, the oldest id, changed 9 minutes ago
    files.push(("session-9.0.json", mins(5)));
    let c = paired(61, 61);
    let got = removed(
        &files,
        &c,
        &Rules {
            session_max_age: Duration::ZERO,
            ..K50
        },
    );
    assert_eq!(got.len(), 9, "{got:?}");
    assert!(!got.contains(&"pre-key-1.json".to_string()));
    assert!(!got.contains(&"session-9.0.json".to_string()));
}

#[test]
fn future_mtime_counts_as_fresh() {
    let mut e = entries(&[("session-1.0.json", Duration::ZERO)]);
    e[0].stat.as_mut().unwrap().mtime = now() + days(400.0);
    let p = plan(&e, &paired(1, 1), &N, now());
    assert!(matches!(p.decisions[0].reason, Reason::Fresh { .. }));
}

#[test]
fn protected_types_survive_a_year() {
    let year = days(365.0);
    let files = [
        ("creds.json", year),
        ("app-state-sync-key-AAAAAOb5.json", year),
        ("app-state-sync-version-regular_high.json", year),
        ("lid-mapping-5511999999999.json", year),
        ("lid-mapping-123456789012345_reverse.json", year),
        ("tctoken-123456789012345@lid.json", year),
        ("device-list-5511999999999.json", year),
        ("contacts.json", year),
        ("creds.json.bak", year),
        ("lid-mapping-1.json.tmp", year),
        ("app-state-sync-key-A.json.bak", year),
    ];
    let zero = Rules {
        session_max_age: Duration::ZERO,
        sender_key_max_age: Duration::ZERO,
        pre_keys: PreKeyRule::KeepNewest(0),
        pre_key_margin: 0,
        min_age: Duration::ZERO,
        tmp_max_age: Duration::ZERO,
    };
    assert!(removed(&files, &paired(1, 1), &zero).is_empty());
}

#[test]
fn identity_key_goes_only_with_its_session() {
    let c = paired(1, 1);
    let files = [
        ("session-123456789012345_1.0.json", days(20.0)),
        ("identity-key-123456789012345_1.0.json", days(20.0)),
        ("session-5511888888888.0.json", days(2.0)),
        ("identity-key-5511888888888.0.json", days(20.0)),
        ("identity-key-5511777777777.0.json", days(90.0)),
    ];
    let (e, p) = run(&files, &c, &N);
    assert_eq!(
        removed(&files, &c, &N),
        vec![
            "identity-key-123456789012345_1.0.json",
            "session-123456789012345_1.0.json"
        ]
    );
    let s = e
        .iter()
        .position(|x| x.name_str() == Some("session-123456789012345_1.0.json"))
        .unwrap();
    assert_eq!(
        decision(&e, &p, "identity-key-123456789012345_1.0.json").requires,
        vec![s]
    );
    assert_eq!(
        decision(&e, &p, "identity-key-5511888888888.0.json").reason,
        Reason::IdentitySessionStays
    );
    assert_eq!(
        decision(&e, &p, "identity-key-5511777777777.0.json").reason,
        Reason::IdentitySessionStays
    );
}

#[test]
fn our_own_sender_key_goes_only_with_the_groups_memory() {
    let c = paired(1, 1);
    let old = days(10.0);
    let files = [
        // Group A: memory old too → both go, memory first.
        ("sender-key-A@g.us--123456789012345_1--0.json", old),
        ("sender-key-memory-A@g.us.json", old),
        // Group B: memory fresh → our key stays.
        ("sender-key-B@g.us--5511999999999--0.json", old),
        ("sender-key-memory-B@g.us.json", days(1.0)),
        // Group C: no memory at all → our key may go.
        ("sender-key-C@g.us--5511999999999--0.json", old),
        // Group B, someone else's key → goes whatever the memory does.
        ("sender-key-B@g.us--5511000000000--0.json", old),
    ];
    let (e, p) = run(&files, &c, &N);
    let got = removed(&files, &c, &N);
    assert_eq!(
        got,
        vec![
            "sender-key-A@g.us--123456789012345_1--0.json",
            "sender-key-B@g.us--5511000000000--0.json",
            "sender-key-C@g.us--5511999999999--0.json",
            "sender-key-memory-A@g.us.json",
        ]
    );
    assert_eq!(
        decision(&e, &p, "sender-key-B@g.us--5511999999999--0.json").reason,
        Reason::OwnSenderKeyMemoryStays
    );
    let order = p.removal_order(&e);
    let pos = |n: &str| {
        order
            .iter()
            .position(|&i| e[i].name_str() == Some(n))
            .unwrap()
    };
    assert!(
        pos("sender-key-memory-A@g.us.json") < pos("sender-key-A@g.us--123456789012345_1--0.json")
    );
}

#[test]
fn unknown_identity_treats_every_sender_key_as_ours() {
    let files = [
        ("sender-key-B@g.us--5511000000000--0.json", days(10.0)),
        ("sender-key-memory-B@g.us.json", days(1.0)),
    ];
    assert!(removed(&files, &Creds::missing(), &N).is_empty());
}

#[test]
fn an_orphan_memory_backup_counts_as_the_memory() {
    let files = [
        ("sender-key-B@g.us--5511999999999--0.json", days(10.0)),
        ("sender-key-memory-B@g.us.json.bak", days(10.0)),
    ];
    assert!(removed(&files, &paired(1, 1), &N).is_empty());
}

#[test]
fn backups_go_with_their_file_and_first() {
    let c = paired(1, 1);
    let files = [
        ("session-1.0.json", days(20.0)),
        ("session-1.0.json.bak", days(20.0)),
        ("session-2.0.json", days(20.0)),
        ("session-2.0.json.bak", mins(1)),
        ("session-3.0.json.bak", days(20.0)),
        ("session-4.0.json", days(1.0)),
        ("session-4.0.json.bak", days(20.0)),
    ];
    let (e, p) = run(&files, &c, &N);
    assert_eq!(
        removed(&files, &c, &N),
        vec!["session-1.0.json", "session-1.0.json.bak"]
    );
    assert_eq!(
        decision(&e, &p, "session-2.0.json").reason,
        Reason::BackupStays
    );
    assert_eq!(
        decision(&e, &p, "session-3.0.json.bak").reason,
        Reason::OrphanBackup
    );
    assert_eq!(
        decision(&e, &p, "session-4.0.json.bak").reason,
        Reason::BackupOfKept
    );
    let order = p.removal_order(&e);
    assert_eq!(e[order[0]].name_str(), Some("session-1.0.json.bak"));
}

#[test]
fn temp_files() {
    let c = paired(1, 1);
    let files = [
        ("session-1.0.json.tmp", mins(11)),
        ("pre-key-5.json.tmp", mins(3)),
        ("creds.json.tmp", days(3.0)),
    ];
    let (e, p) = run(&files, &c, &N);
    assert_eq!(removed(&files, &c, &N), vec!["session-1.0.json.tmp"]);
    assert_eq!(
        decision(&e, &p, "creds.json.tmp").reason,
        Reason::TempOfProtected
    );
}

#[test]
fn non_regular_and_hard_linked_files_stay() {
    let mut e = entries(&[
        ("session-1.0.json", days(20.0)),
        ("session-2.0.json", days(20.0)),
    ]);
    e[0].entry_type = EntryType::Symlink;
    e[1].stat.as_mut().unwrap().nlink = 2;
    let p = plan(&e, &paired(1, 1), &N, now());
    assert_eq!(
        p.decisions[0].reason,
        Reason::NotRegular(EntryType::Symlink)
    );
    assert_eq!(p.decisions[1].reason, Reason::HardLinked(2));
    // A dirent that said "file" but a stat that says otherwise (swapped in between).
    let mut e = entries(&[("session-1.0.json", days(20.0))]);
    e[0].stat.as_mut().unwrap().entry_type = EntryType::Symlink;
    assert_eq!(plan(&e, &paired(1, 1), &N, now()).removal_count(), 0);
}

#[test]
fn unstatted_entries_are_kept() {
    let mut e = entries(&[("session-1.0.json", days(20.0))]);
    e[0].stat = None;
    assert_eq!(
        plan(&e, &paired(1, 1), &N, now()).decisions[0].reason,
        Reason::NoMeta
    );
}

#[test]
fn wants_meta_skips_what_no_rule_can_remove() {
    let files = pre_keys(1..=60);
    let mut files = as_refs(&files);
    files.push(("lid-mapping-1.json", days(1.0)));
    files.push(("session-1.0.json", days(1.0)));
    files.push(("creds.json.bak", days(1.0)));
    let e = entries(&files);
    let want = wants_meta(&e, &paired(61, 61), &K50);
    let statted: Vec<&str> = e
        .iter()
        .zip(&want)
        .filter(|(_, w)| **w)
        .map(|(e, _)| e.name_str().unwrap())
        .collect();
    assert_eq!(statted.len(), 11, "{statted:?}"); // 10 pre-keys beyond the newest 50 + 1 session
    assert!(statted.contains(&"session-1.0.json"));
    assert!(!statted.contains(&"pre-key-60.json"));
}

fn window(margin: u64) -> Rules {
    Rules {
        pre_keys: PreKeyRule::ServerWindow,
        pre_key_margin: margin,
        ..N
    }
}

#[test]
fn the_default_keeps_a_whole_812_upload() {
    // Right after pairing: ids 1..=812 uploaded, next 813. The server holds all 812.
    let files = pre_keys(1..=812);
    assert!(removed(&as_refs(&files), &paired(813, 813), &N).is_empty());
    // The spec's keep-50 would have removed 762 keys the server still hands out.
    assert_eq!(
        removed(&as_refs(&files), &paired(813, 813), &K50).len(),
        762
    );
}

#[test]
fn server_window_boundary_is_next_minus_812_minus_margin() {
    // next 2001, margin 100: floor 1089. 1088 goes, 1089 stays.
    let files = pre_keys(1000..=2000);
    let (e, p) = run(&as_refs(&files), &paired(2001, 2001), &N);
    let floor = 2001 - 812 - 100;
    assert_eq!(
        decision(&e, &p, "pre-key-1088.json").reason,
        Reason::PreKeyBelowServerWindow { floor }
    );
    assert!(decision(&e, &p, "pre-key-1088.json").removes());
    assert_eq!(
        decision(&e, &p, "pre-key-1089.json").reason,
        Reason::PreKeyInServerWindow { floor }
    );
    assert!(!decision(&e, &p, "pre-key-1089.json").removes());
    assert_eq!(p.removal_count(), 89); // 1000..=1088
    // Margin 0: exactly the last 812 ids stay.
    let got = removed(&as_refs(&files), &paired(2001, 2001), &window(0));
    assert_eq!(got.len(), 1189 - 1000);
    assert!(got.contains(&"pre-key-1188.json".to_string()));
    assert!(!got.contains(&"pre-key-1189.json".to_string()));
}

#[test]
fn server_window_keeps_unuploaded_and_last_minted_below_the_floor() {
    // Counters that moved oddly (a restored creds.json): next - 1 and >= first unuploaded stay.
    let files = pre_keys([1, 2, 3, 4]);
    let c = paired(2000, 3);
    let (e, p) = run(&as_refs(&files), &c, &window(0));
    assert!(decision(&e, &p, "pre-key-1.json").removes());
    assert!(decision(&e, &p, "pre-key-2.json").removes());
    assert_eq!(
        decision(&e, &p, "pre-key-3.json").reason,
        Reason::PreKeyNotUploaded
    );
    let files = pre_keys([5, 1999]);
    let (e, p) = run(&as_refs(&files), &paired(2000, 2000), &window(0));
    assert!(decision(&e, &p, "pre-key-5.json").removes());
    assert!(!decision(&e, &p, "pre-key-1999.json").removes());
}

#[test]
fn server_window_without_counters_removes_nothing() {
    let files = pre_keys(1..=2000);
    let (e, p) = run(&as_refs(&files), &Creds::missing(), &N);
    assert_eq!(p.removal_count(), 0);
    assert_eq!(
        decision(&e, &p, "pre-key-1.json").reason,
        Reason::PreKeyNoCounters
    );
}

#[test]
fn verbose_reasons_name_the_rule_that_decided() {
    let files = pre_keys(1..=1000);
    let (e, p) = run(&as_refs(&files), &paired(1001, 1001), &N);
    let gone = decision(&e, &p, "pre-key-1.json").reason.to_string();
    let kept = decision(&e, &p, "pre-key-500.json").reason.to_string();
    assert!(
        gone.contains("id < 89") && gone.contains("no longer"),
        "{gone}"
    );
    assert!(
        kept.contains("id >= 89") && kept.contains("may still"),
        "{kept}"
    );
    let (e, p) = run(&as_refs(&files), &paired(1001, 1001), &K50);
    let gone = decision(&e, &p, "pre-key-1.json").reason.to_string();
    assert_eq!(gone, "older than the newest 50 pre-keys");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Names of every shape: Baileys types, companions, near-misses and junk.
    fn name() -> impl Strategy<Value = String> {
        let id = "[0-9a-zA-Z_@.:\\-]{0,20}";
        prop_oneof![
            Just("creds.json".to_string()),
            id.prop_map(|i| format!("app-state-sync-key-{i}.json")),
            id.prop_map(|i| format!("app-state-sync-version-{i}.json")),
            id.prop_map(|i| format!("lid-mapping-{i}.json")),
            id.prop_map(|i| format!("tctoken-{i}.json")),
            id.prop_map(|i| format!("device-list-{i}.json")),
            id.prop_map(|i| format!("session-{i}.json")),
            id.prop_map(|i| format!("identity-key-{i}.json")),
            id.prop_map(|i| format!("sender-key-{i}.json")),
            id.prop_map(|i| format!("sender-key-memory-{i}.json")),
            (0u64..2000).prop_map(|i| format!("pre-key-{i}.json")),
            (
                prop_oneof![
                    Just("creds"),
                    Just("lid-mapping-1"),
                    Just("session-1"),
                    Just("tctoken-x")
                ],
                prop_oneof![Just(".json.bak"), Just(".json.tmp")]
            )
                .prop_map(|(b, s)| format!("{b}{s}")),
            "[ -~]{0,30}",
        ]
    }

    fn rules() -> impl Strategy<Value = Rules> {
        (
            0u64..30 * 86_400,
            0u64..30 * 86_400,
            (
                prop_oneof![
                    (0usize..100).prop_map(PreKeyRule::KeepNewest),
                    Just(PreKeyRule::ServerWindow),
                ],
                0u64..300,
            ),
            0u64..3600,
            0u64..3600,
        )
            .prop_map(|(s, k, (p, margin), m, t)| Rules {
                session_max_age: Duration::from_secs(s),
                sender_key_max_age: Duration::from_secs(k),
                pre_keys: p,
                pre_key_margin: margin,
                min_age: Duration::from_secs(m),
                tmp_max_age: Duration::from_secs(t),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn never_selects_a_protected_or_unknown_file(
            files in prop::collection::vec((name(), 0u64..400 * 86_400), 0..60),
            rules in rules(),
            next in 0u64..2500,
            first in 0u64..2500,
            have_creds in any::<bool>(),
        ) {
            let refs: Vec<(&str, Duration)> = files.iter().map(|(n, a)| (n.as_str(), Duration::from_secs(*a))).collect();
            let e = entries(&refs);
            let c = if have_creds { paired(next, first) } else { Creds::missing() };
            let p = plan(&e, &c, &rules, now());
            for (entry, d) in e.iter().zip(&p.decisions) {
                if !d.removes() {
                    continue;
                }
                let name = entry.name_str().unwrap();
                let kind = classify::classify(name);
                prop_assert!(!kind.is_protected(), "{name} ({kind}) selected");
                prop_assert!(!name.starts_with("creds.json") && !name.starts_with("app-state-sync")
                    && !name.starts_with("lid-mapping-") && !name.starts_with("tctoken-"), "{name} selected");
                let age = now().duration_since(entry.stat.unwrap().mtime).unwrap();
                prop_assert!(age >= rules.min_age, "{name} is fresh ({age:?})");
                if let Some(id) = classify::pre_key_id(name) {
                    prop_assert!(have_creds && id < first && Some(id) != next.checked_sub(1), "pre-key {id} selected");
                    if rules.pre_keys == PreKeyRule::ServerWindow {
                        prop_assert!(id < PreKeyRule::window_floor(next, rules.pre_key_margin), "pre-key {id} in the window");
                    }
                }
                for &r in &d.requires {
                    prop_assert!(p.decisions[r].removes(), "{name} requires a kept file");
                }
            }
        }
    }

    /// What Baileys 7 and the server do to a folder's pre-keys (docs/prekeys.md, "Model").
    #[derive(Clone, Debug)]
    enum Event {
        /// `CB:success`: 812 when the server holds none, 5 when it holds <= 5.
        Connect,
        /// A pre-key-low notification: 5 when the server holds < 5.
        Notify,
        /// A failed digest check: 5, whatever the server holds.
        DigestFailed,
        /// A retry receipt carries one fresh key straight to the contact.
        RetryReceipt,
        /// A new contact fetches our bundle: the server hands out one key (the `usize` picks
        /// which when the order is not lowest-first); its message arrives and libsignal deletes
        /// the key (`removePreKey`) when `delivered`.
        HandOut(usize, bool),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            2 => Just(Event::Connect),
            1 => Just(Event::Notify),
            1 => Just(Event::DigestFailed),
            1 => Just(Event::RetryReceipt),
            12 => (any::<usize>(), any::<bool>()).prop_map(|(i, d)| Event::HandOut(i, d)),
        ]
    }

    /// Baileys' `getNextPreKeys` for an upload: ids [next, next + n), both counters move.
    fn mint(n: u64, next: &mut u64, local: &mut std::collections::BTreeSet<u64>) -> Vec<u64> {
        let ids: Vec<u64> = (*next..*next + n).collect();
        local.extend(&ids);
        *next += n;
        ids
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// The default rule never removes a key the server still holds, whatever order the
        /// server hands keys out in, as long as at most `margin` ids were minted beyond a full
        /// batch since the server last ran dry (top-ups, failed digests, retry receipts: the
        /// margin's reason, docs/prekeys.md).
        #[test]
        fn server_window_never_removes_a_key_the_server_still_holds(
            events in prop::collection::vec(event(), 1..400),
            lowest_first in any::<bool>(),
        ) {
            use std::collections::BTreeSet;
            let mut next = 1u64;
            let mut local: BTreeSet<u64> = BTreeSet::new();
            let mut server: BTreeSet<u64> = BTreeSet::new();
            // `nextPreKeyId` when the server was last refilled from empty.
            let mut dry_start = 1u64;
            // Pairing: the first connect finds an empty server.
            let mut all = vec![Event::Connect];
            all.extend(events);
            for ev in all {
                let upload = match ev {
                    Event::Connect if server.is_empty() => 812,
                    Event::Connect if server.len() <= 5 => 5,
                    Event::Notify if server.len() < 5 => 5,
                    Event::DigestFailed => 5,
                    Event::RetryReceipt => {
                        mint(1, &mut next, &mut local);
                        0
                    }
                    Event::HandOut(pick, delivered) => {
                        let taken = if lowest_first {
                            server.iter().next().copied()
                        } else if server.is_empty() {
                            None
                        } else {
                            server.iter().nth(pick % server.len()).copied()
                        };
                        if let Some(id) = taken {
                            server.remove(&id);
                            if delivered {
                                local.remove(&id);
                            }
                        }
                        0
                    }
                    _ => 0,
                };
                if upload > 0 {
                    if server.is_empty() {
                        dry_start = next;
                    }
                    server.extend(mint(upload, &mut next, &mut local));
                }
            }
            let margin = crate::core::rules::DEFAULT_PRE_KEY_MARGIN;
            prop_assume!(next - dry_start <= crate::core::rules::INITIAL_PREKEY_COUNT + margin);
            let files: Vec<(String, Duration)> = local.iter().map(|i| (format!("pre-key-{i}.json"), days(2.0))).collect();
            let e = entries(&as_refs(&files));
            let p = plan(&e, &paired(next, next), &N, now());
            for (entry, d) in e.iter().zip(&p.decisions) {
                let id = classify::pre_key_id(entry.name_str().unwrap()).unwrap();
                prop_assert!(!(d.removes() && server.contains(&id)), "pre-key {id} is on the server but was removed (next {next})");
            }
        }
    }
}

#[test]
fn restored_files_on_hold_stay_and_keep_their_partners() {
    let c = paired(1, 1);
    let old = days(30.0);
    let files = [
        ("session-1.0.json", old),
        ("identity-key-1.0.json", old),
        ("session-2.0.json", old),
        ("sender-key-memory-A@g.us.json", old),
        ("sender-key-A@g.us--5511999999999--0.json", old),
        ("creds.json", Duration::ZERO),
    ];
    let mut e = entries(&files);
    let hold = |e: &mut Vec<Entry>, name: &str, until: SystemTime| {
        e.iter_mut()
            .find(|x| x.name_str() == Some(name))
            .unwrap()
            .held_until = Some(until);
    };
    hold(&mut e, "session-1.0.json", now() + days(2.0));
    hold(&mut e, "sender-key-memory-A@g.us.json", now() + days(2.0));
    // A hold that ended is no hold.
    hold(&mut e, "session-2.0.json", now() - mins(1));
    let p = plan(&e, &c, &N, now());
    let d = |n: &str| decision(&e, &p, n).clone();
    assert_eq!(
        d("session-1.0.json").reason,
        Reason::OnHold { left: days(2.0) }
    );
    assert_eq!(
        d("session-1.0.json").reason.to_string(),
        "restored: on hold for 2d more (restore --release ends it)"
    );
    assert_eq!(
        d("identity-key-1.0.json").reason,
        Reason::IdentitySessionStays
    );
    assert_eq!(
        d("sender-key-A@g.us--5511999999999--0.json").reason,
        Reason::OwnSenderKeyMemoryStays
    );
    assert!(d("session-2.0.json").removes());
    // Zero rules cannot override a hold.
    let zero = Rules {
        session_max_age: Duration::ZERO,
        sender_key_max_age: Duration::ZERO,
        ..N
    };
    assert!(!plan(&e, &c, &zero, now()).decisions[0].removes());
}

/// Issue 20's properties: what the levels count, what the emergency rules may remove, and
/// idleness measured against the account's own last activity.
mod issue_20 {
    use super::*;
    use crate::core::tally;
    use proptest::prelude::*;

    fn pre_key_entries(ids: &[u64], age: Duration) -> Vec<Entry> {
        let mut files: Vec<(String, Duration)> = ids
            .iter()
            .map(|i| (format!("pre-key-{i}.json"), age))
            .collect();
        files.push(("creds.json".into(), Duration::ZERO));
        let refs: Vec<(&str, Duration)> = files.iter().map(|(n, a)| (n.as_str(), *a)).collect();
        entries(&refs)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// The counted figure never includes a pre-key the server may still hand out: every id
        /// in the server window (`>= nextPreKeyId - 812 - margin`), not uploaded, or
        /// `nextPreKeyId - 1` is reserved, and reserved is exactly what the default rule keeps.
        #[test]
        fn counted_never_includes_a_server_window_pre_key(
            ids in prop::collection::btree_set(0u64..4000, 0..300),
            next in 0u64..4000,
            first in 0u64..4000,
            margin in 0u64..300,
        ) {
            let ids: Vec<u64> = ids.into_iter().collect();
            let c = paired(next, first);
            let e = pre_key_entries(&ids, days(30.0));
            let flags = tally::reserved_flags(&e, &c, margin);
            let rules = Rules { pre_key_margin: margin, ..N };
            let p = plan(&e, &c, &rules, now());
            let floor = PreKeyRule::window_floor(next, margin);
            for ((entry, reserved), d) in e.iter().zip(&flags).zip(&p.decisions) {
                let Some(id) = entry.name_str().and_then(classify::pre_key_id) else {
                    prop_assert!(!reserved);
                    continue;
                };
                if id >= floor || id >= first || Some(id) == next.checked_sub(1) {
                    prop_assert!(*reserved, "pre-key {id} in the window counted (next {next}, first {first})");
                }
                prop_assert_eq!(*reserved, !d.removes(), "pre-key {}: reserved vs the default rule", id);
            }
            let counted = tally::Tally {
                files: e.len(),
                reserved: flags.iter().filter(|r| **r).count(),
            }
            .counted();
            prop_assert_eq!(counted, 1 + p.decisions.iter().filter(|d| d.removes()).count());
        }

        /// The emergency rules (trigger emergency, monitor auto-cleanup, cleanup --emergency)
        /// never remove a server-window pre-key: they tighten sessions and sender keys only.
        #[test]
        fn emergency_rules_never_remove_a_server_window_pre_key(
            ids in prop::collection::btree_set(0u64..4000, 0..300),
            next in 0u64..4000,
            first in 0u64..4000,
            age in 0u64..400,
        ) {
            let ids: Vec<u64> = ids.into_iter().collect();
            let c = paired(next, first);
            let e = pre_key_entries(&ids, days(age as f64));
            let p = plan(&e, &c, &Rules::EMERGENCY, now());
            let margin = Rules::EMERGENCY.pre_key_margin;
            for (entry, d) in e.iter().zip(&p.decisions) {
                if let Some(id) = entry.name_str().and_then(classify::pre_key_id) {
                    let g = c.pre_key_guard().unwrap();
                    prop_assert!(!(d.removes() && tally::is_reserved(id, g, margin)), "emergency removed reserved pre-key {id}");
                }
            }
        }

        /// Idleness is measured to the account's last activity: a session goes exactly when
        /// `min(now, newest write) - mtime > limit`.
        #[test]
        fn session_idleness_is_relative_to_the_accounts_last_activity(
            session_age in 0u64..60 * 86_400,
            quiet in 0u64..60 * 86_400,
            future in any::<bool>(),
        ) {
            let limit = N.session_max_age;
            // The newest write: `quiet` ago, or in the future (a clock that jumped, or skew).
            let creds_mtime = if future { now() + Duration::from_secs(quiet) } else { now() - Duration::from_secs(quiet) };
            let mut e = entries(&[("session-1.0.json", Duration::from_secs(session_age))]);
            let mut c = entries(&[("creds.json", Duration::ZERO)]).remove(0);
            c.stat.as_mut().unwrap().mtime = creds_mtime;
            e.push(c);
            let d = &plan(&e, &paired(10, 10), &N, now()).decisions[0];
            let session_mtime = now() - Duration::from_secs(session_age);
            // A write more than the tolerance ahead is clock skew, not activity (left out).
            let creds_activity = if future && Duration::from_secs(quiet) > FUTURE_WRITE_TOLERANCE {
                UNIX_EPOCH
            } else {
                creds_mtime
            };
            let activity = creds_activity.max(session_mtime).min(now());
            let idle = activity.duration_since(session_mtime).unwrap_or_default();
            let fresh = session_age < N.min_age.as_secs();
            prop_assert_eq!(d.removes(), !fresh && idle > limit, "age {}s, quiet {}s: {:?}", session_age, quiet, d.reason);
        }
    }

    #[test]
    fn a_silent_account_keeps_the_sessions_it_used_before_it_went_quiet() {
        // Offline for three weeks: every file is at least 21 days old.
        let c = paired(100, 100);
        let files = [
            ("creds.json", days(21.0)),
            ("session-used-4d-before.0.json", days(25.0)),
            ("session-used-13d-before.0.json", days(34.0)),
            ("session-used-20d-before.0.json", days(41.0)),
            ("sender-key-memory-1@g.us.json", days(22.0)),
        ];
        let (e, p) = run(&files, &c, &N);
        assert_eq!(
            removed(&files, &c, &N),
            vec!["session-used-20d-before.0.json"]
        );
        assert_eq!(
            decision(&e, &p, "session-used-13d-before.0.json")
                .reason
                .to_string(),
            "13d idle <= 14d (before the account went quiet 21d ago)"
        );
        // Sender keys too: 1 day idle before the silence, not 22.
        assert!(!decision(&e, &p, "sender-key-memory-1@g.us.json").removes());
        // The same folder of an account active now: the wall clock, as before.
        let mut active = files.to_vec();
        active[0].1 = mins(2);
        let gone = removed(&active, &c, &N);
        assert_eq!(gone.len(), 4, "{gone:?}");
    }

    #[test]
    fn a_write_from_the_future_is_not_activity() {
        // Offline for three weeks, and one file a year in the future (clock skew).
        let c = paired(100, 100);
        let files = [
            ("creds.json", days(21.0)),
            ("session-used-4d-before.0.json", days(25.0)),
            ("session-used-20d-before.0.json", days(41.0)),
            ("sender-key-memory-1@g.us.json", days(22.0)),
            ("sender-key-memory-2@g.us.json", days(1.0)),
        ];
        let mut e = entries(&files);
        let future = now() + days(365.0);
        e[4].stat.as_mut().unwrap().mtime = future;
        let p = plan(&e, &c, &N, now());
        let gone: Vec<&str> = p
            .removal_order(&e)
            .into_iter()
            .map(|i| e[i].name_str().unwrap())
            .collect();
        assert_eq!(gone, vec!["session-used-20d-before.0.json"]);
        assert_eq!(last_activity(&e, now()), Some(now() - days(21.0)));
        assert_eq!(activity_clock(&e, now()), now() - days(21.0));
        // Within the tolerance (the app wrote while we scanned): activity, capped at now.
        e[4].stat.as_mut().unwrap().mtime = now() + mins(1);
        assert_eq!(activity_clock(&e, now()), now());
        // Every file from the future: no activity seen, and none of them is old by any clock.
        for x in &mut e {
            x.stat.as_mut().unwrap().mtime = future;
        }
        assert_eq!(last_activity(&e, now()), None);
        assert!(plan(&e, &c, &N, now()).removal_order(&e).is_empty());
    }

    #[test]
    fn a_fresh_v7_account_reserves_every_pre_key_and_counts_only_the_rest() {
        let c = paired(813, 813);
        let ids: Vec<u64> = (1..=812).collect();
        let e = pre_key_entries(&ids, days(1.0));
        let reserved = tally::reserved_flags(&e, &c, 100)
            .into_iter()
            .filter(|r| *r)
            .count();
        assert_eq!(reserved, 812);
        assert!(
            plan(&e, &c, &Rules::EMERGENCY, now())
                .decisions
                .iter()
                .all(|d| !d.removes())
        );
    }
}
