//! A temp sessions tree built file by file with real mtimes, and the real binary run against it
//! with a cleared environment (the developer's own config never leaks in).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};

pub const DAY: Duration = Duration::from_secs(86_400);

pub fn days(n: u64) -> Duration {
    DAY * n as u32
}

pub fn mins(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

pub struct Tree {
    pub dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sessions")).unwrap();
        Tree { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("sessions")
    }

    pub fn state(&self) -> PathBuf {
        self.root().join(".janitor")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// A file `rel` (under the sessions root) last modified `age` ago.
    pub fn file(&self, rel: &str, age: Duration) -> &Tree {
        self.file_with(rel, "{\"k\":1}", age)
    }

    pub fn file_with(&self, rel: &str, content: &str, age: Duration) -> &Tree {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        set_age(&p, age);
        self
    }

    /// A paired creds.json with the given pre-key counters.
    pub fn creds(&self, company: &str, next: u64, first_unuploaded: u64) -> &Tree {
        self.file_with(
            &format!("{company}/creds.json"),
            &format!(
                r#"{{"me":{{"id":"5511999999999:7@s.whatsapp.net","lid":"123456789012345:7@lid"}},"account":{{"details":"x"}},"nextPreKeyId":{next},"firstUnuploadedPreKeyId":{first_unuploaded}}}"#
            ),
            Duration::from_secs(3600),
        )
    }

    /// `count` files in a fresh company: creds + lid-mappings, all protected, `age` old.
    pub fn protected_company(&self, company: &str, count: usize, age: Duration) -> &Tree {
        self.creds(company, 1, 1);
        for i in 1..count {
            self.file(&format!("{company}/lid-mapping-55119{i:08}.json"), age);
        }
        self
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).symlink_metadata().is_ok()
    }

    /// Names in a company folder, sorted.
    pub fn names(&self, company: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(company))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Everything under the root except the state dir: name → (mtime, bytes).
    pub fn snapshot(&self) -> BTreeMap<PathBuf, (SystemTime, Vec<u8>)> {
        let mut out = BTreeMap::new();
        for e in walkdir::WalkDir::new(self.root())
            .into_iter()
            .filter_entry(|e| e.file_name() != ".janitor")
        {
            let e = e.unwrap();
            let m = e.path().symlink_metadata().unwrap();
            let bytes = if m.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            out.insert(e.path().to_owned(), (m.modified().unwrap(), bytes));
        }
        out
    }

    /// The binary, environment cleared, pointed at this tree.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = bare_cmd();
        c.arg("--sessions-path").arg(self.root());
        c
    }

    /// The same, as a `std::process::Command`, for runs started in the background.
    pub fn spawn_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("baileys-janitor"));
        c.env_clear()
            .env("BAILEYS_JANITOR_SYSTEM_CONFIG", NO_SYSTEM_CONFIG)
            .arg("--sessions-path")
            .arg(self.root());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs and parses stdout as JSON.
    pub fn json(&self, args: &[&str]) -> (Output, serde_json::Value) {
        let out = self.run(args);
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\nstderr: {}",
                text(&out.stdout),
                text(&out.stderr)
            )
        });
        (out, v)
    }
}

