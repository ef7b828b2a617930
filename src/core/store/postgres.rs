//! PostgreSQL: the per-type layout (`whatsapp_auth` / `whatsapp_keys`) and key-value layouts
//! (WAHA `waha_auth`, postgres-baileys `auth_data`, Prisma `Session`), behind one SQL builder.
//!
//! Safety in a shared, live database:
//! - removals go in small batches, each one statement ([`remove_sql`]): the rows still as planned
//!   (the MD5 of the value text the scan read, and `updated_at` where the layout has it) are
//!   deleted and copied into the trash together, so the values never travel back and forth; a
//!   row rewritten meanwhile is kept (see [`remove_sql`] for why the compare is exact under
//!   concurrent writes). Without an MD5 in the tokens, or with a trash outside the store, a batch
//!   is one transaction that reads the rows again `FOR UPDATE` and compares them here;
//! - `lock_timeout` and `statement_timeout` bound how long we wait for the app and how long the
//!   app can wait for us;
//! - per-tenant advisory locks (`pg_try_advisory_lock(CLASS, hashtext(tenant))`) keep two
//!   janitors on two hosts off the same tenant; one more advisory lock is the trigger's.

mod remove;
mod state;
#[cfg(test)]
mod tests;

use std::sync::Mutex;
use std::time::Duration;

use postgres::Client;

use crate::core::fault;

use super::spec::{KvLayout, Layout, PerTypeLayout, TenantIn, redact_postgres, split_kv_key};
use super::{
    Planned, RawRow, RemoveOutcome, RestoreOutcome, Result, Store, StoreError, TenantLock,
    TrashRow, TrashTarget, fingerprint,
};

/// Advisory lock classes: "JANI" and the next value (the trigger's lock).
pub const LOCK_CLASS_TENANT: i32 = 0x4A41_4E49;
pub const LOCK_CLASS_GLOBAL: i32 = 0x4A41_4E4A;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PgStore {
    client: Client,
    target: String,
    sql: Sql,
    /// The per-tenant statements, prepared once: one round trip per query, not two.
    prepared: Prepared,
    layout: Layout,
    transport: super::tls::Transport,
    /// The connection string, for the shared state's connection of its own.
    url: String,
    app_name: String,
    /// Where the shared state lives, once [`Store::shared_state`] has opened it: `remove` writes
    /// [`TrashTarget::InStore`] rows there in its own transaction.
    state_at: Mutex<Option<state::StateTarget>>,
    /// The trash insert, prepared on this connection once the schema exists.
    trash_insert: Option<postgres::Statement>,
    /// Per-type layouts: the pre-key ids of a tenant (`Store::pre_key_ids`), prepared on first use.
    pre_key_ids: Option<postgres::Statement>,
    /// The advisory lock's take and release, prepared on first use: a lock and its release
    /// are two of a tenant's dozen round trips, not four.
    advisory: Option<Advisory>,
    /// The one-statement removals, prepared on first use: [`remove::Statements`].
    removals: remove::Statements,
}

struct Advisory {
    /// `$1` class, `$2` tenant (`''` for the store-wide lock) → whether it was taken.
    take: postgres::Statement,
    /// The same arguments → whether it was held.
    release: postgres::Statement,
}

/// The advisory lock's key: one class, and the tenant's hash (0 for the store-wide lock).
const ADVISORY_KEY: &str = "$1, CASE WHEN $2 = '' THEN 0 ELSE hashtext($2) END";

struct Prepared {
    count: postgres::Statement,
    creds: postgres::Statement,
    scan: postgres::Statement,
    scan_for_plan: Option<postgres::Statement>,
    select_for_update: postgres::Statement,
    delete: postgres::Statement,
}

/// Every statement a layout needs, built once from quoted identifiers.
struct Sql {
    tenants: String,
    /// `$1` tenant (or `<tenant><sep>`) → rows, creds included.
    count: String,
    creds: String,
    scan: String,
    /// `$1` tenant, `$2` keys (text[]) → key, value, updated_us, extra columns …
    select_for_update: String,
    /// `$1` tenant, `$2` keys (text[]).
    delete: String,
    /// `$1` tenant, `$2` key, `$3` value text, then the extra columns as micros.
    insert: String,
    extra: Vec<String>,
    /// The pieces of the one-statement removal ([`remove::Shape`]).
    shape: remove::Shape,
    /// How `scan` sends `updated_at`.
    scan_clock: Clock,
    /// `scan` with only the values that date a row ([`Store::scan_for_plan`]); `None`: `scan`.
    scan_for_plan: Option<String>,
}

fn q(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn micros(col: &str) -> String {
    format!("(extract(epoch from {}) * 1000000)::int8", q(col))
}

/// Whether a column of this SQL type is read and compared as a binary timestamp ([`Clock`]).
fn is_timestamp(sql_type: &str) -> bool {
    sql_type.starts_with("timestamp")
}

/// How the scan sends a row's `updated_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clock {
    /// A `timestamp` / `timestamptz` column as it is, in the binary protocol (microseconds
    /// since 2000): exact, and no work for the server. `extract(epoch …)` computes in
    /// `numeric`, ~0.5 µs a row: a fifth of the scan's server time on the bench.
    Binary,
    /// Microseconds as `int8` ([`micros`]; `NULL` where the layout has no such column).
    Micros,
}

