//! Undo you can trust (issue 11): `backup` and `restore` never make a folder worse. Each test is
//! named after the guarantee docs/safety.md lists it under.

use crate::testenv::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const APP_UID: u32 = 4242;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A tmpfs for one test, unmounted when dropped (also when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(target: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(target).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(target)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Tmpfs(target.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn paired_creds(me: &str, padding: usize) -> String {
    format!(
        r#"{{"me":{{"id":"{me}:7@s.whatsapp.net","lid":"123456789012345:7@lid"}},"account":{{"details":"x"}},"nextPreKeyId":1,"firstUnuploadedPreKeyId":1,"pad":"{}"}}"#,
        "p".repeat(padding)
    )
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    text(&o.stdout)
}

/// Names in a folder (hidden ones too).
fn all_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---- 1. ownership and mode survive ---------------------------------------------------------

#[test]
fn restore_from_backup_gives_back_owner_group_mode_and_mtime_and_the_app_user_can_read_them() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to own files as another user");
        return;
    }
    let t = Tree::new();
    t.creds("company_1", 1, 1)
        .file_with("company_1/session-1.0.json", "s1", days(3))
        .file_with("company_1/pre-key-1.json", "pk", days(40))
        .file_with("company_1/app-state-sync-key-AAAA.json", "k", days(90));
    // The app's user owns its folder; the janitor runs as root.
    for p in [t.dir.path().to_owned(), t.root()] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let folder = t.path("company_1");
    let modes = [
        ("creds.json", 0o600),
        ("session-1.0.json", 0o640),
        ("pre-key-1.json", 0o644),
        ("app-state-sync-key-AAAA.json", 0o600),
    ];
    for (name, mode) in modes {
        let p = folder.join(name);
        std::os::unix::fs::chown(&p, Some(APP_UID), Some(APP_UID + 1)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::os::unix::fs::chown(&folder, Some(APP_UID), Some(APP_UID + 1)).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o750)).unwrap();
    let before: Vec<(String, u32, u32, u32, i64, i64)> = modes
        .iter()
        .map(|(n, _)| {
            let m = std::fs::metadata(folder.join(n)).unwrap();
            (
                n.to_string(),
                m.uid(),
                m.gid(),
                m.mode(),
                m.mtime(),
                m.mtime_nsec(),
            )
        })
        .collect();

    let (out, b) = t.json(&["backup", "--company", "1", "--json"]);
    assert_code(&out, 0);
    let name = b["backup"].as_str().unwrap().to_owned();
    // 3 AM: the folder is gone and recreated by root.
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();

    let out = t.run(&["restore", "--company", "1", "--backup", &name]);
    assert_code(&out, 0);
    let after: Vec<(String, u32, u32, u32, i64, i64)> = modes
        .iter()
        .map(|(n, _)| {
            let m = std::fs::metadata(folder.join(n)).unwrap();
            (
                n.to_string(),
                m.uid(),
                m.gid(),
                m.mode(),
                m.mtime(),
                m.mtime_nsec(),
            )
        })
        .collect();
    assert_eq!(after, before);
    let dm = std::fs::metadata(&folder).unwrap();
    assert_eq!(
        (dm.uid(), dm.gid(), dm.mode() & 0o7777),
        (APP_UID, APP_UID + 1, 0o750)
    );
    // The app, as its own user, reads every restored file.
    for (n, _) in modes {
        let p = folder.join(n);
        let o = Command::new("setpriv")
            .args([
                &format!("--reuid={APP_UID}"),
                &format!("--regid={}", APP_UID + 1),
                "--clear-groups",
                "cat",
            ])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "the app cannot read {n}: {}",
            text(&o.stderr)
        );
        assert_eq!(o.stdout, std::fs::read(&p).unwrap());
    }
    // A file put back by hand as root (same bytes, wrong owner): the next restore fixes it.
    let creds = folder.join("creds.json");
    std::os::unix::fs::chown(&creds, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_code(&t.run(&["restore", "--company", "1", "--backup", &name]), 0);
    let m = std::fs::metadata(&creds).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (APP_UID, APP_UID + 1, 0o600)
    );
}

