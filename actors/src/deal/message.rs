//! The messages a deal's actor answers. One struct per message, one `Handler` each (in
//! `actor.rs`).

use actix::Message;

use super::claims::{Claim, PaymentRefusal};
use super::waitlist::{JoinRefusal, Leaving, WaitingEntry};
use crate::model::{
    ClaimedOrder, DealRecord, DealTerms, LoadedDeal, PlaceReply, ReserveError, ResizeError,
    ReturnedUnits,
};
use crate::{CustomerId, Millis, OrderId};

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
    /// The cancelled order, when it may be a claim (its claim ends with it).
    pub order_id: Option<OrderId>,
}

/// The writer's report after a commit: these stored orders are claims (their deal has a
/// payment window), sold under `owner_epoch`. Sent before their requesters hear of the
/// commit, so it reaches the deal before any payment of them.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct StoredClaims {
    pub claims: Vec<(OrderId, Claim)>,
    pub owner_epoch: i64,
}

/// An open order's quantity is to change: the deal takes `take` more units now (0 for a
/// decrease, whose units come back with `EndChange` once the store has the change), and holds
/// the order's claim, if it is one, until `EndChange`. Answers the epoch the change must be
/// stored under.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<i64, ChangeRefusal>")]
pub struct ChangeQuantity {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub round: i64,
    pub take: i64,
}

/// The change begun with `ChangeQuantity` ended: `quantity` is the order's quantity when the
/// store took the change (`None`: it did not), and `give_back` the units that come back to the
/// deal (a stored decrease, or an increase undone).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct EndChange {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub round: i64,
    pub give_back: i64,
    pub quantity: Option<i64>,
}

/// Why a quantity change may not begin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeRefusal {
    /// The deal refuses the extra units as it would refuse an order of them.
    Refused(ReserveError),
    /// The order's claim is being paid or changed, or its deadline has come.
    Claim(PaymentRefusal),
    /// This node does not sell the deal (any more).
    NotOwner,
}

/// A payment of the order asks to begin now: the deal's actor decides against its deadline.
/// On `Ok`, the claim waits for `EndPayment` and no lapse touches it meanwhile.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<Claim, PaymentRefusal>")]
pub struct BeginPayment {
    pub order_id: OrderId,
}

/// The payment begun with `BeginPayment` ended: `paid`, or not (no money, store failure).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct EndPayment {
    pub order_id: OrderId,
    pub paid: bool,
}

/// Give back the units of an order that the writer could not store, then answer its requester.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ReturnUnits(pub ReturnedUnits);

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
#[rtype(result = "DealRecord")]
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
#[rtype(result = "DealRecord")]
pub struct Snapshot;

/// The store holds another fencing epoch for the deal: another node owns it. The deal stops
/// selling at once (every order is refused with `OwnerChanged`) and lends nothing.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct LoseOwnership;

/// Replace the deal's state with the deal as stored (the store is the truth): after a change
/// that reached the store but not the actor, or whose undo failed (`take_over: false`), or
/// when this node has just taken the deal's fencing epoch (`take_over: true`, cluster mode).
/// Without a takeover the actor keeps selling only if the store still holds the epoch it sold
/// under: a stored epoch that moved on means another node owns the deal. Answers the drift
/// between the stored available units and those derived from the orders.
#[derive(Message, Debug)]
#[rtype(result = "i64")]
pub struct Reload {
    pub loaded: LoadedDeal,
    pub take_over: bool,
}

/// The deal as its owner on another node published it (cluster mode's mirror feed). A deal
/// this node does not own takes it in, so its mirror answers reads and refuses doomed orders
/// as the owner would; a deal this node owns ignores it (its own actor is the truth). Answers
/// whether the record was taken in.
#[derive(Message, Debug)]
#[rtype(result = "bool")]
pub struct Follow(pub DealRecord);

/// A stored waitlist entry asks to join: taken in if the deal is sold out and selling, and
/// the waitlist is shorter than `max`. Answers the entry's position (1: next to be served).
/// A refused entry changes nothing here; the caller removes it from the store.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<usize, JoinRefusal>")]
pub struct JoinWaitlist {
    pub entry: WaitingEntry,
    pub max: usize,
}

/// The customer leaves the deal's waitlist (unless their entry is being served).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Leaving")]
pub struct LeaveWaitlist {
    pub customer_id: CustomerId,
}
