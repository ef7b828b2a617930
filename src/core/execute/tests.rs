use super::*;
use std::collections::HashMap;

/// Says per index what happens, records every call.
#[derive(Default)]
struct FakeRemover {
    outcomes: HashMap<usize, fn() -> Outcome>,
    calls: Vec<Vec<usize>>,
}

impl Remover for FakeRemover {
    fn remove(&mut self, batch: &[usize]) -> Vec<Outcome> {
        self.calls.push(batch.to_vec());
        batch
            .iter()
            .map(|i| {
                self.outcomes
                    .get(i)
                    .map_or(Outcome::Removed { bytes: 10 }, |f| f())
            })
            .collect()
    }
}

fn removal(shown: &str, kind: Kind, requires: &'static [usize]) -> Removal<'static> {
    Removal {
        shown: shown.into(),
        kind,
        size: 7,
        reserved: false,
        requires,
    }
}

fn run(
    removals: &[Removal],
    order: &[usize],
    dry_run: bool,
    batch: usize,
    remover: &mut FakeRemover,
) -> CompanyReport {
    let mut report = CompanyReport::new("c");
    report.files_before = 10;
    let how = Execution {
        dry_run,
        batch,
        pause_before_remove: None,
    };
    execute(
        removals.len(),
        &|i| removals[i].clone(),
        order,
        how,
        remover,
        &mut report,
    );
    report
}

/// session 0, its identity key 1 (needs 0), a pre-key 2, a sender key 3 (needs memory 4).
fn company() -> Vec<Removal<'static>> {
    vec![
        removal("session-a", Kind::Session, &[]),
        removal("identity-key-a", Kind::IdentityKey, &[0]),
        removal("pre-key-1", Kind::PreKey, &[]),
        removal("sender-key-g", Kind::SenderKey, &[4]),
        removal("sender-key-memory-g", Kind::SenderKeyMemory, &[]),
    ]
}

#[test]
fn batches_never_mix_requirement_ranks() {
    let mut fake = FakeRemover::default();
    let report = run(&company(), &[0, 2, 4, 1, 3], false, 100, &mut fake);
    assert_eq!(fake.calls, vec![vec![0, 2, 4], vec![1, 3]]);
    assert_eq!(report.removed, 5);
    assert_eq!(report.files_after, 5);
    assert_eq!(report.bytes_freed, 50);
}

#[test]
fn batch_size_splits_a_rank() {
    let mut fake = FakeRemover::default();
    run(&company(), &[0, 2, 4, 1, 3], false, 2, &mut fake);
    assert_eq!(fake.calls, vec![vec![0, 2], vec![4], vec![1, 3]]);
}

