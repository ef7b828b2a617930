//! `trigger`: the half-hourly check that cleans a company once it passes a file-count threshold.

use anyhow::Result;
use chrono::{DateTime, Local, Utc};
use serde::Serialize;
use serde_json::json;

use crate::cli::TriggerArgs;
use crate::cmd::{Context, Run};
use crate::core::clean::{CleanSpec, clean_company};
use crate::core::companies::Company;
use crate::core::folder::Folder;
use crate::core::lock::{self, LockAttempt};
use crate::core::notify::{Event, Notifier};
use crate::core::records::{self, TriggerLevel, TriggerMark};
use crate::core::report::{CompanyReport, Status};
use crate::exit::Exit;

pub const TRIGGER_LOCK: &str = "trigger.lock";

#[derive(Debug, Serialize)]
struct Row {
    company: String,
    files: Option<usize>,
    level: &'static str,
    /// `none`, `cleanup`, `emergency-cleanup`, `cooldown`, `busy`, `failed`.
    action: &'static str,
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cooldown_until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    removed: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    advice: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<String>,
}

/// What the trigger decides for one company, before anything is done.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Below,
    Clean(TriggerLevel),
    CoolingDown(DateTime<Utc>),
}

/// The rule, pure: count + thresholds + last trigger + now → what to do.
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
        Some(m) if m.time + cooldown > now => {
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

fn count(root: &Folder, c: &Company) -> std::io::Result<usize> {
    root.open_dir(&c.dir)?.count_files()
}

impl Run for TriggerArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        let cfg = &ctx.config;
        let threshold = self.threshold.unwrap_or(cfg.trigger.threshold);
        let emergency_threshold = self
            .emergency_threshold
            .unwrap_or(cfg.trigger.emergency_threshold);
        crate::config::check_thresholds(
            "trigger",
            &[
                ("threshold", threshold),
                ("emergency_threshold", emergency_threshold),
            ],
        )?;
        let cooldown = chrono::Duration::from_std(self.cooldown.unwrap_or(cfg.trigger.cooldown))?;
        let (root, companies) = ctx.fleet()?;
        let now: DateTime<Utc> = ctx.now.into();
        let notifier = Notifier::new(cfg.notify.clone());

        // One trigger at a time on a host. A dry run writes nothing, not even the lock file.
        let _guard = if self.dry_run {
            None
        } else {
            match lock::try_lock(
                ctx.state.folder()?,
                TRIGGER_LOCK.as_ref(),
                &lock::holder_text("trigger", now),
            )? {
                LockAttempt::Acquired(g) => Some(g),
                LockAttempt::Busy(holder) => {
                    eprintln!(
                        "baileys-janitor: another trigger is running ({}); exiting",
                        holder.as_deref().unwrap_or("holder unknown")
                    );
                    return Ok(Exit::Busy);
                }
            }
        };
        if let Some(url) = &self.ping_url {
            notifier.ping(url, "/start");
        }
        tracing::info!(
            companies = companies.len(),
            threshold,
            emergency_threshold,
            dry_run = self.dry_run,
            "trigger started"
        );
        let run_id = ctx.run_id();
        let spec_for = |level: TriggerLevel| CleanSpec {
            rules: match level {
                TriggerLevel::Normal => cfg.rules,
                TriggerLevel::Emergency => cfg.emergency_rules,
            },
            dry_run: self.dry_run,
            trash: cfg.trash && !self.no_trash,
            verbose: false,
            now: ctx.now,
            run_id: run_id.clone(),
            holder: lock::holder_text("trigger", now),
            pause_before_remove: None,
        };
        let thresholds = json!({ "trigger": threshold, "emergency": emergency_threshold });

        let mut exit = Exit::Ok;
        let mut rows = Vec::new();
        for c in &companies {
            let files = match count(&root, c) {
                Ok(n) => n,
                Err(e) => {
                    exit = exit.worst(Exit::Failed);
                    rows.push(row(
                        c,
                        None,
                        "unknown",
                        "failed",
                        format!("cannot count files: {e}"),
                    ));
                    continue;
                }
            };
            if !self.dry_run {
                let sample = records::Sample(now.timestamp(), files as u32);
                if let Err(e) = records::update_company(&ctx.state, &c.name, |r| {
                    records::add_sample(&mut r.history, sample, records::HISTORY)
                }) {
                    tracing::warn!(company = %c.name, error = %e, "cannot record history");
                }
            }
            let record = records::read_company(&ctx.state, &c.name);
            let level_name = if files >= emergency_threshold {
                "emergency"
            } else if files >= threshold {
                "trigger"
            } else {
                "healthy"
            };
            match decide(
                files,
                threshold,
                emergency_threshold,
                cooldown,
                record.trigger.as_ref(),
                now,
            ) {
                Verdict::Below => rows.push(row(
                    c,
                    Some(files),
                    level_name,
                    "none",
                    format!("below {threshold}"),
                )),
                Verdict::CoolingDown(until) => {
                    let mut r = row(
                        c,
                        Some(files),
                        level_name,
                        "cooldown",
                        format!(
                            "cooling down until {}",
                            until.with_timezone(&Local).format("%H:%M")
                        ),
                    );
                    r.cooldown_until = Some(until);
                    rows.push(r);
                }
                Verdict::Clean(level) => {
                    let emergency = level == TriggerLevel::Emergency;
                    notifier.send(
                        &Event::new(
                            "trigger_fired",
                            if emergency { "emergency" } else { "trigger" },
                            format!(
                                "{} has {files} files (>= {}): starting {} cleanup{}",
                                c.name,
                                if emergency {
                                    emergency_threshold
                                } else {
                                    threshold
                                },
                                if emergency { "an emergency" } else { "a" },
                                if self.dry_run { " (dry run)" } else { "" }
                            ),
                        )
                        .company(&c.name, files)
                        .thresholds(thresholds.clone()),
                    );
                    let report = clean_company(&root, c, &ctx.state, &spec_for(level));
                    let (r, failed, busy) = self.after_cleanup(
                        ctx,
                        c,
                        files,
                        level_name,
                        emergency,
                        threshold,
                        &report,
                        &notifier,
                        &thresholds,
                    );
                    if failed {
                        exit = exit.worst(Exit::Failed);
                    } else if busy {
                        exit = exit.worst(Exit::Busy);
                    } else if !self.dry_run {
                        records::update_company(&ctx.state, &c.name, |rec| {
                            rec.trigger = Some(TriggerMark { time: now, level });
                        })?;
                    }
                    rows.push(r);
                }
            }
        }

        if !self.dry_run {
            records::update_runs(&ctx.state, |runs| {
                runs.trigger.last_start = Some(now);
                if exit == Exit::Failed {
                    runs.trigger.last_failure = Some(Utc::now());
                } else {
                    runs.trigger.last_success = Some(Utc::now());
                }
                let cleaned = rows
                    .iter()
                    .filter(|r| r.action.ends_with("cleanup"))
                    .count();
                runs.trigger.summary =
                    format!("{} companies checked, {cleaned} cleaned", rows.len());
            })?;
        }
        if let Some(url) = &self.ping_url {
            notifier.ping(url, if exit == Exit::Failed { "/fail" } else { "" });
        }
        if let Some(path) = &self.metrics_file {
            let removed = rows.iter().filter_map(|r| r.removed).sum();
            let took = (Utc::now() - now)
                .to_std()
                .unwrap_or_default()
                .as_secs_f64();
            let m = crate::core::metrics::run_metrics(
                "trigger",
                exit != Exit::Failed,
                removed,
                took,
                Utc::now().timestamp(),
            );
            if let Err(e) = m.write(path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the metrics file");
            }
        }
        self.print(&rows, threshold, emergency_threshold, &run_id)?;
        tracing::info!(
            companies = rows.len(),
            cleaned = rows
                .iter()
                .filter(|r| r.action.ends_with("cleanup"))
                .count(),
            notifications_sent = notifier.sent(),
            notifications_failed = notifier.failed(),
            "trigger finished"
        );
        Ok(exit)
    }
}

