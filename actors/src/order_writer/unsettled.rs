//! The order writer's batches whose commit's outcome is unknown (the store's answer was lost):
//! kept with their units taken while the store is asked what became of them, until it says;
//! their requesters told `OutcomeUnknown` past the writer's `outcome_wait`
//! (docs/RELIABILITY.md, "When a commit's answer is lost"). The writer's actor drives these;
//! nothing here knows the actor.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::pending::PendingOrder;
use crate::journal::{BatchFate, Journal};
use crate::model::{OrderRecord, PlaceError};

/// The first pause before asking the store again what became of a batch; it doubles up to
/// `SETTLE_RETRY_MAX`.
const SETTLE_RETRY_FIRST: Duration = Duration::from_millis(50);
const SETTLE_RETRY_MAX: Duration = Duration::from_secs(1);

/// Asks the store what became of the batch until it says, pausing between tries (doubling,
/// at most `SETTLE_RETRY_MAX`) while it cannot.
pub(super) async fn learn_fate(journal: Arc<dyn Journal>, batch_key: i64) -> BatchFate {
    let mut pause = SETTLE_RETRY_FIRST;
    loop {
        match journal.settle_batch(batch_key).await {
            Ok(fate) => return fate,
            Err(error) => {
                tracing::debug!(batch_key, %error, "the store cannot say yet what became of a batch");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(SETTLE_RETRY_MAX);
    }
}

/// A batch whose commit's outcome is unknown, waiting for the store to say.
pub(super) struct Unsettled {
    pub(super) batch: Vec<PendingOrder>,
    /// Whether its requesters already heard `OutcomeUnknown`.
    pub(super) told: bool,
    /// When its commit returned.
    pub(super) since: Instant,
}

/// The unsettled batches, by the key each wrote in its own transaction.
#[derive(Default)]
pub(super) struct UnsettledBatches(HashMap<i64, Unsettled>);

impl UnsettledBatches {
    pub(super) fn keep(&mut self, batch_key: i64, batch: Vec<PendingOrder>) {
        let unsettled = Unsettled {
            batch,
            told: false,
            since: Instant::now(),
        };
        self.0.insert(batch_key, unsettled);
    }

    /// Whether every requester of every unsettled batch has been answered.
    pub(super) fn all_told(&self) -> bool {
        self.0.values().all(|unsettled| unsettled.told)
    }

    /// Tells the batch's requesters `OutcomeUnknown` (once); returns how many were told. The
    /// units stay taken: the batch may be stored, and only the store's answer gives them back.
    pub(super) fn tell_unknown(&mut self, batch_key: i64) -> usize {
        let Some(unsettled) = self
            .0
            .get_mut(&batch_key)
            .filter(|unsettled| !unsettled.told)
        else {
            return 0;
        };
        unsettled.told = true;
        tracing::error!(
            batch_key,
            orders = unsettled.batch.len(),
            "the store has not said what became of a batch; its requesters are told the outcome is unknown"
        );
        for pending in &mut unsettled.batch {
            // The order is answered now; whatever the store says later reaches nobody.
            let reply = std::mem::replace(&mut pending.reply, oneshot::channel().0);
            let _ = reply.send(Err(PlaceError::OutcomeUnknown));
        }
        unsettled.batch.len()
    }

    /// The batch the store has now said the fate of (logged).
    pub(super) fn settle(&mut self, batch_key: i64, fate: &BatchFate) -> Option<Unsettled> {
        let unsettled = self.0.remove(&batch_key)?;
        tracing::warn!(
            batch_key,
            committed = matches!(fate, BatchFate::Committed(_)),
            told_unknown = unsettled.told,
            millis = unsettled.since.elapsed().as_millis() as u64,
            "the store said what became of a batch whose commit's outcome was unknown"
        );
        Some(unsettled)
    }
}

/// A committed batch's orders as stored, from the ids the store gave them (in batch order).
pub(super) fn stored_records(ids: Vec<crate::OrderId>, batch: &[PendingOrder]) -> Vec<OrderRecord> {
    ids.into_iter()
        .zip(batch)
        .map(|(id, pending)| OrderRecord::stored(id, pending.order.clone()))
        .collect()
}
