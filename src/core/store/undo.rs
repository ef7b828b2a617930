//! Undo on a store: rows back from the trash with the folder's guarantees (`core::restore`):
//!
//! - it refuses a tenant that re-paired since the run (another WhatsApp identity) unless forced;
//! - it never overwrites a row the app wrote again;
//! - it keeps the pairs cleanup keeps (`core::pairs`): a row whose partner the app rewrote since
//!   stays in the trash;
//! - what it puts back is on hold (`companies/<tenant>.json`): no cleanup, trigger or monitor
//!   removes it again before the hold ends.
//!
//! Where the store keeps the janitor's state (issue 23), the run's rows come from its trash
//! (`SharedState::trash_rows`, those not restored yet) and what went back is marked restored
//! there, so any host can undo any host's run, also after that host is gone. A run the store
//! does not know is looked for in the state directory (written before the upgrade).
//!
//! The trash file is read line by line: a torn last line (a write cut short by a full disk, whose
//! batch was rolled back) is ignored; any other unreadable line is reported and kept.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::clean::{TRASH_ROWS, hold_name, session_last_used};
use super::ledger::Ledger;
use super::{RestoreOutcome, Store, TrashRow};
use crate::core::creds::{self, Creds};
use crate::core::pairs::{self, Fate};
use crate::core::records;
use crate::core::report::FileNote;
use crate::core::restore::{RestoreError, RestoreReport, check_identity, own_users};
use crate::core::state::{StateDir, TRASH_DIR};

/// How to restore a store run.
#[derive(Clone, Debug)]
pub struct StoreRestore<'a> {
    /// Only these rows (`<type>-<id>`, as reports name them) and their partners; empty = all.
    pub only: &'a [String],
    /// Restore into a tenant that re-paired since.
    pub force: bool,
    pub dry_run: bool,
    pub now: DateTime<Utc>,
    /// How long restored rows stay on hold.
    pub hold: Duration,
    /// The store's key in the state directory (its ledger).
    pub store_key: &'a str,
}

/// A trash file as read: its rows, and the lines that could not be read.
pub struct TrashFile {
    pub rows: Vec<TrashRow>,
    /// Unreadable complete lines (line number, why): kept in the file, reported.
    pub bad: Vec<(usize, String)>,
    /// A torn last line (no newline, not JSON): a write cut short whose batch was rolled back.
    pub torn_tail: bool,
}

/// Reads a trash file of whole JSON lines. Never fails on content: a torn tail is skipped and
/// other bad lines are listed, so one damaged line never makes a whole run unrestorable.
pub fn read_trash(text: &str) -> TrashFile {
    let mut out = TrashFile {
        rows: Vec::new(),
        bad: Vec::new(),
        torn_tail: false,
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.len().saturating_sub(1);
    for (n, line) in lines.iter().enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<TrashRow>(line) {
            Ok(r) => out.rows.push(r),
            Err(_) if n == last && !complete => out.torn_tail = true,
            Err(e) => out.bad.push((n + 1, e.to_string())),
        }
    }
    out
}

/// The name reports use for a row.
fn shown(r: &TrashRow) -> String {
    format!("{}-{}", r.key_type, r.id)
}

