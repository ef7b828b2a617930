//! The janitor's shared state in memory: what the routing's unit tests run on, and the first
//! implementation [`super::shared_contract::check`] holds to. Clones share one state, so two
//! clones stand for two hosts on one store (each with its own "connection").

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use super::shared::{Doc, SharedState, Space, TrashRun, TrashTag, TrashedRow};
use super::{KeyRef, Result, StoreError, TrashRow};

#[derive(Default)]
struct Inner {
    docs: BTreeMap<(Space, String), Doc>,
    /// In insertion order, as a table would hand them out.
    trash: Vec<Trashed>,
    /// Calls to `swap` that lost (another writer was first): the retry loop's proof.
    lost_swaps: u64,
    /// Calls to `swap_lazy`: which writes may skip the log flush in a real store.
    lazy_swaps: u64,
    /// Calls to `read`: the round trips a real store would make for documents.
    reads: u64,
}

struct Trashed {
    tenant: String,
    tag: TrashTag,
    row: TrashRow,
    restored: bool,
}

#[derive(Clone, Default)]
pub struct MemoryState {
    inner: Arc<Mutex<Inner>>,
    /// Opened for `status` or a dry run: every write is refused (a test of "writes nothing").
    read_only: bool,
}

impl MemoryState {
    pub fn new() -> MemoryState {
        MemoryState::default()
    }

    /// Another handle on the same state that refuses every write.
    pub fn read_only(&self) -> MemoryState {
        MemoryState {
            inner: self.inner.clone(),
            read_only: true,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(StoreError::Query(
                "the shared state was opened read-only".into(),
            ));
        }
        Ok(())
    }

    pub fn lost_swaps(&self) -> u64 {
        self.lock().lost_swaps
    }

    pub fn lazy_swaps(&self) -> u64 {
        self.lock().lazy_swaps
    }

    pub fn reads(&self) -> u64 {
        self.lock().reads
    }

    /// The trash as a store writes it inside its removal transaction (`TrashTarget::InStore`).
    pub fn insert_trash(&self, tenant: &str, tag: &TrashTag, rows: &[TrashRow]) {
        let mut inner = self.lock();
        for row in rows {
            inner.trash.push(Trashed {
                tenant: tenant.to_owned(),
                tag: tag.clone(),
                row: row.clone(),
                restored: false,
            });
        }
    }
}

impl SharedState for MemoryState {
    fn describe(&self) -> String {
        "the in-memory shared state".into()
    }

    fn exposure(&mut self) -> Result<Vec<String>> {
        // Nobody else can read memory.
        Ok(Vec::new())
    }

    fn read(&mut self, space: Space, name: &str) -> Result<Option<Doc>> {
        let mut inner = self.lock();
        inner.reads += 1;
        Ok(inner.docs.get(&(space, name.to_owned())).cloned())
    }

    fn swap(
        &mut self,
        space: Space,
        name: &str,
        expected: Option<u64>,
        body: &[u8],
    ) -> Result<bool> {
        self.writable()?;
        let mut inner = self.lock();
        let key = (space, name.to_owned());
        let current = inner.docs.get(&key).map(|d| d.version);
        if current != expected {
            inner.lost_swaps += 1;
            return Ok(false);
        }
        inner.docs.insert(
            key,
            Doc {
                body: body.to_vec(),
                version: current.map_or(1, |v| v + 1),
            },
        );
        Ok(true)
    }

    fn swap_lazy(
        &mut self,
        space: Space,
        name: &str,
        expected: Option<u64>,
        body: &[u8],
    ) -> Result<bool> {
        self.lock().lazy_swaps += 1;
        self.swap(space, name, expected, body)
    }

    fn list(&mut self, space: Space) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(self
            .lock()
            .docs
            .iter()
            .filter(|((s, _), _)| *s == space)
            .map(|((_, name), doc)| (name.clone(), doc.body.clone()))
            .collect())
    }

    fn put_trash(&mut self, tenant: &str, tag: &TrashTag, rows: &[TrashRow]) -> Result<()> {
        self.writable()?;
        self.insert_trash(tenant, tag, rows);
        Ok(())
    }

    fn trash_runs(&mut self, tenant: Option<&str>) -> Result<Vec<TrashRun>> {
        let inner = self.lock();
        let mut runs: BTreeMap<(String, String), TrashRun> = BTreeMap::new();
        for t in inner
            .trash
            .iter()
            .filter(|t| tenant.is_none_or(|w| t.tenant == w))
        {
            let run = runs
                .entry((t.tenant.clone(), t.tag.run_id.clone()))
                .or_insert_with(|| TrashRun {
                    tenant: t.tenant.clone(),
                    run_id: t.tag.run_id.clone(),
                    host: t.tag.host.clone(),
                    removed_at: t.tag.removed_at,
                    rows: 0,
                    bytes: 0,
                    restored: 0,
                });
            if t.restored {
                run.restored += 1;
            } else {
                run.rows += 1;
                run.bytes += t.row.value.len() as u64;
            }
        }
        let mut out: Vec<TrashRun> = runs.into_values().collect();
        out.sort_by(|a, b| {
            (b.removed_at, &b.run_id, &a.tenant).cmp(&(a.removed_at, &a.run_id, &b.tenant))
        });
        Ok(out)
    }

    fn trash_rows(&mut self, tenant: &str, run_id: &str) -> Result<Vec<TrashedRow>> {
        Ok(self
            .lock()
            .trash
            .iter()
            .filter(|t| t.tenant == tenant && t.tag.run_id == run_id)
            .map(|t| TrashedRow {
                row: t.row.clone(),
                restored: t.restored,
            })
            .collect())
    }

    fn mark_restored(&mut self, tenant: &str, run_id: &str, keys: &[KeyRef]) -> Result<()> {
        self.writable()?;
        let mut inner = self.lock();
        for t in inner
            .trash
            .iter_mut()
            .filter(|t| t.tenant == tenant && t.tag.run_id == run_id)
        {
            if keys.contains(&t.row.key()) {
                t.restored = true;
            }
        }
        Ok(())
    }

    fn purge(&mut self, before: DateTime<Utc>) -> Result<(usize, usize)> {
        self.writable()?;
        let mut inner = self.lock();
        let old: std::collections::BTreeSet<(String, String)> = inner
            .trash
            .iter()
            .filter(|t| t.tag.removed_at < before)
            .map(|t| (t.tenant.clone(), t.tag.run_id.clone()))
            .collect();
        let n = inner.trash.len();
        inner.trash.retain(|t| t.tag.removed_at >= before);
        Ok((old.len(), n - inner.trash.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_in_memory_shared_state_keeps_the_contract() {
        let state = MemoryState::new();
        super::super::shared_contract::check(&mut || Box::new(state.clone()));
    }

    #[test]
    fn a_read_only_handle_writes_nothing() {
        let state = MemoryState::new();
        let mut ro = state.read_only();
        assert!(ro.swap(Space::Company, "t", None, b"{}").is_err());
        assert!(ro.read(Space::Company, "t").unwrap().is_none());
    }
}
