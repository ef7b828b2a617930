//! MySQL / MariaDB: the `mysql-baileys` layout, `auth(session, id, value)` with one row per key
//! named `<type>-<id>` and the creds row `creds` (read from mysql-baileys 1.5.4,
//! `lib/Mysql/index.js`: `CREATE TABLE … ENGINE=MyISAM`, `INSERT … ON DUPLICATE KEY UPDATE`).
//!
//! Safety in a shared, live database, whatever the table's engine:
//! - MyISAM (what mysql-baileys creates) has no transactions: a batch is read again, compared
//!   with the plan, written to the trash, and then removed by one compare-and-delete statement
//!   (`DELETE … WHERE` session, id and the exact value read, for each row of the batch; one
//!   statement is atomic on any engine): a row the app rewrote in between survives;
//! - InnoDB (an operator may convert the table): the same, inside one transaction whose rows are
//!   read `FOR UPDATE`, so a batch goes whole or not at all;
//! - `GET_LOCK` per tenant (and one for the trigger) keeps janitors on several hosts apart; the
//!   server drops it with our connection, so a dead janitor never leaves it behind;
//! - comparisons that decide are exact (`utf8mb4_bin` and the length): the table's own
//!   case-insensitive collation never lets one key or value pass for another.

mod state;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::mysql::prelude::Queryable;
use ::mysql::{Conn, Opts, OptsBuilder, Value};

use super::spec::{KvLayout, TenantIn, split_kv_key};
use super::{
    Planned, RawRow, RemoveOutcome, RestoreOutcome, Result, Store, StoreError, TenantLock,
    TrashRow, TrashTarget, fingerprint,
};
use crate::core::fault;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// ER_DUP_ENTRY: a restore raced the app's own insert of the same key.
const ER_DUP_ENTRY: u16 = 1062;

/// The layouts this backend knows.
pub const PRESETS: [&str; 1] = ["mysql-baileys"];

pub fn preset(name: &str) -> Option<KvLayout> {
    match name {
        "mysql-baileys" => Some(KvLayout {
            name: "mysql-baileys".into(),
            table: "auth".into(),
            tenant: TenantIn::Column("session".into()),
            key_column: "id".into(),
            value_column: "value".into(),
            creds_key: "creds".into(),
        }),
        _ => None,
    }
}

/// The layout `preset` names, on the table the connection string's `table=` option names
/// (mysql-baileys' `tableName`; `auth` without it).
pub fn layout(url: &str, preset_name: &str) -> std::result::Result<KvLayout, String> {
    let mut layout = preset(preset_name).ok_or_else(|| {
        format!(
            "layout {preset_name:?} is not a mysql layout (one of {})",
            PRESETS.join(", ")
        )
    })?;
    if let Some(table) = table_option(url) {
        if table.is_empty()
            || table.len() > 64
            || !table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        {
            return Err(
                "store: the mysql table= option needs a table name of 1 to 64 letters, digits, _ or $"
                    .into(),
            );
        }
        layout.table = table;
    }
    Ok(layout)
}

/// `table=NAME` from the query string, the janitor's own option.
fn table_option(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("table=").map(str::to_owned))
}

/// Accepts `mysql://…` and `mariadb://…`; the error never repeats the input.
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    let opts = parse_url(url)?;
    if opts.get_db_name().is_none_or(str::is_empty) {
        return Err(
            "store: the mysql connection string names no database (mysql://user[:password]@host[:port]/database)"
                .into(),
        );
    }
    Ok(())
}

fn parse_url(url: &str) -> std::result::Result<Opts, String> {
    let url = match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url.to_owned(),
    };
    // Asked for TLS: refused in so many words rather than "not valid", or worse, sent in clear.
    let query = url.split_once('?').map_or("", |(_, q)| q);
    if query.split('&').any(|kv| {
        let key = kv.split('=').next().unwrap_or("").to_ascii_lowercase();
        key.contains("ssl") || key.contains("tls")
    }) {
        return Err("store: TLS for mysql:// is not supported yet (connect over a local socket with ?socket=PATH, a private network or a tunnel)".into());
    }
    // `table=` is ours, not the driver's.
    let url = match url.split_once('?') {
        Some((base, query)) => {
            let rest: Vec<&str> = query
                .split('&')
                .filter(|kv| !kv.starts_with("table=") && !kv.is_empty())
                .collect();
            if rest.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{}", rest.join("&"))
            }
        }
        None => url,
    };
    Opts::from_url(&url).map_err(|_| {
        "store: the mysql connection string is not valid (expected mysql://user[:password]@host[:port]/database)".to_string()
    })
}

