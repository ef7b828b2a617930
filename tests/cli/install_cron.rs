//! scripts/install-cron.sh, run against a temporary crontab file (never the real one).

use crate::testenv::*;
use std::process::Command;

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-cron.sh")
}

fn run(crontab: &std::path::Path, logs: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(script())
        .args(["--bin", "/usr/local/bin/baileys-janitor", "--log-dir"])
        .arg(logs)
        .args(args)
        .env("CRONTAB_FILE", crontab)
        .output()
        .unwrap()
}

#[test]
fn install_is_idempotent_and_uninstall_removes_exactly_its_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let crontab = tmp.path().join("crontab");
    let logs = tmp.path().join("logs");
    std::fs::write(
        &crontab,
        "MAILTO=ops@example.com\n15 * * * * /usr/bin/other-job\n",
    )
    .unwrap();
    assert_code(&run(&crontab, &logs, &[]), 0);
    assert_code(&run(&crontab, &logs, &[]), 0);
    let text = std::fs::read_to_string(&crontab).unwrap();
    assert_eq!(text.matches(" cleanup >> ").count(), 1, "{text}");
    assert_eq!(text.matches(" trigger >> ").count(), 1, "{text}");
    assert!(text.contains("0 3 * * * /usr/local/bin/baileys-janitor cleanup >> "));
    assert!(text.contains("*/30 * * * * /usr/local/bin/baileys-janitor trigger >> "));
    assert!(text.contains("/usr/bin/other-job") && text.contains("MAILTO"));
    assert!(logs.is_dir(), "log directory created");

    assert_code(&run(&crontab, &logs, &["--uninstall"]), 0);
    assert_eq!(
        std::fs::read_to_string(&crontab).unwrap(),
        "MAILTO=ops@example.com\n15 * * * * /usr/bin/other-job\n"
    );
}

#[test]
fn print_shows_the_lines_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let crontab = tmp.path().join("crontab");
    let out = run(&crontab, &tmp.path().join("logs"), &["--print"]);
    assert_code(&out, 0);
    assert_eq!(text(&out.stdout).lines().count(), 2);
    assert!(!crontab.exists());
}
