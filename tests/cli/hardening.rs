//! Adversarial tests: hostile folders, faults and races (issue 6). Each guarantee listed in
//! docs/safety.md names the test here that proves it.

use crate::testenv::*;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Mounts for a test (root only); `None` means the test is skipped, with a message.
struct Mount(std::path::PathBuf);

impl Mount {
    fn new(args: &[&str], target: &Path) -> Option<Mount> {
        let ok = Command::new("mount")
            .args(args)
            .arg(target)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount here (needs root): {args:?}");
            return None;
        }
        Some(Mount(target.to_owned()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Runs a child to the end, sampling its RSS; returns (output, peak VmHWM seen, in KiB).
fn run_sampling_rss(mut cmd: Command) -> (std::process::Output, u64) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        std::thread::spawn(move || {
            while let Ok(s) = std::fs::read_to_string(&status) {
                if let Some(kib) = s
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                {
                    peak.fetch_max(kib, std::sync::atomic::Ordering::SeqCst);
                }
                if s.contains("State:\tZ") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let out = child.wait_with_output().unwrap();
    sampler.join().unwrap();
    (out, peak.load(std::sync::atomic::Ordering::SeqCst))
}

#[test]
fn symlinks_to_files_and_directories_outside_survive() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    let outside = t.dir.path().join("outside");
    std::fs::create_dir_all(outside.join("dir")).unwrap();
    std::fs::write(outside.join("target.json"), "precious").unwrap();
    std::fs::write(outside.join("dir/session-1.0.json"), "precious").unwrap();
    for (link, target) in [
        ("session-1.0.json", outside.join("target.json")),
        ("session-2.0.json", outside.join("dir")),
    ] {
        symlink(&target, t.path(&format!("company_1/{link}"))).unwrap();
        set_age(&t.path(&format!("company_1/{link}")), days(365));
        set_age(&target, days(365));
    }
    for args in [&["cleanup"][..], &["cleanup", "--emergency", "--no-trash"]] {
        assert_code(&t.run(args), 0);
    }
    assert_eq!(
        std::fs::read_to_string(outside.join("target.json")).unwrap(),
        "precious"
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("dir/session-1.0.json")).unwrap(),
        "precious"
    );
    assert!(t.exists("company_1/session-1.0.json") && t.exists("company_1/session-2.0.json"));
}

#[test]
fn a_company_folder_swapped_for_a_symlink_mid_run_changes_nothing_outside() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    for i in 0..20 {
        t.file(&format!("company_1/session-{i}.0.json"), days(30));
    }
    // Outside the sessions root: files with the same names, just as old.
    let outside = t.dir.path().join("victim");
    for i in 0..20 {
        let p = outside.join(format!("session-{i}.0.json"));
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(&p, "victim").unwrap();
        set_age(&p, days(30));
    }
    let mut child = t
        .spawn_cmd()
        .args(["cleanup", "--no-trash", "--debug-pause-before-remove", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::rename(t.path("company_1"), t.path("moved_away")).unwrap();
    symlink(&outside, t.path("company_1")).unwrap();
    child.wait().unwrap();
    for i in 0..20 {
        assert!(
            outside.join(format!("session-{i}.0.json")).exists(),
            "outside file {i} removed"
        );
    }
    // The run worked on the folder it had opened, wherever it went.
    assert_eq!(std::fs::read_dir(t.path("moved_away")).unwrap().count(), 1);
}

#[test]
fn odd_entries_neither_crash_nor_get_removed_unless_a_rule_names_a_regular_file() {
    let t = Tree::new();
    let c = "company_1";
    t.creds(c, 1, 1);
    let dir = t.path(c);
    // Regular files that a rule names: removed, whatever their names.
    let long = format!(
        "session-{}.0.json",
        "9".repeat(255 - "session-.0.json".len())
    );
    assert_eq!(long.len(), 255);
    for name in [
        "session-with space.0.json",
        "session-new\nline.0.json",
        long.as_str(),
    ] {
        t.file(&format!("{c}/{name}"), days(30));
    }
    // Kept: hard link, FIFO, socket, sub-directory, invalid UTF-8, unknown, unreadable-but-young.
    t.file(&format!("{c}/session-linked.0.json"), days(30));
    std::fs::hard_link(
        dir.join("session-linked.0.json"),
        t.dir.path().join("other-link"),
    )
    .unwrap();
    Command::new("mkfifo")
        .arg(dir.join("session-fifo.0.json"))
        .status()
        .unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(dir.join("session-sock.0.json")).unwrap();
    std::fs::create_dir(dir.join("session-dir.0.json")).unwrap();
    let bad = std::ffi::OsStr::from_bytes(b"session-\xff\xfe.0.json");
    std::fs::write(dir.join(bad), "x").unwrap();
    set_age(&dir.join(bad), days(30));
    t.file(&format!("{c}/notes.txt"), days(300));
    t.file(&format!("{c}/session-locked.0.json"), days(1));
    std::fs::set_permissions(
        dir.join("session-locked.0.json"),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    for (name, age) in [
        ("session-fifo.0.json", 30),
        ("session-sock.0.json", 30),
        ("session-dir.0.json", 30),
    ] {
        set_age(&dir.join(name), days(age));
    }

    let (out, v) = t.json(&["cleanup", "--json", "--verbose"]);
    assert_code(&out, 0);
    let mut removed = removed_files(&v, c);
    removed.sort();
    let mut want = vec![
        "session-new\\nline.0.json".to_string(),
        "session-with space.0.json".into(),
        long.clone(),
    ];
    want.sort();
    assert_eq!(removed, want);
    for kept in [
        "session-linked.0.json",
        "session-fifo.0.json",
        "session-sock.0.json",
        "session-dir.0.json",
        "notes.txt",
        "session-locked.0.json",
    ] {
        assert!(dir.join(kept).symlink_metadata().is_ok(), "{kept} removed");
    }
    assert!(dir.join(bad).exists(), "invalid UTF-8 name removed");
    // The report shows the newline escaped: a name cannot forge a report line.
    let human = t.run(&["cleanup", "--dry-run", "--verbose"]);
    assert!(
        !text(&human.stdout)
            .lines()
            .any(|l| l.starts_with("line.0.json"))
    );
}

#[test]
fn a_mount_point_inside_the_root_is_not_crossed() {
    let t = Tree::new();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("session-1.0.json"), "{}").unwrap();
    set_age(&elsewhere.path().join("session-1.0.json"), days(30));
    std::fs::create_dir(t.path("company_m")).unwrap();
    let Some(_m) = Mount::new(
        &["--bind", elsewhere.path().to_str().unwrap()],
        &t.path("company_m"),
    ) else {
        return;
    };
    // A bind mount of the same file system (same st_dev, another mount id) and a tmpfs.
    let tmpfs = t.path("company_t");
    std::fs::create_dir(&tmpfs).unwrap();
    let Some(_t) = Mount::new(&["-t", "tmpfs", "-o", "size=1m", "tmpfs"], &tmpfs) else {
        return;
    };
    std::fs::write(tmpfs.join("session-1.0.json"), "{}").unwrap();
    set_age(&tmpfs.join("session-1.0.json"), days(30));
    let (out, v) = t.json(&["cleanup", "--json"]);
    assert_code(&out, 1);
    for c in ["company_t", "company_m"] {
        assert_eq!(company_report(&v, c)["status"], "failed", "{c}");
        assert!(
            company_report(&v, c)["error"]
                .as_str()
                .unwrap()
                .contains("mount point"),
            "{c}"
        );
    }
    assert!(tmpfs.join("session-1.0.json").exists());
    assert!(
        elsewhere.path().join("session-1.0.json").exists(),
        "crossed a bind mount"
    );
}

#[test]
fn a_hundred_thousand_files_in_one_folder() {
    let t = Tree::new();
    let c = "company_big";
    t.creds(c, 100_001, 100_001);
    let dir = t.path(c);
    let old = filetime::FileTime::from_system_time(std::time::SystemTime::now() - days(30));
    for i in 1..=100_000 {
        let p = dir.join(format!("pre-key-{i}.json"));
        std::fs::write(&p, "{}").unwrap();
        filetime::set_file_mtime(&p, old).unwrap();
    }
    let mut cmd = t.spawn_cmd();
    cmd.args(["cleanup", "--json", "--no-trash"]);
    let (out, kib) = run_sampling_rss(cmd);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The server window keeps the last 812 + 100 ids.
    assert_eq!(company_report(&v, c)["removed"], 100_000 - 912);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 913);
    // One folder's entries (~100 bytes each) and its report's file names: tens of MiB at most.
    // A debug build peaks at 64-65 MiB here (2026-12-07, before and after that stop's changes,
    // so 64 MiB failed now and then): 80 MiB still catches 160 bytes more per file.
    assert!(kib > 0 && kib < 80 * 1024, "peak RSS {kib} KiB");
}

#[test]
fn kill_9_mid_cleanup_leaves_no_stale_lock_and_no_lost_file() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    for i in 0..50 {
        t.file(&format!("company_1/session-{i}.0.json"), days(30));
    }
    let mut child = t
        .spawn_cmd()
        .args(["cleanup", "--debug-pause-before-remove", "5s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = t.state().join("locks/company_1.lock");
    assert!(wait_until(5, || std::fs::read_to_string(&lock)
        .is_ok_and(|s| s.contains("pid="))));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (out, v) = t.json(&["cleanup", "--json"]);
    assert_code(&out, 0);
    assert_eq!(company_report(&v, "company_1")["removed"], 50);
    let trashed: usize = walkdir::WalkDir::new(t.state().join("trash"))
        .into_iter()
        .flatten()
        // The run's list of what it trashed (`.removed.jsonl`) is bookkeeping, not a file.
        .filter(|e| e.file_type().is_file() && !e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(
        trashed + t.names("company_1").len(),
        51,
        "every file is in the folder or the trash"
    );
}

fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn an_unusable_state_directory_is_a_clear_error_and_touches_nothing() {
    let t = Tree::new();
    t.creds("company_1", 1, 1)
        .file("company_1/session-1.0.json", days(30));
    let before = t.snapshot();
    // A state "directory" that is a file.
    let file = t.dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let out = t
        .cmd()
        .arg("--state-dir")
        .arg(file.join("state"))
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(
        text(&out.stdout).contains("cannot"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(t.snapshot(), before);
}

#[test]
fn a_read_only_state_directory_is_a_clear_error_and_loses_nothing() {
    let t = Tree::new();
    t.creds("company_1", 1, 1)
        .file("company_1/session-1.0.json", days(30));
    let state = t.dir.path().join("ro-state");
    std::fs::create_dir(&state).unwrap();
    let Some(_m) = Mount::new(&["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"], &state) else {
        return;
    };
    let before = t.snapshot();
    let out = t
        .cmd()
        .arg("--state-dir")
        .arg(&state)
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert_eq!(t.snapshot(), before);
}

#[test]
fn a_full_state_file_system_loses_no_file_and_truncates_no_state() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    for i in 0..30 {
        t.file_with(
            &format!("company_1/session-{i}.0.json"),
            &"x".repeat(20_000),
            days(30),
        );
    }
    // The trash must be on the same file system, so mount a tiny tmpfs as the whole sessions
    // root copy: sessions and state together, 256 KiB.
    let small = t.dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let Some(_m) = Mount::new(&["-t", "tmpfs", "-o", "size=256k"], &small) else {
        return;
    };
    let root = small.join("sessions");
    std::fs::create_dir_all(root.join("company_1")).unwrap();
    let mut names = Vec::new();
    for e in std::fs::read_dir(t.path("company_1")).unwrap() {
        let e = e.unwrap();
        let dst = root.join("company_1").join(e.file_name());
        if std::fs::copy(e.path(), &dst).is_err() {
            break; // the file system is full: exactly the state we want
        }
        set_age(&dst, days(30));
        names.push(e.file_name());
    }
    set_age(
        &root.join("company_1/creds.json"),
        Duration::from_secs(3600),
    );
    // Fill whatever is left.
    let _ = std::fs::write(small.join("filler"), vec![0u8; 1 << 20]);
    let count_before = std::fs::read_dir(root.join("company_1")).unwrap().count();
    let out = bare_cmd()
        .arg("--sessions-path")
        .arg(&root)
        .arg("cleanup")
        .output()
        .unwrap();
    // Renames need no space, so the cleanup itself works; the state files may not be written.
    let trashed: usize = walkdir::WalkDir::new(root.join(".janitor/trash"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .count();
    let left = std::fs::read_dir(root.join("company_1")).unwrap().count();
    assert_eq!(
        trashed + left,
        count_before,
        "a file was lost: {}",
        text(&out.stderr)
    );
    for f in walkdir::WalkDir::new(root.join(".janitor"))
        .into_iter()
        .flatten()
    {
        if f.file_type().is_file() && f.path().extension().is_some_and(|e| e == "json") {
            let bytes = std::fs::read(f.path()).unwrap();
            assert!(
                serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
                "truncated state file {:?}",
                f.path()
            );
        }
    }
}

#[test]
fn a_file_deleted_or_rewritten_between_scan_and_removal_is_skipped_not_an_error() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    for i in 0..3 {
        t.file(&format!("company_1/session-{i}.0.json"), days(30));
    }
    let child = t
        .spawn_cmd()
        .args(["cleanup", "--json", "--debug-pause-before-remove", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    std::fs::remove_file(t.path("company_1/session-0.0.json")).unwrap();
    std::fs::write(t.path("company_1/session-1.0.json"), "rewritten by the app").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = company_report(&v, "company_1");
    assert_eq!(r["removed_files"], serde_json::json!(["session-2.0.json"]));
    assert_eq!(r["skipped_files"].as_array().unwrap().len(), 2);
    assert!(r["failed_files"].as_array().unwrap().is_empty());
    assert_eq!(
        std::fs::read_to_string(t.path("company_1/session-1.0.json")).unwrap(),
        "rewritten by the app"
    );
}

#[test]
fn a_live_writer_never_loses_a_file_it_touched() {
    let t = Tree::new();
    t.creds("company_1", 1001, 1001);
    for i in 1..=1000 {
        t.file(&format!("company_1/pre-key-{i}.json"), days(30));
        t.file(&format!("company_1/session-{i}.0.json"), days(30));
    }
    let dir = t.path("company_1");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let touched = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = {
        let (dir, stop, touched) = (dir.clone(), stop.clone(), touched.clone());
        std::thread::spawn(move || {
            let mut i = 1;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for name in [
                    format!("pre-key-{i}.json"),
                    format!("session-{i}.0.json"),
                    format!("session-new-{i}.0.json"),
                ] {
                    // Write like the app: in place, or a fresh file.
                    if std::fs::write(dir.join(&name), "{\"live\":true}").is_ok() {
                        touched.lock().unwrap().push(name);
                    }
                }
                i = i % 1000 + 7;
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let out = t.run(&["cleanup", "--debug-pause-before-remove", "300ms"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.join().unwrap();
    assert_code(&out, 0);
    let touched = touched.lock().unwrap();
    assert!(touched.len() > 100, "the writer barely ran");
    for name in touched.iter() {
        assert!(
            dir.join(name).exists(),
            "{name} was touched by the app and then removed"
        );
    }
}

#[test]
fn concurrent_cleanups_trigger_and_monitor_handle_every_file_once() {
    let t = Tree::new();
    for c in ["company_1", "company_2", "company_3"] {
        t.creds(c, 1, 1);
        for i in 0..200 {
            t.file(&format!("{c}/session-{i}.0.json"), days(30));
        }
    }
    let (_, plan) = t.json(&["cleanup", "--dry-run", "--json", "--emergency"]);
    let planned: usize = plan["companies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["removed"].as_u64().unwrap() as usize)
        .sum();
    let runs: Vec<Vec<&str>> = vec![
        vec!["cleanup", "--json", "--emergency"],
        vec!["cleanup", "--json", "--emergency"],
        vec!["trigger", "--json"],
        vec!["monitor", "--once", "--auto-cleanup", "--json"],
    ];
    let children: Vec<_> = runs
        .iter()
        .map(|args| {
            t.spawn_cmd()
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut removed_names = Vec::new();
    for (args, child) in runs.iter().zip(children) {
        let out = child.wait_with_output().unwrap();
        let code = out.status.code().unwrap();
        assert!([0, 1, 75].contains(&code), "{args:?} exited {code}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if args[0] == "cleanup" {
            for c in v["companies"].as_array().unwrap() {
                if c["status"] == "busy" {
                    assert_eq!(code, 75, "a busy company must give 75");
                }
                for f in c["removed_files"].as_array().unwrap() {
                    removed_names.push(format!(
                        "{}/{}",
                        c["company"].as_str().unwrap(),
                        f.as_str().unwrap()
                    ));
                }
            }
        }
    }
    let unique: std::collections::HashSet<_> = removed_names.iter().collect();
    assert_eq!(
        unique.len(),
        removed_names.len(),
        "a file was removed twice"
    );
    // Between them, everything planned is gone, and nothing else.
    let left: usize = ["company_1", "company_2", "company_3"]
        .iter()
        .map(|c| t.names(c).len())
        .sum();
    assert_eq!(left, 3 * 201 - planned);
}

#[test]
fn every_bad_config_value_is_exit_2_naming_the_key() {
    let t = Tree::new();
    t.creds("company_1", 1, 1)
        .file("company_1/session-1.0.json", days(30));
    let before = t.snapshot();
    let cases = [
        ("[cleanup]\nsession_max_age = 14", "session_max_age"),
        ("[cleanup]\nsession_max_age = \"-3d\"", "session_max_age"),
        (
            "[cleanup]\nsender_key_max_age = \"0s\"",
            "sender_key_max_age",
        ),
        ("[cleanup]\nmax_pre_keys = -5", "max_pre_keys"),
        ("[cleanup]\nmax_pre_keys = 99999999999", "max_pre_keys"),
        ("[cleanup]\nmin_file_age = \"1s\"", "min_file_age"),
        ("[cleanup]\ntmp_max_age = true", "tmp_max_age"),
        ("[emergency]\nmax_pre_keys = \"30\"", "max_pre_keys"),
        ("[trash]\nretention = \"1s\"", "retention"),
        ("[trash]\nenabled = \"yes\"", "enabled"),
        ("[trigger]\nthreshold = 0", "threshold"),
        (
            "[trigger]\nthreshold = 200\nemergency_threshold = 185",
            "threshold",
        ),
        ("[trigger]\ncooldown = 6", "cooldown"),
        ("[monitor]\ninterval = \"0s\"", "interval"),
        ("[monitor]\nwarning = 180\ncritical = 170", "warning"),
        (
            "[monitor]\nrepeat_emergency = \"1000d\"",
            "repeat_emergency",
        ),
        ("[monitor]\nhysteresis = 1000", "hysteresis"),
        ("[notify]\ntimeout = \"10m\"", "timeout"),
        ("[notify]\nretries = 1000", "retries"),
        ("[notify]\nwebhook = 5", "webhook"),
        ("sessions_path = 5", "sessions_path"),
        ("log_level = \"loud\"", "log level"),
        ("log_format = \"xml\"", "log_format"),
        ("unknown_key = 1", "unknown_key"),
        ("[cleanup]\nsurprise = 1", "surprise"),
        ("not toml at all [", "config file"),
    ];
    let cfg = t.dir.path().join("bad.toml");
    for (toml, key) in cases {
        std::fs::write(&cfg, toml).unwrap();
        let out = t
            .cmd()
            .arg("--config")
            .arg(&cfg)
            .arg("cleanup")
            .output()
            .unwrap();
        assert_code(&out, 2);
        let err = text(&out.stderr);
        assert!(err.contains(key), "{toml:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{toml:?}: {err}");
    }
    let out = t
        .cmd()
        .arg("--config")
        .arg(t.dir.path().join("missing.toml"))
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert_eq!(t.snapshot(), before);
}

#[test]
fn bad_creds_files_never_panic() {
    let t = Tree::new();
    let huge = format!(
        "{{\"me\":{{\"id\":\"1@s.whatsapp.net\"}},\"pad\":\"{}\"}}",
        "x".repeat(5 * 1024 * 1024)
    );
    let cases: [(&str, &str, bool); 6] = [
        ("empty", "", true),
        ("truncated", "{\"me\":{\"id\":\"55", true),
        ("not_json", "hello", true),
        ("wrong_shape", "[1,2,3]", true),
        (
            "no_counters",
            "{\"me\":{\"id\":\"1:1@s.whatsapp.net\"},\"account\":{}}",
            false,
        ),
        ("huge", &huge, true),
    ];
    for (name, body, _) in &cases {
        let c = format!("company_{name}");
        t.file_with(&format!("{c}/creds.json"), body, days(1));
        for i in 1..=80 {
            t.file(&format!("{c}/pre-key-{i}.json"), days(30));
        }
    }
    let (out, v) = t.json(&["cleanup", "--json"]);
    assert_code(&out, 1);
    assert!(!text(&out.stderr).contains("panicked"));
    for (name, _, skipped) in cases {
        let r = company_report(&v, &format!("company_{name}"));
        if skipped {
            assert_eq!(r["status"], "failed", "{name}");
            assert_eq!(r["removed"], 0, "{name}");
        } else {
            assert_eq!(r["status"], "ok", "{name}");
            assert_eq!(
                r["removed"], 0,
                "{name}: pre-keys without counters must stay"
            );
        }
        assert_eq!(t.names(&format!("company_{name}")).len(), 81, "{name}");
    }
}
