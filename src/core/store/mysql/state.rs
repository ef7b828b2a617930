//! The janitor's state in MySQL / MariaDB (issue 23): database `opts.schema` (default
//! `baileys_janitor`) on the server of the auth table, with three InnoDB tables, created on the
//! first write:
//!
//! ```text
//! meta   (k, value)                             schema_version
//! docs   (store, space, name, version, body, updated_at)      PK (store, space, name)
//! trash  (store, tenant, run_id, host, removed_at, key_type, key_id, value, columns,
//!         restored_at)                          PK (store, tenant, run_id, key_type, key_id)
//! ```
//!
//! Names and values are binary (`VARBINARY`, `LONGBLOB`): compared and kept byte for byte,
//! whatever the server's collations. Times are `DATETIME(6)` in UTC, written and read as
//! microseconds since the epoch, so the session's time zone never shifts them. `store` is the
//! auth table (`app.auth`), never the URL: two hosts reach one server by different names and
//! must share one state, and two apps on one server keep theirs apart.

use ::mysql::prelude::Queryable;
use ::mysql::{Conn, OptsBuilder, Value};
use chrono::{DateTime, Utc};

use super::super::shared::{
    Doc, SCHEMA_VERSION, SchemaGate, SharedOptions, SharedState, Space, TrashRun, TrashTag,
    TrashedRow,
};
use super::super::{KeyRef, Result, StoreError, TrashRow};
use super::{ER_DUP_ENTRY, message, q};

const ER_DBACCESS_DENIED: u16 = 1044;
const ER_BAD_DB: u16 = 1049;
const ER_TABLEACCESS_DENIED: u16 = 1142;
const ER_NO_SUCH_TABLE: u16 = 1146;
const ER_SPECIFIC_ACCESS_DENIED: u16 = 1227;

/// Trash rows per multi-row statement (9 parameters each): the longest transaction stays short.
pub const TRASH_CHUNK: usize = 100;
/// Trash rows per purge statement.
const PURGE_BATCH: u64 = 1000;

/// `DATETIME(6)` from microseconds since the epoch, and back, free of the session's time zone.
const FROM_US: &str = "(TIMESTAMP'1970-01-01 00:00:00' + INTERVAL ? MICROSECOND)";
fn to_us(col: &str) -> String {
    format!("TIMESTAMPDIFF(MICROSECOND, TIMESTAMP'1970-01-01 00:00:00', {col})")
}

/// Where the state of one store lives: the database and the store's name in it.
#[derive(Clone, Debug)]
pub struct StateTarget {
    pub schema: String,
    /// The auth table, database-qualified (`app.auth`).
    pub store: String,
}

impl StateTarget {
    fn table(&self, name: &str) -> String {
        format!("{}.{}", q(&self.schema), q(name))
    }

    /// Writes `rows` to the trash, [`TRASH_CHUNK`] rows per statement, on `conn` (in the
    /// caller's transaction, if any). A row already there for this run is replaced: the trash
    /// holds what was removed last.
    pub fn insert_trash(
        &self,
        conn: &mut impl Queryable,
        tenant: &str,
        tag: &TrashTag,
        rows: &[TrashRow],
    ) -> std::result::Result<(), ::mysql::Error> {
        let removed_us = tag.removed_at.timestamp_micros();
        for chunk in rows.chunks(TRASH_CHUNK) {
            let marks =
                vec![format!("(?, ?, ?, ?, {FROM_US}, ?, ?, ?, ?)"); chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO {} (`store`, `tenant`, `run_id`, `host`, `removed_at`, `key_type`, `key_id`, `value`, `columns`) \
                 VALUES {marks} ON DUPLICATE KEY UPDATE `value` = VALUES(`value`), `columns` = VALUES(`columns`), \
                 `host` = VALUES(`host`), `removed_at` = VALUES(`removed_at`), `restored_at` = NULL",
                self.table("trash")
            );
            let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 9);
            for r in chunk {
                let columns = serde_json::to_string(&r.columns).unwrap_or_else(|_| "{}".into());
                params.extend([
                    Value::from(self.store.as_bytes()),
                    Value::from(tenant.as_bytes()),
                    Value::from(tag.run_id.as_bytes()),
                    Value::from(tag.host.as_bytes()),
                    Value::from(removed_us),
                    Value::from(r.key_type.as_bytes()),
                    Value::from(r.id.as_bytes()),
                    Value::from(r.value.as_bytes()),
                    Value::from(columns.into_bytes()),
                ]);
            }
            conn.exec_drop(sql, params)?;
        }
        Ok(())
    }

    /// Takes rows back out of the trash: a MyISAM table's row was written to the trash before
    /// its compare-and-delete, and the app rewrote it in between (it was never removed).
    pub fn forget_trash(
        &self,
        conn: &mut Conn,
        tenant: &str,
        run_id: &str,
        keys: &[&KeyRef],
    ) -> std::result::Result<(), ::mysql::Error> {
        let sql = format!(
            "DELETE FROM {} WHERE `store` = ? AND `tenant` = ? AND `run_id` = ? AND `key_type` = ? AND `key_id` = ?",
            self.table("trash")
        );
        for k in keys {
            conn.exec_drop(
                sql.as_str(),
                (
                    self.store.as_bytes(),
                    tenant.as_bytes(),
                    run_id.as_bytes(),
                    k.key_type.as_bytes(),
                    k.id.as_bytes(),
                ),
            )?;
        }
        Ok(())
    }
}

