//! The janitor's state in PostgreSQL (issue 23): schema `opts.schema` (default
//! `baileys_janitor`) with three tables, created on the first write and readable by the janitor's
//! role only:
//!
//! ```text
//! meta   (key, value)                          schema_version
//! docs   (store, space, name, version, body, updated_at)      PK (store, space, name)
//! trash  (store, tenant, run_id, host, removed_at, key_type, key_id, value, columns,
//!         restored_at)                          PK (store, tenant, run_id, key_type, key_id)
//! ```
//!
//! `store` names the layout's table (`public.whatsapp_keys`), never the URL: two hosts reach one
//! server by different names and must share one state. Every method is one statement or one
//! short transaction, on a connection of its own (the store's is busy streaming rows).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use postgres::error::SqlState;
use postgres::{Client, GenericClient, Statement};

use super::super::shared::{
    Doc, SCHEMA_VERSION, SchemaGate, SharedOptions, SharedState, Space, TrashRun, TrashTag,
    TrashedRow,
};
use super::super::{KeyRef, Result, StoreError, TrashRow};
use super::{pg_message, q};

/// Advisory lock class of the schema's creation and migrations (after the tenant and trigger
/// classes): two hosts starting on a fresh database create it once.
pub const LOCK_CLASS_STATE: i32 = 0x4A41_4E4B;

/// Trash rows per purge statement: the longest transaction stays short.
const PURGE_BATCH: i64 = 1000;

/// Where the state of one store lives: the schema and the store's name in it.
#[derive(Clone, Debug)]
pub struct StateTarget {
    pub schema: String,
    /// The layout's table, schema-qualified (`public.whatsapp_keys`).
    pub store: String,
}

impl StateTarget {
    fn table(&self, name: &str) -> String {
        format!("{}.{}", q(&self.schema), q(name))
    }

    /// The statement that writes a batch of trashed rows: `$1` store, `$2` tenant, `$3` run id,
    /// `$4` host, `$5` removed_at (µs), `$6..$9` arrays of type, id, value, columns (JSON). One
    /// round trip for the whole batch, in the caller's transaction.
    pub fn insert_trash_sql(&self) -> String {
        self.insert_trash(
            1,
            "SELECT t.k, t.i, t.v, t.c FROM unnest($6::text[], $7::text[], $8::text[], $9::text[]) AS t(k, i, v, c)",
        )
    }

    /// The same insert for the rows of `rows` (type, id, value, columns), inside the one-statement
    /// removal (`postgres::remove`): `$7` store, `$8` tenant, `$9` run id, `$10` host, `$11`
    /// removed_at (µs).
    /// `upsert: false` is a plain insert (no speculative insertion: a third of the trash's
    /// cost), which fails with a unique violation on a row this run trashed before; the
    /// removal then runs again with `upsert: true`.
    pub fn insert_trash_from_sql(&self, rows: &str, upsert: bool) -> String {
        if upsert {
            self.insert_trash(7, rows)
        } else {
            self.insert_trash_plain(7, rows)
        }
    }

    /// [`StateTarget::insert_trash`] without its `ON CONFLICT` clause.
    fn insert_trash_plain(&self, first: usize, rows: &str) -> String {
        let sql = self.insert_trash(first, rows);
        let at = sql
            .find(" ON CONFLICT ")
            .expect("the trash insert has an ON CONFLICT clause");
        sql[..at].to_owned()
    }

    /// The trash insert with its tag in `$first..$first+4`, its rows from `rows`.
    fn insert_trash(&self, first: usize, rows: &str) -> String {
        let [store, tenant, run, host, at] = [0, 1, 2, 3, 4].map(|i| first + i);
        format!(
            "INSERT INTO {trash} (store, tenant, run_id, host, removed_at, key_type, key_id, value, columns) \
             SELECT ${store}::text, ${tenant}::text, ${run}::text, ${host}::text, \
             'epoch'::timestamptz + ${at}::int8 * interval '1 microsecond', r.* FROM ({rows}) AS r \
             ON CONFLICT (store, tenant, run_id, key_type, key_id) DO UPDATE SET value = EXCLUDED.value, \
             columns = EXCLUDED.columns, host = EXCLUDED.host, removed_at = EXCLUDED.removed_at, restored_at = NULL",
            trash = self.table("trash")
        )
    }
}

