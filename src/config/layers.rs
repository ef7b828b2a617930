//! Where each value comes from: flag > environment > config file > default. Every value passes
//! through here, so durations, counts and booleans are parsed and bounded the same way whatever
//! their source, errors name the key and the source, and `baileys-janitor config` can show where
//! each effective value came from.

use std::time::Duration;

use serde::Serialize;

use crate::config::usage;
use crate::units::{parse_bool, parse_duration};

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "source", content = "name", rename_all = "lowercase")]
pub enum Origin {
    Default,
    File,
    Env(&'static str),
    Flag(&'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File => f.write_str("config file"),
            Origin::Env(v) => write!(f, "env {v}"),
            Origin::Flag(n) => write!(f, "flag {n}"),
        }
    }
}

/// One effective setting, as `baileys-janitor config` prints it (secrets already redacted).
#[derive(Clone, Debug, Serialize)]
pub struct Setting {
    pub key: &'static str,
    pub value: String,
    pub origin: Origin,
}

/// Reads the environment through a function, so tests can give their own.
pub type EnvFn<'a> = &'a dyn Fn(&str) -> Option<String>;

pub struct Layers<'a> {
    env: EnvFn<'a>,
    pub settings: Vec<Setting>,
}

/// Inclusive bounds of a duration setting.
pub type DurationBounds = (Duration, Duration);

pub const REDACTED: &str = "(set, hidden)";