// ---- 2. no file lost on a full disk --------------------------------------------------------

#[test]
fn restore_overwrite_on_a_full_disk_leaves_every_file_in_place_and_says_so() {
    let t = Tree::new();
    let small = t.dir.path().join("small");
    let Some(_m) = Tmpfs::new(&small, "1m") else {
        return;
    };
    let root = small.join("sessions");
    let folder = root.join("company_1");
    std::fs::create_dir_all(&folder).unwrap();
    // The backup's creds.json is large; the folder's current one is small and different.
    std::fs::write(
        folder.join("creds.json"),
        paired_creds("5511999999999", 300_000),
    )
    .unwrap();
    std::fs::write(folder.join("session-1.0.json"), "s1").unwrap();
    let run = |args: &[&str]| {
        bare_cmd()
            .arg("--sessions-path")
            .arg(&root)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["backup", "--company", "1", "--json"]);
    assert_code(&out, 0);
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let name = b["backup"].as_str().unwrap().to_owned();
    let current = paired_creds("5511999999999", 10);
    std::fs::write(folder.join("creds.json"), &current).unwrap();
    std::fs::write(folder.join("session-1.0.json"), "s1-new").unwrap();
    // Fill the disk: less than the big creds.json is left.
    let mut filler = std::fs::File::create(small.join("filler")).unwrap();
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    drop(filler);
    let before = all_names(&folder);

    let out = run(&[
        "restore",
        "--company",
        "1",
        "--backup",
        &name,
        "--overwrite",
    ]);
    assert_code(&out, 1);
    let o = stdout(&out).to_lowercase();
    assert!(o.contains("no space left"), "{o}");
    assert!(o.contains("creds.json"), "{o}");
    // Exactly as before: the current creds.json, no temporary file left behind.
    assert_eq!(read(&folder.join("creds.json")), current);
    assert_eq!(all_names(&folder), before);
}

// ---- 3. a backup is complete or it does not exist ------------------------------------------

