//! What operators read, pinned (the tealdeer pattern): each command's human output on a fixed
//! tree with a fixed clock (`BAILEYS_JANITOR_NOW`), compared with `tests/golden/*.txt`. A change
//! to the output is a visible diff in review. `BLESS=1 cargo test golden` rewrites the files.

use crate::testenv::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2026-01-15T03:00:00Z: the fixed "now" of every golden run.
const NOW: &str = "2026-01-15T03:00:00Z";
const NOW_SECS: u64 = 1_768_446_000;

fn at(age: Duration) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS) - age
}

fn put(t: &Tree, rel: &str, content: &str, age: Duration) {
    let p = t.path(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, content).unwrap();
    filetime::set_file_mtime(&p, filetime::FileTime::from_system_time(at(age))).unwrap();
}

/// Four companies of different sizes and states, every file's age fixed against NOW.
fn demo() -> Tree {
    let t = Tree::new();
    let creds = |next: u64| {
        format!(
            r#"{{"me":{{"id":"5511999999999:7@s.whatsapp.net","lid":"123456789012345:7@lid"}},"account":{{"details":"x"}},"nextPreKeyId":{next},"firstUnuploadedPreKeyId":{next}}}"#
        )
    };
    for (company, sessions, pre_keys) in [
        ("company_100", 20, 30),
        ("company_200", 120, 40),
        ("company_300", 150, 30),
        ("company_400", 5, 3),
    ] {
        put(
            &t,
            &format!("{company}/creds.json"),
            &creds(pre_keys + 1),
            Duration::from_secs(5400),
        );
        put(
            &t,
            &format!("{company}/app-state-sync-key-AAAAAOb5.json"),
            "{}",
            days(90),
        );
        put(
            &t,
            &format!("{company}/lid-mapping-5511999999999.json"),
            "{}",
            days(90),
        );
        for i in 0..sessions {
            put(
                &t,
                &format!("{company}/session-55119{i:08}.0.json"),
                "{}",
                days(2 + (i as u64 % 30)),
            );
        }
        for i in 1..=pre_keys {
            put(&t, &format!("{company}/pre-key-{i}.json"), "{}", days(40));
        }
        put(
            &t,
            &format!("{company}/sender-key-120363@g.us--5511888888888--0.json"),
            "{}",
            days(9),
        );
    }
    std::fs::write(t.path("company_400/creds.json"), "").unwrap();
    t
}

