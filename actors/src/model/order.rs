//! The plain data of an order: its status and its lifecycle, an order on its way to the store,
//! an order as stored, and a claimed order as the writer reports it to its deal.

use tokio::sync::oneshot;

use super::refusal::PlaceError;
use crate::{CustomerId, DealId, Millis, OrderId};

/// Where the outcome of an order is sent: the stored order, or why there is none.
pub type PlaceReply = oneshot::Sender<Result<OrderRecord, PlaceError>>;

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

/// Where an order stands with its money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Its deal has no payment step.
    NotRequired,
    /// A claim: to be paid by `pay_by`, or cancelled then by its deal's actor.
    Unpaid,
    Paid,
    /// Paid, then cancelled: the money went back to the wallet.
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 4] =
        [Self::NotRequired, Self::Unpaid, Self::Paid, Self::Refunded];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::NotRequired => "NOT_REQUIRED",
            PaymentStatus::Unpaid => "UNPAID",
            PaymentStatus::Paid => "PAID",
            PaymentStatus::Refunded => "REFUNDED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
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
    /// The deal's fencing epoch the order was sold under: its batch commits only if the store
    /// still holds this epoch for the deal (else `JournalError::OwnershipLost`).
    pub owner_epoch: i64,
    /// Its payment deadline, when its deal has a payment window (the order is then a claim).
    pub pay_by: Option<Millis>,
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
    pub payment_status: PaymentStatus,
    pub pay_by: Option<Millis>,
    pub paid_at: Option<Millis>,
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
            payment_status: if order.pay_by.is_some() {
                PaymentStatus::Unpaid
            } else {
                PaymentStatus::NotRequired
            },
            pay_by: order.pay_by,
            paid_at: None,
            idempotency_key: order.idempotency_key,
            created_at: order.created_at,
            updated_at: order.created_at,
        }
    }
}

/// A customer waiting for `quantity` units of a sold-out deal's `round` (a waitlist entry as
/// its deal holds it; `id` is the store's, and entries are served in the order of their ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitingEntry {
    pub id: i64,
    pub customer_id: CustomerId,
    pub quantity: i64,
    pub round: i64,
}

/// A stored order awaiting payment (its deal has a payment window): a claim on its units
/// until `pay_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub customer_id: CustomerId,
    pub quantity: i64,
    pub round: i64,
    pub pay_by: Millis,
}

/// One claimed order the writer took into a batch: whose units they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimedOrder {
    pub customer_id: CustomerId,
    pub quantity: i64,
    pub round: i64,
    /// The fencing epoch the order was sold under: claims of another tenure belong to a state
    /// that is gone (cluster mode), as claims of another round do.
    pub owner_epoch: i64,
}

/// An order that will not be stored, on its way back to its deal: the deal takes its units back,
/// then answers its requester with `error` — in that order, so a client that hears of the
/// failure already sees the units back in the deal.
#[derive(Debug)]
pub struct ReturnedUnits {
    pub customer_id: CustomerId,
    pub quantity: i64,
    pub round: i64,
    /// The fencing epoch the order was sold under (see `ClaimedOrder::owner_epoch`).
    pub owner_epoch: i64,
    /// Whether the deal already counts these units as the customer's (every order the actor
    /// reserved; a claimed order once the writer attributed it).
    pub attributed: bool,
    pub reply: PlaceReply,
    pub error: PlaceError,
}
