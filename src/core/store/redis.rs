//! Redis: Evolution API's one hash per instance (`<prefix>:instance:<id>`, fields `<type>-<id>`
//! with raw Baileys ids, values JSON-encoded twice, creds in PostgreSQL `"Session"` or in the
//! hash field `creds`), baileys-redis-auth's hash `<sid>:auth` or plain keys `<sid>:<key>`
//! (fields `<type>-<fixFileName(id)>`, values JSON-encoded once), and any hash or key pattern.
//!
//! Safety on a live server:
//! - a field is removed only by a Lua compare-and-delete (`HGET == planned value → HDEL`), one
//!   script per batch: Redis runs it atomically, so a field the app rewrote after planning survives,
//!   and the app waits at most one script (measured: `longest_transaction_us`);
//! - the same script first checks that our tenant lock still carries our token (fencing): a
//!   janitor whose lock expired and was taken by another host removes nothing;
//! - the tenant lock is `SET <lock> <token> NX PX`, released by compare-and-delete, so it holds
//!   across hosts and never outlives a crashed janitor by more than its expiry;
//! - removed fields are in the trash (fsync'd) before the script runs; restore uses `HSETNX` /
//!   `SET NX`, so a field written again since is never overwritten.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::{Connection, Value};

use super::shared::{SCHEMA_VERSION, SharedOptions, SharedState, TrashTag};
use super::spec::{redact_postgres, split_kv_key};
use super::{
    Planned, RawRow, RemoveOutcome, RestoreOutcome, Result, Store, StoreError, TenantLock,
    TrashRow, TrashTarget, fingerprint,
};

mod state;
use state::{Keys, RedisState, Scripts, row_field, schema_check, trash_run};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a tenant lock lives without a batch refreshing it.
pub const LOCK_TTL_MS: u64 = 120_000;
/// Fields asked for per `HSCAN` / `SCAN` round trip.
const SCAN_COUNT: usize = 500;
/// Nested values `MEMORY USAGE … SAMPLES` looks at per hash; keys sampled per plain-key tenant.
const MEMORY_SAMPLES: usize = 16;
/// Bytes of scanned values kept for the removal that follows (per tenant, the last scan's):
/// beyond them a batch is read again, as before.
const SEEN_BYTES: usize = 8 << 20;

/// The values the last scan under the tenant's lock read, as stored (field or key name → raw
/// value): a removal sends
/// them to its compare-and-delete script as they are, with no round trip to read the batch
/// again. The script still compares each with what Redis holds at that instant, so a value the
/// app rewrote since the scan survives, and one it removed is told apart ("gone").
#[derive(Default)]
struct Seen {
    tenant: String,
    values: HashMap<String, String>,
    bytes: usize,
}

impl Seen {
    fn reset(&mut self, tenant: &str) {
        self.tenant.clear();
        self.tenant.push_str(tenant);
        self.values.clear();
        self.bytes = 0;
    }

    fn keep(&mut self, name: String, raw: String) {
        let size = name.len() + raw.len();
        if self.bytes + size <= SEEN_BYTES {
            self.bytes += size;
            self.values.insert(name, raw);
        }
    }

    fn get(&self, tenant: &str, name: &str) -> Option<&str> {
        if self.tenant != tenant {
            return None;
        }
        self.values.get(name).map(String::as_str)
    }
}

/// Text read from Redis as the scan hands it on: as is, or lossily where it is not UTF-8.
fn lossy(
    read: &std::result::Result<String, std::string::FromUtf8Error>,
) -> std::borrow::Cow<'_, str> {
    match read {
        Ok(s) => std::borrow::Cow::Borrowed(s.as_str()),
        Err(e) => String::from_utf8_lossy(e.as_bytes()),
    }
}

/// Where a layout keeps a tenant's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One hash per tenant, named `<prefix><tenant><suffix>`; one field per key.
    Hash,
    /// One string key per Baileys key, named `<prefix><tenant><suffix><key>`.
    Keys,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisLayout {
    pub name: String,
    pub shape: Shape,
    /// The key pattern around the tenant: `evolution-cache:instance:` + `*` + ``.
    pub prefix: String,
    pub suffix: String,
    /// Values are a JSON string holding the JSON text (Evolution API).
    pub double_json: bool,
    /// The field (or key name) of the creds.
    pub creds_key: String,
    /// Evolution API: creds in `"Session"`, instance names and orphans from `"Instance"`.
    pub evolution: bool,
    /// Evolution with no prefix configured: the other prefix Evolution deployments use
    /// (`evolution`, its `.env.example`), tried when the code default holds no instance.
    pub fallback_prefix: Option<String>,
}

impl RedisLayout {
    pub const PRESETS: [&'static str; 5] = [
        "evolution",
        "baileys-redis-auth",
        "baileys-redis-auth-keys",
        "redis-hash",
        "redis-keys",
    ];

    pub fn preset(name: &str) -> Option<RedisLayout> {
        let l = |shape, pattern: &str, double_json, evolution| {
            let (prefix, suffix) = pattern.split_once('*').expect("preset pattern has a *");
            RedisLayout {
                name: name.to_owned(),
                shape,
                prefix: prefix.into(),
                suffix: suffix.into(),
                double_json,
                creds_key: "creds".into(),
                evolution,
                fallback_prefix: evolution.then(|| "evolution:instance:".to_owned()),
            }
        };
        Some(match name {
            // CACHE_REDIS_PREFIX_KEY defaults to `evolution-cache` in Evolution's code (its
            // example env sets `evolution`: pass --key-pattern 'evolution:instance:*' then).
            "evolution" => l(Shape::Hash, "evolution-cache:instance:*", true, true),
            "baileys-redis-auth" | "redis-hash" => l(Shape::Hash, "*:auth", false, false),
            "baileys-redis-auth-keys" | "redis-keys" => l(Shape::Keys, "*:", false, false),
            _ => return None,
        })
    }