/// A binary timestamp in microseconds since the Unix epoch; `None` for one beyond what an
/// `i64` of microseconds holds (`infinity`): no clock, as if the column were `NULL`.
fn micros_of_time(t: std::time::SystemTime) -> Option<i64> {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).ok(),
        Err(e) => i64::try_from(e.duration().as_micros()).ok().map(|us| -us),
    }
}

/// The inverse of [`micros_of_time`], for a compare parameter.
fn time_of_micros(us: i64) -> std::time::SystemTime {
    let d = std::time::Duration::from_micros(us.unsigned_abs());
    if us < 0 {
        std::time::UNIX_EPOCH - d
    } else {
        std::time::UNIX_EPOCH + d
    }
}

/// [`micros`] of `alias.col`: the same number, in a statement that joins other tables.
fn micros_of(alias: &str, col: &str) -> String {
    format!("(extract(epoch from {alias}.{}) * 1000000)::int8", q(col))
}

/// A parameter in microseconds back into a column of type `sql_type`, exactly as [`micros`]
/// read it. A `timestamp without time zone` is rebuilt from the plain `'epoch'::timestamp`:
/// going through `timestamptz` would shift it by the session's UTC offset.
fn from_micros(param: usize, sql_type: &str) -> String {
    let epoch = if sql_type.starts_with("timestamp without time zone") {
        "'epoch'::timestamp"
    } else {
        "'epoch'::timestamptz"
    };
    format!("({epoch} + ${param}::int8 * interval '1 microsecond')")
}

impl PgStore {
    /// Connects and checks that the layout's tables and columns exist. Errors name the redacted
    /// target, never the password.
    pub fn connect(url: &str, layout: &Layout, app_name: &str) -> Result<PgStore> {
        let target = redact_postgres(url);
        let (mut client, transport) =
            super::tls::connect_postgres(url, &target, app_name, CONNECT_TIMEOUT)?;
        // Removal batches do not wait for their WAL flush (milliseconds per batch, most of a
        // batch's time): a server crash can only undo the last batches whole, each delete with
        // its trash rows, so every row is still in the table or the trash. Set for the session
        // (no round trip per batch); `restore` and the schema's creation turn it back on in their
        // transactions, and the shared state's writes are on a connection of their own.
        client
            .batch_execute(
                "SET lock_timeout = '2s'; SET statement_timeout = '30s'; SET synchronous_commit = off",
            )
            .map_err(|e| StoreError::Query(format!("{target}: {}", pg_message(&e))))?;
        let sql = match layout {
            Layout::PerType(l) => {
                check_columns(
                    &mut client,
                    &target,
                    &l.creds_table,
                    &[&l.tenant_column, &l.creds_column],
                )?;
                let mut cols = vec![
                    l.tenant_column.as_str(),
                    &l.type_column,
                    &l.id_column,
                    &l.value_column,
                ];
                cols.extend(l.updated_column.as_deref());
                cols.extend(l.extra_columns.iter().map(String::as_str));
                let types = check_columns(&mut client, &target, &l.keys_table, &cols)?;
                let indexed =
                    tenant_leads_an_index(&mut client, &target, &l.keys_table, &l.tenant_column)?;
                per_type_sql(l, &types[1..3], &types[3], &types[4..], indexed)
            }
            Layout::Kv(l) => {
                let mut cols = vec![l.key_column.as_str(), &l.value_column];
                if let TenantIn::Column(c) = &l.tenant {
                    cols.push(c);
                }
                let types = check_columns(&mut client, &target, &l.table, &cols)?;
                kv_sql(l, &types[0], &types[1])
            }
        };
        let prep = |client: &mut Client, q: &str| {
            client
                .prepare(q)
                .map_err(|e| StoreError::Schema(format!("{target}: {}", pg_message(&e))))
        };
        let prepared = Prepared {
            count: prep(&mut client, &sql.count)?,
            creds: prep(&mut client, &sql.creds)?,
            scan: prep(&mut client, &sql.scan)?,
            scan_for_plan: match &sql.scan_for_plan {
                Some(q) => Some(prep(&mut client, q)?),
                None => None,
            },
            select_for_update: prep(&mut client, &sql.select_for_update)?,
            delete: prep(&mut client, &sql.delete)?,
        };
        Ok(PgStore {
            client,
            target,
            sql,
            prepared,
            layout: layout.clone(),
            transport,
            url: url.to_owned(),
            app_name: app_name.to_owned(),
            state_at: Mutex::new(None),
            trash_insert: None,
            pre_key_ids: None,
            advisory: None,
            removals: remove::Statements::default(),
        })
    }

    /// The layout's table that names this store in the shared state.
    fn main_table(&self) -> &str {
        match &self.layout {
            Layout::PerType(l) => &l.keys_table,
            Layout::Kv(l) => &l.table,
        }
    }

    /// For [`TrashTarget::InStore`]: where the trash is and the prepared insert, the schema
    /// created first if this is its first use.
    fn trash_insert(&mut self) -> Result<(state::StateTarget, postgres::Statement)> {
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
        if let Some(s) = &self.trash_insert {
            return Ok((at, s.clone()));
        }
        // The schema is created durably, whatever the session's setting for removals.
        self.client
            .batch_execute("SET synchronous_commit = on")
            .map_err(|e| self.err(e))?;
        state::ensure(&mut self.client, &self.target, &at.schema)?;
        self.client
            .batch_execute("SET synchronous_commit = off")
            .map_err(|e| self.err(e))?;
        let s = self
            .client
            .prepare(&at.insert_trash_sql())
            .map_err(|e| self.err(e))?;
        self.trash_insert = Some(s.clone());
        Ok((at, s))
    }

