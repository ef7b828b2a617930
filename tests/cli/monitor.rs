use crate::testenv::*;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn config(t: &Tree) -> std::path::PathBuf {
    let p = t.dir.path().join("monitor.toml");
    std::fs::write(
        &p,
        "[monitor]\nrepeat_warning = \"1h\"\nrepeat_critical = \"1h\"\nrepeat_emergency = \"1h\"\n",
    )
    .unwrap();
    p
}

fn start(t: &Tree, args: &[&str], webhook: &str) -> Child {
    t.spawn_cmd()
        .arg("--config")
        .arg(config(t))
        .env("NOTIFICATION_WEBHOOK", webhook)
        .env("BAILEYS_JANITOR_LOG", "debug")
        .arg("monitor")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn set_count(t: &Tree, company: &str, n: usize) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let have = t.names(company);
    if have.len() < n {
        for _ in have.len()..n {
            let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            t.file(&format!("{company}/session-66{i:08}.0.json"), days(1));
        }
    } else {
        // All at once, as a tick sees it: a monitor ticking every 100 ms on a loaded machine
        // would otherwise count a folder half-way through 80 removals (and report "healthy
        // again at 123"). The folder's new content is made beside the tree and exchanged in.
        let next = t.dir.path().join(format!("next-{company}"));
        std::fs::create_dir(&next).unwrap();
        let mut drop = have.len() - n;
        for name in &have {
            if drop > 0 && name.starts_with("session-") {
                drop -= 1;
                continue;
            }
            std::fs::hard_link(t.path(&format!("{company}/{name}")), next.join(name)).unwrap();
        }
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            &next,
            rustix::fs::CWD,
            t.path(company),
            rustix::fs::RenameFlags::EXCHANGE,
        )
        .unwrap();
        std::fs::remove_dir_all(&next).unwrap();
    }
    assert_eq!(t.names(company).len(), n);
}

