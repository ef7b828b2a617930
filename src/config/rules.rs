//! `[cleanup]`, `[emergency]`, `[pre_keys]`, `[trash]` and `[restore]`: what a cleanup may
//! remove and how it can be undone.

use std::time::Duration;

use super::file::{FileConfig, FilePreKeys, FileRules};
use super::layers::Layers;
use super::{DAY, Origin, Overrides, flag, usage};
use crate::core::rules::{DEFAULT_PRE_KEY_MARGIN, PreKeyRule, Rules};

/// The cleanup rules of both layers and what undoes them.
pub(super) struct Cleanup {
    pub rules: Rules,
    pub emergency_rules: Rules,
    pub trash: bool,
    pub trash_retention: Duration,
    pub restore_hold: Duration,
    pub lock_wait: Duration,
}

pub(super) fn resolve_cleanup(
    l: &mut Layers,
    file: &FileConfig,
    o: &Overrides,
) -> anyhow::Result<Cleanup> {
    let mut rules = resolve_rules(l, Rules::NORMAL, &file.cleanup, RULE_KEYS_NORMAL)?;
    (rules.pre_keys, rules.pre_key_margin) = resolve_pre_keys(l, &file.cleanup, &file.pre_keys)?;
    let mut emergency_rules =
        resolve_rules(l, Rules::EMERGENCY, &file.emergency, RULE_KEYS_EMERGENCY)?;
    emergency_rules.pre_key_margin = rules.pre_key_margin;
    emergency_rules.pre_keys =
        resolve_emergency_pre_keys(l, file.emergency.max_pre_keys, rules.pre_keys)?;
    let trash = !o.no_trash && l.boolean("trash.enabled", None, None, file.trash.enabled, true)?;
    if o.no_trash {
        l.record("trash.enabled", "false".into(), Origin::Flag("--no-trash"));
    }
    let trash_retention = l.duration(
        "trash.retention",
        None,
        None,
        file.trash.retention.as_deref(),
        Duration::from_secs(7 * DAY),
        (
            Duration::from_secs(3600),
            Duration::from_secs(10 * 365 * DAY),
        ),
    )?;
    let restore_hold = l.duration(
        "restore.hold",
        None,
        None,
        file.restore.hold.as_deref(),
        Duration::from_secs(7 * DAY),
        (Duration::ZERO, Duration::from_secs(365 * DAY)),
    )?;

    if file.emergency.lock_wait.is_some() {
        return Err(usage(
            "config key emergency.lock_wait does not exist; set cleanup.lock_wait",
        ));
    }
    let lock_wait = l.duration(
        "cleanup.lock_wait",
        flag(o.lock_wait, "--lock-wait"),
        Some("BAILEYS_JANITOR_LOCK_WAIT"),
        file.cleanup.lock_wait.as_deref(),
        Duration::from_secs(60),
        (Duration::ZERO, Duration::from_secs(3600)),
    )?;
    Ok(Cleanup {
        rules,
        emergency_rules,
        trash,
        trash_retention,
        restore_hold,
        lock_wait,
    })
}

struct RuleKeys {
    session_max_age: &'static str,
    sender_key_max_age: &'static str,
    max_pre_keys: &'static str,
    min_file_age: &'static str,
    tmp_max_age: &'static str,
}

const RULE_KEYS_NORMAL: RuleKeys = RuleKeys {
    session_max_age: "cleanup.session_max_age",
    sender_key_max_age: "cleanup.sender_key_max_age",
    max_pre_keys: "cleanup.max_pre_keys",
    min_file_age: "cleanup.min_file_age",
    tmp_max_age: "cleanup.tmp_max_age",
};

const RULE_KEYS_EMERGENCY: RuleKeys = RuleKeys {
    session_max_age: "emergency.session_max_age",
    sender_key_max_age: "emergency.sender_key_max_age",
    max_pre_keys: "emergency.max_pre_keys",
    min_file_age: "emergency.min_file_age",
    tmp_max_age: "emergency.tmp_max_age",
};

