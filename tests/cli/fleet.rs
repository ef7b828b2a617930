//! Fit for a real fleet (issue 12): no silent success, no alert floods, no panics. Each test is
//! named after what went wrong before.

use crate::testenv::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn runs_json(t: &Tree) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(t.state().join("runs.json")).unwrap()).unwrap()
}

#[test]
fn a_wrong_sessions_path_is_a_failed_run_not_success() {
    let t = Tree::new();
    company_with(&t, "company_700", 30, days(20));
    // One level too deep: the company folder itself.
    let deep = t.path("company_700");
    let state = t.dir.path().join("state");
    let out = bare_cmd()
        .arg("--sessions-path")
        .arg(&deep)
        .arg("--state-dir")
        .arg(&state)
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&out, 1);
    let err = text(&out.stderr);
    assert!(
        err.contains("no company folder (company_<id>)") && err.contains("company_700"),
        "{err}"
    );
    let runs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("runs.json")).unwrap()).unwrap();
    assert!(runs["cleanup"]["last_failure"].is_string(), "{runs}");
    assert!(runs["cleanup"]["last_success"].is_null(), "{runs}");
    // Nothing is created inside the auth folder a mistyped path names.
    for cmd in [
        &["cleanup"][..],
        &["trigger"][..],
        &["monitor", "--once"][..],
    ] {
        let out = bare_cmd()
            .arg("--sessions-path")
            .arg(&deep)
            .args(cmd)
            .output()
            .unwrap();
        assert_code(&out, 1);
    }
    assert!(
        !deep.join(".janitor").exists(),
        "a state directory inside a company folder"
    );
    // A path that does not exist is never created, by any command.
    let missing = t.dir.path().join("nope/sessions");
    for cmd in [
        &["cleanup"][..],
        &["trigger"][..],
        &["monitor", "--once"][..],
        &["status"][..],
    ] {
        let out = bare_cmd()
            .arg("--sessions-path")
            .arg(&missing)
            .args(cmd)
            .output()
            .unwrap();
        assert_code(&out, 2);
    }
    assert!(!t.dir.path().join("nope").exists());
    // A wrong prefix, likewise; trigger and status too.
    for cmd in ["trigger", "status"] {
        let out = t.run(&["--company-prefix", "tenant_", cmd]);
        assert_code(&out, 1);
        assert!(
            text(&out.stderr).contains("tenant_<id>"),
            "{}",
            text(&out.stderr)
        );
    }
    // A fresh install says so.
    let empty = Tree::new();
    assert_code(&empty.run(&["--allow-empty", "cleanup"]), 0);
    let cfg = empty.dir.path().join("c.toml");
    std::fs::write(&cfg, "allow_empty = true\n").unwrap();
    assert_code(
        &empty
            .cmd()
            .arg("--config")
            .arg(&cfg)
            .arg("trigger")
            .output()
            .unwrap(),
        0,
    );
}

