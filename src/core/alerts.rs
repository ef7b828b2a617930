//! The monitor's alert state machine, Alertmanager-style: notify when a company's level rises,
//! repeat while it stays raised (more often the higher it is), send one "resolved" when it is
//! healthy again. A hysteresis band stops a company that hovers around a threshold from flapping:
//! a level drops only once the count is `hysteresis` files below its threshold.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::core::level::{Level, Thresholds};

#[derive(Clone, Copy, Debug)]
pub struct AlertPolicy {
    pub thresholds: Thresholds,
    pub hysteresis: usize,
    pub repeat_warning: Duration,
    pub repeat_critical: Duration,
    pub repeat_emergency: Duration,
}

impl AlertPolicy {
    fn repeat(&self, l: Level) -> Duration {
        match l {
            Level::Warning => self.repeat_warning,
            Level::Critical | Level::Trigger => self.repeat_critical,
            _ => self.repeat_emergency,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlertState {
    /// The alert level (healthy, warning, critical or emergency).
    pub level: Option<Level>,
    pub last_sent: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    Raised(Level),
    Repeat(Level),
    Resolved,
}

/// One observation. Returns what to notify, if anything, and updates the state.
pub fn step(
    state: &mut AlertState,
    files: usize,
    p: &AlertPolicy,
    now: DateTime<Utc>,
) -> Option<Notice> {
    // A send time from the future (a state written while the clock was ahead, or copied from
    // another host) would hold every reminder back until the clock caught up: it counts as now.
    state.last_sent = state.last_sent.map(|t| t.min(now));
    let current = state.level.unwrap_or(Level::Healthy);
    let raw = p.thresholds.level(files).alert();
    let sticky = p
        .thresholds
        .level(files + p.hysteresis)
        .alert()
        .min(current);
    let new = raw.max(sticky);
    state.level = Some(new);
    let repeat_due = |s: &AlertState| {
        s.last_sent.is_none_or(|t| {
            now - t >= chrono::Duration::from_std(p.repeat(new)).unwrap_or(chrono::Duration::MAX)
        })
    };
    let notice = if new > current {
        Some(Notice::Raised(new))
    } else if new == Level::Healthy && current > Level::Healthy {
        Some(Notice::Resolved)
    } else if new > Level::Healthy && repeat_due(state) {
        Some(Notice::Repeat(new))
    } else {
        None
    };
    if notice.is_some() {
        state.last_sent = Some(now);
    }
    notice
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: AlertPolicy = AlertPolicy {
        thresholds: Thresholds::SPEC,
        hysteresis: 5,
        repeat_warning: Duration::from_secs(6 * 3600),
        repeat_critical: Duration::from_secs(30 * 60),
        repeat_emergency: Duration::from_secs(5 * 60),
    };

    fn at(mins: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + mins * 60, 0).unwrap()
    }

    #[test]
    fn rise_repeat_and_resolve() {
        let mut s = AlertState::default();
        assert_eq!(step(&mut s, 100, &P, at(0)), None);
        assert_eq!(
            step(&mut s, 150, &P, at(1)),
            Some(Notice::Raised(Level::Warning))
        );
        assert_eq!(step(&mut s, 155, &P, at(2)), None);
        assert_eq!(
            step(&mut s, 170, &P, at(3)),
            Some(Notice::Raised(Level::Critical))
        );
        assert_eq!(
            step(&mut s, 176, &P, at(4)),
            None,
            "the trigger band is still critical"
        );
        assert_eq!(
            step(&mut s, 180, &P, at(5)),
            Some(Notice::Raised(Level::Emergency))
        );
        assert_eq!(step(&mut s, 181, &P, at(9)), None);
        assert_eq!(
            step(&mut s, 181, &P, at(10)),
            Some(Notice::Repeat(Level::Emergency))
        );
        assert_eq!(step(&mut s, 100, &P, at(11)), Some(Notice::Resolved));
        assert_eq!(step(&mut s, 100, &P, at(12)), None);
    }

    #[test]
    fn a_send_time_from_the_future_counts_as_now() {
        let mut s = AlertState {
            level: Some(Level::Emergency),
            last_sent: Some(at(60 * 24 * 365)),
        };
        assert_eq!(step(&mut s, 181, &P, at(0)), None, "no page for a restart");
        assert_eq!(s.last_sent, Some(at(0)));
        assert_eq!(
            step(&mut s, 181, &P, at(5)),
            Some(Notice::Repeat(Level::Emergency)),
            "reminders resume one interval later"
        );
    }

    #[test]
    fn hovering_at_a_threshold_does_not_flap() {
        let mut s = AlertState::default();
        assert_eq!(
            step(&mut s, 150, &P, at(0)),
            Some(Notice::Raised(Level::Warning))
        );
        for (i, n) in [149, 150, 146, 151, 148, 150].into_iter().enumerate() {
            assert_eq!(step(&mut s, n, &P, at(1 + i as i64)), None, "{n}");
        }
        assert_eq!(step(&mut s, 144, &P, at(10)), Some(Notice::Resolved));
        // Dropping from emergency to warning needs the count below 180 - 5 and 170 - 5.
        let mut s = AlertState::default();
        step(&mut s, 182, &P, at(0));
        step(&mut s, 176, &P, at(1));
        assert_eq!(s.level, Some(Level::Emergency));
        step(&mut s, 160, &P, at(2));
        assert_eq!(s.level, Some(Level::Warning));
    }

    #[test]
    fn repeats_follow_the_current_level() {
        let mut s = AlertState::default();
        step(&mut s, 150, &P, at(0));
        assert_eq!(step(&mut s, 150, &P, at(6 * 60 - 1)), None);
        assert_eq!(
            step(&mut s, 150, &P, at(6 * 60)),
            Some(Notice::Repeat(Level::Warning))
        );
        step(&mut s, 172, &P, at(6 * 60 + 1));
        assert_eq!(
            step(&mut s, 172, &P, at(6 * 60 + 31)),
            Some(Notice::Repeat(Level::Critical))
        );
    }
}
