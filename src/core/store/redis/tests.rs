//! Against a real Redis (`BAILEYS_JANITOR_TEST_REDIS`, default redis://127.0.0.1:6379); each
//! test works under its own random key prefix and deletes it afterwards. Without a server the
//! tests say so and pass, unless REQUIRE_SERVICES=1 (`.ci/run`): then they fail.

use super::*;
use crate::core::store::{KeyRef, Token};

fn url() -> String {
    std::env::var("BAILEYS_JANITOR_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A connection and a random prefix; every key under the prefix is deleted on drop.
struct Scratch {
    con: Connection,
    prefix: String,
}

impl Scratch {
    fn new() -> Option<Scratch> {
        let con = redis::Client::open(url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)));
        let Ok(con) = con else {
            // `.ci/run` sets REQUIRE_SERVICES=1: there a missing server fails the test.
            assert!(
                std::env::var("REQUIRE_SERVICES").map_or(true, |v| v != "1"),
                "REQUIRE_SERVICES=1 but no Redis answers at {}",
                redact_url(&url())
            );
            eprintln!("SKIPPED: no Redis at {}", redact_url(&url()));
            return None;
        };
        Some(Scratch {
            con,
            prefix: format!("bjtest{:016x}", random_u64()),
        })
    }

    fn layout(&self, preset: &str, pattern: &str) -> RedisLayout {
        RedisLayout::preset(preset)
            .unwrap()
            .with_pattern(&format!("{}{pattern}", self.prefix))
            .unwrap()
    }

    fn store(&self, layout: &RedisLayout) -> RedisStore {
        RedisStore::connect(&url(), layout, None, "baileys-janitor@test").unwrap()
    }

    fn hset(&mut self, key: &str, field: &str, value: &str) {
        let _: i64 = redis::cmd("HSET")
            .arg(key)
            .arg(field)
            .arg(value)
            .query(&mut self.con)
            .unwrap();
    }

    fn hget(&mut self, key: &str, field: &str) -> Option<String> {
        redis::cmd("HGET")
            .arg(key)
            .arg(field)
            .query(&mut self.con)
            .unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("*{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query(&mut self.con)
                .unwrap_or((0, Vec::new()));
            for k in keys {
                let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(k).query(&mut self.con);
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
}

/// Evolution's encoding: JSON.stringify of the JSON text.
fn twice(json: &str) -> String {
    serde_json::to_string(json).unwrap()
}

fn rows(store: &mut RedisStore, tenant: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    store
        .scan(tenant, &mut |r| {
            out.push((r.key_type.to_owned(), r.id.to_owned(), r.value.to_owned()))
        })
        .unwrap();
    out.sort();
    out
}

fn planned(t: &str, id: &str, value: &str) -> Planned {
    Planned {
        key: KeyRef {
            key_type: t.into(),
            id: id.into(),
        },
        token: Token::of(value, None),
    }
}

#[test]
fn evolution_hashes_list_decode_and_skip_creds() {
    let Some(mut s) = Scratch::new() else { return };
    let layout = s.layout("evolution", ":instance:*");
    let a = format!("{}:instance:0b4a-1", s.prefix);
    s.hset(&a, "creds", &twice(r#"{"me":{"id":"1@s.whatsapp.net"}}"#));
    s.hset(&a, "pre-key-5", &twice(r#"{"private":1}"#));
    s.hset(&a, "sender-key-120363@g.us::5511::0", &twice("[]"));
    s.hset(
        &format!("{}:instance:0b4a-2", s.prefix),
        "session-1.0",
        &twice("{}"),
    );
    // Not a hash: another module's value under the same prefix is not a tenant.
    let _: () = redis::cmd("SET")
        .arg(format!("{}:instance:strkey", s.prefix))
        .arg("x")
        .query(&mut s.con)
        .unwrap();
    let mut store = s.store(&layout);
    assert_eq!(store.tenants().unwrap(), vec!["0b4a-1", "0b4a-2"]);
    assert_eq!(
        store.creds("0b4a-1").unwrap().unwrap(),
        br#"{"me":{"id":"1@s.whatsapp.net"}}"#
    );
    assert_eq!(store.creds("0b4a-2").unwrap(), None);
    assert_eq!(
        rows(&mut store, "0b4a-1"),
        vec![
            ("pre-key".into(), "5".into(), r#"{"private":1}"#.into()),
            (
                "sender-key".into(),
                "120363@g.us::5511::0".into(),
                "[]".into()
            ),
        ]
    );
    let u = store.usage("0b4a-1").unwrap();
    assert_eq!(u.keys, 3);
    assert!(u.bytes > 0);
}

#[test]
fn a_field_the_app_rewrote_survives_and_the_rest_goes_to_the_trash_first() {
    let Some(mut s) = Scratch::new() else { return };
    let layout = s.layout("evolution", ":instance:*");
    let h = format!("{}:instance:t", s.prefix);
    s.hset(&h, "session-1.0", &twice(r#"{"a":1}"#));
    s.hset(&h, "session-2.0", &twice(r#"{"b":1}"#));
    let mut store = s.store(&layout);
    assert_eq!(store.lock_tenant("t").unwrap(), TenantLock::Acquired);
    // The app rewrites session-2.0 after planning.
    s.hset(&h, "session-2.0", &twice(r#"{"b":2}"#));
    let batch = [
        planned("session", "1.0", r#"{"a":1}"#),
        planned("session", "2.0", r#"{"b":1}"#),
        planned("session", "3.0", "{}"),
    ];
    let mut trashed = Vec::new();
    let out = store
        .remove(
            "t",
            &batch,
            &mut TrashTarget::Before(&mut |rows| {
                trashed.extend_from_slice(rows);
                Ok(())
            }),
        )
        .unwrap();
    assert_eq!(
        out,
        vec![
            RemoveOutcome::Removed {
                bytes: twice(r#"{"a":1}"#).len() as u64
            },
            RemoveOutcome::Changed,
            RemoveOutcome::Vanished
        ]
    );
    assert_eq!(s.hget(&h, "session-1.0"), None);
    assert_eq!(s.hget(&h, "session-2.0"), Some(twice(r#"{"b":2}"#)));
    // The trash holds the exact stored bytes (still encoded twice).
    assert_eq!(trashed.len(), 1);
    assert_eq!(trashed[0].value, twice(r#"{"a":1}"#));

    // A trash that cannot be written stops the batch: nothing is removed.
    let keep = [planned("session", "2.0", r#"{"b":2}"#)];
    let err = store.remove(
        "t",
        &keep,
        &mut TrashTarget::Before(&mut |_| Err(std::io::Error::other("disk full"))),
    );
    assert!(err.is_err());
    assert_eq!(s.hget(&h, "session-2.0"), Some(twice(r#"{"b":2}"#)));

    // Restore: byte-exact, and never over a field written since.
    s.hset(&h, "session-9.0", "newer");
    let mut back = trashed.clone();
    back.push(TrashRow {
        key_type: "session".into(),
        id: "9.0".into(),
        value: "older".into(),
        columns: Default::default(),
    });
    assert_eq!(
        store.restore("t", &back).unwrap(),
        vec![RestoreOutcome::Restored, RestoreOutcome::Exists]
    );
    assert_eq!(s.hget(&h, "session-1.0"), Some(twice(r#"{"a":1}"#)));
    assert_eq!(s.hget(&h, "session-9.0"), Some("newer".into()));
    store.unlock_tenant("t");
}

#[test]
fn a_janitor_whose_lock_was_taken_over_removes_nothing() {
    let Some(mut s) = Scratch::new() else { return };
    let layout = s.layout("evolution", ":instance:*");
    let h = format!("{}:instance:t", s.prefix);
    s.hset(&h, "session-1.0", &twice("{}"));
    let mut one = s.store(&layout);
    let mut two = s.store(&layout);
    assert_eq!(one.lock_tenant("t").unwrap(), TenantLock::Acquired);
    match two.lock_tenant("t").unwrap() {
        TenantLock::Busy(holder) => {
            assert!(holder.starts_with("baileys-janitor@test pid "), "{holder}");
        }
        other => panic!("{other:?}"),
    }
    // Our lock expires and another host takes it (simulated by rewriting the lock key).
    let lock = one.lock_key(Some("t"));
    let _: () = redis::cmd("SET")
        .arg(&lock)
        .arg("other-host pid 1 ffff")
        .query(&mut s.con)
        .unwrap();
    let err = one
        .remove(
            "t",
            &[planned("session", "1.0", "{}")],
            &mut TrashTarget::Before(&mut |_| Ok(())),
        )
        .unwrap_err();
    assert!(err.to_string().contains("lock"), "{err}");
    assert_eq!(s.hget(&h, "session-1.0"), Some(twice("{}")));
    // Unlocking does not release someone else's lock.
    one.unlock_tenant("t");
    let held: Option<String> = redis::cmd("GET").arg(&lock).query(&mut s.con).unwrap();
    assert_eq!(held.as_deref(), Some("other-host pid 1 ffff"));
}

#[test]
fn plain_keys_layout_lists_removes_and_restores() {
    let Some(mut s) = Scratch::new() else { return };
    let layout = s.layout("baileys-redis-auth-keys", "-*:");
    let k = |t: &str, n: &str| format!("{}-{t}:{n}", s.prefix);
    for (key, v) in [
        (k("sid1", "creds"), r#"{"me":null}"#),
        (k("sid1", "pre-key-7"), "{}"),
        (k("sid1", "sender-key-120363@g.us--55--0"), "[]"),
        (k("sid2", "session-5.0"), "{}"),
        (k("sid2", "not-a-baileys-key"), "{}"),
    ] {
        let _: () = redis::cmd("SET").arg(key).arg(v).query(&mut s.con).unwrap();
    }
    let mut store = s.store(&layout);
    assert_eq!(store.tenants().unwrap(), vec!["sid1", "sid2"]);
    assert_eq!(store.creds("sid1").unwrap().unwrap(), br#"{"me":null}"#);
    assert_eq!(
        rows(&mut store, "sid1"),
        vec![
            ("pre-key".into(), "7".into(), "{}".into()),
            (
                "sender-key".into(),
                "120363@g.us--55--0".into(),
                "[]".into()
            )
        ]
    );
    assert_eq!(store.lock_tenant("sid1").unwrap(), TenantLock::Acquired);
    let mut trashed = Vec::new();
    let out = store
        .remove(
            "sid1",
            &[planned("pre-key", "7", "{}")],
            &mut TrashTarget::Before(&mut |r| {
                trashed.extend_from_slice(r);
                Ok(())
            }),
        )
        .unwrap();
    assert_eq!(out, vec![RemoveOutcome::Removed { bytes: 2 }]);
    let gone: Option<String> = redis::cmd("GET")
        .arg(k("sid1", "pre-key-7"))
        .query(&mut s.con)
        .unwrap();
    assert_eq!(gone, None);
    assert_eq!(
        store.restore("sid1", &trashed).unwrap(),
        vec![RestoreOutcome::Restored]
    );
    assert_eq!(
        store.restore("sid1", &trashed).unwrap(),
        vec![RestoreOutcome::Exists]
    );
    store.unlock_tenant("sid1");
    assert_eq!(store.usage("sid2").unwrap().keys, 1);
}

#[test]
fn urls_are_shown_without_secrets() {
    assert_eq!(
        redact_url("redis://:s3cret@cache:6380/2?timeout=1"),
        "redis://cache:6380/2"
    );
    assert_eq!(
        redact_url("rediss://app:s3cret@cache/0"),
        "rediss://app@cache/0"
    );
    assert_eq!(redact_url("redis://127.0.0.1"), "redis://127.0.0.1");
    assert_eq!(
        password_of("redis://app:s3cret@h/0").as_deref(),
        Some("s3cret")
    );
    assert_eq!(scrub("bad s3cret", Some("s3cret")), "bad ***");
    assert!(check_url("redis://:pw@host:notaport").is_err());
    assert!(
        !check_url("redis://:pw@host:notaport")
            .unwrap_err()
            .contains("pw")
    );
}

#[test]
fn patterns_split_tenants_exactly() {
    let evo = RedisLayout::preset("evolution").unwrap();
    assert_eq!(
        evo.split("evolution-cache:instance:7f3e-uuid"),
        Some(("7f3e-uuid", ""))
    );
    assert_eq!(evo.split("evolution-cache:groups:x"), None);
    assert_eq!(evo.split("evolution-cache:instance:"), None);
    let evo2 = evo.clone().with_pattern("evolution:instance:*").unwrap();
    assert_eq!(evo2.tenant_key("u"), "evolution:instance:u");
    let bra = RedisLayout::preset("baileys-redis-auth").unwrap();
    assert_eq!(bra.split("sess:1:auth"), Some(("sess:1", "")));
    assert_eq!(bra.split("sess:1:other"), None);
    let keys = RedisLayout::preset("baileys-redis-auth-keys").unwrap();
    assert_eq!(keys.split("s1:pre-key-5"), Some(("s1", "pre-key-5")));
    assert_eq!(keys.split("s1:creds"), Some(("s1", "creds")));
    assert_eq!(keys.split("s1:unrelated"), None);
    assert!(evo.clone().with_pattern("a:*:*").is_err());
    assert!(evo.clone().with_pattern("nostar").is_err());
    assert!(keys.with_pattern("x*").is_err());
    assert_eq!(glob_escape("a*b?[c]"), "a\\*b\\?\\[c\\]");
    assert_eq!(
        holder_of("baileys-janitor@h pid 5 00ff"),
        "baileys-janitor@h pid 5"
    );
}

/// A Redis that answers everything but never answers EVAL: enough RESP for one removal and the
/// check after it. `ran`: whether the stalled script "ran" (its fields are gone when checked).
fn stalling_redis(fields: &[(&str, &str)], ran: bool) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let data: std::sync::Arc<std::sync::Mutex<HashMap<String, String>>> =
        std::sync::Arc::new(std::sync::Mutex::new(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let data = data.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let n: usize = line.trim_start_matches('*').trim().parse().unwrap_or(0);
                    let mut args = Vec::new();
                    for _ in 0..n {
                        let mut len = String::new();
                        r.read_line(&mut len).unwrap();
                        let len: usize = len.trim_start_matches('$').trim().parse().unwrap();
                        let mut buf = vec![0; len + 2];
                        r.read_exact(&mut buf).unwrap();
                        buf.truncate(len);
                        args.push(String::from_utf8(buf).unwrap());
                    }
                    let bulk = |v: Option<&String>| match v {
                        Some(v) => format!("${}\r\n{v}\r\n", v.len()),
                        None => "$-1\r\n".into(),
                    };
                    let reply = match args[0].to_ascii_uppercase().as_str() {
                        "PING" => "+PONG\r\n".to_owned(),
                        "HMGET" => {
                            let d = data.lock().unwrap();
                            let mut s = format!("*{}\r\n", args.len() - 2);
                            for f in &args[2..] {
                                s.push_str(&bulk(d.get(f)));
                            }
                            s
                        }
                        "HGET" => bulk(data.lock().unwrap().get(&args[2])),
                        "EVAL" | "EVALSHA" => {
                            if ran {
                                data.lock().unwrap().clear();
                            }
                            // Never answers.
                            std::thread::sleep(Duration::from_secs(5));
                            return;
                        }
                        _ => "+OK\r\n".to_owned(),
                    };
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// Broke: after a Redis stall past the I/O timeout the report said "rolled back; rows left in
/// place" while Redis then ran the removal. Now the outcome is checked on a fresh connection and
/// said as it is: removed when the field is gone, unknown when it is still there.
#[test]
fn a_stalled_removal_is_verified_never_called_rolled_back() {
    let layout = RedisLayout::preset("baileys-redis-auth").unwrap();
    for ran in [true, false] {
        let url = stalling_redis(&[("session-1.0", r#"{"a":1}"#)], ran);
        let mut store = RedisStore::connect(&url, &layout, None, "test").unwrap();
        store.set_io_timeout(Duration::from_millis(300));
        assert_eq!(store.lock_tenant("t").unwrap(), TenantLock::Acquired);
        let mut trashed = Vec::new();
        let out = store
            .remove(
                "t",
                &[planned("session", "1.0", r#"{"a":1}"#)],
                &mut TrashTarget::Before(&mut |rows| {
                    trashed.extend_from_slice(rows);
                    Ok(())
                }),
            )
            .unwrap();
        assert_eq!(trashed.len(), 1, "in the trash before the script");
        match (&out[0], ran) {
            (RemoveOutcome::Removed { .. }, true) => {}
            (RemoveOutcome::Unknown(why), false) => {
                assert!(why.contains("may still run"), "{why}")
            }
            (o, _) => panic!("ran={ran}: {o:?}"),
        }
    }
}

// The janitor's state in Redis (issue 23).

use crate::core::store::shared::{SharedOptions, SharedState, Space, TrashTag};

fn opts(read_only: bool) -> SharedOptions {
    SharedOptions {
        read_only,
        trash_retention: Duration::from_secs(3 * 86_400),
        ..SharedOptions::default()
    }
}

fn tag(run: &str, host: &str, at: i64) -> TrashTag {
    TrashTag {
        run_id: run.into(),
        host: host.into(),
        removed_at: chrono::DateTime::from_timestamp(at, 123_456_789).unwrap(),
    }
}

fn trow(t: &str, id: &str, v: &str) -> TrashRow {
    TrashRow {
        key_type: t.into(),
        id: id.into(),
        value: v.into(),
        columns: Default::default(),
    }
}

impl Scratch {
    fn shared(&self, layout: &RedisLayout, read_only: bool) -> Box<dyn SharedState> {
        self.store(layout)
            .shared_state(&opts(read_only))
            .unwrap()
            .expect("redis keeps a shared state")
    }

    /// Every key under the janitor's namespace, with its TTL in seconds (-1: none).
    fn own_keys(&mut self) -> BTreeMap<String, i64> {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:janitor:*", self.prefix))
            .query(&mut self.con)
            .unwrap();
        keys.into_iter()
            .map(|k| {
                let ttl: i64 = redis::cmd("TTL").arg(&k).query(&mut self.con).unwrap();
                (k, ttl)
            })
            .collect()
    }
}

use std::collections::BTreeMap;

#[test]
fn state_lives_under_the_stores_prefix_not_the_url() {
    let evo = RedisLayout::preset("evolution").unwrap();
    assert_eq!(evo.state_prefix(), "evolution-cache");
    assert_eq!(
        evo.clone()
            .with_evolution_prefix("evolution")
            .unwrap()
            .state_prefix(),
        "evolution"
    );
    let auth = RedisLayout::preset("baileys-redis-auth").unwrap();
    assert_eq!(auth.state_prefix(), "baileys-janitor");
    assert_eq!(
        auth.with_pattern("myapp:*:keys").unwrap().state_prefix(),
        "myapp"
    );
}

#[test]
fn documents_swap_by_version_and_two_hosts_see_one_truth() {
    let Some(s) = Scratch::new() else { return };
    let layout = s.layout("evolution", ":instance:*");
    let mut a = s.shared(&layout, false);
    let mut b = s.shared(&layout, false);
    assert_eq!(a.read(Space::Company, "c:1").unwrap(), None);
    assert!(a.swap(Space::Company, "c:1", None, b"one").unwrap());
    // B saw nothing and tries to create: refused, A's body stands.
    assert!(!b.swap(Space::Company, "c:1", None, b"other").unwrap());
    let doc = b.read(Space::Company, "c:1").unwrap().unwrap();
    assert_eq!(doc.body, b"one");
    assert!(
        b.swap(Space::Company, "c:1", Some(doc.version), b"two")
            .unwrap()
    );
    // A's version is stale now.
    assert!(
        !a.swap(Space::Company, "c:1", Some(doc.version), b"three")
            .unwrap()
    );
    assert_eq!(a.read(Space::Company, "c:1").unwrap().unwrap().body, b"two");
    assert!(a.swap(Space::Runs, "host-a", None, b"ra").unwrap());
    assert!(b.swap(Space::Runs, "host-b", None, b"rb").unwrap());
    assert_eq!(
        b.list(Space::Runs).unwrap(),
        vec![
            ("host-a".into(), b"ra".to_vec()),
            ("host-b".into(), b"rb".to_vec())
        ]
    );
    assert_eq!(a.list(Space::Ledger).unwrap(), vec![]);
    assert!(a.describe().contains(&format!("{}:janitor:", s.prefix)));
    assert_eq!(a.exposure().unwrap(), Vec::<String>::new());
}

#[test]
fn racing_writers_lose_no_update() {
    let Some(s) = Scratch::new() else { return };
    let layout = s.layout("evolution", ":instance:*");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let mut st = s.shared(&layout, false);
            std::thread::spawn(move || {
                for _ in 0..25 {
                    loop {
                        let cur = st.read(Space::Company, "c").unwrap();
                        let n: u64 = cur
                            .as_ref()
                            .map_or(0, |d| String::from_utf8_lossy(&d.body).parse().unwrap());
                        let body = (n + 1).to_string();
                        if st
                            .swap(Space::Company, "c", cur.map(|d| d.version), body.as_bytes())
                            .unwrap()
                        {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut st = s.shared(&layout, true);
    assert_eq!(st.read(Space::Company, "c").unwrap().unwrap().body, b"100");
}

#[test]
fn the_trash_keeps_exact_rows_lists_runs_marks_restores_and_expires() {
    let Some(mut s) = Scratch::new() else { return };
    let layout = s.layout("evolution", ":instance:*");
    let mut a = s.shared(&layout, false);
    let mut with_cols = trow("pre-key", "1", "{\"k\":\"\\u0000é\"}");
    with_cols
        .columns
        .insert("created_at".into(), Some(1_700_000_000_000_000));
    with_cols.columns.insert("expires_at".into(), None);
    let t1 = tag("r1", "host-a", 1_700_000_000);
    a.put_trash(
        "t:1",
        &t1,
        &[with_cols.clone(), trow("session", "5.0", "s")],
    )
    .unwrap();
    a.put_trash("t:1", &t1, &[trow("", "odd-name", "x")])
        .unwrap();
    let t2 = tag("r2", "host-b", 1_700_000_100);
    a.put_trash("t:2", &t2, &[trow("session", "1.0", "abc")])
        .unwrap();
    let runs = a.trash_runs(None).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0].run_id.as_str(), runs[0].host.as_str()),
        ("r2", "host-b")
    );
    assert_eq!(runs[1].tenant, "t:1");
    assert_eq!(runs[1].removed_at, t1.removed_at, "to the nanosecond");
    assert_eq!((runs[1].rows, runs[1].restored), (3, 0));
    let bytes = (with_cols.value.len() + 2) as u64;
    assert_eq!(runs[1].bytes, bytes);
    assert_eq!(a.trash_runs(Some("t:2")).unwrap().len(), 1);
    let rows = a.trash_rows("t:1", "r1").unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().any(|r| r.row == with_cols && !r.restored));
    assert!(rows.iter().any(|r| r.row == trow("", "odd-name", "x")));
    assert_eq!(a.trash_rows("t:1", "nope").unwrap(), vec![]);
    // Every trash key expires with the retention; the documents do not.
    let own = s.own_keys();
    assert!(own.len() >= 6, "{own:?}");
    for (k, ttl) in &own {
        if k.ends_with(":version") {
            assert_eq!(*ttl, -1, "{k}");
        } else {
            assert!((3 * 86_400 - 60..=3 * 86_400).contains(ttl), "{k}: {ttl}");
        }
    }
    // A restore on another host marks rows; the run still lists them as restored.
    let mut b = s.shared(&layout, false);
    b.mark_restored(
        "t:1",
        "r1",
        &[
            with_cols.key(),
            KeyRef {
                key_type: "x".into(),
                id: "y".into(),
            },
        ],
    )
    .unwrap();
    let run = b.trash_runs(Some("t:1")).unwrap().remove(0);
    assert_eq!((run.rows, run.restored, run.bytes), (2, 1, 2));
    let rows = b.trash_rows("t:1", "r1").unwrap();
    assert!(rows.iter().any(|r| r.row == with_cols && r.restored));
    assert_eq!(rows.iter().filter(|r| !r.restored).count(), 2);
    let restored_ttl: i64 = redis::cmd("TTL")
        .arg(format!("{}:janitor:trash:t%3A1:r1:restored", s.prefix))
        .query(&mut s.con)
        .unwrap();
    assert!(restored_ttl > 86_400, "{restored_ttl}");
    // Purge: runs removed before the cutoff go, with every key; later ones stay.
    let cut = chrono::DateTime::from_timestamp(1_700_000_050, 0).unwrap();
    assert_eq!(b.purge(cut).unwrap(), (1, 3));
    assert_eq!(a.trash_runs(None).unwrap().len(), 1);
    assert_eq!(a.trash_rows("t:1", "r1").unwrap(), vec![]);
    assert!(s.own_keys().keys().all(|k| !k.contains("t%3A1")));
}

#[test]
fn a_newer_schema_is_refused_at_open_and_by_every_write() {
    let Some(mut s) = Scratch::new() else { return };
    let layout = s.layout("evolution", ":instance:*");
    let mut a = s.shared(&layout, false);
    assert!(a.swap(Space::Runs, "h", None, b"x").unwrap());
    let vk = format!("{}:janitor:version", s.prefix);
    let v: String = redis::cmd("GET").arg(&vk).query(&mut s.con).unwrap();
    assert_eq!(v, SCHEMA_VERSION.to_string(), "the first write records it");
    let _: () = redis::cmd("SET")
        .arg(&vk)
        .arg(SCHEMA_VERSION + 1)
        .query(&mut s.con)
        .unwrap();
    for read_only in [true, false] {
        let e = s
            .store(&layout)
            .shared_state(&opts(read_only))
            .err()
            .unwrap();
        assert!(e.is_configuration(), "{e}");
        assert!(e.to_string().contains("newer than this binary"), "{e}");
    }
    // Already open when a newer binary wrote: refused too, nothing written or removed.
    let e = a.swap(Space::Runs, "h", Some(1), b"y").unwrap_err();
    assert!(e.is_configuration(), "{e}");
    let e = a
        .put_trash("t", &tag("r", "h", 1), &[trow("session", "1", "v")])
        .unwrap_err();
    assert!(e.is_configuration(), "{e}");
    let h = format!("{}:instance:t", s.prefix);
    s.hset(&h, "session-1.0", &twice("{}"));
    let mut store = s.store(&layout);
    let t = tag("r", "h", 1);
    let e = store
        .remove(
            "t",
            &[planned("session", "1.0", "{}")],
            &mut TrashTarget::InStore(&t),
        )
        .unwrap_err();
    assert!(e.is_configuration(), "{e}");
    assert_eq!(s.hget(&h, "session-1.0"), Some(twice("{}")));
}

#[test]
fn a_read_only_state_writes_nothing() {
    let Some(mut s) = Scratch::new() else { return };
    let layout = s.layout("evolution", ":instance:*");
    let mut st = s.shared(&layout, true);
    assert_eq!(st.read(Space::Company, "c").unwrap(), None);
    assert_eq!(st.list(Space::Runs).unwrap(), vec![]);
    assert_eq!(st.trash_runs(None).unwrap(), vec![]);
    assert!(st.swap(Space::Company, "c", None, b"x").is_err());
    assert!(
        st.put_trash("t", &tag("r", "h", 1), &[trow("session", "1", "v")])
            .is_err()
    );
    assert!(st.purge(chrono::Utc::now()).is_err());
    assert_eq!(s.own_keys(), BTreeMap::new());
}

/// The removal and its trash are one script: what went is in the trash hash with its exact
/// bytes, what changed is in neither; the run is listed with its host from any host.
#[test]
fn remove_writes_the_trash_in_its_own_script_for_hashes_and_plain_keys() {
    let Some(mut s) = Scratch::new() else { return };
    // Hashes (Evolution).
    let layout = s.layout("evolution", ":instance:*");
    let h = format!("{}:instance:t", s.prefix);
    s.hset(&h, "session-1.0", &twice(r#"{"a":1}"#));
    s.hset(&h, "session-2.0", &twice(r#"{"b":2}"#));
    let mut store = s.store(&layout);
    assert!(store.trash_in_transaction());
    let mut st = store.shared_state(&opts(false)).unwrap().unwrap();
    assert_eq!(store.lock_tenant("t").unwrap(), TenantLock::Acquired);
    let t = tag("run-1", "host-a", 1_700_000_000);
    let out = store
        .remove(
            "t",
            &[
                planned("session", "1.0", r#"{"a":1}"#),
                planned("session", "2.0", r#"{"b":1}"#),
            ],
            &mut TrashTarget::InStore(&t),
        )
        .unwrap();
    assert!(matches!(out[0], RemoveOutcome::Removed { .. }));
    assert_eq!(out[1], RemoveOutcome::Changed);
    store.unlock_tenant("t");
    assert_eq!(s.hget(&h, "session-1.0"), None);
    let rows = st.trash_rows("t", "run-1").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].row, trow("session", "1.0", &twice(r#"{"a":1}"#)));
    let run = st.trash_runs(None).unwrap().remove(0);
    assert_eq!((run.host.as_str(), run.rows), ("host-a", 1));
    for (k, ttl) in s.own_keys() {
        if !k.ends_with(":version") {
            assert!(ttl > 3 * 86_400 - 60 && ttl <= 3 * 86_400, "{k}: {ttl}");
        }
    }
    // Put back from the trash (restore), then marked.
    assert_eq!(
        store.restore("t", &[rows[0].row.clone()]).unwrap(),
        vec![RestoreOutcome::Restored]
    );
    assert_eq!(s.hget(&h, "session-1.0"), Some(twice(r#"{"a":1}"#)));

    // Plain keys.
    let layout = s.layout("baileys-redis-auth-keys", "-*:");
    let key = format!("{}-sid:pre-key-7", s.prefix);
    for (k, v) in [
        (key.clone(), "{}"),
        (format!("{}-sid:pre-key-8", s.prefix), "[]"),
    ] {
        let _: () = redis::cmd("SET").arg(k).arg(v).query(&mut s.con).unwrap();
    }
    let mut store = s.store(&layout);
    let mut st = store.shared_state(&opts(false)).unwrap().unwrap();
    let t = tag("run-2", "host-b", 1_700_000_001);
    let out = store
        .remove(
            "sid",
            &[
                planned("pre-key", "7", "{}"),
                planned("pre-key", "8", "changed"),
            ],
            &mut TrashTarget::InStore(&t),
        )
        .unwrap();
    assert_eq!(
        out,
        vec![RemoveOutcome::Removed { bytes: 2 }, RemoveOutcome::Changed]
    );
    let gone: Option<String> = redis::cmd("GET").arg(&key).query(&mut s.con).unwrap();
    assert_eq!(gone, None);
    let rows = st.trash_rows("sid", "run-2").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].row, trow("pre-key", "7", "{}"));
    // The plain-key layout's state prefix is the pattern's text before the tenant.
    assert!(
        st.describe()
            .starts_with(&format!("keys {}-:janitor:* in redis://", s.prefix)),
        "{}",
        st.describe()
    );
}

/// The janitor's own hashes are never tenants, even under a pattern that matches them.
#[test]
fn the_janitors_keys_are_never_tenants() {
    let Some(mut s) = Scratch::new() else { return };
    let layout = s.layout("redis-hash", ":*");
    s.hset(&format!("{}:acct", s.prefix), "session-1.0", "{}");
    let mut store = s.store(&layout);
    let mut st = store.shared_state(&opts(false)).unwrap().unwrap();
    st.swap(Space::Company, "acct", None, b"{}").unwrap();
    st.put_trash("acct", &tag("r", "h", 1), &[trow("session", "2.0", "{}")])
        .unwrap();
    assert!(s.own_keys().len() >= 4);
    assert_eq!(store.tenants().unwrap(), vec!["acct"]);
}

#[test]
fn the_redis_shared_state_keeps_the_contract() {
    let Some(s) = Scratch::new() else { return };
    let layout = s.layout("evolution", ":instance:*");
    let store = s.store(&layout);
    crate::core::store::shared_contract::check(&mut || {
        store.shared_state(&opts(false)).unwrap().unwrap()
    });
}

/// A run whose keys expired is no run: not listed, and its index entry goes with the next purge
/// (counted as nothing purged: Redis already dropped its rows).
#[test]
fn an_expired_run_is_not_listed_and_its_index_entry_is_purged() {
    let Some(mut s) = Scratch::new() else { return };
    let layout = s.layout("evolution", ":instance:*");
    let mut st = s
        .store(&layout)
        .shared_state(&SharedOptions {
            trash_retention: Duration::from_secs(1),
            ..SharedOptions::default()
        })
        .unwrap()
        .unwrap();
    st.put_trash(
        "t",
        &tag("r", "h", 1_700_000_000),
        &[trow("session", "1.0", "v")],
    )
    .unwrap();
    assert_eq!(st.trash_runs(None).unwrap().len(), 1);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(st.trash_runs(None).unwrap(), vec![]);
    assert_eq!(st.trash_rows("t", "r").unwrap(), vec![]);
    // The index expired with its last run here; one kept alive by a newer run is purged.
    let mut keep = s.shared(&layout, false);
    keep.put_trash(
        "t",
        &tag("new", "h", 1_800_000_000),
        &[trow("session", "2.0", "w")],
    )
    .unwrap();
    let index = format!("{}:janitor:trash-runs", s.prefix);
    let _: i64 = redis::cmd("ZADD")
        .arg(&index)
        .arg(1)
        .arg("gone:run")
        .query(&mut s.con)
        .unwrap();
    assert_eq!(keep.trash_runs(None).unwrap().len(), 1);
    let cut = chrono::DateTime::from_timestamp(1_750_000_000, 0).unwrap();
    assert_eq!(keep.purge(cut).unwrap(), (0, 0));
    let left: Vec<String> = redis::cmd("ZRANGE")
        .arg(&index)
        .arg(0)
        .arg(-1)
        .query(&mut s.con)
        .unwrap();
    assert_eq!(left, vec!["t:new".to_owned()]);
}

/// After a scan, a removal sends the scanned values to its script with no round trip to read
/// the batch again; the script still keeps a field the app rewrote since and tells one it
/// removed apart (gone), with the trash in the script or before it, for hashes and plain keys.
#[test]
fn a_removal_after_a_scan_reads_nothing_again_and_keeps_what_the_app_changed_since() {
    let Some(mut s) = Scratch::new() else { return };
    let batch = [
        planned("session", "1.0", r#"{"a":1}"#),
        planned("session", "2.0", r#"{"b":1}"#),
        planned("session", "3.0", r#"{"c":1}"#),
    ];
    for in_store in [false, true] {
        // Hashes (Evolution).
        let layout = s.layout("evolution", ":instance:*");
        let h = format!("{}:instance:t{in_store}", s.prefix);
        let tenant = format!("t{in_store}");
        for (f, v) in [
            ("session-1.0", r#"{"a":1}"#),
            ("session-2.0", r#"{"b":1}"#),
            ("session-3.0", r#"{"c":1}"#),
        ] {
            s.hset(&h, f, &twice(v));
        }
        let mut store = s.store(&layout);
        let mut st = store.shared_state(&opts(false)).unwrap().unwrap();
        // A scan without the lock (a dry run, a count) keeps nothing.
        assert_eq!(rows(&mut store, &tenant).len(), 3);
        assert!(store.seen.values.is_empty());
        assert_eq!(store.lock_tenant(&tenant).unwrap(), TenantLock::Acquired);
        assert_eq!(rows(&mut store, &tenant).len(), 3);
        assert_eq!(store.seen.values.len(), 3);
        // After the scan: the app rewrites session 2 and removes session 3.
        s.hset(&h, "session-2.0", &twice(r#"{"b":2}"#));
        let _: i64 = redis::cmd("HDEL")
            .arg(&h)
            .arg("session-3.0")
            .query(&mut s.con)
            .unwrap();
        let t = tag(&format!("run-{in_store}"), "host-a", 1_700_000_000);
        let mut before = 0;
        let mut put = |rows: &[TrashRow]| {
            before += rows.len();
            Ok(())
        };
        let mut to = if in_store {
            TrashTarget::InStore(&t)
        } else {
            TrashTarget::Before(&mut put)
        };
        let out = store.remove(&tenant, &batch, &mut to).unwrap();
        assert_eq!(
            out,
            vec![
                RemoveOutcome::Removed {
                    bytes: twice(r#"{"a":1}"#).len() as u64
                },
                RemoveOutcome::Changed,
                RemoveOutcome::Vanished
            ],
            "in_store={in_store}"
        );
        assert_eq!(store.rereads, 0, "the batch was read again");
        assert_eq!(s.hget(&h, "session-1.0"), None);
        assert_eq!(s.hget(&h, "session-2.0"), Some(twice(r#"{"b":2}"#)));
        if in_store {
            let trashed = st.trash_rows(&tenant, "run-true").unwrap();
            assert_eq!(trashed.len(), 1, "only what the script removed");
            assert_eq!(trashed[0].row, trow("session", "1.0", &twice(r#"{"a":1}"#)));
        } else {
            assert_eq!(
                before, 3,
                "the trash before the script holds every candidate"
            );
        }
        // Another tenant's removal (no scan of it) reads its batch again, as before.
        let other = format!("{}:instance:o{in_store}", s.prefix);
        s.hset(&other, "session-1.0", &twice(r#"{"a":1}"#));
        let o = format!("o{in_store}");
        assert_eq!(store.lock_tenant(&o).unwrap(), TenantLock::Acquired);
        let out = store
            .remove(&o, &batch[..1], &mut TrashTarget::Nowhere)
            .unwrap();
        assert!(matches!(out[0], RemoveOutcome::Removed { .. }));
        assert_eq!(store.rereads, 1);
        store.unlock_tenant(&tenant);
        store.unlock_tenant(&o);

        // Plain keys.
        let layout = s.layout("baileys-redis-auth-keys", "-*:");
        let sid = format!("sid{in_store}");
        let key = |id: &str| format!("{}-{sid}:session-{id}", s.prefix);
        for (id, v) in [
            ("1.0", r#"{"a":1}"#),
            ("2.0", r#"{"b":1}"#),
            ("3.0", r#"{"c":1}"#),
        ] {
            let _: () = redis::cmd("SET")
                .arg(key(id))
                .arg(v)
                .query(&mut s.con)
                .unwrap();
        }
        let mut store = s.store(&layout);
        let _st = store.shared_state(&opts(false)).unwrap().unwrap();
        assert_eq!(store.lock_tenant(&sid).unwrap(), TenantLock::Acquired);
        assert_eq!(rows(&mut store, &sid).len(), 3);
        let _: () = redis::cmd("SET")
            .arg(key("2.0"))
            .arg(r#"{"b":2}"#)
            .query(&mut s.con)
            .unwrap();
        let _: i64 = redis::cmd("DEL").arg(key("3.0")).query(&mut s.con).unwrap();
        let mut put = |_: &[TrashRow]| Ok(());
        let mut to = if in_store {
            TrashTarget::InStore(&t)
        } else {
            TrashTarget::Before(&mut put)
        };
        let out = store.remove(&sid, &batch, &mut to).unwrap();
        assert_eq!(
            out,
            vec![
                RemoveOutcome::Removed { bytes: 7 },
                RemoveOutcome::Changed,
                RemoveOutcome::Vanished
            ],
            "plain keys, in_store={in_store}"
        );
        assert_eq!(store.rereads, 0);
        let kept: Option<String> = redis::cmd("GET").arg(key("2.0")).query(&mut s.con).unwrap();
        assert_eq!(kept.as_deref(), Some(r#"{"b":2}"#));
        store.unlock_tenant(&sid);
    }
}

#[test]
fn a_workers_handle_has_its_own_connection_and_locks_and_the_signal_handler_sees_them_all() {
    let Some(mut s) = Scratch::new() else { return };
    let layout = s.layout("evolution", ":instance:*");
    for t in ["a", "b"] {
        s.hset(
            &format!("{}:instance:{t}", s.prefix),
            "session-1.0",
            &twice("{}"),
        );
    }
    let mut first = s.store(&layout);
    let mut second = first
        .another()
        .unwrap()
        .expect("Redis gives workers handles");
    let lock_of = |s: &mut Scratch, t: &str| -> Option<String> {
        let key = first_lock_key(&layout, t);
        redis::cmd("GET").arg(key).query(&mut s.con).unwrap()
    };
    // The lock is the server's: the other handle finds the tenant busy.
    assert_eq!(first.lock_tenant("a").unwrap(), TenantLock::Acquired);
    assert!(matches!(
        second.lock_tenant("a").unwrap(),
        TenantLock::Busy(_)
    ));
    assert_eq!(second.lock_tenant("b").unwrap(), TenantLock::Acquired);
    // A handle never unlocks a lock another handle of the process took.
    second.unlock_tenant("a");
    assert!(
        lock_of(&mut s, "a").is_some(),
        "the second handle released the first's lock"
    );
    assert!(first.locks.get(&first_lock_key(&layout, "a")).is_some());
    // The signal handler (the first handle's) releases every handle's locks.
    let release = first.lock_releaser().unwrap();
    release();
    assert_eq!(lock_of(&mut s, "a"), None);
    assert_eq!(lock_of(&mut s, "b"), None);
    // And a handle dropped at the end of its worker releases only its own.
    assert_eq!(first.lock_tenant("a").unwrap(), TenantLock::Acquired);
    assert_eq!(second.lock_tenant("b").unwrap(), TenantLock::Acquired);
    drop(second);
    assert_eq!(lock_of(&mut s, "b"), None);
    assert!(
        lock_of(&mut s, "a").is_some(),
        "dropping a worker released the first's lock"
    );
    first.unlock_tenant("a");
    assert_eq!(lock_of(&mut s, "a"), None);
}

/// The lock key of tenant `t` as a store on `layout` names it.
fn first_lock_key(layout: &RedisLayout, t: &str) -> String {
    format!("baileys-janitor-lock:{{{}}}", layout.tenant_key(t))
}