    /// Sets the key pattern: one `*` where the tenant is.
    pub fn with_pattern(mut self, pattern: &str) -> std::result::Result<RedisLayout, String> {
        let mut parts = pattern.split('*');
        let (Some(prefix), Some(suffix), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "key pattern {pattern:?} must contain exactly one * (where the tenant is), e.g. 'evolution-cache:instance:*' or '*:auth'"
            ));
        };
        if self.shape == Shape::Keys && suffix.is_empty() {
            return Err(format!(
                "key pattern {pattern:?}: plain keys need a separator after the * (e.g. '*:')"
            ));
        }
        self.prefix = prefix.into();
        self.suffix = suffix.into();
        self.fallback_prefix = None;
        Ok(self)
    }

    /// Evolution's `CACHE_REDIS_PREFIX_KEY`: hashes are `<prefix>:instance:<id>`.
    pub fn with_evolution_prefix(self, prefix: &str) -> std::result::Result<RedisLayout, String> {
        if prefix.contains('*') || prefix.is_empty() {
            return Err(format!(
                "CACHE_REDIS_PREFIX_KEY {prefix:?}: must be non-empty, without *"
            ));
        }
        self.with_pattern(&format!("{prefix}:instance:*"))
    }

    pub fn pattern(&self) -> String {
        format!("{}*{}", self.prefix, self.suffix)
    }

    /// The prefix of the janitor's own keys (`<prefix>:janitor:`): Evolution's prefix, or the
    /// key pattern's text before the tenant; `baileys-janitor` when that is empty (`*:auth`).
    /// Never derived from the URL: two hosts may name one server differently.
    pub fn state_prefix(&self) -> String {
        let p = if self.evolution {
            self.prefix
                .strip_suffix(":instance:")
                .unwrap_or(&self.prefix)
        } else {
            &self.prefix
        };
        match p.trim_end_matches(':') {
            "" => "baileys-janitor".to_owned(),
            p => p.to_owned(),
        }
    }

    pub fn describe(&self) -> String {
        format!("{}, {}", self.name, self.pattern())
    }

    /// The hash of a tenant (hash shape) or the prefix of its keys (keys shape).
    pub fn tenant_key(&self, tenant: &str) -> String {
        format!("{}{tenant}{}", self.prefix, self.suffix)
    }

    /// The tenant a Redis key belongs to, and for plain keys the key name after the separator.
    pub fn split<'a>(&self, key: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = key.strip_prefix(self.prefix.as_str())?;
        let (tenant, name) = match self.shape {
            Shape::Hash => (rest.strip_suffix(self.suffix.as_str())?, ""),
            Shape::Keys => {
                let (t, n) = rest.rsplit_once(self.suffix.as_str())?;
                if n != self.creds_key && split_kv_key(n).is_none() {
                    return None;
                }
                (t, n)
            }
        };
        (!tenant.is_empty()).then_some((tenant, name))
    }

    /// The SCAN pattern that finds every tenant's hash (or every key of every tenant).
    fn scan_glob(&self) -> String {
        match self.shape {
            Shape::Hash => format!(
                "{}*{}",
                glob_escape(&self.prefix),
                glob_escape(&self.suffix)
            ),
            Shape::Keys => format!(
                "{}*{}*",
                glob_escape(&self.prefix),
                glob_escape(&self.suffix)
            ),
        }
    }

    fn decode<'a>(&self, raw: &'a str) -> std::borrow::Cow<'a, str> {
        if self.double_json
            && let Ok(inner) = serde_json::from_str::<String>(raw)
        {
            return inner.into();
        }
        raw.into()
    }
}

fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Checks a Redis connection string without echoing it (it may hold a password).
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    redis::Client::open(url).map(|_| ()).map_err(|_| {
        "store: the redis connection string is not valid (expected redis://[user[:password]@]host[:port][/db])".to_string()
    })
}

/// `redis://user@host:port/db`: the target without password or query.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "redis://(invalid)".into();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let shown = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if user.is_empty() {
                host.to_owned()
            } else {
                format!("{user}@{host}")
            }
        }
        None => authority.to_owned(),
    };
    format!("{scheme}://{shown}{path}")
}

/// Who holds a lock, from its token (`<app> pid <pid> <random>`): the random part stays hidden.
fn holder_of(token: &str) -> String {
    if let Some((who, _)) = token.split_once(" start ") {
        return who.to_owned();
    }
    match token.rsplit_once(' ') {
        Some((who, _)) if !who.is_empty() => who.to_owned(),
        _ => "another janitor".into(),
    }
}

