//! Redis stores through the real binary: Evolution API hashes (creds in PostgreSQL or in the
//! hash), baileys-redis-auth, and the server folder layouts. Redis at BAILEYS_JANITOR_TEST_REDIS
//! (default redis://127.0.0.1:6379); each test works under a random key prefix and deletes it.
//! Without a server the tests say SKIPPED (scripts/test.sh starts one when it can), or fail
//! with REQUIRE_SERVICES=1 (`.ci/run`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::stores::{CREDS, TestDb, account_rows, assert_no_secret};
use crate::testenv::*;

/// The test server's URL with a user and password in it (a nopass user accepts any), to prove
/// the password never shows.
fn url() -> String {
    let base = std::env::var("BAILEYS_JANITOR_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    match base.split_once("://") {
        Some((scheme, rest)) if !rest.contains('@') => {
            format!("{scheme}://default:hunter2-secret@{rest}")
        }
        _ => base,
    }
}

/// A connection and a key prefix of the test's own; every key holding the prefix is deleted on
/// drop (the janitor's state under `<prefix>:janitor:` and its locks included).
pub(crate) struct Scratch {
    pub(crate) con: redis::Connection,
    pub(crate) prefix: String,
}

impl Scratch {
    pub(crate) fn new() -> Option<Scratch> {
        let client = match redis::Client::open(url()) {
            Ok(c) => c,
            Err(e) => {
                service_missing("redis", &e);
                return None;
            }
        };
        match client.get_connection_with_timeout(Duration::from_secs(2)) {
            Ok(con) => Some(Scratch {
                con,
                prefix: format!(
                    "bjcli{}x{}",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .subsec_nanos()
                ),
            }),
            Err(e) => {
                service_missing("redis", &e);
                None
            }
        }
    }

    pub(crate) fn hash(&self, tenant: &str) -> String {
        format!("{}:instance:{tenant}", self.prefix)
    }

    pub(crate) fn pattern(&self) -> String {
        format!("{}:instance:*", self.prefix)
    }

    pub(crate) fn hset(&mut self, key: &str, field: &str, value: &str) {
        let _: i64 = redis::cmd("HSET")
            .arg(key)
            .arg(field)
            .arg(value)
            .query(&mut self.con)
            .unwrap();
    }

    pub(crate) fn hgetall(&mut self, key: &str) -> BTreeMap<String, String> {
        redis::cmd("HGETALL").arg(key).query(&mut self.con).unwrap()
    }

    /// An Evolution instance hash: every key of `account_rows`, encoded twice as Evolution does.
    pub(crate) fn evolution_instance(&mut self, tenant: &str, creds_field: bool) {
        let h = self.hash(tenant);
        for (t, id, v) in account_rows() {
            self.hset(&h, &format!("{t}-{id}"), &twice(&v));
        }
        if creds_field {
            self.hset(&h, "creds", &twice(CREDS));
        }
    }

    pub(crate) fn cmd(&self, state: &Path) -> assert_cmd::Command {
        let mut c = bare_cmd();
        c.args(["--layout", "evolution", "--store"])
            .arg(url())
            .arg("--key-pattern")
            .arg(self.pattern())
            .arg("--state-dir")
            .arg(state);
        c
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("*{}*", self.prefix))
            .query(&mut self.con)
            .unwrap_or_default();
        for k in keys {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(k).query(&mut self.con);
        }
    }
}

pub(crate) fn twice(json: &str) -> String {
    serde_json::to_string(json).unwrap()
}

pub(crate) fn json_of(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            text(&o.stdout),
            text(&o.stderr)
        )
    })
}

fn evolution_db(db: &TestDb, instances: &[(&str, &str)]) {
    let mut c = db.client();
    // Evolution's Prisma schema (prisma/postgresql-schema.prisma), the columns we read.
    c.batch_execute(
        r#"CREATE TABLE "Instance" (id TEXT PRIMARY KEY, name VARCHAR(255) UNIQUE NOT NULL);
           CREATE TABLE "Session" (id TEXT PRIMARY KEY, "sessionId" TEXT UNIQUE NOT NULL
             REFERENCES "Instance"(id) ON DELETE CASCADE, creds TEXT,
             "createdAt" TIMESTAMP NOT NULL DEFAULT now());"#,
    )
    .unwrap();
    for (id, name) in instances {
        c.execute(
            r#"INSERT INTO "Instance" (id, name) VALUES ($1, $2)"#,
            &[id, name],
        )
        .unwrap();
        // saveKey: creds = JSON.stringify(JSON.stringify(creds, BufferJSON.replacer)).
        c.execute(
            r#"INSERT INTO "Session" (id, "sessionId", creds) VALUES ($1, $1, $2)"#,
            &[id, &twice(CREDS)],
        )
        .unwrap();
    }
}