/// The columns of a batch of trashed rows, as the arrays [`StateTarget::insert_trash_sql`] takes.
pub struct TrashArrays {
    types: Vec<String>,
    ids: Vec<String>,
    values: Vec<String>,
    columns: Vec<String>,
}

impl TrashArrays {
    pub fn of(rows: &[TrashRow]) -> TrashArrays {
        TrashArrays {
            types: rows.iter().map(|r| r.key_type.clone()).collect(),
            ids: rows.iter().map(|r| r.id.clone()).collect(),
            values: rows.iter().map(|r| r.value.clone()).collect(),
            columns: rows
                .iter()
                .map(|r| serde_json::to_string(&r.columns).unwrap_or_else(|_| "{}".into()))
                .collect(),
        }
    }

    /// Runs `insert` (prepared from [`StateTarget::insert_trash_sql`]) for these rows.
    pub fn insert(
        &self,
        client: &mut impl GenericClient,
        insert: &Statement,
        store: &str,
        tenant: &str,
        tag: &TrashTag,
    ) -> std::result::Result<u64, postgres::Error> {
        let removed_us = tag.removed_at.timestamp_micros();
        client.execute(
            insert,
            &[
                &store,
                &tenant,
                &tag.run_id,
                &tag.host,
                &removed_us,
                &self.types,
                &self.ids,
                &self.values,
                &self.columns,
            ],
        )
    }
}

/// The version the schema's `meta` records; `None` when there is no schema (or no `meta`) yet.
fn read_version(
    client: &mut impl GenericClient,
    target: &str,
    schema: &str,
) -> Result<Option<u32>> {
    let meta = format!("{}.{}", q(schema), q("meta"));
    // `to_regclass` needs no privilege on the schema; the role's name goes into the SQL an
    // owner is asked to run when the next query is refused.
    // `to_regclass` itself is refused without USAGE on the schema: NULL then.
    let found = client
        .query_one(
            "SELECT CASE WHEN has_schema_privilege(n.oid, 'USAGE') IS FALSE THEN NULL \
                    ELSE to_regclass($1) IS NOT NULL END, current_user::text \
             FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = $2",
            &[&meta, &schema],
        )
        .map_err(|e| access_error(target, schema, "CURRENT_USER", &e))?;
    let (exists, role): (Option<bool>, String) = (found.get(0), found.get(1));
    let Some(exists) = exists else {
        return Err(StoreError::Schema(format!(
            "{target}: this role cannot use schema {schema} (no USAGE on it): have its owner run: {}",
            grant_sql(schema, &q(&role))
        )));
    };
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_opt(
            &format!("SELECT value FROM {meta} WHERE key = 'schema_version'"),
            &[],
        )
        .map_err(|e| access_error(target, schema, &q(&role), &e))?;
    let Some(row) = row else { return Ok(None) };
    let v: String = row.get(0);
    v.parse().map(Some).map_err(|_| {
        StoreError::Schema(format!(
            "{target}: schema {schema}: meta.schema_version is {v:?}, not a number"
        ))
    })
}

fn newer(target: &str, schema: &str, found: u32) -> StoreError {
    StoreError::Schema(format!(
        "{target}: schema {schema} was written by a newer baileys-janitor (schema {found}, this binary knows {SCHEMA_VERSION}): upgrade"
    ))
}

/// A permission error names the role and the SQL an owner must run; anything else is a query
/// error. `role` is the janitor's role as SQL (quoted): the owner runs the SQL in a session of
/// its own, where `CURRENT_USER` would be the owner.
fn access_error(target: &str, schema: &str, role: &str, e: &postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
        return StoreError::Schema(format!(
            "{target}: this role cannot use schema {schema} ({}): have its owner run: {}",
            pg_message(e),
            grant_sql(schema, role)
        ));
    }
    StoreError::Query(format!("{target}: {}", pg_message(e)))
}

/// What an owner runs so that `role` can use a schema it did not create.
fn grant_sql(schema: &str, role: &str) -> String {
    let s = q(schema);
    format!(
        "GRANT USAGE ON SCHEMA {s} TO {role}; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {role};"
    )
}

