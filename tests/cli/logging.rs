//! Logs where each supervisor expects them: journald priorities when stderr is the journal
//! stream (or `--log-format journald`), PM2's out log for normal output and error log for
//! warnings and errors.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use crate::testenv::*;

/// A tree whose cleanup logs info lines and one warning (a symlinked company is skipped).
fn tree() -> Tree {
    let t = Tree::new();
    t.creds("company_1", 10, 10);
    std::os::unix::fs::symlink(t.path("company_1"), t.path("company_2")).unwrap();
    t
}

/// Runs `cleanup` with stderr going to a file; returns (stdout, stderr).
fn run_with_stderr_file(
    t: &Tree,
    args: &[&str],
    env: &[(&str, String)],
    journal_stream_of_stderr: bool,
) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let err_path = dir.path().join("stderr");
    let err = std::fs::File::create(&err_path).unwrap();
    let mut c = t.spawn_cmd();
    c.args(args).stdout(Stdio::piped()).stderr(err);
    if journal_stream_of_stderr {
        let m = std::fs::metadata(&err_path).unwrap();
        c.env("JOURNAL_STREAM", format!("{}:{}", m.dev(), m.ino()));
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    (
        text(&out.stdout),
        std::fs::read_to_string(&err_path).unwrap(),
    )
}

#[test]
fn under_the_journal_every_log_line_carries_its_priority() {
    let t = tree();
    let (_, err) = run_with_stderr_file(&t, &["cleanup"], &[], true);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 3, "{err}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("<6>") || l.starts_with("<4>")),
        "{err}"
    );
    let warn = lines.iter().find(|l| l.contains("company_2")).unwrap();
    assert!(warn.starts_with("<4>"), "{warn}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>") && l.contains("cleanup started"))
    );
    // The journal stamps lines itself: no timestamp of ours.
    assert!(!err.contains("Z  INFO"), "{err}");

    // JSON lines get the prefix too (journald strips it and keeps the JSON as the message).
    let (_, err) = run_with_stderr_file(&t, &["--log-format", "json", "cleanup"], &[], true);
    let warn = err.lines().find(|l| l.contains("company_2")).unwrap();
    let json = warn.strip_prefix("<4>").unwrap_or_else(|| panic!("{warn}"));
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["level"], "WARN");
}

#[test]
fn a_journal_stream_inherited_by_a_redirected_stderr_is_ignored() {
    // sd-daemon(3): JOURNAL_STREAM only counts when it names stderr itself.
    let t = tree();
    let other = tempfile::NamedTempFile::new().unwrap();
    let m = other.as_file().metadata().unwrap();
    let (_, err) = run_with_stderr_file(
        &t,
        &["cleanup"],
        &[("JOURNAL_STREAM", format!("{}:{}", m.dev(), m.ino()))],
        false,
    );
    assert!(err.contains("cleanup started"), "{err}");
    assert!(!err.lines().any(|l| l.starts_with('<')), "{err}");
}

#[test]
fn log_format_journald_prefixes_without_the_journal() {
    let t = tree();
    let out = t.run(&["--log-format", "journald", "cleanup"]);
    assert_code(&out, 0);
    let err = text(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("<4>") && l.contains("company_2")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("<6>") && l.contains("cleanup started")),
        "{err}"
    );
}

#[test]
fn under_pm2_normal_output_goes_to_the_out_log_and_warnings_to_the_error_log() {
    let t = tree();
    let (out, err) = run_with_stderr_file(&t, &["cleanup"], &[("pm_id", "3".into())], false);
    assert!(out.contains("cleanup started"), "stdout: {out}");
    assert!(!out.contains("company_2"), "stdout: {out}");
    assert!(
        err.contains("company_2") && err.contains("WARN"),
        "stderr: {err}"
    );
    assert!(!err.contains("cleanup started"), "stderr: {err}");
    // The report itself stays on stdout.
    assert!(out.contains("total:"), "{out}");

    // Without PM2 everything logged goes to stderr.
    let (out, err) = run_with_stderr_file(&t, &["cleanup"], &[], false);
    assert!(!out.contains("cleanup started"), "{out}");
    assert!(
        err.contains("cleanup started") && err.contains("company_2"),
        "{err}"
    );
}

#[test]
fn the_monitor_under_pm2_logs_its_ticks_to_the_out_log() {
    let t = tree();
    let out = Command::new(assert_cmd::cargo::cargo_bin("baileys-janitor"))
        .env_clear()
        .env(
            "BAILEYS_JANITOR_SYSTEM_CONFIG",
            crate::testenv::NO_SYSTEM_CONFIG,
        )
        .env("pm_id", "0")
        .arg("--sessions-path")
        .arg(t.root())
        .args(["monitor", "--interval", "50ms", "--max-ticks", "2"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let (o, e) = (text(&out.stdout), text(&out.stderr));
    assert!(o.contains("INFO"), "stdout: {o}\nstderr: {e}");
    assert!(!e.contains("INFO"), "stderr: {e}");
    assert!(e.contains("WARN") && e.contains("company_2"), "stderr: {e}");
}
