//! `status`'s table: the worst companies first (all of them with -v or --company), each with its
//! counts by type, lock, problems and advice, then counts by level.

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::core::inspect::CompanyStatus;
use crate::core::level::Level;
use crate::core::records::Sample;
use crate::core::util::{fmt_bytes, fmt_duration, fmt_time, plural};
use crate::render::{Paint, SUMMARY_ROWS, ago, fit, name};

/// Lines are kept within this many columns (the by-type line is cut to fit).
const WIDTH: usize = 120;

pub struct StatusView<'a> {
    pub rows: &'a [CompanyStatus],
    pub now: DateTime<Utc>,
    /// Every company, not only the worst.
    pub all: bool,
    pub history: bool,
    /// Only companies at this level or above (and unreadable ones) are listed; the counts
    /// still cover every company.
    pub min_level: Option<Level>,
    /// The command that undoes a run in a company.
    pub undo: &'a dyn Fn(&str, &str) -> String,
    /// The command that ends the hold on a company's restored files.
    pub release: &'a dyn Fn(&str) -> String,
}

pub fn print(out: &mut impl Write, v: &StatusView, json: bool, p: &Paint) -> io::Result<()> {
    let mut order: Vec<&CompanyStatus> = v
        .rows
        .iter()
        .filter(|r| r.is_problem() || v.min_level.is_none_or(|m| r.level.is_none_or(|l| l >= m)))
        .collect();
    let filtered_out = v.rows.len() - order.len();
    if json {
        serde_json::to_writer(
            &mut *out,
            &json!({ "command": "status", "time": v.now, "companies": order }),
        )
        .map_err(io::Error::other)?;
        writeln!(out)?;
        return out.flush();
    }
    // Error rows (unreadable folder, broken creds.json) always come first.
    order.sort_by_key(|r| std::cmp::Reverse(r.is_problem()));
    let truncate = !v.all && order.len() > SUMMARY_ROWS;
    if truncate || v.min_level.is_some() {
        // The worst first: errors, then by level and files.
        order.sort_by(|a, b| {
            (b.is_problem(), b.error.is_some(), b.level, b.counted)
                .cmp(&(a.is_problem(), a.error.is_some(), a.level, a.counted))
                .then(a.company.cmp(&b.company))
        });
    }
    if truncate {
        order.truncate(SUMMARY_ROWS);
    }
    let w = order
        .iter()
        .map(|r| name(&r.company).chars().count())
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
                "COUNT",
                "LEVEL",
                "CREDS",
                "CREDS WRITTEN",
                "LAST CLEANUP",
                "COOLDOWN",
                "TRASH"
            )
        )
    )?;
    let indent = w + 2;
    for r in &order {
        row(out, r, v, p, w, indent)?;
    }
    let hidden = v.rows.len() - order.len() - filtered_out;
    if hidden > 0 {
        writeln!(
            out,
            "… and {} (healthier); -v lists every company",
            plural(hidden, "more company")
        )?;
    }
    let mut counts = std::collections::BTreeMap::new();
    for r in v.rows.iter().filter(|r| !r.is_problem()) {
        if let Some(l) = r.level {
            *counts.entry(l).or_insert(0) += 1;
        }
    }
    let mut summary: Vec<String> = counts
        .iter()
        .map(|(l, n)| format!("{n} {}", l.as_str()))
        .collect();
    let broken = v
        .rows
        .iter()
        .filter(|r| r.error.is_none() && r.creds_problem.is_some())
        .count();
    if broken > 0 {
        summary.insert(0, format!("{broken} with a broken creds.json"));
    }
    let errors = v.rows.iter().filter(|r| r.error.is_some()).count();
    if errors > 0 {
        summary.insert(0, format!("{errors} unreadable"));
    }
    write!(
        out,
        "{}: {}",
        plural(v.rows.len(), "company"),
        summary.join(", ")
    )?;
    if let Some(m) = v.min_level.filter(|_| filtered_out > 0) {
        write!(
            out,
            " ({} below {m} not listed)",
            plural(filtered_out, "company")
        )?;
    }
    writeln!(out)?;
    out.flush()
}

