//! A removal batch as one statement: the rows still as planned are deleted and copied into the
//! trash by the server, in one round trip, and the values never travel to the janitor and back.
//!
//! The compare stays exact under concurrent writes. The statement first reads the batch's rows
//! (by their key columns) with their value text, once, into a materialized CTE; the `DELETE`
//! then takes exactly those row versions (`ctid` and `tableoid`, with the key again) whose text
//! has the MD5 the planner computed over the text the scan read, and whose `updated_at` is the
//! planned one. A row the app rewrites meanwhile is a new row version at a new `ctid`: the
//! `DELETE` waits for the app's transaction and, under READ COMMITTED, re-checks its condition
//! on the newest version, which no longer matches, so the row is kept; a row deleted by the app
//! is skipped. Every row the statement deletes is the version whose text it put in the trash.
//!
//! A batch is one statement in autocommit: its trash rows and its deletes commit together or
//! not at all. Rows not deleted are told apart (changed, or gone) by one more query, only when
//! there are some.

use postgres::Statement;

use super::state::StateTarget;
use super::{PgStore, pg_message};
use crate::core::fault;
use crate::core::store::shared::TrashTag;
use crate::core::store::{Planned, RemoveOutcome, Result, StoreError};

/// What the statement needs to know of a layout. Predicates use `k` for the table and `p` for
/// the batch's parameters (`p.jk` the key column's value, `p.jt`/`p.ji` type and id).
pub struct Shape {
    /// The table, quoted.
    pub table: String,
    /// The tenant's rows (`$1`: the tenant, or `<tenant><sep>` for key-prefix layouts).
    pub tenant: String,
    /// The row a parameter names, by the table's key columns.
    pub key_match: String,
    /// The value column, quoted.
    pub value: String,
    /// `updated_at` as the scan reads it, where the layout has one.
    pub updated: Option<Updated>,
    /// The columns the trash keeps beside the value: name, microseconds expression.
    pub columns: Vec<(String, String)>,
}

/// How the statement compares a row's `updated_at` with the planned one (`$6`).
pub struct Updated {
    /// The column (`k."updated_at"`), or an expression of it in microseconds.
    pub column: String,
    /// The SQL type of `$6`'s elements: the column's own timestamp type (the planned value is
    /// sent in the binary protocol, exact, compared without a conversion per row), or `int8`.
    pub param: &'static str,
}

/// `k.col = param` where the column compares with text as is (so its index serves), else
/// through its text form (what the scan read).
pub fn column_is(col: &str, sql_type: &str, param: &str) -> String {
    if sql_type == "text" || sql_type.starts_with("character varying") {
        format!("k.{col} = {param}")
    } else {
        format!("k.{col}::text = {param}")
    }
}

/// The statements, prepared on the store's connection on first use.
#[derive(Default)]
pub struct Statements {
    /// Whether the server hashes the text the janitor reads: its encoding is UTF-8.
    utf8: Option<bool>,
    /// With the trash insert, for the state in this schema: a plain insert, and the one that
    /// replaces a row this run trashed before (`ON CONFLICT … DO UPDATE`).
    in_store: Option<(String, Statement)>,
    in_store_upsert: Option<(String, Statement)>,
    /// Without a trash (trash turned off).
    bare: Option<Statement>,
    /// Which of the rows not removed still exist.
    exists: Option<Statement>,
}