pub fn set_age(p: &Path, age: Duration) {
    let t = filetime::FileTime::from_system_time(SystemTime::now() - age);
    filetime::set_symlink_file_times(p, t, t).unwrap();
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Asserts an exit code, showing the output on failure.
#[track_caller]
pub fn assert_code(o: &Output, want: i32) {
    assert_eq!(
        code(o),
        want,
        "stdout:\n{}\nstderr:\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// `c` with `args`, run to its end; its exit code must be `want`.
pub fn run(c: &mut assert_cmd::Command, args: &[&str], want: i32) -> Output {
    let o = c.args(args).output().unwrap();
    assert_code(&o, want);
    o
}

/// The removed file names of one company in a cleanup `--json` report, sorted.
pub fn removed_files(v: &serde_json::Value, company: &str) -> Vec<String> {
    sorted_removed(company_report(v, company))
}

/// A company report's `removed_files`, sorted.
fn sorted_removed(c: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = c["removed_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// The row of one company in any `--json` report that has a `companies` array.
pub fn row<'a>(v: &'a serde_json::Value, company: &str) -> &'a serde_json::Value {
    company_report(v, company)
}

/// The binary with a cleared environment and no `--sessions-path`.
pub fn bare_cmd() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("baileys-janitor").unwrap();
    c.env_clear()
        .env("BAILEYS_JANITOR_SYSTEM_CONFIG", NO_SYSTEM_CONFIG);
    c
}

/// Tests never read the machine's /etc/baileys-janitor/config.toml (a package test may have
/// installed one).
pub const NO_SYSTEM_CONFIG: &str = "/nonexistent/baileys-janitor-test/config.toml";

pub fn company_report<'a>(v: &'a serde_json::Value, company: &str) -> &'a serde_json::Value {
    v["companies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["company"] == company)
        .unwrap()
}

/// A tiny HTTP server on loopback that records every request (path, JSON body) and answers
/// with a fixed behaviour. It stops when dropped (the listener thread is detached).
pub struct HttpSink {
    pub url: String,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
}

#[derive(Clone, Copy)]
pub enum Answer {
    Ok,
    Status(u16),
    /// Read the request, never answer.
    Hang,
}

impl HttpSink {
    pub fn start(answer: Answer) -> HttpSink {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let store = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    let _ = reader.read_exact(&mut body);
                    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    store.lock().unwrap().push((path, json));
                    match answer {
                        Answer::Hang => std::thread::sleep(Duration::from_secs(60)),
                        Answer::Ok => {
                            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                        }
                        Answer::Status(code) => {
                            let _ = write!(
                                stream,
                                "HTTP/1.1 {code} Oops\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            );
                        }
                    }
                });
            }
        });
        HttpSink { url, requests }
    }

    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    pub fn paths(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Every event received, a digest's included events counted one by one.
    pub fn flat_events(&self) -> Vec<serde_json::Value> {
        self.bodies()
            .into_iter()
            .flat_map(|b| match b["events"].as_array() {
                Some(evs) => evs.clone(),
                None => vec![b],
            })
            .collect()
    }

    /// The `event` field of every webhook body received, in order.
    pub fn events(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .map(|b| b["event"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

/// A company with `n` files: creds, 1 lid-mapping, and old sessions that a cleanup removes.
pub fn company_with(t: &Tree, company: &str, n: usize, removable_age: Duration) -> &'static str {
    t.creds(company, 1, 1);
    t.file(
        &format!("{company}/lid-mapping-5511999999999.json"),
        days(30),
    );
    for i in 0..n.saturating_sub(2) {
        t.file(
            &format!("{company}/session-55119{i:08}.0.json"),
            removable_age,
        );
    }
    ""
}

/// Waits until `cond` holds, for at most `secs`.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    cond()
}

pub fn sigterm(child: &std::process::Child) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Runs the binary as an unprivileged user (nobody) through `setpriv`; `None` when that is not
/// possible here (not root, no setpriv), so the caller can say it skipped.
pub fn as_nobody(t: &Tree) -> Option<std::process::Command> {
    let root = rustix::process::geteuid().is_root();
    let setpriv = std::path::Path::new("/usr/bin/setpriv").exists();
    if !root || !setpriv {
        eprintln!("SKIPPED: needs root and /usr/bin/setpriv to run as another user");
        return None;
    }
    let mut c = std::process::Command::new("/usr/bin/setpriv");
    c.env_clear()
        .env("BAILEYS_JANITOR_SYSTEM_CONFIG", NO_SYSTEM_CONFIG)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(assert_cmd::cargo::cargo_bin("baileys-janitor"))
        .arg("--sessions-path")
        .arg(t.root());
    Some(c)
}

/// What a test does when the server it needs does not answer: with `REQUIRE_SERVICES=1` (set
/// by `.ci/run`) it fails, so a suite without its servers can never pass green; without it the
/// test says SKIPPED and returns.
pub fn service_missing(what: &str, why: &dyn std::fmt::Display) {
    let required = std::env::var("REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    if let Err(message) = missing_service_verdict(required, what, why) {
        panic!("{message}");
    }
}

/// The pure half of [`service_missing`]: `Err` (fail the test) when services are required.
pub fn missing_service_verdict(
    required: bool,
    what: &str,
    why: &dyn std::fmt::Display,
) -> Result<(), String> {
    if required {
        return Err(format!(
            "REQUIRE_SERVICES=1 but no {what} server answers ({why}); start it or unset REQUIRE_SERVICES"
        ));
    }
    eprintln!("SKIPPED: {what} tests ({why})");
    Ok(())
}

/// Each company's (tenant's) report in the order printed, with the files (rows, fields) it
/// removed, sorted.
pub fn removed_by_company(v: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    v["companies"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|c| (c["company"].as_str().unwrap().to_owned(), sorted_removed(c)))
        .collect()
}

/// `cmd cleanup --jobs 2 --json`, each tenant paused 2 s before its removal, while
/// `both_locked` is asked until two tenants are held at once (the test fails if they never
/// are, or if the run fails); the run's output.
pub fn cleanup_on_two_workers(
    mut cmd: assert_cmd::Command,
    both_locked: impl FnMut() -> bool,
) -> std::process::Output {
    cmd.args([
        "cleanup",
        "--jobs",
        "2",
        "--json",
        "--debug-pause-before-remove",
        "2s",
    ]);
    let child = std::thread::spawn(move || cmd.output().unwrap());
    let together = wait_for(20, both_locked);
    let out = child.join().unwrap();
    assert!(together, "two tenants were never cleaned at the same time");
    assert_code(&out, 0);
    out
}
