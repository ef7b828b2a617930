//! `log_level` and `log_format`.

use super::file::FileConfig;
use super::layers::Layers;
use super::{Origin, flag, usage};
use crate::cli::GlobalArgs;
use crate::logging::LogFormat;

pub(super) fn resolve_log(
    l: &mut Layers,
    g: &GlobalArgs,
    file: &FileConfig,
) -> anyhow::Result<(String, LogFormat)> {
    let log_level = l
        .text(
            "log_level",
            flag(g.log_level.clone(), "--log-level"),
            Some("BAILEYS_JANITOR_LOG"),
            file.log_level.clone(),
            false,
        )
        .unwrap_or_else(|| {
            l.record("log_level", "info".into(), Origin::Default);
            "info".into()
        });
    if crate::logging::parse_level(&log_level).is_none() {
        return Err(usage(format!(
            "log level {log_level:?} is not one of error, warn, info, debug, trace"
        )));
    }
    let log_format = match (g.log_format, l.env("BAILEYS_JANITOR_LOG_FORMAT")) {
        (Some(f), _) => {
            l.record(
                "log_format",
                f.as_str().into(),
                Origin::Flag("--log-format"),
            );
            f
        }
        (None, Some(v)) => {
            let f = LogFormat::parse(&v).ok_or_else(|| {
                usage(format!(
                    "environment variable BAILEYS_JANITOR_LOG_FORMAT: {v:?} is not text, json or journald"
                ))
            })?;
            l.record(
                "log_format",
                f.as_str().into(),
                Origin::Env("BAILEYS_JANITOR_LOG_FORMAT"),
            );
            f
        }
        (None, None) => {
            let (f, origin) = file
                .log_format
                .map_or((LogFormat::Text, Origin::Default), |f| (f, Origin::File));
            l.record("log_format", f.as_str().into(), origin);
            f
        }
    };
    Ok((log_level, log_format))
}
