//! The layers that clean besides the daily cleanup, as a second host runs them in the two-host
//! tests of every store (`shared_sql`, `shared_redis`, `shared_sqlite`; issue 23): each keeps
//! the rows a restore on the first host put on hold, and the layers that clean on their own
//! (trigger, `monitor --auto-cleanup`) keep the one cooldown either of them started, on either
//! host. Defined once here so every store runs the same
//! layers with the same flags and reads their reports the same way.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Levels low enough for the stores' small fixtures (13 counted keys an account) to be at the
/// emergency level, so `monitor --auto-cleanup` cleans them. They agree with the trigger
/// thresholds of [`TRIGGER`] and [`TRIGGER_EMERGENCY`].
pub const SMALL_FLEET_LEVELS: &str =
    "[monitor]\nwarning = 1\ncritical = 2\nemergency = 3\nhysteresis = 0\n";

/// A config file in `dir` with [`SMALL_FLEET_LEVELS`] (for the stores whose fixture has no
/// config file of its own: Redis, SQLite).
pub fn small_fleet_config(dir: &Path) -> PathBuf {
    let p = dir.join("small-fleet-levels.toml");
    std::fs::write(&p, SMALL_FLEET_LEVELS).unwrap();
    p
}

/// A session row no rule keeps (unused for 30 days), of an address no fixture has:
/// `(type, id)`. Its value is `stores::session(30)`.
pub const NEW_OLD_SESSION: (&str, &str) = ("session", "5511555555555.0");

#[derive(Clone, Copy, Debug)]
pub struct Layer {
    pub name: &'static str,
    /// The command and its flags, `--json` included.
    pub args: &'static [&'static str],
    /// Its exit code on these fixtures: `monitor --once` and `status` say 1 while a tenant is
    /// at warning or above, which [`SMALL_FLEET_LEVELS`] makes every tenant.
    pub exit: i32,
}

pub const MONITOR_AUTO_CLEANUP: Layer = Layer {
    name: "monitor --auto-cleanup",
    args: &["monitor", "--once", "--auto-cleanup", "--json"],
    exit: 1,
};

pub const EMERGENCY_CLEANUP: Layer = Layer {
    name: "cleanup --emergency",
    args: &["cleanup", "--emergency", "--json"],
    exit: 0,
};

/// The trigger's normal cleanup.
pub const TRIGGER: Layer = Layer {
    name: "trigger",
    args: &[
        "trigger",
        "--threshold",
        "4",
        "--emergency-threshold",
        "1000",
        "--json",
    ],
    exit: 0,
};

/// The trigger's emergency cleanup.
pub const TRIGGER_EMERGENCY: Layer = Layer {
    name: "trigger (emergency)",
    args: &[
        "trigger",
        "--threshold",
        "4",
        "--emergency-threshold",
        "5",
        "--json",
    ],
    exit: 0,
};

/// A dry run: read-only, so it reads the holds on the store's read-only path.
pub const DRY_RUN: Layer = Layer {
    name: "cleanup --dry-run",
    args: &["cleanup", "--dry-run", "--json"],
    exit: 0,
};

/// What `status` says a cleanup would remove now (read-only too).
pub const STATUS: Layer = Layer {
    name: "status",
    args: &["status", "--json"],
    exit: 1,
};

impl Layer {
    /// How many rows the layer removed from `tenant` (`status`: would remove), read from its
    /// JSON report; `None` when it did not clean the tenant at all, so a test of a hold can
    /// tell "kept them" from "never tried".
    pub fn removed(&self, v: &Value, tenant: &str) -> Option<u64> {
        let rows = v["companies"]
            .as_array()
            .or_else(|| v["tenants"].as_array());
        let row = rows
            .unwrap_or_else(|| panic!("{}: no companies or tenants: {v}", self.name))
            .iter()
            .find(|r| r["company"] == tenant || r["tenant"] == tenant)
            .unwrap_or_else(|| panic!("{}: no row for {tenant}: {v}", self.name));
        match self.args[0] {
            // "removed N (M pre-keys), …", or null when it did not clean.
            "monitor" => row["cleanup"]
                .as_str()
                .map(|s| words_removed(s).unwrap_or_else(|| panic!("{s}"))),
            "trigger" => matches!(
                row["action"].as_str(),
                Some("cleanup" | "emergency-cleanup")
            )
            .then(|| row["removed"].as_u64().unwrap()),
            "status" => row["removable_now"].as_u64(),
            _ => (row["status"] == "ok").then(|| row["removed"].as_u64().unwrap()),
        }
    }