fn row(
    c: &Company,
    files: Option<usize>,
    level: &'static str,
    action: &'static str,
    reason: String,
) -> Row {
    Row {
        company: c.name.clone(),
        files,
        level,
        action,
        reason,
        cooldown_until: None,
        removed: None,
        remaining: None,
        advice: None,
        run_id: None,
    }
}

impl TriggerArgs {
    /// Reports, records and notifies one triggered cleanup. Returns the row and (failed, busy).
    #[allow(clippy::too_many_arguments)]
    fn after_cleanup(
        &self,
        ctx: &Context,
        c: &Company,
        files: usize,
        level_name: &'static str,
        emergency: bool,
        threshold: usize,
        report: &CompanyReport,
        notifier: &Notifier,
        thresholds: &serde_json::Value,
    ) -> (Row, bool, bool) {
        let action = if emergency {
            "emergency-cleanup"
        } else {
            "cleanup"
        };
        let now: DateTime<Utc> = ctx.now.into();
        if !self.dry_run {
            let trashed = ctx.config.trash && !self.no_trash;
            if let Err(e) =
                records::record_cleanup(&ctx.state, report, "trigger", emergency, trashed, now)
            {
                tracing::warn!(company = %c.name, error = %e, "cannot record the cleanup in the state directory");
            }
        }
        match report.status {
            Status::Busy => {
                let holder = report.lock_holder.clone().unwrap_or_default();
                (
                    row(
                        c,
                        Some(files),
                        level_name,
                        "busy",
                        format!("lock busy: {holder}"),
                    ),
                    false,
                    true,
                )
            }
            Status::Failed => {
                let err = report.error.clone().unwrap_or_default();
                notifier.send(
                    &Event::new(
                        "cleanup_failed",
                        "error",
                        format!("cleanup of {} failed: {err}", c.name),
                    )
                    .company(&c.name, files)
                    .thresholds(thresholds.clone()),
                );
                (row(c, Some(files), level_name, "failed", err), true, false)
            }
            Status::Ok => {
                let verb = if self.dry_run {
                    "would remove"
                } else {
                    "removed"
                };
                let mut r = row(
                    c,
                    Some(files),
                    level_name,
                    action,
                    format!("{verb} {}, {} left", report.removed, report.files_after),
                );
                r.removed = Some(report.removed);
                r.remaining = Some(report.files_after);
                r.run_id = report.run_id.clone();
                r.advice = report.still_above_advice(threshold);
                let details = json!({ "removed": report.removed, "remaining": report.files_after, "run_id": report.run_id });
                notifier.send(
                    &Event::new(
                        "cleanup_finished",
                        level_name,
                        format!(
                            "{}: {verb} {} files, {} left",
                            c.name, report.removed, report.files_after
                        ),
                    )
                    .company(&c.name, report.files_after)
                    .thresholds(thresholds.clone())
                    .details(details.clone()),
                );
                if let Some(advice) = &r.advice {
                    notifier.send(
                        &Event::new(
                            "still_above_threshold",
                            "warning",
                            format!(
                                "{} is still at {} files after cleanup: {advice}",
                                c.name, report.files_after
                            ),
                        )
                        .company(&c.name, report.files_after)
                        .thresholds(thresholds.clone())
                        .details(details),
                    );
                }
                (r, report.has_failure(), false)
            }
        }
    }

