//! The janitor's state in Redis (issue 23): every host that reaches the server sees the same
//! company records, runs, ledgers and trash. All keys live under `<prefix>:janitor:`, where
//! `<prefix>` is the store's own key prefix (Evolution's `CACHE_REDIS_PREFIX_KEY`, or the key
//! pattern's text before the tenant), never the URL: two hosts may reach one server by
//! different names and must still share one state.
//!
//! ```text
//! <ns>version                      string  schema version (SCHEMA_VERSION); newer → refused
//! <ns>doc:<space>:<name>           hash    body, version (compare-and-swap by a script)
//! <ns>docs:<space>                 set     the names of a space's documents (no KEYS / SCAN)
//! <ns>trash:<tenant>:<run>         hash    removed rows still in the trash: row key → exact value
//! <ns>trash:<tenant>:<run>:restored hash   rows a restore put back (moved here)
//! <ns>trash:<tenant>:<run>:cols    hash    row key → other columns as JSON (never for Redis rows)
//! <ns>trash:<tenant>:<run>:meta    hash    tenant, run, host, removed_at, bytes
//! <ns>trash-runs                   zset    <tenant>:<run> scored by removed_at (µs)
//! ```
//!
//! `<tenant>` and `<run>` in key names are escaped (`%` → `%25`, `:` → `%3A`) so two pairs never
//! share a key; a row key is the JSON `["<type>","<id>"]`. Every trash key expires
//! `trash.retention` after the last batch written to it; `purge` also drops index entries of
//! runs removed before the cutoff. Scripts check the schema version key before they write.

use chrono::{DateTime, Utc};
use redis::{Connection, Value};

use super::super::shared::{
    Doc, SCHEMA_VERSION, SharedOptions, SharedState, Space, TrashRun, TrashTag, TrashedRow,
};
use super::super::{KeyRef, Result, StoreError, TrashRow};

/// The key names of one store's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    /// `<prefix>:janitor:`
    pub ns: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            ns: format!("{prefix}:janitor:"),
        }
    }

    pub fn version(&self) -> String {
        format!("{}version", self.ns)
    }

    fn doc(&self, space: Space, name: &str) -> String {
        format!("{}doc:{}:{}", self.ns, space.as_str(), escape(name))
    }

    fn doc_index(&self, space: Space) -> String {
        format!("{}docs:{}", self.ns, space.as_str())
    }

    pub fn trash_index(&self) -> String {
        format!("{}trash-runs", self.ns)
    }

    /// The index member of a run: `<tenant>:<run>`, both escaped.
    pub fn member(tenant: &str, run_id: &str) -> String {
        format!("{}:{}", escape(tenant), escape(run_id))
    }

    fn base(&self, member: &str) -> String {
        format!("{}trash:{member}", self.ns)
    }

    pub fn trash(&self, tenant: &str, run_id: &str) -> TrashKeys {
        self.trash_of(&Keys::member(tenant, run_id))
    }

    /// The keys of the run an index member names.
    fn trash_of(&self, member: &str) -> TrashKeys {
        let base = self.base(member);
        TrashKeys {
            restored: format!("{base}:restored"),
            cols: format!("{base}:cols"),
            meta: format!("{base}:meta"),
            rows: base,
        }
    }
}

/// The four keys of one (tenant, run) in the trash.
#[derive(Clone, Debug)]
pub struct TrashKeys {
    pub rows: String,
    pub restored: String,
    pub cols: String,
    pub meta: String,
}

impl TrashKeys {
    fn all(&self) -> [&str; 4] {
        [&self.rows, &self.restored, &self.cols, &self.meta]
    }
}

/// `%` and `:` escaped: the parts of a key name stay apart whatever a tenant is called.
fn escape(s: &str) -> String {
    s.replace('%', "%25").replace(':', "%3A")
}

/// A row's field in the trash hashes: `["<type>","<id>"]` (unambiguous, readable in redis-cli).
pub fn row_field(key_type: &str, id: &str) -> String {
    serde_json::to_string(&(key_type, id)).expect("two strings serialize")
}

fn parse_row_field(field: &str) -> Option<KeyRef> {
    let (key_type, id): (String, String) = serde_json::from_str(field).ok()?;
    Some(KeyRef { key_type, id })
}

