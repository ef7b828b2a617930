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

    /// Files of types no rule ever removes: what is left when cleanup cannot help.
    pub fn never_removed(&self) -> usize {
        never_removed(&self.files_by_type)
    }

    /// Why a company is still at or above `threshold` after a cleanup, as the spec's
    /// troubleshooting section works it out by hand.
    pub fn still_above_advice(&self, threshold: usize) -> Option<String> {
        if self.status != Status::Ok || self.files_after < threshold {
            return None;
        }
        let never = self.never_removed();
        let pre_keys = self.files_by_type.get(&Kind::PreKey).copied().unwrap_or(0)
            - self
                .removed_by_type
                .get(&Kind::PreKey)
                .copied()
                .unwrap_or(0);
        // Files that could not be removed explain the count better than any age limit.
        if let Some(first) = self.failed_files.first() {
            return Some(format!(
                "{} could not be removed ({}): fix that first; lowering the limits would not help",
                crate::core::util::plural(self.failed_files.len(), "file"),
                first.reason
            ));
        }
        Some(if never * 2 >= self.files_after {
            format!(
                "{never} of {} files are creds/lid-mapping/app-state/tctoken/device-list files that are never removed: consider session rotation",
                self.files_after
            )
        } else if pre_keys * 2 >= self.files_after {
            format!(
                "{pre_keys} of {} files are pre-keys the server may still hand out (or not uploaded yet): this is normal for Baileys v7, which uploads 812 at once (docs/prekeys.md)",
                self.files_after
            )
        } else {
            format!(
                "{} files remain, most of them younger than the age limits (or changed in the last minutes): lower the limits in [emergency] or wait",
                self.files_after
            )
        })
    }

    /// The run had a problem worth exit code 1.
    pub fn has_failure(&self) -> bool {
        self.status == Status::Failed || !self.failed_files.is_empty()
    }
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