#[test]
fn an_interrupted_backup_is_not_listed_and_not_restored() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    for i in 0..3 {
        t.file(&format!("company_1/session-{i}.0.json"), days(3));
    }
    // What an interrupted backup leaves: a folder with some of the files and no manifest
    // (the old layout), and a hidden partial one (the new layout).
    let cut = t.state().join("backups/company_1/20261128T030000Z");
    std::fs::create_dir_all(&cut).unwrap();
    std::fs::write(cut.join("session-0.0.json"), "{}").unwrap();
    let hidden = t
        .state()
        .join("backups/company_1/.partial-20261128T040000Z-99");
    std::fs::create_dir_all(&hidden).unwrap();
    std::fs::write(hidden.join("creds.json"), "{}").unwrap();

    let out = t.run(&["backup", "--list"]);
    assert_code(&out, 0);
    assert!(
        !stdout(&out).contains("20261128T030000Z"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("2 incomplete backups"),
        "{}",
        stdout(&out)
    );
    assert!(text(&out.stderr).contains("20261128T030000Z"));

    // Restoring it into a cleared folder refuses and changes nothing.
    for i in 0..3 {
        std::fs::remove_file(t.path(&format!("company_1/session-{i}.0.json"))).unwrap();
    }
    let before = t.snapshot();
    let out = t.run(&["restore", "--company", "1", "--backup", "20261128T030000Z"]);
    assert_code(&out, 1);
    assert!(
        text(&out.stderr).contains("incomplete"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(t.snapshot(), before);
}

#[test]
fn a_damaged_backup_is_refused_before_anything_is_touched() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    for i in 0..5 {
        t.file_with(
            &format!("company_1/session-{i}.0.json"),
            "0123456789",
            days(3),
        );
    }
    let (_, b) = t.json(&["backup", "--company", "1", "--json"]);
    let name = b["backup"].as_str().unwrap().to_owned();
    let dir = t.state().join("backups/company_1").join(&name);
    // One file torn in the backup (same size, other bytes), all of them gone from the folder.
    std::fs::write(dir.join("session-3.0.json"), "0123456780").unwrap();
    for i in 0..5 {
        std::fs::remove_file(t.path(&format!("company_1/session-{i}.0.json"))).unwrap();
    }
    let before = t.snapshot();
    let out = t.run(&["restore", "--company", "1", "--backup", &name]);
    assert_code(&out, 1);
    let err = text(&out.stderr);
    assert!(
        err.contains("damaged") && err.contains("session-3.0.json"),
        "{err}"
    );
    assert_eq!(
        t.snapshot(),
        before,
        "something was restored from a damaged backup"
    );
}

#[test]
fn backups_in_the_same_second_get_distinct_names() {
    let t = Tree::new();
    t.creds("company_1", 1, 1)
        .file("company_1/session-1.0.json", days(3));
    // This second's name (and the next few) are taken, as by a backup made a moment ago.
    let now = chrono::Utc::now();
    for s in 0..4 {
        let name = (now + chrono::Duration::seconds(s))
            .format("%Y%m%dT%H%M%SZ")
            .to_string();
        let d = t.state().join("backups/company_1").join(&name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(t.path("company_1/creds.json"), d.join("creds.json")).unwrap();
    }
    let mut names = Vec::new();
    for _ in 0..3 {
        let (out, b) = t.json(&["backup", "--company", "1", "--json"]);
        assert_code(&out, 0);
        names.push(b["backup"].as_str().unwrap().to_owned());
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{names:?}");
    assert!(names.iter().all(|n| n.contains('-')), "{names:?}");
    let (_, l) = t.json(&["backup", "--list", "--json"]);
    assert_eq!(
        l["company_1"]["complete"].as_array().unwrap().len(),
        3,
        "{l}"
    );
}

// ---- 4. restore keeps the pairs cleanup keeps ----------------------------------------------

const OUR_KEY: &str = "sender-key-120363@g.us--123456789012345_1--0.json";
const MEMORY: &str = "sender-key-memory-120363@g.us.json";

#[test]
fn restore_never_puts_back_an_old_memory_next_to_a_new_own_sender_key() {
    let t = Tree::new();
    t.creds("company_1", 1, 1)
        .file_with(&format!("company_1/{OUR_KEY}"), "old-key", days(10))
        .file_with(&format!("company_1/{MEMORY}"), "old-memory", days(10))
        .file_with("company_1/session-9.0.json", "s9", days(20))
        .file_with("company_1/session-9.0.json.bak", "s9-bak", days(20));
    let (_, v) = t.json(&["cleanup", "--json"]);
    let removed = removed_files(&v, "company_1");
    assert!(removed.contains(&MEMORY.to_string()) && removed.contains(&OUR_KEY.to_string()));
    // The app makes a new own sender key, and a new session-9.
    t.file_with(&format!("company_1/{OUR_KEY}"), "new-key", mins(1));
    t.file_with("company_1/session-9.0.json", "s9-new", mins(1));
    let (out, r) = t.json(&["restore", "--company", "1", "--json"]);
    assert_code(&out, 1);
    assert!(
        !t.exists(&format!("company_1/{MEMORY}")),
        "old memory next to a new key"
    );
    assert!(
        !t.exists("company_1/session-9.0.json.bak"),
        "old .bak next to a new file"
    );
    let why = |f: &str| {
        r["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["file"] == f)
            .map(|n| n["reason"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert!(why(MEMORY).contains(OUR_KEY), "{r}");
    assert!(
        why("session-9.0.json.bak").contains("session-9.0.json"),
        "{r}"
    );
    assert_eq!(read(&t.path(&format!("company_1/{OUR_KEY}"))), "new-key");
    let text_out = stdout(&t.run(&["restore", "--company", "1", "--dry-run"]));
    assert!(text_out.contains("NOT RESTORED"), "{text_out}");
}

#[test]
fn restore_file_of_one_member_brings_its_partner() {
    let t = Tree::new();
    t.creds("company_1", 1, 1)
        .file_with("company_1/session-777_1.0.json", "s", days(20))
        .file_with("company_1/identity-key-777_1.0.json", "i", days(20))
        .file_with("company_1/session-888.0.json", "other", days(20));
    t.run(&["cleanup"]);
    assert!(!t.exists("company_1/identity-key-777_1.0.json"));
    let (out, r) = t.json(&[
        "restore",
        "--company",
        "1",
        "--file",
        "identity-key-777_1.0.json",
        "--json",
    ]);
    assert_code(&out, 0);
    assert!(t.exists("company_1/identity-key-777_1.0.json"));
    assert!(
        t.exists("company_1/session-777_1.0.json"),
        "partner left behind: {r}"
    );
    assert!(!t.exists("company_1/session-888.0.json"));
    assert_eq!(r["brought_along"][0]["file"], "session-777_1.0.json");
}

// ---- 5. restore after a re-pair refuses ----------------------------------------------------

#[test]
fn restore_into_a_re_paired_folder_refuses_unless_forced() {
    let t = Tree::new();
    t.file_with(
        "company_1/creds.json",
        &paired_creds("5511999999999", 0),
        days(1),
    )
    .file("company_1/session-1.0.json", days(20));
    let (_, b) = t.json(&["backup", "--company", "1", "--json"]);
    let backup = b["backup"].as_str().unwrap().to_owned();
    t.run(&["cleanup"]);
    assert!(!t.exists("company_1/session-1.0.json"));
    // Re-paired: another number, another identity.
    t.file_with(
        "company_1/creds.json",
        &paired_creds("5511000000000", 0),
        mins(1),
    );
    let before = t.snapshot();
    let out = t.run(&["restore", "--company", "1"]);
    assert_code(&out, 1);
    assert!(
        text(&out.stderr).contains("re-paired"),
        "{}",
        text(&out.stderr)
    );
    let out = t.run(&["restore", "--company", "1", "--backup", &backup]);
    assert_code(&out, 1);
    assert!(
        text(&out.stderr).contains("re-paired"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(t.snapshot(), before);
    let out = t.run(&["restore", "--company", "1", "--force"]);
    assert_code(&out, 0);
    assert!(t.exists("company_1/session-1.0.json"));
}

// ---- 6. a restored file stays restored -----------------------------------------------------

#[test]
fn restored_files_are_on_hold_until_released() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    for i in 0..4 {
        t.file(&format!("company_1/session-{i}.0.json"), days(30));
    }
    t.run(&["cleanup"]);
    let out = t.run(&["restore", "--company", "1"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("on hold until"), "{}", stdout(&out));
    // Neither cleanup nor the trigger removes them again.
    let (_, v) = t.json(&["cleanup", "--json", "--verbose"]);
    assert_eq!(removed_files(&v, "company_1"), Vec::<String>::new());
    assert!(v.to_string().contains("on hold"), "{v}");
    // 185 files: the trigger gives the company an emergency cleanup.
    for i in 0..180 {
        t.file(&format!("company_1/lid-mapping-{i}.json"), days(3));
    }
    let (out, v) = t.json(&["trigger", "--json"]);
    assert_code(&out, 0);
    assert_eq!(row(&v, "company_1")["action"], "emergency-cleanup", "{v}");
    assert_eq!(row(&v, "company_1")["removed"], 0, "{v}");
    for i in 0..4 {
        assert!(t.exists(&format!("company_1/session-{i}.0.json")), "{v}");
    }
    let out = t.run(&["status"]);
    assert!(
        stdout(&out).contains("on hold: 4 restored files"),
        "{}",
        stdout(&out)
    );
    let (_, s) = t.json(&["status", "--json"]);
    assert_eq!(row(&s, "company_1")["on_hold"], 4);
    // Released: the next cleanup may remove them.
    let out = t.run(&["restore", "--company", "1", "--release"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("released 4 files"));
    let (_, v) = t.json(&["cleanup", "--json"]);
    assert_eq!(removed_files(&v, "company_1").len(), 4);
}

#[test]
fn the_hold_is_configurable() {
    let t = Tree::new();
    t.creds("company_1", 1, 1)
        .file("company_1/session-1.0.json", days(30));
    let cfg = t.dir.path().join("janitor.toml");
    std::fs::write(&cfg, "[restore]\nhold = \"0s\"\n").unwrap();
    let c = cfg.to_str().unwrap();
    t.run(&["cleanup"]);
    assert_code(&t.run(&["--config", c, "restore", "--company", "1"]), 0);
    let (_, v) = t.json(&["--config", c, "cleanup", "--json"]);
    assert_eq!(removed_files(&v, "company_1"), vec!["session-1.0.json"]);
    std::fs::write(&cfg, "[restore]\nhold = \"2y\"\n").unwrap();
    assert_code(&t.run(&["--config", c, "status"]), 2);
}

// ---- 7. one state directory, one sessions root ---------------------------------------------

#[test]
fn a_state_directory_shared_by_two_roots_is_refused() {
    let t = Tree::new();
    let shared = t.dir.path().join("shared-state");
    let prod = t.root();
    let staging = t.dir.path().join("staging");
    t.creds("company_1", 1, 1)
        .file("company_1/session-1.0.json", days(30));
    std::fs::create_dir_all(staging.join("company_1")).unwrap();
    std::fs::copy(
        t.path("company_1/creds.json"),
        staging.join("company_1/creds.json"),
    )
    .unwrap();
    let with = |root: &Path, args: &[&str]| {
        bare_cmd()
            .arg("--sessions-path")
            .arg(root)
            .arg("--state-dir")
            .arg(&shared)
            .args(args)
            .output()
            .unwrap()
    };
    assert_code(&with(&prod, &["cleanup"]), 0);
    let staging_before = all_names(&staging.join("company_1"));
    for args in [
        &["restore", "--company", "1"][..],
        &["cleanup"],
        &["status"],
    ] {
        let out = with(&staging, args);
        assert_code(&out, 2);
        let err = text(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains(prod.canonicalize().unwrap().to_str().unwrap()),
            "{err}"
        );
    }
    assert_eq!(all_names(&staging.join("company_1")), staging_before);
    assert!(!staging.join("company_1/session-1.0.json").exists());
    // The root it belongs to still works.
    assert_code(&with(&prod, &["restore", "--company", "1"]), 0);
}

// ---- 8. restore's report is honest ---------------------------------------------------------

#[test]
fn restore_sums_what_it_did_not_restore_and_fails() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    for i in 0..40 {
        t.file(&format!("company_1/lid-mapping-{i}.json"), days(3));
    }
    t.file_with("company_1/session-1.0.json", "a", days(3))
        .file_with("company_1/session-2.0.json", "b", days(3));
    let (out, b) = t.json(&["backup", "--company", "1", "--json"]);
    assert_code(&out, 0);
    let name = b["backup"].as_str().unwrap().to_owned();
    t.file_with("company_1/session-1.0.json", "changed", mins(1))
        .file_with("company_1/session-2.0.json", "changed", mins(1));
    let out = t.run(&["restore", "--company", "1", "--backup", &name]);
    assert_code(&out, 1);
    let o = stdout(&out);
    let last: Vec<&str> = o.lines().rev().take(2).collect();
    assert!(
        last.iter().any(|l| l.contains("2 files were NOT restored")),
        "{o}"
    );
    assert!(o.contains("41 already identical"), "{o}");
    assert!(
        !o.contains("identical\n  "),
        "identical files listed one by one: {o}"
    );
    assert_eq!(o.matches("NOT RESTORED").count(), 2, "{o}");
}

#[test]
fn an_unknown_backup_name_lists_the_ones_that_exist() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    let (_, b) = t.json(&["backup", "--company", "1", "--json"]);
    let name = b["backup"].as_str().unwrap().to_owned();
    let out = t.run(&["restore", "--company", "1", "--backup", "20200101T000000Z"]);
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains(&name) && err.contains("20200101T000000Z"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1);
    // And `latest` works.
    std::fs::remove_file(t.path("company_1/creds.json")).unwrap();
    let out = t.run(&["restore", "--company", "1", "--backup", "latest"]);
    assert_code(&out, 0);
    assert!(t.exists("company_1/creds.json"));
}

#[test]
fn a_killed_backup_is_either_complete_or_not_listed() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    for i in 0..4000 {
        t.file(&format!("company_1/pre-key-{i}.json"), days(3));
    }
    let mut child = t
        .spawn_cmd()
        .args(["backup", "--company", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(60));
    let _ = child.kill();
    let _ = child.wait();
    let out = t.run(&["backup", "--list"]);
    for line in stdout(&out).lines().filter(|l| l.starts_with("company_1 ")) {
        let name = line.split_whitespace().nth(1).unwrap();
        let d = t.state().join("backups/company_1").join(name);
        assert_eq!(
            all_names(&d).len(),
            4001 + 1,
            "a listed backup is incomplete: {name}"
        );
    }
}

/// The hold's hint after a restore ("end it with: baileys-janitor restore --company X
/// --release") and in `status` named no sessions path, state directory or store: on any
/// non-default set-up the printed command found no such company (exit 2). It carries the same
/// global flags as the undo command now, and works as printed.
#[test]
fn the_printed_release_command_works_as_printed() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    for i in 0..4 {
        t.file(&format!("company_1/session-{i}.0.json"), days(30));
    }
    assert_code(&t.run(&["cleanup"]), 0);
    let out = t.run(&["restore", "--company", "1"]);
    assert_code(&out, 0);
    let s = stdout(&out);
    let hint = s
        .split("end it with: ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no release command in:\n{s}"));
    let status = stdout(&t.run(&["status"]));
    assert!(
        status.contains(hint),
        "status prints the same command: {status}"
    );
    let words: Vec<&str> = hint.split_whitespace().skip(1).collect();
    assert!(words.contains(&"--release"), "{hint}");
    let out = bare_cmd().args(&words).output().unwrap();
    assert_code(&out, 0);
    assert!(
        !stdout(&t.run(&["status"])).contains("on hold"),
        "released by the printed command"
    );
}

/// `--single-tenant --sessions-path .` from inside one company folder of a fleet uses the
/// fleet's state directory (`<parent>/.janitor`). After the fleet's runs it was refused with
/// advice to delete root.json "if the root really moved" (which would hand the fleet's state to
/// one folder); before them, it claimed the directory and every cron run after it was exit 2
/// with the same advice. The message now says what happened and the way that works.
#[test]
fn a_single_tenant_run_inside_a_fleet_is_told_to_go_through_the_root() {
    let t = Tree::new();
    company_with(&t, "company_1", 5, days(30));
    assert_code(&t.run(&["status"]), 0);
    assert_code(&t.run(&["cleanup"]), 0);
    let inside = bare_cmd()
        .current_dir(t.path("company_1"))
        .args(["--single-tenant", "--sessions-path", ".", "cleanup"])
        .output()
        .unwrap();
    assert_code(&inside, 2);
    let err = text(&inside.stderr);
    let root = std::fs::canonicalize(t.root()).unwrap();
    assert!(
        err.contains(&format!(
            "--sessions-path {} <command> --company company_1",
            root.display()
        )),
        "{err}"
    );
    assert!(!err.contains("if the root really moved"), "{err}");

    // The other order: the one-off run came first and claimed the state directory.
    let t = Tree::new();
    company_with(&t, "company_1", 5, days(30));
    let inside = bare_cmd()
        .current_dir(t.path("company_1"))
        .args(["--single-tenant", "--sessions-path", ".", "cleanup"])
        .output()
        .unwrap();
    assert_code(&inside, 0);
    let out = t.run(&["cleanup"]);
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("(--single-tenant) used it first") && err.contains("root.json"),
        "{err}"
    );
    // Following the advice: the fleet's runs work again.
    std::fs::remove_file(t.state().join("root.json")).unwrap();
    assert_code(&t.run(&["cleanup"]), 0);
}

// ---- a trash cut short -----------------------------------------------------------------------

/// The run id of the company's part of a cleanup or trigger report.
fn run_id_of(v: &serde_json::Value, company: &str) -> String {
    let id = &company_report(v, company)["run_id"];
    id.as_str()
        .unwrap_or_else(|| panic!("no run id for {company}: {v}"))
        .to_owned()
}

#[test]
fn restore_from_a_trash_cut_short_names_the_missing_files_and_fails() {
    let t = Tree::new();
    t.creds("company_1", 1, 1);
    for i in 0..20 {
        t.file(&format!("company_1/session-5511{i:04}.0.json"), days(30));
    }
    let (out, v) = t.json(&["cleanup", "--json"]);
    assert_code(&out, 0);
    assert_eq!(removed_files(&v, "company_1").len(), 20, "{v}");
    let run = run_id_of(&v, "company_1");
    let trash = t.state().join("trash/company_1").join(&run);
    // An operator deletes half of the run's trash folder.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&trash)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 20);
    for f in &files[..10] {
        std::fs::remove_file(f).unwrap();
    }
    let out = t.run(&["restore", "--run", &run]);
    assert_code(&out, 1);
    let said = stdout(&out);
    assert!(
        said.contains(&format!(
            "10 files of run {run} are missing from its trash ({})",
            trash.display()
        )),
        "{said}"
    );
    assert!(said.contains("MISSING session-55110000.0.json"), "{said}");
    assert_eq!(t.names("company_1").len(), 11, "the other half is back");
    // Asked again, it says so again (the run keeps its list), in --json too.
    let (out, v) = t.json(&["restore", "--run", &run, "--company", "1", "--json"]);
    assert_code(&out, 1);
    assert_eq!(v["missing"].as_array().map(Vec::len), Some(10), "{v}");
    assert_eq!(v["trash"], trash.display().to_string(), "{v}");
}

#[test]
fn a_run_restored_in_parts_is_not_reported_missing() {
    let t = Tree::new();
    for c in ["company_1", "company_2"] {
        t.creds(c, 1, 1);
        for i in 0..6 {
            t.file(&format!("{c}/session-5511{i:04}.0.json"), days(30));
        }
    }
    let (out, v) = t.json(&["cleanup", "--json"]);
    assert_code(&out, 0);
    let run = run_id_of(&v, "company_1");
    assert_eq!(run, run_id_of(&v, "company_2"));
    // One file by name, then one company, then the rest: every step is complete.
    let out = t.run(&[
        "restore",
        "--run",
        &run,
        "--company",
        "1",
        "--file",
        "session-55110000.0.json",
    ]);
    assert_code(&out, 0);
    let out = t.run(&["restore", "--run", &run, "--company", "1"]);
    assert_code(&out, 0);
    assert!(!stdout(&out).contains("missing"), "{}", stdout(&out));
    let out = t.run(&["restore", "--run", &run]);
    assert_code(&out, 0);
    assert!(!stdout(&out).contains("missing"), "{}", stdout(&out));
    for c in ["company_1", "company_2"] {
        assert_eq!(t.names(c).len(), 7, "{c}");
    }
}
