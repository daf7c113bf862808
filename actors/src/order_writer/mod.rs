//! `OrderWriter`: the persistence actor. Group commit, acknowledge after commit.
//!
//! Orders queue up while batches are being committed; when a commit returns, everything queued
//! (up to `batch_max` orders) becomes the next batch. There is no timer and no fixed wait: when
//! the store is idle a batch is one order, under a burst it is as many as arrived during the
//! previous commit. Each waiting request hears about its order only after its batch committed;
//! a failed commit fails every order of the batch and gives their units back to their deals.
//!
//! Up to `commits_in_flight` batches commit at once, each on a connection of its own (Postgres:
//! one batch's inserts run while the other's commit waits for its WAL flush, so the machine
//! does not idle behind one commit; issue 13, docs/BENCHMARKS.md). Batches are independent
//! transactions: they may finish in any order, and nothing here or in the deals depends on
//! the order in which they do (units are taken off in memory before an order is queued).
//!
//! Orders reach the writer through a shared inbox ([`WriterHandle::persist`]), not its mailbox:
//! while a commit is under way (always, under load) handing an order over is a push under a
//! short lock and wakes nobody; only the first order after the writer went idle sends it a
//! `Wake`. Measured: the writer's thread woke once per order before (16 % of a core at 21k
//! orders/s, docs/BENCHMARKS.md).
//!
//! Orders claimed on HTTP workers' threads (see `ledger.rs`) are not yet attributed: when
//! such orders enter a batch, their deal hears whose units they are (one `Attribute` message per
//! deal and batch), before the commit.
//!
//! A commit whose outcome is unknown (the connection dropped after the commit was sent) is
//! neither a success nor a failure: its orders keep their units and their requesters wait
//! while the writer asks the store what became of the batch ([`Journal::settle_batch`], by the
//! key the batch wrote in its own transaction), then answers each order as stored or gives its
//! units back. Only past `outcome_wait` does a requester hear `OutcomeUnknown` (504), and the
//! units stay taken until the store has answered (docs/RELIABILITY.md).
//!
//! A store that just failed a commit is presumed down: the orders queued behind the failed batch
//! are failed with it at once instead of each waiting out the store's own timeout in turn, so
//! during an outage every request hears 503 within about one timeout. The next order to arrive
//! tries the store again; there is no separate health probe to keep in step.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

mod pending;
mod stats;
mod unsettled;

pub use pending::{DealLink, PendingOrder, return_units};
use pending::{report_claims, report_stored_claims};
use stats::SlowCommits;
pub use stats::WriterStats;
use unsettled::{UnsettledBatches, learn_fate, stored_records};

use crate::DealId;
use crate::journal::{BatchFate, Journal, JournalError};
use crate::model::{NewOrder, OrderRecord, PlaceError};

/// The writer's bounds.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Orders in one transaction at most; bounds the transaction's size and its latency.
    pub batch_max: usize,
    /// Orders waiting for a batch at most; past it orders are refused with `Overloaded`.
    pub queue_max: usize,
    /// Batches committing at once at most (the journal needs that many connections).
    pub commits_in_flight: usize,
    /// How long the requesters of a batch whose commit's outcome is unknown wait for the store
    /// to say what became of it, before they hear `OutcomeUnknown`.
    pub outcome_wait: Duration,
}

impl WriterConfig {
    /// Orders in one transaction at most, unless configured otherwise.
    pub const BATCH_MAX_DEFAULT: usize = 1_000;
    /// Orders waiting for a batch at most, unless configured otherwise.
    pub const QUEUE_MAX_DEFAULT: usize = 50_000;
    /// Batches committing at once, unless configured otherwise.
    pub const COMMITS_IN_FLIGHT_DEFAULT: usize = 1;
    /// How long an order whose commit's outcome is unknown waits for it, unless configured
    /// otherwise: a restarted Postgres answers again within a few seconds (crash recovery).
    pub const OUTCOME_WAIT_DEFAULT: Duration = Duration::from_secs(10);
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            batch_max: Self::BATCH_MAX_DEFAULT,
            queue_max: Self::QUEUE_MAX_DEFAULT,
            commits_in_flight: Self::COMMITS_IN_FLIGHT_DEFAULT,
            outcome_wait: Self::OUTCOME_WAIT_DEFAULT,
        }
    }
}

