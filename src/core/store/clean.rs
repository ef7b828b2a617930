//! Cleaning one tenant of a database store with the folder planner's rules:
//! lock → creds → stream rows (ages from a column, the value, or the ledger) → plan → remove in
//! small re-checked transactions, trash first → ledger → report.
//!
//! Each row becomes the planner [`Entry`] Baileys' file store would have written for it
//! (`<type>-<fixFileName(id)>.json`), so classification, pre-key guards, identity/session and
//! own-sender-key/memory pairs are the folder rules, unchanged.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tracing::{info, warn};

use super::ledger::Ledger;
use super::shared::{Space, TrashTag};
use super::{KeyRef, Planned, RemoveOutcome, Store, TenantLock, Token, TrashRow, TrashTarget};
use crate::core::classify::{self, Kind};
use crate::core::clean::CleanSpec;
use crate::core::creds::{self, Creds};
use crate::core::execute::{self, Execution, Outcome, Removal, Remover};
use crate::core::folder::EntryType;
use crate::core::lock::{self, LockAttempt, LockGuard};
use crate::core::plan::{self, Action, Entry, Stat};
use crate::core::report::{CompanyReport, FileDecision, FileNote, Status};
use crate::core::state::StateDir;
use crate::core::state::{LOCKS_DIR, TRASH_DIR};
use crate::core::util::sanitize;

/// Rows per removal transaction: small, so the app never waits long for a row we hold.
pub const BATCH: usize = 100;
/// The trash file of a store run, in `<state>/trash/<tenant>/<run>/`.
pub const TRASH_ROWS: &str = "rows.jsonl";

/// What decided a row's age.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The layout's `updated_at` column.
    UpdatedAt,
    /// A timestamp inside the value (a session's newest `indexInfo.used`).
    Value,
    /// The janitor's ledger: unchanged since we first saw it (or saw it change).
    Ledger,
    /// An identity key: its session's clock.
    Session,
}

impl Clock {
    pub fn as_str(self) -> &'static str {
        match self {
            Clock::UpdatedAt => "updated_at column",
            Clock::Value => "session's last use",
            Clock::Ledger => "unchanged in the janitor's ledger",
            Clock::Session => "its session's last use",
        }
    }
}

/// How to clean a store, beyond the folder [`CleanSpec`].
#[derive(Clone, Debug)]
pub struct StoreCleanSpec {
    pub clean: CleanSpec,
    /// A secret-free key naming the store in the state directory (ledger, locks).
    pub store_key: String,
    /// Also remove per-type rows whose key_type Baileys never reads (`app`, `lid`, `pre`, …).
    pub remove_legacy: bool,
    /// Also remove every key of an orphan tenant (one whose account is gone, e.g. an Evolution
    /// hash without an "Instance" row); without it orphans are only reported.
    pub remove_orphans: bool,
    pub batch: usize,
}

struct RowInfo {
    key: KeyRef,
    /// What the row looked like; `None` only in a dry run (which removes nothing), for rows whose
    /// age came from a column or the value.
    token: Option<Token>,
    clock: Clock,
    legacy: bool,
}

/// The newest `_sessions[*].indexInfo.used` of a libsignal session record (ms since the epoch).
pub fn session_last_used(value: &str) -> Option<i64> {
    #[derive(Deserialize)]
    struct Rec {
        #[serde(rename = "_sessions")]
        sessions: HashMap<String, Sess>,
    }
    #[derive(Deserialize)]
    struct Sess {
        #[serde(rename = "indexInfo")]
        index_info: Info,
    }
    #[derive(Deserialize)]
    struct Info {
        used: Option<f64>,
        created: Option<f64>,
    }
    let rec: Rec = serde_json::from_str(value).ok()?;
    rec.sessions
        .values()
        .filter_map(|s| s.index_info.used.or(s.index_info.created))
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| v as i64)
        .max()
}

