//! The trigger: count each company's files, decide (thresholds, cooldown), clean the ones past
//! a threshold through the same `clean_company` as every cleanup, and say what happened.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tracing::warn;

use crate::core::clean::CleanSpec;
use crate::core::companies::Company;
use crate::core::effects::RunEffects;
use crate::core::level::{Level, Thresholds};
use crate::core::notify::Event;
use crate::core::records::{self, CompanyRecord, TriggerLevel, TriggerMark};
use crate::core::report::{CompanyReport, Status};
use crate::core::rules::Rules;
use crate::core::state::StateDir;
use crate::core::tally::Tally;

/// How the trigger runs (from the resolved configuration).
#[derive(Clone, Debug)]
pub struct TriggerSpec {
    pub thresholds: Thresholds,
    pub cooldown: chrono::Duration,
    pub rules: Rules,
    pub emergency_rules: Rules,
    pub trash: bool,
    pub dry_run: bool,
    pub run_id: String,
    pub holder: String,
    pub now: DateTime<Utc>,
    /// Creds outside the folders (Evolution's files mode).
    pub creds_from: Option<crate::core::clean::CredsFrom>,
}

impl TriggerSpec {
    fn threshold(&self) -> usize {
        self.thresholds.trigger
    }
    fn emergency_threshold(&self) -> usize {
        self.thresholds.danger
    }
}

/// What the trigger decides for one company, before anything is done.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Below,
    Clean(TriggerLevel),
    CoolingDown(DateTime<Utc>),
}

/// What the trigger did with a company.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    None,
    Cleanup,
    EmergencyCleanup,
    Cooldown,
    Busy,
    Failed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Cleanup => "cleanup",
            Action::EmergencyCleanup => "emergency-cleanup",
            Action::Cooldown => "cooldown",
            Action::Busy => "busy",
            Action::Failed => "failed",
        }
    }

    pub fn cleaned(self) -> bool {
        matches!(self, Action::Cleanup | Action::EmergencyCleanup)
    }
}

/// One company's line of the trigger's report.
#[derive(Debug, Serialize)]
pub struct Row {
    pub company: String,
    /// Every file (`ls | wc -l`).
    pub files: Option<usize>,
    /// Pre-keys the server may still hand out: not counted by the level (core::tally).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_pre_keys: Option<usize>,
    /// What the level and the thresholds are about: files less reserved pre-keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counted: Option<usize>,
    /// `None` when the files could not be counted.
    pub level: Option<Level>,
    pub action: Action,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooldown_until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<usize>,
    /// Pre-keys among `removed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_pre_keys: Option<usize>,
    /// Reserved pre-keys among those: only ever non-zero under an explicit keep-N.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_reserved_pre_keys: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_reserved_pre_keys: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

impl Row {
    /// A company the run could not act on at all, and why.
    pub fn failed(c: &Company, why: &str) -> Row {
        Row::new(c, None, None, Action::Failed, why.to_owned())
    }

