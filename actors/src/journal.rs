//! What the engine needs from the store, as a trait the `topkart` service implements for
//! SQLite and Postgres (and tests implement with fakes that fail on demand).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use crate::deal::DealRecord;
use crate::{CustomerId, DealId, Millis, OrderId};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A store failure, with its cause rendered for the log.
#[derive(Debug, Clone, thiserror::Error)]
#[error("store failure: {0}")]
pub struct JournalError(pub String);

/// The lifecycle of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Open,
    Approved,
    Cancelled,
    Fulfilled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 4] =
        [Self::Open, Self::Approved, Self::Cancelled, Self::Fulfilled];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Open => "OPEN",
            OrderStatus::Approved => "APPROVED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Fulfilled => "FULFILLED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Whether an order in this status holds units of its deal.
    pub fn holds_units(self) -> bool {
        self != OrderStatus::Cancelled
    }

    /// The transitions an admin may make; cancelling is the only one that returns units.
    pub fn may_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Open, Approved) | (Open, Cancelled) | (Approved, Fulfilled) | (Approved, Cancelled)
        )
    }
}

/// An order the deal's actor has reserved units for, on its way to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub deal_id: DealId,
    pub round: i64,
    pub customer_id: CustomerId,
    pub quantity: i64,
    pub unit_price: i64,
    pub total_price: i64,
    pub idempotency_key: Option<String>,
    pub created_at: Millis,
}

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub id: OrderId,
    pub deal_id: DealId,
    pub round: i64,
    pub customer_id: CustomerId,
    pub quantity: i64,
    pub unit_price: i64,
    pub total_price: i64,
    pub status: OrderStatus,
    pub idempotency_key: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl OrderRecord {
    pub fn stored(id: OrderId, order: NewOrder) -> Self {
        Self {
            id,
            deal_id: order.deal_id,
            round: order.round,
            customer_id: order.customer_id,
            quantity: order.quantity,
            unit_price: order.unit_price,
            total_price: order.total_price,
            status: OrderStatus::Open,
            idempotency_key: order.idempotency_key,
            created_at: order.created_at,
            updated_at: order.created_at,
        }
    }
}

/// A deal as loaded from the store, with the units each customer holds in its current round.
#[derive(Debug, Clone)]
pub struct LoadedDeal {
    pub record: DealRecord,
    pub units_by_customer: HashMap<CustomerId, i64>,
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
