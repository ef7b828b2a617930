//! scripts/install-cron.sh, run against a temporary crontab file (never the real one).

use crate::testenv::*;
use std::process::Command;

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-cron.sh")
}

/// Runs the script on a temporary crontab; its logrotate rules go to `logrotate.d/` beside it.
fn run(crontab: &std::path::Path, logs: &std::path::Path, args: &[&str]) -> std::process::Output {
    let rules = crontab.parent().unwrap().join("logrotate.d");
    std::fs::create_dir_all(&rules).unwrap();
    Command::new("bash")
        .arg(script())
        .args(["--bin", "/usr/local/bin/baileys-janitor", "--log-dir"])
        .arg(logs)
        .args(args)
        .env("CRONTAB_FILE", crontab)
        .env("LOGROTATE_DIR", rules)
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
    assert!(text.contains("15,45 * * * * /usr/local/bin/baileys-janitor trigger >> "));
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

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn install_adds_a_logrotate_rule_that_rotates_the_cron_logs_and_uninstall_removes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let crontab = tmp.path().join("crontab");
    let logs = tmp.path().join("logs");
    assert_code(&run(&crontab, &logs, &[]), 0);
    let rule = tmp.path().join("logrotate.d/baileys-janitor-cron");
    let text_of_rule = std::fs::read_to_string(&rule).unwrap();
    assert!(
        text_of_rule.contains(&format!("\"{}/*.log\" {{", logs.display())),
        "{text_of_rule}"
    );

    if have("logrotate") {
        std::fs::write(logs.join("baileys-cleanup.log"), "a run\n").unwrap();
        let state = tmp.path().join("logrotate.state");
        let out = Command::new("logrotate")
            .arg("-f")
            .arg("-s")
            .arg(&state)
            .arg(&rule)
            .output()
            .unwrap();
        assert_code(&out, 0);
        assert!(logs.join("baileys-cleanup.log.1").exists(), "rotated");
        assert!(
            !logs.join("baileys-cleanup.log").exists(),
            "nocreate: cron makes it anew"
        );
    } else {
        eprintln!("SKIPPED: logrotate is not installed; the rule was not exercised");
    }

    assert_code(&run(&crontab, &logs, &["--uninstall"]), 0);
    assert!(!rule.exists());
}

#[test]
fn the_packages_logrotate_rule_is_never_duplicated() {
    // Two rules for one log make logrotate refuse both.
    let tmp = tempfile::tempdir().unwrap();
    let crontab = tmp.path().join("crontab");
    let logs = tmp.path().join("logs");
    let rules = tmp.path().join("logrotate.d");
    std::fs::create_dir_all(&rules).unwrap();
    let package_rule = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/logrotate/baileys-janitor"),
    )
    .unwrap()
    .replace("/var/log/baileys-janitor/", &format!("{}/", logs.display()));
    std::fs::write(rules.join("baileys-janitor"), package_rule).unwrap();
    let out = run(&crontab, &logs, &[]);
    assert_code(&out, 0);
    assert!(
        text(&out.stdout).contains("rotated by"),
        "{}",
        text(&out.stdout)
    );
    assert!(!rules.join("baileys-janitor-cron").exists());
}

