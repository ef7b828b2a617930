//! The pre-key rule and its accounting, through the binary (docs/prekeys.md).
use crate::testenv::*;

/// `ids` pre-keys, two days old, in a company whose creds say `next`.
fn company(t: &Tree, c: &str, next: u64, ids: impl IntoIterator<Item = u64>) {
    t.creds(c, next, next);
    for id in ids {
        t.file(&format!("{c}/pre-key-{id}.json"), days(2));
    }
}

fn reason<'a>(v: &'a serde_json::Value, company: &str, file: &str) -> &'a str {
    company_report(v, company)["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["file"] == file)
        .unwrap_or_else(|| panic!("no decision for {file}"))["reason"]
        .as_str()
        .unwrap()
}

#[test]
fn right_after_an_812_upload_no_pre_key_goes() {
    let t = Tree::new();
    company(&t, "company_1", 813, 1..=812);
    let (out, v) = t.json(&["cleanup", "--json"]);
    assert_code(&out, 0);
    assert_eq!(company_report(&v, "company_1")["removed"], 0);
    assert_eq!(t.names("company_1").len(), 813);
}

#[test]
fn default_keeps_the_server_window_and_says_so() {
    let t = Tree::new();
    company(&t, "company_1", 2001, 1..=2000);
    let (out, v) = t.json(&["cleanup", "--dry-run", "--json", "-v"]);
    assert_code(&out, 0);
    let gone = removed_files(&v, "company_1");
    // Floor 2001 - 812 - 100 = 1089.
    assert_eq!(gone.len(), 1088, "stderr: {}", text(&out.stderr));
    assert!(gone.contains(&"pre-key-1088.json".to_string()));
    assert!(!gone.contains(&"pre-key-1089.json".to_string()));
    assert_eq!(
        reason(&v, "company_1", "pre-key-1088.json"),
        "id < 1089 (nextPreKeyId - 812 - margin): the server can no longer hand it out"
    );
    assert_eq!(
        reason(&v, "company_1", "pre-key-1089.json"),
        "id >= 1089 (nextPreKeyId - 812 - margin): the server may still hand it out"
    );
    // The human -v output names the rule too.
    let s = text(&t.run(&["cleanup", "--dry-run", "-v"]).stdout);
    assert!(s.contains("the server can no longer hand it out"), "{s}");
}

#[test]
fn keep_n_is_opt_in_by_config_for_the_daily_and_the_emergency_rules() {
    let t = Tree::new();
    company(&t, "company_1", 2001, 1..=2000);
    let cfg = t.dir.path().join("keep50.toml");
    std::fs::write(&cfg, "[pre_keys]\nkeep = 50\n").unwrap();
    let c = cfg.to_str().unwrap();
    let (out, v) = t.json(&["--config", c, "cleanup", "--dry-run", "--json", "-v"]);
    assert_code(&out, 0);
    assert_eq!(removed_files(&v, "company_1").len(), 1950);
    assert_eq!(
        reason(&v, "company_1", "pre-key-1089.json"),
        "older than the newest 50 pre-keys"
    );
    // The run says plainly what keep-N costs.
    let s = text(&t.run(&["--config", c, "cleanup", "--dry-run"]).stdout);
    assert!(
        s.contains("first messages from new contacts will fail"),
        "{s}"
    );
    // Regression (issue 20): the emergency rules kept the newest 30 by default. Now they keep
    // the server window unless emergency.max_pre_keys is set.
    let (_, v) = t.json(&["cleanup", "--dry-run", "--json", "--emergency"]);
    assert_eq!(removed_files(&v, "company_1").len(), 1088);
    let s = text(&t.run(&["cleanup", "--dry-run", "--emergency"]).stdout);
    assert!(!s.contains("will fail"), "{s}");
    let em = t.dir.path().join("em30.toml");
    std::fs::write(&em, "[emergency]\nmax_pre_keys = 30\n").unwrap();
    let e = em.to_str().unwrap();
    let (_, v) = t.json(&[
        "--config",
        e,
        "cleanup",
        "--dry-run",
        "--json",
        "--emergency",
    ]);
    assert_eq!(removed_files(&v, "company_1").len(), 1970);
    for cmd in [
        vec!["--config", e, "cleanup", "--dry-run", "--emergency"],
        vec!["--config", e, "status"],
        vec!["--config", e, "config"],
        vec!["--config", e, "trigger", "--dry-run"],
    ] {
        let s = text(&t.run(&cmd).stdout);
        assert!(
            s.contains("first messages from new contacts will fail"),
            "{cmd:?}: {s}"
        );
    }
    // Without it, the daily cleanup stays silent about keep-N.
    let s = text(&t.run(&["--config", e, "cleanup", "--dry-run"]).stdout);
    assert!(!s.contains("will fail"), "{s}");
    // A margin moves the floor: margin 0 keeps exactly the last 812.
    std::fs::write(&cfg, "[pre_keys]\nmargin = 0\n").unwrap();
    let (_, v) = t.json(&["--config", c, "cleanup", "--dry-run", "--json"]);
    assert_eq!(removed_files(&v, "company_1").len(), 2000 - 812);
    // `config` shows which rule is in force and where it came from.
    let s = text(&t.run(&["--config", c, "config"]).stdout);
    assert!(s.contains("pre_keys.margin"), "{s}");
    // The monitor's auto-cleanup under the explicit keep-30 says so too (and does remove).
    let s = text(
        &t.run(&["--config", e, "monitor", "--once", "--auto-cleanup"])
            .stdout,
    );
    assert!(
        s.contains("first messages from new contacts will fail"),
        "{s}"
    );
    assert!(s.contains("reserved (keep-N)"), "{s}");
}