    fn err(&self, e: postgres::Error) -> StoreError {
        StoreError::Query(format!("{}: {}", self.target, pg_message(&e)))
    }

    /// The key column's value for a row of `tenant` (key-value layouts), or the id.
    fn key_of(&self, tenant: &str, key_type: &str, id: &str) -> String {
        match &self.layout {
            Layout::PerType(_) => id.to_owned(),
            Layout::Kv(l) => {
                let key = if key_type.is_empty() {
                    id.to_owned()
                } else {
                    format!("{key_type}-{id}")
                };
                match l.tenant {
                    TenantIn::Column(_) => key,
                    TenantIn::KeyPrefix(sep) => format!("{tenant}{sep}{key}"),
                }
            }
        }
    }

    fn tenant_param(&self, tenant: &str) -> String {
        match &self.layout {
            Layout::Kv(KvLayout {
                tenant: TenantIn::KeyPrefix(sep),
                ..
            }) => format!("{tenant}{sep}"),
            _ => tenant.to_owned(),
        }
    }
}

/// Splits a key column value back into (type, id); unknown keys get an empty type.
fn split_key<'a>(layout: &Layout, tenant: &str, key: &'a str) -> (&'a str, &'a str) {
    let key = match layout {
        Layout::Kv(KvLayout {
            tenant: TenantIn::KeyPrefix(sep),
            ..
        }) => key
            .strip_prefix(tenant)
            .and_then(|k| k.strip_prefix(*sep))
            .unwrap_or(key),
        _ => key,
    };
    match split_kv_key(key) {
        Some((t, id)) => (t, id),
        None => ("", key),
    }
}

fn emit(
    layout: &Layout,
    clock: Clock,
    tenant: &str,
    r: &postgres::Row,
    f: &mut dyn FnMut(RawRow<'_>),
) {
    match layout {
        Layout::PerType(_) => {
            // The size is NULL where the value is (a row without one is skipped); the value
            // alone is NULL where `scan_for_plan` did not send it.
            let (Some(t), Some(id), Some(size)) = (
                r.get::<_, Option<&str>>(0),
                r.get::<_, Option<&str>>(1),
                r.get::<_, Option<i32>>(4),
            ) else {
                return;
            };
            let v = r.get::<_, Option<&str>>(2).unwrap_or("");
            let updated_at_us = match clock {
                Clock::Binary => r
                    .get::<_, Option<std::time::SystemTime>>(3)
                    .and_then(micros_of_time),
                Clock::Micros => r.get(3),
            };
            f(RawRow {
                key_type: t,
                id,
                value: v,
                updated_at_us,
                size: Some(size as u64),
            });
        }
        Layout::Kv(_) => {
            let (Some(k), Some(v)) = (r.get::<_, Option<&str>>(0), r.get::<_, Option<&str>>(1))
            else {
                return;
            };
            let (key_type, id) = split_key(layout, tenant, k);
            f(RawRow {
                key_type,
                id,
                value: v,
                updated_at_us: None,
                size: r.get::<_, Option<i32>>(2).map(|n| n as u64),
            });
        }
    }
}

/// The server's own message for database errors (no connection details in them), the error's
/// text otherwise.
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => e.to_string(),
    }
}

/// Checks `table` has `columns`; returns each column's SQL type (`jsonb`, `text`, …).
fn check_columns(
    client: &mut Client,
    target: &str,
    table: &str,
    columns: &[&str],
) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
            &[&q(table)],
        )
        .map_err(|e| StoreError::Query(format!("{target}: {}", pg_message(&e))))?;
    if rows.is_empty() {
        return Err(StoreError::Schema(format!(
            "{target}: table {table} not found (wrong database or layout? see docs/stores/postgres.md)"
        )));
    }
    columns
        .iter()
        .map(|c| {
            rows.iter()
                .find(|r| r.get::<_, String>(0) == *c)
                .map(|r| r.get::<_, String>(1))
                .ok_or_else(|| {
                    StoreError::Schema(format!(
                        "{target}: table {table} has no column {c} (wrong layout? see docs/stores/postgres.md)"
                    ))
                })
        })
        .collect()
}

/// The cast that turns a text parameter into the value column's type.
fn value_cast(sql_type: &str) -> &'static str {
    match sql_type {
        "jsonb" => "::jsonb",
        "json" => "::json",
        _ => "",
    }
}

/// Whether a plain btree index of `table` leads with `column` (valid, whole-table, the column's
/// own collation): then the tenants can be listed by walking it ([`tenants_by_skip_scan`]).
fn tenant_leads_an_index(
    client: &mut Client,
    target: &str,
    table: &str,
    column: &str,
) -> Result<bool> {
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_index i \
               JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam \
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
             WHERE i.indrelid = to_regclass($1) AND a.attname = $2 AND am.amname = 'btree' \
               AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL \
               AND i.indcollation[0] = a.attcollation)",
            &[&q(table), &column],
        )
        .map(|r| r.get(0))
        .map_err(|e| StoreError::Query(format!("{target}: {}", pg_message(&e))))
}

