use crate::testenv::*;

#[test]
fn status_rows_cover_every_level() {
    let t = Tree::new();
    let levels = [
        ("company_a", 149, "healthy"),
        ("company_b", 150, "warning"),
        ("company_c", 170, "critical"),
        ("company_d", 175, "trigger"),
        ("company_e", 180, "emergency"),
        ("company_f", 185, "danger"),
    ];
    for (c, n, _) in levels {
        company_with(&t, c, n, days(1));
    }
    let before = t.snapshot();
    let (out, v) = t.json(&["status", "--json"]);
    assert_code(&out, 1); // something is at warning or above
    for (c, n, level) in levels {
        let r = row(&v, c);
        assert_eq!(r["files"], n, "{c}");
        assert_eq!(r["level"], level, "{c}");
        assert_eq!(r["creds"], "paired");
        assert_eq!(r["by_type"]["lid-mapping"], 1);
        assert_eq!(r["by_type"]["session"], n - 2);
        assert!(r["creds_written"].is_string());
    }
    assert_eq!(t.snapshot(), before, "status changed the tree");
    assert!(!t.state().exists(), "status created the state directory");
    // The human table, piped: no colour codes.
    let out = t.run(&["status"]);
    let s = text(&out.stdout);
    assert!(s.lines().next().unwrap().starts_with("COMPANY"), "{s}");
    assert!(!s.contains('\x1b'), "colour in a pipe");
    assert!(
        s.contains(
            "6 companies: 1 healthy, 1 warning, 1 critical, 1 trigger, 1 emergency, 1 danger"
        ),
        "{s}"
    );
    // Healthy only → exit 0.
    let (out, _) = t.json(&["status", "--json", "--company", "a"]);
    assert_code(&out, 0);
}

#[test]
fn status_shows_corrupt_creds_and_advice() {
    let t = Tree::new();
    t.protected_company("company_lids", 90, days(100));
    company_with(&t, "company_bad", 10, days(1));
    std::fs::write(t.path("company_bad/creds.json"), "").unwrap();
    let (_, v) = t.json(&["status", "--json"]);
    assert_eq!(row(&v, "company_bad")["creds"], "corrupt");
    assert!(
        row(&v, "company_bad")["creds_problem"]
            .as_str()
            .unwrap()
            .contains("empty")
    );
    let advice = row(&v, "company_lids")["advice"][0].as_str().unwrap();
    assert_eq!(
        advice,
        "90 of 90 counted files are never removed (89 lid-mapping): cleanup cannot shrink this folder much"
    );
    let s = text(&t.run(&["status"]).stdout);
    assert!(
        s.contains("advice: 90 of 90 counted files are never removed"),
        "{s}"
    );
}

#[test]
fn status_reports_last_cleanup_cooldown_lock_and_trash() {
    let t = Tree::new();
    company_with(&t, "company_a", 180, days(20));
    assert_code(&t.run(&["trigger"]), 0);
    let (_, v) = t.json(&["status", "--json", "--history"]);
    let r = row(&v, "company_a");
    assert_eq!(r["last_cleanup"]["removed"], 178);
    assert_eq!(r["last_cleanup"]["by"], "trigger");
    assert!(r["cooldown_until"].is_string());
    assert_eq!(r["trash_files"], 178);
    assert!(!r["history"].as_array().unwrap().is_empty());
    let f = std::fs::File::open(t.state().join("locks/company_a.lock")).unwrap();
    std::fs::write(
        t.state().join("locks/company_a.lock"),
        "pid=4242 host=test command=cleanup\n",
    )
    .unwrap();
    f.lock().unwrap();
    let (_, v) = t.json(&["status", "--json"]);
    assert_eq!(
        row(&v, "company_a")["lock_holder"],
        "pid=4242 host=test command=cleanup"
    );
    drop(f);
    let s = text(&t.run(&["status", "--history"]).stdout);
    assert!(s.contains("trend "), "{s}");
}