/// Removes fields whose value is still the planned one, after checking our lock (fencing).
/// KEYS[1] hash, KEYS[2] lock; ARGV[1] lock token ('' = none), ARGV[2] lock ttl ms, then
/// field/value pairs. Returns per field 1 (removed), 0 (changed) or 2 (gone): the values come
/// from the scan (the batch is not read again first), so "gone" is told apart here.
const CAS_HDEL: &str = r"
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('BJFENCE tenant lock lost')
end
local out = {}
for i = 3, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    out[#out + 1] = 1
  elseif cur then
    out[#out + 1] = 0
  else
    out[#out + 1] = 2
  end
end
if ARGV[1] ~= '' then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return out
";

/// The same for plain keys: KEYS[1] lock, KEYS[2..] the keys; ARGV[1] token, ARGV[2] ttl,
/// ARGV[3..] the planned values in KEYS order.
const CAS_DEL: &str = r"
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('BJFENCE tenant lock lost')
end
local out = {}
for i = 2, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  if cur == ARGV[i + 1] then
    redis.call('DEL', KEYS[i])
    out[#out + 1] = 1
  elseif cur then
    out[#out + 1] = 0
  else
    out[#out + 1] = 2
  end
end
if ARGV[1] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return out
";

/// [`CAS_HDEL`] with the trash in the same script (issue 23): each field still holding its
/// planned value is written to the run's trash hash, then deleted, atomically. KEYS: 1 hash,
/// 2 lock, 3 trash rows, 4 trash meta, 5 trash index, 6 schema version; ARGV: 1 token, 2 ttl,
/// 3 schema version, 4..10 the run (`state::trash_run`), 11.. (field, value, trash field).
const CAS_HDEL_TRASH: &str = concat!(
    "local VK, VA, TR, TM, TI, TA = 6, 3, 3, 4, 5, 4\n",
    r"
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('BJFENCE tenant lock lost')
end
",
    schema_check!(),
    trash_run!(),
    r"
local out = {}
for i = 11, #ARGV, 3 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur == ARGV[i + 1] then
    trash_row(ARGV[i + 2], ARGV[i + 1])
    redis.call('HDEL', KEYS[1], ARGV[i])
    out[#out + 1] = 1
  elseif cur then
    out[#out + 1] = 0
  else
    out[#out + 1] = 2
  end
end
finish_run()
if ARGV[1] ~= '' then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return out
",
);

/// The same for plain keys. KEYS: 1 lock, 2 trash rows, 3 meta, 4 index, 5 schema version,
/// 6.. the keys; ARGV as [`CAS_HDEL_TRASH`], 11.. (value, trash field) in KEYS order.
const CAS_DEL_TRASH: &str = concat!(
    "local VK, VA, TR, TM, TI, TA = 5, 3, 2, 3, 4, 4\n",
    r"
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('BJFENCE tenant lock lost')
end
",
    schema_check!(),
    trash_run!(),
    r"
local out = {}
for i = 6, #KEYS do
  local j = 11 + (i - 6) * 2
  local cur = redis.call('GET', KEYS[i])
  if cur == ARGV[j] then
    trash_row(ARGV[j + 1], ARGV[j])
    redis.call('DEL', KEYS[i])
    out[#out + 1] = 1
  elseif cur then
    out[#out + 1] = 0
  else
    out[#out + 1] = 2
  end
end
finish_run()
if ARGV[1] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return out
",
);

/// KEYS[1] lock; ARGV[1] the dead holder's value, ARGV[2] ours, ARGV[3] ttl ms.
const TAKE_OVER: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Facts `status` shows beside a tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub keys: u64,
    pub bytes: u64,
}

pub struct RedisStore {
    con: Connection,
    io_timeout: Duration,
    target: String,
    layout: RedisLayout,
    /// Evolution: the PostgreSQL database holding `"Session"` and `"Instance"`.
    pg: Option<postgres::Client>,
    pg_target: String,
    /// Evolution: instance id → name, from `"Instance"` (when `pg` is set).
    instances: Option<HashMap<String, String>>,
    app: String,
    /// Lock key → our token.
    locks: HeldLocks,
    /// A client for a second connection: a signal handler releases the locks through it, and a
    /// removal that stalled is checked through it (the stalled one may still answer late).
    client: redis::Client,
    transport: super::tls::Transport,
    /// How the `--creds` PostgreSQL connection turned out.
    pg_transport: Option<super::tls::Transport>,
    /// The Evolution prefix was not configured and the fallback one holds the instances.
    prefix_found: bool,
    /// How long trash keys written by [`Store::remove`] live: `trash.retention`, as the last
    /// [`Store::shared_state`] was opened with (seconds).
    retention_s: AtomicU64,
    /// Removal scripts, run by their SHA1.
    scripts: Scripts,
    /// What the last scan read, for the removal that follows.
    seen: Seen,
    /// Batches (or parts) read again before their script because the scan's values were not
    /// kept: a test sees the round trip saved.
    rereads: usize,
}

/// The locks the process's handles on a store hold (key → the handle that took it, our token),
/// shared with a signal handler that releases them all through a connection of its own when
/// the process is told to stop. Each `--jobs` worker's handle ([`HeldLocks::another`]) sees,
/// releases and drops only its own: one worker never unlocks a tenant another is cleaning, nor
/// the store-wide lock the first handle holds.
#[derive(Clone, Default)]
pub struct HeldLocks {
    map: std::sync::Arc<std::sync::Mutex<HashMap<String, (u64, String)>>>,
    owner: u64,
}

impl HeldLocks {
    /// The same map for another handle of this process, under an owner of its own.
    fn another(&self) -> HeldLocks {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        HeldLocks {
            map: self.map.clone(),
            owner: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, (u64, String)>) -> T) -> T {
        // A poisoned map is still the truth about what we hold.
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut m)
    }

    fn insert(&self, key: String, token: String) {
        self.with(|m| m.insert(key, (self.owner, token)));
    }

    fn get(&self, key: &str) -> Option<String> {
        self.with(|m| {
            m.get(key)
                .filter(|(o, _)| *o == self.owner)
                .map(|(_, t)| t.clone())
        })
    }

    fn remove(&self, key: &str) -> Option<String> {
        self.with(|m| match m.get(key) {
            Some((o, _)) if *o == self.owner => m.remove(key).map(|(_, t)| t),
            _ => None,
        })
    }

    /// This handle's locks, forgotten here.
    fn take(&self) -> HashMap<String, String> {
        self.with(|m| {
            m.extract_if(|_, (o, _)| *o == self.owner)
                .map(|(k, (_, t))| (k, t))
                .collect()
        })
    }

    /// Every handle's locks (the signal handler's).
    fn take_all(&self) -> HashMap<String, String> {
        self.with(|m| {
            std::mem::take(m)
                .into_iter()
                .map(|(k, (_, t))| (k, t))
                .collect()
        })
    }
}

/// Releases every lock still held by any handle, on a fresh connection (each only if still ours).
fn release_on(client: &redis::Client, held: &HeldLocks) {
    let locks = held.take_all();
    if locks.is_empty() {
        return;
    }
    let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
        return;
    };
    let _ = con.set_read_timeout(Some(Duration::from_secs(2)));
    for (key, token) in locks {
        let _: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(UNLOCK)
            .arg(1)
            .arg(&key)
            .arg(&token)
            .query(&mut con);
    }
}

/// Every lock is released when the store goes, whatever the exit path (an error, a return, a
/// panic that unwinds): the trigger's store-wide lock outlived its process before (issue 22).
impl Drop for RedisStore {
    fn drop(&mut self) {
        self.release_all();
    }
}

impl RedisStore {
    pub fn connect(
        url: &str,
        layout: &RedisLayout,
        creds_url: Option<&str>,
        app: &str,
    ) -> Result<RedisStore> {
        let target = redact_url(url);
        let (client, transport) = super::tls::redis_client(url).map_err(StoreError::Schema)?;
        let secret = password_of(url);
        let host = match &client.get_connection_info().addr {
            redis::ConnectionAddr::Tcp(h, _) | redis::ConnectionAddr::TcpTls { host: h, .. } => {
                h.clone()
            }
            _ => target.clone(),
        };
        let clean = |e: &redis::RedisError| {
            super::tls::describe_redis_error(&host, e)
                .unwrap_or_else(|| scrub(&e.to_string(), secret.as_deref()))
        };
        let mut con = client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot connect to {target}: {}", clean(&e)))
            })?;
        let _ = con.set_read_timeout(Some(IO_TIMEOUT));
        let _ = con.set_write_timeout(Some(IO_TIMEOUT));
        redis::cmd("PING")
            .query::<String>(&mut con)
            .map_err(|e| StoreError::Unavailable(format!("{target}: {}", clean(&e))))?;
        let mut store = RedisStore {
            con,
            io_timeout: IO_TIMEOUT,
            target,
            layout: layout.clone(),
            pg: None,
            pg_target: String::new(),
            instances: None,
            app: app.to_owned(),
            locks: HeldLocks::default(),
            client: client.clone(),
            transport,
            pg_transport: None,
            prefix_found: false,
            retention_s: AtomicU64::new(SharedOptions::default().trash_retention.as_secs()),
            scripts: Scripts::new(),
            seen: Seen::default(),
            rereads: 0,
        };
        store.pick_prefix()?;
        if let Some(c) = creds_url {
            store.connect_pg(c)?;
        }
        Ok(store)
    }

    /// Evolution without a configured prefix: its code default is `evolution-cache`, its
    /// `.env.example` says `evolution`. Use the one that holds instances; both is ambiguous
    /// (two Evolution deployments on one Redis?) and refused.
    fn pick_prefix(&mut self) -> Result<()> {
        let Some(alt) = self.layout.fallback_prefix.take() else {
            return Ok(());
        };
        if !self.tenants()?.is_empty() {
            let mut other = self.layout.clone();
            other.prefix = alt;
            let default = std::mem::replace(&mut self.layout, other);
            let alt_used = !self.tenants()?.is_empty();
            let alt_prefix = std::mem::replace(&mut self.layout, default).prefix;
            if alt_used {
                return Err(StoreError::Schema(format!(
                    "{}: instances under both {}* and {alt_prefix}*: set CACHE_REDIS_PREFIX_KEY (or --key-pattern) to the one this Evolution API uses",
                    self.target, self.layout.prefix
                )));
            }
            return Ok(());
        }
        let default_prefix = std::mem::replace(&mut self.layout.prefix, alt);
        if self.tenants()?.is_empty() {
            self.layout.prefix = default_prefix;
        } else {
            self.prefix_found = true;
            tracing::info!(
                prefix = %self.layout.prefix,
                "no instance under {default_prefix}*: using Evolution's .env.example prefix"
            );
        }
        Ok(())
    }

    fn connect_pg(&mut self, url: &str) -> Result<()> {
        let target = redact_postgres(url);
        let (mut client, transport) =
            super::tls::connect_postgres(url, &target, &self.app, CONNECT_TIMEOUT).map_err(
                |e| match e {
                    StoreError::Schema(m) => StoreError::Schema(format!("--creds: {m}")),
                    other => other,
                },
            )?;
        tracing::info!(creds = %target, connection = %transport, "connected");
        self.pg_transport = Some(transport);
        if self.layout.evolution {
            for (table, cols) in [
                ("Session", "\"sessionId\", creds"),
                ("Instance", "id, name"),
            ] {
                client
                    .query(&format!("SELECT {cols} FROM \"{table}\" LIMIT 0"), &[])
                    .map_err(|e| {
                        StoreError::Schema(format!(
                            "{target}: cannot read Evolution API's \"{table}\" table ({}): is --creds the Evolution database?",
                            pg_message(&e)
                        ))
                    })?;
            }
            let rows = client
                .query("SELECT id::text, name::text FROM \"Instance\"", &[])
                .map_err(|e| StoreError::Query(format!("{target}: {}", pg_message(&e))))?;
            self.instances = Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect());
        } else {
            return Err(StoreError::Schema(format!(
                "--creds is only used by the evolution layout (layout {} keeps creds in Redis)",
                self.layout.name
            )));
        }
        self.pg = Some(client);
        self.pg_target = target;
        Ok(())
    }

    fn err(&self, e: redis::RedisError) -> StoreError {
        StoreError::Query(format!("{}: {}", self.target, e))
    }

    /// The key names of the janitor's state on this server.
    fn state_keys(&self) -> Keys {
        Keys::new(&self.layout.state_prefix())
    }

    /// A removal script's trash keys (rows, meta, index, version) and run arguments (schema
    /// version, retention, index member, score, tenant, run, host, removed_at).
    fn trash_run(&self, tenant: &str, tag: &TrashTag) -> TrashRunArgs {
        let k = self.state_keys();
        let t = k.trash(tenant, &tag.run_id);
        TrashRunArgs {
            keys: [t.rows, t.meta, k.trash_index(), k.version()],
            args: [
                SCHEMA_VERSION.to_string(),
                self.retention_s.load(Ordering::Relaxed).to_string(),
                Keys::member(tenant, &tag.run_id),
                state::score(tag.removed_at).to_string(),
                tenant.to_owned(),
                tag.run_id.clone(),
                tag.host.clone(),
                state::stamp(tag.removed_at),
            ],
        }
    }

    fn lock_key(&self, tenant: Option<&str>) -> String {
        match tenant {
            // A hash tag of the tenant's hash: the lock lives in the same cluster slot.
            Some(t) => format!("baileys-janitor-lock:{{{}}}", self.layout.tenant_key(t)),
            None => format!("baileys-janitor-lock:global:{}", self.layout.pattern()),
        }
    }

    fn try_lock(&mut self, key: String) -> Result<TenantLock> {
        let host = crate::core::util::hostname();
        let token = super::holder::Holder::me(&host).token(&self.app, random_u64());
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(LOCK_TTL_MS)
            .query(&mut self.con)
            .map_err(|e| self.err(e))?;
        if set.is_some() {
            self.locks.insert(key, token);
            return Ok(TenantLock::Acquired);
        }
        let held: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query(&mut self.con)
            .unwrap_or(None);
        // A holder on this host whose process is gone cannot release: take its lock over, in
        // one compare-and-set so two janitors racing for it cannot both win.
        if let Some(old) = &held
            && super::holder::Holder::parse(old).is_some_and(|h| h.is_gone(&host))
        {
            let swapped: i64 = redis::cmd("EVAL")
                .arg(TAKE_OVER)
                .arg(1)
                .arg(&key)
                .arg(old)
                .arg(&token)
                .arg(LOCK_TTL_MS)
                .query(&mut self.con)
                .map_err(|e| self.err(e))?;
            if swapped == 1 {
                tracing::info!(lock = %key, holder = %holder_of(old), "took over a lock whose holder is gone");
                self.locks.insert(key, token);
                return Ok(TenantLock::Acquired);
            }
        }
        Ok(TenantLock::Busy(held.map_or_else(
            || "another janitor".into(),
            |t| holder_of(&t),
        )))
    }

    /// Releases every lock this connection still holds (each only if still ours).
    fn release_all(&mut self) {
        for (key, token) in self.locks.take() {
            let _: redis::RedisResult<i64> = redis::cmd("EVAL")
                .arg(UNLOCK)
                .arg(1)
                .arg(&key)
                .arg(&token)
                .query(&mut self.con);
        }
    }

    /// Keys, and bytes as `MEMORY USAGE` estimates them (sampled), for `status` and metrics.
    pub fn usage(&mut self, tenant: &str) -> Result<Usage> {
        match self.layout.shape {
            Shape::Hash => {
                let key = self.layout.tenant_key(tenant);
                let keys: u64 = redis::cmd("HLEN")
                    .arg(&key)
                    .query(&mut self.con)
                    .map_err(|e| self.err(e))?;
                let bytes: Option<u64> = redis::cmd("MEMORY")
                    .arg("USAGE")
                    .arg(&key)
                    .arg("SAMPLES")
                    .arg(MEMORY_SAMPLES)
                    .query(&mut self.con)
                    .map_err(|e| self.err(e))?;
                Ok(Usage {
                    keys,
                    bytes: bytes.unwrap_or(0),
                })
            }
            Shape::Keys => {
                let mut names = Vec::new();
                self.tenant_keys(tenant, &mut |k, _| names.push(k.to_owned()))?;
                let step = (names.len() / MEMORY_SAMPLES).max(1);
                let mut sampled = 0u64;
                let mut n = 0u64;
                for k in names.iter().step_by(step).take(MEMORY_SAMPLES) {
                    let b: Option<u64> = redis::cmd("MEMORY")
                        .arg("USAGE")
                        .arg(k)
                        .query(&mut self.con)
                        .map_err(|e| self.err(e))?;
                    sampled += b.unwrap_or(0);
                    n += 1;
                }
                let keys = names.len() as u64;
                Ok(Usage {
                    keys,
                    bytes: (sampled * keys).checked_div(n).unwrap_or(0),
                })
            }
        }
    }

    /// The Evolution instance's name, from `"Instance"` (needs `--creds`).
    pub fn instance_name(&self, tenant: &str) -> Option<String> {
        self.instances.as_ref()?.get(tenant).cloned()
    }

    /// An Evolution hash whose instance id has no `"Instance"` row: the instance was deleted.
    /// `None` when that cannot be told (no `--creds`, or not Evolution).
    pub fn is_orphan(&self, tenant: &str) -> Option<bool> {
        Some(!self.instances.as_ref()?.contains_key(tenant))
    }

    /// Every plain key of a tenant: (full key, key name).
    fn tenant_keys(&mut self, tenant: &str, f: &mut dyn FnMut(&str, &str)) -> Result<()> {
        let glob = format!(
            "{}*",
            glob_escape(&format!(
                "{}{tenant}{}",
                self.layout.prefix, self.layout.suffix
            ))
        );
        let own = self.state_keys().ns;
        let mut seen = HashSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&glob)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .arg("TYPE")
                .arg("string")
                .query(&mut self.con)
                .map_err(|e| self.err(e))?;
            for k in keys {
                if let Some((t, name)) = self.layout.split(&k)
                    && t == tenant
                    && !k.starts_with(&own)
                    && seen.insert(k.clone())
                {
                    f(&k, name);
                }
            }
            cursor = next;
            if cursor == 0 {
                return Ok(());
            }
        }
    }

    fn run_script(
        &mut self,
        script: &'static str,
        keys: &[String],
        args: &[&[u8]],
    ) -> std::result::Result<Vec<i64>, ScriptError> {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let ran = self
            .scripts
            .eval::<Vec<i64>>(&mut self.con, script, &keys, args);
        ran.map_err(|e| {
            if e.to_string().contains("BJSCHEMA") {
                ScriptError::Refused(state::script_error(&self.target, &self.state_keys(), e))
            } else if e.to_string().contains("BJFENCE") {
                ScriptError::Refused(StoreError::Query(format!(
                    "{}: the tenant lock expired and is held by someone else: batch not removed",
                    self.target
                )))
            } else if e.is_timeout() || e.is_io_error() || e.is_connection_dropped() {
                // The script may have run, may run late, or may never run.
                ScriptError::Unknown(format!("{}: {e}", self.target))
            } else {
                ScriptError::Refused(self.err(e))
            }
        })
    }

    /// Sets how long a command may take (tests use a short one to provoke a stall).
    #[cfg(test)]
    pub fn set_io_timeout(&mut self, timeout: Duration) {
        self.io_timeout = timeout;
        let _ = self.con.set_read_timeout(Some(timeout));
        let _ = self.con.set_write_timeout(Some(timeout));
    }

    /// After a removal script stalled: a fresh connection (the old one may still deliver a late
    /// answer) reads each field again. Gone → removed (it is in the trash); anything else →
    /// unknown: the script may still run, so it is never reported as "left in place".
    fn verify_after_stall(
        &mut self,
        names: &[String],
        hash: &str,
        doomed: &[(usize, String)],
        why: &str,
        out: &mut [RemoveOutcome],
    ) {
        let fresh = self
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT.min(self.io_timeout))
            .map_err(|e| e.to_string());
        let mut con = match fresh {
            Ok(c) => c,
            Err(e) => {
                for (i, _) in doomed {
                    out[*i] =
                        RemoveOutcome::Unknown(format!("{why}; could not reconnect to check: {e}"));
                }
                return;
            }
        };
        let _ = con.set_read_timeout(Some(self.io_timeout));
        let _ = con.set_write_timeout(Some(self.io_timeout));
        for (i, raw) in doomed {
            let read: redis::RedisResult<Option<Vec<u8>>> = match self.layout.shape {
                Shape::Hash => redis::cmd("HGET").arg(hash).arg(&names[*i]).query(&mut con),
                Shape::Keys => redis::cmd("GET")
                    .arg(format!("{hash}{}", names[*i]))
                    .query(&mut con),
            };
            out[*i] = match read {
                Ok(None) => RemoveOutcome::Removed {
                    bytes: raw.len() as u64,
                },
                Ok(Some(_)) => RemoveOutcome::Unknown(format!(
                    "{why}; still in place when checked, but the removal may still run"
                )),
                Err(e) => RemoveOutcome::Unknown(format!("{why}; the check failed too: {e}")),
            };
        }
        // The stalled connection is not used again.
        self.con = con;
    }
}

/// What a removal script needs to write the trash: see [`CAS_HDEL_TRASH`].
struct TrashRunArgs {
    keys: [String; 4],
    args: [String; 8],
}

/// How a removal script ended when it did not answer with results.
enum ScriptError {
    /// Redis refused it: nothing was removed.
    Refused(StoreError),
    /// No answer in time or the connection broke: it may or may not have run.
    Unknown(String),
}

fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => e.to_string(),
    }
}

fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let pass = userinfo.split_once(':')?.1;
    (!pass.is_empty()).then(|| pass.to_owned())
}