#[test]
fn status_counts_waste_and_points_at_a_reconnect_loop() {
    let t = Tree::new();
    // Issue #2797's folder: 5,241 minted in ~40 days, few used. Ids 1..=50 and 4300..=5241 left.
    company(&t, "company_1", 5242, (1..=50).chain(4300..=5241));
    set_age(&t.path("company_1/pre-key-1.json"), days(40));
    // A healthy one: paired a month ago, 100 minted since.
    company(&t, "company_2", 913, 1..=912);
    set_age(&t.path("company_2/pre-key-1.json"), days(30));
    let (out, v) = t.json(&["status", "--json"]);
    // ~1000 files, but 912 of them are the server window: 81 counted, healthy (issue 20).
    assert_code(&out, 0);
    let r = row(&v, "company_1");
    assert_eq!(
        (
            r["files"].as_u64(),
            r["reserved_pre_keys"].as_u64(),
            r["counted"].as_u64()
        ),
        (Some(993), Some(912), Some(81))
    );
    assert_eq!(r["level"], "healthy");
    let k = &row(&v, "company_1")["pre_keys"];
    assert_eq!(k["server_window_floor"], 4330);
    assert_eq!(k["waste"], 50 + 30);
    assert_eq!(k["may_hand_out"], 912);
    assert_eq!(k["growth"]["from"], "files");
    let advice = row(&v, "company_1")["advice"].to_string();
    // (5242 - 1 - 812) / 40 days
    assert!(
        advice.contains("pre-keys grow ~111 a day (4429 minted in 40.0 days)"),
        "{advice}"
    );
    assert!(advice.contains("80 pre-keys are below"), "{advice}");
    let healthy = row(&v, "company_2");
    assert_eq!(healthy["pre_keys"]["waste"], 0);
    assert_eq!(healthy["pre_keys"]["may_hand_out"], 912);
    assert!(
        !healthy["advice"].to_string().contains("pre-keys"),
        "{healthy}"
    );
    let s = text(&t.run(&["status", "-v"]).stdout);
    assert!(
        s.contains(
            "pre-keys: 912 the server may hand out (ids >= 4330), 80 waste, ~111 minted a day"
        ),
        "{s}"
    );
}

#[test]
fn status_measures_growth_from_the_counters_past_cleanups_recorded() {
    let t = Tree::new();
    company(&t, "company_1", 1000, 900..=999);
    assert_code(&t.run(&["cleanup"]), 0);
    // Backdate that cleanup three days; since then Baileys minted 330 ids (110 a day).
    let rec_path = t.state().join("companies/company_1.json");
    let mut rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&rec_path).unwrap()).unwrap();
    assert_eq!(rec["cleanups"][0]["next_pre_key_id"], 1000);
    let three_days_ago = chrono::Utc::now() - chrono::Duration::days(3);
    rec["cleanups"][0]["time"] = serde_json::json!(three_days_ago);
    std::fs::write(&rec_path, serde_json::to_vec(&rec).unwrap()).unwrap();
    t.creds("company_1", 1330, 1330);
    let (_, v) = t.json(&["status", "--json"]);
    let g = &row(&v, "company_1")["pre_keys"]["growth"];
    assert_eq!(g["from"], "cleanups");
    assert_eq!(g["ids"], 330);
    let advice = row(&v, "company_1")["advice"].to_string();
    assert!(advice.contains("pre-keys grow ~110 a day"), "{advice}");
}
