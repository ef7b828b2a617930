//! `status`: the spec's manual checks over ssh (`ls | wc -l` per company, lock files, last
//! cleanup, trend) as one read-only command.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::cli::StatusArgs;
use crate::cmd::{Context, Run};
use crate::core::inspect::{CompanyStatus, inspect};
use crate::core::level::Level;
use crate::core::records::Sample;
use crate::core::util::{fmt_bytes, fmt_duration};
use crate::exit::Exit;

struct Paint(bool);

impl Paint {
    fn level(&self, l: Level) -> String {
        let code = match l {
            Level::Healthy => "32",
            Level::Warning => "33",
            Level::Critical | Level::Trigger => "38;5;208",
            Level::Emergency | Level::Danger => "1;31",
        };
        self.wrap(code, &format!("{:<9}", l.as_str()))
    }
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
}

fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        None => "never".into(),
        Some(t) => match (now - t).to_std() {
            Ok(d) => format!("{} ago", fmt_duration(d)),
            Err(_) => "just now".into(),
        },
    }
}

/// One character per point, scaled between the row's min and max.
pub fn sparkline(values: &[u32]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (Some(&min), Some(&max)) = (values.iter().min(), values.iter().max()) else {
        return String::new();
    };
    values
        .iter()
        .map(|&v| {
            if max == min {
                BARS[3]
            } else {
                BARS[((v - min) as usize * 7) / (max - min) as usize]
            }
        })
        .collect()
}

/// The history as at most `width` points: the last sample of each bucket.
fn downsample(h: &[Sample], width: usize) -> Vec<u32> {
    if h.len() <= width {
        return h.iter().map(|s| s.1).collect();
    }
    (0..width)
        .map(|i| h[(i + 1) * h.len() / width - 1].1)
        .collect()
}

impl Run for StatusArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        let (root, all) = ctx.fleet()?;
        let companies = ctx.select(all, &self.company)?;
        let thresholds = ctx.config.thresholds();
        let cooldown = chrono::Duration::from_std(ctx.config.trigger.cooldown)?;
        let now: DateTime<Utc> = ctx.now.into();
        let rows: Vec<CompanyStatus> = companies
            .iter()
            .map(|c| {
                let mut s = inspect(&root, c, &ctx.state, &thresholds, cooldown, now);
                if !self.history {
                    s.history.clear();
                }
                s
            })
            .collect();
        let worst = rows.iter().map(|r| r.level).max().unwrap_or(Level::Healthy);
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer(
                &mut out,
                &json!({ "command": "status", "time": now, "companies": rows }),
            )?;
            writeln!(out)?;
        } else {
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            self.table(&mut out, &rows, now, Paint(colour))?;
        }
        Ok(if worst >= Level::Warning {
            Exit::Failed
        } else {
            Exit::Ok
        })
    }
}

impl StatusArgs {
    fn table(
        &self,
        out: &mut impl Write,
        rows: &[CompanyStatus],
        now: DateTime<Utc>,
        p: Paint,
    ) -> Result<()> {
        let w = rows
            .iter()
            .map(|r| r.company.len())
            .max()
            .unwrap_or(7)
            .max(7);
        writeln!(
            out,
            "{}",
            p.wrap(
                "1",
                &format!(
                    "{:w$}  {:>5}  {:<9}  {:<9}  {:<14}  {:<22}  {:<12}  {}",
                    "COMPANY",
                    "FILES",
                    "LEVEL",
                    "CREDS",
                    "CONNECTED",
                    "LAST CLEANUP",
                    "COOLDOWN",
                    "TRASH"
                )
            )
        )?;
        for r in rows {
            let cleanup = match &r.last_cleanup {
                Some(c) => format!("{}: -{} {}", ago(Some(c.time), now), c.removed, c.status),
                None => "never".into(),
            };
            let cooldown = r.cooldown_until.map_or("-".into(), |u| {
                format!("until {}", u.with_timezone(&chrono::Local).format("%H:%M"))
            });
            let trash = if r.trash_files == 0 {
                "-".into()
            } else {
                format!("{} files, {}", r.trash_files, fmt_bytes(r.trash_bytes))
            };
            writeln!(
                out,
                "{:w$}  {:>5}  {}  {:<9}  {:<14}  {:<22}  {:<12}  {}",
                r.company,
                r.files,
                p.level(r.level),
                r.creds,
                ago(r.last_connected, now),
                cleanup,
                cooldown,
                trash
            )?;
            let types: Vec<String> = r.by_type.iter().map(|(k, n)| format!("{k} {n}")).collect();
            writeln!(out, "{:w$}  {}", "", p.wrap("2", &types.join(", ")))?;
            if let Some(h) = &r.lock_holder {
                writeln!(out, "{:w$}  {}", "", p.wrap("36", &format!("locked: {h}")))?;
            }
            if let Some(e) = r.error.as_ref().or(r.creds_problem.as_ref()) {
                writeln!(out, "{:w$}  {}", "", p.wrap("31", &format!("error: {e}")))?;
            }
            for a in &r.advice {
                writeln!(out, "{:w$}  {}", "", p.wrap("33", &format!("advice: {a}")))?;
            }
            if self.history {
                let mut values = downsample(&r.history, 48);
                values.push(r.files as u32);
                let first = r.history.first().map(|s| s.0);
                let span = first.map_or("now".into(), |f| {
                    format!(
                        "{} ago",
                        fmt_duration(std::time::Duration::from_secs(
                            (now.timestamp() - f).max(0) as u64
                        ))
                    )
                });
                writeln!(
                    out,
                    "{:w$}  {} {}  ({} → {} files, since {span})",
                    "",
                    p.wrap("2", "trend"),
                    sparkline(&values),
                    values.first().unwrap_or(&0),
                    r.files
                )?;
            }
        }
        let mut counts = std::collections::BTreeMap::new();
        for r in rows {
            *counts.entry(r.level).or_insert(0) += 1;
        }
        let summary: Vec<String> = counts
            .iter()
            .map(|(l, n)| format!("{n} {}", l.as_str()))
            .collect();
        writeln!(out, "{} companies: {}", rows.len(), summary.join(", "))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales() {
        assert_eq!(sparkline(&[0, 7, 14]), "▁▄█");
        assert_eq!(sparkline(&[5, 5]), "▄▄");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn downsample_keeps_width() {
        let h: Vec<Sample> = (0..1000).map(|i| Sample(i, i as u32)).collect();
        let d = downsample(&h, 48);
        assert_eq!(d.len(), 48);
        assert_eq!(*d.last().unwrap(), 999);
    }
}
