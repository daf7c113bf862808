//! The deal's claims in its actor (DESIGN.md decision 10): a payment asks the actor first, and
//! at each claim's deadline the actor lapses it — the store cancels the order if it is still
//! open and unpaid, and only then do its units come back. No sweeper: one timer for the next
//! deadline, set again whenever the claims change.

use std::collections::HashSet;
use std::time::Duration;

use actix::prelude::*;

use super::DealActor;
use crate::OrderId;
use crate::deal::claims::PaymentRefusal;
use crate::deal::message::{BeginPayment, ChangeQuantity, ChangeRefusal, EndChange, EndPayment};
use crate::journal::JournalError;
use crate::model::Claim;

/// How long a lapse the store could not take waits before it is tried again.
const LAPSE_RETRY_MS: crate::Millis = 1_000;

impl DealActor {
    /// Sets the timer for the claims' next deadline (replacing the one set before).
    pub(super) fn schedule_claims(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.claims_timer.take() {
            ctx.cancel_future(timer);
        }
        if !self.owned {
            return;
        }
        let Some(deadline) = self.state.claims().next_deadline() else {
            return;
        };
        let at = deadline.max(self.lapse_retry_at);
        let wait = u64::try_from(at - self.clock.now_ms()).unwrap_or(0);
        self.claims_timer = Some(ctx.run_later(Duration::from_millis(wait), |actor, ctx| {
            actor.claims_timer = None;
            actor.lapse_due(ctx);
        }));
    }

    /// Lapses every claim whose deadline has come, then waits for the next.
    fn lapse_due(&mut self, ctx: &mut Context<Self>) {
        if !self.owned {
            return;
        }
        let now = self.clock.now_ms();
        if now < self.lapse_retry_at {
            self.schedule_claims(ctx);
            return;
        }
        let due = self.state.claims_mut().due(now);
        if !due.is_empty() {
            self.lapse(due, ctx);
        }
        self.schedule_claims(ctx);
    }

    /// Has the store cancel the lapsing claims that are still open and unpaid; takes back
    /// the units of those it cancelled.
    fn lapse(&mut self, order_ids: Vec<OrderId>, ctx: &mut Context<Self>) {
        let record = self.state.record();
        let lapsing = self.journal.lapse_claims(
            record.id,
            order_ids.clone(),
            record.owner_epoch,
            self.clock.now_ms(),
        );
        ctx.spawn(lapsing.into_actor(self).map(move |result, actor, ctx| {
            match result {
                Ok(lapsed) => {
                    let lapsed: HashSet<OrderId> = lapsed.into_iter().collect();
                    actor.recall();
                    for order_id in order_ids {
                        let claim = actor.state.claims_mut().settled(order_id);
                        if let (Some(claim), true) = (claim, lapsed.contains(&order_id)) {
                            actor
                                .state
                                .release(claim.customer_id, claim.quantity, claim.round);
                        }
                    }
                    actor.publish_units();
                    // The lapsed units go to the waitlist first.
                    actor.serve_waitlist(ctx);
                    tracing::debug!(
                        deal_id = actor.state.id(),
                        lapsed = lapsed.len(),
                        "unpaid claims lapsed at their deadline"
                    );
                }
                Err(JournalError::OwnershipLost { .. }) => {
                    // Another node sells the deal now; it lapses the claims from the store.
                    actor.recall();
                    actor.set_owned(false);
                    actor.publish_units();
                }
                Err(error @ (JournalError::Failed(_) | JournalError::OutcomeUnknown { .. })) => {
                    tracing::warn!(
                        deal_id = actor.state.id(),
                        %error,
                        "unpaid claims could not be lapsed; trying again shortly"
                    );
                    for order_id in order_ids {
                        actor.state.claims_mut().retry_lapse(order_id);
                    }
                    actor.lapse_retry_at = actor.clock.now_ms() + LAPSE_RETRY_MS;
                }
            }
            actor.schedule_claims(ctx);
        }));
    }
}

impl Handler<BeginPayment> for DealActor {
    type Result = Result<Claim, PaymentRefusal>;

    fn handle(&mut self, msg: BeginPayment, ctx: &mut Self::Context) -> Self::Result {
        if !self.owned {
            return Err(PaymentRefusal::NotOwner);
        }
        let now = self.clock.now_ms();
        let begun = self.state.claims_mut().begin_payment(msg.order_id, now);
        self.schedule_claims(ctx);
        begun
    }
}

impl Handler<EndPayment> for DealActor {
    type Result = ();

    fn handle(&mut self, msg: EndPayment, ctx: &mut Self::Context) {
        let now = self.clock.now_ms();
        if let Some(order_id) = self
            .state
            .claims_mut()
            .end_payment(msg.order_id, msg.paid, now)
        {
            // Not paid, and its deadline passed while the payment was tried: it lapses now.
            self.lapse(vec![order_id], ctx);
        }
        self.schedule_claims(ctx);
    }
}

impl Handler<ChangeQuantity> for DealActor {
    type Result = Result<i64, ChangeRefusal>;

    fn handle(&mut self, msg: ChangeQuantity, ctx: &mut Self::Context) -> Self::Result {
        if !self.owned {
            return Err(ChangeRefusal::NotOwner);
        }
        let now = self.clock.now_ms();
        let is_claim = self.state.claims().get(msg.order_id).is_some();
        if is_claim {
            self.state
                .claims_mut()
                .begin_payment(msg.order_id, now)
                .map_err(ChangeRefusal::Claim)?;
        }
        if msg.take > 0 {
            self.recall();
            let taken = self
                .state
                .take_more(msg.customer_id, msg.take, msg.round, now);
            self.publish_units();
            if let Err(refusal) = taken {
                if is_claim {
                    self.state.claims_mut().end_change(msg.order_id, None, now);
                }
                self.schedule_claims(ctx);
                return Err(ChangeRefusal::Refused(refusal));
            }
        }
        self.schedule_claims(ctx);
        Ok(self.state.record().owner_epoch)
    }
}

impl Handler<EndChange> for DealActor {
    type Result = ();

    fn handle(&mut self, msg: EndChange, ctx: &mut Self::Context) {
        let now = self.clock.now_ms();
        if msg.give_back > 0 && self.owned {
            self.recall();
            self.state
                .release(msg.customer_id, msg.give_back, msg.round);
            self.publish_units();
            self.serve_waitlist(ctx);
        }
        if let Some(order_id) = self
            .state
            .claims_mut()
            .end_change(msg.order_id, msg.quantity, now)
        {
            self.lapse(vec![order_id], ctx);
        }
        self.schedule_claims(ctx);
    }
}