/// The removal statement. `$1` tenant parameter, `$2..$6` arrays of key, type, id, MD5 (hex)
/// and `updated_at` (µs); with `trash`, `$7..$11` as [`StateTarget::insert_trash_from_sql`]
/// takes them. Returns the ordinal (1-based) in the batch and the stored size of each removed
/// row (`pg_column_size`).
pub fn remove_sql(shape: &Shape, utf8: bool, trash: Option<&StateTarget>, upsert: bool) -> String {
    let Shape {
        table,
        tenant,
        key_match,
        value,
        updated,
        columns,
    } = shape;
    let (updated, updated_param) = updated
        .as_ref()
        .map_or(("NULL::int8", "int8"), |u| (u.column.as_str(), u.param));
    let cols = if columns.is_empty() {
        "'{}'::text".to_owned()
    } else {
        let pairs: Vec<String> = columns
            .iter()
            .map(|(name, expr)| format!("{}, {expr}", super::sql_literal(name)))
            .collect();
        format!("json_build_object({})::text", pairs.join(", "))
    };
    // The hash the janitor computed is over UTF-8; `md5(text)` hashes the server's encoding.
    let hashed = if utf8 {
        "p.v"
    } else {
        "convert_to(p.v, 'UTF8')"
    };
    let mut sql = format!(
        "WITH c AS MATERIALIZED (\
           SELECT k.tableoid AS o, k.ctid AS r, p.n, p.jk, p.jt, p.ji, p.jh, k.{value}::text AS v, {cols} AS cj, \
             pg_column_size(k.{value}) AS sz \
           FROM {table} k JOIN unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::{updated_param}[]) \
             WITH ORDINALITY AS p(jk, jt, ji, jh, ju, n) ON {key_match} \
           WHERE {tenant} AND {updated} IS NOT DISTINCT FROM p.ju), \
         d AS (\
           DELETE FROM {table} k USING c p \
           WHERE k.ctid = p.r AND k.tableoid = p.o AND {tenant} AND {key_match} AND md5({hashed}) = p.jh \
           RETURNING p.n, p.jt, p.ji, p.v, p.cj, p.sz)"
    );
    if let Some(at) = trash {
        sql.push_str(&format!(
            ", x AS ({})",
            at.insert_trash_from_sql("SELECT d.jt, d.ji, d.v, d.cj FROM d", upsert)
        ));
    }
    // The bytes freed: the stored size, as the scan reported it to the plan.
    sql.push_str(" SELECT d.n, d.sz::int8 FROM d");
    sql
}

/// Ordinals (1-based) of the parameters whose row exists: `$1` tenant, `$2..$4` key, type, id.
fn exists_sql(shape: &Shape) -> String {
    format!(
        "SELECT p.n FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS p(jk, jt, ji, n) \
         WHERE EXISTS (SELECT 1 FROM {table} k WHERE {tenant} AND {key_match})",
        table = shape.table,
        tenant = shape.tenant,
        key_match = shape.key_match
    )
}

