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
use crate::core::records::{self, TriggerLevel, TriggerMark};
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

/// The rule, pure: count (files less reserved pre-keys) + thresholds + last trigger + now → what
/// to do. A last trigger in the future (the clock was ahead when it was written) is ignored.
pub fn decide(
    files: usize,
    threshold: usize,
    emergency_threshold: usize,
    cooldown: chrono::Duration,
    last: Option<&TriggerMark>,
    now: DateTime<Utc>,
) -> Verdict {
    let level = if files >= emergency_threshold {
        TriggerLevel::Emergency
    } else if files >= threshold {
        TriggerLevel::Normal
    } else {
        return Verdict::Below;
    };
    match last {
        Some(m) if m.time <= now && m.time + cooldown > now => {
            // An emergency overrides the cooldown of a normal trigger, once: the emergency
            // cleanup then starts a cooldown of its own.
            if level == TriggerLevel::Emergency && m.level == TriggerLevel::Normal {
                Verdict::Clean(level)
            } else {
                Verdict::CoolingDown(m.time + cooldown)
            }
        }
        _ => Verdict::Clean(level),
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
    let last = record.trigger.as_ref();
    if let Some(m) = last.filter(|m| m.time > spec.now + chrono::Duration::minutes(5)) {
        warn!(company = %crate::core::util::sanitize(c.name.as_ref()), recorded = %m.time, "cooldown recorded in the future (clock was ahead?): ignored");
    }
    match decide(
        counted,
        spec.threshold(),
        spec.emergency_threshold(),
        spec.cooldown,
        last,
        spec.now,
    ) {
        Verdict::Below => Row::new(
            c,
            Some(tally),
            Some(level),
            Action::None,
            format!("below {}", spec.threshold()),
        ),
        Verdict::CoolingDown(until) => {
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
        Verdict::Clean(tl) => {
            let emergency = tl == TriggerLevel::Emergency;
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
            } else if row.action.cleaned()
                && let Err(e) = effects.update_company(&c.name, |rec| {
                    rec.trigger = Some(TriggerMark {
                        time: spec.now,
                        level: tl,
                    });
                })
            {
                row.action = Action::Failed;
                row.reason = format!("cleaned, but cannot record the cooldown: {e}");
            }
            row
        }
    }
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
        assert_eq!(decide(174, 175, 185, cd, None, t(0)), Verdict::Below);
        assert_eq!(
            decide(175, 175, 185, cd, None, t(0)),
            Verdict::Clean(TriggerLevel::Normal)
        );
        assert_eq!(
            decide(185, 175, 185, cd, None, t(0)),
            Verdict::Clean(TriggerLevel::Emergency)
        );
        let normal = TriggerMark {
            time: t(0),
            level: TriggerLevel::Normal,
        };
        assert_eq!(
            decide(180, 175, 185, cd, Some(&normal), t(5)),
            Verdict::CoolingDown(t(6))
        );
        assert_eq!(
            decide(180, 175, 185, cd, Some(&normal), t(6)),
            Verdict::Clean(TriggerLevel::Normal)
        );
        // An emergency overrides a normal trigger's cooldown…
        assert_eq!(
            decide(190, 175, 185, cd, Some(&normal), t(1)),
            Verdict::Clean(TriggerLevel::Emergency)
        );
        // …once: after the emergency cleanup its own cooldown holds.
        let em = TriggerMark {
            time: t(1),
            level: TriggerLevel::Emergency,
        };
        assert_eq!(
            decide(190, 175, 185, cd, Some(&em), t(2)),
            Verdict::CoolingDown(t(7))
        );
    }

    #[test]
    fn a_cooldown_from_the_future_is_ignored() {
        let cd = chrono::Duration::hours(6);
        let ahead = TriggerMark {
            time: t(100),
            level: TriggerLevel::Emergency,
        };
        assert_eq!(
            decide(190, 175, 185, cd, Some(&ahead), t(0)),
            Verdict::Clean(TriggerLevel::Emergency)
        );
    }
}