/// The planner's name for a row, or `None` when the row is not a Baileys key of a known type
/// (the name must classify back to the same type, so an odd id can never pose as another type).
pub fn planner_name(key_type: &str, id: &str) -> Option<String> {
    planner_file(key_type, id).map(|(name, _)| name)
}

/// [`planner_name`] and the kind it classifies as (classified once, for the row's entry).
fn planner_file(key_type: &str, id: &str) -> Option<(String, Kind)> {
    let mut name = String::with_capacity(key_type.len() + id.len() + 8);
    name.push_str(key_type);
    name.push('-');
    super::fix_file_name_into(&mut name, id);
    name.push_str(".json");
    let kind = classify::classify(&name);
    (kind != Kind::Unknown && kind != Kind::Bak && kind != Kind::Temp && kind.as_str() == key_type)
        .then_some((name, kind))
}

/// The name a row's hold is recorded under in `companies/<tenant>.json`: the planner's name
/// (`session-5511.0.json`), or `<type>-<id>` for a row the planner does not know.
pub fn hold_name(key_type: &str, id: &str) -> String {
    planner_name(key_type, id).unwrap_or_else(|| format!("{key_type}-{id}"))
}

/// One of the ten key types of Baileys' `SignalDataTypeMap`.
pub fn is_baileys_type(t: &str) -> bool {
    classify::ALL_KINDS.iter().any(|k| {
        k.as_str() == t && !matches!(k, Kind::Creds | Kind::Bak | Kind::Temp | Kind::Unknown)
    })
}

/// How long every key of an orphan must have been unchanged before `--remove-orphans` removes
/// it: a live account keeps writing (sessions, pre-keys) within hours.
pub const ORPHAN_QUIET: Duration = Duration::from_secs(7 * 86_400);

/// A value Baileys' BufferJSON or libsignal wrote: a Buffer object or a session record.
pub fn looks_like_signal(value: &str) -> bool {
    value.contains("\"Buffer\"") || value.contains("\"_sessions\"")
}

/// Refuses `--remove-orphans` when most tenants of the store look orphaned: then a wrong
/// `--creds` database or key pattern is far more likely than that many deleted accounts.
pub fn orphan_majority(store: &mut dyn Store, tenants: &[String]) -> Result<(), String> {
    let orphans = tenants.iter().filter(|t| store.orphan(t).is_some()).count();
    if orphans > 0 && orphans * 2 > tenants.len() {
        return Err(format!(
            "{orphans} of {} tenants look orphaned: more likely a wrong --creds database or --key-pattern than deleted accounts; nothing removed (check them with `status`)",
            tenants.len()
        ));
    }
    Ok(())
}

/// Tenant names become folder names in the state directory (trash, records).
pub fn safe_tenant_name(t: &str) -> bool {
    !t.is_empty()
        && t != "."
        && t != ".."
        && !t.contains('/')
        && !t.chars().any(char::is_control)
        && t.len() <= 200
}

fn secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn at_micros(us: i64) -> SystemTime {
    if us >= 0 {
        UNIX_EPOCH + Duration::from_micros(us as u64)
    } else {
        UNIX_EPOCH
    }
}

/// What a cleanup would do to one tenant, for `status`: a dry run of [`clean_tenant`] that
/// logs nothing (a status is not a cleanup, and must not read like one in the journal).
pub fn inspect_tenant(
    store: &mut dyn Store,
    tenant: &str,
    state: &StateDir,
    spec: &StoreCleanSpec,
) -> CompanyReport {
    let mut dry = spec.clone();
    dry.clean.dry_run = true;
    clean_tenant_quietly(store, tenant, state, &dry)
}

