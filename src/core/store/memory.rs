//! A store in memory: the fake backend the contract tests run every guarantee on first (the
//! rustic_core way), before running them again on SQLite, PostgreSQL and Redis. It behaves as
//! the real stores promise: a removal re-checks each row's value, a restore never overwrites,
//! a tenant lock is exclusive.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Planned, RawRow, RemoveOutcome, RestoreOutcome, Result, Store, TenantLock, TrashRow,
    TrashTarget, fingerprint,
};

/// One tenant: its creds and its key rows (`(type, id)` → value and `updated_at`, µs).
#[derive(Clone, Debug, Default)]
pub struct Tenant {
    pub creds: Option<String>,
    pub rows: BTreeMap<(String, String), (String, Option<i64>)>,
    /// Why the tenant is an orphan, if it is.
    pub orphan: Option<String>,
}

#[derive(Clone, Default)]
pub struct MemoryStore {
    pub tenants: BTreeMap<String, Tenant>,
    locked: BTreeSet<String>,
    /// The janitor's state kept "in" this store (`Store::shared_state`); its trash is written
    /// in the same step that removes the rows (`TrashTarget::InStore`).
    pub state: super::memory_state::MemoryState,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    pub fn tenant(&mut self, name: &str) -> &mut Tenant {
        self.tenants.entry(name.to_owned()).or_default()
    }

    pub fn put(&mut self, tenant: &str, key_type: &str, id: &str, value: &str, at: Option<i64>) {
        self.tenant(tenant)
            .rows
            .insert((key_type.into(), id.into()), (value.into(), at));
    }

    /// The tenant's rows as `(type, id, value)`, sorted.
    pub fn rows(&self, tenant: &str) -> Vec<(String, String, String)> {
        self.tenants.get(tenant).map_or_else(Vec::new, |t| {
            t.rows
                .iter()
                .map(|((k, i), (v, _))| (k.clone(), i.clone(), v.clone()))
                .collect()
        })
    }
}

impl Store for MemoryStore {
    fn tenants(&mut self) -> Result<Vec<String>> {
        Ok(self.tenants.keys().cloned().collect())
    }

    fn creds(&mut self, tenant: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tenants
            .get(tenant)
            .and_then(|t| t.creds.clone())
            .map(String::into_bytes))
    }

    fn scan(&mut self, tenant: &str, f: &mut dyn FnMut(RawRow<'_>)) -> Result<()> {
        if let Some(t) = self.tenants.get(tenant) {
            for ((k, i), (v, at)) in &t.rows {
                f(RawRow {
                    key_type: k,
                    id: i,
                    value: v,
                    updated_at_us: *at,
                    size: None,
                });
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
        let t = self.tenant(tenant);
        let mut out = Vec::new();
        let mut trash = Vec::new();
        for p in batch {
            let key = (p.key.key_type.clone(), p.key.id.clone());
            match t.rows.get(&key) {
                None => out.push(RemoveOutcome::Vanished),
                Some((v, at))
                    if fingerprint(v.as_bytes()) != p.token.hash
                        || *at != p.token.updated_at_us =>
                {
                    out.push(RemoveOutcome::Changed)
                }
                Some((v, at)) => {
                    out.push(RemoveOutcome::Removed {
                        bytes: v.len() as u64,
                    });
                    let mut columns = BTreeMap::new();
                    if at.is_some() {
                        columns.insert("updated_at".to_owned(), *at);
                    }
                    trash.push(TrashRow {
                        key_type: key.0.clone(),
                        id: key.1.clone(),
                        value: v.clone(),
                        columns,
                    });
                }
            }
        }
        if !trash.is_empty() {
            // Nothing is gone until the trash holds it (the "transaction" commits after).
            match trash_to {
                TrashTarget::InStore(tag) => self.state.insert_trash(tenant, tag, &trash),
                other => other.before_commit(&trash).map_err(|e| {
                    super::StoreError::Query(format!("cannot write the trash: {e}"))
                })?,
            }
            let t = self.tenant(tenant);
            for r in &trash {
                t.rows.remove(&(r.key_type.clone(), r.id.clone()));
            }
        }
        Ok(out)
    }

    fn restore(&mut self, tenant: &str, rows: &[TrashRow]) -> Result<Vec<RestoreOutcome>> {
        let t = self.tenant(tenant);
        Ok(rows
            .iter()
            .map(|r| {
                let key = (r.key_type.clone(), r.id.clone());
                match t.rows.entry(key) {
                    std::collections::btree_map::Entry::Occupied(_) => RestoreOutcome::Exists,
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        let at = r.columns.get("updated_at").copied().flatten();
                        slot.insert((r.value.clone(), at));
                        RestoreOutcome::Restored
                    }
                }
            })
            .collect())
    }

    fn lock_tenant(&mut self, tenant: &str) -> Result<TenantLock> {
        Ok(if self.locked.insert(tenant.to_owned()) {
            TenantLock::Acquired
        } else {
            TenantLock::Busy("another test".into())
        })
    }

    fn unlock_tenant(&mut self, tenant: &str) {
        self.locked.remove(tenant);
    }

    fn orphan(&mut self, tenant: &str) -> Option<String> {
        self.tenants.get(tenant).and_then(|t| t.orphan.clone())
    }

    fn trash_in_transaction(&self) -> bool {
        true
    }

    fn shared_state(
        &self,
        opts: &super::shared::SharedOptions,
    ) -> Result<Option<Box<dyn super::SharedState>>> {
        Ok(Some(Box::new(if opts.read_only {
            self.state.read_only()
        } else {
            self.state.clone()
        })))
    }
}