/// `mysql://user@host:port/db`: what the connection string points at, without a password or any
/// option.
pub fn redact_url(url: &str) -> String {
    let Ok(o) = parse_url(url) else {
        return "mysql://(invalid)".into();
    };
    let user = o.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    format!(
        "mysql://{user}{}:{}/{}",
        o.get_ip_or_hostname(),
        o.get_tcp_port(),
        o.get_db_name().unwrap_or("")
    )
}

/// The `GET_LOCK` name of a tenant (`None`: the trigger's) of table `scope` (`db.table`).
/// At most 64 characters (MySQL's limit): a fingerprint stands for the scope and tenant.
pub fn lock_name(scope: &str, tenant: Option<&str>) -> String {
    match tenant {
        Some(t) => format!(
            "baileys-janitor:t:{:016x}",
            fingerprint(format!("{scope}\0{t}").as_bytes())
        ),
        None => format!("baileys-janitor:g:{:016x}", fingerprint(scope.as_bytes())),
    }
}

fn q(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

/// `col` as exact text: converted to the connection's charset and compared byte by byte
/// (the length check closes PAD SPACE: `utf8mb4_bin` ignores trailing spaces).
fn exact(col: &str) -> String {
    format!("(CONVERT({col} USING utf8mb4) COLLATE utf8mb4_bin = ? AND CHAR_LENGTH({col}) = ?)")
}

/// `col` as its utf8mb4 bytes: compared with a string, byte for byte (a binary string has no
/// collation and no PAD SPACE).
fn bytes_of(col: &str) -> String {
    format!("CAST(CONVERT({col} USING utf8mb4) AS BINARY)")
}

fn exact_params(s: &str) -> [Value; 2] {
    [Value::from(s), Value::from(s.chars().count() as u64)]
}

pub struct MysqlStore {
    conn: Conn,
    target: String,
    layout: KvLayout,
    /// The layout's tenant column (`session`).
    tenant_column: String,
    /// The table's engine keeps transactions (InnoDB): batches go in one.
    transactional: bool,
    /// `GET_LOCK` names are server-wide: they carry the database and table.
    lock_scope: String,
    sql: Sql,
    /// The connection's options, for the shared state's connection of its own and for
    /// [`Store::another`]'s.
    opts: Opts,
    /// Opened for status or a dry run: every connection of this store refuses writes.
    read_only: bool,
    /// Where the shared state lives, once [`Store::shared_state`] has opened it: `remove` writes
    /// [`TrashTarget::InStore`] rows there. Shared with the handles [`Store::another`] gives,
    /// whichever is opened first.
    state_at: Arc<Mutex<Option<state::StateTarget>>>,
    /// The state's tables exist (checked or created on this connection).
    trash_ready: bool,
}

struct Sql {
    tenants: String,
    count: String,
    creds: String,
    scan: String,
    insert: String,
}

impl MysqlStore {
    /// Connects and checks that the layout's table and columns exist and can hold values byte
    /// for byte. `read_only` (status, dry runs): the server itself refuses every write on this
    /// connection. Errors name the redacted target, never the password.
    pub fn connect(url: &str, layout: &KvLayout, read_only: bool) -> Result<MysqlStore> {
        let target = redact_url(url);
        let opts = parse_url(url).map_err(StoreError::Schema)?;
        Self::connect_opts(opts, target, layout, read_only)
    }

    /// [`MysqlStore::connect`] from parsed options (`target`: the redacted URL).
    fn connect_opts(
        opts: Opts,
        target: String,
        layout: &KvLayout,
        read_only: bool,
    ) -> Result<MysqlStore> {
        let db = opts.get_db_name().unwrap_or("").to_owned();
        if db.is_empty() {
            return Err(StoreError::Schema(format!(
                "{target}: the connection string names no database (mysql://user@host/database)"
            )));
        }
        let mut init = vec![
            "SET NAMES utf8mb4",
            // Never wait long for the app's table locks; the app never waits long for ours.
            "SET SESSION lock_wait_timeout = 2",
        ];
        if read_only {
            init.push("SET SESSION TRANSACTION READ ONLY");
        }
        let builder = OptsBuilder::from_opts(opts.clone())
            .tcp_connect_timeout(Some(CONNECT_TIMEOUT))
            .init(init);
        let mut conn = Conn::new(builder).map_err(|e| {
            StoreError::Unavailable(format!("cannot connect to {target}: {}", message(&e)))
        })?;
        let TenantIn::Column(tenant_col) = &layout.tenant else {
            return Err(StoreError::Schema(format!(
                "{target}: layout {} keeps the tenant in the key, which mysql stores do not",
                layout.name
            )));
        };
        let engine: Option<Option<String>> = conn
            .exec_first(
                "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (layout.table.as_str(),),
            )
            .map_err(|e| StoreError::Query(format!("{target}: {}", message(&e))))?;
        let Some(engine) = engine else {
            return Err(StoreError::Schema(format!(
                "{target}: table {} not found (wrong database or layout? see docs/stores/mysql.md)",
                layout.table
            )));
        };
        let columns: Vec<(String, String)> = conn
            .exec(
                "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (layout.table.as_str(),),
            )
            .map_err(|e| StoreError::Query(format!("{target}: {}", message(&e))))?;
        for c in [tenant_col, &layout.key_column, &layout.value_column] {
            let Some((_, ty)) = columns.iter().find(|(n, _)| n.eq_ignore_ascii_case(c)) else {
                return Err(StoreError::Schema(format!(
                    "{target}: table {} has no column {c} (wrong layout? see docs/stores/mysql.md)",
                    layout.table
                )));
            };
            // MySQL's JSON type rewrites what it stores (mysql-baileys 1.5.1 created `value json`;
            // MariaDB's JSON is LONGTEXT and passes): not tested here, so refused rather than
            // cleaned with an undo nobody has proven.
            let ty = ty.to_ascii_lowercase();
            if ty == "json" {
                return Err(StoreError::Schema(format!(
                    "{target}: column {c} of table {} is MySQL's json type, which this janitor does not clean yet; \
                     convert it with ALTER TABLE {} MODIFY {c} LONGTEXT (mysql-baileys reads both; see docs/stores/mysql.md)",
                    layout.table, layout.table
                )));
            }
            if !matches!(
                ty.as_str(),
                "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext"
            ) {
                return Err(StoreError::Schema(format!(
                    "{target}: column {c} of table {} is {ty}, not text: its values could not be restored byte for byte",
                    layout.table
                )));
            }
        }
        // Only InnoDB batches go in a transaction; every other engine (MyISAM, Aria, …) gets the
        // compare-and-delete, which is safe on any of them.
        let transactional = engine.is_some_and(|e| e.eq_ignore_ascii_case("InnoDB"));
        if transactional {
            conn.query_drop("SET SESSION innodb_lock_wait_timeout = 2")
                .map_err(|e| StoreError::Query(format!("{target}: {}", message(&e))))?;
        }
        // A batch's re-read and delete name 100 keys: the optimizer's index dive per key cost
        // more than the statement (MyISAM holds its table lock through them); statistics pick
        // the same unique index. Our session only; a server without the variable is left as is.
        let _ = conn.query_drop("SET SESSION eq_range_index_dive_limit = 1");
        Ok(MysqlStore {
            conn,
            lock_scope: format!("{db}.{}", layout.table),
            sql: sql(layout, tenant_col),
            tenant_column: tenant_col.clone(),
            layout: layout.clone(),
            target,
            transactional,
            opts,
            read_only,
            state_at: Arc::new(Mutex::new(None)),
            trash_ready: false,
        })
    }

    /// For [`TrashTarget::InStore`]: where the trash is, its tables created first if this is
    /// their first use (outside any transaction: DDL commits).
    fn trash_at(&mut self) -> Result<state::StateTarget> {
        let at = self
            .state_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                StoreError::Query(format!(
                    "{}: the trash is in the store, but its shared state was never opened",
                    self.target
                ))
            })?;
        if !self.trash_ready {
            state::ensure(&mut self.conn, &self.target, &at.schema)?;
            self.trash_ready = true;
        }
        Ok(at)
    }

    fn err(&self, e: ::mysql::Error) -> StoreError {
        StoreError::Query(format!("{}: {}", self.target, message(&e)))
    }

    fn key_of(key_type: &str, id: &str) -> String {
        if key_type.is_empty() {
            id.to_owned()
        } else {
            format!("{key_type}-{id}")
        }
    }

    fn lock_name(&self, tenant: Option<&str>) -> String {
        lock_name(&self.lock_scope, tenant)
    }

    fn try_lock(&mut self, name: &str) -> Result<TenantLock> {
        let got: Option<Option<i64>> = self
            .conn
            .exec_first("SELECT GET_LOCK(?, 0)", (name,))
            .map_err(|e| self.err(e))?;
        if got.flatten() == Some(1) {
            return Ok(TenantLock::Acquired);
        }
        let holder: Option<(u64, String, String)> = self
            .conn
            .exec_first(
                "SELECT p.ID, p.USER, p.HOST FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK(?)",
                (name,),
            )
            .ok()
            .flatten();
        Ok(TenantLock::Busy(holder.map_or_else(
            || "another janitor".into(),
            |(id, user, host)| format!("connection {id} of {user} from {host}"),
        )))
    }
}

