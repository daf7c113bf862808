//! The messages a deal's actor answers. One struct per message, one `Handler` each (in `mod.rs`).

use actix::Message;
use tokio::sync::oneshot;

use crate::deal::{DealRecord, DealTerms, ReserveError, ResizeError};
use crate::journal::OrderRecord;
use crate::{CustomerId, Millis};

/// Why an order was not placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error(transparent)]
    Refused(#[from] ReserveError),
    /// A bounded queue on the way to the store was full; nothing was reserved.
    #[error("the engine is overloaded; retry shortly")]
    Overloaded,
    /// The batch holding this order could not be committed; its units went back to the deal.
    #[error("the order could not be stored")]
    StoreFailed,
    /// The engine stopped before the order was decided.
    #[error("the engine is shutting down")]
    ShuttingDown,
}

/// Where the outcome of a `PlaceOrder` is sent: the stored order, or why there is none.
pub type PlaceReply = oneshot::Sender<Result<OrderRecord, PlaceError>>;

/// Reserve units for a customer and, on success, hand the order to the writer. The answer comes
/// on `reply` once the order is stored (or refused); the actor itself never waits.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct PlaceOrder {
    pub customer_id: CustomerId,
    pub quantity: i64,
    pub idempotency_key: Option<String>,
    pub reply: PlaceReply,
}

/// Give back the units of an order of `round` that will not be sold.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "bool")]
pub struct Release {
    pub customer_id: CustomerId,
    pub quantity: i64,
    pub round: i64,
}

/// Give back the units of an order that the writer could not store, then answer its requester
/// with `error` — in that order, so a client that hears of the failure already sees the units
/// back in the deal.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ReturnUnits {
    pub customer_id: CustomerId,
    pub quantity: i64,
    pub round: i64,
    /// Whether the deal already counts these units as the customer's (every order the actor
    /// reserved; a claimed order once the writer attributed it).
    pub attributed: bool,
    pub reply: PlaceReply,
    pub error: PlaceError,
}

/// One claimed order the writer took into a batch: whose units they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimedOrder {
    pub customer_id: CustomerId,
    pub quantity: i64,
    pub round: i64,
}

/// The writer's report on orders claimed from the lent counter (see `ledger.rs`), sent when they
/// enter a batch: before the batch commits, so it reaches the deal before anything that could
/// follow the commit (a cancellation), and one message for all of a deal's orders in the batch.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Attribute {
    pub orders: Vec<ClaimedOrder>,
}

/// Move `total_units` and `available_units` together by `delta_units`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<DealRecord, ResizeError>")]
pub struct Resize {
    pub delta_units: i64,
    /// The deal's `updated_at` once resized: the instant the store was given for the same
    /// change (or, when a change is undone, the instant from before it).
    pub updated_at: Millis,
}

/// Replace the deal's definition (already persisted by the caller).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<DealRecord, ReserveError>")]
pub struct Amend {
    pub terms: DealTerms,
    pub updated_at: Millis,
}

/// Close the deal (`closed: true`) or reopen it inside its window (`closed: false`).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<DealRecord, ReserveError>")]
pub struct SetClosed {
    pub closed: bool,
    pub updated_at: Millis,
}

/// The deal as its actor sees it now.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<DealRecord, ReserveError>")]
pub struct Snapshot;
