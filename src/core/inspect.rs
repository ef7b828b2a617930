//! What `status` shows for one company: counts by type, level, creds state, last cleanup,
//! cooldown, lock holder, trash, and advice, read without changing anything.

use std::collections::BTreeMap;
use std::ffi::OsStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::classify::{self, Kind};
use crate::core::clean;
use crate::core::companies::Company;
use crate::core::folder::Folder;
use crate::core::level::{Level, Thresholds};
use crate::core::plan::Entry;
use crate::core::prekeys::{self, PreKeyCounts};
use crate::core::records::{self, CleanupMark, Sample};
use crate::core::state::StateDir;
use crate::core::{tally, trash};

#[derive(Clone, Debug, Serialize)]
pub struct CompanyStatus {
    pub company: String,
    /// Every file, as `ls | wc -l` counts them.
    pub files: usize,
    /// Pre-keys the server may still hand out (core::tally): not counted by the level.
    pub reserved_pre_keys: usize,
    /// What the level is about: `files - reserved_pre_keys`.
    pub counted: usize,
    /// `None` when the folder could not be read: never "healthy" by default.
    pub level: Option<Level>,
    pub by_type: BTreeMap<Kind, usize>,
    pub creds: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creds_problem: Option<String>,
    /// creds.json's mtime: when Baileys last wrote it (on a connect, and whenever its
    /// counters change), not when the account was last connected.
    pub creds_written: Option<DateTime<Utc>>,
    pub last_cleanup: Option<CleanupMark>,
    pub cooldown_until: Option<DateTime<Utc>>,
    pub lock_holder: Option<String>,
    pub trash_bytes: u64,
    pub trash_files: usize,
    /// Files put back by `restore` that no cleanup removes before `on_hold_until`.
    pub on_hold: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_hold_until: Option<DateTime<Utc>>,
    /// Pre-keys the server may still hand out versus the waste; none without readable counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_keys: Option<PreKeyCounts>,
    pub advice: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Sample>,
    /// The cleanups within the history's window that removed files, oldest first: the drops
    /// the trend shows (history samples are hourly; a drop inside an hour would vanish).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drops: Vec<CleanupMark>,
    /// The last cleanup's run, while its files are still in the trash (it can be undone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo_run: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CompanyStatus {
    /// An error row: the folder could not be read, or its creds.json is corrupt, unreadable or
    /// missing. Shown before any level, and never counted as healthy.
    pub fn is_problem(&self) -> bool {
        self.error.is_some() || self.creds_problem.is_some()
    }
}

/// Advice, as the spec's "Signs You Need Session Rotation": numbers, not just a verdict.
pub fn advice(
    files: usize,
    by_type: &BTreeMap<Kind, usize>,
    cleanups: &[CleanupMark],
    critical: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(last) = cleanups.last()
        && last.status == "ok"
        && last.counted_after() > critical
    {
        out.push(format!(
            "stayed at {} counted files after the last cleanup (above {critical}): consider session rotation",
            last.counted_after()
        ));
    }
    let never = crate::core::report::never_removed(by_type);
    if files >= 20 && never * 2 > files {
        let lids = by_type.get(&Kind::LidMapping).copied().unwrap_or(0);
        out.push(format!(
            "{never} of {files} counted files are never removed ({lids} lid-mapping): cleanup cannot shrink this folder much"
        ));
    }
    let recent: Vec<&CleanupMark> = cleanups
        .iter()
        .rev()
        .filter(|c| c.status == "ok")
        .take(3)
        .collect();
    if recent.len() == 3 && recent.iter().all(|c| c.removed < 5) {
        let counts: Vec<String> = recent.iter().rev().map(|c| c.removed.to_string()).collect();
        out.push(format!(
            "the last 3 cleanups removed fewer than 5 files each ({})",
            counts.join(", ")
        ));
    }
    out
}

/// The cleanups that removed files since the start of the history's first slot (all of them
/// without one). The slot, not the sample: a later run in the same hour replaces the slot's
/// sample (records::add_sample), and a drop made earlier in that hour is still in the window.
fn drops(cleanups: &[CleanupMark], history: &[Sample]) -> Vec<CleanupMark> {
    let slot = crate::core::records::HISTORY.resolution_secs;
    let since = history
        .first()
        .map_or(i64::MIN, |s| s.0.div_euclid(slot) * slot);
    cleanups
        .iter()
        .filter(|c| c.removed > 0 && c.time.timestamp() >= since)
        .cloned()
        .collect()
}

