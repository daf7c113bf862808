//! What the engine needs from the store, as a trait the `topkart` service implements for
//! SQLite and Postgres (and tests implement with fakes that fail on demand). The trait alone:
//! the data it carries lives in `model`.

use std::future::Future;
use std::pin::Pin;

use crate::DealId;
// The data the trait carries, where code written against `journal::` looks for it.
pub use crate::model::{LoadedDeal, NewOrder, OrderRecord, OrderStatus, PaymentStatus};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Why a journal call failed, with its cause rendered for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The store failed (down, full, refused): nothing of the call was stored.
    #[error("store failure: {0}")]
    Failed(String),
    /// The store holds another fencing epoch for a deal of the batch: another node owns it now.
    /// Nothing of the batch was stored.
    #[error("ownership lost of deals {deal_ids:?}")]
    OwnershipLost { deal_ids: Vec<crate::DealId> },
    /// The batch was handed to the store and the answer was lost (the connection dropped after
    /// the commit was sent, an I/O error at commit): it may or may not be stored. An order
    /// batch's `batch_key` was written in its own transaction; [`Journal::settle_batch`] finds
    /// out. Another write has none: the store could not learn in time what became of it.
    #[error("commit outcome unknown (batch {batch_key:?}): {cause}")]
    OutcomeUnknown {
        batch_key: Option<i64>,
        cause: String,
    },
}

/// What became of a batch whose commit's outcome was unknown, as the store now says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchFate {
    /// It committed: its orders' ids, in the batch's order.
    Committed(Vec<crate::OrderId>),
    /// It did not commit, and now never will: the store holds the batch's key as void, so a
    /// transaction of it still under way on the server fails on that key.
    Void,
}

pub trait Journal: Send + Sync + 'static {
    /// Stores every order of the batch and takes their units off their deals' stored stock, in
    /// one transaction: all of them or none. Returns the stored orders in the batch's order.
    fn commit_orders(
        &self,
        orders: Vec<NewOrder>,
    ) -> BoxFuture<Result<Vec<OrderRecord>, JournalError>>;

    /// Learns what became of the batch whose commit answered [`JournalError::OutcomeUnknown`]
    /// with `batch_key`: committed (its ids), or void — and then made void for good, so that
    /// it cannot commit later. An error: the store could not be asked; ask again later.
    fn settle_batch(&self, batch_key: i64) -> BoxFuture<Result<BatchFate, JournalError>> {
        let _ = batch_key;
        Box::pin(async {
            Err(JournalError::Failed(
                "this journal never leaves a commit's outcome unknown".into(),
            ))
        })
    }

    /// Starts the deal's round for `day` (00:00 UTC of that day, full stock) unless it was
    /// already started for that day, and returns the deal as stored afterwards either way.
    fn rearm_deal(&self, deal_id: DealId, day: i64) -> BoxFuture<Result<LoadedDeal, JournalError>>;

    /// Cancels those of `order_ids` (claims of the deal whose deadline came at `now`) that are
    /// still open and unpaid, and puts their units back on the deal's stored stock, in one
    /// transaction under the deal's fencing epoch. Returns the orders it cancelled, and those
    /// found cancelled unpaid already (asked again after a lapse whose answer was lost, it
    /// returns what that lapse did); a paid order is left alone, and not returned.
    fn lapse_claims(
        &self,
        deal_id: DealId,
        order_ids: Vec<crate::OrderId>,
        owner_epoch: i64,
        now: crate::Millis,
    ) -> BoxFuture<Result<Vec<crate::OrderId>, JournalError>> {
        let _ = (deal_id, order_ids, owner_epoch, now);
        Box::pin(async { Err(JournalError::Failed("this journal keeps no claims".into())) })
    }

    /// Stores the orders of waitlist entries being served, in one transaction under the
    /// deal's fencing epoch: each order inserted, its entry marked promoted with it, and the
    /// units taken off the deal's stored stock. All or nothing. Returns the stored orders in
    /// the given order.
    fn promote_waitlist(
        &self,
        deal_id: DealId,
        owner_epoch: i64,
        promotions: Vec<(crate::model::WaitingEntry, NewOrder)>,
    ) -> BoxFuture<Result<Vec<OrderRecord>, JournalError>> {
        let _ = (deal_id, owner_epoch, promotions);
        Box::pin(async {
            Err(JournalError::Failed(
                "this journal keeps no waitlist".into(),
            ))
        })
    }
}