fn mask(s: &str, t: &Tree) -> String {
    let root = t.dir.path().display().to_string();
    s.replace(&root, "<TMP>")
        .split('\n')
        .map(|l| {
            // Durations of the run itself vary: `12 ms`, `0.11 s`.
            let mut out = Vec::new();
            let words: Vec<&str> = l.split(' ').collect();
            for (i, w) in words.iter().enumerate() {
                let next = words.get(i + 1).copied();
                // Run ids end with the process id: `20260115T030000Z-4242`.
                if w.len() > 17
                    && w.as_bytes()[8] == b'T'
                    && w[..16].ends_with('Z')
                    && w.as_bytes()[16] == b'-'
                {
                    out.push("<RUN>");
                } else if (next == Some("ms") || next == Some("s") || next == Some("s,"))
                    && w.chars().all(|c| c.is_ascii_digit() || c == '.')
                    && !w.is_empty()
                {
                    out.push("<N>");
                } else {
                    out.push(w);
                }
            }
            out.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn golden(name: &str, t: &Tree, args: &[&str]) {
    let out = t
        .cmd()
        .env("BAILEYS_JANITOR_NOW", NOW)
        .env("BAILEYS_JANITOR_LOG", "off")
        .env("TZ", "UTC")
        // Stores show each run's host: the same on every machine.
        .env("BAILEYS_JANITOR_HOSTNAME", "host-a")
        .args(args)
        .output()
        .unwrap();
    let got = format!(
        "$ baileys-janitor {}\n{}[exit {}]\n",
        mask(&args.join(" "), t),
        mask(&text(&out.stdout), t),
        code(&out)
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run BLESS=1 cargo test golden", path.display()));
    if want != got {
        panic!(
            "{name}: output changed (BLESS=1 cargo test golden to accept)\n--- want\n{want}\n--- got\n{got}"
        );
    }
}

#[test]
fn golden_cleanup_dry_run() {
    let t = demo();
    golden("cleanup-dry-run", &t, &["cleanup", "--dry-run"]);
    golden(
        "cleanup-dry-run-company",
        &t,
        &["cleanup", "--dry-run", "--company", "300"],
    );
}

#[test]
fn golden_status() {
    let t = demo();
    golden("status", &t, &["status"]);
    golden("status-level", &t, &["status", "--level", "critical"]);
}

#[test]
fn golden_trigger_and_monitor() {
    let t = demo();
    golden("trigger-dry-run", &t, &["trigger", "--dry-run", "-v"]);
    golden("monitor-once", &t, &["monitor", "--once"]);
}

#[test]
fn golden_cleanup_then_status() {
    let t = demo();
    golden("cleanup", &t, &["cleanup"]);
    golden("status-after-cleanup", &t, &["status"]);
}

/// Three SQLite tenants (Baileys' own store): a small account, one at danger level, one with
/// corrupt creds; sessions aged by their own `indexInfo.used` against NOW.
fn demo_store(t: &Tree) -> String {
    let auth = t.dir.path().join("auth");
    std::fs::create_dir_all(&auth).unwrap();
    let now_ms = NOW_SECS as i64 * 1000;
    let session = |days: i64| {
        let used = now_ms - days * 86_400_000;
        format!(
            r#"{{"_sessions":{{"BQ==":{{"indexInfo":{{"baseKey":"BQ==","closed":-1,"used":{used},"created":{used}}},"_chains":{{}}}}}},"version":"v1"}}"#
        )
    };
    let creds = |next: u64| {
        format!(
            r#"{{"me":{{"id":"5511999999999:7@s.whatsapp.net"}},"account":{{"details":"x"}},"nextPreKeyId":{next},"firstUnuploadedPreKeyId":{next}}}"#
        )
    };
    for (tenant, creds, pre_keys) in [
        ("company_1", creds(21), 20),
        ("company_2", creds(201), 200),
        ("company_3", "{not json".to_owned(), 5),
    ] {
        let c = rusqlite::Connection::open(auth.join(format!("{tenant}.db"))).unwrap();
        c.execute_batch(
            "CREATE TABLE creds (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE signal_keys (type TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (type, id));",
        )
        .unwrap();
        c.execute("INSERT INTO creds VALUES ('__creds__', ?1)", [&creds])
            .unwrap();
        let mut rows = vec![
            (
                "session".to_owned(),
                "5511888888888.0".to_owned(),
                session(30),
            ),
            (
                "session".to_owned(),
                "5511777777777.0".to_owned(),
                session(1),
            ),
            (
                "identity-key".to_owned(),
                "5511888888888.0".to_owned(),
                r#"{"type":"Buffer","data":"BQ=="}"#.to_owned(),
            ),
            (
                "app-state-sync-key".to_owned(),
                "AAAAAOb5".to_owned(),
                "{}".to_owned(),
            ),
        ];
        for i in 1..=pre_keys {
            rows.push((
                "pre-key".into(),
                i.to_string(),
                r#"{"type":"Buffer"}"#.into(),
            ));
        }
        for (t, id, v) in rows {
            c.execute("INSERT INTO signal_keys VALUES (?1, ?2, ?3)", [t, id, v])
                .unwrap();
        }
    }
    format!("sqlite:{}", auth.display())
}

#[test]
fn golden_store_status_and_cleanup() {
    let t = Tree::new();
    let store = demo_store(&t);
    let state = t.dir.path().join("state").display().to_string();
    let args = |rest: &[&'static str]| {
        let mut v: Vec<String> = vec![
            "--store".into(),
            store.clone(),
            "--state-dir".into(),
            state.clone(),
        ];
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    let run = |name: &str, rest: &[&'static str]| {
        let a = args(rest);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        golden(name, &t, &a);
    };
    run("store-status", &["status"]);
    run("store-cleanup-dry-run", &["cleanup", "--dry-run"]);
    run("store-cleanup", &["cleanup"]);
    run("store-status-after-cleanup", &["status"]);
    // A restore (its rows on hold) and a trigger (a cooldown): status shows both, as folder
    // status does. Their own output is not what this pins.
    for rest in [
        &["restore", "--company", "company_1"][..],
        &[
            "trigger",
            "--threshold",
            "1",
            "--emergency-threshold",
            "1000",
        ],
    ] {
        t.cmd()
            .env("BAILEYS_JANITOR_NOW", NOW)
            .env("BAILEYS_JANITOR_LOG", "off")
            .env("BAILEYS_JANITOR_HOSTNAME", "host-a")
            .args(args(rest))
            .output()
            .unwrap();
    }
    run("store-status-cooldown-and-hold", &["status"]);
}