/// The tenants of a per-type layout whose keys table has an index leading with the tenant
/// column: one index probe per tenant (the next name after the last), not a pass over every
/// row. On the bench's 400,000 rows, 0.14 s that no worker could start before. The creds table
/// is small (a row per tenant) and read as it is.
fn tenants_by_skip_scan(l: &PerTypeLayout) -> String {
    let (t, keys) = (q(&l.tenant_column), q(&l.keys_table));
    format!(
        "WITH RECURSIVE k AS (\
           (SELECT {t} AS x FROM {keys} WHERE {t} IS NOT NULL ORDER BY {t} LIMIT 1) \
           UNION ALL \
           SELECT (SELECT {t} FROM {keys} WHERE {t} > k.x ORDER BY {t} LIMIT 1) FROM k WHERE k.x IS NOT NULL) \
         SELECT x FROM (SELECT x::text AS x FROM k WHERE x IS NOT NULL \
           UNION SELECT {ct}::text FROM {creds}) s ORDER BY 1",
        ct = q(&l.tenant_column),
        creds = q(&l.creds_table)
    )
}

/// `key_types`: the SQL types of the type and id columns; `extra_types`: those of
/// `updated_column` (if any) then `extra_columns`, in order; `tenant_indexed`: an index of the
/// keys table leads with the tenant column ([`tenant_leads_an_index`]).
fn per_type_sql(
    l: &PerTypeLayout,
    key_types: &[String],
    value_type: &str,
    extra_types: &[String],
    tenant_indexed: bool,
) -> Sql {
    let (t, ty, id, v) = (
        q(&l.tenant_column),
        q(&l.type_column),
        q(&l.id_column),
        q(&l.value_column),
    );
    let keys = q(&l.keys_table);
    let upd = l
        .updated_column
        .as_deref()
        .map_or("NULL::int8".to_owned(), micros);
    // `extra_types[0]` is the updated column's type when there is one.
    let updated_type = l
        .updated_column
        .as_ref()
        .and_then(|_| extra_types.first())
        .map(String::as_str)
        .filter(|t| is_timestamp(t));
    let (scan_upd, scan_clock) = match (l.updated_column.as_deref(), updated_type) {
        (Some(c), Some(_)) => (q(c), Clock::Binary),
        _ => (upd.clone(), Clock::Micros),
    };
    let extra: Vec<String> = l
        .updated_column
        .iter()
        .chain(&l.extra_columns)
        .cloned()
        .collect();
    let extra_sel: String = extra.iter().map(|c| format!(", {}", micros(c))).collect();
    let extra_cols: String = extra.iter().map(|c| format!(", {}", q(c))).collect();
    let extra_vals: String = (0..extra.len())
        .map(|i| {
            let ty = extra_types.get(i).map_or("", String::as_str);
            format!(", {}", from_micros(4 + i, ty))
        })
        .collect();
    // Per-type keys are (type, id): the key parameter is `type || chr(31) || id`.
    let pair = format!("{ty} || chr(31) || {id}");
    Sql {
        tenants: if tenant_indexed {
            tenants_by_skip_scan(l)
        } else {
            format!(
                "SELECT x FROM (SELECT {t}::text AS x FROM {keys} UNION SELECT {ct}::text FROM {creds}) s ORDER BY 1",
                ct = q(&l.tenant_column),
                creds = q(&l.creds_table)
            )
        },
        count: format!(
            "SELECT (SELECT count(*) FROM {keys} WHERE {t} = $1) + (SELECT count(*) FROM {creds} WHERE {ct} = $1)",
            ct = q(&l.tenant_column),
            creds = q(&l.creds_table)
        ),
        creds: format!(
            "SELECT {c}::text FROM {creds} WHERE {t} = $1",
            c = q(&l.creds_column),
            creds = q(&l.creds_table)
        ),
        // Sizes are the stored ones (`pg_column_size`), as the removals report them: a row the
        // plan scan sends without its value has one too.
        scan: format!(
            "SELECT {ty}::text, {id}::text, {v}::text, {scan_upd}, pg_column_size({v}) FROM {keys} WHERE {t} = $1"
        ),
        scan_for_plan: l.updated_column.as_deref().map(|c| {
            let clockless = if scan_clock == Clock::Binary {
                format!("{c} IS NULL OR NOT isfinite({c})", c = q(c))
            } else {
                format!("{} IS NULL", q(c))
            };
            format!(
                "SELECT {ty}::text, {id}::text, \
                 CASE WHEN {ty}::text = 'session' OR {clockless} THEN {v}::text END, \
                 {scan_upd}, pg_column_size({v}) FROM {keys} WHERE {t} = $1"
            )
        }),
        select_for_update: format!(
            "SELECT {pair}, {v}::text, {upd}{extra_sel}, pg_column_size({v}) FROM {keys} WHERE {t} = $1 AND {pair} = ANY($2) FOR UPDATE"
        ),
        delete: format!("DELETE FROM {keys} WHERE {t} = $1 AND {pair} = ANY($2)"),
        insert: format!(
            "INSERT INTO {keys} ({t}, {ty}, {id}, {v}{extra_cols}) \
             SELECT $1, split_part($2, chr(31), 1), substr($2, length(split_part($2, chr(31), 1)) + 2), $3::text{cast}{extra_vals} \
             WHERE NOT EXISTS (SELECT 1 FROM {keys} WHERE {t} = $1 AND {pair} = $2) ON CONFLICT DO NOTHING",
            cast = value_cast(value_type)
        ),
        shape: remove::Shape {
            table: keys.clone(),
            tenant: format!("k.{t} = $1"),
            key_match: format!(
                "{} AND {}",
                remove::column_is(&ty, &key_types[0], "p.jt"),
                remove::column_is(&id, &key_types[1], "p.ji")
            ),
            value: v.clone(),
            updated: l.updated_column.as_deref().map(|c| match updated_type {
                Some(t) => remove::Updated {
                    column: format!("k.{}", q(c)),
                    param: if t.starts_with("timestamp without time zone") {
                        "timestamp"
                    } else {
                        "timestamptz"
                    },
                },
                None => remove::Updated {
                    column: micros_of("k", c),
                    param: "int8",
                },
            }),
            columns: extra
                .iter()
                .map(|c| (c.clone(), micros_of("k", c)))
                .collect(),
        },
        extra,
        scan_clock,
    }
}