    fn new(
        c: &Company,
        tally: Option<Tally>,
        level: Option<Level>,
        action: Action,
        reason: String,
    ) -> Row {
        Row {
            company: crate::core::util::sanitize(c.name.as_ref()),
            files: tally.map(|t| t.files),
            reserved_pre_keys: tally.map(|t| t.reserved),
            counted: tally.map(|t| t.counted()),
            level,
            action,
            reason,
            cooldown_until: None,
            removed: None,
            removed_pre_keys: None,
            removed_reserved_pre_keys: None,
            remaining: None,
            remaining_reserved_pre_keys: None,
            advice: None,
            run_id: None,
        }
    }
}

/// The marks that start a company's one cooldown (docs/configuration.md, `trigger.cooldown`):
/// the trigger's, and the monitor's auto-cleanup, which is an emergency cleanup and so counts
/// as an emergency mark. Every layer that cleans on its own (trigger, `monitor --auto-cleanup`)
/// and every `status` reads the cooldown through here and [`cooling_down`], so there is one
/// rule, not one per layer.
pub fn cooldown_marks(record: &CompanyRecord) -> Vec<TriggerMark> {
    let auto = record.auto_cleanup.map(|time| TriggerMark {
        time,
        level: TriggerLevel::Emergency,
    });
    record.trigger.iter().cloned().chain(auto).collect()
}

/// The rule, pure: until when `marks` keep a cleanup at `level` from running, if they do. A
/// mark cools down for `cooldown` from its time; an emergency overrides the cooldown of a
/// normal mark, once (its own mark then cools down every level). A mark in the future (the
/// clock was ahead when it was written) is ignored.
pub fn cooling_down(
    level: TriggerLevel,
    cooldown: chrono::Duration,
    marks: &[TriggerMark],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    marks
        .iter()
        .filter(|m| m.time <= now && m.time + cooldown > now)
        .filter(|m| !(level == TriggerLevel::Emergency && m.level == TriggerLevel::Normal))
        .map(|m| m.time + cooldown)
        .max()
}

/// Until when a company is in cooldown for any cleanup (`status`: a normal one is kept back by
/// every mark).
pub fn cooldown_until(
    record: &CompanyRecord,
    cooldown: chrono::Duration,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    cooling_down(TriggerLevel::Normal, cooldown, &cooldown_marks(record), now)
}

/// Starts a company's cooldown for a cleanup at `level` (`mark` writes the layer's own mark)
/// unless [`cooling_down`] says it is already cooling down: the check and the mark are one
/// atomic read-modify-write of the company's record (compare-and-swap in the store's shared
/// state, the state lock in a state directory). So of two layers or two hosts that both read
/// "no cooldown" before taking the company's lock, exactly one gets to clean; the other gets
/// `Ok(Some(until))`. Marking before cleaning (rather than checking again under the company's
/// lock and marking after it is released) keeps the rule here, in one place, and leaves no gap
/// between one host's unlock and its mark for another host to clean in. The cost: a run killed
/// between the mark and the cleanup leaves a cooldown with no cleanup behind it.
pub fn claim(
    state: &StateDir,
    company: &str,
    level: TriggerLevel,
    cooldown: chrono::Duration,
    now: DateTime<Utc>,
    mut mark: impl FnMut(&mut CompanyRecord),
) -> std::io::Result<Option<DateTime<Utc>>> {
    let mut blocked = None;
    // Runs again from a fresh read when another host wrote first: the last run is what counts.
    records::update_company(state, company, |rec| {
        blocked = cooling_down(level, cooldown, &cooldown_marks(rec), now);
        if blocked.is_none() {
            mark(rec);
        }
    })?;
    Ok(blocked)
}

/// The trigger's decision, pure: count (files less reserved pre-keys) + thresholds + the
/// company's cooldown marks ([`cooldown_marks`]) + now → what to do.
pub fn decide(
    files: usize,
    threshold: usize,
    emergency_threshold: usize,
    cooldown: chrono::Duration,
    marks: &[TriggerMark],
    now: DateTime<Utc>,
) -> Verdict {
    let level = if files >= emergency_threshold {
        TriggerLevel::Emergency
    } else if files >= threshold {
        TriggerLevel::Normal
    } else {
        return Verdict::Below;
    };
    match cooling_down(level, cooldown, marks, now) {
        Some(until) => Verdict::CoolingDown(until),
        None => Verdict::Clean(level),
    }
}

/// The trigger over a fleet: `count` says how many files (keys) a company has and how many of
/// them are reserved pre-keys, `clean` cleans it with the spec it is given. Folders and
/// database stores share every rule above.
pub fn run(
    companies: &[Company],
    mut count: impl FnMut(&Company) -> Result<Tally, String>,
    mut clean: impl FnMut(&Company, &CleanSpec) -> CompanyReport,
    state: &StateDir,
    spec: &TriggerSpec,
    effects: &RunEffects,
) -> Vec<Row> {
    companies
        .iter()
        .map(|c| one(c, &mut count, &mut clean, state, spec, effects))
        .collect()
}

fn one(
    c: &Company,
    count: &mut impl FnMut(&Company) -> Result<Tally, String>,
    clean_with: &mut impl FnMut(&Company, &CleanSpec) -> CompanyReport,
    state: &StateDir,
    spec: &TriggerSpec,
    effects: &RunEffects,
) -> Row {
    let tally = match count(c) {
        Ok(t) => t,
        Err(e) => {
            return Row::new(c, None, None, Action::Failed, e);
        }
    };
    let counted = tally.counted();
    let level = spec.thresholds.level(counted);
    effects.record_sample(&c.name, tally.files, spec.now);
    let record = match records::try_read_company(state, &c.name) {
        Ok(r) => r,
        Err(e) => {
            return Row::new(c, Some(tally), Some(level), Action::Failed, e);
        }
    };
    let marks = cooldown_marks(&record);
    if let Some(m) = marks
        .iter()
        .find(|m| m.time > spec.now + chrono::Duration::minutes(5))
    {
        warn!(company = %crate::core::util::sanitize(c.name.as_ref()), recorded = %m.time, "cooldown recorded in the future (clock was ahead?): ignored");
    }
    match decide(
        counted,
        spec.threshold(),
        spec.emergency_threshold(),
        spec.cooldown,
        &marks,
        spec.now,
    ) {
        Verdict::Below => Row::new(
            c,
            Some(tally),
            Some(level),
            Action::None,
            format!("below {}", spec.threshold()),
        ),
        Verdict::CoolingDown(until) => cooling_row(c, tally, level, until, spec),
        Verdict::Clean(tl) => {
            let emergency = tl == TriggerLevel::Emergency;
            let mark = TriggerMark {
                time: spec.now,
                level: tl,
            };
            // Marked before cleaning, in one step with the check ([`claim`] says why), so a
            // monitor or another host that read "no cooldown" too does not clean as well. A dry
            // run marks nothing.
            let mut before = None;
            if !spec.dry_run {
                match claim(state, &c.name, tl, spec.cooldown, spec.now, |rec| {
                    before = rec.trigger.clone();
                    rec.trigger = Some(mark.clone());
                }) {
                    Ok(None) => {}
                    Ok(Some(until)) => return cooling_row(c, tally, level, until, spec),
                    Err(e) => {
                        return Row::new(
                            c,
                            Some(tally),
                            Some(level),
                            Action::Failed,
                            format!("cannot start the cooldown: {e}"),
                        );
                    }
                }
            }
            let clean = CleanSpec {
                rules: if emergency {
                    spec.emergency_rules
                } else {
                    spec.rules
                },
                dry_run: spec.dry_run,
                trash: spec.trash,
                verbose: false,
                now: spec.now.into(),
                run_id: spec.run_id.clone(),
                holder: spec.holder.clone(),
                pause_before_remove: None,
                creds_from: spec.creds_from.clone(),
            };
            let report = clean_with(c, &clean);
            let mut row = after_cleanup(c, tally, level, emergency, spec, &report, effects);
            if let Err(e) = effects.record_cleanup(&report, emergency, spec.trash) {
                row.action = Action::Failed;
                row.reason = format!("cannot record the cleanup: {e}");
            }
            // Only a cleanup starts the cooldown: take the mark back when none happened (busy,
            // failed), unless another writer marked it since.
            if !row.action.cleaned()
                && let Err(e) = effects.update_company(&c.name, |rec| {
                    if rec.trigger.as_ref() == Some(&mark) {
                        rec.trigger = before.clone();
                    }
                })
            {
                warn!(company = %crate::core::util::sanitize(c.name.as_ref()), error = %e, "cannot take back the trigger's cooldown; it starts without a cleanup");
            }
            row
        }
    }
}

fn cooling_row(
    c: &Company,
    tally: Tally,
    level: Level,
    until: DateTime<Utc>,
    spec: &TriggerSpec,
) -> Row {
    let mut r = Row::new(
        c,
        Some(tally),
        Some(level),
        Action::Cooldown,
        format!(
            "cooling down until {}",
            crate::core::util::fmt_time(until, spec.now)
        ),
    );
    r.cooldown_until = Some(until);
    r
}

fn after_cleanup(
    c: &Company,
    tally: Tally,
    level: Level,
    emergency: bool,
    spec: &TriggerSpec,
    report: &CompanyReport,
    effects: &RunEffects,
) -> Row {
    let name = crate::core::util::sanitize(c.name.as_ref());
    let (files, counted) = (tally.files, tally.counted());
    let thresholds =
        json!({ "trigger": spec.threshold(), "emergency": spec.emergency_threshold() });
    match report.status {
        Status::Busy => Row::new(
            c,
            Some(tally),
            Some(level),
            Action::Busy,
            format!(
                "lock busy: {}",
                report.lock_holder.clone().unwrap_or_default()
            ),
        ),
        Status::Failed => {
            let err = report.error.clone().unwrap_or_default();
            effects.notify(
                Event::new(
                    "cleanup_failed",
                    level.as_str(),
                    format!(
                        "{name}: cleanup at {counted} counted files ({files} files) failed: {err}"
                    ),
                )
                .company(&name, files)
                .thresholds(thresholds),
            );
            Row::new(c, Some(tally), Some(level), Action::Failed, err)
        }
        Status::Ok => {
            let verb = if spec.dry_run {
                "would remove"
            } else {
                "removed"
            };
            let action = if emergency {
                Action::EmergencyCleanup
            } else {
                Action::Cleanup
            };
            let what = crate::core::report::removal_words(report, verb);
            let mut r = Row::new(
                c,
                Some(tally),
                Some(level),
                if report.has_failure() {
                    Action::Failed
                } else {
                    action
                },
                what.clone(),
            );
            let pre_keys = report
                .removed_by_type
                .get(&crate::core::classify::Kind::PreKey)
                .copied()
                .unwrap_or(0);
            r.removed = Some(report.removed);
            r.removed_pre_keys = Some(pre_keys);
            r.removed_reserved_pre_keys = Some(report.reserved_removed());
            r.remaining = Some(report.files_after);
            r.remaining_reserved_pre_keys = Some(report.reserved_after);
            r.run_id = report.run_id.clone();
            r.advice = report.still_above_advice(spec.threshold());
            let details = json!({
                "removed": report.removed,
                "removed_pre_keys": pre_keys,
                "removed_reserved_pre_keys": report.reserved_removed(),
                "remaining": report.files_after,
                "remaining_reserved_pre_keys": report.reserved_after,
                "remaining_counted": report.counted_after(),
                "reserved_pre_keys_before": tally.reserved,
                "counted_before": counted,
                "run_id": report.run_id,
                "action": action.as_str(),
            });
            effects.notify(
                Event::new(
                    "cleanup_finished",
                    level.as_str(),
                    format!(
                        "{name}: {counted} counted files ({level}; {files} files, {} reserved pre-keys) → {}: {what}",
                        tally.reserved,
                        action.as_str(),
                        level = level.as_str()
                    ),
                )
                .company(&name, files)
                .thresholds(thresholds.clone())
                .details(details.clone()),
            );
            if let Some(advice) = &r.advice {
                let after = spec.thresholds.level(report.counted_after());
                effects.notify(
                    Event::new(
                        "still_above_threshold",
                        after.as_str(),
                        format!(
                            "{name} is still at {} counted files ({}) after cleanup: {advice}",
                            report.counted_after(),
                            after.as_str()
                        ),
                    )
                    .company(&name, report.files_after)
                    .thresholds(thresholds)
                    .details(details),
                );
            }
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap()
    }

    #[test]
    fn levels_and_cooldown() {
        let cd = chrono::Duration::hours(6);
        assert_eq!(decide(174, 175, 185, cd, &[], t(0)), Verdict::Below);
        assert_eq!(
            decide(175, 175, 185, cd, &[], t(0)),
            Verdict::Clean(TriggerLevel::Normal)
        );
        assert_eq!(
            decide(185, 175, 185, cd, &[], t(0)),
            Verdict::Clean(TriggerLevel::Emergency)
        );
        let normal = TriggerMark {
            time: t(0),
            level: TriggerLevel::Normal,
        };
        assert_eq!(
            decide(180, 175, 185, cd, std::slice::from_ref(&normal), t(5)),
            Verdict::CoolingDown(t(6))
        );
        assert_eq!(
            decide(180, 175, 185, cd, std::slice::from_ref(&normal), t(6)),
            Verdict::Clean(TriggerLevel::Normal)
        );
        // An emergency overrides a normal trigger's cooldown…
        assert_eq!(
            decide(190, 175, 185, cd, std::slice::from_ref(&normal), t(1)),
            Verdict::Clean(TriggerLevel::Emergency)
        );
        // …once: after the emergency cleanup its own cooldown holds.
        let em = TriggerMark {
            time: t(1),
            level: TriggerLevel::Emergency,
        };
        assert_eq!(
            decide(190, 175, 185, cd, std::slice::from_ref(&em), t(2)),
            Verdict::CoolingDown(t(7))
        );
    }

    #[test]
    fn the_monitors_auto_cleanup_and_the_trigger_share_one_cooldown() {
        let cd = chrono::Duration::hours(6);
        let em = TriggerLevel::Emergency;
        // The monitor's mark counts as an emergency one: it keeps back every trigger cleanup.
        let auto = CompanyRecord {
            auto_cleanup: Some(t(0)),
            ..CompanyRecord::default()
        };
        let marks = cooldown_marks(&auto);
        assert_eq!(
            decide(180, 175, 185, cd, &marks, t(1)),
            Verdict::CoolingDown(t(6))
        );
        assert_eq!(
            decide(190, 175, 185, cd, &marks, t(1)),
            Verdict::CoolingDown(t(6))
        );
        assert_eq!(cooling_down(em, cd, &marks, t(1)), Some(t(6)));
        assert_eq!(cooldown_until(&auto, cd, t(1)), Some(t(6)));
        // The trigger's emergency mark keeps back the monitor (an emergency cleanup)…
        let trig = |level| CompanyRecord {
            trigger: Some(TriggerMark { time: t(0), level }),
            ..CompanyRecord::default()
        };
        let by_em = cooldown_marks(&trig(em));
        assert_eq!(cooling_down(em, cd, &by_em, t(1)), Some(t(6)));
        // …a normal one does not (an emergency overrides it, as for the trigger itself), though
        // status shows its cooldown.
        let normal = trig(TriggerLevel::Normal);
        assert_eq!(cooling_down(em, cd, &cooldown_marks(&normal), t(1)), None);
        assert_eq!(cooldown_until(&normal, cd, t(1)), Some(t(6)));
        // Both marks: the later end counts.
        let both = CompanyRecord {
            trigger: Some(TriggerMark {
                time: t(0),
                level: em,
            }),
            auto_cleanup: Some(t(2)),
            ..CompanyRecord::default()
        };
        assert_eq!(cooldown_until(&both, cd, t(3)), Some(t(8)));
        assert_eq!(cooldown_until(&both, cd, t(8)), None);
    }

    #[test]
    fn of_two_claims_that_both_read_no_cooldown_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let cd = chrono::Duration::hours(6);
        let em = TriggerLevel::Emergency;
        // The monitor claims first…
        let won = claim(&state, "c", em, cd, t(0), |r| r.auto_cleanup = Some(t(0))).unwrap();
        assert_eq!(won, None);
        // …a trigger that read the record before that mark is refused, and writes no mark.
        let mark = TriggerMark {
            time: t(0),
            level: em,
        };
        let lost = claim(&state, "c", em, cd, t(0), |r| {
            r.trigger = Some(mark.clone())
        })
        .unwrap();
        assert_eq!(lost, Some(t(6)));
        let rec = records::try_read_company(&state, "c").unwrap();
        assert_eq!((rec.trigger, rec.auto_cleanup), (None, Some(t(0))));
    }

    #[test]
    fn a_cooldown_from_the_future_is_ignored() {
        let cd = chrono::Duration::hours(6);
        let ahead = TriggerMark {
            time: t(100),
            level: TriggerLevel::Emergency,
        };
        assert_eq!(
            decide(190, 175, 185, cd, std::slice::from_ref(&ahead), t(0)),
            Verdict::Clean(TriggerLevel::Emergency)
        );
    }
}