/// [`clean_tenant`], and while the tenant is busy, again every half second until `wait` has
/// passed (the tenant's lock lives in the store too: polled, quietly).
pub fn clean_tenant_waiting(
    store: &mut dyn Store,
    tenant: &str,
    state: &StateDir,
    spec: &StoreCleanSpec,
    wait: Duration,
) -> CompanyReport {
    let deadline = Instant::now() + wait;
    let mut report = clean_tenant_quietly(store, tenant, state, spec);
    while report.status == Status::Busy && Instant::now() < deadline {
        std::thread::sleep(
            Duration::from_millis(500).min(deadline.saturating_duration_since(Instant::now())),
        );
        report = clean_tenant_quietly(store, tenant, state, spec);
    }
    log_tenant(tenant, &report, spec);
    report
}

/// Cleans one tenant. Never panics on bad data; every problem ends up in the report.
pub fn clean_tenant(
    store: &mut dyn Store,
    tenant: &str,
    state: &StateDir,
    spec: &StoreCleanSpec,
) -> CompanyReport {
    let report = clean_tenant_quietly(store, tenant, state, spec);
    log_tenant(tenant, &report, spec);
    report
}

fn log_tenant(tenant: &str, report: &CompanyReport, spec: &StoreCleanSpec) {
    match report.status {
        Status::Ok => info!(
            company = %tenant,
            before = report.files_before,
            after = report.files_after,
            removed = report.removed,
            dry_run = spec.clean.dry_run,
            "tenant cleaned"
        ),
        _ => {
            warn!(company = %tenant, error = report.error.as_deref().unwrap_or(""), "tenant not cleaned")
        }
    }
}

