//! The trash: `<state>/trash/<company>/<run-id>/<file>`. Files arrive by rename (so they keep
//! their bytes and mtimes), go back with `restore`, and are purged once older than the retention.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::folder::Folder;
use crate::core::state::TRASH_DIR;

/// What a folder run moved into a run's trash folder, one JSON line per file. Appended as each
/// file arrives (a run killed mid-way leaves every line it wrote; a torn last line is ignored),
/// then rewritten whole and atomically when the company's removals end. Without it, restore
/// cannot tell a trash cut short from an earlier partial restore.
pub const REMOVED_LIST: &str = ".removed.jsonl";
/// What restores of a run put back, one JSON line per file: a later restore of the same run does
/// not count those as missing.
pub const RESTORED_LIST: &str = ".restored.jsonl";

/// The bookkeeping files of a run's trash folder: never restored, never counted as trash.
pub fn is_list(name: &OsStr) -> bool {
    name == REMOVED_LIST
        || name == RESTORED_LIST
        || name
            .to_str()
            .is_some_and(|n| n.starts_with(REMOVED_LIST) && n.ends_with(".tmp"))
}

/// One file of a run's list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub name: String,
    pub size: u64,
}

fn lines(items: &[Listed]) -> Vec<u8> {
    let mut buf = Vec::new();
    for item in items {
        // A String and a u64 always serialize.
        serde_json::to_writer(&mut buf, item).expect("serializable");
        buf.push(b'\n');
    }
    buf
}

/// A run's list: `None` when the run left none (older versions, or deleted by hand). Lines that
/// do not parse (the torn end of a killed run's append) are skipped: the list then says less,
/// never more, than the run did.
pub fn read_list(dir: &Folder, list: &str) -> io::Result<Option<Vec<Listed>>> {
    let bytes = match dir.read_file(OsStr::new(list), 256 << 20) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(parse_list(&bytes)))
}

fn parse_list(bytes: &[u8]) -> Vec<Listed> {
    bytes
        .split(|c| *c == b'\n')
        .filter_map(|l| serde_json::from_slice::<Listed>(l).ok())
        .collect()
}

/// Appends `items` to a run's list and flushes them to disk.
pub fn append_list(dir: &Folder, list: &str, items: &[Listed]) -> io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut f = dir.open_append(OsStr::new(list))?;
    f.write_all(&lines(items))?;
    f.sync_data()
}

/// Replaces a run's list with `items`: a temporary file, flushed, renamed over the list, and the
/// folder flushed; a reader sees the old list or the new one, never half of one.
pub fn write_list(dir: &Folder, list: &str, items: &[Listed]) -> io::Result<()> {
    let tmp = format!("{list}.{}.tmp", std::process::id());
    let tmp = OsStr::new(&tmp);
    let written = (|| {
        let mut f = dir.create_file_mode(tmp, 0o600)?;
        f.write_all(&lines(items))?;
        f.sync_all()?;
        dir.rename(tmp, OsStr::new(list))?;
        dir.sync()
    })();
    if written.is_err() {
        let _ = dir.unlink(tmp);
    }
    written
}

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
                purged.files += std::fs::read_dir(run.path())?
                    .flatten()
                    .filter(|e| !is_list(&e.file_name()))
                    .count();
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
        if !e.file_type().is_file() || is_list(e.file_name()) {
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
        if e.file_type().is_file() && !is_list(e.file_name()) {
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

    fn listed(name: &str, size: u64) -> Listed {
        Listed {
            name: name.into(),
            size,
        }
    }

    #[test]
    fn an_absent_list_is_none_not_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Folder::open(tmp.path()).unwrap();
        assert_eq!(read_list(&dir, REMOVED_LIST).unwrap(), None);
        write_list(&dir, REMOVED_LIST, &[]).unwrap();
        assert_eq!(read_list(&dir, REMOVED_LIST).unwrap(), Some(Vec::new()));
    }

    #[test]
    fn a_torn_list_keeps_its_whole_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Folder::open(tmp.path()).unwrap();
        append_list(
            &dir,
            REMOVED_LIST,
            &[listed("a.json", 2), listed("b.json", 3)],
        )
        .unwrap();
        // A run killed in the middle of a line.
        let mut bytes = std::fs::read(tmp.path().join(REMOVED_LIST)).unwrap();
        bytes.extend_from_slice(b"{\"name\":\"c.js");
        std::fs::write(tmp.path().join(REMOVED_LIST), &bytes).unwrap();
        assert_eq!(
            read_list(&dir, REMOVED_LIST).unwrap(),
            Some(vec![listed("a.json", 2), listed("b.json", 3)])
        );
    }

    #[test]
    fn writing_a_list_replaces_it_and_leaves_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Folder::open(tmp.path()).unwrap();
        append_list(&dir, REMOVED_LIST, &[listed("a.json", 2)]).unwrap();
        write_list(
            &dir,
            REMOVED_LIST,
            &[listed("a.json", 2), listed("b.json", 3)],
        )
        .unwrap();
        assert_eq!(read_list(&dir, REMOVED_LIST).unwrap().unwrap().len(), 2);
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [OsStr::new(REMOVED_LIST)]);
    }

    #[test]
    fn lists_are_not_counted_as_trash() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("trash/company_1/20261128T030000Z-1");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("session-1.0.json"), "{}").unwrap();
        std::fs::write(
            run.join(REMOVED_LIST),
            "{\"name\":\"session-1.0.json\",\"size\":2}\n",
        )
        .unwrap();
        std::fs::write(run.join(RESTORED_LIST), "").unwrap();
        assert_eq!(run_size(&run), (1, 2));
        assert_eq!(size(tmp.path(), "company_1"), (2, 1));
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
