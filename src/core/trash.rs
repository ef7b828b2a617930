//! The trash: `<state>/trash/<company>/<run-id>/<file>`. Files arrive by rename (so they keep
//! their bytes and mtimes), go back with `restore`, and are purged once older than the retention.

use std::io;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::core::state::TRASH_DIR;

/// The start time encoded in a run id (`20261128T030000Z-4242`).
pub fn run_time(run_id: &str) -> Option<DateTime<Utc>> {
    let stamp = run_id.split('-').next()?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub runs: usize,
    pub files: usize,
}

/// Removes every run folder older than `retention` from the trash under `state_path`.
/// Folders whose names are not run ids are left alone.
pub fn purge(state_path: &Path, retention: Duration, now: DateTime<Utc>) -> io::Result<Purged> {
    let mut purged = Purged::default();
    let trash = state_path.join(TRASH_DIR);
    let companies = match std::fs::read_dir(&trash) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(purged),
        Err(e) => return Err(e),
    };
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    for company in companies {
        let company = company?;
        if !company.file_type()?.is_dir() {
            continue;
        }
        for run in std::fs::read_dir(company.path())? {
            let run = run?;
            let name = run.file_name();
            let Some(time) = name.to_str().and_then(run_time) else {
                continue;
            };
            if time + retention < now && run.file_type()?.is_dir() {
                purged.files += std::fs::read_dir(run.path())?.count();
                // std's remove_dir_all does not follow symlinks (CVE-2022-21658 fixed).
                std::fs::remove_dir_all(run.path())?;
                purged.runs += 1;
            }
        }
    }
    Ok(purged)
}

/// Files and bytes of one run in a company's trash. A database store's run is one
/// `rows.jsonl`: its rows count as the files.
pub fn run_size(run_dir: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    for e in walkdir::WalkDir::new(run_dir).into_iter().flatten() {
        if !e.file_type().is_file() {
            continue;
        }
        bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
        if e.file_name() == crate::core::store::clean::TRASH_ROWS {
            files += std::fs::read(e.path())
                .map(|b| b.split(|c| *c == b'\n').filter(|l| !l.is_empty()).count())
                .unwrap_or(0);
        } else {
            files += 1;
        }
    }
    (files, bytes)
}

/// Bytes and files in a company's trash.
pub fn size(state_path: &Path, company: &str) -> (u64, usize) {
    let mut bytes = 0;
    let mut files = 0;
    for e in walkdir::WalkDir::new(state_path.join(TRASH_DIR).join(company))
        .into_iter()
        .flatten()
    {
        if e.file_type().is_file() {
            files += 1;
            bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    (bytes, files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_carry_their_time() {
        let t = run_time("20261128T030000Z-4242").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-28T03:00:00+00:00");
        assert_eq!(run_time("garbage"), None);
    }

    #[test]
    fn purge_honours_retention() {
        let tmp = tempfile::tempdir().unwrap();
        let now = run_time("20261128T030000Z-1").unwrap();
        for run in [
            "20261120T030000Z-1",
            "20261122T030000Z-1",
            "20261127T030000Z-1",
            "keep-me",
        ] {
            let d = tmp.path().join("trash/company_1").join(run);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("session-1.0.json"), "{}").unwrap();
        }
        let p = purge(tmp.path(), Duration::from_secs(7 * 86_400), now).unwrap();
        assert_eq!(p, Purged { runs: 1, files: 1 });
        assert!(
            !tmp.path()
                .join("trash/company_1/20261120T030000Z-1")
                .exists()
        );
        assert!(
            tmp.path()
                .join("trash/company_1/20261122T030000Z-1")
                .exists()
        );
        assert!(tmp.path().join("trash/company_1/keep-me").exists());
        assert_eq!(size(tmp.path(), "company_1"), (6, 3));
    }

    #[test]
    fn a_store_runs_rows_count_as_its_files() {
        let tmp = tempfile::tempdir().unwrap();
        let folder_run = tmp.path().join("a");
        std::fs::create_dir(&folder_run).unwrap();
        std::fs::write(folder_run.join("session-1.0.json"), "{}").unwrap();
        std::fs::write(folder_run.join("session-2.0.json"), "{}").unwrap();
        assert_eq!(run_size(&folder_run), (2, 4));
        let store_run = tmp.path().join("b");
        std::fs::create_dir(&store_run).unwrap();
        std::fs::write(
            store_run.join("rows.jsonl"),
            "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n",
        )
        .unwrap();
        assert_eq!(run_size(&store_run).0, 3);
        assert_eq!(run_size(&tmp.path().join("missing")), (0, 0));
    }
}