fn row(
    out: &mut impl Write,
    r: &CompanyStatus,
    v: &StatusView,
    p: &Paint,
    w: usize,
    indent: usize,
) -> io::Result<()> {
    let now = v.now;
    let cleanup = match &r.last_cleanup {
        Some(c) => format!("{}: -{} {}", ago(Some(c.time), now), c.removed, c.status),
        None => "never".into(),
    };
    let cooldown = r
        .cooldown_until
        .map_or("-".into(), |u| format!("until {}", fmt_time(u, now)));
    let trash = if r.trash_files == 0 {
        "-".into()
    } else {
        format!(
            "{}, {}",
            plural(r.trash_files, "file"),
            fmt_bytes(r.trash_bytes)
        )
    };
    let counted = if r.error.is_some() {
        "?".to_owned()
    } else {
        r.counted.to_string()
    };
    // A broken creds.json outranks any file count: the row says "error", not "healthy".
    let level = match r.level {
        Some(l) if !r.is_problem() => p.level(l),
        _ => p.wrap("31", &format!("{:<9}", "error")),
    };
    writeln!(
        out,
        "{:w$}  {:>5}  {}  {:<9}  {:<14}  {:<22}  {:<12}  {}",
        name(&r.company),
        counted,
        level,
        r.creds,
        ago(r.creds_written, now),
        cleanup,
        cooldown,
        trash
    )?;
    let pad = " ".repeat(indent);
    if r.reserved_pre_keys > 0 {
        let line = format!(
            "{}, {} reserved pre-keys (the server may hand them out: not counted)",
            plural(r.files, "file"),
            r.reserved_pre_keys
        );
        writeln!(out, "{pad}{line}")?;
    }
    let types: Vec<String> = r.by_type.iter().map(|(k, n)| format!("{k} {n}")).collect();
    if !types.is_empty() {
        writeln!(out, "{pad}{}", p.wrap("2", &fit(&types, WIDTH - indent)))?;
    }
    if let Some(until) = r.on_hold_until {
        let line = format!(
            "on hold: {} restored files kept from cleanup until {} (end it with: {})",
            r.on_hold,
            until.format("%Y-%m-%d %H:%M UTC"),
            (v.release)(&r.company)
        );
        writeln!(out, "{pad}{}", p.wrap("36", &line))?;
    }
    if let Some(run) = &r.undo_run {
        let line = format!("undo the last cleanup: {}", (v.undo)(run, &r.company));
        writeln!(out, "{pad}{}", p.wrap("36", &line))?;
    }
    if let Some(h) = &r.lock_holder {
        writeln!(out, "{pad}{}", p.wrap("36", &format!("locked: {h}")))?;
    }
    if let Some(e) = r.error.as_ref().or(r.creds_problem.as_ref()) {
        writeln!(out, "{pad}{}", p.wrap("31", &format!("error: {e}")))?;
    }
    if let Some(k) = r.pre_keys.as_ref().filter(|k| k.may_hand_out + k.waste > 0) {
        let window = if k.server_window_floor > 0 {
            format!(" (ids >= {})", k.server_window_floor)
        } else {
            String::new()
        };
        let mut line = format!(
            "pre-keys: {} the server may hand out{window}, {} waste",
            k.may_hand_out, k.waste
        );
        if k.not_uploaded > 0 {
            line.push_str(&format!(", {} not uploaded", k.not_uploaded));
        }
        if let Some(g) = k.growth.as_ref().filter(|g| g.per_day >= 1.0) {
            line.push_str(&format!(", ~{:.0} minted a day", g.per_day));
        }
        writeln!(out, "{pad}{}", p.wrap("2", &line))?;
    }
    for a in &r.advice {
        writeln!(out, "{pad}{}", p.wrap("33", &format!("advice: {a}")))?;
    }
    if v.history {
        let mut values = downsample(&with_drops(&r.history, &r.drops), 48);
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
            "{pad}{} {}  ({} → {} files, since {span})",
            p.wrap("2", "trend"),
            sparkline(&values),
            values.first().unwrap_or(&0),
            r.files
        )?;
        // The last few drops by name: which run did it, and how to undo it.
        let shown: Vec<String> = r
            .drops
            .iter()
            .rev()
            .take(3)
            .map(|d| {
                format!(
                    "{} → {} (-{}) by {} {} (run {})",
                    d.before,
                    d.after,
                    d.removed,
                    d.by,
                    ago(Some(d.time), now),
                    d.run_id
                )
            })
            .collect();
        if !shown.is_empty() {
            writeln!(out, "{pad}{} {}", p.wrap("2", "drops"), shown.join("; "))?;
        }
    }
    Ok(())
}

/// The hourly samples with each cleanup's before and after counts put in at its time, so a
/// drop shows even when the cleanup and the next sample fall in the same hour.
fn with_drops(history: &[Sample], drops: &[crate::core::records::CleanupMark]) -> Vec<Sample> {
    // At one second, drops in the order they happened, then the sample (taken after them).
    let mut points: Vec<(i64, usize, u32)> =
        history.iter().map(|s| (s.0, usize::MAX, s.1)).collect();
    for (i, d) in drops.iter().enumerate() {
        let t = d.time.timestamp();
        points.push((t, 2 * i, d.before as u32));
        points.push((t, 2 * i + 1, d.after as u32));
    }
    points.sort_by_key(|p| (p.0, p.1));
    points.into_iter().map(|(t, _, n)| Sample(t, n)).collect()
}

/// The exit code's view: a company at warning or above, one that could not be read, or one
/// whose creds.json is corrupt.
pub fn needs_attention(rows: &[CompanyStatus]) -> bool {
    rows.iter()
        .any(|r| r.level.is_none_or(|l| l >= Level::Warning) || r.is_problem())
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

    #[test]
    fn a_drop_inside_an_hour_shows_in_the_trend() {
        let mark = |t: i64, before: usize, after: usize| crate::core::records::CleanupMark {
            run_id: format!("r{t}"),
            time: DateTime::from_timestamp(t, 0).unwrap(),
            by: "trigger".into(),
            emergency: false,
            status: "ok".into(),
            before,
            after,
            removed: before - after,
            trashed: true,
            identity: None,
            next_pre_key_id: None,
            reserved_after: None,
            host: None,
        };
        // The hourly sample taken after the cleanup replaced the one before it.
        let history = vec![Sample(0, 900), Sample(3600 + 60, 140)];
        let points: Vec<u32> = with_drops(&history, &[mark(3600, 912, 140)])
            .iter()
            .map(|s| s.1)
            .collect();
        assert_eq!(points, [900, 912, 140, 140]);
        // Two runs in the same second keep their order.
        let points: Vec<u32> = with_drops(&[], &[mark(5, 31, 1), mark(5, 4, 1)])
            .iter()
            .map(|s| s.1)
            .collect();
        assert_eq!(points, [31, 1, 4, 1]);
    }
}