impl MysqlStore {
    /// Runs `f` in one transaction where the engine has them (committed on `Ok`, rolled back on
    /// `Err`); as it comes on MyISAM.
    fn in_transaction<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if !self.transactional {
            return f(self);
        }
        self.conn
            .query_drop("START TRANSACTION")
            .map_err(|e| self.err(e))?;
        match f(self) {
            Ok(v) => {
                self.conn.query_drop("COMMIT").map_err(|e| self.err(e))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.query_drop("ROLLBACK");
                Err(e)
            }
        }
    }

    fn remove_batch(
        &mut self,
        tenant: &str,
        batch: &[Planned],
        trash_to: &mut TrashTarget<'_>,
        trash_at: Option<&state::StateTarget>,
    ) -> Result<Vec<RemoveOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = batch
            .iter()
            .map(|p| Self::key_of(&p.key.key_type, &p.key.id))
            .collect();
        let target = self.target.clone();
        let err = |e: ::mysql::Error| StoreError::Query(format!("{target}: {}", message(&e)));
        let marks = vec!["?"; keys.len()].join(", ");
        // The fencing check rides on the re-read (one round trip, not two): every row carries
        // whether the tenant lock is still ours on this very connection.
        let select = format!(
            "SELECT {k}, {v}, IS_USED_LOCK(?) = CONNECTION_ID() FROM {table} WHERE {t} = ? AND {te} AND {k} IN ({marks}){lock}",
            k = q(&self.layout.key_column),
            v = q(&self.layout.value_column),
            table = q(&self.layout.table),
            t = q(&self.tenant_column),
            te = exact(&q(&self.tenant_column)),
            lock = if self.transactional {
                " FOR UPDATE"
            } else {
                ""
            },
        );
        let lock_name = self.lock_name(Some(tenant));
        let mut params = vec![Value::from(lock_name.as_str())];
        params.extend(tenant_params(tenant));
        params.extend(keys.iter().map(|k| Value::from(k.as_str())));
        let transactional = self.transactional;
        // 1. Read the batch again. The table's collation may return a key that differs only in
        //    case: only exact matches count.
        let rows: Vec<(Value, Value, Option<i64>)> =
            self.conn.exec(select.as_str(), params).map_err(err)?;
        if rows.is_empty() {
            // Nothing to remove; still, a lost lock is said as such.
            self.check_lock_held(tenant)?;
        } else if rows.iter().any(|(_, _, held)| *held != Some(1)) {
            return Err(self.lock_lost(tenant));
        }
        fault::point("mysql.after_select");
        // A value that is not UTF-8 (or NULL) is there but cannot be compared: changed.
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for (k, v, _) in rows {
            if let Some(k) = text(k) {
                found.insert(k, text(v));
            }
        }
        let mut out = vec![RemoveOutcome::Vanished; batch.len()];
        let mut doomed: Vec<(usize, &str)> = Vec::new();
        let mut trash = Vec::new();
        for (i, (p, key)) in batch.iter().zip(&keys).enumerate() {
            let Some(value) = found.get(key) else {
                continue;
            };
            let Some(value) = value else {
                out[i] = RemoveOutcome::Changed;
                continue;
            };
            if fingerprint(value.as_bytes()) != p.token.hash {
                out[i] = RemoveOutcome::Changed;
                continue;
            }
            trash.push(TrashRow {
                key_type: p.key.key_type.clone(),
                id: p.key.id.clone(),
                value: value.clone(),
                columns: Default::default(),
            });
            doomed.push((i, value));
        }
        if doomed.is_empty() {
            return Ok(out);
        }
        // 2. The trash before anything is removed: in this transaction (InnoDB), or committed
        //    first (MyISAM, and the callback).
        match (&*trash_to, trash_at) {
            (TrashTarget::InStore(tag), Some(at)) => at
                .insert_trash(&mut self.conn, tenant, tag, &trash)
                .map_err(err)?,
            _ => trash_to
                .before_commit(&trash)
                .map_err(|e| StoreError::Query(format!("cannot write the trash: {e}")))?,
        }
        fault::point("mysql.after_trash_insert");
        // 3. One compare-and-delete for the batch: a row goes only with the exact value that
        //    went to the trash. One statement is atomic on any engine.
        let removed = self.delete_exact(tenant, &keys, &doomed).map_err(err)?;
        if removed == doomed.len() as u64 {
            for (i, value) in &doomed {
                out[*i] = RemoveOutcome::Removed {
                    bytes: value.len() as u64,
                };
            }
        } else if transactional {
            // Locked FOR UPDATE: cannot happen; never commit a surprise.
            return Err(StoreError::Query(format!(
                "{target}: a row locked for removal changed: rolled back"
            )));
        } else {
            self.settle(tenant, &keys, &doomed, removed, &mut out)
                .map_err(err)?;
        }
        fault::point("mysql.after_delete");
        // MyISAM: a row the app rewrote after it went to the trash was never removed; its trash
        // copy goes, so the run lists only what it removed.
        if let (TrashTarget::InStore(tag), Some(at)) = (&*trash_to, trash_at) {
            let kept: Vec<&super::KeyRef> = batch
                .iter()
                .zip(&out)
                .filter(|(_, o)| **o == RemoveOutcome::Changed)
                .map(|(p, _)| &p.key)
                .filter(|k| {
                    trash
                        .iter()
                        .any(|t| t.key_type == k.key_type && t.id == k.id)
                })
                .collect();
            if !kept.is_empty() {
                at.forget_trash(&mut self.conn, tenant, &tag.run_id, &kept)
                    .map_err(err)?;
            }
        }
        Ok(out)
    }

    /// Fencing: the tenant lock is still ours on this very connection. A driver that quietly
    /// reconnected would have lost it with the old connection; then another janitor may be at
    /// work, and nothing is removed.
    fn check_lock_held(&mut self, tenant: &str) -> Result<()> {
        let name = self.lock_name(Some(tenant));
        let held: Option<Option<i64>> = self
            .conn
            .exec_first("SELECT IS_USED_LOCK(?) = CONNECTION_ID()", (name.as_str(),))
            .map_err(|e| self.err(e))?;
        if held.flatten() == Some(1) {
            return Ok(());
        }
        Err(self.lock_lost(tenant))
    }

    fn lock_lost(&self, tenant: &str) -> StoreError {
        StoreError::Query(format!(
            "{}: the lock on tenant {tenant} is no longer held by this connection: nothing removed",
            self.target
        ))
    }

    /// Deletes the `doomed` rows (index into `keys`, value read) whose value is still exactly
    /// the one read, in one statement; how many went.
    ///
    /// Exact: the key and the value, as utf8mb4 bytes, must equal the ones read: a binary
    /// comparison, so neither the table's case-blind collation nor PAD SPACE lets another value
    /// pass. One `(key, value) IN (…)` of constants, which the server sorts once and searches
    /// per row, where an `OR` of one test per row costs a test per row and pair (it was most of
    /// the statement's time, and MyISAM holds the table lock for all of it). `k IN (…)` stays
    /// for the index.
    fn delete_exact(
        &mut self,
        tenant: &str,
        keys: &[String],
        doomed: &[(usize, &str)],
    ) -> std::result::Result<u64, ::mysql::Error> {
        let (k, v) = (q(&self.layout.key_column), q(&self.layout.value_column));
        let sql = format!(
            "DELETE FROM {table} WHERE {t} = ? AND {te} AND {k} IN ({marks}) AND ({kb}, {vb}) IN ({pairs})",
            table = q(&self.layout.table),
            t = q(&self.tenant_column),
            te = exact(&q(&self.tenant_column)),
            marks = vec!["?"; doomed.len()].join(", "),
            kb = bytes_of(&k),
            vb = bytes_of(&v),
            pairs = vec!["(?, ?)"; doomed.len()].join(", "),
        );
        let mut params = tenant_params(tenant);
        params.extend(doomed.iter().map(|(i, _)| Value::from(keys[*i].as_str())));
        for (i, value) in doomed {
            params.push(Value::from(keys[*i].as_str()));
            params.push(Value::from(*value));
        }
        self.conn.exec_drop(sql, params)?;
        Ok(self.conn.affected_rows())
    }

    /// MyISAM, when the app changed some of the batch between the re-read and the delete: which
    /// rows went. A row still there was kept (changed). When as many rows are gone as the delete
    /// removed, those are the ones it removed; otherwise the app also removed some of them, and
    /// which is unknown (all are in the trash: `restore` puts back any that went).
    fn settle(
        &mut self,
        tenant: &str,
        keys: &[String],
        doomed: &[(usize, &str)],
        removed: u64,
        out: &mut [RemoveOutcome],
    ) -> std::result::Result<(), ::mysql::Error> {
        let k = q(&self.layout.key_column);
        let sql = format!(
            "SELECT {k} FROM {table} WHERE {t} = ? AND {te} AND {k} IN ({marks})",
            table = q(&self.layout.table),
            t = q(&self.tenant_column),
            te = exact(&q(&self.tenant_column)),
            marks = vec!["?"; doomed.len()].join(", "),
        );
        let mut params = tenant_params(tenant);
        params.extend(doomed.iter().map(|(i, _)| Value::from(keys[*i].as_str())));
        let present: std::collections::HashSet<String> = self
            .conn
            .exec::<Value, _, _>(sql, params)?
            .into_iter()
            .filter_map(text)
            .collect();
        let gone = doomed
            .iter()
            .filter(|(i, _)| !present.contains(&keys[*i]))
            .count() as u64;
        for (i, value) in doomed {
            out[*i] = if present.contains(&keys[*i]) {
                RemoveOutcome::Changed
            } else if gone == removed {
                RemoveOutcome::Removed {
                    bytes: value.len() as u64,
                }
            } else {
                RemoveOutcome::Unknown(
                    "the app removed rows of this batch while the janitor did: it is in the trash"
                        .into(),
                )
            };
        }
        Ok(())
    }

    fn restore_rows(&mut self, tenant: &str, rows: &[TrashRow]) -> Result<Vec<RestoreOutcome>> {
        let target = self.target.clone();
        let err = |e: ::mysql::Error| StoreError::Query(format!("{target}: {}", message(&e)));
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let key = Self::key_of(&r.key_type, &r.id);
            let params: Vec<Value> = vec![
                tenant.into(),
                key.as_str().into(),
                r.value.as_str().into(),
                tenant.into(),
                key.as_str().into(),
            ];
            let done = self
                .conn
                .exec_drop(self.sql.insert.as_str(), params)
                .map(|()| self.conn.affected_rows());
            out.push(match done {
                Ok(1) => RestoreOutcome::Restored,
                Ok(_) => RestoreOutcome::Exists,
                Err(::mysql::Error::MySqlError(m)) if m.code == ER_DUP_ENTRY => {
                    RestoreOutcome::Exists
                }
                Err(e) => return Err(err(e)),
            });
        }
        Ok(out)
    }
}

