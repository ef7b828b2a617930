//! Issue 20: safe on Baileys v7. The levels count what grows (reserved pre-keys left out), no
//! layer removes a key the server can hand out, and an account that was offline keeps its
//! sessions.
use crate::testenv::*;

/// A v7 account: creds saying `next`, the pre-keys `ids` (two days old), and `other` protected
/// files (lid-mappings, app state) as a freshly paired account has.
fn v7_account(t: &Tree, c: &str, next: u64, ids: impl IntoIterator<Item = u64>, other: usize) {
    t.creds(c, next, next);
    for id in ids {
        t.file(&format!("{c}/pre-key-{id}.json"), days(2));
    }
    t.file(&format!("{c}/app-state-sync-key-AAAAAOb5.json"), days(2));
    for i in 1..other {
        t.file(&format!("{c}/lid-mapping-55119{i:08}.json"), days(2));
    }
}

fn pre_key_ids(t: &Tree, c: &str) -> Vec<u64> {
    let mut ids: Vec<u64> = t
        .names(c)
        .iter()
        .filter_map(|n| {
            n.strip_prefix("pre-key-")?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn a_freshly_paired_v7_account_is_healthy_and_monitor_once_exits_0() {
    let t = Tree::new();
    // 812 pre-keys uploaded at pairing, 10 other files: 823 files, the raw count says danger.
    v7_account(&t, "company_1", 813, 1..=812, 10);
    let (out, v) = t.json(&["status", "--json"]);
    assert_code(&out, 0);
    let r = row(&v, "company_1");
    assert_eq!(r["files"], 823, "{r}");
    assert_eq!(r["reserved_pre_keys"], 812, "{r}");
    assert_eq!(r["counted"], 11, "{r}");
    assert_eq!(r["level"], "healthy", "{r}");
    let s = text(&t.run(&["status"]).stdout);
    assert!(
        s.contains("823 files, 812 reserved pre-keys"),
        "status shows both figures: {s}"
    );
    let out = t.run(&["monitor", "--once"]);
    assert_code(&out, 0);
    let (out, v) = t.json(&["trigger", "--json"]);
    assert_code(&out, 0);
    assert_eq!(row(&v, "company_1")["action"], "none");
    assert_eq!(row(&v, "company_1")["counted"], 11);
    assert_eq!(t.names("company_1").len(), 823);
}

#[test]
fn waste_below_the_server_window_still_raises_the_level() {
    let t = Tree::new();
    // A reconnect loop: two full batches, the first one's 812 are waste below the window.
    v7_account(&t, "company_1", 1625, 1..=1624, 10);
    let (out, v) = t.json(&["status", "--json"]);
    assert_code(&out, 1);
    let r = row(&v, "company_1");
    assert_eq!(r["reserved_pre_keys"], 912, "{r}");
    assert_eq!(r["counted"], 1635 - 912, "{r}");
    assert_eq!(r["level"], "danger", "{r}");
}

/// Issue 20: the first trigger ran an emergency cleanup keeping the newest 30 pre-keys and
/// removed 2,666 keys the server still handed out; `monitor --auto-cleanup` and
/// `cleanup --emergency` did the same.
#[test]
fn no_layer_removes_a_server_window_pre_key_by_default() {
    let floor = 1625 - 812 - 100;
    for (layer, args) in [
        ("trigger", vec!["trigger", "--json"]),
        (
            "monitor",
            vec!["monitor", "--once", "--auto-cleanup", "--json"],
        ),
        ("emergency", vec!["cleanup", "--emergency", "--json"]),
    ] {
        let t = Tree::new();
        v7_account(&t, "company_1", 1625, 1..=1624, 10);
        for i in 0..30 {
            t.file(&format!("company_1/session-77{i:08}.0.json"), days(8));
        }
        let sink = HttpSink::start(Answer::Ok);
        let hook = format!("{}/hook/SECRET", sink.url);
        let mut full = vec!["--notification-webhook", hook.as_str()];
        full.extend(&args);
        let out = t.run(&full);
        assert!(
            out.status.code() == Some(0) || layer == "monitor",
            "{layer}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let ids = pre_key_ids(&t, "company_1");
        assert_eq!(
            ids.first(),
            Some(&floor),
            "{layer}: waste below {floor} goes, the window stays"
        );
        assert_eq!(ids.len(), 1624 - floor as usize + 1, "{layer}");
        assert!(
            !t.names("company_1")
                .iter()
                .any(|n| n.starts_with("session-")),
            "{layer}: the emergency tightens sessions (8 days > 7)"
        );
        if layer == "emergency" {
            continue; // cleanup notifies failures only
        }
        // Rows and notifications say what went, in words, and where from.
        let s = text(&out.stdout);
        assert!(
            s.contains(&format!("{} pre-keys", floor - 1)) && s.contains("912 reserved pre-keys"),
            "{layer}: {s}"
        );
        let texts: Vec<String> = sink
            .bodies()
            .iter()
            .map(|b| b["text"].as_str().unwrap_or("").to_owned())
            .collect();
        let host = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        let done = texts
            .iter()
            .find(|x| x.contains("removed"))
            .unwrap_or_else(|| panic!("{layer}: no cleanup message: {texts:?}"));
        assert!(done.contains(&format!("on {host}]")), "{layer}: {done}");
        assert!(
            done.contains(&format!("({} pre-keys)", floor - 1))
                && done.contains("912 reserved pre-keys"),
            "{layer}: {done}"
        );
    }
}

/// Issue 20: a host that was down for three weeks came back to every contact's session
/// removed. Idleness is measured against the account's last activity.
#[test]
fn an_account_that_was_offline_for_three_weeks_keeps_its_recent_sessions() {
    let t = Tree::new();
    t.creds("company_1", 100, 100);
    set_age(&t.path("company_1/creds.json"), days(21));
    t.file("company_1/lid-mapping-5511999999999.json", days(21));
    // Used 3 days before the host went down: 24 days old by the wall clock.
    t.file("company_1/session-5511000000001.0.json", days(24));
    // Used 20 days before it went down: idle past the 14-day limit either way.
    t.file("company_1/session-5511000000002.0.json", days(41));
    let (out, v) = t.json(&["cleanup", "--dry-run", "--json", "-v"]);
    assert_code(&out, 0);
    assert_eq!(
        removed_files(&v, "company_1"),
        vec!["session-5511000000002.0.json"]
    );
    let s = text(&t.run(&["cleanup", "--dry-run", "-v"]).stdout);
    let line = s
        .lines()
        .find(|l| l.contains("session-5511000000001.0.json"))
        .unwrap();
    assert!(
        line.contains("idle <= 14d (before the account went quiet 21d") && line.ends_with("keep"),
        "{line}"
    );
    assert!(s.contains("last activity"), "-v names the clock: {s}");
}

/// Clock skew: one file of an account that was offline for three weeks carries an mtime a year
/// in the future (copied from a host whose clock was wrong, or `touch`ed). It used to count as
/// the account's last activity, so the account looked active now and lost, at once, every
/// session it used before it went quiet. A write from the future is no evidence of activity.
#[test]
fn a_file_from_the_future_does_not_make_an_offline_account_lose_its_sessions() {
    let t = Tree::new();
    // 200 protected files: past the emergency threshold, so the trigger runs an emergency.
    t.protected_company("company_1", 200, days(21));
    t.creds("company_1", 100, 100);
    set_age(&t.path("company_1/creds.json"), days(21));
    // Used 3 days before the host went down: 24 days old by the wall clock.
    t.file("company_1/session-5511000000001.0.json", days(24));
    // Used 20 days before it went down: idle past the 14-day limit either way.
    t.file("company_1/session-5511000000002.0.json", days(41));
    let skewed = t.path("company_1/sender-key-memory-120363000000000001@g.us.json");
    std::fs::write(&skewed, "{}").unwrap();
    let future = filetime::FileTime::from_system_time(std::time::SystemTime::now() + days(365));
    filetime::set_file_times(&skewed, future, future).unwrap();
    for args in [
        &["cleanup", "--dry-run", "--json", "-v"][..],
        &["cleanup", "--emergency", "--dry-run", "--json", "-v"][..],
    ] {
        let (out, v) = t.json(args);
        assert_code(&out, 0);
        let removed = removed_files(&v, "company_1");
        assert!(
            !removed.contains(&"session-5511000000001.0.json".to_owned()),
            "{args:?}: a session used 3 days before the account went quiet was removed: {removed:?}"
        );
        assert!(
            removed.contains(&"session-5511000000002.0.json".to_owned()),
            "{args:?}: {removed:?}"
        );
        assert!(
            !removed.iter().any(|n| n.starts_with("sender-key-memory-")),
            "{args:?}: {removed:?}"
        );
    }
    // The trigger's emergency (the layer that runs every 30 minutes) keeps it too.
    let (out, v) = t.json(&["trigger", "--json"]);
    assert_code(&out, 0);
    assert_eq!(row(&v, "company_1")["action"], "emergency-cleanup", "{v}");
    assert!(t.exists("company_1/session-5511000000001.0.json"));
    assert!(!t.exists("company_1/session-5511000000002.0.json"));
    assert!(t.exists("company_1/sender-key-memory-120363000000000001@g.us.json"));
}

/// `cleanup --help` said the emergency rules keep "30 pre-keys": an operator reading it would
/// believe `--emergency` breaks first contact (or that it is how to get keep-30). It keeps the
/// server window unless `emergency.max_pre_keys` is set.
#[test]
fn emergency_help_names_the_server_window_not_keep_30() {
    let out = bare_cmd().args(["cleanup", "--help"]).output().unwrap();
    assert_code(&out, 0);
    let help = text(&out.stdout);
    let line = help
        .lines()
        .skip_while(|l| !l.contains("--emergency"))
        .take(4)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!line.contains("30 pre-keys"), "{line}");
    assert!(
        line.contains("server window") && line.contains("emergency.max_pre_keys"),
        "{line}"
    );
}

/// A reconnect loop's waste in a SQLite store, seen by the janitor for the first time: the
/// store has no write times, so the ledger starts their age now and the first emergency keeps
/// them. The trigger's advice said "kept without readable counters ... check creds.json", which
/// sends the operator after a creds.json that is fine. It says what is true: they are new to
/// the janitor (or just written), and the next run removes them.
#[test]
fn fresh_waste_pre_keys_are_not_blamed_on_creds_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("company_1.db");
    crate::stores::make_sqlite(&db, &crate::stores::CREDS.replace("121", "3000"));
    let c = rusqlite::Connection::open(&db).unwrap();
    for id in 200..3000 {
        c.execute(
            "INSERT OR IGNORE INTO signal_keys (type, id, value) VALUES ('pre-key', ?1, '{}')",
            [id.to_string()],
        )
        .unwrap();
    }
    drop(c);
    let store = format!("sqlite:{}", db.display());
    let out = bare_cmd()
        .args(["--store", &store, "trigger", "--dry-run"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let s = text(&out.stdout);
    assert!(s.contains("emergency-cleanup"), "{s}");
    assert!(
        !s.contains("check creds.json"),
        "counters are readable: {s}"
    );
    assert!(s.contains("the next run removes them"), "{s}");
}

/// A v7 account whose creds.json is cut short: its 812 pre-keys can no longer be told reserved,
/// so the count jumped to "danger". `status` showed the row as an error, but `--json` (status
/// and `monitor --once`) said `"level": "danger"` (a small v6 folder: `"healthy"`), and the
/// monitor paged a `level_raised` for a count that means nothing beside its `creds_corrupt`.
/// An error row carries `level: null` everywhere and pages once, for its creds.
#[test]
fn a_corrupt_creds_row_has_no_level_in_json_and_pages_once() {
    let t = Tree::new();
    v7_account(&t, "company_1", 813, 1..=812, 10);
    v7_account(&t, "company_2", 813, 1..=812, 10);
    std::fs::write(t.path("company_2/creds.json"), "{\"me\":{\"id").unwrap();
    let (out, v) = t.json(&["status", "--json"]);
    assert_code(&out, 1);
    assert!(row(&v, "company_2")["level"].is_null(), "{v}");
    assert_eq!(row(&v, "company_1")["level"], "healthy");
    let sink = HttpSink::start(Answer::Ok);
    let out = t
        .cmd()
        .env("NOTIFICATION_WEBHOOK", format!("{}/hook", sink.url))
        .args(["monitor", "--once", "--json"])
        .output()
        .unwrap();
    assert_code(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = row(&v, "company_2");
    assert!(
        r["level"].is_null() && r["creds_problem"].is_string(),
        "{v}"
    );
    assert!(wait_for(5, || !sink.flat_events().is_empty()));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let events: Vec<String> = sink
        .flat_events()
        .iter()
        .map(|e| format!("{} {}", e["event"], e["company"]))
        .collect();
    assert_eq!(
        events,
        vec!["\"creds_corrupt\" \"company_2\""],
        "{events:?}"
    );
    let m = t.dir.path().join("janitor.prom");
    let out = t.run(&["monitor", "--once", "--metrics-file", m.to_str().unwrap()]);
    let s = text(&out.stdout);
    assert!(
        s.lines()
            .any(|l| l.starts_with("company_2") && l.contains("error: creds.json")),
        "{s}"
    );
    // Prometheus loses no company: the broken one is flagged instead of given a level.
    let prom = std::fs::read_to_string(&m).unwrap();
    assert!(
        prom.contains("baileys_janitor_company_creds_broken{company=\"company_2\"} 1"),
        "{prom}"
    );
    assert!(
        prom.contains("baileys_janitor_company_creds_broken{company=\"company_1\"} 0"),
        "{prom}"
    );
    assert!(
        !prom.contains("baileys_janitor_company_level{company=\"company_2\"}"),
        "{prom}"
    );
}
