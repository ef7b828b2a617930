use crate::testenv::*;
use std::time::{Duration, Instant};

/// 100 files (below), 176 (trigger), 190 (emergency) and 180 (trigger, but nothing removable):
/// sessions 10 days old, which the normal rules (14d) keep and the emergency rules (7d) remove.
fn fleet() -> Tree {
    let t = Tree::new();
    company_with(&t, "company_a", 100, days(10));
    company_with(&t, "company_b", 156, days(10));
    for i in 0..20 {
        t.file(&format!("company_b/session-77{i:08}.0.json"), days(20));
    }
    company_with(&t, "company_c", 190, days(10));
    company_with(&t, "company_d", 180, days(10));
    t
}

#[test]
fn cleans_only_companies_past_the_thresholds_and_holds_the_cooldown_across_runs() {
    let t = fleet();
    let sink = HttpSink::start(Answer::Ok);
    let (out, v) = t.json(&[
        "--notification-webhook",
        &format!("{}/hook/SECRET", sink.url),
        "trigger",
        "--json",
    ]);
    assert_code(&out, 0);
    assert_eq!(row(&v, "company_a")["action"], "none");
    assert_eq!(row(&v, "company_a")["files"], 100);
    assert_eq!(row(&v, "company_b")["action"], "cleanup");
    assert_eq!(row(&v, "company_b")["files"], 176);
    assert_eq!(
        row(&v, "company_b")["removed"],
        20,
        "normal rules: only the 20-day sessions"
    );
    assert_eq!(row(&v, "company_c")["action"], "emergency-cleanup");
    assert_eq!(
        row(&v, "company_c")["removed"],
        188,
        "emergency rules: the 10-day sessions too"
    );
    assert_eq!(t.names("company_a").len(), 100);
    assert_eq!(
        t.names("company_c"),
        vec!["creds.json", "lid-mapping-5511999999999.json"]
    );

    // One message per run per channel (a digest), with Slack/Discord text and every company's
    // event as structured fields.
    let bodies = sink.bodies();
    assert_eq!(bodies.len(), 1, "one message per run: {bodies:?}");
    let digest = &bodies[0];
    assert_eq!(digest["event"], "digest");
    assert_eq!(digest["level"], "danger", "the worst first");
    assert!(
        digest["text"]
            .as_str()
            .unwrap()
            .contains("company_c: 190 counted files (danger; 190 files, 0 reserved pre-keys)")
    );
    assert_eq!(digest["content"], digest["text"]);
    assert!(digest["host"].is_string() && digest["time"].is_string());
    let events = sink.flat_events();
    let done: Vec<_> = events
        .iter()
        .filter(|b| b["event"] == "cleanup_finished")
        .collect();
    assert_eq!(done.len(), 3);
    let c = done.iter().find(|b| b["company"] == "company_c").unwrap();
    assert_eq!(c["level"], "danger", "status's word for 190 files");
    assert_eq!(c["files"], 190);
    assert_eq!(c["thresholds"]["trigger"], 175);
    assert_eq!(c["thresholds"]["emergency"], 185);
    assert_eq!(c["details"]["action"], "emergency-cleanup");
    assert!(sink.paths().iter().all(|p| p == "/hook/SECRET"));

    // company_d is still above 175 after its cleanup (178 ten-day sessions the normal rules keep).
    assert!(row(&v, "company_b")["advice"].is_null());
    assert!(
        row(&v, "company_d")["advice"]
            .as_str()
            .unwrap()
            .contains("younger than the age limits")
    );
    let still: Vec<_> = events
        .iter()
        .filter(|b| b["event"] == "still_above_threshold")
        .collect();
    assert_eq!(still.len(), 1);
    assert_eq!(still[0]["company"], "company_d");
    // The level is status's word for that count (the spec's table), never "warning" above 175.
    let files = still[0]["files"].as_u64().unwrap();
    let want = match files {
        185.. => "danger",
        180..=184 => "emergency",
        175..=179 => "trigger",
        _ => panic!("still above 175 must mean at least 175 files: {files}"),
    };
    assert_eq!(still[0]["level"], want, "{files} files");

    // Again at once, in a new process: the cooldown holds.
    let (out, v) = t.json(&[
        "--notification-webhook",
        &format!("{}/hook/SECRET", sink.url),
        "trigger",
        "--json",
    ]);
    assert_code(&out, 0);
    assert_eq!(
        row(&v, "company_b")["action"],
        "none",
        "back below the threshold"
    );
    assert_eq!(row(&v, "company_d")["action"], "cooldown");
    assert!(
        row(&v, "company_d")["reason"]
            .as_str()
            .unwrap()
            .starts_with("cooling down until")
    );
    assert_eq!(sink.bodies().len(), 1, "nothing new to say: no message");
}