/// Microseconds since the epoch: the index score (exact in an f64 for the next 280 years).
pub fn score(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// `removed_at` as stored in the meta hash: RFC 3339 with every digit it has (round-trips).
pub fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Lua: refuses a state written by a newer binary and records ours on the first write.
/// Expects the version key as `KEYS[VK]` and our version as `ARGV[VA]` (set before this text).
macro_rules! schema_check {
    () => {
        r"
local stored = redis.call('GET', KEYS[VK])
if stored and tonumber(stored) and tonumber(stored) > tonumber(ARGV[VA]) then
  return redis.error_reply('BJSCHEMA ' .. stored)
end
if not stored then redis.call('SET', KEYS[VK], ARGV[VA]) end
"
    };
}
pub(crate) use schema_check;

/// Lua: `trash_row(field, value)` writes one removed row to the run's trash, call it BEFORE
/// deleting the row (a write refused mid-script, e.g. by maxmemory, then leaves the row in
/// place, never in neither). The first row of a script records the run (meta hash, index) and
/// sets every expiry first. Expects KEYS[TR] rows, KEYS[TM] meta, KEYS[TI] index and ARGV
/// TA.. = retention s, member, score, tenant, run, host, removed_at; `finish_run()` adds the
/// bytes. `n` rows, `b` bytes written.
macro_rules! trash_run {
    () => {
        r"
local n, b = 0, 0
local function trash_row(field, value)
  if n == 0 then
    redis.call('HSETNX', KEYS[TM], 'tenant', ARGV[TA + 3])
    redis.call('HSETNX', KEYS[TM], 'run', ARGV[TA + 4])
    redis.call('HSETNX', KEYS[TM], 'host', ARGV[TA + 5])
    redis.call('HSETNX', KEYS[TM], 'removed_at', ARGV[TA + 6])
    redis.call('ZADD', KEYS[TI], 'NX', ARGV[TA + 2], ARGV[TA + 1])
    redis.call('EXPIRE', KEYS[TM], ARGV[TA])
    redis.call('EXPIRE', KEYS[TI], ARGV[TA])
  end
  redis.call('HSET', KEYS[TR], field, value)
  if n == 0 then redis.call('EXPIRE', KEYS[TR], ARGV[TA]) end
  n = n + 1
  b = b + #value
end
local function finish_run()
  if n > 0 then redis.call('HINCRBY', KEYS[TM], 'bytes', b) end
end
"
    };
}
pub(crate) use trash_run;

/// Writes rows to a run's trash (`put_trash`). KEYS: 1 rows, 2 meta, 3 index, 4 version, 5 cols;
/// ARGV: 1 schema version, 2..8 the run (see `trash_run`), 9.. (field, value, columns JSON or '').
const PUT_TRASH: &str = concat!(
    "local VK, VA, TR, TM, TI, TA = 4, 1, 1, 2, 3, 2\n",
    schema_check!(),
    trash_run!(),
    r"
for i = 9, #ARGV, 3 do
  if ARGV[i + 2] ~= '' then
    redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 2])
    redis.call('EXPIRE', KEYS[5], ARGV[2])
  end
  trash_row(ARGV[i], ARGV[i + 1])
end
finish_run()
return n
",
);

/// Compare-and-swap of a document. KEYS: 1 doc, 2 index, 3 version; ARGV: 1 schema version,
/// 2 expected version ('' = none yet), 3 body, 4 name. 1 = written, 0 = someone wrote first.
const SWAP: &str = concat!(
    "local VK, VA = 3, 1\n",
    schema_check!(),
    r"
local v = redis.call('HGET', KEYS[1], 'version')
if ARGV[2] == '' then
  if v then return 0 end
elseif v ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'body', ARGV[3], 'version', (tonumber(v) or 0) + 1)
redis.call('SADD', KEYS[2], ARGV[4])
return 1
"
);

/// Moves restored rows aside. KEYS: 1 rows, 2 restored, 3 meta, 4 version; ARGV: 1 schema
/// version, 2.. row fields. The restored hash expires with the run.
const MARK_RESTORED: &str = concat!(
    "local VK, VA = 4, 1\n",
    schema_check!(),
    r"
local n, b = 0, 0
for i = 2, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    redis.call('HSET', KEYS[2], ARGV[i], v)
    redis.call('HDEL', KEYS[1], ARGV[i])
    n = n + 1
    b = b + #v
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[3], 'bytes', -b)
  local ttl = redis.call('PTTL', KEYS[3])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