fn clean_tenant_quietly(
    store: &mut dyn Store,
    tenant: &str,
    state: &StateDir,
    spec: &StoreCleanSpec,
) -> CompanyReport {
    let started = Instant::now();
    if !safe_tenant_name(tenant) {
        return CompanyReport::failed(
            &sanitize(OsStr::new(tenant)),
            "tenant name cannot be used as a folder name in the state directory: skipped",
        );
    }
    let mut report = CompanyReport::new(tenant);
    // A dry run takes no lock and writes nothing.
    let _local = if spec.clean.dry_run {
        None
    } else {
        match local_lock(store, state, &spec.store_key, tenant, &spec.clean.holder) {
            Ok(Ok(g)) => g,
            Ok(Err(holder)) => {
                report.status = Status::Busy;
                report.lock_holder = Some(holder);
                return report;
            }
            Err(e) => return CompanyReport::failed(tenant, e),
        }
    };
    if !spec.clean.dry_run {
        match store.lock_tenant(tenant) {
            Ok(TenantLock::Acquired) => {}
            Ok(TenantLock::Busy(holder)) => {
                report.status = Status::Busy;
                report.lock_holder = Some(holder);
                return report;
            }
            Err(e) => return CompanyReport::failed(tenant, e.to_string()),
        }
    }
    clean_locked(store, tenant, state, spec, &mut report);
    if !spec.clean.dry_run {
        store.unlock_tenant(tenant);
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

/// The tenant's lock file in the state directory, taken beside the store's own lock (cleanup,
/// restore): `Ok(Ok(None))` where the store's lock already excludes every process
/// ([`Store::tenant_lock_excludes_every_process`]), so no file is made; `Ok(Err(holder))` when
/// another process holds it.
pub(crate) fn local_lock(
    store: &dyn Store,
    state: &StateDir,
    store_key: &str,
    tenant: &str,
    holder: &str,
) -> Result<Result<Option<LockGuard>, String>, String> {
    if store.tenant_lock_excludes_every_process() {
        return Ok(Ok(None));
    }
    let locks = state
        .subdir(LOCKS_DIR)
        .map_err(|e| format!("cannot open the lock folder: {e}"))?;
    // Fits a file name whatever the tenant's name (ledger::file_stem hashes long ones).
    let name = format!("{store_key}-{}.lock", super::ledger::file_stem(tenant));
    match lock::try_lock(&locks, OsStr::new(&name), holder) {
        Ok(LockAttempt::Acquired(g)) => Ok(Ok(Some(g))),
        Ok(LockAttempt::Busy(h)) => Ok(Err(h.unwrap_or_else(|| "unknown".into()))),
        Err(e) => Err(format!("cannot take the lock: {e}")),
    }
}

fn clean_locked(
    store: &mut dyn Store,
    tenant: &str,
    state: &StateDir,
    spec: &StoreCleanSpec,
    report: &mut CompanyReport,
) {
    let now = spec.clean.now;
    let creds_bytes = match store.creds(tenant) {
        Ok(b) => b,
        Err(e) => {
            *report = CompanyReport::failed(tenant, e.to_string());
            return;
        }
    };
    let creds = match &creds_bytes {
        Some(bytes) => creds::parse(bytes),
        None => Creds::missing(),
    };
    report.creds = Some(creds.state().as_str());
    // Valid creds settle that the tenant is Baileys' (a Signal-shaped value is only asked
    // without them): the dry run's scan and the decision below must agree on it.
    let creds_valid = creds.present && !creds.is_corrupt();
    // Recorded with the run, so `restore` can refuse to put these rows into a re-paired account.
    report.identity = creds::Identity::of(&creds);
    // The tenant's record and ledger in one round trip, where the store keeps them.
    let (record_read, ledger_read) = match state.with_shared(|sh| {
        let what = sh.describe();
        sh.read_many(&[(Space::Company, tenant), (Space::Ledger, tenant)])
            .map_err(|e| format!("cannot read the record of {tenant} from {what}: {e}"))
    }) {
        None => (None, None),
        Some(Ok(docs)) => {
            let mut docs = docs.into_iter();
            let (record, ledger) = (docs.next().flatten(), docs.next().flatten());
            (Some(Ok(record)), Some(Ok(ledger)))
        }
        Some(Err(why)) => (Some(Err(why)), None),
    };
    // Rows put back by `restore` stay until their hold ends (as files do in folders).
    let record = match crate::core::records::company_from(state, tenant, record_read) {
        Ok(r) => r,
        Err(why) => {
            *report = CompanyReport::failed(
                tenant,
                format!("{why}; holds of restored rows unknown, nothing changed"),
            );
            return;
        }
    };
    report.next_pre_key_id = creds.next_pre_key_id;
    if creds.present {
        report.files_before += 1;
        *report.files_by_type.entry(Kind::Creds).or_default() += 1;
    }

    let mut ledger = Ledger::load_from(state, &spec.store_key, tenant, ledger_read);
    if spec.clean.dry_run {
        ledger = ledger.answering_only();
    }
    // Baileys rewrites creds on every connect: its last change is the account's activity too.
    let creds_changed = creds_bytes.as_deref().map(|b| {
        let seen = ledger.observe("creds", "", super::fingerprint(b), secs(now));
        UNIX_EPOCH + Duration::from_secs(seen.last_changed.max(0) as u64)
    });
    let legacy_aware = store.reports_legacy_rows();
    let mut entries: Vec<Entry> = Vec::new();
    let mut infos: Vec<RowInfo> = Vec::new();
    let now_s = secs(now);
    let mut signal_shaped = false;
    let compares_md5 = store.compares_md5();
    let mut visit = |row: super::RawRow<'_>| {
        // One Signal-shaped value settles it: the rest are not searched.
        if !signal_shaped {
            signal_shaped = looks_like_signal(row.value);
        }
        // A real run fingerprints every row (its removal token, the ledger's history); a dry
        // run only those the ledger dates: hashing every value was a tenth of a dry run.
        let mut token = (!spec.clean.dry_run)
            .then(|| Token::for_store(row.value, row.updated_at_us, compares_md5));
        let mut hash = || {
            token
                .get_or_insert_with(|| Token::of(row.value, row.updated_at_us))
                .hash
        };
        let file = planner_file(row.key_type, row.id);
        let legacy = file.is_none() && legacy_aware && !is_baileys_type(row.key_type);
        // A session is as old as its newest sign of life: an `updated_at` column that no
        // trigger maintains keeps the insert time while the session is used every minute, so
        // its own `indexInfo.used` wins when it is newer (the younger age is the safe one).
        let used_us = (row.key_type == "session")
            .then(|| session_last_used(row.value))
            .flatten()
            .map(|ms| ms.saturating_mul(1000));
        let (mtime, clock) = if let Some(us) = row.updated_at_us
            && used_us.is_none_or(|used| used <= us)
        {
            (at_micros(us), Clock::UpdatedAt)
        } else if let Some(us) = used_us {
            (at_micros(us), Clock::Value)
        } else {
            let seen = ledger.observe(row.key_type, row.id, hash(), now_s);
            (
                UNIX_EPOCH + Duration::from_secs(seen.last_changed.max(0) as u64),
                Clock::Ledger,
            )
        };
        // A row with a clock of its own is not recorded: the ledger would only matter if the
        // clock went away, and then the row starts at age 0 (younger is the safe side). Recording
        // every row cost a PostgreSQL cleanup a 12 KB document per tenant, rewritten each run.
        let (name, kind) =
            file.unwrap_or_else(|| (format!("{}-{}", row.key_type, row.id), Kind::Unknown));
        // `hold_name`, without building it again: the planner's name, or `<type>-<id>`.
        let held_until = if record.holds.is_empty() {
            None
        } else {
            record.holds.get(&name).map(|until| (*until).into())
        };
        let entry = Entry {
            name: name.into(),
            entry_type: EntryType::File,
            kind,
            stat: Some(Stat::row(row.size(), mtime)),
            held_until,
        };
        entries.push(entry);
        infos.push(RowInfo {
            key: KeyRef {
                key_type: row.key_type.to_owned(),
                id: row.id.to_owned(),
            },
            token,
            clock,
            legacy,
        });
    };
    // A dry run of an account with valid creds needs only the values that date a row: that the
    // tenant is Baileys' is settled by its creds, not by a Signal-shaped value (a real run
    // reads them all: each planned row's removal token).
    let scanned = if spec.clean.dry_run && creds_valid {
        store.scan_for_plan(tenant, &mut visit)
    } else {
        store.scan(tenant, &mut visit)
    };
    if let Err(e) = scanned {
        *report = CompanyReport::failed(tenant, e.to_string());
        return;
    }
    // An identity key is saved when its session is made: without a clock of its own it is as old
    // as the session of the same address (it goes only with that session anyway).
    let sessions: HashMap<&str, usize> = infos
        .iter()
        .enumerate()
        .filter(|(_, r)| r.key.key_type == "session")
        .map(|(i, r)| (r.key.id.as_str(), i))
        .collect();
    let mut borrowed = Vec::new();
    for (i, r) in infos.iter().enumerate() {
        if r.key.key_type == "identity-key"
            && r.clock == Clock::Ledger
            && let Some(&s) = sessions.get(r.key.id.as_str())
            && infos[s].clock != Clock::Ledger
        {
            borrowed.push((i, s));
        }
    }
    for (i, s) in borrowed {
        entries[i].stat = entries[s].stat.map(|m| Stat {
            size: entries[i].stat.map_or(0, |x| x.size),
            ..m
        });
        infos[i].clock = Clock::Session;
    }
    for (e, info) in entries.iter().zip(&infos) {
        report.files_before += 1;
        let kind = if info.legacy { Kind::Unknown } else { e.kind };
        *report.files_by_type.entry(kind).or_default() += 1;
    }
    let mut reserved =
        crate::core::tally::reserved_flags(&entries, &creds, spec.clean.rules.pre_key_margin);
    for (r, info) in reserved.iter_mut().zip(&infos) {
        *r &= !info.legacy;
    }
    report.reserved_before = reserved.iter().filter(|r| **r).count();
    report.reserved_after = report.reserved_before;
    report.last_activity = plan::last_activity(&entries, now)
        .max(creds_changed.filter(|t| !plan::from_the_future(*t, now)))
        .map(|t| t.min(now).into());
    if creds.is_corrupt() {
        let problem = creds.problem.clone().unwrap_or_default();
        report.status = Status::Failed;
        report.error = Some(format!(
            "{problem}; tenant skipped, nothing changed (restore the creds row or re-pair)"
        ));
        report.files_after = report.files_before;
        return;
    }

    let plan = plan::plan_with_activity(&entries, &creds, &spec.clean.rules, now, creds_changed);
    let mut order = plan.removal_order(&entries);
    let legacy_rows: Vec<usize> = (0..infos.len()).filter(|&i| infos[i].legacy).collect();
    if spec.remove_legacy {
        order.extend(&legacy_rows);
    }
    // Only an account's keys are ever touched: a hash or table that holds neither Baileys creds
    // nor any Signal-shaped value is another application's (a `*:auth` pattern matches more
    // than Baileys), whatever its field names say.
    let baileys = creds_valid || signal_shaped;
    if !baileys && !entries.is_empty() {
        order.clear();
        report.skipped_files.push(FileNote {
            file: "(tenant)".into(),
            reason: "not a Baileys auth store (no creds, no Signal-shaped value): left alone"
                .into(),
        });
    }
    // An orphan's keys belong to no account: all of them go with --remove-orphans, none without,
    // and never while any of them still changes (a live account misread as an orphan, e.g.
    // through a wrong --creds database, keeps writing).
    let orphan = if baileys { store.orphan(tenant) } else { None };
    let youngest = entries
        .iter()
        .filter_map(|e| {
            e.stat
                .map(|m| now.duration_since(m.mtime).unwrap_or_default())
        })
        .min();
    let orphan_goes = spec.remove_orphans && youngest.is_none_or(|age| age >= ORPHAN_QUIET);
    if let Some(why) = &orphan {
        order = if orphan_goes {
            let mut all: Vec<usize> = (0..entries.len()).collect();
            all.sort_by_key(|&i| plan::requirement_rank(entries[i].kind));
            all
        } else {
            Vec::new()
        };
        report.skipped_files.push(FileNote {
            file: "(tenant)".into(),
            reason: if orphan_goes {
                format!("orphan ({why}): every key removed (--remove-orphans)")
            } else if spec.remove_orphans {
                format!(
                    "orphan ({why}): a key changed {} ago, so it may be live: nothing removed (an orphan goes after {} without a change)",
                    crate::core::util::fmt_duration(youngest.unwrap_or_default()),
                    crate::core::util::fmt_duration(ORPHAN_QUIET)
                )
            } else {
                format!("orphan ({why}): nothing removed (remove it with --remove-orphans)")
            },
        });
    }
    let shown = |i: usize| -> String {
        let k = &infos[i].key;
        if infos[i].legacy {
            // Not `<type>-<id>`: `pre` + `key-5` would read as the real pre-key 5.
            sanitize(OsStr::new(&format!("{}/{}", k.key_type, k.id)))
        } else if k.key_type.is_empty() {
            sanitize(OsStr::new(&k.id))
        } else {
            sanitize(OsStr::new(&format!("{}-{}", k.key_type, k.id)))
        }
    };
    if spec.clean.verbose {
        report.decisions = (0..entries.len())
            .map(|i| {
                let d = &plan.decisions[i];
                let (action, reason) = if !baileys {
                    ("keep", "not a Baileys auth store: left alone".to_owned())
                } else if let Some(why) = &orphan {
                    if orphan_goes {
                        (
                            "remove",
                            format!("orphan tenant ({why}) (--remove-orphans)"),
                        )
                    } else {
                        (
                            "keep",
                            format!("orphan tenant ({why}): kept (remove with --remove-orphans)"),
                        )
                    }
                } else if infos[i].legacy {
                    let why = format!(
                        "key_type {:?} is a leftover Baileys never reads",
                        infos[i].key.key_type
                    );
                    if spec.remove_legacy {
                        ("remove", format!("{why} (--legacy-rows)"))
                    } else {
                        ("keep", format!("{why}: kept (remove with --legacy-rows)"))
                    }
                } else {
                    let action = match d.action {
                        Action::Keep => "keep",
                        Action::Remove => "remove",
                    };
                    let clocked =
                        !matches!(d.reason, plan::Reason::Protected(_) | plan::Reason::Unknown)
                            && entries[i].kind != Kind::PreKey;
                    if clocked {
                        (
                            action,
                            format!("{} [age: {}]", d.reason, infos[i].clock.as_str()),
                        )
                    } else {
                        (action, d.reason.to_string())
                    }
                };
                FileDecision {
                    file: shown(i),
                    kind: if infos[i].legacy {
                        Kind::Unknown
                    } else {
                        entries[i].kind
                    },
                    action,
                    reason,
                }
            })
            .collect();
    }
    report.run_id = Some(spec.clean.run_id.clone());

    let removal = |i: usize| Removal {
        shown: shown(i),
        kind: if infos[i].legacy {
            Kind::Unknown
        } else {
            entries[i].kind
        },
        size: entries[i].stat.map_or(0, |m| m.size),
        reserved: reserved[i],
        // An orphan's keys all go together: no pair holds one back.
        requires: if orphan.is_some() {
            &[]
        } else {
            &plan.decisions[i].requires
        },
    };
    let how = Execution {
        dry_run: spec.clean.dry_run,
        batch: spec.batch,
        pause_before_remove: spec.clean.pause_before_remove,
    };
    // Nothing is written until a row goes: a dry run leaves the trash and the ledger alone.
    let trash = trash_route(store, state, tenant, spec);
    let mut remover = StoreRemover {
        store,
        state,
        tenant,
        infos: &infos,
        ledger: &mut ledger,
        trash,
    };
    let longest = execute::execute(entries.len(), &removal, &order, how, &mut remover, report);
    if spec.clean.dry_run {
        return;
    }
    report.longest_transaction_us = Some(longest.as_micros() as u64);
    if let Err(e) = ledger.save(state, &spec.store_key, tenant) {
        warn!(company = %tenant, error = %e, "cannot write the ledger; ages restart next run");
    }
}

/// Where a run's removed rows go.
enum TrashRoute<'a> {
    /// `--no-trash`.
    Nowhere,
    /// The store's shared state, in the transaction that deletes them.
    InStore(TrashTag),
    /// The store's shared state, made durable (`put_trash`) before the deleting transaction
    /// commits.
    Shared(TrashTag),
    /// `<state>/trash/<tenant>/<run>/rows.jsonl`, fsync'd before the commit (no shared state).
    Local(TrashWriter<'a>),
}

fn trash_route<'a>(
    store: &dyn Store,
    state: &'a StateDir,
    tenant: &'a str,
    spec: &'a StoreCleanSpec,
) -> TrashRoute<'a> {
    if !spec.clean.trash {
        return TrashRoute::Nowhere;
    }
    if !state.has_shared() {
        return TrashRoute::Local(TrashWriter::new(state, tenant, &spec.clean.run_id));
    }
    let tag = TrashTag {
        run_id: spec.clean.run_id.clone(),
        host: crate::core::util::hostname(),
        removed_at: spec.clean.now.into(),
    };
    if store.trash_in_transaction() {
        TrashRoute::InStore(tag)
    } else {
        TrashRoute::Shared(tag)
    }
}

