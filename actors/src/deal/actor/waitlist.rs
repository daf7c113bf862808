//! The deal's waitlist in its actor (DESIGN.md decision 11): customers join and leave through
//! the actor, and every handler that frees units serves the waitlist before anything else can
//! take them. A served entry's order is stored by the store in one transaction with its
//! entry's promotion (`Journal::promote_waitlist`); until then its units are taken, and if the
//! store does not take it they come back and the entry waits again in its place.

use std::time::Duration;

use actix::prelude::*;

use super::DealActor;
use crate::deal::message::{JoinWaitlist, LeaveWaitlist};
use crate::deal::waitlist::{JoinRefusal, WaitingEntry};
use crate::journal::JournalError;
use crate::model::{Claim, NewOrder, OrderRecord};

/// How long serving waits after the store failed to take a promotion.
const PROMOTION_RETRY_MS: crate::Millis = 1_000;

impl DealActor {
    /// Serves every waiting entry that the free units fit, first come first served (first fit),
    /// and has the store take their orders. Call after anything that frees units.
    pub(super) fn serve_waitlist(&mut self, ctx: &mut Context<Self>) {
        if !self.owned || self.state.waitlist().is_empty() {
            return;
        }
        let now = self.clock.now_ms();
        if now < self.promotion_retry_at {
            // The timer set when the store failed comes back here.
            return;
        }
        self.recall();
        let mut promotions: Vec<(WaitingEntry, NewOrder)> = Vec::new();
        while let Some((entry, reservation)) = self.state.promote_next(now) {
            promotions.push((entry, self.new_order(reservation, None, now)));
        }
        self.publish_units();
        if promotions.is_empty() {
            return;
        }
        let record = self.state.record();
        let promoting =
            self.journal
                .promote_waitlist(record.id, record.owner_epoch, promotions.clone());
        let epoch = record.owner_epoch;
        ctx.spawn(promoting.into_actor(self).map(move |result, actor, ctx| {
            actor.promoted(promotions, epoch, result, ctx);
        }));
    }

    /// The store's answer on promotions.
    fn promoted(
        &mut self,
        promotions: Vec<(WaitingEntry, NewOrder)>,
        epoch: i64,
        result: Result<Vec<OrderRecord>, JournalError>,
        ctx: &mut Context<Self>,
    ) {
        let deal_id = self.state.id();
        let same_tenure = self.owned && self.state.record().owner_epoch == epoch;
        match result {
            Ok(stored) => {
                for ((entry, _), order) in promotions.iter().zip(&stored) {
                    if self.state.waitlist_mut().served(entry.id).is_none() && same_tenure {
                        tracing::warn!(
                            deal_id,
                            entry_id = entry.id,
                            "a served entry's state was replaced while its order was stored"
                        );
                    }
                    if let (true, Some(pay_by)) = (same_tenure, order.pay_by) {
                        let claim = Claim {
                            customer_id: order.customer_id,
                            quantity: order.quantity,
                            round: order.round,
                            pay_by,
                        };
                        self.state.claims_mut().insert(order.id, claim);
                    }
                    tracing::info!(
                        deal_id,
                        entry_id = entry.id,
                        order_id = order.id,
                        quantity = order.quantity,
                        "waitlist entry served"
                    );
                }
                metrics::counter!("topkart_waitlist_promotions_total")
                    .increment(stored.len() as u64);
                self.schedule_claims(ctx);
            }
            Err(JournalError::OwnershipLost { .. }) => {
                // Another node sells the deal now; it serves the waitlist from the store.
                self.recall();
                self.set_owned(false);
                self.publish_units();
            }
            Err(error @ JournalError::OutcomeUnknown { .. }) => {
                // The orders may be stored: their units stay taken and their entries served,
                // never served twice; the deal's memory may lack those units (never hold units
                // the store does not have) until it is next loaded.
                tracing::error!(deal_id, %error, entries = promotions.len(), "a waitlist promotion's outcome is unknown; its units stay taken");
            }
            Err(error @ JournalError::Failed(_)) => {
                tracing::warn!(deal_id, %error, "waitlist orders could not be stored; serving again shortly");
                if same_tenure {
                    self.recall();
                    for (entry, order) in &promotions {
                        self.state
                            .release(order.customer_id, order.quantity, order.round);
                        // It waits again in its place — unless its round ended meanwhile.
                        if entry.round == self.state.round() {
                            self.state.waitlist_mut().unserve(entry.id);
                        } else {
                            self.state.waitlist_mut().served(entry.id);
                        }
                    }
                    self.publish_units();
                }
                self.promotion_retry_at = self.clock.now_ms() + PROMOTION_RETRY_MS;
                let wait = Duration::from_millis(PROMOTION_RETRY_MS as u64);
                ctx.run_later(wait, |actor, ctx| actor.serve_waitlist(ctx));
            }
        }
    }
}

impl Handler<JoinWaitlist> for DealActor {
    type Result = Result<usize, JoinRefusal>;

    fn handle(&mut self, msg: JoinWaitlist, _: &mut Self::Context) -> Self::Result {
        if !self.owned {
            return Err(JoinRefusal::NotOwner);
        }
        // Whether the deal is sold out is decided on every claim made so far.
        self.absorb_claims();
        let now = self.clock.now_ms();
        self.state.join_waitlist(msg.entry, now, msg.max)
    }
}

impl Handler<LeaveWaitlist> for DealActor {
    type Result = MessageResult<LeaveWaitlist>;

    fn handle(&mut self, msg: LeaveWaitlist, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.state.waitlist_mut().leave(msg.customer_id))
    }
}