/// Every file under a company folder: name → (bytes, mtime).
fn contents(t: &Tree, c: &str) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    t.names(c)
        .into_iter()
        .map(|n| {
            let p = t.path(&format!("{c}/{n}"));
            (
                n,
                std::fs::read(&p).unwrap(),
                std::fs::metadata(&p).unwrap().modified().unwrap(),
            )
        })
        .collect()
}

#[test]
fn cleanup_then_restore_returns_every_file_byte_for_byte_with_its_mtime() {
    let t = Tree::new();
    // Floor 50 (nextPreKeyId - 812 - 100): ids 1..=49 go.
    t.creds("company_1", 50 + 912, 50 + 912);
    for i in 1..100 {
        t.file_with(
            &format!("company_1/pre-key-{i}.json"),
            &format!("{{\"id\":{i}}}"),
            days(100 - i),
        );
    }
    for i in 0..30 {
        t.file_with(
            &format!("company_1/session-55{i}.0.json"),
            &format!("{{\"s\":{i}}}"),
            days(10 + i),
        );
    }
    let before = contents(&t, "company_1");
    let (_, v) = t.json(&["cleanup", "--json"]);
    let run = v["run_id"].as_str().unwrap().to_owned();
    assert!(company_report(&v, "company_1")["removed"].as_u64().unwrap() > 40);
    let out = t.run(&["restore", "--company", "1", "--json"]);
    assert_code(&out, 0);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["source"], run.as_str());
    assert_eq!(contents(&t, "company_1"), before);
    assert!(
        !t.state().join(format!("trash/company_1/{run}")).exists(),
        "empty run folder left"
    );
}

#[test]
fn restore_never_overwrites_a_newer_file() {
    let t = Tree::new();
    t.creds("company_1", 1, 1)
        .file_with("company_1/session-1.0.json", "old", days(20));
    t.file_with("company_1/session-2.0.json", "old2", days(20));
    let (_, v) = t.json(&["cleanup", "--json"]);
    let run = v["run_id"].as_str().unwrap().to_owned();
    // The app writes a new session-1 meanwhile.
    t.file_with("company_1/session-1.0.json", "new", mins(1));
    let (out, r) = t.json(&["restore", "--company", "company_1", "--run", &run, "--json"]);
    // A file not put back is a restore that did not fully happen: exit 1.
    assert_code(&out, 1);
    assert_eq!(r["restored"], serde_json::json!(["session-2.0.json"]));
    assert_eq!(r["skipped"][0]["file"], "session-1.0.json");
    assert_eq!(
        std::fs::read_to_string(t.path("company_1/session-1.0.json")).unwrap(),
        "new"
    );
    assert_eq!(
        std::fs::read_to_string(t.path("company_1/session-2.0.json")).unwrap(),
        "old2"
    );
    // The old one is still in the trash, not lost.
    assert!(
        t.state()
            .join(format!("trash/company_1/{run}/session-1.0.json"))
            .exists()
    );
}

#[test]
fn restore_selected_files_and_dry_run() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    for i in 0..3 {
        t.file(&format!("company_1/session-{i}.0.json"), days(20));
    }
    t.run(&["cleanup"]);
    let (_, r) = t.json(&["restore", "--company", "1", "--dry-run", "--json"]);
    assert_eq!(r["restored"].as_array().unwrap().len(), 3);
    assert!(!t.exists("company_1/session-0.0.json"));
    let (out, r) = t.json(&[
        "restore",
        "--company",
        "1",
        "--file",
        "session-1.0.json",
        "--json",
    ]);
    assert_code(&out, 0);
    assert_eq!(r["restored"], serde_json::json!(["session-1.0.json"]));
    assert!(t.exists("company_1/session-1.0.json") && !t.exists("company_1/session-0.0.json"));
}