return n
"
);

/// Runs a script by its SHA1 (loaded once per connection), falling back to loading it when the
/// server forgot it (`SCRIPT FLUSH`, a restart).
pub struct Scripts {
    loaded: std::collections::HashMap<&'static str, String>,
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            loaded: Default::default(),
        }
    }

    pub fn eval<T: redis::FromRedisValue>(
        &mut self,
        con: &mut Connection,
        script: &'static str,
        keys: &[&str],
        args: &[&[u8]],
    ) -> redis::RedisResult<T> {
        for attempt in 0..2 {
            let sha = match self.loaded.get(script) {
                Some(s) => s.clone(),
                None => {
                    let sha: String = redis::cmd("SCRIPT").arg("LOAD").arg(script).query(con)?;
                    self.loaded.insert(script, sha.clone());
                    sha
                }
            };
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(&sha).arg(keys.len());
            for k in keys {
                cmd.arg(*k);
            }
            for a in args {
                cmd.arg(*a);
            }
            match cmd.query(con) {
                Err(e) if attempt == 0 && e.kind() == redis::ErrorKind::NoScriptError => {
                    self.loaded.remove(script);
                }
                other => return other,
            }
        }
        unreachable!("the second attempt returns")
    }
}

pub struct RedisState {
    con: Connection,
    /// `redis://user@host:port/db`, secret-free.
    target: String,
    keys: Keys,
    read_only: bool,
    retention_s: u64,
    scripts: Scripts,
    /// How to open another connection to the same state ([`SharedState::another`]).
    reopen: Option<Reopen>,
}

/// A connection of its own to `client`'s server, with the store's I/O timeouts.
pub fn connection(
    client: &redis::Client,
    target: &str,
    io_timeout: std::time::Duration,
) -> Result<Connection> {
    let con = client
        .get_connection_with_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| StoreError::Unavailable(format!("cannot connect to {target}: {e}")))?;
    let _ = con.set_read_timeout(Some(io_timeout));
    let _ = con.set_write_timeout(Some(io_timeout));
    Ok(con)
}

/// What [`RedisState::reopen_with`] keeps for [`SharedState::another`].
#[derive(Clone)]
pub struct Reopen {
    pub client: redis::Client,
    pub io_timeout: std::time::Duration,
    pub prefix: String,
    pub opts: SharedOptions,
}

impl RedisState {
    /// Lets [`SharedState::another`] open more handles the way this one was opened.
    pub fn reopen_with(mut self, reopen: Reopen) -> RedisState {
        self.reopen = Some(reopen);
        self
    }

    /// Opens the state on a connection of its own and refuses a newer schema (exit 2), reading
    /// only: nothing is written until the first write.
    pub fn open(
        mut con: Connection,
        target: &str,
        prefix: &str,
        opts: &SharedOptions,
    ) -> Result<RedisState> {
        let keys = Keys::new(prefix);
        let stored: Option<String> = redis::cmd("GET")
            .arg(keys.version())
            .query(&mut con)
            .map_err(|e| StoreError::Query(format!("{target}: {e}")))?;
        if let Some(v) = stored {
            check_version(target, &keys, &v)?;
        }
        Ok(RedisState {
            con,
            target: target.to_owned(),
            keys,
            read_only: opts.read_only,
            retention_s: opts.trash_retention.as_secs().max(1),
            scripts: Scripts::new(),
            reopen: None,
        })
    }

    fn err(&self, e: redis::RedisError) -> StoreError {
        script_error(&self.target, &self.keys, e)
    }

    fn writable(&self, what: &str) -> Result<()> {
        if self.read_only {
            return Err(StoreError::Query(format!(
                "{}: the janitor's state is open read-only (status, dry run): {what} not written",
                self.target
            )));
        }
        Ok(())
    }

    fn eval<T: redis::FromRedisValue>(
        &mut self,
        script: &'static str,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<T> {
        let r = self.scripts.eval(&mut self.con, script, keys, args);
        r.map_err(|e| self.err(e))
    }