fn scrub(msg: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) => msg.replace(s, "***"),
        None => msg.to_owned(),
    }
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

fn utf8(v: Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

impl Store for RedisStore {
    fn tenants(&mut self) -> Result<Vec<String>> {
        let glob = self.layout.scan_glob();
        let kind = match self.layout.shape {
            Shape::Hash => "hash",
            Shape::Keys => "string",
        };
        // The janitor's own keys are never a tenant, whatever the pattern matches.
        let own = self.state_keys().ns;
        let mut out = BTreeSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&glob)
                .arg("COUNT")
                .arg(SCAN_COUNT * 2)
                .arg("TYPE")
                .arg(kind)
                .query(&mut self.con)
                .map_err(|e| self.err(e))?;
            for k in keys {
                let Ok(k) = String::from_utf8(k) else {
                    continue;
                };
                if k.starts_with(&own) {
                    continue;
                }
                if let Some((t, _)) = self.layout.split(&k) {
                    out.insert(t.to_owned());
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        Ok(out.into_iter().collect())
    }

    fn creds(&mut self, tenant: &str) -> Result<Option<Vec<u8>>> {
        let raw: Option<String> = if let Some(pg) = self.pg.as_mut() {
            let rows = pg
                .query(
                    "SELECT creds FROM \"Session\" WHERE \"sessionId\" = $1",
                    &[&tenant],
                )
                .map_err(|e| {
                    StoreError::Query(format!("{}: {}", self.pg_target, pg_message(&e)))
                })?;
            rows.first().and_then(|r| r.get::<_, Option<String>>(0))
        } else {
            let key = self.layout.tenant_key(tenant);
            let v: Option<Vec<u8>> = match self.layout.shape {
                Shape::Hash => redis::cmd("HGET")
                    .arg(&key)
                    .arg(&self.layout.creds_key)
                    .query(&mut self.con),
                Shape::Keys => redis::cmd("GET")
                    .arg(format!("{key}{}", self.layout.creds_key))
                    .query(&mut self.con),
            }
            .map_err(|e| self.err(e))?;
            // Not UTF-8: handed on as it is, so the creds show as corrupt and nothing is removed.
            match v {
                Some(b) => match String::from_utf8(b) {
                    Ok(s) => Some(s),
                    Err(e) => return Ok(Some(e.into_bytes())),
                },
                None => None,
            }
        };
        // Evolution's "Session".creds is JSON.stringify(JSON.stringify(creds, replacer)), and its
        // Redis-only creds field the same: one decoding gives the creds.json text.
        let double = self.layout.double_json || self.pg.is_some();
        Ok(raw.map(|r| {
            if double {
                serde_json::from_str::<String>(&r).unwrap_or(r).into_bytes()
            } else {
                r.into_bytes()
            }
        }))
    }

    /// Hashes: `HLEN` (the creds field counts as creds.json does), plus the creds row when
    /// creds live in PostgreSQL. Plain keys: counted by the scan.
    fn count(&mut self, tenant: &str) -> Result<usize> {
        if self.layout.shape == Shape::Keys {
            let mut n = usize::from(self.creds(tenant)?.is_some());
            self.scan(tenant, &mut |_| n += 1)?;
            return Ok(n);
        }
        let keys: usize = redis::cmd("HLEN")
            .arg(self.layout.tenant_key(tenant))
            .query(&mut self.con)
            .map_err(|e| self.err(e))?;
        let pg_creds = self.pg.is_some() && self.creds(tenant)?.is_some();
        Ok(keys + usize::from(pg_creds))
    }

    fn scan(&mut self, tenant: &str, f: &mut dyn FnMut(RawRow<'_>)) -> Result<()> {
        let layout = self.layout.clone();
        let emit = |name: &str, raw: &str, f: &mut dyn FnMut(RawRow<'_>)| {
            if name == layout.creds_key {
                return;
            }
            let value = layout.decode(raw);
            let (key_type, id) = split_kv_key(name).unwrap_or(("", name));
            f(RawRow {
                key_type,
                id,
                value: &value,
                updated_at_us: None,
                size: None,
            });
        };
        // Only a run that holds the tenant's lock removes after its scan: a dry run, a count or
        // `status` keeps nothing (no memory, no work).
        let keep = self.locks.get(&self.lock_key(Some(tenant))).is_some();
        self.seen.reset(tenant);
        match self.layout.shape {
            Shape::Hash => {
                let key = self.layout.tenant_key(tenant);
                // HSCAN may return a field twice while the hash is rehashed: each once. A hash
                // read in one call (the usual size) cannot repeat one: no set to keep then.
                let mut seen: HashSet<Vec<u8>> = HashSet::new();
                let mut cursor: u64 = 0;
                loop {
                    let (next, flat): (u64, Vec<Vec<u8>>) = redis::cmd("HSCAN")
                        .arg(&key)
                        .arg(cursor)
                        .arg("COUNT")
                        .arg(SCAN_COUNT)
                        .query(&mut self.con)
                        .map_err(|e| self.err(e))?;
                    let one_call = cursor == 0 && next == 0;
                    let mut it = flat.into_iter();
                    while let (Some(field), Some(value)) = (it.next(), it.next()) {
                        if !one_call && !seen.insert(field.clone()) {
                            continue;
                        }
                        match (String::from_utf8(field), String::from_utf8(value)) {
                            (Ok(name), Ok(raw)) => {
                                emit(&name, &raw, f);
                                if keep {
                                    self.seen.keep(name, raw);
                                }
                            }
                            // Not UTF-8: never kept, so the removal reads it again (and keeps it).
                            (name, value) => emit(&lossy(&name), &lossy(&value), f),
                        }
                    }
                    cursor = next;
                    if cursor == 0 {
                        return Ok(());
                    }
                }
            }
            Shape::Keys => {
                let mut names: Vec<(String, String)> = Vec::new();
                self.tenant_keys(tenant, &mut |k, n| names.push((k.to_owned(), n.to_owned())))?;
                for chunk in names.chunks(SCAN_COUNT) {
                    let mut cmd = redis::cmd("MGET");
                    for (k, _) in chunk {
                        cmd.arg(k);
                    }
                    let values: Vec<Option<Vec<u8>>> =
                        cmd.query(&mut self.con).map_err(|e| self.err(e))?;
                    for ((_, name), v) in chunk.iter().zip(values) {
                        match v.map(String::from_utf8) {
                            Some(Ok(raw)) => {
                                emit(name, &raw, f);
                                if keep {
                                    self.seen.keep(name.clone(), raw);
                                }
                            }
                            Some(Err(e)) => emit(name, &lossy(&Err(e)), f),
                            None => {}
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn remove(
        &mut self,
        tenant: &str,
        batch: &[Planned],
        trash_to: &mut TrashTarget<'_>,
    ) -> Result<Vec<RemoveOutcome>> {
        let hash = self.layout.tenant_key(tenant);
        let name_of = |p: &Planned| {
            if p.key.key_type.is_empty() {
                p.key.id.clone()
            } else {
                format!("{}-{}", p.key.key_type, p.key.id)
            }
        };
        let names: Vec<String> = batch.iter().map(name_of).collect();
        // 1. The value each field had when the scan read it, where that is the planned one
        //    (the script compares it with what Redis holds then); the rest is read again.
        let mut current: Vec<Option<Value>> = batch
            .iter()
            .zip(&names)
            .map(|(p, n)| {
                self.seen
                    .get(tenant, n)
                    .filter(|raw| fingerprint(self.layout.decode(raw).as_bytes()) == p.token.hash)
                    .map(|raw| Value::BulkString(raw.as_bytes().to_vec()))
            })
            .collect();
        // Those already match the plan; the ones read again are checked below.
        let unseen: Vec<usize> = (0..batch.len()).filter(|&i| current[i].is_none()).collect();
        if !unseen.is_empty() {
            self.rereads += 1;
            let read: Vec<Value> = match self.layout.shape {
                Shape::Hash => {
                    let mut cmd = redis::cmd("HMGET");
                    cmd.arg(&hash);
                    for &i in &unseen {
                        cmd.arg(&names[i]);
                    }
                    cmd.query(&mut self.con).map_err(|e| self.err(e))?
                }
                Shape::Keys => {
                    let mut cmd = redis::cmd("MGET");
                    for &i in &unseen {
                        cmd.arg(format!("{hash}{}", names[i]));
                    }
                    cmd.query(&mut self.con).map_err(|e| self.err(e))?
                }
            };
            for (&i, v) in unseen.iter().zip(read) {
                current[i] = Some(v);
            }
        }
        let mut out = vec![RemoveOutcome::Vanished; batch.len()];
        let mut doomed: Vec<(usize, String)> = Vec::new();
        let mut trash = Vec::new();
        for (i, (p, v)) in batch.iter().zip(current).enumerate() {
            let v = v.unwrap_or(Value::Nil);
            if matches!(v, Value::Nil) {
                continue;
            }
            // A value we could not restore byte for byte (not UTF-8) is never removed.
            let Some(raw) = utf8(v) else {
                out[i] = RemoveOutcome::Changed;
                continue;
            };
            if unseen.binary_search(&i).is_ok()
                && fingerprint(self.layout.decode(&raw).as_bytes()) != p.token.hash
            {
                out[i] = RemoveOutcome::Changed;
                continue;
            }
            trash.push(TrashRow {
                key_type: p.key.key_type.clone(),
                id: p.key.id.clone(),
                value: raw.clone(),
                columns: Default::default(),
            });
            doomed.push((i, raw));
        }
        if doomed.is_empty() {
            return Ok(out);
        }
        // 2. One atomic script: fencing check, then compare-and-delete per field. The trash is
        //    written by that same script (InStore), or made durable before it runs (Before).
        let lock = self.lock_key(Some(tenant));
        let token = self.locks.get(&lock).unwrap_or_default();
        let ttl = LOCK_TTL_MS.to_string();
        let in_store = match trash_to {
            TrashTarget::InStore(tag) => Some((
                self.trash_run(tenant, tag),
                trash
                    .iter()
                    .map(|r| row_field(&r.key_type, &r.id))
                    .collect::<Vec<_>>(),
            )),
            other => {
                other
                    .before_commit(&trash)
                    .map_err(|e| StoreError::Query(format!("cannot write the trash: {e}")))?;
                None
            }
        };
        let mut keys = match self.layout.shape {
            Shape::Hash => vec![hash.clone(), lock],
            Shape::Keys => vec![lock],
        };
        let mut args: Vec<&[u8]> = vec![token.as_bytes(), ttl.as_bytes()];
        if let Some((run, _)) = &in_store {
            keys.extend(run.keys.iter().cloned());
            args.extend(run.args.iter().map(|a| a.as_bytes()));
        }
        for (n, (i, raw)) in doomed.iter().enumerate() {
            match self.layout.shape {
                Shape::Hash => args.push(names[*i].as_bytes()),
                Shape::Keys => keys.push(format!("{hash}{}", names[*i])),
            }
            args.push(raw.as_bytes());
            if let Some((_, fields)) = &in_store {
                args.push(fields[n].as_bytes());
            }
        }
        let script = match (self.layout.shape, in_store.is_some()) {
            (Shape::Hash, false) => CAS_HDEL,
            (Shape::Keys, false) => CAS_DEL,
            (Shape::Hash, true) => CAS_HDEL_TRASH,
            (Shape::Keys, true) => CAS_DEL_TRASH,
        };
        crate::core::fault::point("redis.before_script");
        let ran = self.run_script(script, &keys, &args);
        crate::core::fault::point("redis.after_script");
        let results = match ran {
            Ok(r) => r,
            Err(ScriptError::Refused(e)) => return Err(e),
            Err(ScriptError::Unknown(why)) => {
                let why = format!("Redis did not answer the removal in time ({why})");
                self.verify_after_stall(&names, &hash, &doomed, &why, &mut out);
                return Ok(out);
            }
        };
        for ((i, raw), r) in doomed.iter().zip(results) {
            out[*i] = match r {
                1 => RemoveOutcome::Removed {
                    bytes: raw.len() as u64,
                },
                // Removed by the app since the scan.
                2 => RemoveOutcome::Vanished,
                // Rewritten since the scan.
                _ => RemoveOutcome::Changed,
            };
        }
        Ok(out)
    }

    fn restore(&mut self, tenant: &str, rows: &[TrashRow]) -> Result<Vec<RestoreOutcome>> {
        let hash = self.layout.tenant_key(tenant);
        let mut pipe = redis::pipe();
        for r in rows {
            let name = if r.key_type.is_empty() {
                r.id.clone()
            } else {
                format!("{}-{}", r.key_type, r.id)
            };
            match self.layout.shape {
                Shape::Hash => pipe.cmd("HSETNX").arg(&hash).arg(name).arg(&r.value),
                Shape::Keys => pipe
                    .cmd("SET")
                    .arg(format!("{hash}{name}"))
                    .arg(&r.value)
                    .arg("NX"),
            };
        }
        let results: Vec<Value> = pipe.query(&mut self.con).map_err(|e| self.err(e))?;
        Ok(results
            .into_iter()
            .map(|v| match v {
                Value::Int(1) | Value::Okay => RestoreOutcome::Restored,
                Value::SimpleString(s) if s == "OK" => RestoreOutcome::Restored,
                _ => RestoreOutcome::Exists,
            })
            .collect())
    }

    fn lock_tenant(&mut self, tenant: &str) -> Result<TenantLock> {
        let key = self.lock_key(Some(tenant));
        self.try_lock(key)
    }

    fn unlock_tenant(&mut self, tenant: &str) {
        let key = self.lock_key(Some(tenant));
        if let Some(token) = self.locks.remove(&key) {
            let _: redis::RedisResult<i64> =
                self.scripts
                    .eval(&mut self.con, UNLOCK, &[&key], &[token.as_bytes()]);
        }
    }

    /// A lock key with this handle's own token: every janitor and every worker has its own.
    fn tenant_lock_excludes_every_process(&self) -> bool {
        true
    }

    fn lock_global(&mut self) -> Result<TenantLock> {
        let key = self.lock_key(None);
        self.try_lock(key)
    }

    fn usage(&mut self, tenant: &str) -> Result<Option<(u64, u64)>> {
        RedisStore::usage(self, tenant).map(|u| Some((u.keys, u.bytes)))
    }

    fn label(&mut self, tenant: &str) -> Option<String> {
        self.instance_name(tenant)
    }

    fn transport(&self) -> Option<super::tls::Transport> {
        Some(self.transport.clone())
    }

    fn describe(&self) -> Option<String> {
        self.prefix_found.then(|| {
            format!(
                "{} ({}, prefix found on the server{})",
                self.target,
                self.layout.describe(),
                if self.pg_target.is_empty() {
                    String::new()
                } else {
                    format!(", creds in {}", self.pg_target)
                }
            )
        })
    }

    fn trash_in_transaction(&self) -> bool {
        true
    }

    fn shared_state(&self, opts: &SharedOptions) -> Result<Option<Box<dyn SharedState>>> {
        self.retention_s
            .store(opts.trash_retention.as_secs().max(1), Ordering::Relaxed);
        let con = state::connection(&self.client, &self.target, self.io_timeout)?;
        let state = RedisState::open(con, &self.target, &self.layout.state_prefix(), opts)?
            .reopen_with(state::Reopen {
                client: self.client.clone(),
                io_timeout: self.io_timeout,
                prefix: self.layout.state_prefix(),
                opts: opts.clone(),
            });
        Ok(Some(Box::new(state)))
    }

    /// A connection of its own for another `--jobs` worker: the janitor's own work per instance
    /// (decoding, planning, the ledger) runs on both cores while the other worker waits for
    /// Redis. Its locks are registered with this handle's signal handler. Evolution with
    /// `--creds` reads creds over a PostgreSQL connection this does not reopen: its instances
    /// are cleaned one after the other.
    fn another(&self) -> Result<Option<Box<dyn Store + Send>>> {
        if self.pg.is_some() {
            return Ok(None);
        }
        let con = state::connection(&self.client, &self.target, self.io_timeout)?;
        Ok(Some(Box::new(RedisStore {
            con,
            io_timeout: self.io_timeout,
            target: self.target.clone(),
            layout: self.layout.clone(),
            pg: None,
            pg_target: String::new(),
            instances: None,
            app: self.app.clone(),
            locks: self.locks.another(),
            client: self.client.clone(),
            transport: self.transport.clone(),
            pg_transport: None,
            prefix_found: self.prefix_found,
            retention_s: AtomicU64::new(self.retention_s.load(Ordering::Relaxed)),
            scripts: Scripts::new(),
            seen: Seen::default(),
            rereads: 0,
        })))
    }

    fn lock_releaser(&self) -> Option<super::LockReleaser> {
        let (client, held) = (self.client.clone(), self.locks.clone());
        Some(Box::new(move || release_on(&client, &held)))
    }

    fn orphan(&mut self, tenant: &str) -> Option<String> {
        self.is_orphan(tenant)
            .filter(|o| *o)
            .map(|_| "no \"Instance\" row: the instance was deleted".to_owned())
    }
}

#[cfg(test)]
mod tests;
