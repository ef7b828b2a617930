//! Pre-key accounting for `status`: of a folder's pre-keys, how many the WhatsApp server may still
//! hand out, how many it never can (the real waste), and how fast Baileys mints new ones
//! (docs/prekeys.md). Pure: ids, counters and times in, numbers out.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::creds::PreKeyGuard;
use crate::core::rules::{INITIAL_PREKEY_COUNT, PreKeyRule};

/// Minted per day above which `status` points at a reconnect loop. A healthy folder mints about
/// one key per new contact; issue #2797's loop minted ~110 a day for 52 ever used.
pub const GROWTH_ADVICE_PER_DAY: f64 = 50.0;

/// A span shorter than this says nothing about a daily rate.
const MIN_SPAN_DAYS: f64 = 1.0;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PreKeyCounts {
    pub next_pre_key_id: u64,
    /// Lowest id the server may still hand out (`nextPreKeyId - 812 - margin`).
    pub server_window_floor: u64,
    /// Uploaded ids at or above the floor: the server may still hand them out.
    pub may_hand_out: usize,
    /// Below the floor: the server can no longer hand them out.
    pub waste: usize,
    /// Minted but not uploaded yet (`>= firstUnuploadedPreKeyId`).
    pub not_uploaded: usize,
    /// Minted per day, with the span it was measured over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth: Option<Growth>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Growth {
    pub per_day: f64,
    pub ids: u64,
    pub days: f64,
    /// `cleanups` (nextPreKeyId recorded by past cleanups) or `files` (the oldest pre-key's mtime).
    pub from: &'static str,
}

/// Sorts every pre-key id into the server window, the waste, or not uploaded yet.
pub fn count(ids: &[u64], guard: PreKeyGuard, margin: u64) -> PreKeyCounts {
    let floor = PreKeyRule::window_floor(guard.next_pre_key_id, margin);
    let mut c = PreKeyCounts {
        next_pre_key_id: guard.next_pre_key_id,
        server_window_floor: floor,
        may_hand_out: 0,
        waste: 0,
        not_uploaded: 0,
        growth: None,
    };
    for &id in ids {
        if id >= guard.first_unuploaded_pre_key_id {
            c.not_uploaded += 1;
        } else if id >= floor || guard.protects(id) {
            c.may_hand_out += 1;
        } else {
            c.waste += 1;
        }
    }
    c
}

/// How fast `nextPreKeyId` grows. Preferred: the counter recorded by past cleanups (the oldest
/// mark of the last `window`). Otherwise the oldest pre-key file still there: ids minted since,
/// less one full upload (pairing mints 812 at once and is not growth).
pub fn growth(
    next: u64,
    marks: &[(DateTime<Utc>, u64)],
    oldest_file: Option<(u64, DateTime<Utc>)>,
    now: DateTime<Utc>,
    window: chrono::Duration,
) -> Option<Growth> {
    let days = |t: DateTime<Utc>| (now - t).num_seconds() as f64 / 86_400.0;
    let from_marks = marks
        .iter()
        .filter(|(t, id)| *t <= now && now - *t <= window && *id <= next)
        .min_by_key(|(t, _)| *t)
        .filter(|(t, _)| days(*t) >= MIN_SPAN_DAYS)
        .map(|&(t, id)| (next - id, days(t), "cleanups"));
    let from_files = || {
        let (id, t) = oldest_file?;
        let d = days(t);
        (t <= now && d >= MIN_SPAN_DAYS && id < next)
            .then(|| ((next - id).saturating_sub(INITIAL_PREKEY_COUNT), d, "files"))
    };
    let (ids, days, from) = from_marks.or_else(from_files)?;
    Some(Growth {
        per_day: ids as f64 / days,
        ids,
        days,
        from,
    })
}

