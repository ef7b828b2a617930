//! `[trigger]`: the thresholds at which a company gets a normal or an emergency cleanup.

use std::time::Duration;

use super::file::FileConfig;
use super::layers::Layers;
use super::{DAY, Overrides, THRESHOLD_BOUNDS, flag, rising};
use crate::core::level::Thresholds;

#[derive(Clone, Debug, PartialEq)]
pub struct TriggerConfig {
    /// Files at which a company gets a normal cleanup.
    pub threshold: usize,
    /// Files at which it gets an emergency cleanup.
    pub emergency_threshold: usize,
    /// A company cleaned by the trigger is not triggered again within this.
    pub cooldown: Duration,
}

pub(super) fn resolve_trigger(
    l: &mut Layers,
    file: &FileConfig,
    o: &Overrides,
) -> anyhow::Result<TriggerConfig> {
    let trigger = TriggerConfig {
        threshold: l.count(
            "trigger.threshold",
            flag(o.threshold, "--threshold"),
            None,
            file.trigger.threshold,
            Thresholds::SPEC.trigger,
            THRESHOLD_BOUNDS,
        )?,
        emergency_threshold: l.count(
            "trigger.emergency_threshold",
            flag(o.emergency_threshold, "--emergency-threshold"),
            None,
            file.trigger.emergency_threshold,
            Thresholds::SPEC.danger,
            THRESHOLD_BOUNDS,
        )?,
        cooldown: l.duration(
            "trigger.cooldown",
            flag(o.cooldown, "--cooldown"),
            None,
            file.trigger.cooldown.as_deref(),
            Duration::from_secs(6 * 3600),
            (Duration::from_secs(60), Duration::from_secs(30 * DAY)),
        )?,
    };
    rising(&[
        ("trigger.threshold", trigger.threshold),
        ("trigger.emergency_threshold", trigger.emergency_threshold),
    ])?;
    Ok(trigger)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::load;

    #[test]
    fn thresholds_must_rise() {
        let e = load(
            &[],
            Some("[trigger]\nthreshold = 190\nemergency_threshold = 185"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("trigger.threshold = 190 must be below"),
            "{e}"
        );
        let e = load(&[], Some("[trigger]\nthreshold = 0")).unwrap_err();
        assert!(e.to_string().contains("trigger.threshold"), "{e}");
        let c = load(&[], Some("[trigger]\ncooldown = \"1h\"")).unwrap();
        assert_eq!(c.trigger.cooldown, Duration::from_secs(3600));
    }
}