/// A folder with files but no creds.json belongs to no paired account (a logged-out or
/// removed one, a copy): reported with its size, never removed automatically.
pub fn flag_orphan(root: &Folder, company: &Company, st: &mut CompanyStatus) {
    if st.error.is_some() || st.creds != "unpaired" || st.files == 0 {
        return;
    }
    let Ok(dir) = root.open_dir(&company.dir) else {
        return;
    };
    if dir.stat(OsStr::new("creds.json")).is_ok() {
        return; // present, just not paired yet
    }
    st.creds = "missing";
    st.creds_problem = Some(crate::core::clean::MISSING_CREDS.into());
    let mut bytes = 0;
    let _ = dir.for_each_entry(|name, t| {
        if crate::core::folder::is_counted(name, t) {
            bytes += dir.stat(name).map_or(0, |m| m.size);
        }
    });
    st.advice.push(format!(
        "no creds.json: {} ({}) of no paired account, an orphan? Nothing in it is removed automatically; check it and remove the folder by hand",
        crate::core::util::plural(st.files, "file"),
        crate::core::util::fmt_bytes(bytes)
    ));
}

/// Where a company's creds are (the folder unless `from` says) and the pre-key margin that
/// judges them.
#[derive(Clone, Copy)]
pub struct CredsRule<'a> {
    pub margin: u64,
    pub from: Option<&'a clean::CredsFrom>,
}

pub fn inspect(
    root: &Folder,
    company: &Company,
    state: &StateDir,
    thresholds: &Thresholds,
    cooldown: chrono::Duration,
    creds_rule: CredsRule<'_>,
    now: DateTime<Utc>,
) -> CompanyStatus {
    let CredsRule {
        margin,
        from: creds_from,
    } = creds_rule;
    let (record, record_error) = match records::try_read_company(state, &company.name) {
        Ok(r) => (r, None),
        Err(e) => (records::CompanyRecord::default(), Some(e)),
    };
    let (trash_bytes, trash_files) = trash::size(state.path(), &company.name);
    let lock_holder = state.company_lock_holder(&company.name);
    // The trigger's and the monitor's marks, by the one rule (a mark from the future, written
    // while the clock was ahead, holds nothing back).
    let cooldown_until = crate::core::trigger::cooldown_until(&record, cooldown, now);
    let mut st = CompanyStatus {
        company: company.name.clone(),
        files: 0,
        reserved_pre_keys: 0,
        counted: 0,
        level: None,
        by_type: BTreeMap::new(),
        creds: "unknown",
        creds_problem: None,
        creds_written: None,
        last_cleanup: record.last_cleanup().cloned(),
        cooldown_until,
        lock_holder,
        trash_bytes,
        trash_files,
        on_hold: record.active_holds(now).count(),
        on_hold_until: record.active_holds(now).map(|(_, u)| *u).max(),
        pre_keys: None,
        advice: Vec::new(),
        history: record.history.clone(),
        drops: drops(&record.cleanups, &record.history),
        undo_run: record
            .last_cleanup()
            .filter(|c| c.trashed && c.removed > 0)
            .map(|c| c.run_id.clone())
            .filter(|run| {
                let dir = state.path().join(crate::core::state::TRASH_DIR);
                trash::run_size(&dir.join(&company.name).join(run)).0 > 0
            }),
        error: record_error,
    };
    let dir = match root.open_dir(&company.dir) {
        Ok(d) => d,
        Err(e) => {
            st.error = Some(format!("cannot open the folder: {e}"));
            return st;
        }
    };
    let mut entries = Vec::new();
    match clean::scan(&dir) {
        Ok(all) => {
            entries = all;
            for e in entries.iter().filter(|e| clean::counted(e)) {
                st.files += 1;
                *st.by_type.entry(e.kind).or_default() += 1;
            }
        }
        Err(e) => st.error = Some(format!("cannot read the folder: {e}")),
    }
    let creds = match creds_from {
        Some(from) => from.read(&company.name),
        None => clean::read_creds(&dir),
    };
    match creds {
        Ok(c) => {
            st.creds = c.state().as_str();
            st.creds_problem = c.problem.clone();
            st.reserved_pre_keys = tally::reserved_flags(&entries, &c, margin)
                .into_iter()
                .filter(|r| *r)
                .count();
            if let Some(guard) = c.pre_key_guard() {
                st.pre_keys = Some(pre_key_counts(
                    &dir,
                    &entries,
                    guard,
                    margin,
                    &record.cleanups,
                    now,
                ));
            }
        }
        Err(e) => {
            st.creds = "unreadable";
            st.creds_problem = Some(e);
        }
    }
    st.counted = st.files.saturating_sub(st.reserved_pre_keys);
    // An error row has no level: without readable creds the reserved pre-keys are unknown, so
    // the count says nothing (a v7 folder would read "danger", a small v6 one "healthy").
    if !st.is_problem() {
        st.level = Some(thresholds.level(st.counted));
    }
    st.creds_written = dir
        .stat(OsStr::new("creds.json"))
        .ok()
        .map(|m| m.mtime.into());
    st.advice = advice(
        st.counted,
        &st.by_type,
        &record.cleanups,
        thresholds.critical,
    );
    if let Some(c) = &st.pre_keys {
        st.advice.extend(prekeys::advice(c));
    }
    st
}