/// Creates the schema and its tables, or migrates them forward, once: under an advisory lock,
/// in one transaction. A schema newer than this binary is refused; a role that cannot create it
/// gets one line with the SQL an owner must run.
/// A document's create (`version` `None`) or compare-and-swap update, by `(store, space, name,
/// version, body)`: the rows it wrote (0 when another writer was first).
fn write_doc(
    client: &mut impl GenericClient,
    statement: &Statement,
    (store, space, name, version, body): (&str, &str, &str, Option<i64>, &[u8]),
) -> std::result::Result<u64, postgres::Error> {
    match version {
        None => client.execute(statement, &[&store, &space, &name, &body]),
        Some(v) => client.execute(statement, &[&store, &space, &name, &v, &body]),
    }
}

pub fn ensure(client: &mut Client, target: &str, schema: &str) -> Result<()> {
    match read_version(client, target, schema)? {
        Some(v) if v == SCHEMA_VERSION => return Ok(()),
        Some(v) if v > SCHEMA_VERSION => return Err(newer(target, schema, v)),
        _ => {}
    }
    let err = |e: postgres::Error| StoreError::Query(format!("{target}: {}", pg_message(&e)));
    let mut tx = client.transaction().map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_CLASS_STATE])
        .map_err(err)?;
    // Another host may have created it while we waited.
    match read_version(&mut tx, target, schema)? {
        Some(v) if v == SCHEMA_VERSION => return Ok(()),
        Some(v) if v > SCHEMA_VERSION => return Err(newer(target, schema, v)),
        _ => {}
    }
    let s = q(schema);
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), current_user::text",
            &[&schema],
        )
        .map_err(err)?;
    let (has_schema, role): (bool, String) = (row.get(0), row.get(1));
    // CREATE SCHEMA checks the database privilege before IF NOT EXISTS: a schema an owner
    // created for us must not be created again.
    if !has_schema {
        tx.batch_execute(&format!(
            "CREATE SCHEMA {s}; REVOKE ALL ON SCHEMA {s} FROM PUBLIC"
        ))
        .map_err(|e| {
            if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
                cannot_create(target, schema, &role)
            } else {
                err(e)
            }
        })?;
    }
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value text NOT NULL);
         CREATE TABLE IF NOT EXISTS {s}.docs (store text NOT NULL, space text NOT NULL, name text NOT NULL,
           version int8 NOT NULL, body bytea NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
           PRIMARY KEY (store, space, name));
         CREATE TABLE IF NOT EXISTS {s}.trash (store text NOT NULL, tenant text NOT NULL, run_id text NOT NULL,
           host text NOT NULL, removed_at timestamptz NOT NULL, key_type text NOT NULL, key_id text NOT NULL,
           value text NOT NULL, columns text NOT NULL DEFAULT '{{}}', restored_at timestamptz,
           PRIMARY KEY (store, tenant, run_id, key_type, key_id));
         CREATE INDEX IF NOT EXISTS trash_removed_at ON {s}.trash (removed_at);
         REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM PUBLIC;
         INSERT INTO {s}.meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;"
    ))
    .map_err(|e| {
        if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
            cannot_create(target, schema, &role)
        } else {
            err(e)
        }
    })?;
    tx.commit().map_err(err)
}

fn cannot_create(target: &str, schema: &str, role: &str) -> StoreError {
    StoreError::Schema(format!(
        "{target}: role {role} cannot create schema {schema} for the janitor's state: have an owner of the database run \
         `CREATE SCHEMA {s} AUTHORIZATION {r};` (the janitor then creates its tables), or set store.state_schema \
         to a schema this role owns (see docs/stores/postgres.md)",
        s = q(schema),
        r = q(role)
    ))
}

/// The layout's table as the server names it, schema-qualified: the same for every host.
pub fn store_name(client: &mut Client, target: &str, table: &str) -> Result<String> {
    let row = client
        .query_opt(
            "SELECT n.nspname::text || '.' || c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
            &[&q(table)],
        )
        .map_err(|e| StoreError::Query(format!("{target}: {}", pg_message(&e))))?;
    Ok(row.map_or_else(|| table.to_owned(), |r| r.get(0)))
}