#[test]
fn evolution_with_postgres_creds_status_names_orphans_cleanup_and_restore() {
    let Some(mut r) = Scratch::new() else { return };
    let Some(db) = TestDb::new() else { return };
    let a = "3f1c2a9e-7b1d-4c55-9a0e-1b2c3d4e5f60";
    let orphan = "9d8e7f60-0000-4c55-9a0e-1b2c3d4e5f61";
    r.evolution_instance(a, false);
    r.evolution_instance(orphan, false);
    evolution_db(&db, &[(a, "acme-sales")]);
    let before = r.hgetall(&r.hash(a));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let pattern = r.pattern();
    let run = |args: &[&str]| {
        bare_cmd()
            .args(["--layout", "evolution", "--store"])
            .arg(url())
            .arg("--key-pattern")
            .arg(&pattern)
            .arg("--state-dir")
            .arg(&state)
            .arg("--creds")
            .arg(&db.url)
            .args(args)
            .output()
            .unwrap()
    };

    let status = run(&["status", "--json"]);
    assert_code(&status, 0);
    let s = json_of(&status);
    let t = s["tenants"].as_array().unwrap();
    assert_eq!(t.len(), 2);
    let ta = t.iter().find(|x| x["tenant"] == a).unwrap();
    assert_eq!(ta["name"], "acme-sales");
    assert_eq!(ta["creds"], "paired");
    assert_eq!(ta["server_keys"], account_rows().len());
    assert!(ta["server_bytes"].as_u64().unwrap() > 0);
    assert!(ta.get("orphan").is_none());
    let to = t.iter().find(|x| x["tenant"] == orphan).unwrap();
    assert!(to["orphan"].as_str().unwrap().contains("Instance"), "{to}");
    assert_eq!(
        to["removable_now"], 0,
        "an orphan is not cleaned without the flag"
    );
    let human = run(&["status"]);
    let h = text(&human.stdout);
    assert!(h.contains("name acme-sales") && h.contains("ORPHAN"), "{h}");

    let clean = run(&["cleanup", "--json", "-v"]);
    assert_code(&clean, 0);
    let v = json_of(&clean);
    let ca = company_report(&v, a);
    let mut removed: Vec<&str> = ca["removed_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    removed.sort();
    assert_eq!(
        removed,
        ["identity-key-5511888888888.0", "session-5511888888888.0"]
    );
    assert_eq!(company_report(&v, orphan)["removed"], 0);
    let after = r.hgetall(&r.hash(a));
    assert_eq!(after.len(), before.len() - 2);
    assert!(!after.contains_key("session-5511888888888.0"));
    assert!(after.contains_key("session-5511777777777.0"));
    assert_eq!(r.hgetall(&r.hash(orphan)).len(), account_rows().len());
    assert!(ca["longest_transaction_us"].as_u64().is_some());

    let restore = run(&["restore", "--company", a]);
    assert_code(&restore, 0);
    assert_eq!(r.hgetall(&r.hash(a)), before, "restored byte-exact");

    // Keys seen for the first time may be live: the orphan goes once unchanged for a week.
    let early = run(&["cleanup", "--json", "--remove-orphans", "--company", orphan]);
    assert_code(&early, 0);
    assert_eq!(company_report(&json_of(&early), orphan)["removed"], 0);
    assert_eq!(r.hgetall(&r.hash(orphan)).len(), account_rows().len());
    let week_later = (chrono::Utc::now() + chrono::Duration::days(8)).to_rfc3339();
    let gone = bare_cmd()
        .env("BAILEYS_JANITOR_NOW", &week_later)
        .args(["--layout", "evolution", "--store"])
        .arg(url())
        .arg("--key-pattern")
        .arg(&pattern)
        .arg("--state-dir")
        .arg(&state)
        .arg("--creds")
        .arg(&db.url)
        .args(["cleanup", "--json", "--remove-orphans", "--company", orphan])
        .output()
        .unwrap();
    assert_code(&gone, 0);
    assert_eq!(
        company_report(&json_of(&gone), orphan)["removed"],
        account_rows().len()
    );
    assert!(r.hgetall(&r.hash(orphan)).is_empty());
    let back = run(&["restore", "--company", orphan]);
    assert_code(&back, 0);
    assert_eq!(r.hgetall(&r.hash(orphan)).len(), account_rows().len());
    assert_no_secret(
        dir.path(),
        &[&status, &human, &clean, &restore, &gone, &back],
    );
}

#[test]
fn evolution_redis_only_a_field_the_app_rewrites_during_cleanup_survives() {
    let Some(mut r) = Scratch::new() else { return };
    let t = "0c0ffee0-1111-4c55-9a0e-1b2c3d4e5f60";
    r.evolution_instance(t, true);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("baileys-janitor"));
    child
        .env_clear()
        .args(["--layout", "evolution", "--store"])
        .arg(url())
        .arg("--key-pattern")
        .arg(r.pattern())
        .arg("--state-dir")
        .arg(&state)
        .args(["cleanup", "--json", "--debug-pause-before-remove", "1500ms"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = child.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // The app uses the old session again meanwhile: Evolution rewrites the whole field.
    let fresh = twice(&crate::stores::session(0));
    let h = r.hash(t);
    r.hset(&h, "session-5511888888888.0", &fresh);
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    let v = json_of(&out);
    let c = company_report(&v, t);
    assert_eq!(c["creds"], "paired", "creds from the hash field");
    let fields = r.hgetall(&h);
    assert_eq!(fields.get("session-5511888888888.0"), Some(&fresh));
    assert!(
        fields.contains_key("identity-key-5511888888888.0"),
        "an identity key goes only with its session"
    );
    let skipped = c["skipped_files"].to_string();
    assert!(skipped.contains("changed since planning"), "{skipped}");
    assert!(fields.contains_key("creds"));
}

#[test]
fn redis_failures_are_one_line_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // From the environment (a password on the command line adds a warning line).
    let unreachable = bare_cmd()
        .env(
            "BAILEYS_JANITOR_STORE",
            "redis://default:hunter2-secret@127.0.0.1:1/0",
        )
        .arg("--state-dir")
        .arg(&state)
        .args(["cleanup"])
        .output()
        .unwrap();
    assert_code(&unreachable, 1);
    let err = text(&unreachable.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("redis://default@127.0.0.1:1/0"), "{err}");

    let wrong = bare_cmd()
        .args([
            "--store",
            "redis://127.0.0.1:1",
            "--layout",
            "per-type",
            "status",
        ])
        .output()
        .unwrap();
    assert_code(&wrong, 2);
    assert!(text(&wrong.stderr).contains("not a redis layout"));

    let creds_elsewhere = bare_cmd()
        .args([
            "--store",
            "redis://127.0.0.1:1",
            "--layout",
            "baileys-redis-auth",
            "--creds",
            "postgres://u:hunter2-secret@h/db",
            "status",
        ])
        .output()
        .unwrap();
    assert_code(&creds_elsewhere, 2);

    let bad_pattern = bare_cmd()
        .args([
            "--store",
            "redis://127.0.0.1:1",
            "--key-pattern",
            "no-star",
            "status",
        ])
        .output()
        .unwrap();
    assert_code(&bad_pattern, 2);
    assert!(text(&bad_pattern.stderr).contains("exactly one *"));

    let no_store = bare_cmd()
        .args(["--layout", "baileys-redis-auth", "status"])
        .output()
        .unwrap();
    assert_code(&no_store, 2);
    assert_no_secret(
        dir.path(),
        &[
            &unreachable,
            &wrong,
            &creds_elsewhere,
            &bad_pattern,
            &no_store,
        ],
    );

    // --creds pointing at a database that is not Evolution's: exit 2, naming the table.
    let (Some(r), Some(db)) = (Scratch::new(), TestDb::new()) else {
        return;
    };
    let out = r
        .cmd(&state)
        .arg("--creds")
        .arg(&db.url)
        .arg("status")
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(
        text(&out.stderr).contains("\"Session\""),
        "{}",
        text(&out.stderr)
    );
    assert_no_secret(dir.path(), &[&out]);
}

#[test]
fn baileys_redis_auth_hash_layout_is_cleaned_with_fixed_file_names() {
    let Some(mut r) = Scratch::new() else { return };
    let sid = format!("{}-bot1", r.prefix);
    let h = format!("{sid}:auth");
    for (t, id, v) in account_rows() {
        // useRedisAuthStateWithHSet: field `<type>-<fixFileName(id)>`, value JSON once.
        let id = id.replace('/', "__").replace(':', "-");
        r.hset(&h, &format!("{t}-{id}"), &v);
    }
    r.hset(&h, "creds", CREDS);
    let dir = tempfile::tempdir().unwrap();
    let out = bare_cmd()
        .args(["--layout", "baileys-redis-auth", "--store"])
        .arg(url())
        .arg("--key-pattern")
        .arg(format!("{}-*:auth", r.prefix))
        .arg("--state-dir")
        .arg(dir.path())
        .args(["cleanup", "--json"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let v = json_of(&out);
    assert_eq!(company_report(&v, "bot1")["creds"], "paired");
    assert_eq!(company_report(&v, "bot1")["removed"], 2);
    let left = r.hgetall(&h);
    assert_eq!(left.len(), account_rows().len() + 1 - 2);
    assert!(left.contains_key("sender-key-120363@g.us--5511666666666--0"));
}

#[test]
fn server_folder_layouts_find_accounts_by_their_own_names() {
    let t = Tree::new();
    // OpenClaw: <home>/.openclaw/credentials/whatsapp/<account>/ with creds.json inside.
    t.creds(".openclaw/credentials/whatsapp/default", 10, 10)
        .file(
            ".openclaw/credentials/whatsapp/default/session-1.0.json",
            days(30),
        )
        .file(
            ".openclaw/credentials/whatsapp/default/session-2.0.json",
            days(1),
        );
    // WAHA: <base>/noweb/<session>/.
    t.creds("waha/noweb/sales-1", 10, 10)
        .file("waha/noweb/sales-1/session-1.0.json", days(30));
    // Evolution files mode: instances/<uuid>/ with no creds.json (creds are in its database).
    let uuid = "3f1c2a9e-7b1d-4c55-9a0e-1b2c3d4e5f60";
    t.file(&format!("instances/{uuid}/session-1.0.json"), days(30))
        .file(&format!("instances/{uuid}/pre-key-1.json"), days(30))
        // Active: a session written half an hour ago (ages count to the last activity).
        .file(&format!("instances/{uuid}/session-2.0.json"), mins(30));
    for (layout, base, tenant) in [
        ("openclaw", t.path(".openclaw"), "default"),
        ("waha", t.path("waha"), "sales-1"),
        ("evolution", t.path("instances"), uuid),
    ] {
        let out = bare_cmd()
            .args(["--layout", layout, "--sessions-path"])
            .arg(&base)
            .args(["cleanup", "--json"])
            .output()
            .unwrap();
        assert_code(&out, 0);
        let v = json_of(&out);
        let c = company_report(&v, tenant);
        assert_eq!(c["removed"], 1, "{layout}: {c}");
    }
    assert!(!t.exists(".openclaw/credentials/whatsapp/default/session-1.0.json"));
    assert!(t.exists(".openclaw/credentials/whatsapp/default/session-2.0.json"));
    assert!(
        t.exists(&format!("instances/{uuid}/pre-key-1.json")),
        "without creds no pre-key is touched"
    );
    // OpenClaw's default base is $HOME/.openclaw.
    let out = bare_cmd()
        .env("HOME", t.root())
        .args(["--layout", "openclaw", "status", "--json"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(
        text(&out.stdout).contains("\"default\""),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn folders_without_creds_are_reported_as_orphans_where_creds_belong_in_the_folder() {
    let t = Tree::new();
    t.creds(".openclaw/credentials/whatsapp/default", 10, 10);
    // A logged-out account's leftovers: keys, no creds.json.
    t.file(
        ".openclaw/credentials/whatsapp/old/session-1.0.json",
        days(30),
    )
    .file(
        ".openclaw/credentials/whatsapp/old/pre-key-1.json",
        days(30),
    );
    let out = bare_cmd()
        .args(["--layout", "openclaw", "--sessions-path"])
        .arg(t.path(".openclaw"))
        .args(["status", "--json"])
        .output()
        .unwrap();
    let v = json_of(&out);
    let advice = company_report(&v, "old")["advice"].to_string();
    assert!(advice.contains("no creds.json: 2 files"), "{advice}");
    assert!(
        !company_report(&v, "default")["advice"]
            .to_string()
            .contains("no creds.json")
    );
    // Evolution keeps creds in its database: its folders never have one, and are no orphans.
    let uuid = "3f1c2a9e-7b1d-4c55-9a0e-1b2c3d4e5f60";
    t.file(&format!("instances/{uuid}/session-1.0.json"), days(30));
    let out = bare_cmd()
        .args(["--layout", "evolution", "--sessions-path"])
        .arg(t.path("instances"))
        .args(["status", "--json"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert!(
        !company_report(&v, uuid)["advice"]
            .to_string()
            .contains("no creds.json")
    );
    // The folder itself is never touched by a cleanup.
    let out = bare_cmd()
        .args(["--layout", "openclaw", "--sessions-path"])
        .arg(t.path(".openclaw"))
        .arg("cleanup")
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(t.exists(".openclaw/credentials/whatsapp/old/pre-key-1.json"));
}

#[test]
fn an_evolution_instance_can_be_named_as_status_shows_it() {
    let Some(mut r) = Scratch::new() else { return };
    let Some(db) = TestDb::new() else { return };
    let a = "5e1c2a9e-7b1d-4c55-9a0e-1b2c3d4e5f70";
    r.evolution_instance(a, false);
    evolution_db(&db, &[(a, "acme-support")]);
    let dir = tempfile::tempdir().unwrap();
    let pattern = r.pattern();
    let run = |args: &[&str]| {
        bare_cmd()
            .args(["--layout", "evolution", "--store"])
            .arg(url())
            .arg("--key-pattern")
            .arg(&pattern)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--creds")
            .arg(&db.url)
            .args(args)
            .output()
            .unwrap()
    };
    for name in [a, "acme-support"] {
        let out = run(&["status", "--json", "--company", name]);
        assert_code(&out, 0);
        let v = json_of(&out);
        assert_eq!(v["tenants"][0]["tenant"], a, "{name}: {v}");
    }
    let out = run(&["status", "--company", "acme-nothing"]);
    assert_code(&out, 2);
    assert!(text(&out.stderr).contains(a), "{}", text(&out.stderr));
}

/// Field 22 of /proc/<pid>/stat: the process's start time (what the janitor records).
fn start_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// Issue 22: `another trigger is running … pid 5745`, exit 75 for two minutes after that
/// trigger had exited. The lock must go with its process, and a lock whose holder is provably
/// gone (this host, no such process) must be taken over; a live holder, or one on another
/// host, still makes the run busy.
#[test]
fn redis_trigger_lock_outlived_its_process() {
    let Some(mut r) = Scratch::new() else { return };
    r.evolution_instance("0c0ffee0-2222-4c55-9a0e-1b2c3d4e5f60", true);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let lock = format!("baileys-janitor-lock:global:{}", r.pattern());
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let get = |r: &mut Scratch| -> Option<String> {
        redis::cmd("GET").arg(&lock).query(&mut r.con).unwrap()
    };
    let set = |r: &mut Scratch, value: &str| {
        let _: () = redis::cmd("SET")
            .arg(&lock)
            .arg(value)
            .arg("PX")
            .arg(120_000)
            .query(&mut r.con)
            .unwrap();
    };

    let first = r.cmd(&state).arg("trigger").output().unwrap();
    assert_code(&first, 0);
    assert_eq!(get(&mut r), None, "the lock left with its trigger");
    let second = r.cmd(&state).arg("trigger").output().unwrap();
    assert_code(&second, 0);

    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    set(
        &mut r,
        &format!("baileys-janitor@{host} pid {dead} start 1 00000000000000ff"),
    );
    let took_over = r.cmd(&state).args(["trigger", "-v"]).output().unwrap();
    assert_code(&took_over, 0);
    assert!(
        text(&took_over.stderr).contains("took over a lock whose holder is gone"),
        "{}",
        text(&took_over.stderr)
    );
    assert_eq!(get(&mut r), None, "the taken-over lock is released too");

    let me = std::process::id();
    let live = format!(
        "baileys-janitor@{host} pid {me} start {} 00000000000000ff",
        start_ticks(me)
    );
    set(&mut r, &live);
    let busy = r.cmd(&state).arg("trigger").output().unwrap();
    assert_code(&busy, 75);
    assert!(
        text(&busy.stderr).contains(&format!("pid {me}")),
        "{}",
        text(&busy.stderr)
    );
    assert_eq!(
        get(&mut r).as_deref(),
        Some(live.as_str()),
        "a live holder keeps its lock"
    );

    let elsewhere = format!("baileys-janitor@another-host pid {dead} start 1 00000000000000ff");
    set(&mut r, &elsewhere);
    let busy = r.cmd(&state).arg("trigger").output().unwrap();
    assert_code(&busy, 75);
    assert_eq!(get(&mut r).as_deref(), Some(elsewhere.as_str()));
    let _: i64 = redis::cmd("DEL").arg(&lock).query(&mut r.con).unwrap();
}

/// Evolution's prefix is `CACHE_REDIS_PREFIX_KEY || 'evolution-cache'` in its code and
/// `evolution` in its `.env.example`: without a configured prefix the janitor finds instances
/// under either, refuses to guess when both hold some, and follows CACHE_REDIS_PREFIX_KEY.
/// (Redis database 11 of the test server: the fixed prefixes must not meet other tests' keys.)
#[test]
fn evolution_prefix_follows_cache_redis_prefix_key_or_whichever_holds_instances() {
    let base = url();
    // redis://user:pass@host:port[/db] → …/11
    let server = match base.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest)),
        None => base.clone(),
    };
    let db11 = format!("{server}/11");
    let con = redis::Client::open(db11.as_str())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)));
    let mut con = match con {
        Ok(c) => c,
        Err(e) => {
            service_missing("redis", &e);
            return;
        }
    };
    let id = format!(
        "0c0ffee0-{:04x}-4c55-9a0e-1b2c3d4e5f60",
        std::process::id() & 0xffff
    );
    let env_key = format!("evolution:instance:{id}");
    let code_key = format!("evolution-cache:instance:{id}x");
    let hset = |con: &mut redis::Connection, k: &str| {
        let _: i64 = redis::cmd("HSET")
            .arg(k)
            .arg("creds")
            .arg(twice(CREDS))
            .query(con)
            .unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    // Each key pattern is another store: a state directory of its own for each (core binding).
    let status = |envs: &[(&str, &str)]| {
        let mut c = bare_cmd();
        for (k, v) in envs {
            c.env(k, v);
        }
        let state = dir
            .path()
            .join(format!("state-{}", crate::stores::now_ms()));
        c.args(["--layout", "evolution", "--store", &db11, "--state-dir"])
            .arg(state)
            .args(["status", "--json"])
            .output()
            .unwrap()
    };
    hset(&mut con, &env_key);
    let found = status(&[]);
    assert_code(&found, 0);
    assert!(text(&found.stdout).contains(&id), "{}", text(&found.stdout));
    assert!(
        text(&found.stdout).contains("evolution:instance:*, prefix found on the server"),
        "status names the prefix in use: {}",
        text(&found.stdout)
    );

    hset(&mut con, &code_key);
    let both = status(&[]);
    assert_code(&both, 2);
    assert!(
        text(&both.stderr).contains("CACHE_REDIS_PREFIX_KEY"),
        "{}",
        text(&both.stderr)
    );
    let chosen = status(&[("CACHE_REDIS_PREFIX_KEY", "evolution")]);
    assert_code(&chosen, 0);
    let v = json_of(&chosen);
    let tenants: Vec<&str> = v["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert!(
        tenants.contains(&id.as_str()) && !tenants.iter().any(|t| t.ends_with('x')),
        "{tenants:?}"
    );
    for k in [&env_key, &code_key] {
        let _: i64 = redis::cmd("DEL").arg(k).query(&mut con).unwrap();
    }
}

/// Issue 22: Evolution's files mode keeps creds only in its `"Session"` table, so pre-keys in
/// `instances/<id>/` were never cleaned, whatever `--creds` said. With `--creds` pointing at
/// that table the pre-key rule gets its counters (status and cleanup alike); without it no
/// pre-key is touched, as before.
#[test]
fn evolution_files_mode_cleans_pre_keys_with_creds_from_its_session_table() {
    let Some(db) = TestDb::new() else { return };
    let uuid = "5e55e55e-7b1d-4c55-9a0e-1b2c3d4e5f60";
    evolution_db(&db, &[(uuid, "sales")]);
    let t = Tree::new();
    for id in 1..=120 {
        t.file(&format!("instances/{uuid}/pre-key-{id}.json"), days(30));
    }
    t.file(&format!("instances/{uuid}/session-1.0.json"), days(30));
    // The account was active yesterday: the 30-day-old session is old against that activity.
    t.file(&format!("instances/{uuid}/session-2.0.json"), days(1));
    let keep50 = t.path("keep50.toml");
    std::fs::write(&keep50, "[pre_keys]\nkeep = 50\n").unwrap();
    let run = |creds: Option<&str>, args: &[&str]| {
        let mut c = bare_cmd();
        c.args(["--layout", "evolution", "--sessions-path"])
            .arg(t.path("instances"))
            .arg("--config")
            .arg(&keep50);
        if let Some(url) = creds {
            c.env("BAILEYS_JANITOR_CREDS", url);
        }
        c.args(args).output().unwrap()
    };

    let blind = run(None, &["cleanup", "--dry-run", "--json"]);
    assert_code(&blind, 0);
    let v = json_of(&blind);
    assert_eq!(company_report(&v, uuid)["removed"], 1, "the session only");

    let status = run(Some(&db.url), &["status", "--json"]);
    assert_code(&status, 0);
    assert!(
        text(&status.stdout).contains("\"paired\""),
        "{}",
        text(&status.stdout)
    );

    let out = run(Some(&db.url), &["cleanup", "--json"]);
    assert_code(&out, 0);
    let v = json_of(&out);
    let c = company_report(&v, uuid);
    assert_eq!(c["creds"], "paired", "{c}");
    assert_eq!(c["removed"], 71, "70 pre-keys and the session: {c}");
    assert!(!t.exists(&format!("instances/{uuid}/pre-key-1.json")));
    assert!(t.exists(&format!("instances/{uuid}/pre-key-71.json")));
    assert!(t.exists(&format!("instances/{uuid}/pre-key-120.json")));
    assert_no_secret(&t.root(), &[&status, &out]);

    let mut wrong = db.url.clone();
    wrong.truncate(wrong.rfind('/').unwrap());
    let wrong = format!("{wrong}/postgres");
    let refused = run(Some(&wrong), &["cleanup"]);
    assert_code(&refused, 2);
    assert!(
        text(&refused.stderr).contains("\"Session\""),
        "{}",
        text(&refused.stderr)
    );
}

/// A cleanup stopped by SIGTERM releases its Redis locks before it exits (143), instead of
/// leaving them to block every other host until they expire.
#[test]
fn redis_locks_are_released_when_a_cleanup_is_stopped_by_a_signal() {
    let Some(mut r) = Scratch::new() else { return };
    let t = "0c0ffee0-3333-4c55-9a0e-1b2c3d4e5f60";
    r.evolution_instance(t, true);
    let dir = tempfile::tempdir().unwrap();
    let lock = format!("baileys-janitor-lock:{{{}}}", r.hash(t));
    let pattern = r.pattern();
    let janitor = || {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("baileys-janitor"));
        c.env_clear()
            .env("BAILEYS_JANITOR_STORE", url())
            .args(["--layout", "evolution", "--key-pattern"])
            .arg(&pattern)
            .arg("--state-dir")
            .arg(dir.path());
        c
    };
    let mut child = janitor()
        .args(["cleanup", "--debug-pause-before-remove", "20s"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut held = false;
    for _ in 0..100 {
        let v: Option<String> = redis::cmd("GET").arg(&lock).query(&mut r.con).unwrap();
        if v.is_some() {
            held = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(held, "the cleanup took its tenant lock");
    // A second janitor with the same state directory: busy through the server's lock alone.
    let second = janitor()
        .args(["cleanup", "--lock-wait", "0s"])
        .output()
        .unwrap();
    assert_code(&second, 75);
    assert!(
        !dir.path().join("locks").exists(),
        "no lock file in the state directory"
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let started = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert!(started.elapsed() < Duration::from_secs(5));
    let v: Option<String> = redis::cmd("GET").arg(&lock).query(&mut r.con).unwrap();
    assert_eq!(v, None, "the lock left with the process");
    assert!(
        r.hgetall(&r.hash(t))
            .contains_key("session-5511888888888.0"),
        "nothing removed after the signal"
    );
}

/// Evolution's files mode with `--creds`: trigger and monitor count a Baileys 7 account's
/// reserved pre-keys out of its level, as for any folder with creds.json (without its creds every
/// v7 instance looked past the thresholds).
#[test]
fn evolution_files_mode_levels_leave_out_reserved_pre_keys_with_creds() {
    let Some(db) = TestDb::new() else { return };
    let uuid = "5e55e55e-8b1d-4c55-9a0e-1b2c3d4e5f60";
    evolution_db(&db, &[(uuid, "v7")]);
    let v7 = r#"{"me":{"id":"5511999999999:7@s.whatsapp.net"},"account":{"details":"eA=="},"nextPreKeyId":1000,"firstUnuploadedPreKeyId":1000}"#;
    db.client()
        .execute(r#"UPDATE "Session" SET creds = $1"#, &[&twice(v7)])
        .unwrap();
    let t = Tree::new();
    for id in 800..1000 {
        t.file(&format!("instances/{uuid}/pre-key-{id}.json"), days(2));
    }
    t.file(&format!("instances/{uuid}/session-1.0.json"), days(1));
    let trigger = |creds: Option<&str>| {
        let mut c = bare_cmd();
        c.args(["--layout", "evolution", "--sessions-path"])
            .arg(t.path("instances"))
            .arg("--state-dir")
            .arg(t.path("state"));
        if let Some(url) = creds {
            c.env("BAILEYS_JANITOR_CREDS", url);
        }
        c.args(["trigger", "--dry-run", "--json"]).output().unwrap()
    };
    let blind = trigger(None);
    let v = json_of(&blind);
    let row = company_report(&v, uuid);
    assert_eq!(row["reserved_pre_keys"], 0, "{row}");
    let seeing = trigger(Some(&db.url));
    assert_code(&seeing, 0);
    let v = json_of(&seeing);
    let row = company_report(&v, uuid);
    assert_eq!(row["reserved_pre_keys"], 200, "{row}");
    assert_eq!(row["counted"], 1, "{row}");
    let monitor = bare_cmd()
        .env("BAILEYS_JANITOR_CREDS", &db.url)
        .args(["--layout", "evolution", "--sessions-path"])
        .arg(t.path("instances"))
        .arg("--state-dir")
        .arg(t.path("state"))
        .args(["monitor", "--once", "--json"])
        .output()
        .unwrap();
    assert_code(&monitor, 0);
    assert!(
        text(&monitor.stdout).contains("\"reserved_pre_keys\":200"),
        "{}",
        text(&monitor.stdout)
    );
}

/// Broke: `--remove-orphans` with `--creds` pointing at the wrong Evolution database (no
/// "Instance" rows) removed every key of every live instance, exit 0.
#[test]
fn remove_orphans_refuses_when_most_instances_look_orphaned() {
    let Some(mut r) = Scratch::new() else { return };
    let Some(db) = TestDb::new() else { return };
    let ids = [
        "3f1c2a9e-7b1d-4c55-9a0e-1b2c3d4e5f60",
        "3f1c2a9e-7b1d-4c55-9a0e-1b2c3d4e5f61",
        "3f1c2a9e-7b1d-4c55-9a0e-1b2c3d4e5f62",
    ];
    for id in ids {
        r.evolution_instance(id, false);
    }
    evolution_db(&db, &[]);
    let dir = tempfile::tempdir().unwrap();
    let before: Vec<_> = ids.iter().map(|id| r.hgetall(&r.hash(id))).collect();
    let out = r
        .cmd(&dir.path().join("state"))
        .arg("--creds")
        .arg(&db.url)
        .args(["cleanup", "--remove-orphans"])
        .output()
        .unwrap();
    assert_code(&out, 2);
    let err = text(&out.stderr);
    assert!(err.contains("3 of 3 tenants look orphaned"), "{err}");
    let after: Vec<_> = ids.iter().map(|id| r.hgetall(&r.hash(id))).collect();
    assert_eq!(after, before, "nothing removed");
}

/// Broke: a key pattern like `*:auth` adopted another application's hashes in a shared Redis
/// and removed their `session-*` fields.
#[test]
fn a_key_pattern_never_adopts_another_applications_hashes() {
    let Some(mut r) = Scratch::new() else { return };
    let other = format!("{}:webapp:auth", r.prefix);
    for i in 0..5 {
        r.hset(&other, &format!("session-{i}.0"), "user=42; expires=1");
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let pattern = format!("{}:*:auth", r.prefix);
    let run = |now: Option<String>| {
        let mut c = bare_cmd();
        if let Some(n) = now {
            c.env("BAILEYS_JANITOR_NOW", n);
        }
        c.args(["--layout", "baileys-redis-auth", "--store"])
            .arg(url())
            .arg("--key-pattern")
            .arg(&pattern)
            .arg("--state-dir")
            .arg(&state)
            .args(["cleanup", "-v"])
            .output()
            .unwrap()
    };
    assert_code(&run(None), 0);
    let later = (chrono::Utc::now() + chrono::Duration::days(60)).to_rfc3339();
    let out = run(Some(later));
    assert_code(&out, 0);
    assert!(
        text(&out.stdout).contains("not a Baileys auth store"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(r.hgetall(&other).len(), 5, "the other app's fields stay");
}