fn sql(l: &KvLayout, tenant_col: &str) -> Sql {
    let (t, k, v, table) = (
        q(tenant_col),
        q(&l.key_column),
        q(&l.value_column),
        q(&l.table),
    );
    // `t = ?` (the table's collation) finds the rows through the index; `exact(t)` keeps only
    // this tenant's own.
    let tenant = format!("{t} = ? AND {}", exact(&t));
    Sql {
        tenants: format!(
            "SELECT DISTINCT CONVERT({t} USING utf8mb4) COLLATE utf8mb4_bin FROM {table} WHERE {v} IS NOT NULL"
        ),
        count: format!("SELECT COUNT(*) FROM {table} WHERE {tenant} AND {v} IS NOT NULL"),
        // The creds row as mysql-baileys reads it (`id = 'creds'`, the table's collation).
        creds: format!("SELECT {v} FROM {table} WHERE {tenant} AND {k} = ? AND {v} IS NOT NULL"),
        scan: format!(
            "SELECT {k}, {v} FROM {table} WHERE {tenant} AND NOT ({k} = ?) AND {v} IS NOT NULL"
        ),
        // Not where the app would already read a row of that key (its own, collation-equal
        // match); the unique index turns a race with the app into ER_DUP_ENTRY.
        insert: format!(
            "INSERT INTO {table} ({t}, {k}, {v}) SELECT ?, ?, ? FROM DUAL \
             WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {t} = ? AND {k} = ?)"
        ),
    }
}

