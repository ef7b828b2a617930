//! What runs leave behind in the state directory for later runs and for people:
//! `runs.json` (the last run of each command, for the monitor's "is cron still running?" check)
//! and `companies/<company>.json` (recent cleanups, trigger cooldown, file-count history).
//!
//! Writers take `<state>/state.lock` (a blocking flock, held for one read-modify-write) so two
//! commands never lose each other's update; files are written atomically. A corrupt file is
//! reported and rebuilt, never a crash.
//!
//! Where the store keeps the janitor's state (`StateDir::with_shared`, issue 23), the same
//! records are documents there, so every host reads and writes one truth: a company's record
//! under (`company`, tenant), each host's runs under (`runs`, hostname). Writes are
//! compare-and-swap on the document's version, retried when another host wrote first, so no
//! update is lost. Upgrade path: while the store has no document yet, the state directory's
//! file is read, and the first write puts it into the store.

use std::ffi::OsStr;
use std::io;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::core::state::{self, Loaded, StateDir};
use crate::core::store::shared::{Doc, SharedState, Space};

pub const RUNS_FILE: &str = "runs.json";
pub const COMPANIES_DIR: &str = "companies";
const STATE_LOCK: &str = "state.lock";
/// Recent cleanups kept per company.
pub const MAX_CLEANUPS: usize = 20;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMark {
    pub last_start: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    #[serde(default)]
    pub summary: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Runs {
    #[serde(default)]
    pub cleanup: RunMark,
    #[serde(default)]
    pub trigger: RunMark,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CleanupMark {
    pub run_id: String,
    pub time: DateTime<Utc>,
    /// `cleanup`, `trigger`, `monitor`.
    pub by: String,
    pub emergency: bool,
    pub status: String,
    pub before: usize,
    pub after: usize,
    pub removed: usize,
    /// Whether the removed files went to the trash (and so can be restored).
    #[serde(default)]
    pub trashed: bool,
    /// Whose files these were (creds `me.id` / `me.lid` at the time): a restore into a folder
    /// that re-paired since is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<crate::core::creds::Identity>,
    /// creds.json's `nextPreKeyId` at the time: how fast pre-keys grow (docs/prekeys.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_pre_key_id: Option<u64>,
    /// Reserved pre-keys among `after` (core::tally); absent in records written before 0.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_after: Option<usize>,
    /// The host that ran it (`util::hostname`), where the store keeps the state: many hosts
    /// clean one store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl CleanupMark {
    /// What the levels counted after the run: files less reserved pre-keys.
    pub fn counted_after(&self) -> usize {
        self.after.saturating_sub(self.reserved_after.unwrap_or(0))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerLevel {
    Normal,
    Emergency,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerMark {
    pub time: DateTime<Utc>,
    pub level: TriggerLevel,
}

/// One point of a company's file-count history: unix seconds and files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample(pub i64, pub u32);

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompanyRecord {
    #[serde(default)]
    pub cleanups: Vec<CleanupMark>,
    #[serde(default)]
    pub trigger: Option<TriggerMark>,
    #[serde(default)]
    pub auto_cleanup: Option<DateTime<Utc>>,
    #[serde(default)]
    pub history: Vec<Sample>,
    /// Restored files no cleanup may remove before the given time (file name → until).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub holds: std::collections::BTreeMap<String, DateTime<Utc>>,
}

impl CompanyRecord {
    pub fn push_cleanup(&mut self, mark: CleanupMark) {
        self.cleanups.push(mark);
        if self.cleanups.len() > MAX_CLEANUPS {
            let extra = self.cleanups.len() - MAX_CLEANUPS;
            self.cleanups.drain(..extra);
        }
    }

    pub fn last_cleanup(&self) -> Option<&CleanupMark> {
        self.cleanups.last()
    }

    /// Puts files on hold until `until`, and forgets holds that ended before `now`.
    pub fn hold(&mut self, files: &[String], until: DateTime<Utc>, now: DateTime<Utc>) {
        self.holds.retain(|_, u| *u > now);
        for f in files {
            self.holds.insert(f.clone(), until);
        }
    }

    /// Holds still running at `now`.
    pub fn active_holds(
        &self,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = (&String, &DateTime<Utc>)> {
        self.holds.iter().filter(move |(_, u)| **u > now)
    }
}

/// How history is kept bounded: one sample per `resolution`, none older than `max_age`.
#[derive(Clone, Copy, Debug)]
pub struct HistoryPolicy {
    pub resolution_secs: i64,
    pub max_age_secs: i64,
}

pub const HISTORY: HistoryPolicy = HistoryPolicy {
    resolution_secs: 3600,
    max_age_secs: 14 * 86_400,
};

/// Adds a sample: replaces the last one if it falls in the same slot (so many appends within an
/// hour keep one point, the latest), drops samples older than the window. The history never holds
/// more than `max_age / resolution + 1` points.
pub fn add_sample(history: &mut Vec<Sample>, sample: Sample, policy: HistoryPolicy) {
    let slot = |t: i64| t.div_euclid(policy.resolution_secs);
    match history.last_mut() {
        Some(last) if slot(last.0) == slot(sample.0) => *last = sample,
        Some(last) if last.0 > sample.0 => {} // clock went back: ignore
        _ => history.push(sample),
    }
    let cutoff = sample.0 - policy.max_age_secs;
    history.retain(|s| s.0 >= cutoff);
    // Downsample whatever an older writer left: one point (the last) per slot.
    history.reverse();
    history.dedup_by_key(|s| slot(s.0));
    history.reverse();
}

/// Records a finished company cleanup (and a history point) for `status`, `restore` and the
/// trigger. Dry runs and busy companies are not recorded.
pub fn record_cleanup(
    state: &StateDir,
    r: &crate::core::report::CompanyReport,
    by: &str,
    emergency: bool,
    trashed: bool,
    now: DateTime<Utc>,
) -> io::Result<()> {
    use crate::core::report::Status;
    if r.status == Status::Busy {
        return Ok(());
    }
    // Where many hosts share the state (the store's); folders' records stay as they were.
    // (Asked here: the shared state is busy while the closure runs.)
    let host = state.has_shared().then(crate::core::util::hostname);
    // Lazy in the store: a mark and a history point lost on a server crash are a run killed
    // before it recorded them; holds are written by restore, durably (`update_company`).
    update_company_as(state, &r.company, Commit::Lazy, |rec| {
        rec.push_cleanup(CleanupMark {
            run_id: r.run_id.clone().unwrap_or_default(),
            time: now,
            by: by.to_owned(),
            emergency,
            status: if r.has_failure() {
                "failed".into()
            } else {
                "ok".into()
            },
            before: r.files_before,
            after: r.files_after,
            removed: r.removed,
            trashed,
            identity: r.identity.clone(),
            next_pre_key_id: r.next_pre_key_id,
            reserved_after: Some(r.reserved_after),
            host: host.clone(),
        });
        if r.status == Status::Ok {
            add_sample(
                &mut rec.history,
                Sample(now.timestamp(), r.files_after as u32),
                HISTORY,
            );
        }
    })
}

fn with_state_lock<T>(
    state: &StateDir,
    f: impl FnOnce(&crate::core::folder::Folder) -> io::Result<T>,
) -> io::Result<T> {
    let dir = state.folder()?;
    let lock = dir.open_rw(OsStr::new(STATE_LOCK))?;
    lock.lock()?;
    f(dir)
    // the lock is released when `lock` drops
}

fn load_or_rebuild<T: Default + serde::de::DeserializeOwned>(
    dir: &crate::core::folder::Folder,
    name: &str,
) -> T {
    match state::read_json(dir, name) {
        Loaded::Ok(v) => v,
        Loaded::Missing => T::default(),
        Loaded::Corrupt(why) => {
            warn!(file = name, problem = %why, "state file is corrupt; rebuilding it");
            T::default()
        }
    }
}

/// This host's runs (from the store's shared state where it keeps one).
pub fn read_runs(state: &StateDir) -> Runs {
    let host = crate::core::util::hostname();
    match state.with_shared(|sh| read_doc::<Runs>(sh, Space::Runs, &host)) {
        None | Some(Ok(None)) => read_local_runs(state),
        Some(Ok(Some((runs, _)))) => runs,
        Some(Err(e)) => {
            warn!(error = %e, "cannot read this host's runs from the store");
            Runs::default()
        }
    }
}

/// The runs of every host that cleans this store, by host name, sorted (this host's from the
/// state directory while the store has none of its yet); without a shared state, this host's
/// alone.
pub fn read_all_runs(state: &StateDir) -> Result<Vec<(String, Runs)>, String> {
    let listed = state.with_shared(|sh| {
        let what = sh.describe();
        sh.list(Space::Runs)
            .map_err(|e| format!("cannot read the hosts' runs from {what}: {e}"))
    });
    let Some(listed) = listed else {
        return Ok(vec![(crate::core::util::hostname(), read_runs(state))]);
    };
    let mut out: Vec<(String, Runs)> = listed?
        .into_iter()
        .map(|(host, body)| {
            let runs = parse_doc(&body, Space::Runs, &host);
            (host, runs)
        })
        .collect();
    // A host upgrading from the state directory: until its first write moves them into the
    // store, its runs are only in `runs.json` (what `read_runs` reads too).
    let host = crate::core::util::hostname();
    if !out.iter().any(|(h, _)| *h == host) {
        let local = read_local_runs(state);
        if local != Runs::default() {
            out.push((host, local));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Changes this host's runs (`util::hostname`).
pub fn update_runs(state: &StateDir, f: impl FnMut(&mut Runs)) -> io::Result<()> {
    update_runs_of(state, &crate::core::util::hostname(), f)
}

/// Changes the runs of `host` (in the store's shared state; the state directory keeps one
/// host's, whatever its name).
pub fn update_runs_of(
    state: &StateDir,
    host: &str,
    mut f: impl FnMut(&mut Runs),
) -> io::Result<()> {
    let local = || Ok(read_local_runs(state));
    if let Some(r) = state
        .with_shared(|sh| update_doc(sh, Space::Runs, host, &local, &mut f, Commit::Durable, None))
    {
        return r;
    }
    with_state_lock(state, |dir| {
        let mut runs: Runs = load_or_rebuild(dir, RUNS_FILE);
        f(&mut runs);
        state::write_json(dir, RUNS_FILE, &runs)
    })
}

fn read_local_runs(state: &StateDir) -> Runs {
    state
        .existing()
        .map(|d| load_or_rebuild(d, RUNS_FILE))
        .unwrap_or_default()
}

/// How a write to the store's shared state commits ([`SharedState::swap_lazy`]).
#[derive(Clone, Copy)]
enum Commit {
    /// Durable when it returns (holds, runs).
    Durable,
    /// May be lost on a server crash, as if the janitor had been killed just before it.
    Lazy,
}

/// Times a writer reads again after another host wrote first, before it gives up.
const SWAP_ATTEMPTS: u32 = 200;

/// A document of the shared state and its version; `None` when there is none. A body that is
/// not valid is reported and rebuilt (as a corrupt file is).
fn read_doc<T: Default + serde::de::DeserializeOwned>(
    sh: &mut dyn SharedState,
    space: Space,
    name: &str,
) -> crate::core::store::Result<Option<(T, u64)>> {
    Ok(sh
        .read(space, name)?
        .map(|doc| (parse_doc(&doc.body, space, name), doc.version)))
}

fn parse_doc<T: Default + serde::de::DeserializeOwned>(body: &[u8], space: Space, name: &str) -> T {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        warn!(space = space.as_str(), name = %name, problem = %e, "record in the store is not valid; rebuilding it");
        T::default()
    })
}

/// Read, change, compare-and-swap; again from the top when another host wrote in between, so
/// no host's update is lost. `local` is what the state directory holds, used while the store
/// has no document yet (a host upgrading from the state directory).
fn update_doc<T: Default + Serialize + serde::de::DeserializeOwned>(
    sh: &mut dyn SharedState,
    space: Space,
    name: &str,
    local: &dyn Fn() -> io::Result<T>,
    f: &mut dyn FnMut(&mut T),
    commit: Commit,
    mut hint: Option<Option<Doc>>,
) -> io::Result<()> {
    let what = sh.describe();
    let err = |e: crate::core::store::StoreError| {
        io::Error::other(format!("{} {name:?} in {what}: {e}", space.as_str()))
    };
    for attempt in 0..SWAP_ATTEMPTS {
        // The first attempt may start from what this process read lately (`StateDir::recall`):
        // if another write came in between, the swap fails and the next attempt reads.
        let current = match hint.take() {
            Some(Some(doc)) => Some((parse_doc::<T>(&doc.body, space, name), doc.version)),
            // Read lately and not there: the swap inserts it, or fails if another host did.
            Some(None) => None,
            None => read_doc::<T>(sh, space, name).map_err(err)?,
        };
        let (mut value, expected) = match current {
            Some((v, version)) => (v, Some(version)),
            None => (local()?, None),
        };
        f(&mut value);
        let body = serde_json::to_vec(&value).map_err(io::Error::other)?;
        let swapped = match commit {
            Commit::Durable => sh.swap(space, name, expected, &body),
            Commit::Lazy => sh.swap_lazy(space, name, expected, &body),
        };
        if swapped.map_err(err)? {
            return Ok(());
        }
        // Another host wrote first: read its version and apply ours on top. Back off a little
        // once it keeps happening, so two busy hosts do not spin against each other.
        if attempt > 3 {
            std::thread::sleep(std::time::Duration::from_millis(u64::from(attempt.min(50))));
        }
    }
    Err(io::Error::other(format!(
        "{} {name:?} in {what}: other hosts kept writing it; gave up after {SWAP_ATTEMPTS} attempts",
        space.as_str()
    )))
}

fn company_file(company: &str) -> String {
    format!("{company}.json")
}

/// A company's record, or why it cannot be read (a file the user cannot read is not "never
/// cleaned"). A missing state directory or record is an empty record; corrupt JSON is rebuilt.
/// From the store's shared state where it keeps one (the state directory's file while it has
/// none yet: the upgrade path).
pub fn try_read_company(state: &StateDir, company: &str) -> Result<CompanyRecord, String> {
    let read = state.with_shared(|sh| {
        let what = sh.describe();
        sh.read(Space::Company, company)
            .map_err(|e| format!("cannot read the record of {company} from {what}: {e}"))
    });
    company_from(state, company, read)
}

/// [`try_read_company`] from a read of the store already made (a cleanup reads the record and
/// the ledger together: `SharedState::read_many`); `read` is `None` where the state directory
/// holds everything.
pub fn company_from(
    state: &StateDir,
    company: &str,
    read: Option<Result<Option<Doc>, String>>,
) -> Result<CompanyRecord, String> {
    match read {
        None => try_read_local_company(state, company),
        Some(Ok(None)) => {
            // Not in the store yet (a first run): the mark written next inserts it, unread.
            state.remember(Space::Company, company, None);
            try_read_local_company(state, company)
        }
        Some(Ok(Some(doc))) => {
            let mut rec = parse_doc::<CompanyRecord>(&doc.body, Space::Company, company);
            // A cleanup's mark is written right after: it starts from this read.
            state.remember(Space::Company, company, Some(doc));
            // Holds this host set before the upgrade and has not moved yet (another host
            // wrote the record first): still holds.
            merge_holds(&mut rec, &try_read_local_company(state, company)?);
            Ok(rec)
        }
        Some(Err(why)) => Err(why),
    }
}

/// Adds `from`'s holds to `rec` (the later end wins).
fn merge_holds(rec: &mut CompanyRecord, from: &CompanyRecord) {
    for (name, until) in &from.holds {
        let end = rec.holds.entry(name.clone()).or_insert(*until);
        *end = (*end).max(*until);
    }
}

/// Once the store has a company's record, the state directory's copy keeps no holds: they were
/// carried over, and a release on any host must not find them again here.
fn forget_local_holds(state: &StateDir, company: &str) -> io::Result<()> {
    let local = try_read_local_company(state, company).map_err(io::Error::other)?;
    if local.holds.is_empty() {
        return Ok(());
    }
    with_state_lock(state, |dir| {
        let dir = dir.ensure_dir(OsStr::new(COMPANIES_DIR))?;
        let name = company_file(company);
        let mut rec: CompanyRecord = load_or_rebuild(&dir, &name);
        rec.holds.clear();
        state::write_json(&dir, &name, &rec)
    })
}

fn try_read_local_company(state: &StateDir, company: &str) -> Result<CompanyRecord, String> {
    let Some(dir) = state.existing() else {
        return Ok(CompanyRecord::default());
    };
    let dir = match dir.open_dir(OsStr::new(COMPANIES_DIR)) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(CompanyRecord::default()),
        Err(e) => {
            return Err(format!(
                "cannot open {}/{COMPANIES_DIR}: {e}",
                state.path().display()
            ));
        }
    };
    let name = company_file(company);
    match state::read_json(&dir, &name) {
        Loaded::Ok(v) => Ok(v),
        Loaded::Missing => Ok(CompanyRecord::default()),
        Loaded::Corrupt(why) if why.starts_with("cannot read") => Err(format!(
            "{why} (in {}/{COMPANIES_DIR})",
            state.path().display()
        )),
        Loaded::Corrupt(why) => {
            warn!(file = %name, problem = %why, "state file is corrupt; rebuilding it");
            Ok(CompanyRecord::default())
        }
    }
}

/// Changes a company's record: under `state.lock` in the state directory, or compare-and-swap
/// in the store's shared state (where `f` may run more than once: once per attempt, each time
/// on the freshest record).
pub fn update_company(
    state: &StateDir,
    company: &str,
    f: impl FnMut(&mut CompanyRecord),
) -> io::Result<()> {
    update_company_as(state, company, Commit::Durable, f)
}

fn update_company_as(
    state: &StateDir,
    company: &str,
    commit: Commit,
    mut f: impl FnMut(&mut CompanyRecord),
) -> io::Result<()> {
    // Unreadable is not "empty": an upgrade must not drop holds it cannot read.
    let local = || try_read_local_company(state, company).map_err(io::Error::other);
    if state.has_shared() {
        // The state directory's holds go along with every attempt (the store may already
        // hold a record another host wrote), then leave the state directory.
        let before = local()?;
        // Holds carried over are forgotten here next: that write must be durable first.
        let commit = if before.holds.is_empty() {
            commit
        } else {
            Commit::Durable
        };
        let hint = state.recall(Space::Company, company);
        let mut g = |rec: &mut CompanyRecord| {
            merge_holds(rec, &before);
            f(rec)
        };
        if let Some(r) = state
            .with_shared(|sh| update_doc(sh, Space::Company, company, &local, &mut g, commit, hint))
        {
            r?;
            return forget_local_holds(state, company);
        }
    }
    with_state_lock(state, |dir| {
        let dir = dir.ensure_dir(OsStr::new(COMPANIES_DIR))?;
        let name = company_file(company);
        let mut rec: CompanyRecord = load_or_rebuild(&dir, &name);
        f(&mut rec);
        state::write_json(&dir, &name, &rec)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: HistoryPolicy = HistoryPolicy {
        resolution_secs: 3600,
        max_age_secs: 86_400,
    };

    #[test]
    fn history_stays_bounded() {
        let mut h = Vec::new();
        for i in 0..100_000i64 {
            add_sample(&mut h, Sample(1_000_000 + i * 60, i as u32), P);
        }
        assert!(h.len() <= 25, "{}", h.len());
        assert_eq!(h.last().unwrap().1, 99_999);
        assert!(h.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn same_slot_replaces() {
        let mut h = vec![Sample(3600, 1)];
        add_sample(&mut h, Sample(3700, 2), P);
        assert_eq!(h, vec![Sample(3700, 2)]);
        add_sample(&mut h, Sample(7300, 3), P);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn records_round_trip_and_corrupt_files_are_rebuilt() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::new(tmp.path().join("state"));
        update_company(&state, "company_1", |r| r.auto_cleanup = Some(Utc::now())).unwrap();
        assert!(
            try_read_company(&state, "company_1")
                .unwrap()
                .auto_cleanup
                .is_some()
        );
        std::fs::write(
            tmp.path().join("state/companies/company_1.json"),
            "{garbage",
        )
        .unwrap();
        assert_eq!(
            try_read_company(&state, "company_1").unwrap(),
            CompanyRecord::default()
        );
        update_company(&state, "company_1", |r| r.history.push(Sample(1, 2))).unwrap();
        assert_eq!(
            try_read_company(&state, "company_1").unwrap().history,
            vec![Sample(1, 2)]
        );
        update_runs(&state, |r| r.trigger.summary = "x".into()).unwrap();
        assert_eq!(read_runs(&state).trigger.summary, "x");
    }

    #[test]
    fn the_host_is_recorded_where_the_store_keeps_the_state_only() {
        let tmp = tempfile::tempdir().unwrap();
        let mut report = crate::core::report::CompanyReport::new("company_1");
        report.run_id = Some("r1".into());
        let folder = StateDir::new(tmp.path().join("folder"));
        record_cleanup(&folder, &report, "cleanup", false, true, Utc::now()).unwrap();
        let rec = try_read_company(&folder, "company_1").unwrap();
        assert_eq!(rec.last_cleanup().unwrap().host, None);
        let text =
            std::fs::read_to_string(tmp.path().join("folder/companies/company_1.json")).unwrap();
        assert!(!text.contains("host"), "{text}");

        let store = StateDir::new(tmp.path().join("store"));
        store.share(Box::new(
            crate::core::store::memory_state::MemoryState::new(),
        ));
        record_cleanup(&store, &report, "cleanup", false, true, Utc::now()).unwrap();
        let rec = try_read_company(&store, "company_1").unwrap();
        assert_eq!(
            rec.last_cleanup().unwrap().host,
            Some(crate::core::util::hostname())
        );
        assert!(store.existing().is_none(), "nothing in the state directory");
    }

    /// A first run reads the record, finds none, and writes its mark without reading again;
    /// if another host inserted the record in between, the insert fails and the mark goes on
    /// top of that host's record (its hold kept).
    #[test]
    fn a_record_read_as_absent_is_inserted_without_a_second_read() {
        let tmp = tempfile::tempdir().unwrap();
        let shared = crate::core::store::memory_state::MemoryState::new();
        let store = StateDir::new(tmp.path().join("store"));
        store.share(Box::new(shared.clone()));
        let now = Utc::now();
        let mut report = crate::core::report::CompanyReport::new("company_1");
        report.run_id = Some("r1".into());
        let read = |c: &str| {
            Some(Ok(store
                .with_shared(|sh| sh.read(Space::Company, c))
                .unwrap()
                .unwrap()))
        };
        company_from(&store, "company_1", read("company_1")).unwrap();
        let reads = shared.reads();
        record_cleanup(&store, &report, "cleanup", false, true, now).unwrap();
        assert_eq!(
            shared.reads(),
            reads,
            "inserted on the strength of the first read"
        );
        assert_eq!(
            try_read_company(&store, "company_1")
                .unwrap()
                .last_cleanup()
                .unwrap()
                .run_id,
            "r1"
        );

        company_from(&store, "company_2", read("company_2")).unwrap();
        let other = StateDir::new(tmp.path().join("other"));
        other.share(Box::new(shared.clone()));
        update_company(&other, "company_2", |r| {
            r.hold(
                &["session-1.json".into()],
                now + chrono::Duration::days(1),
                now,
            )
        })
        .unwrap();
        report.company = "company_2".into();
        record_cleanup(&store, &report, "cleanup", false, true, now).unwrap();
        let rec = try_read_company(&store, "company_2").unwrap();
        assert_eq!(rec.last_cleanup().unwrap().run_id, "r1");
        assert_eq!(
            rec.active_holds(now).count(),
            1,
            "the other host's hold is kept"
        );
    }

    /// Only what a crash may lose harmlessly is written lazily: a cleanup's mark and history.
    /// Holds (restore) and runs stay durable.
    #[test]
    fn only_cleanup_marks_are_written_lazily() {
        let tmp = tempfile::tempdir().unwrap();
        let shared = crate::core::store::memory_state::MemoryState::new();
        let store = StateDir::new(tmp.path().join("store"));
        store.share(Box::new(shared.clone()));
        let now = Utc::now();
        update_company(&store, "company_1", |r| {
            r.hold(
                &["session-1.json".into()],
                now + chrono::Duration::days(1),
                now,
            )
        })
        .unwrap();
        update_runs(&store, |_| {}).unwrap();
        assert_eq!(shared.lazy_swaps(), 0, "holds and runs are durable");
        let mut report = crate::core::report::CompanyReport::new("company_1");
        report.run_id = Some("r1".into());
        record_cleanup(&store, &report, "cleanup", false, true, now).unwrap();
        assert_eq!(shared.lazy_swaps(), 1, "the cleanup's mark is lazy");
        let rec = try_read_company(&store, "company_1").unwrap();
        assert_eq!(rec.last_cleanup().unwrap().run_id, "r1");
        assert_eq!(rec.active_holds(now).count(), 1, "the hold is still there");

        // Holds the state directory still keeps are carried into the store by the cleanup's
        // write and then forgotten there: that write is durable.
        let upgrading = StateDir::new(tmp.path().join("upgrading"));
        update_company(&upgrading, "company_1", |r| {
            r.hold(
                &["session-1.json".into()],
                now + chrono::Duration::days(1),
                now,
            )
        })
        .unwrap();
        let shared = crate::core::store::memory_state::MemoryState::new();
        upgrading.share(Box::new(shared.clone()));
        record_cleanup(&upgrading, &report, "cleanup", false, true, now).unwrap();
        assert_eq!(shared.lazy_swaps(), 0, "carrying holds over is durable");
        let rec = try_read_company(&upgrading, "company_1").unwrap();
        assert_eq!(rec.active_holds(now).count(), 1);
    }

    #[test]
    fn cleanups_are_capped() {
        let mut r = CompanyRecord::default();
        for i in 0..50 {
            r.push_cleanup(CleanupMark {
                run_id: i.to_string(),
                time: Utc::now(),
                by: "cleanup".into(),
                emergency: false,
                status: "ok".into(),
                before: 1,
                after: 1,
                removed: 0,
                trashed: true,
                identity: None,
                next_pre_key_id: None,
                reserved_after: None,
                host: None,
            });
        }
        assert_eq!(r.cleanups.len(), MAX_CLEANUPS);
        assert_eq!(r.last_cleanup().unwrap().run_id, "49");
    }

    #[test]
    fn holds_expire_and_renew() {
        let t = |h: i64| DateTime::<Utc>::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap();
        let mut r = CompanyRecord::default();
        r.hold(&["a".into(), "b".into()], t(10), t(0));
        assert_eq!(r.active_holds(t(5)).count(), 2);
        assert_eq!(r.active_holds(t(10)).count(), 0);
        r.hold(&["c".into()], t(30), t(20));
        assert_eq!(r.holds.keys().collect::<Vec<_>>(), vec!["c"]);
    }
}
