//! The order writer's counters, exported by the service as metrics, and its log of slow
//! commits.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// A commit taking this long is logged: every order queued meanwhile waits for it.
const SLOW_COMMIT: Duration = Duration::from_millis(50);
/// Slow commits are logged at most this often.
const SLOW_COMMIT_LOG_EVERY: Duration = Duration::from_secs(1);

/// Logs slow commits (every order queued meanwhile waits for them), at most one line a second
/// with how many there were, so an overloaded store does not flood the log.
#[derive(Debug, Default)]
pub(super) struct SlowCommits {
    unlogged: u64,
    logged_at: Option<Instant>,
}

impl SlowCommits {
    /// A commit of `orders` took `took`, with `queued` orders waiting behind it.
    pub(super) fn note(&mut self, took: Duration, orders: usize, queued: usize) {
        if took < SLOW_COMMIT {
            return;
        }
        self.unlogged += 1;
        let now = Instant::now();
        if self
            .logged_at
            .is_some_and(|at| now.duration_since(at) < SLOW_COMMIT_LOG_EVERY)
        {
            return;
        }
        tracing::warn!(
            orders,
            millis = took.as_millis() as u64,
            queued,
            slow_commits = self.unlogged,
            "slow commit: the orders queued behind it waited for it"
        );
        self.unlogged = 0;
        self.logged_at = Some(now);
    }
}

/// Counters the service exports as metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub batches_committed: AtomicU64,
    pub orders_committed: AtomicU64,
    pub batches_failed: AtomicU64,
    pub orders_failed: AtomicU64,
    pub orders_refused_queue_full: AtomicU64,
    pub largest_batch: AtomicU64,
    /// Batches refused by the store's fence (another node owns one of their deals).
    pub batches_fenced: AtomicU64,
    /// Batches whose commit's outcome was unknown when it returned.
    pub batches_unknown: AtomicU64,
    /// Of those, found committed / found not committed once the store answered.
    pub batches_settled_committed: AtomicU64,
    pub batches_settled_void: AtomicU64,
    /// Orders whose requesters heard `OutcomeUnknown` (the store did not answer in time).
    pub orders_outcome_unknown: AtomicU64,
    /// Batches whose outcome the store has not told yet (their units stay taken).
    pub batches_unsettled: AtomicU64,
}