/// Orders waiting for the next batch, shared by everyone who hands orders to the writer.
#[derive(Debug)]
struct Inbox {
    queue: Mutex<VecDeque<PendingOrder>>,
    /// Set while the writer has nothing to commit; whoever clears it must send a `Wake`.
    idle: AtomicBool,
    queue_max: usize,
}

impl Inbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<PendingOrder>> {
        // A panic while holding the lock cannot leave the queue half-changed (push or drain).
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Where orders are handed to the writer, from any thread. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WriterHandle {
    inbox: Arc<Inbox>,
    addr: Addr<OrderWriter>,
    stats: Arc<WriterStats>,
}

impl WriterHandle {
    /// Queues an order for the next batch. A full queue gives it back (the caller returns its
    /// units and answers `Overloaded`): bounded memory, never a silent drop.
    pub fn persist(&self, pending: PendingOrder) -> Result<(), PendingOrder> {
        {
            let mut queue = self.inbox.lock();
            if queue.len() >= self.inbox.queue_max {
                self.stats
                    .orders_refused_queue_full
                    .fetch_add(1, Ordering::Relaxed);
                return Err(pending);
            }
            queue.push_back(pending);
        }
        if self.inbox.idle.swap(false, Ordering::AcqRel) {
            // `do_send`: one `Wake` per idle writer, so the mailbox holds at most a few.
            self.addr.do_send(Wake);
        }
        Ok(())
    }

    /// Orders waiting for a batch right now, and how many may wait at most.
    pub fn queue_fill(&self) -> (usize, usize) {
        (self.inbox.lock().len(), self.inbox.queue_max)
    }

    pub fn running(&self) -> bool {
        self.addr.connected()
    }

    /// Waits until every order handed over so far is committed or failed.
    pub async fn drain(&self) {
        let (done, finished) = oneshot::channel();
        if self.addr.send(Drain { done }).await.is_ok() {
            let _ = finished.await;
        }
    }
}

/// Look at the inbox: orders arrived while the writer was idle.
#[derive(Message, Debug)]
#[rtype(result = "()")]
struct Wake;

/// Answer on `done` once every order queued before this message is committed or failed.
#[derive(Message, Debug)]
#[rtype(result = "()")]
struct Drain {
    pub done: oneshot::Sender<()>,
}

pub struct OrderWriter {
    journal: Arc<dyn Journal>,
    config: WriterConfig,
    inbox: Arc<Inbox>,
    /// Batches whose commit is under way (at most `config.commits_in_flight`).
    committing: usize,
    drain_waiters: Vec<oneshot::Sender<()>>,
    /// Batches whose commit's outcome is unknown, by the key they wrote, until the store says
    /// what became of them.
    unsettled: UnsettledBatches,
    stats: Arc<WriterStats>,
    slow_commits: SlowCommits,
}

impl OrderWriter {
    /// Starts the writer on `arbiter` and returns the handle orders are given to.
    pub fn start(
        arbiter: &ArbiterHandle,
        journal: Arc<dyn Journal>,
        config: WriterConfig,
        stats: Arc<WriterStats>,
    ) -> WriterHandle {
        assert!(
            config.batch_max >= 1 && config.queue_max >= 1 && config.commits_in_flight >= 1,
            "writer bounds must be positive"
        );
        let inbox = Arc::new(Inbox {
            queue: Mutex::new(VecDeque::new()),
            idle: AtomicBool::new(true),
            queue_max: config.queue_max,
        });
        let addr = {
            let (inbox, stats) = (inbox.clone(), stats.clone());
            OrderWriter::start_in_arbiter(arbiter, move |_| {
                OrderWriter::new(journal, config, inbox, stats)
            })
        };
        WriterHandle { inbox, addr, stats }
    }

    fn new(
        journal: Arc<dyn Journal>,
        config: WriterConfig,
        inbox: Arc<Inbox>,
        stats: Arc<WriterStats>,
    ) -> Self {
        Self {
            journal,
            config,
            inbox,
            committing: 0,
            drain_waiters: Vec::new(),
            unsettled: UnsettledBatches::default(),
            stats,
            slow_commits: SlowCommits::default(),
        }
    }

    /// Takes up to `batch_max` queued orders; when there are none, marks the writer idle (the
    /// next order handed over wakes it) and returns an empty batch.
    fn take_batch(&self) -> Vec<PendingOrder> {
        let mut queue = self.inbox.lock();
        if queue.is_empty() {
            // Under the lock: a `persist` either queued before this (and is taken next time
            // round) or sees `idle` set after it and sends a `Wake`.
            self.inbox.idle.store(true, Ordering::Release);
            return Vec::new();
        }
        let take = queue.len().min(self.config.batch_max);
        queue.drain(..take).collect()
    }