    fn print(
        &self,
        rows: &[Row],
        threshold: usize,
        emergency_threshold: usize,
        run_id: &str,
    ) -> Result<()> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer(
                &mut out,
                &json!({
                    "command": "trigger",
                    "run_id": run_id,
                    "dry_run": self.dry_run,
                    "thresholds": { "trigger": threshold, "emergency": emergency_threshold },
                    "companies": rows,
                }),
            )?;
            writeln!(out)?;
            return Ok(());
        }
        let width = rows.iter().map(|r| r.company.len()).max().unwrap_or(7);
        for r in rows {
            let files = r.files.map_or("?".to_owned(), |f| f.to_string());
            writeln!(
                out,
                "{:width$}  {files:>6} files  {:<9}  {:<17}  {}",
                r.company, r.level, r.action, r.reason
            )?;
            if let Some(a) = &r.advice {
                writeln!(out, "{:width$}  still above {threshold}: {a}", "")?;
            }
        }
        let cleaned = rows
            .iter()
            .filter(|r| r.action.ends_with("cleanup"))
            .count();
        writeln!(
            out,
            "total: {} companies checked, {cleaned} cleaned{}",
            rows.len(),
            if self.dry_run {
                " (dry run: nothing was changed)"
            } else {
                ""
            }
        )?;
        Ok(())
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
}