#[test]
fn a_removal_whose_requirement_stayed_is_kept() {
    let mut fake = FakeRemover::default();
    fake.outcomes
        .insert(0, || Outcome::Kept("modified since it was planned".into()));
    fake.outcomes.insert(4, || Outcome::Failed("boom".into()));
    let report = run(&company(), &[0, 2, 4, 1, 3], false, 1, &mut fake);
    assert_eq!(
        fake.calls,
        vec![vec![0], vec![2], vec![4]],
        "1 and 3 never tried"
    );
    assert_eq!(report.removed_files, vec!["pre-key-1"]);
    let skipped: Vec<(&str, &str)> = report
        .skipped_files
        .iter()
        .map(|n| (n.file.as_str(), n.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        vec![
            ("session-a", "modified since it was planned"),
            ("identity-key-a", "kept because session-a was not removed"),
            (
                "sender-key-g",
                "kept because sender-key-memory-g was not removed"
            ),
        ]
    );
    assert_eq!(report.failed_files.len(), 1);
    assert_eq!(report.failed_files[0].reason, "boom");
    assert_eq!(report.files_after, 9);
}

#[test]
fn a_requirement_that_vanished_lets_the_pair_go() {
    let mut fake = FakeRemover::default();
    fake.outcomes.insert(0, || Outcome::Vanished);
    let report = run(&company(), &[0, 1], false, 1, &mut fake);
    assert_eq!(report.removed_files, vec!["identity-key-a"]);
    assert_eq!(report.skipped_files[0].reason, "already gone");
}

#[test]
fn a_dry_run_counts_every_planned_removal_and_removes_nothing() {
    let mut fake = FakeRemover::default();
    let mut removals = company();
    removals[2].reserved = true;
    let mut report = CompanyReport::new("c");
    report.files_before = 10;
    report.reserved_before = 3;
    report.reserved_after = 3;
    let how = Execution {
        dry_run: true,
        batch: 100,
        pause_before_remove: None,
    };
    execute(
        removals.len(),
        &|i| removals[i].clone(),
        &[0, 2, 1],
        how,
        &mut fake,
        &mut report,
    );
    assert!(fake.calls.is_empty());
    assert_eq!(report.removed, 3);
    assert_eq!(report.bytes_freed, 21, "the planned sizes");
    assert_eq!(report.reserved_after, 2);
    assert_eq!(report.files_after, 7);
    assert_eq!(report.removed_by_type.get(&Kind::Session), Some(&1));
}

#[test]
fn a_failure_for_every_removal_stops_the_run() {
    let mut fake = FakeRemover::default();
    fake.outcomes.insert(2, || Outcome::FailedAll {
        reason: "permission denied".into(),
        error: "cannot remove files as this user".into(),
    });
    let report = run(&company(), &[0, 2, 4, 1, 3], false, 1, &mut fake);
    assert_eq!(fake.calls, vec![vec![0], vec![2]]);
    assert_eq!(report.status, Status::Failed);
    assert_eq!(
        report.error.as_deref(),
        Some("cannot remove files as this user")
    );
    assert_eq!(report.removed, 1);
}

/// Held entries never reach the executor: the plan keeps them. What the executor is given in
/// order is all it touches.
#[test]
fn only_the_given_order_is_touched() {
    let mut fake = FakeRemover::default();
    let report = run(&company(), &[2], false, 100, &mut fake);
    assert_eq!(fake.calls, vec![vec![2]]);
    assert_eq!(report.removed_files, vec!["pre-key-1"]);
}

/// Holds are the planner's (`Reason::OnHold`): a restored session stays, and so does the identity
/// key that needs it; the executor is only ever given what the plan removes.
#[test]
fn a_held_session_and_its_identity_key_are_never_tried() {
    use crate::core::folder::EntryType;
    use crate::core::plan::{self, Entry, Stat};
    use crate::core::rules::Rules;
    use std::time::UNIX_EPOCH;
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let days = |n: u64| Duration::from_secs(n * 86_400);
    let entry = |name: &str, age: Duration| {
        let mut e = Entry::new(name, EntryType::File);
        e.stat = Some(Stat::row(100, now - age));
        e
    };
    let mut entries = vec![
        entry("creds.json", Duration::ZERO),
        entry("session-1.0.json", days(60)),
        entry("identity-key-1.0.json", days(60)),
        entry("session-2.0.json", days(60)),
        entry("identity-key-2.0.json", days(60)),
    ];
    entries[1].held_until = Some(now + days(2));
    let creds = crate::core::creds::parse(
        br#"{"me":{"id":"5511999999999:3@s.whatsapp.net"},"account":{},"nextPreKeyId":10,"firstUnuploadedPreKeyId":10}"#,
    );
    let p = plan::plan(&entries, &creds, &Rules::NORMAL, now);
    let order = p.removal_order(&entries);
    let removals: Vec<Removal> = entries
        .iter()
        .zip(&p.decisions)
        .map(|(e, d)| Removal {
            shown: e.name_str().unwrap().to_owned(),
            kind: e.kind,
            size: 100,
            reserved: false,
            requires: &d.requires,
        })
        .collect();
    let mut fake = FakeRemover::default();
    let report = run(&removals, &order, false, 100, &mut fake);
    assert_eq!(fake.calls, vec![vec![3], vec![4]]);
    assert_eq!(
        report.removed_files,
        vec!["session-2.0.json", "identity-key-2.0.json"]
    );
}