/// Removes one batch of rows in one re-checked transaction (a compare-delete script on Redis),
/// trash first; forgets removed rows in the ledger.
struct StoreRemover<'a> {
    store: &'a mut dyn Store,
    state: &'a StateDir,
    tenant: &'a str,
    infos: &'a [RowInfo],
    ledger: &'a mut Ledger,
    trash: TrashRoute<'a>,
}

impl Remover for StoreRemover<'_> {
    fn remove(&mut self, batch: &[usize]) -> Vec<Outcome> {
        let planned: Vec<Planned> = batch
            .iter()
            .map(|&i| Planned {
                key: self.infos[i].key.clone(),
                token: self.infos[i]
                    .token
                    .expect("a real run fingerprints every row"),
            })
            .collect();
        let (state, tenant) = (self.state, self.tenant);
        crate::core::fault::point("store.before_batch");
        let removed = match &mut self.trash {
            TrashRoute::Nowhere => self
                .store
                .remove(tenant, &planned, &mut TrashTarget::Nowhere),
            TrashRoute::InStore(tag) => {
                self.store
                    .remove(tenant, &planned, &mut TrashTarget::InStore(tag))
            }
            TrashRoute::Shared(tag) => {
                let mut put = |rows: &[TrashRow]| {
                    state
                        .with_shared(|sh| sh.put_trash(tenant, tag, rows))
                        .unwrap_or_else(|| {
                            Err(super::StoreError::Query("the shared state is gone".into()))
                        })
                        .map_err(|e| std::io::Error::other(e.to_string()))
                };
                self.store
                    .remove(tenant, &planned, &mut TrashTarget::Before(&mut put))
            }
            TrashRoute::Local(writer) => {
                let mut write = |rows: &[TrashRow]| writer.write(rows);
                self.store
                    .remove(tenant, &planned, &mut TrashTarget::Before(&mut write))
            }
        };
        crate::core::fault::point("store.after_batch");
        match removed {
            Ok(outcomes) => batch
                .iter()
                .zip(outcomes)
                .map(|(&i, outcome)| {
                    let key = &self.infos[i].key;
                    match outcome {
                        RemoveOutcome::Removed { bytes } => {
                            self.ledger.forget(&key.key_type, &key.id);
                            Outcome::Removed { bytes }
                        }
                        RemoveOutcome::Changed => Outcome::Kept("changed since planning: kept".into()),
                        RemoveOutcome::Unknown(why) => {
                            warn!(company = %self.tenant, error = %why, "removal outcome unknown");
                            Outcome::Failed(format!(
                                "outcome unknown: {why}; it is in the trash, so `restore` puts it back if it went"
                            ))
                        }
                        RemoveOutcome::Vanished => {
                            self.ledger.forget(&key.key_type, &key.id);
                            Outcome::Vanished
                        }
                    }
                })
                .collect(),
            Err(e) => {
                warn!(company = %self.tenant, error = %e, "batch rolled back; rows left in place");
                batch.iter().map(|_| Outcome::Failed(e.to_string())).collect()
            }
        }
    }
}