#[test]
fn advice_names_never_removed_files() {
    let t = Tree::new();
    t.protected_company("company_x", 180, days(100));
    let (out, v) = t.json(&["trigger", "--json"]);
    assert_code(&out, 0);
    let advice = row(&v, "company_x")["advice"].as_str().unwrap();
    assert!(
        advice.starts_with("180 of 180 counted files are creds/lid-mapping"),
        "{advice}"
    );
    assert!(advice.contains("consider session rotation"));
}

#[test]
fn an_emergency_overrides_a_normal_cooldown_once() {
    let t = Tree::new();
    company_with(&t, "company_b", 176, days(10));
    assert_code(&t.run(&["trigger"]), 0);
    // The folder grows past the emergency threshold within the cooldown.
    for i in 0..12 {
        t.file(&format!("company_b/session-88{i:08}.0.json"), days(10));
    }
    let (_, v) = t.json(&["trigger", "--json"]);
    assert_eq!(row(&v, "company_b")["action"], "emergency-cleanup");
    for i in 0..190 {
        t.file(&format!("company_b/session-99{i:08}.0.json"), days(10));
    }
    let (_, v) = t.json(&["trigger", "--json"]);
    assert_eq!(row(&v, "company_b")["action"], "cooldown");
}

#[test]
fn dry_run_from_the_environment_changes_nothing() {
    let t = fleet();
    let before = t.snapshot();
    let out = t
        .cmd()
        .env("DRY_RUN", "true")
        .args(["trigger"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(
        text(&out.stdout).contains("would remove 188"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(t.snapshot(), before);
    assert!(!t.state().exists(), "a dry run wrote state");
    // and no cooldown was written: a real run now cleans.
    let (_, v) = t.json(&["trigger", "--json"]);
    assert_eq!(row(&v, "company_c")["action"], "emergency-cleanup");
}

#[test]
fn a_second_concurrent_trigger_exits_75() {
    let t = fleet();
    std::fs::create_dir_all(t.state()).unwrap();
    let f = std::fs::File::create(t.state().join("trigger.lock")).unwrap();
    f.lock().unwrap();
    let before = t.snapshot();
    let out = t.run(&["trigger"]);
    assert_code(&out, 75);
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("another trigger is running"));
    assert_eq!(t.snapshot(), before);
}

#[test]
fn a_corrupt_state_file_is_reported_and_rebuilt() {
    let t = Tree::new();
    company_with(&t, "company_b", 180, days(20));
    std::fs::create_dir_all(t.state().join("companies")).unwrap();
    std::fs::write(t.state().join("companies/company_b.json"), "{not json").unwrap();
    let out = t.run(&["trigger"]);
    assert_code(&out, 0);
    assert!(
        text(&out.stderr).contains("corrupt"),
        "{}",
        text(&out.stderr)
    );
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.state().join("companies/company_b.json")).unwrap())
            .unwrap();
    assert_eq!(rec["trigger"]["level"], "normal");
}

#[test]
fn a_hanging_or_failing_webhook_neither_delays_the_run_nor_changes_the_exit_code() {
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[notify]\ntimeout = \"1s\"\nbudget = \"2s\"\nretries = 2\n",
    )
    .unwrap();
    for answer in [Answer::Hang, Answer::Status(500)] {
        let t = Tree::new();
        company_with(&t, "company_c", 190, days(20));
        let sink = HttpSink::start(answer);
        let started = Instant::now();
        let out = t
            .cmd()
            .arg("--config")
            .arg(&cfg)
            .env("NOTIFICATION_WEBHOOK", format!("{}/hook", sink.url))
            .args(["trigger"])
            .output()
            .unwrap();
        let took = started.elapsed();
        assert_code(&out, 0);
        // One total budget (2 s) for the whole run's notifications.
        assert!(took < Duration::from_secs(4), "took {took:?}");
        assert!(
            text(&out.stderr).contains("notification failed"),
            "{}",
            text(&out.stderr)
        );
        assert!(t.names("company_c").len() == 2);
        if let Answer::Status(_) = answer {
            // One digest, tried as often as its budget allows.
            assert!(sink.bodies().len() >= 2, "retried: {}", sink.bodies().len());
        }
    }
}