pub struct PgState {
    client: Client,
    target: String,
    at: StateTarget,
    /// Whether the schema is there at this binary's version (read-only: never created).
    gate: SchemaGate,
    /// Statements prepared once the schema exists: one round trip per call, not two.
    prepared: HashMap<&'static str, Statement>,
    /// How to open another connection to the same state ([`SharedState::another`]): the
    /// connection string, the application name and the options it was opened with.
    reopen: Option<Reopen>,
}

/// What [`PgState::reopen_with`] keeps for [`SharedState::another`].
#[derive(Clone)]
pub struct Reopen {
    pub url: String,
    pub app_name: String,
    pub opts: SharedOptions,
}

impl PgState {
    /// Opens the state on `client` (a connection of its own). Refuses a schema written by a
    /// newer binary; creates it (or refuses with the SQL to run) unless `opts.read_only`.
    pub fn open(
        mut client: Client,
        target: &str,
        at: StateTarget,
        opts: &SharedOptions,
    ) -> Result<PgState> {
        let err = |e: postgres::Error| StoreError::Query(format!("{target}: {}", pg_message(&e)));
        client
            .batch_execute("SET lock_timeout = '2s'; SET statement_timeout = '30s'")
            .map_err(err)?;
        if opts.read_only {
            client
                .batch_execute("SET default_transaction_read_only = on")
                .map_err(err)?;
        }
        let version = read_version(&mut client, target, &at.schema)?;
        let gate = SchemaGate::open(
            opts.read_only,
            version,
            |v| newer(target, &at.schema, v),
            || ensure(&mut client, target, &at.schema),
        )?;
        Ok(PgState {
            client,
            target: target.to_owned(),
            gate,
            at,
            prepared: HashMap::new(),
            reopen: None,
        })
    }

    /// Lets [`SharedState::another`] open more handles the way this one was opened.
    pub fn reopen_with(mut self, reopen: Reopen) -> PgState {
        self.reopen = Some(reopen);
        self
    }

    fn err(&self, e: postgres::Error) -> StoreError {
        StoreError::Query(format!("{}: {}", self.target, pg_message(&e)))
    }

    /// Before a write: the schema exists at this version (created here on first use).
    fn writable(&mut self) -> Result<()> {
        self.gate.writable(&self.target, || {
            ensure(&mut self.client, &self.target, &self.at.schema)
        })
    }

    /// Before a read: whether there is anything to read. A missing schema reads as empty (it
    /// may have been created by another host since we opened).
    fn readable(&mut self) -> Result<bool> {
        self.gate.readable(
            || read_version(&mut self.client, &self.target, &self.at.schema),
            |v| newer(&self.target, &self.at.schema, v),
        )
    }