/// Appends removed rows to `<state>/trash/<tenant>/<run>/rows.jsonl`, fsync'd before the store
/// commits.
struct TrashWriter<'a> {
    state: &'a StateDir,
    tenant: &'a str,
    run_id: &'a str,
    file: Option<std::fs::File>,
}

impl<'a> TrashWriter<'a> {
    fn new(state: &'a StateDir, tenant: &'a str, run_id: &'a str) -> Self {
        TrashWriter {
            state,
            tenant,
            run_id,
            file: None,
        }
    }

    fn write(&mut self, rows: &[TrashRow]) -> std::io::Result<()> {
        if self.file.is_none() {
            let dir = self.state.run_dir(TRASH_DIR, self.tenant, self.run_id)?;
            let f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(dir.path().join(TRASH_ROWS))?;
            self.file = Some(f);
        }
        let f = self.file.as_mut().expect("opened");
        let mut buf = Vec::with_capacity(rows.len() * 256);
        for r in rows {
            serde_json::to_writer(&mut buf, r).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        // Whole lines or nothing: a write cut short (a full disk) is cut back to the last whole
        // line, so the next batch never glues onto half a row and the run stays restorable
        // (the store rolls this batch back). `undo::read_trash` also ignores a torn tail.
        let before = f.metadata()?.len();
        match f.write_all(&buf).and_then(|()| f.sync_data()) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = f.set_len(before);
                let _ = f.sync_data();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
