//! `monitor --once`'s table (or JSON).

use std::io::{self, Write};

use serde_json::json;

use crate::core::monitor::Row;

pub fn print(out: &mut impl Write, rows: &[Row], json: bool) -> io::Result<()> {
    if json {
        serde_json::to_writer(
            &mut *out,
            &json!({ "command": "monitor", "companies": rows }),
        )
        .map_err(io::Error::other)?;
        writeln!(out)?;
        return out.flush();
    }
    let w = rows
        .iter()
        .map(|r| r.company.len())
        .max()
        .unwrap_or(7)
        .max(7);
    writeln!(out, "{:w$}  {:>5}  LEVEL", "COMPANY", "FILES")?;
    for r in rows {
        match &r.error {
            Some(e) => writeln!(out, "{:w$}  {:>5}  error: {e}", r.company, "?")?,
            None => writeln!(
                out,
                "{:w$}  {:>5}  {}",
                r.company,
                r.files,
                r.level.as_str()
            )?,
        }
    }
    out.flush()
}