    /// The runs of the index (newest first) whose keys have not expired, with their meta.
    fn runs(&mut self) -> Result<Vec<(String, TrashRun)>> {
        let members: Vec<String> = redis::cmd("ZREVRANGE")
            .arg(self.keys.trash_index())
            .arg(0)
            .arg(-1)
            .query(&mut self.con)
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(members.len());
        // One pipeline per few hundred runs: three commands each.
        for chunk in members.chunks(300) {
            let mut pipe = redis::pipe();
            for m in chunk {
                let k = self.keys.trash_of(m);
                pipe.cmd("HGETALL").arg(&k.meta);
                pipe.cmd("HLEN").arg(&k.rows);
                pipe.cmd("HLEN").arg(&k.restored);
            }
            let replies: Vec<Value> = pipe.query(&mut self.con).map_err(|e| self.err(e))?;
            let mut it = replies.into_iter();
            for m in chunk {
                let (Some(meta), Some(rows), Some(restored)) = (it.next(), it.next(), it.next())
                else {
                    break;
                };
                let meta: std::collections::HashMap<String, String> =
                    redis::from_redis_value(&meta).unwrap_or_default();
                let rows: usize = redis::from_redis_value(&rows).unwrap_or(0);
                let restored: usize = redis::from_redis_value(&restored).unwrap_or(0);
                // Expired (or purged by another host since the index was read): not a run.
                let Some(run) = run_of(&meta, rows, restored) else {
                    continue;
                };
                out.push((m.clone(), run));
            }
        }
        Ok(out)
    }

    fn hgetall(&mut self, key: &str) -> Result<Vec<(String, String)>> {
        redis::cmd("HGETALL")
            .arg(key)
            .query(&mut self.con)
            .map_err(|e| self.err(e))
    }
}

fn run_of(
    meta: &std::collections::HashMap<String, String>,
    rows: usize,
    restored: usize,
) -> Option<TrashRun> {
    let removed_at = DateTime::parse_from_rfc3339(meta.get("removed_at")?)
        .ok()?
        .with_timezone(&Utc);
    Some(TrashRun {
        tenant: meta.get("tenant")?.clone(),
        run_id: meta.get("run")?.clone(),
        host: meta.get("host").cloned().unwrap_or_default(),
        removed_at,
        rows,
        bytes: meta
            .get("bytes")
            .and_then(|b| b.parse::<i64>().ok())
            .map_or(0, |b| b.max(0) as u64),
        restored,
    })
}

fn check_version(target: &str, keys: &Keys, stored: &str) -> Result<()> {
    match stored.trim().parse::<u32>() {
        Ok(v) if v <= SCHEMA_VERSION => Ok(()),
        _ => Err(newer(target, keys, stored)),
    }
}

fn newer(target: &str, keys: &Keys, stored: &str) -> StoreError {
    StoreError::Schema(format!(
        "{target}: the janitor's state under {}* has schema version {stored}, newer than this binary's {SCHEMA_VERSION}: upgrade baileys-janitor on this host",
        keys.ns
    ))
}

/// A script's error: a newer schema met while writing is the same refusal as at open.
pub fn script_error(target: &str, keys: &Keys, e: redis::RedisError) -> StoreError {
    let msg = e.to_string();
    // The reply reads `BJSCHEMA <version>`; the client shows it as `BJSCHEMA: <version>`.
    if let Some(i) = msg.find("BJSCHEMA") {
        let rest = msg[i + "BJSCHEMA".len()..].trim_start_matches([':', ' ']);
        let stored = rest.split_whitespace().next().unwrap_or("?");
        return newer(target, keys, stored);
    }
    StoreError::Query(format!("{target}: {msg}"))
}

impl SharedState for RedisState {
    fn describe(&self) -> String {
        format!("keys {}* in {}", self.keys.ns, self.target)
    }

    /// Redis has no per-key grants the janitor could inspect: whoever may read these keys (an
    /// ACL user with `~<prefix>:janitor:*` or `~*`, or anyone when the default user is open)
    /// reads the trash. docs/stores/redis.md says how to restrict it; nothing is claimed here.
    fn exposure(&mut self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn read(&mut self, space: Space, name: &str) -> Result<Option<Doc>> {
        let (body, version): (Option<Vec<u8>>, Option<u64>) = redis::cmd("HMGET")
            .arg(self.keys.doc(space, name))
            .arg("body")
            .arg("version")
            .query(&mut self.con)
            .map_err(|e| self.err(e))?;
        Ok(match (body, version) {
            (Some(body), Some(version)) => Some(Doc { body, version }),
            _ => None,
        })
    }

    fn read_many(&mut self, docs: &[(Space, &str)]) -> Result<Vec<Option<Doc>>> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        // One pipeline: one round trip for all of them.
        let mut pipe = redis::pipe();
        for (space, name) in docs {
            pipe.cmd("HMGET")
                .arg(self.keys.doc(*space, name))
                .arg("body")
                .arg("version");
        }
        let found: Vec<(Option<Vec<u8>>, Option<u64>)> =
            pipe.query(&mut self.con).map_err(|e| self.err(e))?;
        Ok(found
            .into_iter()
            .map(|(body, version)| match (body, version) {
                (Some(body), Some(version)) => Some(Doc { body, version }),
                _ => None,
            })
            .collect())
    }

