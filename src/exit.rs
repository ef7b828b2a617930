//! Exit codes, in one place (documented in `--help` and the README).

use std::process::ExitCode;

/// No `Ord`: the numbers do not rank outcomes (busy is 75, failed 1); [`Exit::worst`] does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Exit {
    #[default]
    Ok = 0,
    /// A lock was busy and that company (or the whole run) was skipped.
    Busy = 75,
    /// Some company or file failed; the others were still processed.
    Failed = 1,
    /// Usage or configuration error: nothing was touched.
    Usage = 2,
}

impl Exit {
    /// Combines two outcomes: a failure outranks busy, busy outranks ok.
    pub fn worst(self, other: Exit) -> Exit {
        fn rank(e: Exit) -> u8 {
            match e {
                Exit::Ok => 0,
                Exit::Busy => 1,
                Exit::Failed => 2,
                Exit::Usage => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   success
  1   some company or file failed (the others were still processed);
      for `monitor --once` and `status`: a company is at warning level or above
  2   usage or configuration error; nothing was touched
  75  busy: a lock was held by another run, so that company (or the whole run) was skipped";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_outcome_wins() {
        assert_eq!(Exit::Ok.worst(Exit::Busy), Exit::Busy);
        assert_eq!(Exit::Busy.worst(Exit::Failed), Exit::Failed);
        assert_eq!(Exit::Failed.worst(Exit::Busy), Exit::Failed);
        assert_eq!(Exit::Ok.worst(Exit::Ok), Exit::Ok);
    }
}
