//! `Engine`: the deal actors, the order writer and the registry, and the threads they run on.

use std::sync::Arc;

use actix::prelude::*;

use crate::clock::{self, Clock};
use crate::deal::{DealActor, DealState, link};
use crate::deal_handle::DealHandle;
use crate::fast_path::mirror::DealMirror;
use crate::journal::Journal;
use crate::model::{DealRecord, LoadedDeal};
use crate::order_writer::{OrderWriter, WriterConfig, WriterHandle, WriterStats};
use crate::registry::DealRegistry;

/// The engine's sizing.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    pub writer: WriterConfig,
    /// Messages queued for one deal's actor at most.
    pub deal_mailbox_capacity: usize,
}

impl EngineConfig {
    /// Messages queued for one deal's actor at most, unless configured otherwise.
    pub const DEAL_MAILBOX_CAPACITY_DEFAULT: usize = 8_192;
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            writer: WriterConfig::default(),
            deal_mailbox_capacity: Self::DEAL_MAILBOX_CAPACITY_DEFAULT,
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
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    deal_arbiter: Arbiter,
    writer_arbiter: Arbiter,
}

impl Engine {
    /// Starts the writer, on the system's clock. Must be called inside a running actix `System`.
    pub fn start(journal: Arc<dyn Journal>, config: EngineConfig) -> Self {
        Self::start_with_clock(journal, config, clock::system())
    }

    /// Starts the writer; the deals read the time from `clock`.
    pub fn start_with_clock(
        journal: Arc<dyn Journal>,
        config: EngineConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
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
            clock,
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

    /// Orders waiting for the writer, and its queue's capacity.
    pub fn writer_queue_fill(&self) -> (usize, usize) {
        self.writer.queue_fill()
    }

    /// The messages one deal's actor may hold queued.
    pub fn deal_mailbox_capacity(&self) -> usize {
        self.config.deal_mailbox_capacity
    }

    /// How long a write whose commit's answer was lost waits for the store to say what became
    /// of it (the order writer's, and the service's for its own writes).
    pub fn outcome_wait(&self) -> std::time::Duration {
        self.config.writer.outcome_wait
    }

    pub fn writer_running(&self) -> bool {
        self.writer.running()
    }

    /// Starts the actor of a deal loaded from the store (or just created) and registers it.
    /// Returns the drift between the stored stock and the stock derived from its orders.
    pub fn launch(&self, loaded: LoadedDeal) -> (DealHandle, i64) {
        let (mut state, drift) = DealState::recover(loaded.record, loaded.units_by_customer);
        state.load_claims(loaded.claims);
        state.load_waitlist(loaded.waitlist);
        (self.start_deal(state, true), drift)
    }

    /// Starts the actor of a deal another node sells (cluster mode), as the store or the deal's
    /// owner shows it: it serves the deal's mirror and sells nothing until this node takes the
    /// deal over (`Reload`).
    pub fn follow(&self, record: DealRecord) -> DealHandle {
        self.start_deal(DealState::followed(record), false)
    }

    fn start_deal(&self, state: DealState, owned: bool) -> DealHandle {
        let deal_id = state.id();
        let mirror = Arc::new(DealMirror::new(state.record()));
        let addr = {
            let (mirror, writer, journal, clock) = (
                mirror.clone(),
                self.writer.clone(),
                self.journal.clone(),
                self.clock.clone(),
            );
            let capacity = self.config.deal_mailbox_capacity;
            DealActor::start_in_arbiter(&self.deal_arbiter.handle(), move |_| {
                DealActor::new(state, mirror, writer, journal, clock, capacity, owned)
            })
        };
        let handle = DealHandle {
            link: link(addr.clone()),
            addr,
            mirror,
            writer: self.writer.clone(),
            clock: self.clock.clone(),
        };
        self.registry.insert(deal_id, handle.clone());
        handle
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
