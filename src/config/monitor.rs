//! `[monitor]`: the watch loop's levels, repeats, staleness and health checks; its levels
//! must agree with the trigger's.

use std::time::Duration;

use super::file::FileConfig;
use super::layers::Layers;
use super::trigger::TriggerConfig;
use super::{DAY, Overrides, THRESHOLD_BOUNDS, flag, rising, usage};
use crate::core::level::Thresholds;

#[derive(Clone, Debug, PartialEq)]
pub struct MonitorConfig {
    pub interval: Duration,
    pub warning: usize,
    pub critical: usize,
    pub emergency: usize,
    pub repeat_warning: Duration,
    pub repeat_critical: Duration,
    pub repeat_emergency: Duration,
    /// A level drops only once the count is this many files below its threshold.
    pub hysteresis: usize,
    pub auto_cleanup: bool,
    pub cleanup_stale_after: Duration,
    pub trigger_stale_after: Duration,
    pub health_failures: u32,
    pub health_url: Option<String>,
    /// Ticks failing this many times in a row raise an alert of their own.
    pub tick_failures: u32,
}

pub(super) fn resolve_monitor(
    l: &mut Layers,
    f: &FileConfig,
    o: &Overrides,
) -> anyhow::Result<MonitorConfig> {
    let m = &f.monitor;
    let second = Duration::from_secs(1);
    let month = Duration::from_secs(30 * DAY);
    let warning = l.count(
        "monitor.warning",
        None,
        None,
        m.warning,
        Thresholds::SPEC.warning,
        THRESHOLD_BOUNDS,
    )?;
    let critical = l.count(
        "monitor.critical",
        None,
        None,
        m.critical,
        Thresholds::SPEC.critical,
        THRESHOLD_BOUNDS,
    )?;
    let emergency = l.count(
        "monitor.emergency",
        None,
        None,
        m.emergency,
        Thresholds::SPEC.emergency,
        THRESHOLD_BOUNDS,
    )?;
    rising(&[
        ("monitor.warning", warning),
        ("monitor.critical", critical),
        ("monitor.emergency", emergency),
    ])?;
    Ok(MonitorConfig {
        // Above 10ms: `--interval 0s` would spin a core and flood the log.
        interval: l.duration(
            "monitor.interval",
            flag(o.interval, "--interval"),
            None,
            m.interval.as_deref(),
            Duration::from_secs(60),
            (Duration::from_millis(10), Duration::from_secs(DAY)),
        )?,
        warning,
        critical,
        emergency,
        repeat_warning: l.duration(
            "monitor.repeat_warning",
            None,
            None,
            m.repeat_warning.as_deref(),
            Duration::from_secs(6 * 3600),
            (second, month),
        )?,
        repeat_critical: l.duration(
            "monitor.repeat_critical",
            None,
            None,
            m.repeat_critical.as_deref(),
            Duration::from_secs(30 * 60),
            (second, month),
        )?,
        repeat_emergency: l.duration(
            "monitor.repeat_emergency",
            None,
            None,
            m.repeat_emergency.as_deref(),
            Duration::from_secs(5 * 60),
            (second, month),
        )?,
        hysteresis: l.count(
            "monitor.hysteresis",
            None,
            None,
            m.hysteresis,
            5,
            (0, warning),
        )?,
        auto_cleanup: l.boolean(
            "monitor.auto_cleanup",
            o.auto_cleanup.then_some((true, "--auto-cleanup")),
            Some("AUTO_CLEANUP"),
            m.auto_cleanup,
            false,
        )?,
        cleanup_stale_after: l.duration(
            "monitor.cleanup_stale_after",
            None,
            None,
            m.cleanup_stale_after.as_deref(),
            Duration::from_secs(26 * 3600),
            (second, month),
        )?,
        trigger_stale_after: l.duration(
            "monitor.trigger_stale_after",
            None,
            None,
            m.trigger_stale_after.as_deref(),
            Duration::from_secs(2 * 3600),
            (second, month),
        )?,
        health_failures: l.count(
            "monitor.health_failures",
            None,
            None,
            m.health_failures,
            3,
            (1, 1000),
        )? as u32,
        health_url: l.text(
            "monitor.health_url",
            flag(o.health_url.clone(), "--health-url"),
            Some("BAILEYS_JANITOR_HEALTH_URL"),
            None,
            false,
        ),
        tick_failures: l.count(
            "monitor.tick_failures",
            None,
            None,
            m.tick_failures,
            3,
            (1, 1000),
        )? as u32,
    })
}

/// The monitor's levels must not contradict the trigger's: a company the trigger already cleans
/// as an emergency cannot be merely "critical" for the monitor.
pub(super) fn agrees_with_trigger(
    monitor: &MonitorConfig,
    trigger: &TriggerConfig,
) -> anyhow::Result<()> {
    rising(&[
        ("monitor.critical", monitor.critical),
        ("trigger.emergency_threshold", trigger.emergency_threshold),
    ])?;
    if monitor.emergency > trigger.emergency_threshold {
        return Err(usage(format!(
            "config key monitor.emergency = {} must not be above trigger.emergency_threshold = {}",
            monitor.emergency, trigger.emergency_threshold
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{load, load_env};

    #[test]
    fn monitor_levels_cannot_contradict_the_trigger() {
        let e = load(&[], Some("[monitor]\ncritical = 178\nemergency = 190")).unwrap_err();
        assert!(
            e.to_string().contains("monitor.emergency")
                && e.to_string().contains("trigger.emergency_threshold"),
            "{e}"
        );
        let e = load(&[], Some("[monitor]\ncritical = 186\nemergency = 190")).unwrap_err();
        assert!(
            e.to_string().contains("monitor.critical = 186")
                && e.to_string().contains("trigger.emergency_threshold = 185"),
            "{e}"
        );
    }

    #[test]
    fn every_value_is_bounded_whatever_its_source() {
        let e = load_env(&["monitor", "--interval", "0s"], &[]).unwrap_err();
        assert!(e.to_string().contains("monitor.interval"), "{e}");
        let e = load_env(&["monitor", "--interval", "400d"], &[]).unwrap_err();
        assert!(e.to_string().contains("monitor.interval"), "{e}");
        let e = load_env(&["trigger", "--cooldown", "1000000y"], &[]).unwrap_err();
        assert!(e.to_string().contains("trigger.cooldown"), "{e}");
        let e = load(&[], Some("[trash]\nretention = \"1000000y\"")).unwrap_err();
        assert!(e.to_string().contains("trash.retention"), "{e}");
    }
}