    /// Starts commits while a commit slot is free and orders are queued. A free slot with
    /// nothing queued leaves the writer idle, so the next order wakes it into that slot.
    fn commit_next_batch(&mut self, ctx: &mut Context<Self>) {
        while self.committing < self.config.commits_in_flight {
            let batch = self.take_batch();
            if batch.is_empty() {
                self.wake_drain_waiters();
                return;
            }
            self.commit_batch(batch, ctx);
        }
    }

    /// Answers the drain waiters once nothing is committing and every requester has been
    /// answered (a batch whose outcome is unknown counts until its requesters heard of it).
    fn wake_drain_waiters(&mut self) {
        let answered = self.unsettled.all_told();
        if self.committing == 0 && answered && self.inbox.lock().is_empty() {
            for waiter in self.drain_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    fn commit_batch(&mut self, mut batch: Vec<PendingOrder>, ctx: &mut Context<Self>) {
        self.committing += 1;
        report_claims(&mut batch);
        let orders: Vec<NewOrder> = batch.iter().map(|pending| pending.order.clone()).collect();
        let commit = self.journal.commit_orders(orders);
        let started = Instant::now();
        ctx.spawn(commit.into_actor(self).map(move |result, writer, ctx| {
            writer.committing -= 1;
            let took = started.elapsed();
            metrics::histogram!("topkart_writer_commit_seconds").record(took.as_secs_f64());
            metrics::histogram!("topkart_writer_batch_orders").record(batch.len() as f64);
            let queued = writer.inbox.lock().len();
            writer.slow_commits.note(took, batch.len(), queued);
            // The orders queued behind a failed batch are taken before its requesters hear of
            // the failure: an order placed after that (a retry once the store is back) is not
            // among them, and goes to the store.
            // A fenced batch is not a store failure: the store answers, another node owns some
            // of the batch's deals. Their orders fail; the others go back to the queue's head.
            let (batch, result) = match result {
                Err(JournalError::OwnershipLost { deal_ids }) => {
                    writer.fence_out(batch, &deal_ids);
                    writer.commit_next_batch(ctx);
                    return;
                }
                // Not a failure: the batch may be stored. Its orders keep their units and wait
                // for the store to say; the orders queued behind it were never sent, and fail
                // as behind any failed commit (the store is presumed down).
                Err(JournalError::OutcomeUnknown {
                    batch_key: Some(batch_key),
                    cause,
                }) => {
                    let queued_behind = writer.take_queued();
                    writer.fail_queued(queued_behind);
                    writer.settle_later(batch, batch_key, &cause, ctx);
                    writer.commit_next_batch(ctx);
                    return;
                }
                other => (batch, other),
            };
            let queued_behind = if result.is_err() {
                writer.take_queued()
            } else {
                Vec::new()
            };
            writer.answer(batch, result);
            writer.fail_queued(queued_behind);
            writer.commit_next_batch(ctx);
        }));
    }

    /// Keeps a batch whose commit's outcome is unknown until the store says what became of it;
    /// its requesters hear `OutcomeUnknown` if that takes longer than `outcome_wait`.
    fn settle_later(
        &mut self,
        batch: Vec<PendingOrder>,
        batch_key: i64,
        cause: &str,
        ctx: &mut Context<Self>,
    ) {
        tracing::warn!(
            batch_key,
            orders = batch.len(),
            cause,
            "a batch's commit outcome is unknown; its units stay taken while the store is asked"
        );
        self.stats.batches_unknown.fetch_add(1, Ordering::Relaxed);
        self.stats.batches_unsettled.fetch_add(1, Ordering::Relaxed);
        self.unsettled.keep(batch_key, batch);
        ctx.run_later(self.config.outcome_wait, move |writer, _| {
            let told = writer.unsettled.tell_unknown(batch_key);
            writer
                .stats
                .orders_outcome_unknown
                .fetch_add(told as u64, Ordering::Relaxed);
            writer.wake_drain_waiters();
        });
        let learning = learn_fate(self.journal.clone(), batch_key);
        ctx.spawn(
            learning
                .into_actor(self)
                .map(move |fate, writer, _| writer.settled(batch_key, fate)),
        );
    }

    /// The store said what became of a batch: its orders are answered as stored, or their units
    /// go back to their deals and they are answered as failed (requesters told `OutcomeUnknown`
    /// already hear nothing more).
    fn settled(&mut self, batch_key: i64, fate: BatchFate) {
        let Some(unsettled) = self.unsettled.settle(batch_key, &fate) else {
            return;
        };
        self.stats.batches_unsettled.fetch_sub(1, Ordering::Relaxed);
        let batch = unsettled.batch;
        match fate {
            BatchFate::Committed(ids) => {
                self.stats
                    .batches_settled_committed
                    .fetch_add(1, Ordering::Relaxed);
                let stored = stored_records(ids, &batch);
                self.answer(batch, Ok(stored));
            }
            BatchFate::Void => {
                self.stats
                    .batches_settled_void
                    .fetch_add(1, Ordering::Relaxed);
                let void = JournalError::Failed("the batch did not commit".into());
                self.answer(batch, Err(void));
            }
        }
        self.wake_drain_waiters();
    }

    /// After a fenced commit: the orders of `lost` deals fail (`OwnerChanged`) and their deals
    /// stop selling; the rest of the batch goes back to the head of the queue, in order.
    fn fence_out(&mut self, batch: Vec<PendingOrder>, lost: &[DealId]) {
        tracing::warn!(deals = ?lost, orders = batch.len(), "batch fenced: another node owns these deals now; nothing was stored");
        self.stats.batches_fenced.fetch_add(1, Ordering::Relaxed);
        let mut told = std::collections::HashSet::new();
        let mut retry = Vec::new();
        for pending in batch {
            if lost.contains(&pending.order.deal_id) {
                if told.insert(pending.order.deal_id) {
                    pending.deal.ownership_lost();
                }
                self.stats.orders_failed.fetch_add(1, Ordering::Relaxed);
                return_units(pending, PlaceError::OwnerChanged);
            } else {
                retry.push(pending);
            }
        }
        let mut queue = self.inbox.lock();
        for pending in retry.into_iter().rev() {
            queue.push_front(pending);
        }
    }

    /// Everything queued right now.
    fn take_queued(&self) -> Vec<PendingOrder> {
        self.inbox.lock().drain(..).collect()
    }

    /// Fails the orders that were queued behind a failed commit (see the module's notes).
    fn fail_queued(&mut self, queued: Vec<PendingOrder>) {
        let size = queued.len() as u64;
        if size == 0 {
            return;
        }
        self.stats.orders_failed.fetch_add(size, Ordering::Relaxed);
        for pending in queued {
            return_units(pending, PlaceError::StoreFailed);
        }
    }

    fn answer(&self, batch: Vec<PendingOrder>, result: Result<Vec<OrderRecord>, JournalError>) {
        let size = batch.len() as u64;
        match result {
            Ok(stored) => {
                assert_eq!(
                    stored.len(),
                    batch.len(),
                    "the journal stored a different number of orders than it was given"
                );
                self.stats.batches_committed.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .orders_committed
                    .fetch_add(size, Ordering::Relaxed);
                self.stats.largest_batch.fetch_max(size, Ordering::Relaxed);
                report_stored_claims(&batch, &stored);
                for (pending, order) in batch.into_iter().zip(stored) {
                    // The requester may have gone away; the order is stored all the same.
                    let _ = pending.reply.send(Ok(order));
                }
            }
            Err(error) => {
                tracing::error!(%error, orders = size, "order batch failed to commit; units returned");
                self.stats.batches_failed.fetch_add(1, Ordering::Relaxed);
                self.stats.orders_failed.fetch_add(size, Ordering::Relaxed);
                for pending in batch {
                    return_units(pending, PlaceError::StoreFailed);
                }
            }
        }
    }
}

/// The mailbox carries only `Wake` and `Drain` (orders go through the inbox), so actix's default
/// capacity is enough.
impl Actor for OrderWriter {
    type Context = Context<Self>;
}

impl Handler<Wake> for OrderWriter {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Self::Context) {
        self.commit_next_batch(ctx);
    }
}

impl Handler<Drain> for OrderWriter {
    type Result = ();

    fn handle(&mut self, msg: Drain, ctx: &mut Self::Context) {
        self.drain_waiters.push(msg.done);
        self.commit_next_batch(ctx);
    }
}