fn code(e: &::mysql::Error) -> Option<u16> {
    match e {
        ::mysql::Error::MySqlError(m) => Some(m.code),
        _ => None,
    }
}

/// The version the database's `meta` records; `None` when there is none (or this account
/// cannot see it: then creating it tells what to run).
fn read_version(conn: &mut Conn, target: &str, schema: &str) -> Result<Option<u32>> {
    let sql = format!(
        "SELECT `value` FROM {}.`meta` WHERE `k` = 'schema_version'",
        q(schema)
    );
    let v: Option<Vec<u8>> = match conn.query_first(sql) {
        Ok(v) => v,
        Err(e)
            if matches!(
                code(&e),
                Some(ER_NO_SUCH_TABLE | ER_BAD_DB | ER_DBACCESS_DENIED | ER_TABLEACCESS_DENIED)
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(StoreError::Query(format!("{target}: {}", message(&e)))),
    };
    let Some(v) = v else { return Ok(None) };
    let v = String::from_utf8_lossy(&v).into_owned();
    v.parse().map(Some).map_err(|_| {
        StoreError::Schema(format!(
            "{target}: database {schema}: meta.schema_version is {v:?}, not a number"
        ))
    })
}

fn newer(target: &str, schema: &str, found: u32) -> StoreError {
    StoreError::Schema(format!(
        "{target}: database {schema} was written by a newer baileys-janitor (schema {found}, this binary knows {SCHEMA_VERSION}): upgrade"
    ))
}

/// `'user'@'host'` of this connection's account.
fn account(conn: &mut Conn) -> String {
    let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").ok().flatten();
    let who = who.unwrap_or_default();
    let (user, host) = who.rsplit_once('@').unwrap_or((who.as_str(), "%"));
    format!("'{user}'@'{host}'")
}

fn cannot_create(target: &str, schema: &str, account: &str) -> StoreError {
    StoreError::Schema(format!(
        "{target}: account {account} cannot create database {schema} for the janitor's state: have an administrator run \
         `CREATE DATABASE {s} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin; GRANT ALL ON {s}.* TO {account};` \
         (the janitor then creates its tables), or set store.state_schema to a database this account may create \
         (see docs/stores/mysql.md)",
        s = q(schema)
    ))
}

/// Creates the database and its tables, or migrates them forward, once (under a `GET_LOCK`
/// every host sees). Never inside a transaction: DDL commits implicitly.
pub fn ensure(conn: &mut Conn, target: &str, schema: &str) -> Result<()> {
    match read_version(conn, target, schema)? {
        Some(v) if v == SCHEMA_VERSION => return Ok(()),
        Some(v) if v > SCHEMA_VERSION => return Err(newer(target, schema, v)),
        _ => {}
    }
    let err = |e: ::mysql::Error| StoreError::Query(format!("{target}: {}", message(&e)));
    let lock = format!("baileys-janitor:state:{schema}");
    let got: Option<Option<i64>> = conn
        .exec_first("SELECT GET_LOCK(?, 10)", (lock.as_str(),))
        .map_err(err)?;
    if got.flatten() != Some(1) {
        return Err(StoreError::Query(format!(
            "{target}: another janitor has been creating database {schema} for 10 s: try again"
        )));
    }
    let done = create(conn, target, schema);
    let _ = conn.exec_drop("SELECT RELEASE_LOCK(?)", (lock.as_str(),));
    done
}

fn create(conn: &mut Conn, target: &str, schema: &str) -> Result<()> {
    // Another host may have created it while we waited for the lock.
    match read_version(conn, target, schema)? {
        Some(v) if v == SCHEMA_VERSION => return Ok(()),
        Some(v) if v > SCHEMA_VERSION => return Err(newer(target, schema, v)),
        _ => {}
    }
    let denied = |conn: &mut Conn, e: ::mysql::Error| match code(&e) {
        Some(ER_DBACCESS_DENIED | ER_TABLEACCESS_DENIED | ER_SPECIFIC_ACCESS_DENIED) => {
            cannot_create(target, schema, &account(conn))
        }
        _ => StoreError::Query(format!("{target}: {}", message(&e))),
    };
    let exists: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (schema,),
        )
        .map_err(|e| denied(conn, e))?;
    let s = q(schema);
    // CREATE DATABASE checks the privilege before IF NOT EXISTS: one an administrator made for
    // us must not be created again.
    if exists != Some(1)
        && let Err(e) = conn.query_drop(format!(
            "CREATE DATABASE IF NOT EXISTS {s} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        ))
    {
        return Err(denied(conn, e));
    }
    let ddl = [
        format!(
            "CREATE TABLE IF NOT EXISTS {s}.`meta` (`k` VARBINARY(64) NOT NULL PRIMARY KEY, \
             `value` VARBINARY(255) NOT NULL) ENGINE=InnoDB"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {s}.`docs` (`store` VARBINARY(255) NOT NULL, `space` VARBINARY(32) NOT NULL, \
             `name` VARBINARY(512) NOT NULL, `version` BIGINT UNSIGNED NOT NULL, `body` LONGBLOB NOT NULL, \
             `updated_at` DATETIME(6) NOT NULL, PRIMARY KEY (`store`, `space`, `name`)) ENGINE=InnoDB"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {s}.`trash` (`store` VARBINARY(255) NOT NULL, `tenant` VARBINARY(255) NOT NULL, \
             `run_id` VARBINARY(128) NOT NULL, `host` VARBINARY(255) NOT NULL, `removed_at` DATETIME(6) NOT NULL, \
             `key_type` VARBINARY(128) NOT NULL, `key_id` VARBINARY(1024) NOT NULL, `value` LONGBLOB NOT NULL, \
             `columns` BLOB NOT NULL, `restored_at` DATETIME(6) NULL, \
             PRIMARY KEY (`store`, `tenant`, `run_id`, `key_type`, `key_id`), KEY `trash_removed_at` (`removed_at`)) ENGINE=InnoDB"
        ),
        format!(
            "INSERT INTO {s}.`meta` (`k`, `value`) VALUES ('schema_version', '{SCHEMA_VERSION}') \
             ON DUPLICATE KEY UPDATE `value` = VALUES(`value`)"
        ),
    ];
    for sql in ddl {
        if let Err(e) = conn.query_drop(sql) {
            return Err(denied(conn, e));
        }
    }
    Ok(())
}

pub struct MysqlState {
    conn: Conn,
    /// How `conn` was made (its session settings included), for [`SharedState::another`].
    builder: OptsBuilder,
    /// As opened (read-only or not), for [`SharedState::another`].
    opts: SharedOptions,
    target: String,
    at: StateTarget,
    /// Whether the database is there at this binary's version (read-only: never created).
    gate: SchemaGate,
}

fn to_time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

fn utf8(target: &str, b: Vec<u8>) -> Result<String> {
    String::from_utf8(b).map_err(|_| {
        StoreError::Query(format!(
            "{target}: a value in the janitor's state is not UTF-8"
        ))
    })
}

impl MysqlState {
    /// Opens the state on `conn` (a connection of its own). Refuses a database written by a
    /// newer binary; creates it (or refuses with the SQL to run) unless `opts.read_only`.
    pub fn open(
        mut conn: Conn,
        builder: OptsBuilder,
        target: &str,
        at: StateTarget,
        opts: &SharedOptions,
    ) -> Result<MysqlState> {
        let version = read_version(&mut conn, target, &at.schema)?;
        let gate = SchemaGate::open(
            opts.read_only,
            version,
            |v| newer(target, &at.schema, v),
            || ensure(&mut conn, target, &at.schema),
        )?;
        Ok(MysqlState {
            conn,
            builder,
            opts: opts.clone(),
            target: target.to_owned(),
            gate,
            at,
        })
    }

    fn err(&self, e: ::mysql::Error) -> StoreError {
        StoreError::Query(format!("{}: {}", self.target, message(&e)))
    }

    fn writable(&mut self) -> Result<()> {
        self.gate.writable(&self.target, || {
            ensure(&mut self.conn, &self.target, &self.at.schema)
        })
    }

    /// A missing database reads as empty (another host may have created it since we opened).
    fn readable(&mut self) -> Result<bool> {
        self.gate.readable(
            || read_version(&mut self.conn, &self.target, &self.at.schema),
            |v| newer(&self.target, &self.at.schema, v),
        )
    }

    fn runs_sql(&self, of_tenant: bool) -> String {
        format!(
            "SELECT `tenant`, `run_id`, MAX(`host`), {removed}, \
             CAST(SUM(`restored_at` IS NULL) AS SIGNED), \
             CAST(COALESCE(SUM(CASE WHEN `restored_at` IS NULL THEN LENGTH(`value`) END), 0) AS SIGNED), \
             CAST(SUM(`restored_at` IS NOT NULL) AS SIGNED) \
             FROM {trash} WHERE `store` = ?{tenant} GROUP BY `tenant`, `run_id` ORDER BY 4 DESC, `tenant`, `run_id`",
            removed = to_us("MAX(`removed_at`)"),
            trash = self.at.table("trash"),
            tenant = if of_tenant { " AND `tenant` = ?" } else { "" }
        )
    }
}

type RunRow = (Vec<u8>, Vec<u8>, Vec<u8>, i64, i64, i64, i64);

impl SharedState for MysqlState {
    fn describe(&self) -> String {
        format!("database {} on {}", self.at.schema, self.target)
    }

    fn exposure(&mut self) -> Result<Vec<String>> {
        // Grants on the database (or a pattern matching it) and on its tables to accounts other
        // than ours, as far as this account can see them (all of them where it may read the
        // grant tables). Global privileges (an administrator's) are not listed.
        let me = account(&mut self.conn);
        let rows: Vec<(String, String, String)> = self
            .conn
            .exec(
                "SELECT what, GRANTEE, GROUP_CONCAT(DISTINCT PRIVILEGE_TYPE ORDER BY PRIVILEGE_TYPE SEPARATOR ', ') FROM ( \
                   SELECT CONCAT('database ', ?) AS what, GRANTEE, PRIVILEGE_TYPE \
                   FROM information_schema.SCHEMA_PRIVILEGES WHERE ? LIKE TABLE_SCHEMA \
                   UNION ALL \
                   SELECT CONCAT('table ', TABLE_SCHEMA, '.', TABLE_NAME), GRANTEE, PRIVILEGE_TYPE \
                   FROM information_schema.TABLE_PRIVILEGES WHERE TABLE_SCHEMA = ?) g \
                 WHERE GRANTEE <> ? GROUP BY what, GRANTEE ORDER BY what, GRANTEE",
                (
                    self.at.schema.as_str(),
                    self.at.schema.as_str(),
                    self.at.schema.as_str(),
                    me.as_str(),
                ),
            )
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(what, who, privs)| {
                format!(
                    "{what} (the janitor's state, removed keys included) grants {privs} to {who}: \
                     only the janitor's account should (REVOKE ... FROM {who}; see docs/stores/mysql.md)"
                )
            })
            .collect())
    }

    fn read(&mut self, space: Space, name: &str) -> Result<Option<Doc>> {
        if !self.readable()? {
            return Ok(None);
        }
        let sql = format!(
            "SELECT `body`, `version` FROM {} WHERE `store` = ? AND `space` = ? AND `name` = ?",
            self.at.table("docs")
        );
        let row: Option<(Vec<u8>, u64)> = self
            .conn
            .exec_first(
                sql,
                (
                    self.at.store.as_bytes(),
                    space.as_str().as_bytes(),
                    name.as_bytes(),
                ),
            )
            .map_err(|e| self.err(e))?;
        Ok(row.map(|(body, version)| Doc { body, version }))
    }

    fn read_many(&mut self, docs: &[(Space, &str)]) -> Result<Vec<Option<Doc>>> {
        if docs.is_empty() || !self.readable()? {
            return Ok(vec![None; docs.len()]);
        }
        // One statement: one round trip for all of them (binary columns: exact names).
        let pairs = vec!["(`space` = ? AND `name` = ?)"; docs.len()].join(" OR ");
        let sql = format!(
            "SELECT `space`, `name`, `body`, `version` FROM {} WHERE `store` = ? AND ({pairs})",
            self.at.table("docs")
        );
        let mut params: Vec<Value> = vec![self.at.store.as_bytes().into()];
        for (space, name) in docs {
            params.push(space.as_str().as_bytes().into());
            params.push(name.as_bytes().into());
        }
        // (space, name, body, version)
        type Found = (Vec<u8>, Vec<u8>, Vec<u8>, u64);
        let rows: Vec<Found> = self.conn.exec(sql, params).map_err(|e| self.err(e))?;
        let mut out = vec![None; docs.len()];
        for (space, name, body, version) in rows {
            for (at, (s, n)) in docs.iter().enumerate() {
                if s.as_str().as_bytes() == space && n.as_bytes() == name {
                    out[at] = Some(Doc {
                        body: body.clone(),
                        version,
                    });
                }
            }
        }
        Ok(out)
    }

    fn swap(
        &mut self,
        space: Space,
        name: &str,
        expected: Option<u64>,
        body: &[u8],
    ) -> Result<bool> {
        self.writable()?;
        let docs = self.at.table("docs");
        let store = self.at.store.as_bytes().to_vec();
        let done = match expected {
            None => self.conn.exec_drop(
                format!(
                    "INSERT INTO {docs} (`store`, `space`, `name`, `version`, `body`, `updated_at`) \
                     VALUES (?, ?, ?, 1, ?, UTC_TIMESTAMP(6))"
                ),
                (store, space.as_str().as_bytes(), name.as_bytes(), body),
            ),
            Some(v) => self.conn.exec_drop(
                format!(
                    "UPDATE {docs} SET `version` = `version` + 1, `body` = ?, `updated_at` = UTC_TIMESTAMP(6) \
                     WHERE `store` = ? AND `space` = ? AND `name` = ? AND `version` = ?"
                ),
                (body, store, space.as_str().as_bytes(), name.as_bytes(), v),
            ),
        };
        match done {
            Ok(()) => Ok(self.conn.affected_rows() == 1),
            // Another host created it first.
            Err(e) if code(&e) == Some(ER_DUP_ENTRY) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    fn list(&mut self, space: Space) -> Result<Vec<(String, Vec<u8>)>> {
        if !self.readable()? {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT `name`, `body` FROM {} WHERE `store` = ? AND `space` = ? ORDER BY `name`",
            self.at.table("docs")
        );
        let rows: Vec<(Vec<u8>, Vec<u8>)> = self
            .conn
            .exec(sql, (self.at.store.as_bytes(), space.as_str().as_bytes()))
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(n, b)| Ok((utf8(&self.target, n)?, b)))
            .collect()
    }

    fn put_trash(&mut self, tenant: &str, tag: &TrashTag, rows: &[TrashRow]) -> Result<()> {
        self.writable()?;
        if rows.is_empty() {
            return Ok(());
        }
        // One transaction: all the rows are durable when it returns, or none.
        let mut tx = self
            .conn
            .start_transaction(::mysql::TxOpts::default())
            .map_err(|e| StoreError::Query(format!("{}: {}", self.target, message(&e))))?;
        let at = self.at.clone();
        let target = self.target.clone();
        let err = |e: ::mysql::Error| StoreError::Query(format!("{target}: {}", message(&e)));
        at.insert_trash(&mut tx, tenant, tag, rows).map_err(err)?;
        tx.commit().map_err(err)
    }

    fn trash_runs(&mut self, tenant: Option<&str>) -> Result<Vec<TrashRun>> {
        if !self.readable()? {
            return Ok(Vec::new());
        }
        let sql = self.runs_sql(tenant.is_some());
        let mut params = vec![Value::from(self.at.store.as_bytes())];
        params.extend(tenant.map(|t| Value::from(t.as_bytes())));
        let rows: Vec<RunRow> = self.conn.exec(sql, params).map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(t, r, h, at, rows, bytes, restored)| {
                Ok(TrashRun {
                    tenant: utf8(&self.target, t)?,
                    run_id: utf8(&self.target, r)?,
                    host: utf8(&self.target, h)?,
                    removed_at: to_time(at),
                    rows: rows as usize,
                    bytes: bytes as u64,
                    restored: restored as usize,
                })
            })
            .collect()
    }

    fn trash_rows(&mut self, tenant: &str, run_id: &str) -> Result<Vec<TrashedRow>> {
        if !self.readable()? {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT `key_type`, `key_id`, `value`, `columns`, `restored_at` IS NOT NULL FROM {} \
             WHERE `store` = ? AND `tenant` = ? AND `run_id` = ? ORDER BY `key_type`, `key_id`",
            self.at.table("trash")
        );
        type Row = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, bool);
        let rows: Vec<Row> = self
            .conn
            .exec(
                sql,
                (
                    self.at.store.as_bytes(),
                    tenant.as_bytes(),
                    run_id.as_bytes(),
                ),
            )
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(t, i, v, c, restored)| {
                let columns = serde_json::from_slice(&c).map_err(|e| {
                    StoreError::Query(format!(
                        "{}: a trashed row's columns are not readable ({e})",
                        self.target
                    ))
                })?;
                Ok(TrashedRow {
                    row: TrashRow {
                        key_type: utf8(&self.target, t)?,
                        id: utf8(&self.target, i)?,
                        value: utf8(&self.target, v)?,
                        columns,
                    },
                    restored,
                })
            })
            .collect()
    }

    fn mark_restored(&mut self, tenant: &str, run_id: &str, keys: &[KeyRef]) -> Result<()> {
        self.writable()?;
        for chunk in keys.chunks(TRASH_CHUNK * 4) {
            let marks = vec!["(?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "UPDATE {} SET `restored_at` = UTC_TIMESTAMP(6) WHERE `store` = ? AND `tenant` = ? \
                 AND `run_id` = ? AND `restored_at` IS NULL AND (`key_type`, `key_id`) IN ({marks})",
                self.at.table("trash")
            );
            let mut params = vec![
                Value::from(self.at.store.as_bytes()),
                Value::from(tenant.as_bytes()),
                Value::from(run_id.as_bytes()),
            ];
            for k in chunk {
                params.push(Value::from(k.key_type.as_bytes()));
                params.push(Value::from(k.id.as_bytes()));
            }
            self.conn.exec_drop(sql, params).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// A connection of its own for another worker (`--jobs`): one worker's ledger and record
    /// commits (each a log flush) never wait for another's. The first handle created the
    /// database; this one finds it (or, read-only, finds it missing) the same way.
    fn another(&self) -> Result<Option<Box<dyn SharedState>>> {
        let conn = Conn::new(self.builder.clone()).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to {}: {}",
                self.target,
                message(&e)
            ))
        })?;
        Ok(Some(Box::new(MysqlState::open(
            conn,
            self.builder.clone(),
            &self.target,
            self.at.clone(),
            &self.opts,
        )?)))
    }

    fn purge(&mut self, before: DateTime<Utc>) -> Result<(usize, usize)> {
        if self.gate.read_only() || !self.readable()? {
            return Ok((0, 0));
        }
        let before_us = before.timestamp_micros();
        let trash = self.at.table("trash");
        let counted: Option<(i64, i64)> = self
            .conn
            .exec_first(
                format!(
                    "SELECT COUNT(DISTINCT `tenant`, `run_id`), COUNT(*) FROM {trash} \
                     WHERE `store` = ? AND `removed_at` < {FROM_US}"
                ),
                (self.at.store.as_bytes(), before_us),
            )
            .map_err(|e| self.err(e))?;
        let (runs, rows) = counted.unwrap_or((0, 0));
        if rows == 0 {
            return Ok((0, 0));
        }
        // In short statements, not one long delete that holds the table.
        let sql = format!(
            "DELETE FROM {trash} WHERE `store` = ? AND `removed_at` < {FROM_US} LIMIT {PURGE_BATCH}"
        );
        loop {
            self.conn
                .exec_drop(sql.as_str(), (self.at.store.as_bytes(), before_us))
                .map_err(|e| self.err(e))?;
            if self.conn.affected_rows() < PURGE_BATCH {
                break;
            }
        }
        Ok((runs as usize, rows as usize))
    }
}

#[cfg(test)]
mod tests;