/// Advice lines about a folder's pre-keys.
pub fn advice(c: &PreKeyCounts) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(g) = &c.growth
        && g.per_day >= GROWTH_ADVICE_PER_DAY
    {
        out.push(format!(
            "pre-keys grow ~{:.0} a day ({} minted in {:.1} days): Baileys re-uploads on reconnects; look for a reconnect loop (docs/prekeys.md)",
            g.per_day, g.ids, g.days
        ));
    }
    if c.waste > 0 {
        out.push(format!(
            "{} pre-keys are below what the server can still hand out: cleanup removes them",
            c.waste
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(next: u64, first: u64) -> PreKeyGuard {
        PreKeyGuard {
            next_pre_key_id: next,
            first_unuploaded_pre_key_id: first,
        }
    }

    fn t(days_ago: f64) -> DateTime<Utc> {
        now() - chrono::Duration::seconds((days_ago * 86_400.0) as i64)
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    const WEEK: chrono::Duration = chrono::Duration::days(7);

    #[test]
    fn counts_split_at_the_window_floor() {
        // next 2001, first unuploaded 1996, margin 100: floor 1089.
        let ids: Vec<u64> = (1..=2000).collect();
        let c = count(&ids, guard(2001, 1996), 100);
        assert_eq!(c.server_window_floor, 1089);
        assert_eq!(c.waste, 1088);
        assert_eq!(c.not_uploaded, 5);
        assert_eq!(c.may_hand_out, 2000 - 1088 - 5);
        // Right after pairing nothing is waste.
        let ids: Vec<u64> = (1..=812).collect();
        let c = count(&ids, guard(813, 813), 100);
        assert_eq!((c.may_hand_out, c.waste, c.not_uploaded), (812, 0, 0));
        // next - 1 is never waste, whatever the counters say.
        let c = count(&[5], guard(6, 9), 0);
        assert_eq!(c.waste, 0);
    }

    #[test]
    fn growth_from_cleanup_marks_prefers_the_oldest_in_the_window() {
        let marks = [(t(10.0), 100), (t(6.0), 1000), (t(1.0), 1600)];
        let g = growth(1660, &marks, None, now(), WEEK).unwrap();
        assert_eq!(g.from, "cleanups");
        assert_eq!(g.ids, 660);
        assert!((g.per_day - 110.0).abs() < 0.01, "{g:?}");
        // A mark younger than a day says nothing; no files either: no rate.
        assert_eq!(growth(1660, &[(t(0.5), 1600)], None, now(), WEEK), None);
        // A mark from the future, or a counter above today's (a restored creds.json): ignored.
        assert_eq!(growth(1660, &[(t(-2.0), 10)], None, now(), WEEK), None);
        assert_eq!(growth(1660, &[(t(3.0), 5000)], None, now(), WEEK), None);
    }

    #[test]
    fn growth_from_files_discounts_the_pairing_upload() {
        // Paired 30 days ago, 300 minted since the 812: 10 a day, no advice.
        let g = growth(1113, &[], Some((1, t(30.0))), now(), WEEK).unwrap();
        assert_eq!(g.from, "files");
        assert!((g.per_day - 10.0).abs() < 0.01, "{g:?}");
        let c = PreKeyCounts {
            growth: Some(g),
            ..count(&[], guard(1113, 1113), 100)
        };
        assert!(advice(&c).is_empty());
        // Issue #2797: 5,241 minted in ~40 days: advice.
        let g = growth(5242, &[], Some((1, t(40.0))), now(), WEEK).unwrap();
        assert!(g.per_day > 100.0);
        let c = PreKeyCounts {
            growth: Some(g),
            ..count(&[1, 2], guard(5242, 5242), 100)
        };
        let a = advice(&c);
        assert_eq!(a.len(), 2, "{a:?}");
        assert!(
            a[0].starts_with("pre-keys grow ~111 a day (4429 minted"),
            "{a:?}"
        );
        assert_eq!(
            a[1],
            "2 pre-keys are below what the server can still hand out: cleanup removes them"
        );
        // Just paired: all 812 minted today, no rate.
        assert_eq!(growth(813, &[], Some((1, t(0.2))), now(), WEEK), None);
    }
}
