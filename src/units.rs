//! Parsing the values operators write: durations (`14d`, `6h`) and booleans (`1`, `yes`, `on`).
//! A leaf module: `cli` and `config` both use it, and it uses neither.

use std::time::Duration;

/// `"14d"`, `"6h"`, `"90s"` (humantime), never a bare number: units are not guessed.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        format!("invalid duration {s:?} ({e}); write it like \"14d\", \"6h\" or \"10m\"")
    })
}

/// Booleans as operators write them: 1/0, true/false, yes/no, on/off, in any case.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" => Ok(true),
        "0" | "false" | "no" | "off" | "n" => Ok(false),
        _ => Err(format!(
            "{s:?} is not a boolean (use 1/0, true/false, yes/no or on/off)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_as_operators_write_them() {
        for t in ["1", "true", "TRUE", "yes", "Yes", "on", "ON", " y "] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "false", "False", "no", "NO", "off", "n"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["", "maybe", "2", "truee"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_duration("14").is_err());
        assert!(
            parse_duration("fortnight")
                .unwrap_err()
                .contains("fortnight")
        );
    }
}