#[test]
fn trash_purge_honours_its_age() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    let old = t.state().join("trash/company_1/20200101T000000Z-1");
    let recent_id = chrono::Utc::now().format("%Y%m%dT%H%M%SZ-1").to_string();
    let recent = t.state().join("trash/company_1").join(&recent_id);
    for d in [&old, &recent] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("session-1.0.json"), "{}").unwrap();
    }
    assert_code(&t.run(&["cleanup", "--dry-run"]), 0);
    assert!(old.exists(), "a dry run purged");
    assert_code(&t.run(&["cleanup"]), 0);
    assert!(!old.exists());
    assert!(recent.exists());
}

#[test]
fn backup_and_restore_from_backup() {
    let t = Tree::new();
    t.creds("company_1", 1, 1)
        .file_with("company_1/session-1.0.json", "s1", days(3));
    let (out, b) = t.json(&["backup", "--company", "1", "--json"]);
    assert_code(&out, 0);
    assert_eq!(b["files"], 2);
    let time = b["backup"].as_str().unwrap().to_owned();
    let before = contents(&t, "company_1");
    // The emergency procedure: clear the folder, then put it back.
    std::fs::remove_file(t.path("company_1/session-1.0.json")).unwrap();
    std::fs::write(t.path("company_1/creds.json"), "{}").unwrap();
    let (out, r) = t.json(&["restore", "--company", "1", "--backup", &time, "--json"]);
    assert_code(&out, 1);
    assert_eq!(r["restored"], serde_json::json!(["session-1.0.json"]));
    assert_eq!(
        r["skipped"][0]["reason"],
        "differs: kept (--overwrite replaces it)"
    );
    let (out, _) = t.json(&[
        "restore",
        "--company",
        "1",
        "--backup",
        &time,
        "--overwrite",
        "--json",
    ]);
    assert_code(&out, 0);
    assert_eq!(contents(&t, "company_1"), before);
    // The replaced creds.json went to the trash, not away.
    let trashed: Vec<_> = walkdir::WalkDir::new(t.state().join("trash"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_name() == "creds.json")
        .collect();
    assert_eq!(trashed.len(), 1);
    let out = t.run(&["backup", "--list"]);
    assert!(text(&out.stdout).contains(&time));
}

#[test]
fn backup_and_restore_refuse_while_locked() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    std::fs::create_dir_all(t.state().join("locks")).unwrap();
    let f = std::fs::File::create(t.state().join("locks/company_1.lock")).unwrap();
    f.lock().unwrap();
    assert_code(&t.run(&["backup", "--company", "1"]), 75);
    assert_code(&t.run(&["restore", "--company", "1"]), 75);
    assert!(!t.state().join("backups").exists());
}

#[test]
fn history_stays_bounded_after_many_appends() {
    let t = Tree::new();
    company_with(&t, "company_1", 20, days(1));
    // A year of minute samples, as a careless writer might have left them.
    let now = chrono::Utc::now().timestamp();
    let samples: Vec<serde_json::Value> = (0..525_600)
        .step_by(7)
        .map(|m| serde_json::json!([now - 365 * 86_400 + m * 60, 100]))
        .collect();
    std::fs::create_dir_all(t.state().join("companies")).unwrap();
    std::fs::write(
        t.state().join("companies/company_1.json"),
        serde_json::json!({ "history": samples }).to_string(),
    )
    .unwrap();
    for _ in 0..5 {
        assert_code(&t.run(&["trigger"]), 0);
    }
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.state().join("companies/company_1.json")).unwrap())
            .unwrap();
    let h = rec["history"].as_array().unwrap();
    // 14 days kept, one point an hour; five runs within the hour are one point.
    assert!(
        h.iter()
            .all(|s| s[0].as_i64().unwrap() >= now - 14 * 86_400 - 60),
        "old samples kept"
    );
    assert!(h.len() <= 14 * 24 + 2, "{}", h.len());
    assert_eq!(h.last().unwrap()[1], 20);
    let (_, v) = t.json(&["status", "--json", "--history"]);
    assert_eq!(
        v["companies"][0]["history"].as_array().unwrap().len(),
        h.len()
    );
}
