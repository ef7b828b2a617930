//! The age and count limits the planner applies. Defaults are the spec's; the emergency set is
//! the stricter one the trigger's emergency layer uses. Safety rules (protected types, pre-key
//! counters, freshness) are not here: no configuration can turn them off.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// `session-*` older than this goes (with its `identity-key-*`).
    pub session_max_age: Duration,
    /// `sender-key-*` and `sender-key-memory-*` older than this go.
    pub sender_key_max_age: Duration,
    /// Pre-keys kept, newest by id.
    pub max_pre_keys: usize,
    /// Nothing changed more recently than this is removed: the app is live.
    pub min_age: Duration,
    /// A `*.tmp` older than this is a leftover of a crashed write.
    pub tmp_max_age: Duration,
}

impl Rules {
    /// The spec's daily rules: sessions 14 days, sender keys 3 days, 50 pre-keys.
    pub const NORMAL: Rules = Rules {
        session_max_age: Duration::from_secs(14 * 86_400),
        sender_key_max_age: Duration::from_secs(3 * 86_400),
        max_pre_keys: 50,
        min_age: Duration::from_secs(10 * 60),
        tmp_max_age: Duration::from_secs(10 * 60),
    };

    /// The emergency rules: sessions 7 days, sender keys 1 day, 30 pre-keys.
    pub const EMERGENCY: Rules = Rules {
        session_max_age: Duration::from_secs(7 * 86_400),
        sender_key_max_age: Duration::from_secs(86_400),
        max_pre_keys: 30,
        min_age: Duration::from_secs(10 * 60),
        tmp_max_age: Duration::from_secs(10 * 60),
    };
}