    fn swap(
        &mut self,
        space: Space,
        name: &str,
        expected: Option<u64>,
        body: &[u8],
    ) -> Result<bool> {
        self.writable("a document")?;
        let (doc, index, version) = (
            self.keys.doc(space, name),
            self.keys.doc_index(space),
            self.keys.version(),
        );
        let ours = SCHEMA_VERSION.to_string();
        let expected = expected.map(|v| v.to_string()).unwrap_or_default();
        let written: i64 = self.eval(
            SWAP,
            &[&doc, &index, &version],
            &[ours.as_bytes(), expected.as_bytes(), body, name.as_bytes()],
        )?;
        Ok(written == 1)
    }

    fn list(&mut self, space: Space) -> Result<Vec<(String, Vec<u8>)>> {
        let mut names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.doc_index(space))
            .query(&mut self.con)
            .map_err(|e| self.err(e))?;
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for chunk in names.chunks(500) {
            let mut pipe = redis::pipe();
            for n in chunk {
                pipe.cmd("HGET").arg(self.keys.doc(space, n)).arg("body");
            }
            let bodies: Vec<Option<Vec<u8>>> =
                pipe.query(&mut self.con).map_err(|e| self.err(e))?;
            for (n, b) in chunk.iter().zip(bodies) {
                if let Some(b) = b {
                    out.push((n.clone(), b));
                }
            }
        }
        Ok(out)
    }

    fn put_trash(&mut self, tenant: &str, tag: &TrashTag, rows: &[TrashRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.writable("the trash")?;
        let k = self.keys.trash(tenant, &tag.run_id);
        let (index, version) = (self.keys.trash_index(), self.keys.version());
        let head = [
            SCHEMA_VERSION.to_string(),
            self.retention_s.to_string(),
            Keys::member(tenant, &tag.run_id),
            score(tag.removed_at).to_string(),
            tenant.to_owned(),
            tag.run_id.clone(),
            tag.host.clone(),
            stamp(tag.removed_at),
        ];
        let body: Vec<[String; 3]> = rows
            .iter()
            .map(|r| {
                let cols = if r.columns.is_empty() {
                    String::new()
                } else {
                    serde_json::to_string(&r.columns).expect("columns serialize")
                };
                [row_field(&r.key_type, &r.id), r.value.clone(), cols]
            })
            .collect();
        let mut args: Vec<&[u8]> = head.iter().map(|s| s.as_bytes()).collect();
        for triple in &body {
            args.extend(triple.iter().map(|s| s.as_bytes()));
        }
        let _: i64 = self.eval(
            PUT_TRASH,
            &[&k.rows, &k.meta, &index, &version, &k.cols],
            &args,
        )?;
        Ok(())
    }

    fn trash_runs(&mut self, tenant: Option<&str>) -> Result<Vec<TrashRun>> {
        let runs = self.runs()?;
        Ok(runs
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| tenant.is_none_or(|t| r.tenant == t))
            .collect())
    }

    fn trash_rows(&mut self, tenant: &str, run_id: &str) -> Result<Vec<TrashedRow>> {
        let k = self.keys.trash(tenant, run_id);
        let cols: std::collections::HashMap<String, String> =
            self.hgetall(&k.cols)?.into_iter().collect();
        let mut out = Vec::new();
        for (key, restored) in [(&k.rows, false), (&k.restored, true)] {
            for (field, value) in self.hgetall(key)? {
                let Some(at) = parse_row_field(&field) else {
                    continue;
                };
                let columns = cols
                    .get(&field)
                    .and_then(|c| serde_json::from_str(c).ok())
                    .unwrap_or_default();
                out.push(TrashedRow {
                    row: TrashRow {
                        key_type: at.key_type,
                        id: at.id,
                        value,
                        columns,
                    },
                    restored,
                });
            }
        }
        out.sort_by(|a, b| (&a.row.key_type, &a.row.id).cmp(&(&b.row.key_type, &b.row.id)));
        Ok(out)
    }

    fn mark_restored(&mut self, tenant: &str, run_id: &str, keys: &[KeyRef]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.writable("a restore mark")?;
        let k = self.keys.trash(tenant, run_id);
        let version = self.keys.version();
        let ours = SCHEMA_VERSION.to_string();
        let fields: Vec<String> = keys.iter().map(|r| row_field(&r.key_type, &r.id)).collect();
        for chunk in fields.chunks(500) {
            let mut args: Vec<&[u8]> = vec![ours.as_bytes()];
            args.extend(chunk.iter().map(|f| f.as_bytes()));
            let _: i64 = self.eval(
                MARK_RESTORED,
                &[&k.rows, &k.restored, &k.meta, &version],
                &args,
            )?;
        }
        Ok(())
    }

    /// A connection of its own for another worker (`--jobs`), the version checked again.
    fn another(&self) -> Result<Option<Box<dyn SharedState>>> {
        let Some(r) = &self.reopen else {
            return Ok(None);
        };
        let con = connection(&r.client, &self.target, r.io_timeout)?;
        let st = RedisState::open(con, &self.target, &r.prefix, &r.opts)?;
        Ok(Some(Box::new(st.reopen_with(r.clone()))))
    }

    fn purge(&mut self, before: DateTime<Utc>) -> Result<(usize, usize)> {
        self.writable("a purge")?;
        let index = self.keys.trash_index();
        let old: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(format!("({}", score(before)))
            .query(&mut self.con)
            .map_err(|e| self.err(e))?;
        let (mut runs, mut rows) = (0, 0);
        for chunk in old.chunks(300) {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for m in chunk {
                let k = self.keys.trash_of(m);
                pipe.cmd("EXISTS").arg(&k.meta);
                pipe.cmd("HLEN").arg(&k.rows);
                pipe.cmd("HLEN").arg(&k.restored);
                pipe.cmd("DEL").arg(&k.all()[..]).ignore();
                pipe.cmd("ZREM").arg(&index).arg(m).ignore();
            }
            let counts: Vec<usize> = pipe.query(&mut self.con).map_err(|e| self.err(e))?;
            for c in counts.chunks(3) {
                // An index entry whose keys had expired already is dropped, not counted.
                if c[0] == 1 {
                    runs += 1;
                    rows += c[1] + c[2];
                }
            }
        }
        Ok((runs, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_keep_tenants_and_runs_apart() {
        let k = Keys::new("evolution");
        assert_eq!(k.version(), "evolution:janitor:version");
        let a = k.trash("a:b", "c");
        let b = k.trash("a", "b:c");
        assert_ne!(a.rows, b.rows);
        assert_eq!(a.rows, "evolution:janitor:trash:a%3Ab:c");
        assert_eq!(a.meta, "evolution:janitor:trash:a%3Ab:c:meta");
        assert_ne!(k.trash("50%3A", "r").rows, k.trash("50:", "r").rows);
        assert_eq!(
            k.doc(Space::Company, "company_1"),
            "evolution:janitor:doc:company:company_1"
        );
    }

    #[test]
    fn row_fields_round_trip_any_type_and_id() {
        for (t, id) in [("pre-key", "1"), ("", "a-b"), ("x\"y", "120363@g.us::1::0")] {
            assert_eq!(
                parse_row_field(&row_field(t, id)),
                Some(KeyRef {
                    key_type: t.into(),
                    id: id.into()
                })
            );
        }
        assert_eq!(parse_row_field("pre-key-1"), None);
    }

    #[test]
    fn a_newer_schema_is_refused_an_older_or_equal_one_is_not() {
        let k = Keys::new("p");
        assert!(check_version("redis://h", &k, "1").is_ok());
        let e = check_version("redis://h", &k, &(SCHEMA_VERSION + 1).to_string()).unwrap_err();
        assert!(e.is_configuration(), "{e}");
        assert!(e.to_string().contains("p:janitor:*"), "{e}");
        assert!(check_version("redis://h", &k, "garbage").is_err());
    }
}
