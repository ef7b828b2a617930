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

/// What every run says when an operator chose keep-N (docs/prekeys.md).
pub const KEEP_NEWEST_WARNING: &str = "pre-keys: keep-N is set, so pre-keys the WhatsApp server still hands out are removed: first messages from new contacts will fail (Invalid PreKey ID) until retried; remove pre_keys.keep / emergency.max_pre_keys to keep the server window (docs/prekeys.md)";

/// Which pre-keys a cleanup keeps, beyond the ones no rule may remove (not uploaded yet,
/// `nextPreKeyId - 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreKeyRule {
    /// Keep every id the WhatsApp server may still hand out to a new contact:
    /// `id >= nextPreKeyId - INITIAL_PREKEY_COUNT - margin` ([`Rules::pre_key_margin`]). The
    /// default of every layer, emergencies included.
    ServerWindow,
    /// The spec's rule: keep the newest N by id. Only ever set by an operator
    /// (`pre_keys.keep = N`, `emergency.max_pre_keys = N`): no default produces it, because it
    /// removes keys the server still hands out.
    KeepNewest(usize),
}

impl PreKeyRule {
    /// The lowest id the server window keeps, for a given `nextPreKeyId`.
    pub fn window_floor(next_pre_key_id: u64, margin: u64) -> u64 {
        next_pre_key_id.saturating_sub(INITIAL_PREKEY_COUNT.saturating_add(margin))
    }

    /// True when the rule removes keys the server may still hand out: first contacts fail.
    pub fn breaks_first_contact(self) -> bool {
        matches!(self, PreKeyRule::KeepNewest(_))
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
    /// Ids kept below `nextPreKeyId - 812` (`pre_keys.margin`): the server window's margin, for
    /// the rule and for what the levels leave out (core::tally).
    pub pre_key_margin: u64,
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
        pre_keys: PreKeyRule::ServerWindow,
        pre_key_margin: DEFAULT_PRE_KEY_MARGIN,
        min_age: Duration::from_secs(10 * 60),
        tmp_max_age: Duration::from_secs(10 * 60),
    };

    /// The emergency rules: sessions 7 days, sender keys 1 day (the spec's), and pre-keys by the
    /// same server window as the daily rules: an emergency is about the files that grow, and a
    /// removed server-window key breaks a new contact's first message (docs/prekeys.md). The
    /// spec's newest 30 only when `emergency.max_pre_keys` is set.
    pub const EMERGENCY: Rules = Rules {
        session_max_age: Duration::from_secs(7 * 86_400),
        sender_key_max_age: Duration::from_secs(86_400),
        pre_keys: PreKeyRule::ServerWindow,
        pre_key_margin: DEFAULT_PRE_KEY_MARGIN,
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

    #[test]
    fn no_default_rule_set_breaks_first_contact() {
        assert!(!Rules::NORMAL.pre_keys.breaks_first_contact());
        assert!(!Rules::EMERGENCY.pre_keys.breaks_first_contact());
        assert!(PreKeyRule::KeepNewest(30).breaks_first_contact());
        assert_eq!(
            Rules::EMERGENCY.pre_key_margin,
            Rules::NORMAL.pre_key_margin
        );
    }
}
