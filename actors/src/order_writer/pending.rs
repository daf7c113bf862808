//! What the writer holds of an order waiting for its batch, and what it tells the order's deal:
//! whose units claimed orders are, which stored orders are claims, and the units of an order
//! that will not be stored.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{
    Claim, ClaimedOrder, NewOrder, OrderRecord, PlaceError, PlaceReply, ReturnedUnits,
};
use crate::{DealId, OrderId};

/// What the writer tells a deal about its orders. The deal's actor implements it (`deal/actor.rs`);
/// the writer knows only this, so the two modules do not import each other. Both calls must
/// reach the deal even when its mailbox is full (each is bounded by one batch): never dropped.
pub trait DealLink: Send + Sync + 'static {
    /// Claimed orders that entered a batch: whose units they are.
    fn attribute(&self, orders: Vec<ClaimedOrder>);
    /// An order that will not be stored: take its units back, then answer its requester.
    fn return_units(&self, units: ReturnedUnits);
    /// The store holds another fencing epoch for the deal: another node owns it now. The
    /// deal stops selling at once.
    fn ownership_lost(&self);
    /// Orders of the deal just stored that are claims (it has a payment window), sold under
    /// `owner_epoch`: the deal watches their deadlines. Called before their requesters hear
    /// of the commit.
    fn stored_claims(&self, claims: Vec<(OrderId, Claim)>, owner_epoch: i64) {
        let _ = (claims, owner_epoch);
    }
}

/// An order waiting for its batch, with where to answer and the deal its units go back to.
pub struct PendingOrder {
    pub order: NewOrder,
    pub reply: PlaceReply,
    /// The deal's link, made once per deal (an `Arc` clone is a reference count, no allocation
    /// per order).
    pub deal: Arc<dyn DealLink>,
    /// Whether the deal already counts the units as the customer's: true for orders its actor
    /// reserved; false for an order claimed from a lent counter until the writer reports it.
    pub attributed: bool,
}

impl std::fmt::Debug for PendingOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingOrder")
            .field("order", &self.order)
            .finish_non_exhaustive()
    }
}

/// Tells each deal with a payment window which of its orders just stored are claims (with
/// their ids and deadlines), one message per deal, before any requester hears of the commit.
pub(super) fn report_stored_claims(batch: &[PendingOrder], stored: &[OrderRecord]) {
    let mut reports: HashMap<DealId, (Arc<dyn DealLink>, i64, Vec<(OrderId, Claim)>)> =
        HashMap::new();
    for (pending, order) in batch.iter().zip(stored) {
        let Some(pay_by) = order.pay_by else {
            continue;
        };
        let claim = Claim {
            customer_id: order.customer_id,
            quantity: order.quantity,
            round: order.round,
            pay_by,
        };
        reports
            .entry(order.deal_id)
            .or_insert_with(|| (pending.deal.clone(), pending.order.owner_epoch, Vec::new()))
            .2
            .push((order.id, claim));
    }
    for (link, owner_epoch, claims) in reports.into_values() {
        link.stored_claims(claims, owner_epoch);
    }
}

/// Tells each deal whose units its claimed orders in `batch` are: one message per deal.
pub(super) fn report_claims(batch: &mut [PendingOrder]) {
    let mut reports: HashMap<DealId, (Arc<dyn DealLink>, Vec<ClaimedOrder>)> = HashMap::new();
    for pending in batch.iter_mut().filter(|pending| !pending.attributed) {
        pending.attributed = true;
        let claimed = ClaimedOrder {
            customer_id: pending.order.customer_id,
            quantity: pending.order.quantity,
            round: pending.order.round,
            owner_epoch: pending.order.owner_epoch,
        };
        reports
            .entry(pending.order.deal_id)
            .or_insert_with(|| (pending.deal.clone(), Vec::new()))
            .1
            .push(claimed);
    }
    for (to, orders) in reports.into_values() {
        to.attribute(orders);
    }
}

/// Gives an order's units back to its deal, which then answers the requester with `error`.
pub fn return_units(pending: PendingOrder, error: PlaceError) {
    let PendingOrder {
        order,
        reply,
        deal,
        attributed,
    } = pending;
    deal.return_units(ReturnedUnits {
        customer_id: order.customer_id,
        quantity: order.quantity,
        round: order.round,
        owner_epoch: order.owner_epoch,
        attributed,
        reply,
        error,
    });
}