    /// The layer left `tenant` alone because of its cooldown, and not for some other reason:
    /// the trigger says `cooldown`; the monitor did not clean a tenant at the emergency level.
    pub fn cooling_down(&self, v: &Value, tenant: &str) -> bool {
        let row = v["companies"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no companies: {v}", self.name))
            .iter()
            .find(|r| r["company"] == tenant)
            .unwrap_or_else(|| panic!("{}: no row for {tenant}: {v}", self.name));
        match self.args[0] {
            "trigger" => row["action"] == "cooldown",
            "monitor" => row["cleanup"].is_null() && row["level"] == "emergency",
            _ => panic!("{} has no cooldown", self.name),
        }
    }

    /// The layer, on host B, cleaned `tenant` (so it saw the hold rather than skipping the
    /// tenant) and removed none of its rows: `now` is what `held` was before it ran.
    #[track_caller]
    pub fn assert_kept<T: PartialEq + std::fmt::Debug>(
        &self,
        report: &Value,
        tenant: &str,
        now: &T,
        held: &T,
    ) {
        assert_eq!(
            self.removed(report, tenant),
            Some(0),
            "{} on host B: {report}",
            self.name
        );
        assert_eq!(
            now, held,
            "{} on host B removed rows host A restored",
            self.name
        );
    }
}

fn words_removed(s: &str) -> Option<u64> {
    s.strip_prefix("removed ")?.split(' ').next()?.parse().ok()
}

/// Every layer but the daily cleanup (which `shared_*` test on their own), in the order
/// docs/safety.md lists them, then the read-only ones: a dry run and `status`.
pub const OTHER_LAYERS: [Layer; 6] = [
    TRIGGER,
    TRIGGER_EMERGENCY,
    MONITOR_AUTO_CLEANUP,
    EMERGENCY_CLEANUP,
    DRY_RUN,
    STATUS,
];

/// The layers that clean on their own, in pairs: once `first` cleaned a tenant, `then` (on
/// another host, or the same one) leaves it alone for the tenant's one cooldown
/// (`trigger.cooldown`, docs/configuration.md). An emergency trigger's mark keeps back the
/// monitor's auto-cleanup (an emergency cleanup), and the monitor's keeps back every trigger.
pub const COOLDOWN_PAIRS: [(Layer, Layer); 4] = [
    (MONITOR_AUTO_CLEANUP, MONITOR_AUTO_CLEANUP),
    (TRIGGER_EMERGENCY, MONITOR_AUTO_CLEANUP),
    (MONITOR_AUTO_CLEANUP, TRIGGER),
    (MONITOR_AUTO_CLEANUP, TRIGGER_EMERGENCY),
];

/// Each pair of [`COOLDOWN_PAIRS`], with `then` on host B and on host A again: (first, then,
/// the host `then` runs on).
pub fn cooldown_cases() -> Vec<(Layer, Layer, &'static str)> {
    COOLDOWN_PAIRS
        .iter()
        .flat_map(|&(first, then)| [(first, then, "host-b"), (first, then, "host-a")])
        .collect()
}

/// What `status --json` on a store shows of `tenant`'s one cooldown and of its rows on hold
/// (both in the shared record, whichever host wrote them): `(cooldown_until, on_hold)`.
pub fn status_cooldown_and_holds(v: &Value, tenant: &str) -> (Option<String>, u64) {
    let row = v["tenants"]
        .as_array()
        .unwrap_or_else(|| panic!("status: no tenants: {v}"))
        .iter()
        .find(|r| r["tenant"] == tenant)
        .unwrap_or_else(|| panic!("status: no row for {tenant}: {v}"));
    (
        row["cooldown_until"].as_str().map(str::to_owned),
        row["on_hold"].as_u64().unwrap_or(0),
    )
}