/// `key_type`: the SQL type of the key column.
fn kv_sql(l: &KvLayout, key_type: &str, value_type: &str) -> Sql {
    let (table, k, v) = (q(&l.table), q(&l.key_column), q(&l.value_column));
    let cast = value_cast(value_type);
    let shape = |tenant: String| remove::Shape {
        table: table.clone(),
        tenant,
        key_match: remove::column_is(&k, key_type, "p.jk"),
        value: v.clone(),
        updated: None,
        columns: Vec::new(),
    };
    match &l.tenant {
        TenantIn::Column(tc) => {
            let t = q(tc);
            Sql {
                tenants: format!("SELECT DISTINCT {t}::text FROM {table} ORDER BY 1"),
                count: format!("SELECT count(*) FROM {table} WHERE {t} = $1"),
                creds: format!("SELECT {v}::text FROM {table} WHERE {t} = $1 AND {k} = $2"),
                scan: format!(
                    "SELECT {k}::text, {v}::text, pg_column_size({v}) FROM {table} WHERE {t} = $1 AND {k} <> $2"
                ),
                select_for_update: format!(
                    "SELECT {k}::text, {v}::text, NULL::int8, pg_column_size({v}) FROM {table} WHERE {t} = $1 AND {k} = ANY($2) FOR UPDATE"
                ),
                delete: format!("DELETE FROM {table} WHERE {t} = $1 AND {k} = ANY($2)"),
                insert: format!(
                    "INSERT INTO {table} ({t}, {k}, {v}) SELECT $1, $2, $3::text{cast} \
                     WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {t} = $1 AND {k} = $2) ON CONFLICT DO NOTHING"
                ),
                extra: Vec::new(),
                shape: shape(format!("k.{t} = $1")),
                scan_clock: Clock::Micros,
                scan_for_plan: None,
            }
        }
        TenantIn::KeyPrefix(sep) => {
            let owner = key_owner(&k, *sep, &l.creds_key);
            let s = sql_literal(&sep.to_string());
            Sql {
                tenants: format!(
                    "SELECT DISTINCT {owner} FROM {table} WHERE strpos({k}, {s}) > 0 ORDER BY 1"
                ),
                count: format!(
                    "SELECT count(*) FROM {table} WHERE starts_with({k}, $1) AND {owner} || {s} = $1"
                ),
                // `$1` is `<tenant><sep>`: creds and keys are found by the full key.
                creds: format!("SELECT {v}::text FROM {table} WHERE {k} = $1 || $2"),
                scan: format!(
                    "SELECT {k}::text, {v}::text, pg_column_size({v}) FROM {table} WHERE starts_with({k}, $1) AND {owner} || {s} = $1 AND {k} <> $1 || $2"
                ),
                select_for_update: format!(
                    "SELECT {k}::text, {v}::text, NULL::int8, pg_column_size({v}) FROM {table} WHERE $1 <> '' AND {k} = ANY($2) FOR UPDATE"
                ),
                delete: format!("DELETE FROM {table} WHERE $1 <> '' AND {k} = ANY($2)"),
                insert: format!(
                    "INSERT INTO {table} ({k}, {v}) SELECT $2, $3::text{cast} WHERE $1 <> '' \
                     AND NOT EXISTS (SELECT 1 FROM {table} WHERE {k} = $2) ON CONFLICT DO NOTHING"
                ),
                extra: Vec::new(),
                // The key names the tenant; `$1` is still sent (and typed) for the statement.
                shape: shape("$1::text <> ''".into()),
                scan_clock: Clock::Micros,
                scan_for_plan: None,
            }
        }
    }
}

