//! What the engine needs from the store, as a trait the `topkart` service implements for
//! SQLite and Postgres (and tests implement with fakes that fail on demand). The trait alone:
//! the data it carries lives in `model`.

use std::future::Future;
use std::pin::Pin;

use crate::DealId;
// The data the trait carries, where code written against `journal::` looks for it.
pub use crate::model::{LoadedDeal, NewOrder, OrderRecord, OrderStatus};

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
}

pub trait Journal: Send + Sync + 'static {
    /// Stores every order of the batch and takes their units off their deals' stored stock, in
    /// one transaction: all of them or none. Returns the stored orders in the batch's order.
    fn commit_orders(
        &self,
        orders: Vec<NewOrder>,
    ) -> BoxFuture<Result<Vec<OrderRecord>, JournalError>>;

    /// Starts the deal's round for `day` (00:00 UTC of that day, full stock) unless it was
    /// already started for that day, and returns the deal as stored afterwards either way.
    fn rearm_deal(&self, deal_id: DealId, day: i64) -> BoxFuture<Result<LoadedDeal, JournalError>>;
}