/// Lower-case hex, as `md5()` returns it (by table: `write!` per byte was 3% of a cleanup's
/// CPU).
fn hex(md5: &[u8; 16]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(32);
    for b in md5 {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

impl PgStore {
    /// Removes a batch whose tokens all carry an MD5, with its trash in the store (`trash`:
    /// where, and the run's tag) or none.
    pub(super) fn remove_on_server(
        &mut self,
        tenant: &str,
        batch: &[Planned],
        trash: Option<(&StateTarget, &TrashTag)>,
    ) -> Result<Vec<RemoveOutcome>> {
        let param = self.tenant_param(tenant);
        let keys: Vec<String> = batch
            .iter()
            .map(|p| self.key_of(tenant, &p.key.key_type, &p.key.id))
            .collect();
        let types: Vec<&str> = batch.iter().map(|p| p.key.key_type.as_str()).collect();
        let ids: Vec<&str> = batch.iter().map(|p| p.key.id.as_str()).collect();
        let md5s: Vec<String> = batch
            .iter()
            .map(|p| p.token.md5.as_ref().map(hex).unwrap_or_default())
            .collect();
        let micros: Vec<Option<i64>> = batch.iter().map(|p| p.token.updated_at_us).collect();
        let times: Vec<Option<std::time::SystemTime>>;
        let updated: &(dyn postgres::types::ToSql + Sync) = match &self.sql.shape.updated {
            Some(u) if u.param != "int8" => {
                times = micros
                    .iter()
                    .map(|us| us.map(super::time_of_micros))
                    .collect();
                &times
            }
            _ => &micros,
        };
        let mut upsert = false;
        let rows = loop {
            let stmt = self.removal(trash.map(|(at, _)| at), upsert)?;
            let rows = match trash {
                Some((at, tag)) => {
                    let removed_us = tag.removed_at.timestamp_micros();
                    self.client.query(
                        &stmt,
                        &[
                            &param,
                            &keys,
                            &types,
                            &ids,
                            &md5s,
                            updated,
                            &at.store,
                            &tenant,
                            &tag.run_id,
                            &tag.host,
                            &removed_us,
                        ],
                    )
                }
                None => self
                    .client
                    .query(&stmt, &[&param, &keys, &types, &ids, &md5s, updated]),
            };
            match rows {
                // The trash already holds one of these rows for this run (a key written again
                // and removed again under the same run id): the statement failed whole, nothing
                // was deleted; again with the insert that replaces it.
                Err(e)
                    if trash.is_some()
                        && !upsert
                        && e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) =>
                {
                    upsert = true;
                }
                other => break other.map_err(|e| self.err(e))?,
            }
        };
        fault::point("pg.after_commit");
        let mut out: Vec<Option<RemoveOutcome>> = vec![None; batch.len()];
        for r in &rows {
            let n: i64 = r.get(0);
            let bytes: i64 = r.get(1);
            if let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| out.get_mut(i)) {
                *slot = Some(RemoveOutcome::Removed {
                    bytes: bytes as u64,
                });
            }
        }
        let missing: Vec<usize> = (0..batch.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let exist = self.existing(&param, &missing, &keys, &types, &ids)?;
            for (j, &i) in missing.iter().enumerate() {
                out[i] = Some(if exist.contains(&j) {
                    RemoveOutcome::Changed
                } else {
                    RemoveOutcome::Vanished
                });
            }
        }
        Ok(out
            .into_iter()
            .map(|o| o.expect("every row told"))
            .collect())
    }

    /// Which of `missing` (indexes into the batch) still exist, as indexes into `missing`.
    fn existing(
        &mut self,
        param: &str,
        missing: &[usize],
        keys: &[String],
        types: &[&str],
        ids: &[&str],
    ) -> Result<Vec<usize>> {
        let stmt = match &self.removals.exists {
            Some(s) => s.clone(),
            None => {
                let s = self
                    .client
                    .prepare(&exists_sql(&self.sql.shape))
                    .map_err(|e| self.err(e))?;
                self.removals.exists = Some(s.clone());
                s
            }
        };
        let keys: Vec<&str> = missing.iter().map(|&i| keys[i].as_str()).collect();
        let types: Vec<&str> = missing.iter().map(|&i| types[i]).collect();
        let ids: Vec<&str> = missing.iter().map(|&i| ids[i]).collect();
        let rows = self
            .client
            .query(&stmt, &[&param, &keys, &types, &ids])
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .filter_map(|r| usize::try_from(r.get::<_, i64>(0) - 1).ok())
            .collect())
    }

    /// The removal statement for this trash target, prepared once.
    fn removal(&mut self, trash: Option<&StateTarget>, upsert: bool) -> Result<Statement> {
        let in_store = if upsert {
            &self.removals.in_store_upsert
        } else {
            &self.removals.in_store
        };
        let cached = match trash {
            Some(at) => in_store
                .as_ref()
                .filter(|(schema, _)| *schema == at.schema)
                .map(|(_, s)| s.clone()),
            None => self.removals.bare.clone(),
        };
        if let Some(s) = cached {
            return Ok(s);
        }
        let utf8 = match self.removals.utf8 {
            Some(u) => u,
            None => {
                let enc: String = self
                    .client
                    .query_one("SELECT current_setting('server_encoding')", &[])
                    .map_err(|e| self.err(e))?
                    .get(0);
                let u = enc.eq_ignore_ascii_case("UTF8");
                self.removals.utf8 = Some(u);
                u
            }
        };
        let sql = remove_sql(&self.sql.shape, utf8, trash, upsert);
        let s = self
            .client
            .prepare(&sql)
            .map_err(|e| StoreError::Schema(format!("{}: {}", self.target, pg_message(&e))))?;
        match trash {
            Some(at) if upsert => {
                self.removals.in_store_upsert = Some((at.schema.clone(), s.clone()))
            }
            Some(at) => self.removals.in_store = Some((at.schema.clone(), s.clone())),
            None => self.removals.bare = Some(s.clone()),
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_hex_is_what_postgres_md5_prints() {
        use md5::Digest;
        let d: [u8; 16] = md5::Md5::digest(b"").into();
        assert_eq!(hex(&d), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn only_text_columns_are_compared_as_they_are() {
        assert_eq!(column_is("\"id\"", "text", "p.ji"), "k.\"id\" = p.ji");
        assert_eq!(
            column_is("\"id\"", "character varying(64)", "p.ji"),
            "k.\"id\" = p.ji"
        );
        assert_eq!(column_is("\"id\"", "uuid", "p.ji"), "k.\"id\"::text = p.ji");
    }
}

#[cfg(test)]
mod hex_tests {
    #[test]
    fn hex_is_what_md5_returns() {
        use md5::Digest as _;
        let digest: [u8; 16] = md5::Md5::digest(b"abc").into();
        assert_eq!(super::hex(&digest), "900150983cd24fb0d6963f7d28e17f72");
    }
}
