//! What a run did, per company: the facts both the human summary and `--json` are made from.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::core::classify::Kind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Cleaned (or planned, in a dry run).
    Ok,
    /// Another run holds the company's lock.
    Busy,
    /// Not handled, and that is an error (corrupt creds.json, unreadable folder, …).
    Failed,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileNote {
    pub file: String,
    pub reason: String,
}

/// One line of `--verbose`: a file, its type, the rule that decided it.
#[derive(Clone, Debug, Serialize)]
pub struct FileDecision {
    pub file: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub action: &'static str,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CompanyReport {
    pub company: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_holder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creds: Option<&'static str>,
    pub files_before: usize,
    pub files_after: usize,
    /// Pre-keys among the files that the server may still hand out (core::tally): not counted
    /// by the levels.
    #[serde(rename = "reserved_pre_keys_before")]
    pub reserved_before: usize,
    #[serde(rename = "reserved_pre_keys_after")]
    pub reserved_after: usize,
    pub removed: usize,
    pub removed_by_type: BTreeMap<Kind, usize>,
    pub bytes_freed: u64,
    pub duration_ms: u64,
    /// Files removed (or, in a dry run, that a real run would remove).
    pub removed_files: Vec<String>,
    /// Planned but left alone at the last moment (changed or vanished): not errors.
    pub skipped_files: Vec<FileNote>,
    pub failed_files: Vec<FileNote>,
    /// Files per type before the run.
    pub files_by_type: BTreeMap<Kind, usize>,
    /// creds.json's `nextPreKeyId`, recorded so `status` can tell how fast pre-keys grow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_pre_key_id: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<FileDecision>,
    /// The identity creds.json held (recorded with the run, not printed).
    #[serde(skip)]
    pub identity: Option<crate::core::creds::Identity>,
    /// The account's last activity (the newest write seen): sessions and sender keys are aged
    /// up to it, not up to now (docs/safety.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_activity: Option<chrono::DateTime<chrono::Utc>>,
    /// Database stores: the longest removal transaction, what the app could have waited on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longest_transaction_us: Option<u64>,
}

impl CompanyReport {
    pub fn new(company: &str) -> CompanyReport {
        CompanyReport {
            company: company.to_owned(),
            status: Status::Ok,
            error: None,
            lock_holder: None,
            run_id: None,
            creds: None,
            files_before: 0,
            files_after: 0,
            reserved_before: 0,
            reserved_after: 0,
            removed: 0,
            removed_by_type: BTreeMap::new(),
            bytes_freed: 0,
            duration_ms: 0,
            removed_files: Vec::new(),
            skipped_files: Vec::new(),
            failed_files: Vec::new(),
            files_by_type: BTreeMap::new(),
            next_pre_key_id: None,
            decisions: Vec::new(),
            identity: None,
            last_activity: None,
            longest_transaction_us: None,
        }
    }

    pub fn failed(company: &str, error: impl Into<String>) -> CompanyReport {
        CompanyReport {
            status: Status::Failed,
            error: Some(error.into()),
            ..CompanyReport::new(company)
        }
    }

    /// What the levels count before the run: files less reserved pre-keys.
    pub fn counted_before(&self) -> usize {
        self.files_before.saturating_sub(self.reserved_before)
    }

    /// What the levels count after the run.
    pub fn counted_after(&self) -> usize {
        self.files_after.saturating_sub(self.reserved_after)
    }

    /// Reserved pre-keys the run removed: only ever non-zero under an explicit keep-N.
    pub fn reserved_removed(&self) -> usize {
        self.reserved_before.saturating_sub(self.reserved_after)
    }

    /// Files of types no rule ever removes: what is left when cleanup cannot help.
    pub fn never_removed(&self) -> usize {
        never_removed(&self.files_by_type)
    }