fn resolve_rules(
    l: &mut Layers,
    base: Rules,
    f: &FileRules,
    keys: RuleKeys,
) -> anyhow::Result<Rules> {
    let ten_years = Duration::from_secs(10 * 365 * DAY);
    let hour = Duration::from_secs(3600);
    // The live-app guard can be moved, not switched off: Baileys caches keys for ~5 minutes.
    let five_minutes = Duration::from_secs(5 * 60);
    Ok(Rules {
        session_max_age: l.duration(
            keys.session_max_age,
            None,
            None,
            f.session_max_age.as_deref(),
            base.session_max_age,
            (hour, ten_years),
        )?,
        sender_key_max_age: l.duration(
            keys.sender_key_max_age,
            None,
            None,
            f.sender_key_max_age.as_deref(),
            base.sender_key_max_age,
            (hour, ten_years),
        )?,
        // Decided by `resolve_pre_keys` / `resolve_emergency_pre_keys`.
        pre_keys: base.pre_keys,
        pre_key_margin: base.pre_key_margin,
        min_age: l.duration(
            keys.min_file_age,
            None,
            None,
            f.min_file_age.as_deref(),
            base.min_age,
            (five_minutes, ten_years),
        )?,
        tmp_max_age: l.duration(
            keys.tmp_max_age,
            None,
            None,
            f.tmp_max_age.as_deref(),
            base.tmp_max_age,
            (five_minutes, ten_years),
        )?,
    })
}

/// The emergency pre-key rule: the newest N only when `emergency.max_pre_keys` is set (an
/// operator's explicit choice); otherwise the daily rule, so no layer removes a key the server
/// still hands out unless someone asked for it (docs/prekeys.md).
fn resolve_emergency_pre_keys(
    l: &mut Layers,
    max_pre_keys: Option<usize>,
    daily: PreKeyRule,
) -> anyhow::Result<PreKeyRule> {
    Ok(match max_pre_keys {
        Some(n) => PreKeyRule::KeepNewest(l.count(
            RULE_KEYS_EMERGENCY.max_pre_keys,
            None,
            None,
            Some(n),
            n,
            (0, 1_000_000),
        )?),
        None => {
            let shown = match daily {
                PreKeyRule::ServerWindow => "server window (as the daily rule)".to_owned(),
                PreKeyRule::KeepNewest(n) => format!("{n} (as pre_keys.keep)"),
            };
            l.record(RULE_KEYS_EMERGENCY.max_pre_keys, shown, Origin::Default);
            daily
        }
    })
}