    /// The compare-and-swap of a document; `durable: false` commits without waiting for the
    /// WAL flush (a crash may lose the write, never half of it, and never one a later durable
    /// commit depends on: the WAL is flushed in order). A write lost that way cannot come back
    /// as a stale compare-and-swap either: the server's crash ends this connection.
    fn swap_on(
        &mut self,
        space: Space,
        name: &str,
        expected: Option<u64>,
        body: &[u8],
        durable: bool,
    ) -> Result<bool> {
        self.writable()?;
        // A lazy write is one statement that turns off its own transaction's WAL-flush wait
        // (`set_config(..., true)` lasts until that statement's implicit commit): one round
        // trip, where BEGIN / SET LOCAL / write / COMMIT took four per tenant, twice a tenant.
        let (s, version) = match (expected, durable) {
            (None, true) => (self.stmt("create")?, None),
            (None, false) => (self.stmt("create_lazy")?, None),
            (Some(v), true) => (self.stmt("update")?, Some(v as i64)),
            (Some(v), false) => (self.stmt("update_lazy")?, Some(v as i64)),
        };
        let doc = (self.at.store.as_str(), space.as_str(), name, version, body);
        let n = write_doc(&mut self.client, &s, doc).map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    fn stmt(&mut self, name: &'static str) -> Result<Statement> {
        if let Some(s) = self.prepared.get(name) {
            return Ok(s.clone());
        }
        let sql = self.sql(name);
        let s = match self.client.prepare(&sql) {
            Ok(s) => s,
            Err(e) => {
                let role = self
                    .client
                    .query_one("SELECT current_user::text", &[])
                    .map_or_else(|_| "CURRENT_USER".to_owned(), |r| q(&r.get::<_, String>(0)));
                return Err(access_error(&self.target, &self.at.schema, &role, &e));
            }
        };
        self.prepared.insert(name, s.clone());
        Ok(s)
    }

    fn sql(&self, name: &str) -> String {
        let docs = self.at.table("docs");
        let trash = self.at.table("trash");
        let runs = format!(
            "SELECT tenant, run_id, max(host), (extract(epoch from max(removed_at)) * 1000000)::int8, \
             count(*) FILTER (WHERE restored_at IS NULL), \
             coalesce(sum(octet_length(value)) FILTER (WHERE restored_at IS NULL), 0)::int8, \
             count(*) FILTER (WHERE restored_at IS NOT NULL) \
             FROM {trash} WHERE store = $1"
        );
        match name {
            "read" => format!(
                "SELECT body, version FROM {docs} WHERE store = $1 AND space = $2 AND name = $3"
            ),
            "read_many" => format!(
                "SELECT w.n::int4, d.body, d.version FROM unnest($2::text[], $3::text[]) \
                 WITH ORDINALITY AS w(space, name, n) JOIN {docs} d \
                 ON d.store = $1 AND d.space = w.space AND d.name = w.name"
            ),
            "create" => format!(
                "INSERT INTO {docs} (store, space, name, version, body) VALUES ($1, $2, $3, 1, $4) \
                 ON CONFLICT DO NOTHING"
            ),
            "update" => format!(
                "UPDATE {docs} SET version = version + 1, body = $5, updated_at = now() \
                 WHERE store = $1 AND space = $2 AND name = $3 AND version = $4"
            ),
            "create_lazy" => format!(
                "INSERT INTO {docs} (store, space, name, version, body) SELECT $1, $2, $3, 1, $4 \
                 FROM (SELECT set_config('synchronous_commit', 'off', true)) lazy ON CONFLICT DO NOTHING"
            ),
            "update_lazy" => format!(
                "UPDATE {docs} SET version = version + 1, body = $5, updated_at = now() \
                 FROM (SELECT set_config('synchronous_commit', 'off', true)) lazy \
                 WHERE store = $1 AND space = $2 AND name = $3 AND version = $4"
            ),
            "list" => format!(
                "SELECT name, body FROM {docs} WHERE store = $1 AND space = $2 ORDER BY name"
            ),
            "insert_trash" => self.at.insert_trash_sql(),
            "runs_all" => format!("{runs} GROUP BY tenant, run_id ORDER BY 4 DESC, tenant, run_id"),
            "runs_of" => {
                format!("{runs} AND tenant = $2 GROUP BY tenant, run_id ORDER BY 4 DESC, run_id")
            }
            "rows" => format!(
                "SELECT key_type, key_id, value, columns, restored_at IS NOT NULL FROM {trash} \
                 WHERE store = $1 AND tenant = $2 AND run_id = $3 ORDER BY key_type, key_id"
            ),
            "mark" => format!(
                "UPDATE {trash} SET restored_at = now() WHERE store = $1 AND tenant = $2 AND run_id = $3 \
                 AND restored_at IS NULL AND (key_type, key_id) IN (SELECT * FROM unnest($4::text[], $5::text[]))"
            ),
            "purge_count" => format!(
                "SELECT count(DISTINCT (tenant, run_id)), count(*) FROM {trash} \
                 WHERE store = $1 AND removed_at < 'epoch'::timestamptz + $2::int8 * interval '1 microsecond'"
            ),
            "purge" => format!(
                "DELETE FROM {trash} WHERE ctid = ANY (ARRAY(SELECT ctid FROM {trash} WHERE store = $1 \
                 AND removed_at < 'epoch'::timestamptz + $2::int8 * interval '1 microsecond' LIMIT $3))"
            ),
            _ => unreachable!("no statement {name}"),
        }
    }
}

fn to_time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

impl SharedState for PgState {
    fn describe(&self) -> String {
        format!("schema {} in {}", self.at.schema, self.target)
    }

