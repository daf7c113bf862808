//! `DealHandle`: what the rest of the engine (and the service) holds of a live deal, and how an
//! order enters it: claimed on the caller's thread from the deal's lent counter and handed
//! straight to the writer, or, when the counter is not lent, decided by the deal's actor. Either
//! way the answer arrives once the order's batch has committed (or failed).

use std::sync::Arc;

use actix::Addr;
use tokio::sync::oneshot;

use crate::CustomerId;
use crate::clock::Clock;
use crate::deal::{DealActor, PlaceOrder};
use crate::fast_path::mirror::{DealMirror, FastClaim};
use crate::model::{NewOrder, OrderRecord, PlaceError};
use crate::order_writer::{DealLink, PendingOrder, WriterHandle, return_units};

/// A live deal: its actor, its mirror, the writer its orders go to and the link the writer
/// answers through.
#[derive(Clone)]
pub struct DealHandle {
    pub addr: Addr<DealActor>,
    pub mirror: Arc<DealMirror>,
    pub(crate) writer: WriterHandle,
    pub(crate) link: Arc<dyn DealLink>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// Where an order's outcome arrives.
pub type Outcome = oneshot::Receiver<Result<OrderRecord, PlaceError>>;

/// How the order was taken in (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// Claimed from the lent counter on the caller's thread.
    Claimed,
    /// Decided by the deal's actor.
    Actor,
}

impl DealHandle {
    /// Takes an order in. Refusals known at once come back as `Err`; otherwise the outcome
    /// arrives on the returned receiver. Nothing here awaits, so a caller that goes away after
    /// this returns cannot strand claimed units: the order is with the writer or the actor.
    pub fn place(
        &self,
        customer_id: CustomerId,
        quantity: i64,
        idempotency_key: Option<String>,
    ) -> Result<(Intake, Outcome), PlaceError> {
        if self.mirror.is_unowned() {
            return Err(PlaceError::OwnerChanged);
        }
        let (reply, outcome) = oneshot::channel();
        let now = self.clock.now_ms();
        match self.mirror.try_claim(quantity, now) {
            FastClaim::Refused(refusal) => Err(refusal.into()),
            FastClaim::Claimed(terms) => {
                let order = NewOrder {
                    deal_id: terms.id,
                    round: terms.round,
                    customer_id,
                    quantity,
                    unit_price: terms.final_price,
                    total_price: crate::deal::order_total(terms.final_price, quantity),
                    idempotency_key,
                    created_at: now,
                    owner_epoch: terms.owner_epoch,
                    // A deal with a payment window is never lent: its actor watches its claims.
                    pay_by: None,
                };
                let pending = PendingOrder {
                    order,
                    reply,
                    deal: self.link.clone(),
                    attributed: false,
                };
                if let Err(pending) = self.writer.persist(pending) {
                    // The deal takes the units back, then answers Overloaded on `outcome`.
                    return_units(pending, PlaceError::Overloaded);
                }
                Ok((Intake::Claimed, outcome))
            }
            FastClaim::AskTheActor => {
                let message = PlaceOrder {
                    customer_id,
                    quantity,
                    idempotency_key,
                    reply,
                };
                self.mirror.note_queued(1);
                self.addr.try_send(message).map_err(|error| {
                    self.mirror.note_queued(-1);
                    match error {
                        actix::dev::SendError::Full(_) => PlaceError::Overloaded,
                        actix::dev::SendError::Closed(_) => PlaceError::ShuttingDown,
                    }
                })?;
                Ok((Intake::Actor, outcome))
            }
        }
    }
}