impl<'a> Layers<'a> {
    pub fn new(env: EnvFn<'a>) -> Layers<'a> {
        Layers {
            env,
            settings: Vec::new(),
        }
    }

    /// An environment variable; set but empty counts as unset.
    pub fn env(&self, var: &str) -> Option<String> {
        (self.env)(var).filter(|v| !v.trim().is_empty())
    }

    fn note(&mut self, key: &'static str, value: String, origin: Origin) {
        self.settings.retain(|s| s.key != key);
        self.settings.push(Setting { key, value, origin });
    }

    fn env_parsed<T>(
        &self,
        var: Option<&'static str>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> anyhow::Result<Option<(T, Origin)>> {
        let Some(var) = var else { return Ok(None) };
        match self.env(var) {
            None => Ok(None),
            Some(raw) => parse(&raw)
                .map(|v| Some((v, Origin::Env(var))))
                .map_err(|e| usage(format!("environment variable {var}: {e}"))),
        }
    }

    /// A duration, bounded: exit 2 naming the key and where the value came from.
    pub fn duration(
        &mut self,
        key: &'static str,
        flag: Option<(Duration, &'static str)>,
        env: Option<&'static str>,
        file: Option<&str>,
        default: Duration,
        (min, max): DurationBounds,
    ) -> anyhow::Result<Duration> {
        let (v, origin) = match flag {
            Some((v, name)) => (v, Origin::Flag(name)),
            None => match self.env_parsed(env, parse_duration)? {
                Some(x) => x,
                None => match file {
                    Some(s) => (
                        parse_duration(s).map_err(|e| usage(format!("config key {key}: {e}")))?,
                        Origin::File,
                    ),
                    None => (default, Origin::Default),
                },
            },
        };
        if v < min || v > max {
            return Err(usage(format!(
                "config key {key} = {} ({origin}): must be between {} and {}",
                humantime::format_duration(v),
                humantime::format_duration(min),
                humantime::format_duration(max)
            )));
        }
        self.note(key, humantime::format_duration(v).to_string(), origin);
        Ok(v)
    }

    /// A count, bounded.
    pub fn count(
        &mut self,
        key: &'static str,
        flag: Option<(usize, &'static str)>,
        env: Option<&'static str>,
        file: Option<usize>,
        default: usize,
        (min, max): (usize, usize),
    ) -> anyhow::Result<usize> {
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?} is not a whole number"))
        };
        let (v, origin) = match flag {
            Some((v, name)) => (v, Origin::Flag(name)),
            None => match self.env_parsed(env, parse)? {
                Some(x) => x,
                None => match file {
                    Some(v) => (v, Origin::File),
                    None => (default, Origin::Default),
                },
            },
        };
        if v < min || v > max {
            return Err(usage(format!(
                "config key {key} = {v} ({origin}): must be between {min} and {max}"
            )));
        }
        self.note(key, v.to_string(), origin);
        Ok(v)
    }

    /// A boolean. A flag can only switch it on (`--dry-run`), so `flag` is `true` or absent.
    pub fn boolean(
        &mut self,
        key: &'static str,
        flag: Option<(bool, &'static str)>,
        env: Option<&'static str>,
        file: Option<bool>,
        default: bool,
    ) -> anyhow::Result<bool> {
        let (v, origin) = match flag {
            Some((v, name)) => (v, Origin::Flag(name)),
            None => match self.env_parsed(env, parse_bool)? {
                Some(x) => x,
                None => match file {
                    Some(v) => (v, Origin::File),
                    None => (default, Origin::Default),
                },
            },
        };
        self.note(key, v.to_string(), origin);
        Ok(v)
    }

    /// A string (or path); `secret` ones are shown as set or not, never their value.
    pub fn text(
        &mut self,
        key: &'static str,
        flag: Option<(String, &'static str)>,
        env: Option<&'static str>,
        file: Option<String>,
        secret: bool,
    ) -> Option<String> {
        let non_empty = |s: String| (!s.trim().is_empty()).then_some(s);
        let picked = match flag.and_then(|(v, n)| non_empty(v).map(|v| (v, Origin::Flag(n)))) {
            Some(x) => Some(x),
            None => match env.and_then(|var| self.env(var).map(|v| (v, Origin::Env(var)))) {
                Some(x) => Some(x),
                None => file.and_then(non_empty).map(|v| (v, Origin::File)),
            },
        };
        match &picked {
            Some((v, origin)) => {
                let shown = if secret {
                    REDACTED.to_owned()
                } else {
                    v.clone()
                };
                self.note(key, shown, origin.clone());
            }
            None => self.note(key, "(not set)".into(), Origin::Default),
        }
        picked.map(|(v, _)| v)
    }

    /// Replaces a recorded value with what it resolved to (a path made canonical), keeping
    /// its origin and its place.
    pub fn resolved(&mut self, key: &str, value: String) {
        if let Some(s) = self.settings.iter_mut().find(|s| s.key == key) {
            s.value = value;
        }
    }

    /// Records a value resolved elsewhere (derived defaults such as the state directory).
    pub fn record(&mut self, key: &'static str, value: String, origin: Origin) {
        self.note(key, value, origin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let env = env_of(&[("X", "yes")]);
        let mut l = Layers::new(&env);
        assert!(l.boolean("k", None, Some("X"), Some(false), false).unwrap());
        assert_eq!(l.settings[0].origin, Origin::Env("X"));
        assert!(
            l.boolean("k", Some((true, "--k")), Some("X"), None, false)
                .unwrap()
        );
        assert_eq!(l.settings.len(), 1, "one row per key");
        assert!(!l.boolean("j", None, None, Some(false), true).unwrap());
        assert!(l.boolean("i", None, None, None, true).unwrap());
    }

    #[test]
    fn empty_env_is_unset_and_bad_env_names_the_variable() {
        let env = env_of(&[("EMPTY", ""), ("BAD", "maybe")]);
        let mut l = Layers::new(&env);
        assert!(!l.boolean("k", None, Some("EMPTY"), None, false).unwrap());
        let e = l.boolean("k", None, Some("BAD"), None, false).unwrap_err();
        assert!(e.to_string().contains("BAD"), "{e}");
    }

    #[test]
    fn durations_are_bounded_whatever_their_source() {
        let env = env_of(&[("D", "1000000y")]);
        let mut l = Layers::new(&env);
        let b = (Duration::from_secs(1), Duration::from_secs(86_400));
        let e = l
            .duration("a.b", None, Some("D"), None, Duration::from_secs(5), b)
            .unwrap_err();
        assert!(
            e.to_string().contains("a.b") && e.to_string().contains("env D"),
            "{e}"
        );
        let e = l
            .duration(
                "a.b",
                Some((Duration::ZERO, "--b")),
                None,
                None,
                Duration::from_secs(5),
                b,
            )
            .unwrap_err();
        assert!(e.to_string().contains("flag --b"), "{e}");
        let e = l
            .duration("a.b", None, None, Some("2d"), Duration::from_secs(5), b)
            .unwrap_err();
        assert!(e.to_string().contains("config file"), "{e}");
    }

    #[test]
    fn secrets_are_never_recorded() {
        let env = env_of(&[("HOOK", "https://hooks.example/T000/secret")]);
        let mut l = Layers::new(&env);
        let v = l.text("notify.webhook", None, Some("HOOK"), None, true);
        assert!(v.unwrap().contains("secret"));
        assert_eq!(l.settings[0].value, REDACTED);
    }
}
