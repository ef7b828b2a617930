use crate::testenv::*;
use std::os::unix::fs::symlink;

/// A company with something of every kind, old and new. Its counters put the pre-key server
/// window's floor (nextPreKeyId - 812 - 100) at id 71: ids 1..=70 go, as under the spec's
/// keep-50 with next 121.
fn mixed(t: &Tree, c: &str) {
    t.creds(c, 71 + 912, 71 + 912);
    for id in 1..=120 {
        t.file(&format!("{c}/pre-key-{id}.json"), days(200 - id));
    }
    t.file(&format!("{c}/session-5511888888888.0.json"), days(20))
        .file(&format!("{c}/identity-key-5511888888888.0.json"), days(20))
        .file(&format!("{c}/session-123456789012340_1.0.json"), days(2))
        .file(
            &format!("{c}/sender-key-120363000000001@g.us--5511777777777--0.json"),
            days(5),
        )
        .file(
            &format!("{c}/sender-key-memory-120363000000001@g.us.json"),
            days(1),
        )
        .file(&format!("{c}/lid-mapping-5511888888888.json"), days(300))
        .file(&format!("{c}/app-state-sync-key-AAAAAOb5.json"), days(300))
        .file(&format!("{c}/session-5511666666666.0.json"), mins(2));
}

#[test]
fn dry_run_changes_nothing_and_lists_exactly_what_a_real_run_removes() {
    let t = Tree::new();
    mixed(&t, "company_1");
    mixed(&t, "company_2");
    let before = t.snapshot();
    let (out, dry) = t.json(&["cleanup", "--dry-run", "--json"]);
    assert_code(&out, 0);
    assert_eq!(t.snapshot(), before, "dry run changed the tree");
    assert!(!t.state().exists(), "dry run created the state directory");
    let planned = removed_files(&dry, "company_1");
    assert_eq!(planned.len(), 70 + 3, "{planned:?}"); // 70 pre-keys, session + identity, sender key
    assert!(planned.contains(&"pre-key-1.json".to_string()));
    assert!(!planned.contains(&"pre-key-71.json".to_string()));

    let (out, real) = t.json(&["cleanup", "--json"]);
    assert_code(&out, 0);
    assert_eq!(removed_files(&real, "company_1"), planned);
    for f in &planned {
        assert!(!t.exists(&format!("company_1/{f}")), "{f} still there");
    }
    // creds + 120 pre-keys + 8 others = 129 files.
    assert_eq!(t.names("company_1").len(), 129 - 73);
    let r = company_report(&real, "company_1");
    assert_eq!(r["files_before"], 129);
    assert_eq!(r["files_after"], 56);
    assert_eq!(r["removed_by_type"]["pre-key"], 70);
}

#[test]
fn dry_run_human_output_names_every_file() {
    let t = Tree::new();
    mixed(&t, "company_1");
    let out = t.run(&["cleanup", "--dry-run"]);
    assert_code(&out, 0);
    let s = text(&out.stdout);
    assert!(
        s.contains("would remove session-5511888888888.0.json  (session)"),
        "{s}"
    );
    assert_eq!(
        s.lines()
            .filter(|l| l.starts_with("  would remove "))
            .count(),
        73,
        "{s}"
    );
    assert!(s.contains("dry run: nothing was changed"));
}

#[test]
fn verbose_lists_every_file_with_type_and_rule() {
    let t = Tree::new();
    mixed(&t, "company_1");
    let out = t.run(&["cleanup", "--dry-run", "--verbose"]);
    let s = text(&out.stdout);
    let line = s
        .lines()
        .find(|l| l.contains("session-5511888888888.0.json"))
        .unwrap();
    assert!(
        line.contains("session") && line.contains(" old > 14d") && line.ends_with("remove"),
        "{line}"
    );
    let line = s
        .lines()
        .find(|l| l.contains("lid-mapping-5511888888888.json"))
        .unwrap();
    assert!(
        line.contains("lid-mapping files are never removed") && line.ends_with("keep"),
        "{line}"
    );
    let line = s
        .lines()
        .find(|l| l.contains("session-5511666666666.0.json"))
        .unwrap();
    assert!(line.contains("in use") && line.ends_with("keep"), "{line}");
    assert_eq!(
        s.lines()
            .filter(|l| l.ends_with(" keep") || l.ends_with(" remove"))
            .count(),
        129
    );
}

