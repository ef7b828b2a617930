//! `config`: the effective configuration and where each value came from.

use std::io::Write;

use anyhow::Result;
use serde_json::json;

use crate::cli::ConfigArgs;
use crate::cmd::{Context, Run};
use crate::exit::Exit;

impl Run for ConfigArgs {
    fn run(&self, ctx: &Context) -> Result<Exit> {
        crate::cmd::warn_keep_n(&[ctx.config.rules, ctx.config.emergency_rules], self.json);
        let settings = &ctx.config.settings;
        let mut out = crate::render::stdout();
        if self.json {
            serde_json::to_writer(
                &mut out,
                &json!({ "command": "config", "settings": settings }),
            )?;
            writeln!(out)?;
        } else {
            let w = settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
            let v = settings
                .iter()
                .map(|s| s.value.chars().count())
                .max()
                .unwrap_or(0)
                .min(60);
            for s in settings {
                writeln!(
                    out,
                    "{:w$}  {:v$}  ({})",
                    s.key,
                    crate::render::name(&s.value),
                    s.origin
                )?;
            }
        }
        out.flush()?;
        Ok(Exit::Ok)
    }
}
