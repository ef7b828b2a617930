//! The config file, as written. Durations stay strings here: they are parsed and bounded in
//! `layers` like values from the environment or flags, so every source gets the same checks.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::usage;
use crate::logging::LogFormat;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub sessions_path: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub company_prefix: Option<String>,
    pub single_tenant: Option<bool>,
    pub allow_empty: Option<bool>,
    pub log_level: Option<String>,
    pub log_format: Option<LogFormat>,
    pub metrics_file: Option<PathBuf>,
    #[serde(default)]
    pub cleanup: FileRules,
    #[serde(default)]
    pub emergency: FileRules,
    #[serde(default)]
    pub pre_keys: FilePreKeys,
    #[serde(default)]
    pub trash: FileTrash,
    #[serde(default)]
    pub trigger: FileTrigger,
    #[serde(default)]
    pub notify: FileNotify,
    #[serde(default)]
    pub monitor: FileMonitor,
    #[serde(default)]
    pub restore: FileRestore,
    #[serde(default)]
    pub store: FileStore,
    /// `layout = "openclaw"` at the top level (same as `[store] layout`).
    pub layout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRestore {
    pub hold: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStore {
    /// `sqlite:PATH` or `postgres://…` (secret: may hold a password).
    pub url: Option<String>,
    pub layout: Option<String>,
    /// Redis: the key pattern, `*` where the tenant is.
    pub key_pattern: Option<String>,
    /// Evolution API: the PostgreSQL database with `"Session"` (secret: may hold a password).
    pub creds: Option<String>,
    /// Evolution API's `CACHE_REDIS_PREFIX_KEY` (hashes `<prefix>:instance:<id>`).
    pub evolution_prefix: Option<String>,
    /// A file whose first line is the store's password (readable by its owner only).
    pub password_file: Option<PathBuf>,
    /// PostgreSQL / MySQL: the schema (database) of the janitor's own tables.
    pub state_schema: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMonitor {
    pub interval: Option<String>,
    pub warning: Option<usize>,
    pub critical: Option<usize>,
    pub emergency: Option<usize>,
    pub repeat_warning: Option<String>,
    pub repeat_critical: Option<String>,
    pub repeat_emergency: Option<String>,
    pub hysteresis: Option<usize>,
    pub auto_cleanup: Option<bool>,
    pub cleanup_stale_after: Option<String>,
    pub trigger_stale_after: Option<String>,
    pub health_failures: Option<usize>,
    pub tick_failures: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTrigger {
    pub threshold: Option<usize>,
    pub emergency_threshold: Option<usize>,
    pub cooldown: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileNotify {
    pub webhook: Option<String>,
    pub telegram_bot_token: Option<String>,
    pub telegram_chat_id: Option<String>,
    pub ping_url: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<usize>,
    pub budget: Option<String>,
    pub pace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRules {
    pub session_max_age: Option<String>,
    pub sender_key_max_age: Option<String>,
    pub max_pre_keys: Option<usize>,
    pub min_file_age: Option<String>,
    pub tmp_max_age: Option<String>,
    /// `[cleanup]` only: how long the daily cleanup waits for a company another run holds.
    pub lock_wait: Option<String>,
}

/// `[pre_keys]`: the daily cleanup's pre-key rule (docs/prekeys.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePreKeys {
    /// Keep the newest N instead of the server window (the spec's rule).
    pub keep: Option<usize>,
    /// Ids kept below `nextPreKeyId - 812`.
    pub margin: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTrash {
    pub enabled: Option<bool>,
    pub retention: Option<String>,
}

/// Keys whose values are secrets: a parse error on their line never shows the value.
const SECRET_KEYS: &[&str] = &["webhook", "telegram_bot_token", "ping_url"];

pub fn read(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| usage(describe(path, &text, &e)))
}

/// One line, naming the key and line, never echoing the line itself (it may hold a secret).
fn describe(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let mut msg = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(span) = e.span() else {
        return format!("config file {}: {msg}", path.display());
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let table = text
        .lines()
        .take(line_no)
        .filter_map(|l| {
            let l = l.trim();
            (l.starts_with('[') && l.ends_with(']')).then(|| l.trim_matches(['[', ']']).trim())
        })
        .last();
    let key = line.split('=').next().map(str::trim).filter(|k| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    let secret = key.is_some_and(|k| SECRET_KEYS.contains(&k))
        || SECRET_KEYS.iter().any(|s| line.contains(s));
    if secret {
        // Values appear in backticks or quotes in serde's messages: drop them.
        msg = msg
            .split(['`', '"'])
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join("…");
    }
    let key = match (table, key) {
        (Some(t), Some(k)) if !line.trim_start().starts_with('[') => format!(", key {t}.{k}"),
        (None, Some(k)) => format!(", key {k}"),
        _ => String::new(),
    };
    format!("config file {}: line {line_no}{key}: {msg}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        let e = toml::from_str::<FileConfig>(text).unwrap_err();
        describe(Path::new("c.toml"), text, &e)
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = err("[cleanup]\nsession_max_age = 14\n");
        assert!(
            e.contains("line 2") && e.contains("cleanup.session_max_age"),
            "{e}"
        );
        assert!(err("bogus = 1").contains("bogus"));
    }

    #[test]
    fn a_broken_secret_line_is_never_echoed() {
        let e = err("[notify]\nwebhook = \"https://hooks.slack.com/services/T0/B0/SECRET\n");
        assert!(!e.contains("SECRET") && !e.contains("hooks.slack"), "{e}");
        assert!(e.contains("notify.webhook"), "{e}");
        let e = err("[notify]\nwebhook = 5\n");
        assert!(e.contains("webhook"), "{e}");
    }
}
