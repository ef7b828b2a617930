//! `[notify]`: where alerts go (webhook, Telegram) and how hard sending tries.

use std::time::Duration;

use super::file::FileConfig;
use super::layers::Layers;
use super::{Origin, flag, usage};
use crate::core::notify::NotifyConfig;

pub(super) fn resolve_notify(
    l: &mut Layers,
    g: &crate::cli::GlobalArgs,
    f: &FileConfig,
) -> anyhow::Result<NotifyConfig> {
    let d = NotifyConfig::default();
    let n = &f.notify;
    let timeout = l.duration(
        "notify.timeout",
        None,
        None,
        n.timeout.as_deref(),
        d.timeout,
        (Duration::from_secs(1), Duration::from_secs(60)),
    )?;
    let cfg = NotifyConfig {
        webhook: l.text(
            "notify.webhook",
            flag(g.notification_webhook.clone(), "--notification-webhook"),
            Some("NOTIFICATION_WEBHOOK"),
            n.webhook.clone(),
            true,
        ),
        telegram_token: l.text(
            "notify.telegram_bot_token",
            flag(g.telegram_bot_token.clone(), "--telegram-bot-token"),
            Some("TELEGRAM_BOT_TOKEN"),
            n.telegram_bot_token.clone(),
            true,
        ),
        telegram_chat_id: l.text(
            "notify.telegram_chat_id",
            flag(g.telegram_chat_id.clone(), "--telegram-chat-id"),
            Some("TELEGRAM_CHAT_ID"),
            n.telegram_chat_id.clone(),
            false,
        ),
        // A proxy or a self-hosted Bot API server (and the tests); shown by `config` like
        // every other value (the token is never part of it).
        telegram_api: l
            .text(
                "notify.telegram_api",
                None,
                Some("BAILEYS_JANITOR_TELEGRAM_API"),
                None,
                false,
            )
            .unwrap_or_else(|| {
                l.record(
                    "notify.telegram_api",
                    d.telegram_api.clone(),
                    Origin::Default,
                );
                d.telegram_api
            }),
        timeout,
        retries: l.count(
            "notify.retries",
            None,
            None,
            n.retries,
            d.retries as usize,
            (0, 10),
        )? as u32,
        budget: l.duration(
            "notify.budget",
            None,
            None,
            n.budget.as_deref(),
            d.budget,
            (timeout, Duration::from_secs(300)),
        )?,
        pace: l.duration(
            "notify.pace",
            None,
            None,
            n.pace.as_deref(),
            d.pace,
            (Duration::ZERO, Duration::from_secs(60)),
        )?,
        max_retry_after: d.max_retry_after,
    };
    if let Some(w) = &cfg.webhook {
        check_url(w, "the notification webhook")?;
    }
    // Half a Telegram set-up would send nothing, silently.
    if cfg.telegram_token.is_some() != cfg.telegram_chat_id.is_some() {
        return Err(usage(
            "notify.telegram_bot_token (TELEGRAM_BOT_TOKEN) and notify.telegram_chat_id (TELEGRAM_CHAT_ID) go together: set both or neither",
        ));
    }
    Ok(cfg)
}

/// Never echoes the URL: it is a secret.
pub(super) fn check_url(u: &str, what: &str) -> anyhow::Result<()> {
    if u.starts_with("http://") || u.starts_with("https://") {
        Ok(())
    } else {
        Err(usage(format!("{what} must be an http:// or https:// URL")))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::load;

    #[test]
    fn a_bad_webhook_is_refused_without_echoing_it() {
        let e = load(&[], Some("[notify]\nwebhook = \"ftp://secret-token\"")).unwrap_err();
        assert!(!e.to_string().contains("secret-token"), "{e}");
    }
}