/// Puts the rows of a trash run back into the store. Rows restored leave the trash file; the
/// rest stay there.
pub fn restore_tenant_run(
    store: &mut dyn Store,
    state: &StateDir,
    tenant: &str,
    run: &str,
    opts: &StoreRestore,
) -> Result<RestoreReport, RestoreError> {
    if run.contains('/') || run == ".." || run == "." || run.is_empty() {
        return Err(RestoreError::Usage(format!(
            "{run:?} is not a valid run id"
        )));
    }
    let mut report = RestoreReport::new(tenant, run.to_owned(), opts.dry_run);
    let found = find_run(state, tenant, run, &mut report)?;
    let trash = found.rows();

    // The account now, and the one the run cleaned.
    let creds = match store.creds(tenant) {
        Ok(Some(bytes)) => creds::parse(&bytes),
        Ok(None) => Creds::missing(),
        Err(e) => return Err(RestoreError::Refused(e.to_string())),
    };
    if creds.is_corrupt() {
        return Err(RestoreError::Refused(format!(
            "the creds of {tenant} are corrupt ({}); nothing was changed",
            creds.problem.clone().unwrap_or_default()
        )));
    }
    let record = records::try_read_company(state, tenant).map_err(RestoreError::Refused)?;
    let then = crate::core::restore::identity_of_run(&record, run);
    check_identity(
        tenant,
        &format!("run {run}"),
        then.as_ref(),
        &creds,
        opts.force,
    )?;
    let own = own_users(&creds, then.as_ref());
    let own: Vec<&str> = own.iter().map(String::as_str).collect();

    // Rows by the planner's name, which is what pairs and holds speak.
    let by_name: BTreeMap<String, &TrashRow> = trash
        .iter()
        .map(|r| (hold_name(&r.key_type, &r.id), r))
        .collect();
    let source: BTreeSet<String> = by_name.keys().cloned().collect();
    let mut only = Vec::new();
    for w in opts.only {
        match trash.iter().find(|r| &shown(r) == w) {
            Some(r) => only.push(hold_name(&r.key_type, &r.id)),
            None => report.failed.push(FileNote {
                file: crate::core::util::sanitize(std::ffi::OsStr::new(w)),
                reason: format!("not in the trash of run {run}"),
            }),
        }
    }
    let wanted: BTreeSet<String> = if opts.only.is_empty() {
        source.clone()
    } else {
        let (chosen, added) = pairs::with_partners(&only, &source, &own);
        for (p, because) in added {
            report.brought_along.push(FileNote {
                file: shown(by_name[&p]),
                reason: format!("restored together with {}", shown(by_name[&because])),
            });
        }
        chosen.into_iter().filter(|n| source.contains(n)).collect()
    };

    // What the store holds now, and whether each row changed since the run.
    let since = crate::core::trash::run_time(run);
    let ledger = Ledger::load(state, opts.store_key, tenant);
    let mut current: HashMap<String, (String, bool)> = HashMap::new();
    store
        .scan(tenant, &mut |row| {
            let changed = changed_since(&ledger, since, row);
            current.insert(
                hold_name(row.key_type, row.id),
                (row.value.to_owned(), changed),
            );
        })
        .map_err(|e| RestoreError::Refused(e.to_string()))?;
    let mut fates: BTreeMap<String, Fate> = BTreeMap::new();
    for name in &wanted {
        let fate = match current.get(name) {
            None => Fate::Restore,
            Some((v, _)) if *v == by_name[name].value => Fate::Same,
            Some(_) => Fate::Kept(
                "exists again in the store (the app wrote a newer one): not overwritten".into(),
            ),
        };
        fates.insert(name.clone(), fate);
    }
    let in_store: BTreeSet<String> = current.keys().cloned().collect();
    pairs::keep_pairs(
        &mut fates,
        &in_store,
        |p| current.get(p).is_some_and(|(_, changed)| *changed),
        &own,
    );

    let mut to_restore: Vec<TrashRow> = Vec::new();
    let mut done: BTreeSet<super::KeyRef> = BTreeSet::new();
    for (name, fate) in &fates {
        let row = by_name[name];
        match fate {
            Fate::Same => {
                report.identical += 1;
                done.insert(row.key());
            }
            Fate::Kept(reason) => report.skipped.push(FileNote {
                file: shown(row),
                reason: reason.clone(),
            }),
            Fate::Restore => to_restore.push(row.clone()),
        }
    }
    let mut held: Vec<String> = Vec::new();
    if opts.dry_run {
        report.restored = to_restore.iter().map(shown).collect();
    } else {
        let outcomes = store
            .restore(tenant, &to_restore)
            .map_err(|e| RestoreError::Refused(e.to_string()))?;
        for (r, o) in to_restore.iter().zip(outcomes) {
            match o {
                RestoreOutcome::Restored => {
                    done.insert(r.key());
                    held.push(hold_name(&r.key_type, &r.id));
                    report.restored.push(shown(r));
                }
                RestoreOutcome::Exists => report.skipped.push(FileNote {
                    file: shown(r),
                    reason: "appeared in the store meanwhile (the app wrote a newer one): not overwritten"
                        .into(),
                }),
            }
        }
        found.forget(state, tenant, run, &done)?;
    }
    crate::core::restore::hold_restored(
        state,
        tenant,
        &held,
        &mut report,
        opts.now,
        opts.hold,
        opts.dry_run,
    )?;
    Ok(report)
}

/// Where a run's rows are.
enum Source {
    /// The store's trash: the rows not restored yet.
    Shared(Vec<TrashRow>),
    /// `<state>/trash/<tenant>/<run>/rows.jsonl` (no shared state, or written before it).
    Local {
        dir: std::path::PathBuf,
        path: std::path::PathBuf,
        text: String,
        trash: TrashFile,
    },
}

impl Source {
    fn rows(&self) -> &[TrashRow] {
        match self {
            Source::Shared(rows) => rows,
            Source::Local { trash, .. } => &trash.rows,
        }
    }

    /// What went back (or was there already, identical) leaves the trash: marked restored in
    /// the store's, cut from the file.
    fn forget(
        &self,
        state: &StateDir,
        tenant: &str,
        run: &str,
        done: &BTreeSet<super::KeyRef>,
    ) -> Result<(), RestoreError> {
        match self {
            Source::Shared(_) => {
                if done.is_empty() {
                    return Ok(());
                }
                let keys: Vec<super::KeyRef> = done.iter().cloned().collect();
                let marked = state.with_shared(|sh| sh.mark_restored(tenant, run, &keys));
                if let Some(Err(e)) = marked {
                    // The rows are back; a later restore finds them identical and does nothing.
                    tracing::warn!(company = %tenant, run = %run, error = %e, "restored, but cannot mark the rows restored in the store's trash");
                }
                Ok(())
            }
            Source::Local {
                dir,
                path,
                text,
                trash,
            } => rewrite_trash(dir, path, text, trash, done),
        }
    }
}