fn metrics(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn levels_rise_and_resolve_with_exactly_the_expected_notifications() {
    let t = Tree::new();
    company_with(&t, "company_1", 100, days(1));
    let sink = HttpSink::start(Answer::Ok);
    let mut child = start(&t, &["--interval", "100ms"], &format!("{}/hook", sink.url));
    let steps = [
        (150, "warning"),
        (170, "critical"),
        (180, "emergency"),
        (100, "healthy"),
    ];
    let mut expected = Vec::new();
    // Let the first tick see 100 files.
    std::thread::sleep(Duration::from_millis(300));
    for (n, level) in steps {
        set_count(&t, "company_1", n);
        expected.push(if level == "healthy" {
            "resolved".to_string()
        } else {
            "level_raised".to_string()
        });
        let got = wait_for(10, || sink.events().len() >= expected.len());
        assert!(got, "no notification for {n} files: {:?}", sink.events());
        let last = sink.bodies().last().unwrap().clone();
        assert_eq!(last["level"], level);
        assert_eq!(last["files"], n, "{:?}", sink.bodies());
        assert_eq!(last["company"], "company_1");
        // Several more ticks at the same count: no more notifications (repeats are 1h apart).
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(sink.events(), expected);
    }
    // Hovering around 150 does not flap (hysteresis of 5).
    set_count(&t, "company_1", 150);
    assert!(wait_for(10, || sink.events().len() == 5));
    for n in [148, 151, 147, 150] {
        set_count(&t, "company_1", n);
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(sink.events().len(), 5, "{:?}", sink.events());
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

#[test]
fn new_companies_are_picked_up_and_deleted_ones_dropped() {
    let t = Tree::new();
    company_with(&t, "company_1", 10, days(1));
    let m = t.dir.path().join("janitor.prom");
    let child = start(
        &t,
        &["--interval", "100ms", "--metrics-file", m.to_str().unwrap()],
        "",
    );
    assert!(wait_for(10, || metrics(&m).contains("company=\"company_1\"")));
    company_with(&t, "company_2", 12, days(1));
    assert!(
        wait_for(10, || metrics(&m).contains(
            "baileys_janitor_company_files{company=\"company_2\"} 12"
        )),
        "{}",
        metrics(&m)
    );
    std::fs::remove_dir_all(t.path("company_1")).unwrap();
    assert!(
        wait_for(10, || !metrics(&m).contains("company_1")),
        "{}",
        metrics(&m)
    );
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("watching a new company company=company_2"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn sigterm_exits_zero_within_two_seconds_even_with_a_hung_webhook() {
    let t = Tree::new();
    company_with(&t, "company_1", 190, days(1));
    let sink = HttpSink::start(Answer::Hang);
    let m = t.dir.path().join("janitor.prom");
    let mut child = start(
        &t,
        &["--interval", "200ms", "--metrics-file", m.to_str().unwrap()],
        &format!("{}/hook", sink.url),
    );
    assert!(
        wait_for(10, || !sink.bodies().is_empty()),
        "the webhook was never called"
    );
    let sent = Instant::now();
    sigterm(&child);
    let status = child.wait().unwrap();
    let took = sent.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn sigint_works_too() {
    let t = Tree::new();
    company_with(&t, "company_1", 10, days(1));
    let m = t.dir.path().join("janitor.prom");
    let mut child = start(
        &t,
        &["--interval", "100ms", "--metrics-file", m.to_str().unwrap()],
        "",
    );
    assert!(wait_for(10, || m.exists()));
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn auto_cleanup_brings_an_emergency_company_down_once_per_cooldown() {
    let t = Tree::new();
    company_with(&t, "company_1", 190, days(20));
    let (out, v) = t.json(&["monitor", "--once", "--auto-cleanup", "--json"]);
    assert_code(&out, 0);
    assert_eq!(v["companies"][0]["files"], 2);
    assert_eq!(t.names("company_1").len(), 2);
    // It went through the cleanup path: recorded, trashed, restorable.
    let (_, s) = t.json(&["status", "--json"]);
    assert_eq!(s["companies"][0]["last_cleanup"]["by"], "monitor");
    assert_eq!(s["companies"][0]["last_cleanup"]["emergency"], true);
    // Grows again within the cooldown: no second auto-cleanup.
    for i in 0..190 {
        t.file(&format!("company_1/session-44{i:08}.0.json"), days(20));
    }
    let (out, v) = t.json(&["monitor", "--once", "--json"]);
    assert_code(&out, 1);
    let out = t
        .cmd()
        .env("AUTO_CLEANUP", "true")
        .args(["monitor", "--once"])
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert_eq!(v["companies"][0]["files"], 192);
}

#[test]
fn auto_cleanup_respects_a_held_lock() {
    let t = Tree::new();
    company_with(&t, "company_1", 190, days(20));
    std::fs::create_dir_all(t.state().join("locks")).unwrap();
    let f = std::fs::File::create(t.state().join("locks/company_1.lock")).unwrap();
    f.lock().unwrap();
    let (out, v) = t.json(&["monitor", "--once", "--auto-cleanup", "--json"]);
    assert_code(&out, 1);
    assert_eq!(v["companies"][0]["files"], 190);
    // The cooldown it marked before finding the lock is taken back: once free, it cleans.
    drop(f);
    let (_, v) = t.json(&["monitor", "--once", "--auto-cleanup", "--json"]);
    assert_eq!(v["companies"][0]["files"], 2, "{v}");
}

#[test]
fn once_exit_codes_and_table() {
    let t = Tree::new();
    company_with(&t, "company_1", 10, days(1));
    let out = t.run(&["monitor", "--once"]);
    assert_code(&out, 0);
    assert!(
        text(&out.stdout).contains("company_1     10  healthy"),
        "{}",
        text(&out.stdout)
    );
    company_with(&t, "company_2", 150, days(1));
    assert_code(&t.run(&["monitor", "--once"]), 1);
}

#[test]
fn metrics_file_parses_as_prometheus_text() {
    let t = Tree::new();
    company_with(&t, "company_1", 160, days(1));
    company_with(&t, "company_\"odd\"", 3, days(1));
    let m = t.dir.path().join("janitor.prom");
    assert_code(
        &t.run(&["monitor", "--once", "--metrics-file", m.to_str().unwrap()]),
        1,
    );
    let body = metrics(&m);
    // node_exporter runs as another user: the file is readable by all (0666 less the umask).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&m).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o044, 0o044, "mode {mode:o}");
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let find = |name: &str, company: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get("company") == Some(company))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(
        find("baileys_janitor_company_files", "company_1"),
        Some(160.0)
    );
    assert_eq!(
        find("baileys_janitor_company_level", "company_1"),
        Some(1.0)
    );
    // `company_"odd"` is not a company name (letters, digits, - and _ only): never watched.
    assert!(
        !scrape
            .samples
            .iter()
            .any(|s| s.labels.get("company").is_some_and(|c| c.contains("odd"))),
        "{body}"
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "baileys_janitor_build_info"
                && s.labels.get("version") == Some(env!("CARGO_PKG_VERSION"))),
        "{body}"
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "baileys_janitor_company_files_by_type"
                && s.labels.get("type") == Some("session")
                && s.labels.get("company") == Some("company_1"))
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "baileys_janitor_monitor_last_tick_timestamp_seconds")
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "baileys_janitor_notifications_total")
    );
    // cleanup and trigger write their own run metrics.
    let c = t.dir.path().join("cleanup.prom");
    t.run(&["cleanup", "--metrics-file", c.to_str().unwrap()]);
    let scrape =
        prometheus_parse::Scrape::parse(metrics(&c).lines().map(|l| Ok(l.to_owned()))).unwrap();
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "baileys_janitor_run_success"
                && s.labels.get("command") == Some("cleanup"))
    );
}

