//! Carrying out one company's plan, the same way for a folder and for every store: removals in
//! requirement-rank order, an entry whose requirement did not go is kept, dry runs counted, and
//! every outcome written into the report. Only the act of removing differs, behind [`Remover`]:
//! a folder re-checks dev/ino/mtime/size and renames into the trash or unlinks
//! (`core::remove`); a SQL store removes re-checked transaction batches; Redis runs a
//! compare-delete script.

use std::time::{Duration, Instant};

use crate::core::classify::Kind;
use crate::core::plan::requirement_rank;
use crate::core::report::{CompanyReport, FileNote, Status};

/// One planned removal, as the report shows it.
#[derive(Clone, Debug)]
pub struct Removal<'a> {
    /// The name the report shows (already sanitized).
    pub shown: String,
    /// The type it is counted under in `removed_by_type`; its requirement rank.
    pub kind: Kind,
    /// The size a dry run counts as freed.
    pub size: u64,
    /// It is one of the pre-keys the app holds in reserve.
    pub reserved: bool,
    /// Entries (indices) whose removal must have happened first.
    pub requires: &'a [usize],
}

/// What became of one removal.
#[derive(Debug)]
pub enum Outcome {
    Removed {
        bytes: u64,
    },
    /// Gone before we got to it: what needed it gone may go ahead.
    Vanished,
    /// Left in place on purpose (it changed since planning): why.
    Kept(String),
    /// The removal failed: why. The entry stays (or its fate is unknown; the reason says so).
    Failed(String),
    /// The removal failed in a way every other removal would too (permission on the folder):
    /// `reason` for this entry, `error` for the company, and no other removal is tried.
    FailedAll {
        reason: String,
        error: String,
    },
}

/// The one act that differs between a folder and a store.
pub trait Remover {
    /// Removes the entries `batch` (indices into the removals), all of one requirement rank,
    /// and says what became of each, in order. A failure of the whole batch is one
    /// [`Outcome::Failed`] per entry.
    fn remove(&mut self, batch: &[usize]) -> Vec<Outcome>;
}

/// How to carry out a plan.
#[derive(Clone, Copy, Debug)]
pub struct Execution {
    pub dry_run: bool,
    /// Removals per [`Remover::remove`] call (a store's transaction); at least one.
    pub batch: usize,
    /// Test hook: sleep between planning and removal, to let a test race the run.
    pub pause_before_remove: Option<Duration>,
}

/// Carries out `order` (indices of the `entries` planned, every requirement before what needs
/// it) and writes what happened into `report`: removed counts, bytes, reserved pre-keys left,
/// skipped and failed entries, and `files_after`. Returns the longest [`Remover::remove`] call.
/// `removal(i)` describes entry `i` when asked: nothing is kept per entry of a large folder.
pub fn execute<'a>(
    entries: usize,
    removal: &dyn Fn(usize) -> Removal<'a>,
    order: &[usize],
    how: Execution,
    remover: &mut dyn Remover,
    report: &mut CompanyReport,
) -> Duration {
    let mut longest = Duration::ZERO;
    if how.dry_run {
        for &i in order {
            let r = removal(i);
            record_removed(report, &r, r.size);
        }
        report.files_after = report.files_before.saturating_sub(report.removed);
        return longest;
    }
    if let Some(pause) = how.pause_before_remove {
        std::thread::sleep(pause);
    }
    let mut gone = vec![false; entries];
    let mut next = 0;
    'batches: while next < order.len() {
        // Batches never mix ranks, so a removal's requirement is settled before it is tried.
        // Each entry is described once here (a description builds its shown name).
        let mut batch_rank = None;
        let mut batch = Vec::new();
        while next < order.len() && batch.len() < how.batch.max(1) {
            let i = order[next];
            let this = removal(i);
            let rank = requirement_rank(this.kind);
            if *batch_rank.get_or_insert(rank) != rank {
                break;
            }
            next += 1;
            if let Some(&r) = this.requires.iter().find(|&&r| !gone[r]) {
                report.skipped_files.push(FileNote {
                    file: this.shown,
                    reason: format!("kept because {} was not removed", removal(r).shown),
                });
                continue;
            }
            batch.push(i);
        }
        if batch.is_empty() {
            continue;
        }
        let started = Instant::now();
        let outcomes = remover.remove(&batch);
        longest = longest.max(started.elapsed());
        for (&i, outcome) in batch.iter().zip(outcomes) {
            let this = removal(i);
            match outcome {
                Outcome::Removed { bytes } => {
                    gone[i] = true;
                    record_removed(report, &this, bytes);
                }
                Outcome::Vanished => {
                    gone[i] = true;
                    report.skipped_files.push(FileNote {
                        file: this.shown,
                        reason: "already gone".into(),
                    });
                }
                Outcome::Kept(reason) => report.skipped_files.push(FileNote {
                    file: this.shown,
                    reason,
                }),
                Outcome::Failed(reason) => report.failed_files.push(FileNote {
                    file: this.shown,
                    reason,
                }),
                Outcome::FailedAll { reason, error } => {
                    report.failed_files.push(FileNote {
                        file: this.shown,
                        reason,
                    });
                    report.status = Status::Failed;
                    report.error = Some(error);
                    break 'batches;
                }
            }
        }
    }
    report.files_after = report.files_before.saturating_sub(report.removed);
    longest
}

fn record_removed(report: &mut CompanyReport, r: &Removal, bytes: u64) {
    report.removed += 1;
    if r.reserved {
        report.reserved_after -= 1;
    }
    report.bytes_freed += bytes;
    *report.removed_by_type.entry(r.kind).or_default() += 1;
    report.removed_files.push(r.shown.clone());
}

#[cfg(test)]
mod tests;
