//! The age and count limits the planner applies. Defaults are the spec's, except pre-keys (see
//! [`PreKeyRule`] and docs/prekeys.md); the emergency set is the stricter one the trigger's
//! emergency layer uses. Safety rules (protected types, pre-key counters, freshness) are not here:
//! no configuration can turn them off.

use std::time::Duration;

/// Baileys 7's first upload after pairing, and every upload when the server holds none
/// (`INITIAL_PREKEY_COUNT`, src/Defaults/index.ts). Baileys 6 uploaded 30.
pub const INITIAL_PREKEY_COUNT: u64 = 812;

/// Ids kept below the server window (docs/prekeys.md, "The margin").
pub const DEFAULT_PRE_KEY_MARGIN: u64 = 100;

/// Which pre-keys a cleanup keeps, beyond the ones no rule may remove (not uploaded yet,
/// `nextPreKeyId - 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreKeyRule {
    /// Keep every id the WhatsApp server may still hand out to a new contact:
    /// `id >= nextPreKeyId - INITIAL_PREKEY_COUNT - margin`. The default.
    ServerWindow { margin: u64 },
    /// The spec's rule: keep the newest N by id (`pre_keys.keep = N`, and `--emergency`).
    KeepNewest(usize),
}

impl PreKeyRule {
    /// The default rule with the default margin.
    pub const SERVER_WINDOW: PreKeyRule = PreKeyRule::ServerWindow {
        margin: DEFAULT_PRE_KEY_MARGIN,
    };

    /// The lowest id the server window keeps, for a given `nextPreKeyId`.
    pub fn window_floor(next_pre_key_id: u64, margin: u64) -> u64 {
        next_pre_key_id.saturating_sub(INITIAL_PREKEY_COUNT.saturating_add(margin))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// `session-*` older than this goes (with its `identity-key-*`).
    pub session_max_age: Duration,
    /// `sender-key-*` and `sender-key-memory-*` older than this go.
    pub sender_key_max_age: Duration,
    /// Which pre-keys are kept.
    pub pre_keys: PreKeyRule,
    /// Nothing changed more recently than this is removed: the app is live.
    pub min_age: Duration,
    /// A `*.tmp` older than this is a leftover of a crashed write.
    pub tmp_max_age: Duration,
}

impl Rules {
    /// The daily rules: sessions 14 days, sender keys 3 days (the spec's), pre-keys: the server
    /// window (the spec's newest 50 would break first contact, docs/prekeys.md).
    pub const NORMAL: Rules = Rules {
        session_max_age: Duration::from_secs(14 * 86_400),
        sender_key_max_age: Duration::from_secs(3 * 86_400),
        pre_keys: PreKeyRule::SERVER_WINDOW,
        min_age: Duration::from_secs(10 * 60),
        tmp_max_age: Duration::from_secs(10 * 60),
    };

    /// The emergency rules: sessions 7 days, sender keys 1 day, the newest 30 pre-keys.
    pub const EMERGENCY: Rules = Rules {
        session_max_age: Duration::from_secs(7 * 86_400),
        sender_key_max_age: Duration::from_secs(86_400),
        pre_keys: PreKeyRule::KeepNewest(30),
        min_age: Duration::from_secs(10 * 60),
        tmp_max_age: Duration::from_secs(10 * 60),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_floor_is_next_minus_812_minus_margin_and_never_underflows() {
        assert_eq!(PreKeyRule::window_floor(813, 0), 1);
        assert_eq!(PreKeyRule::window_floor(2000, 100), 2000 - 912);
        assert_eq!(PreKeyRule::window_floor(500, 100), 0);
        assert_eq!(PreKeyRule::window_floor(0, u64::MAX), 0);
    }
}