/// The daily pre-key rule and the margin: `pre_keys.keep = N` (or its older spelling
/// `cleanup.max_pre_keys`) keeps the newest N; otherwise the server window with
/// `pre_keys.margin`.
fn resolve_pre_keys(
    l: &mut Layers,
    cleanup: &FileRules,
    f: &FilePreKeys,
) -> anyhow::Result<(PreKeyRule, u64)> {
    let (keep, key) = match (f.keep, cleanup.max_pre_keys) {
        (Some(_), Some(_)) => {
            return Err(usage(
                "config keys pre_keys.keep and cleanup.max_pre_keys say the same thing: set only pre_keys.keep",
            ));
        }
        (Some(n), None) => (Some(n), "pre_keys.keep"),
        (None, Some(n)) => (Some(n), "cleanup.max_pre_keys"),
        (None, None) => (None, "pre_keys.keep"),
    };
    let margin = l.count(
        "pre_keys.margin",
        None,
        None,
        f.margin,
        DEFAULT_PRE_KEY_MARGIN as usize,
        (0, 100_000),
    )? as u64;
    let rule = match keep {
        Some(_) => PreKeyRule::KeepNewest(l.count(key, None, None, keep, 0, (0, 1_000_000))?),
        None => {
            l.record("pre_keys.keep", "server window".into(), Origin::Default);
            PreKeyRule::ServerWindow
        }
    };
    Ok((rule, margin))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::UsageError;
    use super::super::tests::load;
    use crate::core::rules::{PreKeyRule, Rules};
    use std::path::PathBuf;

    #[test]
    fn file_then_flag() {
        let toml = r#"
            sessions_path = "/srv/s"
            [cleanup]
            session_max_age = "21d"
            max_pre_keys = 80
            [emergency]
            sender_key_max_age = "12h"
        "#;
        let c = load(&[], Some(toml)).unwrap();
        assert_eq!(c.sessions_path, PathBuf::from("/srv/s"));
        assert_eq!(c.rules.session_max_age, Duration::from_secs(21 * 86_400));
        assert_eq!(c.rules.pre_keys, PreKeyRule::KeepNewest(80));
        assert_eq!(c.rules.sender_key_max_age, Rules::NORMAL.sender_key_max_age);
        assert_eq!(
            c.emergency_rules.sender_key_max_age,
            Duration::from_secs(12 * 3600)
        );
        let c = load(&["--sessions-path", "/flag"], Some(toml)).unwrap();
        assert_eq!(c.sessions_path, PathBuf::from("/flag"));
    }

    #[test]
    fn pre_keys_default_to_the_server_window_on_every_layer_and_keep_n_only_when_set() {
        let c = load(&[], None).unwrap();
        assert_eq!(c.rules.pre_keys, PreKeyRule::ServerWindow);
        assert_eq!(c.rules.pre_key_margin, 100);
        // Regression (issue 20): the emergency rules kept the newest 30 by default and broke
        // first contact on every v7 account.
        assert_eq!(c.emergency_rules.pre_keys, PreKeyRule::ServerWindow);
        assert_eq!(c.emergency_rules.pre_key_margin, 100);
        let c = load(&[], Some("[pre_keys]\nkeep = 50")).unwrap();
        assert_eq!(c.rules.pre_keys, PreKeyRule::KeepNewest(50));
        assert_eq!(c.emergency_rules.pre_keys, PreKeyRule::KeepNewest(50));
        let c = load(&[], Some("[pre_keys]\nmargin = 0")).unwrap();
        assert_eq!(c.rules.pre_keys, PreKeyRule::ServerWindow);
        assert_eq!(c.emergency_rules.pre_key_margin, 0);
        let c = load(&[], Some("[emergency]\nmax_pre_keys = 10")).unwrap();
        assert_eq!(c.emergency_rules.pre_keys, PreKeyRule::KeepNewest(10));
        assert_eq!(c.rules.pre_keys, PreKeyRule::ServerWindow);
        let c = load(
            &[],
            Some("[pre_keys]\nkeep = 50\n[emergency]\nmax_pre_keys = 10"),
        )
        .unwrap();
        assert_eq!(c.rules.pre_keys, PreKeyRule::KeepNewest(50));
        assert_eq!(c.emergency_rules.pre_keys, PreKeyRule::KeepNewest(10));
        let err = |t: &str| load(&[], Some(t)).unwrap_err().to_string();
        assert!(
            err("[pre_keys]\nkeep = 50\n[cleanup]\nmax_pre_keys = 50").contains("pre_keys.keep")
        );
        assert!(err("[pre_keys]\nmargin = 100001").contains("pre_keys.margin"));
        assert!(err("[pre_keys]\nkeep = -1").contains("keep"));
        assert!(err("[pre_keys]\nwindow = 1").contains("window"));
    }

    #[test]
    fn bad_files_name_the_key() {
        let err = |t: &str| load(&[], Some(t)).unwrap_err().to_string();
        assert!(err("[cleanup]\nsession_max_ag = \"1d\"").contains("session_max_ag"));
        assert!(err("[cleanup]\nsession_max_age = 14").contains("session_max_age"));
        assert!(err("[cleanup]\nsession_max_age = \"fortnight\"").contains("fortnight"));
        assert!(err("[cleanup]\nmax_pre_keys = -1").contains("max_pre_keys"));
        assert!(err("[cleanup]\nmin_file_age = \"1s\"").contains("cleanup.min_file_age"));
        assert!(
            err("[cleanup]\nsession_max_age = \"100000d\"").contains("cleanup.session_max_age")
        );
        assert!(err("bogus = 1").contains("bogus"));
        let e = load(&["--config", "/nonexistent/x.toml"], None).unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some());
    }
}