/// The run's rows: from the store's trash where it keeps one, else (or when it has no such run:
/// written before the upgrade) from the state directory. A run found nowhere is a usage error
/// that says where it looked.
fn find_run(
    state: &StateDir,
    tenant: &str,
    run: &str,
    report: &mut RestoreReport,
) -> Result<Source, RestoreError> {
    let dir = state.path().join(TRASH_DIR).join(tenant).join(run);
    let path = dir.join(TRASH_ROWS);
    let mut looked = Vec::new();
    if let Some(found) = state.with_shared(|sh| (sh.describe(), sh.trash_rows(tenant, run))) {
        match found {
            (_, Ok(rows)) if !rows.is_empty() => {
                return Ok(Source::Shared(
                    rows.into_iter()
                        .filter(|t| !t.restored)
                        .map(|t| t.row)
                        .collect(),
                ));
            }
            (what, Ok(_)) => looked.push(what),
            (what, Err(e)) => {
                return Err(RestoreError::Refused(format!(
                    "cannot read the trash in {what}: {e}; nothing was changed"
                )));
            }
        }
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        looked.push(format!("{} ({e})", path.display()));
        RestoreError::Usage(format!(
            "no run {run:?} in the trash of {tenant}: looked in {}",
            looked.join(" and ")
        ))
    })?;
    let trash = read_trash(&text);
    for (line, why) in &trash.bad {
        report.failed.push(FileNote {
            file: format!("{}: line {line}", path.display()),
            reason: format!("unreadable, left in the trash: {why}"),
        });
    }
    if trash.torn_tail {
        tracing::warn!(path = %path.display(), "torn last line in the trash (a write cut short; its rows were never removed): ignored");
    }
    Ok(Source::Local {
        dir,
        path,
        text,
        trash,
    })
}

/// Whether a row in the store was written after the run (unknown: assume it was).
fn changed_since(ledger: &Ledger, since: Option<DateTime<Utc>>, row: super::RawRow<'_>) -> bool {
    let Some(since) = since else { return true };
    let since_us = since.timestamp_micros();
    if let Some(us) = row.updated_at_us {
        return us > since_us;
    }
    if row.key_type == "session"
        && let Some(ms) = session_last_used(row.value)
    {
        return ms.saturating_mul(1000) > since_us;
    }
    match ledger.seen(row.key_type, row.id) {
        Some(s) => {
            s.hash != super::fingerprint(row.value.as_bytes()) || s.last_changed > since.timestamp()
        }
        None => true,
    }
}

/// Leaves in the trash file exactly the rows not restored (and lines that could not be read);
/// removes the file and the run's folder when nothing is left.
fn rewrite_trash(
    dir: &Path,
    path: &Path,
    text: &str,
    trash: &TrashFile,
    done: &BTreeSet<super::KeyRef>,
) -> Result<(), RestoreError> {
    if done.is_empty() && !trash.torn_tail {
        return Ok(());
    }
    let left: Vec<&TrashRow> = trash
        .rows
        .iter()
        .filter(|r| !done.contains(&r.key()))
        .collect();
    if left.is_empty() && trash.bad.is_empty() {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_dir(dir);
        return Ok(());
    }
    let mut out = Vec::new();
    for r in left {
        serde_json::to_writer(&mut out, r).map_err(std::io::Error::other)?;
        out.push(b'\n');
    }
    let lines: Vec<&str> = text.split('\n').collect();
    for (n, _) in &trash.bad {
        out.extend_from_slice(lines[n - 1].as_bytes());
        out.push(b'\n');
    }
    let folder = crate::core::folder::Folder::open(dir)?;
    crate::core::state::write_atomic(&folder, TRASH_ROWS, &out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_tail_is_ignored_and_bad_lines_are_listed() {
        let good = r#"{"type":"pre-key","id":"1","value":"{}"}"#;
        let t = read_trash(&format!("{good}\n{good}\n{{\"type\":\"pre-k"));
        assert_eq!(t.rows.len(), 2);
        assert!(t.torn_tail);
        assert!(t.bad.is_empty());
        let t = read_trash(&format!("{good}\nnot json\n{good}\n"));
        assert_eq!(t.rows.len(), 2);
        assert!(!t.torn_tail);
        assert_eq!(t.bad.len(), 1);
        assert_eq!(t.bad[0].0, 2);
        let t = read_trash("");
        assert!(t.rows.is_empty() && t.bad.is_empty() && !t.torn_tail);
    }
}
