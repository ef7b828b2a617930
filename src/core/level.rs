//! The spec's file-count levels: healthy < 150 ≤ warning < 170 ≤ critical < 175 ≤ trigger
//! < 180 ≤ emergency < 185 ≤ danger. Every threshold is configurable.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Healthy,
    Warning,
    Critical,
    Trigger,
    Emergency,
    Danger,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Healthy => "healthy",
            Level::Warning => "warning",
            Level::Critical => "critical",
            Level::Trigger => "trigger",
            Level::Emergency => "emergency",
            Level::Danger => "danger",
        }
    }

    /// The monitor alerts on three levels (warning / critical / emergency): the spec's trigger
    /// band is critical, its danger band is emergency.
    pub fn alert(self) -> Level {
        match self {
            Level::Trigger => Level::Critical,
            Level::Danger => Level::Emergency,
            l => l,
        }
    }

    pub const ALL: [Level; 6] = [
        Level::Healthy,
        Level::Warning,
        Level::Critical,
        Level::Trigger,
        Level::Emergency,
        Level::Danger,
    ];

    /// 0 healthy … 5 danger, for metrics.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Level, String> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a level (healthy, warning, critical, trigger, emergency, danger)"
                )
            })
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub warning: usize,
    pub critical: usize,
    pub trigger: usize,
    pub emergency: usize,
    pub danger: usize,
}

impl Thresholds {
    /// The spec's table: the defaults, written once.
    pub const SPEC: Thresholds = Thresholds {
        warning: 150,
        critical: 170,
        trigger: 175,
        emergency: 180,
        danger: 185,
    };

    pub fn level(&self, files: usize) -> Level {
        if files >= self.danger {
            Level::Danger
        } else if files >= self.emergency {
            Level::Emergency
        } else if files >= self.trigger {
            Level::Trigger
        } else if files >= self.critical {
            Level::Critical
        } else if files >= self.warning {
            Level::Warning
        } else {
            Level::Healthy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_table() {
        let t = Thresholds::SPEC;
        let cases = [
            (0, Level::Healthy),
            (149, Level::Healthy),
            (150, Level::Warning),
            (169, Level::Warning),
            (170, Level::Critical),
            (174, Level::Critical),
            (175, Level::Trigger),
            (179, Level::Trigger),
            (180, Level::Emergency),
            (184, Level::Emergency),
            (185, Level::Danger),
            (10_000, Level::Danger),
        ];
        for (files, level) in cases {
            assert_eq!(t.level(files), level, "{files}");
        }
        assert_eq!(Level::Trigger.alert(), Level::Critical);
        assert_eq!(Level::Danger.alert(), Level::Emergency);
    }
}