#[test]
fn an_unreadable_company_is_an_error_row_in_status_and_monitor() {
    let t = Tree::new();
    company_with(&t, "company_a", 20, days(1));
    company_with(&t, "company_b", 20, days(1));
    use std::os::unix::fs::PermissionsExt;
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(t.dir.path(), open.clone()).unwrap();
    std::fs::set_permissions(t.root(), open).unwrap();
    std::fs::set_permissions(t.path("company_b"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let state = t.dir.path().join("nobody-state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    for args in [
        &["status", "--json"][..],
        &["monitor", "--once", "--json"][..],
    ] {
        let Some(mut c) = as_nobody(&t) else { return };
        let out = c
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let b = company_report(&v, "company_b");
        assert!(
            b["error"].as_str().is_some_and(|e| e.contains("ermission")),
            "{args:?}: {b}"
        );
        assert!(company_report(&v, "company_a")["error"].is_null());
    }
    // JSON never calls it healthy either.
    let Some(mut c) = as_nobody(&t) else { return };
    let out = c
        .arg("--state-dir")
        .arg(&state)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(company_report(&v, "company_b")["level"].is_null(), "{v}");
    // The table says "error", not "healthy".
    let Some(mut c) = as_nobody(&t) else { return };
    let out = c
        .arg("--state-dir")
        .arg(&state)
        .arg("status")
        .output()
        .unwrap();
    let s = text(&out.stdout);
    let line = s.lines().find(|l| l.starts_with("company_b")).unwrap();
    assert!(line.contains("error") && !line.contains("healthy"), "{s}");
    assert!(s.contains("1 unreadable, 1 healthy"), "{s}");
    // A state directory the user cannot read is said, not shown as "never cleaned".
    let Some(mut c) = as_nobody(&t) else { return };
    assert_code(&t.run(&["cleanup", "--company", "a"]), 0);
    std::fs::set_permissions(t.state(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(t.path("company_b"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = c.arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("cannot open the state directory"), "{err}");
}

#[test]
fn the_monitor_logs_level_changes_without_any_channel() {
    let t = Tree::new();
    company_with(&t, "company_1", 208, days(1));
    let out = t
        .cmd()
        .env("BAILEYS_JANITOR_LOG_FORMAT", "json")
        .args(["monitor", "--once"])
        .output()
        .unwrap();
    assert_code(&out, 1);
    let err = text(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("level_raised"))
        .unwrap_or_else(|| panic!("no raise logged: {err}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["level"], "WARN");
    assert!(
        v["message"].as_str().unwrap().contains(
            "company_1 reached 208 counted files (0 reserved pre-keys not counted): danger"
        )
    );
}

#[test]
fn ticks_that_keep_failing_raise_an_alert() {
    let t = Tree::new();
    company_with(&t, "company_1", 10, days(1));
    let sink = HttpSink::start(Answer::Ok);
    let state = t.dir.path().join("state");
    let mut child = t
        .spawn_cmd()
        .arg("--state-dir")
        .arg(&state)
        .env("NOTIFICATION_WEBHOOK", &sink.url)
        .args(["monitor", "--interval", "100ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    std::fs::rename(t.root(), t.dir.path().join("moved")).unwrap();
    let alerted = wait_for(10, || {
        sink.flat_events()
            .iter()
            .any(|e| e["event"] == "tick_failing")
    });
    sigterm(&child);
    child.wait().unwrap();
    assert!(alerted, "{:?}", sink.bodies());
    let n = sink
        .flat_events()
        .iter()
        .filter(|e| e["event"] == "tick_failing")
        .count();
    assert_eq!(n, 1, "said once, not every tick");
}

#[test]
fn a_creds_json_rewritten_in_place_is_not_corruption() {
    let t = Tree::new();
    company_with(&t, "company_1", 40, days(20));
    let creds = t.path("company_1/creds.json");
    let good = std::fs::read(&creds).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, creds, good) = (stop.clone(), creds.clone(), good.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // What fs.writeFile does: truncate, then write.
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&creds)
                    .unwrap();
                // Empty half the time, 20 ms at a stretch: a single read (the old code) fails
                // about every other run; re-reads spread over 300 ms always find it whole.
                std::thread::sleep(Duration::from_millis(20));
                f.write_all(&good).unwrap();
                drop(f);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut failures = 0;
    for _ in 0..40 {
        let out = t.run(&["cleanup", "--dry-run"]);
        if code(&out) != 0 {
            failures += 1;
            eprintln!("failed run: {}\n{}", text(&out.stdout), text(&out.stderr));
            assert!(
                !text(&out.stdout).contains("restore creds.json"),
                "never advises overwriting creds.json"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(failures, 0, "a live rewrite was called corrupt");
    // Really corrupt: reported, and the advice does not say to overwrite it.
    std::fs::write(&creds, "{\"me\":").unwrap();
    let out = t.run(&["cleanup"]);
    assert_code(&out, 1);
    let s = text(&out.stdout);
    assert!(
        s.contains("FAILED") && s.contains("Leave creds.json as it is"),
        "{s}"
    );
}

#[test]
fn one_bad_company_record_does_not_stop_the_trigger() {
    let t = Tree::new();
    company_with(&t, "company_a", 190, days(20));
    company_with(&t, "company_b", 190, days(20));
    // company_a's record cannot be read or written (a folder where the file should be).
    std::fs::create_dir_all(t.state().join("companies/company_a.json")).unwrap();
    let (out, v) = t.json(&["trigger", "--json"]);
    assert_code(&out, 1);
    assert_eq!(row(&v, "company_a")["action"], "failed");
    assert!(
        row(&v, "company_a")["reason"]
            .as_str()
            .unwrap()
            .contains("company_a.json"),
        "the file is named: {v}"
    );
    assert_eq!(row(&v, "company_b")["action"], "emergency-cleanup");
    assert_eq!(t.names("company_b").len(), 2, "the others went on");
    assert!(runs_json(&t)["trigger"]["last_failure"].is_string());
}

#[test]
fn a_cooldown_from_the_future_is_ignored_with_a_warning() {
    let t = Tree::new();
    company_with(&t, "company_a", 190, days(20));
    std::fs::create_dir_all(t.state().join("companies")).unwrap();
    std::fs::write(
        t.state().join("companies/company_a.json"),
        r#"{"trigger":{"time":"2099-01-01T00:00:00Z","level":"emergency"}}"#,
    )
    .unwrap();
    let (out, v) = t.json(&["trigger", "--json"]);
    assert_code(&out, 0);
    assert_eq!(row(&v, "company_a")["action"], "emergency-cleanup");
    assert!(
        text(&out.stderr).contains("in the future"),
        "{}",
        text(&out.stderr)
    );
}

/// Spawns the binary with stdout and stderr closed by the reader before it writes.
fn with_closed_pipes(t: &Tree, args: &[&str]) -> std::process::ExitStatus {
    let mut child = t
        .spawn_cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    child.wait().unwrap()
}

#[test]
fn closed_pipes_stop_the_output_never_the_work() {
    let t = Tree::new();
    for i in 0..5 {
        company_with(&t, &format!("company_{i}"), 60, days(20));
    }
    let status = with_closed_pipes(&t, &["cleanup", "-v"]);
    assert_eq!(status.code(), Some(0), "no panic (101)");
    for i in 0..5 {
        assert_eq!(
            t.names(&format!("company_{i}")).len(),
            2,
            "company_{i} cleaned"
        );
    }
    assert!(
        runs_json(&t)["cleanup"]["last_success"].is_string(),
        "run recorded"
    );
    // A failure still shows in the exit code with nobody reading.
    company_with(&t, "company_9", 60, days(20));
    std::fs::write(t.path("company_9/creds.json"), "").unwrap();
    let status = with_closed_pipes(&t, &["cleanup"]);
    assert_eq!(status.code(), Some(1));
    let status = with_closed_pipes(&t, &["status"]);
    assert_ne!(status.code(), Some(101));
}

#[test]
fn a_monitor_tick_sends_one_message_for_all_its_changes() {
    let t = Tree::new();
    for i in 0..30 {
        company_with(&t, &format!("company_{i:02}"), 150 + i, days(1));
    }
    let sink = HttpSink::start(Answer::Ok);
    let out = t
        .cmd()
        .env("NOTIFICATION_WEBHOOK", &sink.url)
        .args(["monitor", "--once"])
        .output()
        .unwrap();
    assert_code(&out, 1);
    let bodies = sink.bodies();
    assert_eq!(bodies.len(), 1, "one message, not 30");
    let d = &bodies[0];
    assert_eq!(d["event"], "digest");
    assert_eq!(d["events"].as_array().unwrap().len(), 30);
    assert_eq!(d["events"][0]["company"], "company_29", "the worst first");
    assert_eq!(d["level"], "trigger", "179 files, the worst");
    assert!(d["text"].as_str().unwrap().contains("and 20 more"));
    // Run from cron again a minute later: nothing new to say.
    let out = t
        .cmd()
        .env("NOTIFICATION_WEBHOOK", &sink.url)
        .args(["monitor", "--once"])
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert_eq!(sink.bodies().len(), 1, "--once remembers what it alerted");
}

#[test]
fn dry_runs_page_no_one_and_write_no_success_mark() {
    let t = Tree::new();
    company_with(&t, "company_a", 190, days(20));
    let sink = HttpSink::start(Answer::Ok);
    let m = t.dir.path().join("run.prom");
    for (var, cmd) in [
        ("1", "trigger"),
        ("yes", "cleanup"),
        ("TRUE", "trigger"),
        ("on", "cleanup"),
    ] {
        let out = t
            .cmd()
            .env("DRY_RUN", var)
            .env("NOTIFICATION_WEBHOOK", &sink.url)
            .env("BAILEYS_JANITOR_PING_URL", format!("{}/ping", sink.url))
            .args([cmd, "--metrics-file", m.to_str().unwrap()])
            .output()
            .unwrap();
        assert_code(&out, 0);
        assert!(
            sink.paths().is_empty(),
            "DRY_RUN={var} {cmd}: {:?}",
            sink.paths()
        );
        let metrics = std::fs::read_to_string(&m).unwrap();
        assert!(
            metrics.contains(&format!(
                "baileys_janitor_run_dry_run{{command=\"{cmd}\"}} 1"
            )),
            "{metrics}"
        );
        assert!(
            !metrics.contains("baileys_janitor_run_success"),
            "{metrics}"
        );
        assert_eq!(t.names("company_a").len(), 190);
    }
    assert!(
        !t.state().exists(),
        "a dry run writes nothing to the state directory"
    );
    // Asked to notify: one message, marked dry.
    let out = t
        .cmd()
        .env("NOTIFICATION_WEBHOOK", &sink.url)
        .args(["trigger", "--dry-run", "--notify"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let bodies = sink.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["dry_run"], true);
    assert!(bodies[0]["text"].as_str().unwrap().contains("(dry run)"));
}

#[test]
fn sent_notifications_are_counted_in_the_metrics() {
    let t = Tree::new();
    company_with(&t, "company_a", 190, days(20));
    let sink = HttpSink::start(Answer::Ok);
    // One config for every command: `{command}` gives each its own file.
    let cfg = t.dir.path().join("c.toml");
    let pattern = t.dir.path().join("janitor_{command}.prom");
    std::fs::write(
        &cfg,
        format!("metrics_file = {:?}\n", pattern.display().to_string()),
    )
    .unwrap();
    let m = t.dir.path().join("janitor_trigger.prom");
    let out = t
        .cmd()
        .arg("--config")
        .arg(&cfg)
        .env("NOTIFICATION_WEBHOOK", &sink.url)
        .args(["trigger"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let metrics = std::fs::read_to_string(&m).unwrap();
    assert!(
        metrics
            .contains("baileys_janitor_run_notifications{command=\"trigger\",result=\"sent\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("baileys_janitor_run_success{command=\"trigger\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("baileys_janitor_build_info{version="),
        "{metrics}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&m).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o044, 0o044, "readable by node_exporter: {mode:o}");
}

#[test]
fn a_second_monitor_exits_75_naming_the_first() {
    let t = Tree::new();
    company_with(&t, "company_1", 10, days(1));
    let mut first = t
        .spawn_cmd()
        .args(["monitor", "--interval", "100ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(10, || t.state().join("monitor.lock").exists()));
    std::thread::sleep(Duration::from_millis(200));
    let out = t.run(&["monitor", "--once"]);
    sigterm(&first);
    first.wait().unwrap();
    assert_code(&out, 75);
    let err = text(&out.stderr);
    assert!(
        err.contains("another monitor") && err.contains(&format!("pid={}", first.id())),
        "{err}"
    );
}

#[test]
fn booleans_and_durations_as_operators_write_them() {
    let t = Tree::new();
    company_with(&t, "company_a", 10, days(1));
    for v in ["", "0", "off", "No"] {
        let out = t
            .cmd()
            .env("AUTO_CLEANUP", v)
            .arg("status")
            .output()
            .unwrap();
        assert_code(&out, 0);
    }
    let out = t
        .cmd()
        .env("DRY_RUN", "maybe")
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("DRY_RUN") && !err.contains("--dry-run"),
        "{err}"
    );
    for (args, key) in [
        (&["monitor", "--interval", "0s"][..], "monitor.interval"),
        (
            &["monitor", "--interval", "1000000y"][..],
            "monitor.interval",
        ),
        (
            &["trigger", "--cooldown", "1000000y"][..],
            "trigger.cooldown",
        ),
    ] {
        let started = Instant::now();
        let out = t.run(args);
        assert_code(&out, 2);
        assert!(started.elapsed() < Duration::from_secs(5));
        let err = text(&out.stderr);
        assert!(err.contains(key) && err.lines().count() == 1, "{err}");
    }
    let cfg = t.dir.path().join("c.toml");
    std::fs::write(&cfg, "[trash]\nretention = \"1000000y\"\n").unwrap();
    let out = t
        .cmd()
        .arg("--config")
        .arg(&cfg)
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(text(&out.stderr).contains("trash.retention"));
    // A missing quote on a secret's line never shows the secret.
    std::fs::write(
        &cfg,
        "[notify]\nwebhook = \"https://hooks.slack.com/services/T0/B0/SECRETPATH\n",
    )
    .unwrap();
    let out = t
        .cmd()
        .arg("--config")
        .arg(&cfg)
        .arg("status")
        .output()
        .unwrap();
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(
        !err.contains("SECRETPATH") && err.contains("notify.webhook"),
        "{err}"
    );
    // Monitor levels that contradict the trigger's.
    std::fs::write(&cfg, "[monitor]\ncritical = 186\nemergency = 190\n").unwrap();
    let out = t
        .cmd()
        .arg("--config")
        .arg(&cfg)
        .arg("status")
        .output()
        .unwrap();
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("monitor.critical") && err.contains("trigger.emergency_threshold"),
        "{err}"
    );
}

#[test]
fn half_a_telegram_setup_is_a_configuration_error() {
    let t = Tree::new();
    company_with(&t, "company_a", 10, days(1));
    let out = t
        .cmd()
        .env("TELEGRAM_BOT_TOKEN", "123:SECRETTOKEN")
        .arg("status")
        .output()
        .unwrap();
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("TELEGRAM_CHAT_ID") && !err.contains("SECRETTOKEN"),
        "{err}"
    );
}

#[test]
fn a_single_tenant_folder_name_cannot_forge_log_lines() {
    let t = Tree::new();
    let name = "auth\u{1b}[2J\nFAKE LINE\u{202e}";
    company_with(&t, name, 10, days(20));
    let out = bare_cmd()
        .arg("--single-tenant")
        .arg("--sessions-path")
        .arg(t.path(name))
        .args(["cleanup", "--dry-run"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !all.contains('\u{1b}') && !all.contains('\u{202e}'),
        "{all:?}"
    );
    assert!(!all.lines().any(|l| l.starts_with("FAKE LINE")), "{all}");
}

#[test]
fn a_manual_copy_of_a_company_is_not_a_company() {
    let t = Tree::new();
    company_with(&t, "company_1", 40, days(20));
    company_with(&t, "company_1.bak-before-repair", 40, days(20));
    let out = t.run(&["cleanup"]);
    assert_code(&out, 0);
    assert_eq!(t.names("company_1").len(), 2);
    assert_eq!(
        t.names("company_1.bak-before-repair").len(),
        40,
        "never cleaned"
    );
    let err = text(&out.stderr);
    assert_eq!(
        err.matches("company_1.bak-before-repair").count(),
        1,
        "named once: {err}"
    );
}

#[test]
fn status_reads_locks_without_taking_them_and_hides_dead_holders() {
    let t = Tree::new();
    company_with(&t, "company_1", 40, days(20));
    // A holder killed with -9 left its text behind.
    std::fs::create_dir_all(t.state().join("locks")).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    std::fs::write(
        t.state().join("locks/company_1.lock"),
        format!(
            "pid=1073741823 host={} command=cleanup started=x\n",
            host.trim()
        ),
    )
    .unwrap();
    let (_, v) = t.json(&["status", "--json"]);
    assert!(row(&v, "company_1")["lock_holder"].is_null(), "{v}");
    // A live holder is shown, and status never makes a cleanup skip the company.
    let mut c = t
        .spawn_cmd()
        .args(["cleanup", "--debug-pause-before-remove", "1500ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = wait_for(5, || {
        let (_, v) = t.json(&["status", "--json"]);
        row(&v, "company_1")["lock_holder"]
            .as_str()
            .is_some_and(|h| h.contains(&format!("pid={}", c.id())))
    });
    assert!(seen);
    assert!(c.wait().unwrap().success());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let (stop, root) = (stop.clone(), t.root());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = bare_cmd()
                    .arg("--sessions-path")
                    .arg(&root)
                    .arg("status")
                    .output();
            }
        })
    };
    for _ in 0..15 {
        let out = t.run(&["cleanup"]);
        assert_code(&out, 0);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    prober.join().unwrap();
}

#[test]
fn output_for_500_companies_fits_a_screen() {
    let t = Tree::new();
    for i in 0..500 {
        let c = format!("company_{i:03}");
        t.creds(&c, 1, 1);
        for j in 0..(if i % 50 == 0 { 160 } else { 3 }) {
            t.file(&format!("{c}/session-55{j:08}.0.json"), days(20));
        }
    }
    let lines = |args: &[&str]| {
        let out = t.run(args);
        assert!(code(&out) == 0 || code(&out) == 1, "{}", text(&out.stderr));
        let s = text(&out.stdout);
        (s.lines().count(), s)
    };
    let (n, s) = lines(&["status"]);
    assert!(n <= 40, "status: {n} lines\n{s}");
    assert!(s.contains("500 companies: 490 healthy, 10 warning"), "{s}");
    assert!(s.contains("… and 490 more companies"), "{s}");
    assert!(s.lines().all(|l| l.chars().count() <= 120), "{s}");
    let (n, s) = lines(&["status", "--level", "warning"]);
    assert!(n <= 25 && !s.contains("healthy   "), "{s}");
    let (n, s) = lines(&["monitor", "--once"]);
    assert!(
        n <= 15 && s.contains("500 companies: 490 healthy, 10 warning"),
        "{s}"
    );
    let (n, s) = lines(&["trigger", "--dry-run"]);
    assert!(n <= 3, "trigger: {n} lines\n{s}");
    assert!(s.contains("500 below 175"), "{s}");
    let (n, s) = lines(&["cleanup", "--dry-run"]);
    assert!(n <= 15, "cleanup --dry-run: {n} lines\n{s}");
    assert!(s.contains("total: 500 companies"), "{s}");
    let (n, _) = lines(&["cleanup", "--dry-run", "-v"]);
    assert!(n > 2000, "-v lists every file: {n}");
    let (_, s) = lines(&["cleanup", "--dry-run", "--company", "company_000"]);
    assert!(s.contains("would remove session-5500000000.0.json"), "{s}");
    // Plurals.
    let one = Tree::new();
    company_with(&one, "company_1", 10, days(1));
    let (_, s) = {
        let out = one.run(&["status"]);
        (0, text(&out.stdout))
    };
    assert!(s.contains("1 company: 1 healthy"), "{s}");
}
