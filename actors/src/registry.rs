//! `Engine` and `DealRegistry`: which actor owns which deal, and where the actors run.

use std::sync::Arc;

use actix::prelude::*;
use dashmap::DashMap;

use crate::DealId;
use crate::deal::{DealActor, DealState};
use crate::journal::{Journal, LoadedDeal};
use crate::mirror::DealMirror;
use crate::order_writer::{OrderWriter, WriterConfig, WriterHandle, WriterStats};

/// A live deal: its actor, its mirror, and the writer its orders go to.
#[derive(Clone)]
pub struct DealHandle {
    pub addr: Addr<DealActor>,
    pub mirror: Arc<DealMirror>,
    pub(crate) writer: WriterHandle,
}

/// Every live deal by id. Lookups clone the handle out, so no map guard is ever held across an
/// `.await` (a held guard across an await can deadlock the shard).
#[derive(Default)]
pub struct DealRegistry {
    deals: DashMap<DealId, DealHandle>,
}

impl DealRegistry {
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

/// The engine's sizing.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    pub writer: WriterConfig,
    /// Messages queued for one deal's actor at most.
    pub deal_mailbox_capacity: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            writer: WriterConfig::default(),
            deal_mailbox_capacity: 8_192,
        }
    }
}

/// The running engine: the deal actors (on an arbiter of their own, so that no HTTP worker's
/// load delays a deal's decisions), the order writer (on another), and the registry.
pub struct Engine {
    registry: Arc<DealRegistry>,
    writer: WriterHandle,
    writer_stats: Arc<WriterStats>,
    journal: Arc<dyn Journal>,
    config: EngineConfig,
    deal_arbiter: Arbiter,
    writer_arbiter: Arbiter,
}

impl Engine {
    /// Starts the writer. Must be called inside a running actix `System`.
    pub fn start(journal: Arc<dyn Journal>, config: EngineConfig) -> Self {
        let writer_stats = Arc::new(WriterStats::default());
        let writer_arbiter = Arbiter::new();
        let writer = OrderWriter::start(
            &writer_arbiter.handle(),
            journal.clone(),
            config.writer,
            writer_stats.clone(),
        );
        Self {
            registry: Arc::new(DealRegistry::default()),
            writer,
            writer_stats,
            journal,
            config,
            deal_arbiter: Arbiter::new(),
            writer_arbiter,
        }
    }

    pub fn registry(&self) -> &Arc<DealRegistry> {
        &self.registry
    }

    pub fn writer_stats(&self) -> &Arc<WriterStats> {
        &self.writer_stats
    }

    pub fn writer_running(&self) -> bool {
        self.writer.running()
    }

    /// Starts the actor of a deal loaded from the store (or just created) and registers it.
    /// Returns the drift between the stored stock and the stock derived from its orders.
    pub fn launch(&self, loaded: LoadedDeal) -> (DealHandle, i64) {
        let (state, drift) = DealState::recover(loaded.record, loaded.units_by_customer);
        let deal_id = state.id();
        let mirror = Arc::new(DealMirror::new(state.record()));
        let addr = {
            let (mirror, writer, journal) =
                (mirror.clone(), self.writer.clone(), self.journal.clone());
            let capacity = self.config.deal_mailbox_capacity;
            DealActor::start_in_arbiter(&self.deal_arbiter.handle(), move |_| {
                DealActor::new(state, mirror, writer, journal, capacity)
            })
        };
        let handle = DealHandle {
            addr,
            mirror,
            writer: self.writer.clone(),
        };
        self.registry.insert(deal_id, handle.clone());
        (handle, drift)
    }

    /// Waits until every order handed to the writer so far is committed or failed.
    pub async fn drain(&self) {
        self.writer.drain().await;
    }

    /// Stops the actors' threads. Call after `drain`.
    pub fn stop(&self) {
        self.deal_arbiter.stop();
        self.writer_arbiter.stop();
    }
}