fn tenant_params(tenant: &str) -> Vec<Value> {
    let mut p = vec![Value::from(tenant)];
    p.extend(exact_params(tenant));
    p
}

/// The server's own message for its errors (no connection details in them), the error's text
/// otherwise.
fn message(e: &::mysql::Error) -> String {
    match e {
        ::mysql::Error::MySqlError(m) => m.message.clone(),
        other => other.to_string(),
    }
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::Bytes(b) => String::from_utf8(b).ok(),
        _ => None,
    }
}

impl Store for MysqlStore {
    fn tenants(&mut self) -> Result<Vec<String>> {
        let rows: Vec<Option<Vec<u8>>> = self
            .conn
            .query(self.sql.tenants.as_str())
            .map_err(|e| self.err(e))?;
        let mut out: Vec<String> = rows
            .into_iter()
            .flatten()
            .filter_map(|b| String::from_utf8(b).ok())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn count(&mut self, tenant: &str) -> Result<usize> {
        let n: Option<u64> = self
            .conn
            .exec_first(self.sql.count.as_str(), tenant_params(tenant))
            .map_err(|e| self.err(e))?;
        Ok(n.unwrap_or(0) as usize)
    }

    fn creds(&mut self, tenant: &str) -> Result<Option<Vec<u8>>> {
        let mut params = tenant_params(tenant);
        params.push(Value::from(self.layout.creds_key.as_str()));
        let row: Option<Option<Vec<u8>>> = self
            .conn
            .exec_first(self.sql.creds.as_str(), params)
            .map_err(|e| self.err(e))?;
        Ok(row.flatten())
    }

    fn scan(&mut self, tenant: &str, f: &mut dyn FnMut(RawRow<'_>)) -> Result<()> {
        let mut params = tenant_params(tenant);
        params.push(Value::from(self.layout.creds_key.as_str()));
        let target = self.target.clone();
        let err = |e: ::mysql::Error| StoreError::Query(format!("{target}: {}", message(&e)));
        // Streamed: one row in memory at a time, whatever the tenant's size.
        let rows = self
            .conn
            .exec_iter(self.sql.scan.as_str(), params)
            .map_err(err)?;
        for row in rows {
            let mut row = row.map_err(err)?;
            let key = row.take::<Value, _>(0).and_then(text);
            let value = row.take::<Value, _>(1).and_then(text);
            // A key or value that is not UTF-8 could not be compared or restored exactly: it is
            // counted as an unknown key, and unknown keys are never removed.
            let (key, value) = match (key, value) {
                (Some(k), Some(v)) => (k, v),
                (k, _) => (k.unwrap_or_else(|| "(not utf-8)".into()), String::new()),
            };
            let (key_type, id) = split_kv_key(&key).unwrap_or(("", key.as_str()));
            f(RawRow {
                key_type,
                id,
                value: &value,
                updated_at_us: None,
                size: None,
            });
        }
        Ok(())
    }

    fn remove(
        &mut self,
        tenant: &str,
        batch: &[Planned],
        trash_to: &mut TrashTarget<'_>,
    ) -> Result<Vec<RemoveOutcome>> {
        let trash_at = match trash_to {
            TrashTarget::InStore(_) => Some(self.trash_at()?),
            _ => None,
        };
        let out =
            self.in_transaction(|s| s.remove_batch(tenant, batch, trash_to, trash_at.as_ref()))?;
        fault::point("mysql.after_commit");
        Ok(out)
    }

    /// InnoDB: all rows or none. MyISAM: row by row (restores are rare and small); a rerun finds the restored ones there and
    /// leaves them alone.
    fn restore(&mut self, tenant: &str, rows: &[TrashRow]) -> Result<Vec<RestoreOutcome>> {
        self.in_transaction(|s| s.restore_rows(tenant, rows))
    }

    fn lock_tenant(&mut self, tenant: &str) -> Result<TenantLock> {
        let name = self.lock_name(Some(tenant));
        self.try_lock(&name)
    }

    fn unlock_tenant(&mut self, tenant: &str) {
        let name = self.lock_name(Some(tenant));
        let _ = self
            .conn
            .exec_drop("SELECT RELEASE_LOCK(?)", (name.as_str(),));
    }

    /// `GET_LOCK` is the connection's: every janitor and every worker has its own.
    fn tenant_lock_excludes_every_process(&self) -> bool {
        true
    }

    fn lock_global(&mut self) -> Result<TenantLock> {
        let name = self.lock_name(None);
        self.try_lock(&name)
    }

    /// A connection of its own, checked and set up like the first, for another worker
    /// (`--jobs`). One connection is one server thread, and the work is mostly the server's
    /// (the re-reads, the deletes, the trash commits and their log flushes): a second connection
    /// cleans another tenant meanwhile (the bench's 1,000 MyISAM tenants on 2 cores: 21-23 s
    /// against 27-29 s, dry runs 1.5-1.7 s against 2.6-3.6 s). Every guarantee stays with the
    /// tenant: its lock is a `GET_LOCK` of the connection that cleans it, which every other
    /// connection (this process's too) finds busy; the re-read, the trash and the
    /// compare-and-delete of its batches run on that connection; the trash goes where the first
    /// handle's shared state is (`state_at`, shared).
    fn another(&self) -> Result<Option<Box<dyn Store + Send>>> {
        let mut h = Self::connect_opts(
            self.opts.clone(),
            self.target.clone(),
            &self.layout,
            self.read_only,
        )?;
        h.state_at = Arc::clone(&self.state_at);
        Ok(Some(Box::new(h)))
    }

    /// InnoDB: in the deleting transaction; MyISAM: committed just before the compare-and-delete
    /// (the engine has no transaction), which keeps the same promise: in place or in the trash.
    fn trash_in_transaction(&self) -> bool {
        true
    }

    fn shared_state(
        &self,
        opts: &super::shared::SharedOptions,
    ) -> Result<Option<Box<dyn super::SharedState>>> {
        let mut init = vec![
            "SET NAMES utf8mb4",
            "SET SESSION lock_wait_timeout = 2",
            "SET SESSION innodb_lock_wait_timeout = 2",
        ];
        if opts.read_only {
            init.push("SET SESSION TRANSACTION READ ONLY");
        }
        let builder = OptsBuilder::from_opts(self.opts.clone())
            .tcp_connect_timeout(Some(CONNECT_TIMEOUT))
            .init(init);
        let conn = Conn::new(builder.clone()).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to {}: {}",
                self.target,
                message(&e)
            ))
        })?;
        let at = state::StateTarget {
            schema: opts.schema.clone(),
            store: self.lock_scope.clone(),
        };
        let shared = state::MysqlState::open(conn, builder, &self.target, at.clone(), opts)?;
        *self.state_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
        Ok(Some(Box::new(shared)))
    }
}

#[cfg(test)]
mod tests;