#[test]
fn syslog_lines_go_through_logger_with_each_lines_priority() {
    let tmp = tempfile::tempdir().unwrap();
    let crontab = tmp.path().join("crontab");
    let logs = tmp.path().join("logs");
    let t = Tree::new();
    t.creds("company_1", 10, 10);
    std::os::unix::fs::symlink(t.path("company_1"), t.path("company_2")).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("baileys-janitor");
    let out = Command::new("bash")
        .arg(script())
        .arg("--bin")
        .arg(&bin)
        .args(["--syslog", "--env"])
        .arg(format!("BAILEYS_SESSIONS_PATH={}", t.root().display()))
        .env("CRONTAB_FILE", &crontab)
        .env("LOGROTATE_DIR", tmp.path().join("logrotate.d"))
        .output()
        .unwrap();
    assert_code(&out, 0);
    let cron = std::fs::read_to_string(&crontab).unwrap();
    assert!(!cron.contains(">>"), "{cron}");
    assert!(!logs.exists(), "no log directory with --syslog");
    let cleanup = cron
        .lines()
        .find(|l| l.contains("# baileys-janitor cleanup"))
        .unwrap();
    assert!(
        cleanup.contains("| logger -t baileys-janitor-cleanup"),
        "{cleanup}"
    );

    // Run the cron command as cron would, with a logger that records what it is given.
    let fake = tmp.path().join("bin");
    std::fs::create_dir(&fake).unwrap();
    let seen = tmp.path().join("logger.out");
    std::fs::write(
        fake.join("logger"),
        format!(
            "#!/bin/sh\necho \"args: $*\" > {0}\ncat >> {0}\n",
            seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        fake.join("logger"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let command = cleanup
        .splitn(6, ' ')
        .nth(5)
        .unwrap()
        .split(" # baileys-janitor")
        .next()
        .unwrap();
    let status = Command::new("sh")
        .args(["-c", command])
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", fake.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let got = std::fs::read_to_string(&seen).unwrap();
    assert!(
        got.contains("--prio-prefix") && got.contains("-p user.info"),
        "{got}"
    );
    assert!(
        got.lines()
            .any(|l| l.starts_with("<4>") && l.contains("company_2")),
        "{got}"
    );
    assert!(
        got.lines()
            .any(|l| l.starts_with("<6>") && l.contains("cleanup started")),
        "{got}"
    );
    assert!(got.contains("total:"), "the report is logged too: {got}");
}

/// Issue 22: no password in a cron line (the crontab and `ps` show it). The script refuses an
/// `--env` that carries one and installs lines that name only where the password lives.
#[test]
fn install_refuses_a_password_in_the_cron_line() {
    let tmp = tempfile::tempdir().unwrap();
    let crontab = tmp.path().join("crontab");
    let logs = tmp.path().join("logs");
    for env in [
        "BAILEYS_JANITOR_STORE=postgres://janitor:hunter2-secret@db:5432/wa",
        "BAILEYS_JANITOR_STORE=rediss://default:hunter2-secret@r:6380/0",
        "BAILEYS_JANITOR_STORE=postgres://janitor@db/wa PGPASSWORD=hunter2-secret",
        "REDISCLI_AUTH=hunter2-secret",
        "BAILEYS_JANITOR_CREDS=postgres://e@db/evo?password=hunter2-secret",
    ] {
        let out = run(&crontab, &logs, &["--env", env]);
        assert_code(&out, 2);
        assert!(text(&out.stderr).contains("carries a password"), "{env}");
        assert!(
            !text(&out.stderr).contains("hunter2"),
            "{}",
            text(&out.stderr)
        );
        assert!(!crontab.exists(), "nothing installed for {env}");
    }
    let out = run(
        &crontab,
        &logs,
        &[
            "--env",
            "BAILEYS_JANITOR_STORE=postgres://janitor@db:5432/wa?sslmode=verify-full BAILEYS_JANITOR_STORE_PASSWORD_FILE=/etc/baileys-janitor/store-password",
        ],
    );
    assert_code(&out, 0);
    let lines = std::fs::read_to_string(&crontab).unwrap();
    assert!(
        lines.contains("BAILEYS_JANITOR_STORE_PASSWORD_FILE="),
        "{lines}"
    );
}

/// Every cron line and command line the docs tell operators to set up keeps passwords out of
/// argv: no `user:password@` in a URL on a line that runs the binary or sits in a crontab.
#[test]
fn docs_never_put_a_password_on_a_command_line() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for dir in ["docs", "docs/stores", "deploy"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let p = e.path();
            if p.extension()
                .is_some_and(|x| x == "md" || x == "service" || x == "js")
            {
                files.push(p);
            }
        }
    }
    let secret_url = |l: &str| {
        l.split("://").skip(1).any(|rest| {
            let authority = rest.split(['/', ' ', '\'', '"']).next().unwrap_or("");
            authority
                .rsplit_once('@')
                .is_some_and(|(userinfo, _)| userinfo.contains(':'))
        }) || l.contains("PGPASSWORD=")
            || l.contains("REDISCLI_AUTH=")
    };
    for f in files {
        let body = std::fs::read_to_string(&f).unwrap();
        for (i, l) in body.lines().enumerate() {
            let runs = l.contains("baileys-janitor ")
                || l.contains("* * *")
                || l.contains("/baileys-janitor");
            let config_file =
                l.trim_start().starts_with("url =") || l.trim_start().starts_with("creds =");
            assert!(
                !(runs && !config_file && secret_url(l)),
                "{}:{}: a password on a command line: {l}",
                f.display(),
                i + 1
            );
        }
    }
}

/// What cron does with a command field: `\%` is a `%`, a bare `%` ends the command (the rest is
/// its stdin); the command then runs under `sh -c`.
fn cron_command(line: &str) -> String {
    let command = line.splitn(6, ' ').nth(5).unwrap();
    let mut out = String::new();
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'%') => {
                out.push('%');
                chars.next();
            }
            '%' => break,
            c => out.push(c),
        }
    }
    out
}

