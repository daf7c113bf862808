//! The store as the engine's journal: the writer's commits and the daily re-arm.

use std::sync::Arc;

use actors::DealId;
use actors::journal::{
    BatchFate, BoxFuture, Journal, JournalError, LoadedDeal, NewOrder, OrderRecord,
};

use super::pool::Store;
use crate::telemetry::error_chain;

#[derive(Clone)]
pub struct StoreJournal(pub Arc<Store>);

impl Journal for StoreJournal {
    fn commit_orders(
        &self,
        orders: Vec<NewOrder>,
    ) -> BoxFuture<Result<Vec<OrderRecord>, JournalError>> {
        let store = self.0.clone();
        Box::pin(async move {
            let ids = store.commit_orders(&orders).await.map_err(journal_error)?;
            Ok(ids
                .into_iter()
                .zip(orders)
                .map(|(id, order)| OrderRecord::stored(id, order))
                .collect())
        })
    }

    fn settle_batch(&self, batch_key: i64) -> BoxFuture<Result<BatchFate, JournalError>> {
        let store = self.0.clone();
        Box::pin(async move {
            match store.settle_batch(batch_key).await {
                Ok(Some(ids)) => Ok(BatchFate::Committed(ids)),
                Ok(None) => Ok(BatchFate::Void),
                Err(error) => Err(JournalError::Failed(error_chain(&error))),
            }
        })
    }

    fn lapse_claims(
        &self,
        deal_id: DealId,
        order_ids: Vec<actors::OrderId>,
        owner_epoch: i64,
        now: actors::Millis,
    ) -> BoxFuture<Result<Vec<actors::OrderId>, JournalError>> {
        let store = self.0.clone();
        Box::pin(async move {
            store
                .lapse_claims(deal_id, &order_ids, owner_epoch, now)
                .await
                .map_err(journal_error)
        })
    }

    fn rearm_deal(&self, deal_id: DealId, day: i64) -> BoxFuture<Result<LoadedDeal, JournalError>> {
        let store = self.0.clone();
        Box::pin(async move {
            store
                .rearm(deal_id, day)
                .await
                .map_err(|error| JournalError::Failed(error_chain(&error)))
        })
    }

    fn promote_waitlist(
        &self,
        deal_id: DealId,
        owner_epoch: i64,
        promotions: Vec<(actors::model::WaitingEntry, NewOrder)>,
    ) -> BoxFuture<Result<Vec<OrderRecord>, JournalError>> {
        let store = self.0.clone();
        Box::pin(async move {
            let ids = store
                .promote_waitlist(deal_id, owner_epoch, &promotions)
                .await
                .map_err(journal_error)?;
            Ok(ids
                .into_iter()
                .zip(promotions)
                .map(|(id, (_, order))| OrderRecord::stored(id, order))
                .collect())
        })
    }
}

/// A store error as the engine sees it: ownership lost, or a failure (logged with its cause).
fn journal_error(error: super::error::StoreError) -> JournalError {
    match error {
        super::error::StoreError::OwnershipLost { deal_ids } => {
            JournalError::OwnershipLost { deal_ids }
        }
        super::error::StoreError::OutcomeUnknown { batch_key, cause } => {
            JournalError::OutcomeUnknown { batch_key, cause }
        }
        other => JournalError::Failed(error_chain(&other)),
    }
}