    /// Why a company is still at or above `threshold` (a level's count: files less reserved
    /// pre-keys) after a cleanup, as the spec's troubleshooting section works it out by hand.
    pub fn still_above_advice(&self, threshold: usize) -> Option<String> {
        let counted = self.counted_after();
        if self.status != Status::Ok || counted < threshold {
            return None;
        }
        let never = self.never_removed();
        // Files that could not be removed explain the count better than any age limit.
        if let Some(first) = self.failed_files.first() {
            return Some(format!(
                "{} could not be removed ({}): fix that first; lowering the limits would not help",
                crate::core::util::plural(self.failed_files.len(), "file"),
                first.reason
            ));
        }
        let pre_keys = (self.files_by_type.get(&Kind::PreKey).copied().unwrap_or(0))
            .saturating_sub(
                self.removed_by_type
                    .get(&Kind::PreKey)
                    .copied()
                    .unwrap_or(0),
            )
            .saturating_sub(self.reserved_after);
        Some(if never * 2 >= counted {
            format!(
                "{never} of {counted} counted files are creds/lid-mapping/app-state/tctoken/device-list files that are never removed: consider session rotation"
            )
        } else if pre_keys * 2 >= counted && self.next_pre_key_id.is_some() {
            // The counters were read, so these are waste below the server window kept only for
            // their age: just written (a reconnect loop), or first seen in a store that keeps
            // no write times (the ledger starts their age). Age alone keeps them.
            format!(
                "{pre_keys} of {counted} counted files are pre-keys below the server window changed in the last minutes (or, in a store, first seen by the janitor): the next run removes them"
            )
        } else if pre_keys * 2 >= counted {
            format!(
                "{pre_keys} of {counted} counted files are pre-keys kept without readable counters in creds.json or changed in the last minutes: check creds.json (docs/prekeys.md)"
            )
        } else {
            format!(
                "{counted} counted files remain, most of them younger than the age limits (or changed in the last minutes): lower the limits in [emergency] or wait"
            )
        })
    }

    /// The run had a problem worth exit code 1.
    pub fn has_failure(&self) -> bool {
        self.status == Status::Failed || !self.failed_files.is_empty()
    }
}

/// What a cleanup did, in the words trigger and monitor rows and notifications use: files and
/// pre-keys removed, what is left, and how many of those are reserved pre-keys (and, should an
/// explicit keep-N have removed reserved ones, that too: those contacts' first messages fail).
pub fn removal_words(r: &CompanyReport, verb: &str) -> String {
    let pre_keys = r.removed_by_type.get(&Kind::PreKey).copied().unwrap_or(0);
    let mut s = format!(
        "{verb} {} ({} pre-keys), {} left ({} reserved pre-keys, {} counted)",
        r.removed,
        pre_keys,
        r.files_after,
        r.reserved_after,
        r.counted_after()
    );
    if r.reserved_removed() > 0 {
        s.push_str(&format!(
            "; {} of the removed pre-keys were reserved (keep-N): first messages from new contacts will fail",
            r.reserved_removed()
        ));
    }
    s
}

/// Files of Baileys types that no rule removes (unknown files are not counted: they are not
/// Baileys' and say nothing about the account). Shared by the trigger's and status's advice.
pub fn never_removed(by_type: &BTreeMap<Kind, usize>) -> usize {
    by_type
        .iter()
        .filter(|(k, _)| k.is_protected() && **k != Kind::Unknown)
        .map(|(_, n)| n)
        .sum()
}

/// Totals over all companies of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    pub companies: usize,
    pub ok: usize,
    pub busy: usize,
    pub failed: usize,
    pub files_before: usize,
    pub files_after: usize,
    /// Pre-keys among the files that the server may still hand out (core::tally): not counted
    /// by the levels.
    #[serde(rename = "reserved_pre_keys_before")]
    pub reserved_before: usize,
    #[serde(rename = "reserved_pre_keys_after")]
    pub reserved_after: usize,
    pub removed: usize,
    pub bytes_freed: u64,
    pub failed_files: usize,
    pub skipped_files: usize,
    pub duration_ms: u64,
}

impl Totals {
    pub fn add(&mut self, r: &CompanyReport) {
        self.companies += 1;
        match r.status {
            Status::Ok => self.ok += 1,
            Status::Busy => self.busy += 1,
            Status::Failed => self.failed += 1,
        }
        self.files_before += r.files_before;
        self.files_after += r.files_after;
        self.removed += r.removed;
        self.bytes_freed += r.bytes_freed;
        self.failed_files += r.failed_files.len();
        self.skipped_files += r.skipped_files.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_could_not_be_removed_are_the_advice_not_the_age_limits() {
        let mut r = CompanyReport::new("company_1");
        r.files_before = 190;
        r.files_after = 190;
        r.files_by_type.insert(Kind::Session, 189);
        let younger = r.still_above_advice(175).unwrap();
        assert!(younger.contains("younger than the age limits"), "{younger}");
        r.failed_files.push(FileNote {
            file: "session-1.0.json".into(),
            reason: "Permission denied (os error 13)".into(),
        });
        let a = r.still_above_advice(175).unwrap();
        assert!(
            a.starts_with("1 file could not be removed (Permission denied"),
            "{a}"
        );
        assert!(!a.contains("younger"), "{a}");
    }
}