    fn exposure(&mut self) -> Result<Vec<String>> {
        // Every grant on the schema and its tables to a role other than the owner and the
        // janitor's own (PUBLIC included): each can read removed private keys, or is one step
        // from it. Defaults (a NULL acl) grant nothing to others on schemas and tables.
        let rows = self
            .client
            .query(
                "WITH me AS (SELECT oid FROM pg_roles WHERE rolname = current_user), \
                 objs AS ( \
                   SELECT 'schema ' || n.nspname::text AS what, n.nspowner AS owner, n.nspacl AS acl \
                   FROM pg_namespace n WHERE n.nspname = $1 \
                   UNION ALL \
                   SELECT 'table ' || n.nspname::text || '.' || c.relname::text, c.relowner, c.relacl \
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                   WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm')) \
                 SELECT o.what, coalesce(r.rolname::text, 'PUBLIC'), string_agg(DISTINCT a.privilege_type, ', ') \
                 FROM objs o CROSS JOIN LATERAL aclexplode(o.acl) a LEFT JOIN pg_roles r ON r.oid = a.grantee \
                 WHERE a.grantee <> o.owner AND a.grantee NOT IN (SELECT oid FROM me) \
                 GROUP BY 1, 2 ORDER BY 1, 2",
                &[&self.at.schema],
            )
            .map_err(|e| self.err(e))?;
        let mut lines: Vec<String> = rows
            .iter()
            .map(|r| {
                let (what, who, privs): (String, String, String) = (r.get(0), r.get(1), r.get(2));
                format!(
                    "{what} (the janitor's state, removed keys included) grants {privs} to {who}: \
                     only the janitor's role should (REVOKE ALL ON ... FROM {who}; see docs/stores/postgres.md)"
                )
            })
            .collect();
        // A table another role owns (one made before the janitor's first run, or handed over):
        // its owner reads every removed key without any grant, so no grant shows it above.
        // Roles the janitor's role belongs to count as its own (one group role for many hosts).
        let owned = self
            .client
            .query(
                "SELECT n.nspname::text || '.' || c.relname::text, pg_get_userbyid(c.relowner)::text, current_user::text \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm') \
                   AND NOT pg_has_role(current_user, c.relowner, 'MEMBER') \
                 ORDER BY 1",
                &[&self.at.schema],
            )
            .map_err(|e| self.err(e))?;
        lines.extend(owned.iter().map(|r| {
            let (table, owner, me): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            format!(
                "table {table} (the janitor's state, removed keys included) is owned by role {owner}, \
                 not by the janitor's role {me}: {owner} can read it (ALTER TABLE {table} OWNER TO {me}; \
                 see docs/stores/postgres.md)"
            )
        }));
        Ok(lines)
    }