/// The server window is a fact about the server, so `pre_keys.keep = N` does not change what
/// counts as waste: it uses the configured margin (`pre_keys.margin`).
fn pre_key_counts(
    dir: &Folder,
    entries: &[Entry],
    guard: crate::core::creds::PreKeyGuard,
    margin: u64,
    cleanups: &[CleanupMark],
    now: DateTime<Utc>,
) -> PreKeyCounts {
    let ids: Vec<(u64, &Entry)> = entries
        .iter()
        .filter(|e| e.kind == Kind::PreKey && clean::counted(e))
        .filter_map(|e| Some((e.name_str().and_then(classify::pre_key_id)?, e)))
        .collect();
    let just_ids: Vec<u64> = ids.iter().map(|(id, _)| *id).collect();
    let mut counts = prekeys::count(&just_ids, guard, margin);
    let marks: Vec<(DateTime<Utc>, u64)> = cleanups
        .iter()
        .filter_map(|c| Some((c.time, c.next_pre_key_id?)))
        .collect();
    // One stat: the oldest pre-key's mtime is when it was minted.
    let oldest = ids
        .iter()
        .min_by_key(|(id, _)| *id)
        .and_then(|(id, e)| Some((*id, dir.stat(&e.name).ok()?.mtime.into())));
    counts.growth = prekeys::growth(
        guard.next_pre_key_id,
        &marks,
        oldest,
        now,
        chrono::Duration::days(7),
    );
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(removed: usize, after: usize) -> CleanupMark {
        CleanupMark {
            run_id: "r".into(),
            time: Utc::now(),
            by: "cleanup".into(),
            emergency: false,
            status: "ok".into(),
            before: after + removed,
            after,
            removed,
            trashed: true,
            identity: None,
            next_pre_key_id: None,
            reserved_after: None,
            host: None,
        }
    }

    #[test]
    fn advice_cases() {
        let mut by = BTreeMap::new();
        by.insert(Kind::LidMapping, 70);
        by.insert(Kind::Session, 20);
        let a = advice(90, &by, &[], 170);
        assert_eq!(
            a,
            vec![
                "70 of 90 counted files are never removed (70 lid-mapping): cleanup cannot shrink this folder much"
            ]
        );
        let a = advice(
            175,
            &BTreeMap::new(),
            &[mark(3, 100), mark(1, 100), mark(4, 172)],
            170,
        );
        assert_eq!(a.len(), 2, "{a:?}");
        assert!(a[0].starts_with("stayed at 172 counted files"));
        assert_eq!(
            a[1],
            "the last 3 cleanups removed fewer than 5 files each (3, 1, 4)"
        );
        assert!(
            advice(
                100,
                &BTreeMap::new(),
                &[mark(3, 100), mark(10, 100), mark(4, 100)],
                170
            )
            .is_empty()
        );
    }

    /// A trigger at 12:00:00 and a cleanup at 12:00:01: the cleanup's sample replaced the
    /// trigger's in the hour's slot, and the trigger's drop vanished from `status --history`
    /// (seen as a flaky ops test under load).
    #[test]
    fn a_drop_earlier_in_the_first_samples_hour_is_still_shown() {
        let at = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap();
        let hour = 1_800_000 * 3600;
        let mut trigger = mark(28, 2);
        trigger.time = at(hour + 10);
        let mut cleanup = mark(3, 2);
        cleanup.time = at(hour + 11);
        let history = [Sample(hour + 11, 2)];
        let shown = drops(&[trigger, cleanup], &history);
        assert_eq!(
            shown.iter().map(|d| d.removed).collect::<Vec<_>>(),
            vec![28, 3]
        );
        let mut older = mark(5, 2);
        older.time = at(hour - 1);
        assert!(drops(&[older], &history).is_empty(), "before the window");
    }
}
