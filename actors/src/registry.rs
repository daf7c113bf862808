//! `DealRegistry`: which deals this node runs, and where a deal is to be found.

use std::sync::Arc;

use dashmap::DashMap;

use crate::DealId;
use crate::deal_handle::DealHandle;
use crate::fast_path::mirror::DealMirror;

/// Where a deal is, as this node knows it.
#[derive(Clone)]
pub enum Location {
    /// This node owns the deal: its handle.
    Local(DealHandle),
    /// Another node owns the deal: its id (cluster mode; a single node never answers this).
    Remote(String),
    /// The deal exists but has no owner right now (cluster mode: its owner is moving).
    Unavailable,
}

/// Every live deal by id. Lookups clone the handle out, so no map guard is ever held across an
/// `.await` (a held guard across an await can deadlock the shard).
#[derive(Default)]
pub struct DealRegistry {
    deals: DashMap<DealId, DealHandle>,
}

impl DealRegistry {
    /// Where the deal is; `None` when no deal of that id is known. A single node knows only its
    /// own deals, so it answers `Local` or `None`; cluster mode adds the other two answers.
    pub fn locate(&self, deal_id: DealId) -> Option<Location> {
        self.get(deal_id).map(Location::Local)
    }

    pub fn get(&self, deal_id: DealId) -> Option<DealHandle> {
        self.deals.get(&deal_id).map(|entry| entry.value().clone())
    }

    /// Runs `f` on the deal's handle without cloning it (no reference counts touched, which
    /// two threads serving the same hot deal would otherwise bounce between their cores).
    /// `f` runs under the map's shard lock: it must be short and must not await.
    pub fn with<R>(&self, deal_id: DealId, f: impl FnOnce(&DealHandle) -> R) -> Option<R> {
        self.deals.get(&deal_id).map(|entry| f(entry.value()))
    }

    pub fn insert(&self, deal_id: DealId, handle: DealHandle) {
        self.deals.insert(deal_id, handle);
    }

    pub fn len(&self) -> usize {
        self.deals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deals.is_empty()
    }

    /// The mirrors of every deal, sorted by deal id.
    pub fn mirrors(&self) -> Vec<(DealId, Arc<DealMirror>)> {
        let mut mirrors: Vec<_> = self
            .deals
            .iter()
            .map(|entry| (*entry.key(), entry.value().mirror.clone()))
            .collect();
        mirrors.sort_unstable_by_key(|(deal_id, _)| *deal_id);
        mirrors
    }
}