/// The tenant a key-prefix key belongs to. postgres-baileys writes `<sid>:<type>-<id>` and
/// `<sid>:auth_creds`, and a session id may itself hold `:` (`bot:1`), as a sender-key id does
/// (`120363@g.us::5511::0`): the tenant ends at the first separator that starts a key of a
/// known type or the creds key. Keys of no known type fall back to the first separator.
fn key_owner(k: &str, sep: char, creds_key: &str) -> String {
    let types = super::spec::KEY_TYPES.join("|");
    let re = format!(
        "^(.*?){sep}(?:{creds}$|(?:{types})-)",
        sep = regex_escape(&sep.to_string()),
        creds = regex_escape(creds_key)
    );
    format!(
        "coalesce(substring({k} from {}), split_part({k}, {}, 1))",
        sql_literal(&re),
        sql_literal(&sep.to_string())
    )
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = !c.is_ascii_alphanumeric() && c != '_' && c != '-';
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Store for PgStore {
    fn tenants(&mut self) -> Result<Vec<String>> {
        let rows = self
            .client
            .query(self.sql.tenants.as_str(), &[])
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .filter_map(|r| r.get::<_, Option<String>>(0))
            .collect())
    }

    fn count(&mut self, tenant: &str) -> Result<usize> {
        let param = self.tenant_param(tenant);
        let n: i64 = self
            .client
            .query_one(&self.prepared.count, &[&param])
            .map_err(|e| self.err(e))?
            .get(0);
        Ok(n as usize)
    }

    fn creds(&mut self, tenant: &str) -> Result<Option<Vec<u8>>> {
        let param = self.tenant_param(tenant);
        let rows = match &self.layout {
            Layout::PerType(_) => self.client.query(&self.prepared.creds, &[&param]),
            Layout::Kv(l) => self
                .client
                .query(&self.prepared.creds, &[&param, &l.creds_key]),
        }
        .map_err(|e| self.err(e))?;
        Ok(rows
            .first()
            .and_then(|r| r.get::<_, Option<String>>(0))
            .map(String::into_bytes))
    }

    fn scan(&mut self, tenant: &str, f: &mut dyn FnMut(RawRow<'_>)) -> Result<()> {
        let scan = self.prepared.scan.clone();
        self.scan_with(&scan, tenant, f)
    }

    /// Per-type tables with `updated_at`: the values of sessions and clock-less rows only, the
    /// stored size of every row (the text of the others is never rendered).
    fn scan_for_plan(&mut self, tenant: &str, f: &mut dyn FnMut(RawRow<'_>)) -> Result<()> {
        let scan = self
            .prepared
            .scan_for_plan
            .clone()
            .unwrap_or_else(|| self.prepared.scan.clone());
        self.scan_with(&scan, tenant, f)
    }

    /// Per-type tables: through the key columns, no value read or sent. Key-value layouts keep
    /// the type inside the key, so they filter the scan.
    fn pre_key_ids(&mut self, tenant: &str, f: &mut dyn FnMut(&str)) -> Result<()> {
        use postgres::fallible_iterator::FallibleIterator;
        let Layout::PerType(l) = &self.layout else {
            return self.scan(tenant, &mut |row| {
                if row.key_type == "pre-key" {
                    f(row.id);
                }
            });
        };
        let target = &self.target;
        let err = |e: postgres::Error| StoreError::Query(format!("{target}: {}", pg_message(&e)));
        let stmt = match &self.pre_key_ids {
            Some(s) => s.clone(),
            None => {
                // The rows `scan` would show as pre-keys: the same type text, a value present.
                let sql = format!(
                    "SELECT {id}::text FROM {keys} WHERE {t} = $1 AND {ty}::text = 'pre-key' AND {v} IS NOT NULL",
                    id = q(&l.id_column),
                    keys = q(&l.keys_table),
                    t = q(&l.tenant_column),
                    ty = q(&l.type_column),
                    v = q(&l.value_column),
                );
                let s = self.client.prepare(&sql).map_err(err)?;
                self.pre_key_ids = Some(s.clone());
                s
            }
        };
        let param = tenant.to_owned();
        let mut rows = self.client.query_raw(&stmt, [&param]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            if let Some(id) = r.get::<_, Option<&str>>(0) {
                f(id);
            }
        }
        Ok(())
    }

    fn remove(
        &mut self,
        tenant: &str,
        batch: &[Planned],
        trash_to: &mut TrashTarget<'_>,
    ) -> Result<Vec<RemoveOutcome>> {
        let on_server = batch.iter().all(|p| p.token.md5.is_some());
        match trash_to {
            TrashTarget::InStore(tag) if on_server => {
                let (at, _) = self.trash_insert()?;
                self.remove_on_server(tenant, batch, Some((&at, tag)))
            }
            TrashTarget::Nowhere if on_server => self.remove_on_server(tenant, batch, None),
            _ => self.remove_compared_here(tenant, batch, trash_to),
        }
    }

    fn compares_md5(&self) -> bool {
        true
    }

    /// A batch is one statement that compares on the server and commits with its trash rows
    /// (`remove`): 500 rows hold their row locks ~10-20 ms (the report's
    /// `longest_transaction_us` on the bench), and cost 12% less server time than five
    /// statements of 100 (`log_min_duration_statement`, 1,000 tenants).
    fn batch(&self) -> usize {
        500
    }

    fn restore(&mut self, tenant: &str, rows: &[TrashRow]) -> Result<Vec<RestoreOutcome>> {
        self.restore_rows(tenant, rows)
    }

    fn lock_tenant(&mut self, tenant: &str) -> Result<TenantLock> {
        self.try_advisory(LOCK_CLASS_TENANT, Some(tenant))
    }

    fn unlock_tenant(&mut self, tenant: &str) {
        if let Ok(release) = self.advisory().map(|a| a.release.clone()) {
            let _ = self
                .client
                .execute(&release, &[&LOCK_CLASS_TENANT, &tenant]);
        }
    }

    /// An advisory lock is the session's: every janitor and every worker has its own.
    fn tenant_lock_excludes_every_process(&self) -> bool {
        true
    }

    fn lock_global(&mut self) -> Result<TenantLock> {
        self.try_advisory(LOCK_CLASS_GLOBAL, None)
    }

    fn reports_legacy_rows(&self) -> bool {
        matches!(self.layout, Layout::PerType(_))
    }

    fn transport(&self) -> Option<super::tls::Transport> {
        Some(self.transport.clone())
    }

    fn trash_in_transaction(&self) -> bool {
        true
    }

    fn shared_state(
        &self,
        opts: &super::shared::SharedOptions,
    ) -> Result<Option<Box<dyn super::SharedState>>> {
        let mut client = connect_client(&self.url, &self.target, &self.app_name)?;
        let at = state::StateTarget {
            schema: opts.schema.clone(),
            store: state::store_name(&mut client, &self.target, self.main_table())?,
        };
        let shared = state::PgState::open(client, &self.target, at.clone(), opts)?.reopen_with(
            state::Reopen {
                url: self.url.clone(),
                app_name: self.app_name.clone(),
                opts: opts.clone(),
            },
        );
        *self.state_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
        Ok(Some(Box::new(shared)))
    }

    /// A connection (a server backend) of its own for another `--jobs` worker. One connection
    /// leaves the server's other cores idle: the janitor waits for the server and the server
    /// for the janitor, and one backend runs on one core (the bench's 1,000 tenants: a real
    /// cleanup 12 s on one, 6 s on two; a dry run 2.2 s, 1.3 s). Each worker also holds a
    /// connection to the shared state: `--jobs 1` where the server has few to spare.
    fn another(&self) -> Result<Option<Box<dyn Store + Send>>> {
        let handle = PgStore::connect(&self.url, &self.layout, &self.app_name)?;
        *handle.state_at.lock().unwrap_or_else(|e| e.into_inner()) = self
            .state_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Ok(Some(Box::new(handle)))
    }
}

/// A connection of its own for the shared state (its first, and each worker's).
fn connect_client(url: &str, target: &str, app_name: &str) -> Result<Client> {
    super::tls::connect_postgres(url, target, app_name, CONNECT_TIMEOUT).map(|(c, _)| c)
}

impl PgStore {
    /// Streams the tenant's rows of `scan` (the full scan or the plan's) to `f`.
    fn scan_with(
        &mut self,
        scan: &postgres::Statement,
        tenant: &str,
        f: &mut dyn FnMut(RawRow<'_>),
    ) -> Result<()> {
        use postgres::fallible_iterator::FallibleIterator;
        let param = self.tenant_param(tenant);
        let creds_key = match &self.layout {
            Layout::Kv(l) => Some(l.creds_key.clone()),
            Layout::PerType(_) => None,
        };
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = match &creds_key {
            Some(c) => vec![&param, c],
            None => vec![&param],
        };
        // Streamed: one row in memory at a time, whatever the tenant's size.
        let target = &self.target;
        let layout = &self.layout;
        let clock = self.sql.scan_clock;
        let mut rows = self
            .client
            .query_raw(scan, params)
            .map_err(|e| StoreError::Query(format!("{target}: {}", pg_message(&e))))?;
        while let Some(r) = rows
            .next()
            .map_err(|e| StoreError::Query(format!("{target}: {}", pg_message(&e))))?
        {
            emit(layout, clock, tenant, &r, f);
        }
        Ok(())
    }

    /// A batch compared here: one transaction that reads the rows again `FOR UPDATE`, compares
    /// their values with the tokens' fingerprints, writes the trash, deletes. For tokens without
    /// an MD5 and for a trash outside the store ([`TrashTarget::Before`]).
    fn remove_compared_here(
        &mut self,
        tenant: &str,
        batch: &[Planned],
        trash_to: &mut TrashTarget<'_>,
    ) -> Result<Vec<RemoveOutcome>> {
        let param = self.tenant_param(tenant);
        let per_type = matches!(self.layout, Layout::PerType(_));
        let keys: Vec<String> = batch
            .iter()
            .map(|p| {
                if per_type {
                    format!("{}\u{1f}{}", p.key.key_type, p.key.id)
                } else {
                    self.key_of(tenant, &p.key.key_type, &p.key.id)
                }
            })
            .collect();
        // Prepared before the transaction: it may create the schema on first use.
        let in_store = match trash_to {
            TrashTarget::InStore(_) => Some(self.trash_insert()?),
            _ => None,
        };
        let target = self.target.clone();
        let err = |e: postgres::Error| StoreError::Query(format!("{target}: {}", pg_message(&e)));
        // Committed without waiting for the WAL flush: the session's setting (see `connect`).
        let mut tx = self.client.transaction().map_err(err)?;
        let rows = tx
            .query(&self.prepared.select_for_update, &[&param, &keys])
            .map_err(err)?;
        fault::point("pg.after_select");
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for r in &rows {
            let key: String = r.get(0);
            found.insert(key, r);
        }
        let mut out = Vec::with_capacity(batch.len());
        let mut doomed: Vec<&str> = Vec::new();
        let mut trash = Vec::new();
        for (p, key) in batch.iter().zip(&keys) {
            let Some(r) = found.get(key) else {
                out.push(RemoveOutcome::Vanished);
                continue;
            };
            let value: String = r.get(1);
            let updated: Option<i64> = r.get(2);
            if fingerprint(value.as_bytes()) != p.token.hash || updated != p.token.updated_at_us {
                out.push(RemoveOutcome::Changed);
                continue;
            }
            // The stored size, as the scan reported it (the last column).
            let stored: Option<i32> = r.get(3 + self.sql.extra.len());
            out.push(RemoveOutcome::Removed {
                bytes: stored.map_or(value.len() as u64, |n| n as u64),
            });
            doomed.push(key);
            let columns = self
                .sql
                .extra
                .iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), r.get::<_, Option<i64>>(3 + i)))
                .collect();
            trash.push(TrashRow {
                key_type: p.key.key_type.clone(),
                id: p.key.id.clone(),
                value,
                columns,
            });
        }
        if !doomed.is_empty() {
            // The trash first, in this transaction (or durable before it commits): whatever
            // happens next, each row is in place or in the trash.
            match (trash_to, &in_store) {
                (TrashTarget::InStore(tag), Some((at, insert))) => {
                    state::TrashArrays::of(&trash)
                        .insert(&mut tx, insert, &at.store, tenant, tag)
                        .map_err(err)?;
                }
                (other, _) => other
                    .before_commit(&trash)
                    .map_err(|e| StoreError::Query(format!("cannot write the trash: {e}")))?,
            }
            fault::point("pg.after_trash_insert");
            let n = tx
                .execute(&self.prepared.delete, &[&param, &doomed])
                .map_err(err)?;
            if n as usize != doomed.len() {
                // Cannot happen under FOR UPDATE; never commit a surprise.
                return Err(StoreError::Query(format!(
                    "{target}: deleted {n} rows, expected {}: rolled back",
                    doomed.len()
                )));
            }
            fault::point("pg.after_delete");
        }
        tx.commit().map_err(err)?;
        fault::point("pg.after_commit");
        Ok(out)
    }

    fn restore_rows(&mut self, tenant: &str, rows: &[TrashRow]) -> Result<Vec<RestoreOutcome>> {
        let param = self.tenant_param(tenant);
        let per_type = matches!(self.layout, Layout::PerType(_));
        let target = self.target.clone();
        let err = |e: postgres::Error| StoreError::Query(format!("{target}: {}", pg_message(&e)));
        let keys: Vec<String> = rows
            .iter()
            .map(|r| {
                if per_type {
                    format!("{}\u{1f}{}", r.key_type, r.id)
                } else {
                    self.key_of(tenant, &r.key_type, &r.id)
                }
            })
            .collect();
        let extra = self.sql.extra.clone();
        let mut tx = self.client.transaction().map_err(err)?;
        // Rows put back are committed durably, unlike removal batches (see `connect`).
        tx.batch_execute("SET LOCAL synchronous_commit = on")
            .map_err(err)?;
        let stmt = tx.prepare(self.sql.insert.as_str()).map_err(err)?;
        let mut out = Vec::with_capacity(rows.len());
        for (r, key) in rows.iter().zip(&keys) {
            let cols: Vec<Option<i64>> = extra
                .iter()
                .map(|c| r.columns.get(c).copied().flatten())
                .collect();
            let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&param, key, &r.value];
            for c in &cols {
                params.push(c);
            }
            let n = tx.execute(&stmt, &params).map_err(err)?;
            out.push(if n == 1 {
                RestoreOutcome::Restored
            } else {
                RestoreOutcome::Exists
            });
        }
        tx.commit().map_err(err)?;
        Ok(out)
    }

    /// The advisory lock's statements, prepared on this connection once.
    fn advisory(&mut self) -> Result<&Advisory> {
        if self.advisory.is_none() {
            let take = self
                .client
                .prepare(&format!("SELECT pg_try_advisory_lock({ADVISORY_KEY})"))
                .map_err(|e| self.err(e))?;
            let release = self
                .client
                .prepare(&format!("SELECT pg_advisory_unlock({ADVISORY_KEY})"))
                .map_err(|e| self.err(e))?;
            self.advisory = Some(Advisory { take, release });
        }
        Ok(self.advisory.as_ref().expect("prepared above"))
    }

    fn try_advisory(&mut self, class: i32, tenant: Option<&str>) -> Result<TenantLock> {
        let key = tenant.unwrap_or("");
        let take = self.advisory()?.take.clone();
        let got: bool = self
            .client
            .query_one(&take, &[&class, &key])
            .map_err(|e| self.err(e))?
            .get(0);
        if got {
            return Ok(TenantLock::Acquired);
        }
        let holder = self
            .client
            .query(
                "SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local') \
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND l.granted AND l.classid::int8 = ($1::int8 & 4294967295) \
                 AND l.objid::int8 = ((CASE WHEN $2 = '' THEN 0 ELSE hashtext($2) END)::int8 & 4294967295) LIMIT 1",
                &[&class, &key],
            )
            .ok()
            .and_then(|rows| {
                rows.first().map(|r| {
                    format!(
                        "{} (server pid {}, from {})",
                        r.get::<_, String>(1),
                        r.get::<_, i32>(0),
                        r.get::<_, String>(2)
                    )
                })
            })
            .unwrap_or_else(|| "another janitor".into());
        Ok(TenantLock::Busy(holder))
    }
}