    fn read(&mut self, space: Space, name: &str) -> Result<Option<Doc>> {
        if !self.readable()? {
            return Ok(None);
        }
        let s = self.stmt("read")?;
        let row = self
            .client
            .query_opt(&s, &[&self.at.store, &space.as_str(), &name])
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| Doc {
            body: r.get(0),
            version: r.get::<_, i64>(1) as u64,
        }))
    }

    fn read_many(&mut self, docs: &[(Space, &str)]) -> Result<Vec<Option<Doc>>> {
        if !self.readable()? {
            return Ok(vec![None; docs.len()]);
        }
        let s = self.stmt("read_many")?;
        let spaces: Vec<&str> = docs.iter().map(|(space, _)| space.as_str()).collect();
        let names: Vec<&str> = docs.iter().map(|(_, name)| *name).collect();
        let rows = self
            .client
            .query(&s, &[&self.at.store, &spaces, &names])
            .map_err(|e| self.err(e))?;
        let mut out = vec![None; docs.len()];
        for r in rows {
            let at = r.get::<_, i32>(0) as usize - 1;
            if let Some(slot) = out.get_mut(at) {
                *slot = Some(Doc {
                    body: r.get(1),
                    version: r.get::<_, i64>(2) as u64,
                });
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
        self.swap_on(space, name, expected, body, true)
    }

    fn swap_lazy(
        &mut self,
        space: Space,
        name: &str,
        expected: Option<u64>,
        body: &[u8],
    ) -> Result<bool> {
        self.swap_on(space, name, expected, body, false)
    }

    fn list(&mut self, space: Space) -> Result<Vec<(String, Vec<u8>)>> {
        if !self.readable()? {
            return Ok(Vec::new());
        }
        let s = self.stmt("list")?;
        let rows = self
            .client
            .query(&s, &[&self.at.store, &space.as_str()])
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn put_trash(&mut self, tenant: &str, tag: &TrashTag, rows: &[TrashRow]) -> Result<()> {
        self.writable()?;
        if rows.is_empty() {
            return Ok(());
        }
        let s = self.stmt("insert_trash")?;
        let store = self.at.store.clone();
        // One statement (autocommit): durable when it returns.
        TrashArrays::of(rows)
            .insert(&mut self.client, &s, &store, tenant, tag)
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn trash_runs(&mut self, tenant: Option<&str>) -> Result<Vec<TrashRun>> {
        if !self.readable()? {
            return Ok(Vec::new());
        }
        let rows = match tenant {
            Some(t) => {
                let s = self.stmt("runs_of")?;
                self.client.query(&s, &[&self.at.store, &t])
            }
            None => {
                let s = self.stmt("runs_all")?;
                self.client.query(&s, &[&self.at.store])
            }
        }
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| TrashRun {
                tenant: r.get(0),
                run_id: r.get(1),
                host: r.get(2),
                removed_at: to_time(r.get(3)),
                rows: r.get::<_, i64>(4) as usize,
                bytes: r.get::<_, i64>(5) as u64,
                restored: r.get::<_, i64>(6) as usize,
            })
            .collect())
    }

    fn trash_rows(&mut self, tenant: &str, run_id: &str) -> Result<Vec<TrashedRow>> {
        if !self.readable()? {
            return Ok(Vec::new());
        }
        let s = self.stmt("rows")?;
        let rows = self
            .client
            .query(&s, &[&self.at.store, &tenant, &run_id])
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                let columns: String = r.get(3);
                let columns = serde_json::from_str(&columns).map_err(|e| {
                    StoreError::Query(format!(
                        "{}: a trashed row's columns are not readable ({e})",
                        self.target
                    ))
                })?;
                Ok(TrashedRow {
                    row: TrashRow {
                        key_type: r.get(0),
                        id: r.get(1),
                        value: r.get(2),
                        columns,
                    },
                    restored: r.get(4),
                })
            })
            .collect()
    }

    fn mark_restored(&mut self, tenant: &str, run_id: &str, keys: &[KeyRef]) -> Result<()> {
        self.writable()?;
        if keys.is_empty() {
            return Ok(());
        }
        let s = self.stmt("mark")?;
        let types: Vec<&str> = keys.iter().map(|k| k.key_type.as_str()).collect();
        let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        self.client
            .execute(&s, &[&self.at.store, &tenant, &run_id, &types, &ids])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A connection of its own for another worker (`--jobs`): its documents commit while the
    /// other worker's do, and the version check runs again (the same schema, or a refusal).
    fn another(&self) -> Result<Option<Box<dyn SharedState>>> {
        let Some(r) = &self.reopen else {
            return Ok(None);
        };
        let client = super::connect_client(&r.url, &self.target, &r.app_name)?;
        let st = PgState::open(client, &self.target, self.at.clone(), &r.opts)?;
        Ok(Some(Box::new(st.reopen_with(r.clone()))))
    }

    fn purge(&mut self, before: DateTime<Utc>) -> Result<(usize, usize)> {
        if self.gate.read_only() || !self.readable()? {
            return Ok((0, 0));
        }
        let before_us = before.timestamp_micros();
        let count = self.stmt("purge_count")?;
        let row = self
            .client
            .query_one(&count, &[&self.at.store, &before_us])
            .map_err(|e| self.err(e))?;
        let (runs, rows): (i64, i64) = (row.get(0), row.get(1));
        if rows == 0 {
            return Ok((0, 0));
        }
        let purge = self.stmt("purge")?;
        // In short statements, not one long delete that holds the table.
        loop {
            let n = self
                .client
                .execute(&purge, &[&self.at.store, &before_us, &PURGE_BATCH])
                .map_err(|e| self.err(e))?;
            if (n as i64) < PURGE_BATCH {
                break;
            }
        }
        Ok((runs as usize, rows as usize))
    }
}

#[cfg(test)]
mod tests;