#[test]
fn stale_cron_runs_are_alerted() {
    let t = Tree::new();
    company_with(&t, "company_1", 10, days(1));
    std::fs::create_dir_all(t.state()).unwrap();
    std::fs::write(
        t.state().join("runs.json"),
        r#"{"cleanup":{"last_success":"2020-01-01T03:00:00Z"},"trigger":{"last_success":"2020-01-01T03:30:00Z"}}"#,
    )
    .unwrap();
    let sink = HttpSink::start(Answer::Ok);
    let out = t
        .cmd()
        .env("NOTIFICATION_WEBHOOK", &sink.url)
        .args(["monitor", "--once"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(sink.bodies().len(), 1, "one message for the tick");
    let stale: Vec<_> = sink
        .flat_events()
        .into_iter()
        .filter(|b| b["event"] == "cron_stale")
        .collect();
    assert_eq!(stale.len(), 2, "{:?}", sink.bodies());
    assert!(
        stale[0]["message"]
            .as_str()
            .unwrap()
            .contains("no successful cleanup run since 2020-01-01")
    );
}

#[test]
fn health_checks_alert_after_three_failures_in_a_row() {
    let t = Tree::new();
    company_with(&t, "company_7", 10, days(1));
    let health = HttpSink::start(Answer::Status(503));
    let sink = HttpSink::start(Answer::Ok);
    let url = format!("{}/status/{{id}}", health.url);
    let mut child = start(
        &t,
        &["--interval", "100ms", "--health-url", &url],
        &sink.url,
    );
    assert!(
        wait_for(10, || sink.events().contains(&"health_failed".to_string())),
        "{:?}",
        sink.events()
    );
    assert!(
        health.paths().iter().all(|p| p == "/status/7"),
        "{:?}",
        health.paths()
    );
    assert!(health.paths().len() >= 3);
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

/// Folders (one host, one state directory): for each pair of layers that clean on their own
/// (`layers::COOLDOWN_PAIRS`, a fresh tree each), once `first` cleaned a company, `status`
/// shows its cooldown and `then` leaves an old file that came since, which
/// `cleanup --emergency` then removes.
#[test]
fn a_cleanup_by_one_automatic_layer_is_a_cooldown_for_every_other() {
    use crate::layers::{EMERGENCY_CLEANUP, Layer, cooldown_cases, small_fleet_config};
    for (first, then, _) in cooldown_cases().into_iter().filter(|c| c.2 == "host-a") {
        let case = format!("{}, then {}", first.name, then.name);
        let t = Tree::new();
        company_with(&t, "company_1", 40, days(20));
        // Kept by every rule: the company stays past every layer's threshold after a cleanup.
        for i in 0..10 {
            t.file(&format!("company_1/session-66{i:08}.0.json"), days(1));
        }
        let config = small_fleet_config(t.dir.path());
        let layer = |layer: Layer| {
            let out = t
                .cmd()
                .arg("--config")
                .arg(&config)
                .args(layer.args)
                .output()
                .unwrap();
            assert_code(&out, layer.exit);
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        };
        let v = layer(first);
        assert_eq!(first.removed(&v, "company_1"), Some(38), "{case}: {v}");
        let new = "company_1/session-5511555555555.0.json";
        t.file(new, days(30));
        let v = layer(then);
        assert!(then.cooling_down(&v, "company_1"), "{case}: {v}");
        assert!(t.exists(new), "{case}: removed the new file");
        let (_, st) = t.json(&["status", "--json"]);
        assert!(
            st["companies"][0]["cooldown_until"].is_string(),
            "{case}: status shows no cooldown: {st}"
        );
        // Not kept for another reason: a cleanup removes it.
        let (_, v) = t.json(EMERGENCY_CLEANUP.args);
        assert_eq!(
            EMERGENCY_CLEANUP.removed(&v, "company_1"),
            Some(1),
            "{case}"
        );
        assert!(!t.exists(new));
    }
}