#[test]
fn secrets_never_reach_the_logs() {
    let t = Tree::new();
    company_with(&t, "company_c", 190, days(20));
    let sink = HttpSink::start(Answer::Status(500));
    let token = "123456:AAHsecretTOKENvalue";
    let out = t
        .cmd()
        .env(
            "NOTIFICATION_WEBHOOK",
            format!("{}/services/T0/B0/WEBHOOKSECRET", sink.url),
        )
        .env("TELEGRAM_BOT_TOKEN", token)
        .env("TELEGRAM_CHAT_ID", "42")
        .env("BAILEYS_JANITOR_TELEGRAM_API", &sink.url)
        .env("BAILEYS_JANITOR_LOG", "trace")
        .args(["trigger", "--json"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains("AAHsecret"), "token leaked:\n{all}");
    assert!(
        !all.contains("WEBHOOKSECRET"),
        "webhook path leaked:\n{all}"
    );
    // Telegram was called with the token in the path and the message in the body.
    let tg: Vec<_> = sink
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.contains("sendMessage"))
        .cloned()
        .collect();
    assert!(!tg.is_empty());
    assert_eq!(tg[0].0, format!("/bot{token}/sendMessage"));
    assert_eq!(tg[0].1["chat_id"], "42");
    assert!(tg[0].1["text"].as_str().unwrap().contains("company_c"));
}

#[test]
fn ping_url_brackets_the_run() {
    let t = Tree::new();
    company_with(&t, "company_a", 10, days(20));
    let sink = HttpSink::start(Answer::Ok);
    let out = t.run(&["trigger", "--ping-url", &format!("{}/ping/abc", sink.url)]);
    assert_code(&out, 0);
    assert_eq!(sink.paths(), vec!["/ping/abc/start", "/ping/abc"]);
}

/// The trigger marks the cooldown before it cleans (core::trigger::claim): a company it finds
/// locked is busy, and the mark is taken back, so the next run cleans it.
#[test]
fn a_busy_company_gets_no_cooldown() {
    let t = Tree::new();
    company_with(&t, "company_c", 190, days(10));
    std::fs::create_dir_all(t.state().join("locks")).unwrap();
    let f = std::fs::File::create(t.state().join("locks/company_c.lock")).unwrap();
    f.lock().unwrap();
    let (out, v) = t.json(&["trigger", "--json"]);
    assert_code(&out, 75);
    assert_eq!(row(&v, "company_c")["action"], "busy", "{v}");
    drop(f);
    let (_, st) = t.json(&["status", "--json"]);
    assert!(st["companies"][0]["cooldown_until"].is_null(), "{st}");
    let (_, v) = t.json(&["trigger", "--json"]);
    assert_eq!(row(&v, "company_c")["action"], "emergency-cleanup", "{v}");
}