#[test]
fn protected_files_survive_even_when_a_year_old() {
    let t = Tree::new();
    let c = "company_9";
    t.creds(c, 1, 1);
    let protected = [
        "app-state-sync-key-AAAAAOb5.json",
        "app-state-sync-version-regular_high.json",
        "lid-mapping-5511999999999.json",
        "lid-mapping-123456789012345_reverse.json",
        "tctoken-123456789012345@lid.json",
        "device-list-5511999999999.json",
        "contacts.json",
        "creds.json.bak",
        "lid-mapping-5511999999999.json.tmp",
    ];
    for f in protected {
        t.file(&format!("{c}/{f}"), days(365));
    }
    set_age(&t.path(&format!("{c}/creds.json")), days(365));
    for args in [&["cleanup"][..], &["cleanup", "--emergency"]] {
        assert_code(&t.run(args), 0);
    }
    for f in protected.iter().chain(&["creds.json"]) {
        assert!(t.exists(&format!("{c}/{f}")), "{f} was removed");
    }
}

#[test]
fn a_planted_symlink_is_not_followed() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    let outside = t.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("precious.json"), "keep me").unwrap();
    std::fs::write(outside.join("session-1.0.json"), "keep me too").unwrap();
    set_age(&outside.join("precious.json"), days(365));
    set_age(&outside.join("session-1.0.json"), days(365));
    symlink(
        outside.join("precious.json"),
        t.path("company_1/session-9.0.json"),
    )
    .unwrap();
    symlink(&outside, t.path("company_1/session-8.0.json")).unwrap();
    set_age(&t.path("company_1/session-9.0.json"), days(365));
    // A symlinked company folder is skipped, not followed.
    symlink(&outside, t.path("company_evil")).unwrap();
    let (out, v) = t.json(&["cleanup", "--json"]);
    assert_code(&out, 0);
    assert!(outside.join("precious.json").exists());
    assert!(outside.join("session-1.0.json").exists());
    assert!(
        t.exists("company_1/session-9.0.json"),
        "the link itself is not a regular file: kept"
    );
    assert_eq!(
        v["companies"].as_array().unwrap().len(),
        1,
        "symlinked company was handled"
    );
    assert!(
        text(&out.stderr).contains("company_evil"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_second_concurrent_run_on_the_same_company_is_busy() {
    let t = Tree::new();
    mixed(&t, "company_1");
    let mut first = t
        .spawn_cmd()
        .args(["cleanup", "--debug-pause-before-remove", "3s"])
        .env("BAILEYS_JANITOR_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first run to take its lock.
    let lock = t.state().join("locks/company_1.lock");
    for _ in 0..100 {
        if std::fs::read_to_string(&lock).is_ok_and(|s| s.contains("pid=")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
    // Not waiting for the lock (the daily run waits cleanup.lock_wait, 60s by default).
    let second = t.run(&["cleanup", "--lock-wait", "0s"]);
    assert_code(&second, 75);
    assert!(
        text(&second.stdout).contains("busy: locked by pid="),
        "{}",
        text(&second.stdout)
    );
    assert!(first.wait().unwrap().success());
    // The lock is released with the process: the next run goes ahead at once.
    assert_code(&t.run(&["cleanup"]), 0);
}

#[test]
fn a_lock_held_by_anyone_makes_that_company_busy_and_others_proceed() {
    let t = Tree::new();
    mixed(&t, "company_1");
    mixed(&t, "company_2");
    std::fs::create_dir_all(t.state().join("locks")).unwrap();
    let f = std::fs::File::create(t.state().join("locks/company_1.lock")).unwrap();
    f.lock().unwrap();
    let (out, v) = t.json(&["cleanup", "--json"]);
    assert_code(&out, 75);
    assert_eq!(company_report(&v, "company_1")["status"], "busy");
    assert_eq!(company_report(&v, "company_2")["status"], "ok");
    assert!(t.exists("company_1/pre-key-1.json"));
    assert!(!t.exists("company_2/pre-key-1.json"));
    drop(f);
}

#[test]
fn a_corrupt_creds_json_skips_that_company() {
    let t = Tree::new();
    mixed(&t, "company_1");
    mixed(&t, "company_2");
    std::fs::write(t.path("company_1/creds.json"), "{\"me\":{\"id\":").unwrap();
    let before = t.names("company_1");
    let (out, v) = t.json(&["cleanup", "--json"]);
    assert_code(&out, 1);
    let r = company_report(&v, "company_1");
    assert_eq!(r["status"], "failed");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("creds.json is not valid JSON"),
        "{r}"
    );
    assert_eq!(t.names("company_1"), before);
    assert_eq!(company_report(&v, "company_2")["status"], "ok");
}

#[test]
fn missing_creds_leaves_pre_keys_alone() {
    let t = Tree::new();
    for id in 1..=80 {
        t.file(&format!("company_1/pre-key-{id}.json"), days(100));
    }
    t.file("company_1/session-1.0.json", days(100));
    // The account is active (a session written half an hour ago): session-1 is idle 100 days.
    t.file("company_1/session-2.0.json", mins(30));
    let (out, v) = t.json(&["cleanup", "--json"]);
    assert_code(&out, 0);
    assert_eq!(removed_files(&v, "company_1"), vec!["session-1.0.json"]);
}

#[test]
fn company_selection() {
    let t = Tree::new();
    mixed(&t, "company_962302");
    mixed(&t, "company_5");
    let (out, v) = t.json(&["cleanup", "--dry-run", "--json", "--company", "962302"]);
    assert_code(&out, 0);
    assert_eq!(v["companies"].as_array().unwrap().len(), 1);
    let (_, v) = t.json(&[
        "cleanup",
        "--dry-run",
        "--json",
        "--company",
        "company_962302",
        "--company",
        "5",
    ]);
    assert_eq!(v["companies"].as_array().unwrap().len(), 2);
    let out = t.run(&["cleanup", "--company", "777"]);
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("no company \"777\"") && err.contains("company_5, company_962302"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_missing_sessions_path_is_a_one_line_error() {
    let out = bare_cmd()
        .args(["--sessions-path", "/nonexistent/sessions", "cleanup"])
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert_eq!(text(&out.stderr).lines().count(), 1);
    assert!(text(&out.stderr).contains("/nonexistent/sessions does not exist"));
}

#[test]
fn a_bad_config_touches_nothing() {
    let t = Tree::new();
    mixed(&t, "company_1");
    let cfg = t.dir.path().join("janitor.toml");
    std::fs::write(&cfg, "[cleanup]\nmax_pre_keys = \"many\"\n").unwrap();
    let before = t.snapshot();
    let out = t
        .cmd()
        .arg("--config")
        .arg(&cfg)
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(
        text(&out.stderr).contains("max_pre_keys"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(t.snapshot(), before);
}

#[test]
fn config_file_env_and_flag_precedence() {
    let t = Tree::new();
    mixed(&t, "company_1");
    let cfg = t.dir.path().join("janitor.toml");
    std::fs::write(
        &cfg,
        "sessions_path = \"/nonexistent\"\n[cleanup]\nmax_pre_keys = 100\n",
    )
    .unwrap();
    // The flag (set by t.cmd()) beats the file's sessions_path; the file's rule applies.
    let out = t
        .cmd()
        .arg("--config")
        .arg(&cfg)
        .args(["cleanup", "--dry-run", "--json"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        company_report(&v, "company_1")["removed_by_type"]["pre-key"],
        20
    );
    // Environment beats the file too.
    let out = bare_cmd()
        .env("BAILEYS_SESSIONS_PATH", t.root())
        .env("BAILEYS_JANITOR_CONFIG", &cfg)
        .args(["cleanup", "--dry-run", "--json"])
        .output()
        .unwrap();
    assert_code(&out, 0);
}

#[test]
fn emergency_rules_are_stricter() {
    let t = Tree::new();
    // Floor 51: the server window keeps the newest 50 of these 100, as keep-50 would.
    t.creds("company_1", 51 + 912, 51 + 912);
    for id in 1..=100 {
        t.file(&format!("company_1/pre-key-{id}.json"), days(30));
    }
    t.file("company_1/session-1.0.json", days(8));
    let (_, normal) = t.json(&["cleanup", "--dry-run", "--json"]);
    assert_eq!(removed_files(&normal, "company_1").len(), 50);
    // The emergency tightens sessions (8 days > 7) and keeps the same server window: no
    // pre-key the server may hand out goes (issue 20: it used to keep only the newest 30).
    let (_, em) = t.json(&["cleanup", "--dry-run", "--json", "--emergency"]);
    let gone = removed_files(&em, "company_1");
    assert_eq!(gone.len(), 51, "{gone:?}");
    assert!(gone.contains(&"session-1.0.json".to_owned()));
    assert!(!gone.contains(&"pre-key-51.json".to_owned()));
}

#[test]
fn removed_files_go_to_the_trash_by_default_or_are_unlinked() {
    let t = Tree::new();
    t.creds("company_1", 1, 1)
        .file("company_1/session-1.0.json", days(20));
    let (out, v) = t.json(&["cleanup", "--json"]);
    assert_code(&out, 0);
    let run = v["run_id"].as_str().unwrap();
    let trashed = t
        .state()
        .join(format!("trash/company_1/{run}/session-1.0.json"));
    assert!(trashed.exists(), "{trashed:?}");
    t.file("company_1/session-2.0.json", days(20));
    let (_, v) = t.json(&["cleanup", "--json", "--no-trash"]);
    let run = v["run_id"].as_str().unwrap();
    assert!(!t.exists("company_1/session-2.0.json"));
    assert!(!t.state().join(format!("trash/company_1/{run}")).exists());
}

#[test]
fn single_tenant_mode_cleans_one_auth_folder() {
    let t = Tree::new();
    t.creds("auth", 1, 1)
        .file("auth/session-1.0.json", days(20));
    let out = bare_cmd()
        .env("ENABLE_MULTITENANCY", "false")
        .arg("--sessions-path")
        .arg(t.path("auth"))
        .args(["cleanup", "--json"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(!t.exists("auth/session-1.0.json"));
    assert!(t.exists("auth/creds.json"));
    assert!(
        t.root().join(".janitor/locks/auth.lock").exists(),
        "state lives beside the folder"
    );
    assert!(!t.path("auth/.janitor").exists());
}

#[test]
fn help_documents_exit_codes() {
    let t = Tree::new();
    for args in [&["--help"][..], &["cleanup", "--help"]] {
        let out = t.run(args);
        assert_code(&out, 0);
        let s = text(&out.stdout);
        assert!(s.contains("75") && s.contains("busy"), "{s}");
    }
}

#[test]
fn json_logs_on_request() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    let out = t.run(&["--log-format", "json", "cleanup"]);
    assert_code(&out, 0);
    let first = text(&out.stderr).lines().next().unwrap().to_owned();
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["message"], "cleanup started");
}

#[test]
fn a_first_run_on_several_threads_creates_the_state_directory_without_a_warning() {
    // The workers find the state directory missing at the same moment: one creates it and
    // records the sessions root; none warns that it could not.
    for _ in 0..3 {
        let t = Tree::new();
        for i in 1..=12 {
            mixed(&t, &format!("company_{i}"));
        }
        let out = t
            .cmd()
            .env("BAILEYS_JANITOR_LOG", "warn")
            .args(["cleanup", "--jobs", "4", "--json"])
            .output()
            .unwrap();
        assert_code(&out, 0);
        let err = text(&out.stderr);
        assert!(!err.contains("cannot record"), "{err}");
        assert!(t.state().join("root.json").exists());
    }
}