/// A binary path or log directory with spaces, a quote or a `%` went into the crontab bare: the
/// shell split it and cron cut the line at the `%`, so the daily cleanup never ran (and said so
/// nowhere). Such values are quoted and escaped now, and the installed lines really run.
#[test]
fn cron_lines_run_with_spaces_quotes_and_percent_in_paths_and_env() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let crontab = tmp.path().join("crontab");
    let logs = tmp.path().join("logs 100% it's");
    let bin_dir = tmp.path().join("my bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let bin = bin_dir.join("baileys-janitor");
    std::fs::write(&bin, "#!/bin/sh\necho \"ran $1 W=$W\"\n").unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rules = tmp.path().join("logrotate.d");
    std::fs::create_dir_all(&rules).unwrap();
    let out = Command::new("bash")
        .arg(script())
        .arg("--bin")
        .arg(&bin)
        .arg("--log-dir")
        .arg(&logs)
        .args(["--env", "W='a b%c'"])
        .env("CRONTAB_FILE", &crontab)
        .env("LOGROTATE_DIR", &rules)
        .output()
        .unwrap();
    assert_code(&out, 0);
    let tab = std::fs::read_to_string(&crontab).unwrap();
    assert_eq!(tab.lines().count(), 2, "{tab}");
    let line = tab.lines().find(|l| l.contains(" cleanup ")).unwrap();
    let run = Command::new("sh")
        .args(["-c", &cron_command(line)])
        .output()
        .unwrap();
    assert_code(&run, 0);
    let log = std::fs::read_to_string(logs.join("baileys-cleanup.log"))
        .unwrap_or_else(|e| panic!("the cron line wrote no log ({e}): {line}"));
    assert_eq!(log, "ran cleanup W=a b%c\n", "{line}");
}

/// A newline in --env (a pasted value) split each cron line in two: the job line became an
/// environment assignment and never ran, and --uninstall left the other half behind. Refused
/// now, like an option without its value: exit 2, one line, the crontab untouched.
#[test]
fn a_newline_or_a_missing_value_is_refused_and_the_crontab_is_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let crontab = tmp.path().join("crontab");
    std::fs::write(&crontab, "15 * * * * /usr/bin/other-job\n").unwrap();
    let logs = tmp.path().join("logs");
    for args in [
        &["--env", "A=1\nB=2"][..],
        &["--log-dir", "/var/log/a\nb"][..],
        &["--bin"][..],
    ] {
        let out = run(&crontab, &logs, args);
        assert_code(&out, 2);
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("install-cron.sh: --"), "{args:?}: {err}");
        assert_eq!(
            std::fs::read_to_string(&crontab).unwrap(),
            "15 * * * * /usr/bin/other-job\n"
        );
    }
}
