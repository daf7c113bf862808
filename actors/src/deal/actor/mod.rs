//! A deal's actor: the thin actix shell around one [`DealState`].
//!
//! Every handler is synchronous, so the deal's decisions happen one at a time in mailbox order
//! with no lock and no await. The only asynchronous work (the daily re-arm's write) runs as a
//! spawned future while sales are paused by `DealState::begin_rearm`.
//!
//! While the deal is lendable (open, no per-customer limit) the actor lends its counter to the
//! HTTP workers (`ledger.rs`): most orders are then claimed without a message to the actor. Any
//! handler that changes the deal first *recalls* the loan (after which no claim can succeed and
//! the state holds every claim made), changes the state, then publishes it and lends again if
//! the deal is still lendable.
//!
//! Time comes from the engine's [`Clock`]; the timers (the end of the window, the midnight
//! re-arm) run on tokio's clock, so a test on paused tokio time drives both.

use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;

use super::message::{
    Amend, Attribute, Follow, LoseOwnership, PlaceOrder, Release, Reload, Resize, ReturnUnits,
    SetClosed, Snapshot, StoredClaims,
};
use super::state::{DealState, Reservation};
use crate::OrderId;
use crate::clock::Clock;
use crate::fast_path::mirror::DealMirror;
use crate::journal::Journal;
use crate::model::{
    Claim, ClaimedOrder, DealRecord, NewOrder, PlaceError, Recurrence, ReserveError, ResizeError,
    ReturnedUnits,
};
use crate::order_writer::{DealLink, PendingOrder, WriterHandle};

mod calendar;
mod payments;
mod waitlist;

/// The writer's way back to a deal: its actor's address. `do_send` on purpose: neither message
/// may be lost to a full mailbox, and each is bounded by one batch.
struct ActorLink(Addr<DealActor>);

impl DealLink for ActorLink {
    fn attribute(&self, orders: Vec<ClaimedOrder>) {
        self.0.do_send(Attribute { orders });
    }

    fn return_units(&self, units: ReturnedUnits) {
        self.0.do_send(ReturnUnits(units));
    }

    fn ownership_lost(&self) {
        self.0.do_send(LoseOwnership);
    }

    fn stored_claims(&self, claims: Vec<(OrderId, Claim)>, owner_epoch: i64) {
        self.0.do_send(StoredClaims {
            claims,
            owner_epoch,
        });
    }
}

/// The link the writer uses to reach the deal behind `addr`; made once per deal.
pub fn link(addr: Addr<DealActor>) -> Arc<dyn DealLink> {
    Arc::new(ActorLink(addr))
}

pub struct DealActor {
    state: DealState,
    mirror: Arc<DealMirror>,
    writer: WriterHandle,
    journal: Arc<dyn Journal>,
    /// Where the deal reads the time (the engine's clock).
    clock: Arc<dyn Clock>,
    /// This actor's link for the writer, made once in `started` (orders carry a clone).
    link: Option<Arc<dyn DealLink>>,
    /// Bound on queued messages; a full mailbox answers `OVERLOADED` instead of growing.
    mailbox_capacity: usize,
    /// Whether the mirror's ledger is lent to the HTTP workers right now.
    lent: bool,
    /// False once the store showed another node's fencing epoch for the deal: from then on
    /// every order is refused (`OwnerChanged`) and nothing is lent.
    owned: bool,
    /// Orders of a limited deal waiting for the writer's report on claimed units (see
    /// `DealState::awaits_attribution`); at most `mailbox_capacity`.
    parked: VecDeque<PlaceOrder>,
    /// The timer set for the claims' next deadline (`payments.rs`).
    claims_timer: Option<SpawnHandle>,
    /// After a lapse the store could not take: no lapse is tried again before this instant.
    lapse_retry_at: crate::Millis,
    /// After a promotion the store could not take: no waitlist entry is served before this.
    promotion_retry_at: crate::Millis,
}

impl DealActor {
    pub fn new(
        state: DealState,
        mirror: Arc<DealMirror>,
        writer: WriterHandle,
        journal: Arc<dyn Journal>,
        clock: Arc<dyn Clock>,
        mailbox_capacity: usize,
        owned: bool,
    ) -> Self {
        mirror.set_unowned(!owned);
        Self {
            state,
            mirror,
            writer,
            journal,
            clock,
            link: None,
            owned,
            mailbox_capacity,
            lent: false,
            parked: VecDeque::new(),
            claims_timer: None,
            lapse_retry_at: 0,
            promotion_retry_at: 0,
        }
    }

    /// Sells the deal (`true`), or follows it, selling nothing (`false`).
    fn set_owned(&mut self, owned: bool) {
        self.owned = owned;
        self.mirror.set_unowned(!owned);
    }

    /// Takes in the claims made so far without ending the loan.
    fn absorb_claims(&mut self) {
        if self.lent {
            self.state.absorb_claims(self.mirror.ledger_units());
        }
    }

    /// Ends the loan: from here on the state alone decides, and it holds every claim made.
    fn recall(&mut self) {
        if self.lent {
            let left = self.mirror.recall();
            self.lent = false;
            self.state.absorb_claims(left);
        }
    }

    /// Publishes the stock after a change made with the loan recalled, and lends again if the
    /// deal is lendable.
    fn publish_units(&mut self) {
        debug_assert!(!self.lent, "publish with the loan outstanding");
        // Past the window nothing may be claimed: the loan ends with it (see `schedule_expiry`).
        let window_open = self.clock.now_ms() < self.state.record().expires_at;
        if self.owned && self.state.lendable() && window_open {
            self.mirror.lend(self.state.available_units());
            self.lent = true;
        } else {
            self.mirror.publish_available(self.state.available_units());
        }
    }

    /// Publishes a new definition of the deal (after a recall), then its stock.
    fn publish(&mut self) {
        self.mirror.publish_record(self.state.record());
        self.publish_units();
    }

    /// Decides orders that waited for attribution, once nothing is unattributed any more.
    fn serve_parked(&mut self, ctx: &mut Context<Self>) {
        while !self.state.awaits_attribution() {
            let Some(order) = self.parked.pop_front() else {
                return;
            };
            self.place(order, ctx);
        }
    }

    /// The order of a reservation made at `now`, sold under the deal's current epoch.
    fn new_order(
        &self,
        reservation: Reservation,
        idempotency_key: Option<String>,
        now: crate::Millis,
    ) -> NewOrder {
        NewOrder {
            deal_id: reservation.deal_id,
            round: reservation.round,
            customer_id: reservation.customer_id,
            quantity: reservation.quantity,
            unit_price: reservation.unit_price,
            total_price: reservation.total_price,
            idempotency_key,
            created_at: now,
            owner_epoch: self.state.record().owner_epoch,
            // A deal with a payment window sells claims: paid by then, or cancelled then.
            pay_by: self
                .state
                .record()
                .payment_window_secs
                .map(|secs| now + secs * 1_000),
        }
    }

    /// Reserves through the state (the loan recalled) and hands the order to the writer.
    fn place(&mut self, msg: PlaceOrder, ctx: &mut Context<Self>) {
        if !self.owned {
            let _ = msg.reply.send(Err(PlaceError::OwnerChanged));
            return;
        }
        self.recall();
        if self.state.awaits_attribution() {
            if self.parked.len() >= self.mailbox_capacity {
                let _ = msg.reply.send(Err(PlaceError::Overloaded));
            } else {
                self.parked.push_back(msg);
            }
            self.publish_units();
            return;
        }
        let now = self.clock.now_ms();
        let reservation = match self.state.reserve(msg.customer_id, msg.quantity, now) {
            Ok(reservation) => reservation,
            Err(refusal) => {
                self.publish_units();
                let _ = msg.reply.send(Err(refusal.into()));
                return;
            }
        };
        let order = self.new_order(reservation, msg.idempotency_key, now);
        let deal = self.link.get_or_insert_with(|| link(ctx.address())).clone();
        let pending = PendingOrder {
            order,
            reply: msg.reply,
            deal,
            attributed: true,
        };
        // A full writer queue turns into a 503, never into unbounded memory.
        if let Err(pending) = self.writer.persist(pending) {
            self.state.release(
                pending.order.customer_id,
                pending.order.quantity,
                pending.order.round,
            );
            let _ = pending.reply.send(Err(PlaceError::Overloaded));
        }
        self.publish_units();
    }
}

impl Actor for DealActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
        self.link = Some(link(ctx.address()));
        self.publish_units();
        // Only the owner re-arms (a follower's round arrives through `Follow`, or with the
        // store's deal when it takes the deal over).
        if self.owned {
            self.rearm_or_schedule(ctx);
        }
        self.schedule_expiry(ctx);
        self.schedule_claims(ctx);
        // Units may have come free while the engine was down (a cancellation stored just
        // before a crash): the waitlist is served first.
        self.serve_waitlist(ctx);
    }
}

impl Handler<PlaceOrder> for DealActor {
    type Result = ();

    fn handle(&mut self, msg: PlaceOrder, ctx: &mut Self::Context) {
        self.mirror.note_queued(-1);
        self.place(msg, ctx);
    }
}

impl Handler<Attribute> for DealActor {
    type Result = ();

    fn handle(&mut self, msg: Attribute, ctx: &mut Self::Context) {
        if !self.owned {
            // A deal this node no longer sells holds no claims of its own (see `Follow`).
            return;
        }
        // The claims reported here may not have been taken in yet.
        self.absorb_claims();
        let epoch = self.state.record().owner_epoch;
        for order in msg.orders.iter().filter(|order| order.owner_epoch == epoch) {
            self.state
                .attribute(order.customer_id, order.quantity, order.round);
        }
        self.serve_waitlist(ctx);
        self.serve_parked(ctx);
    }
}

impl Handler<Release> for DealActor {
    type Result = bool;

    fn handle(&mut self, msg: Release, ctx: &mut Self::Context) -> bool {
        if !self.owned {
            return false;
        }
        self.recall();
        if let Some(order_id) = msg.order_id {
            // A cancelled claim ends with its order (its units come back just below).
            self.state.claims_mut().forget(order_id);
        }
        let released = self.state.release(msg.customer_id, msg.quantity, msg.round);
        self.publish_units();
        self.serve_waitlist(ctx);
        released
    }
}

impl Handler<ReturnUnits> for DealActor {
    type Result = ();

    fn handle(&mut self, ReturnUnits(units): ReturnUnits, ctx: &mut Self::Context) {
        if !self.owned || units.owner_epoch != self.state.record().owner_epoch {
            // The units were never stored (the batch was fenced or failed), and they belong
            // to a tenure that is gone: a deal this node no longer sells shows its owner's
            // stock, and one it took over again was reloaded from the store without them.
            let _ = units.reply.send(Err(units.error));
            return;
        }
        self.recall();
        if units.attributed {
            self.state
                .release(units.customer_id, units.quantity, units.round);
        } else {
            self.state.return_claim(units.quantity, units.round);
        }
        self.publish_units();
        let _ = units.reply.send(Err(units.error));
        self.serve_waitlist(ctx);
        self.serve_parked(ctx);
    }
}

impl Handler<Resize> for DealActor {
    type Result = Result<DealRecord, ResizeError>;

    fn handle(&mut self, msg: Resize, ctx: &mut Self::Context) -> Self::Result {
        self.recall();
        let resized = self.state.resize(msg.delta_units);
        if resized.is_ok() {
            self.state.set_updated_at(msg.updated_at);
        }
        self.publish();
        // Units added go to the waitlist first.
        self.serve_waitlist(ctx);
        resized?;
        Ok(self.state.record().clone())
    }
}

impl Handler<Amend> for DealActor {
    type Result = MessageResult<Amend>;

    fn handle(&mut self, msg: Amend, ctx: &mut Self::Context) -> Self::Result {
        let was_daily = self.state.record().recurrence == Recurrence::Daily;
        let expires_at = self.state.record().expires_at;
        self.recall();
        self.state.amend(msg.terms, msg.updated_at);
        self.publish();
        if !was_daily {
            self.schedule_rearm(ctx);
        }
        if self.state.record().expires_at != expires_at {
            self.schedule_expiry(ctx);
        }
        // A limit lifted: parked orders need not wait any more, and entries may fit now.
        self.serve_waitlist(ctx);
        self.serve_parked(ctx);
        MessageResult(self.state.record().clone())
    }
}

impl Handler<SetClosed> for DealActor {
    type Result = Result<DealRecord, ReserveError>;

    fn handle(&mut self, msg: SetClosed, ctx: &mut Self::Context) -> Self::Result {
        if !msg.closed && self.clock.now_ms() >= self.state.record().expires_at {
            return Err(ReserveError::Expired);
        }
        self.recall();
        self.state.set_closed(msg.closed, msg.updated_at);
        self.publish();
        // Reopened: units freed while it was closed go to the waitlist first.
        self.serve_waitlist(ctx);
        Ok(self.state.record().clone())
    }
}

impl Handler<Snapshot> for DealActor {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, _: Snapshot, _: &mut Self::Context) -> Self::Result {
        self.absorb_claims();
        MessageResult(self.state.record().clone())
    }
}

impl Handler<LoseOwnership> for DealActor {
    type Result = ();

    fn handle(&mut self, _: LoseOwnership, _: &mut Self::Context) {
        self.recall();
        self.set_owned(false);
        self.publish_units();
        // Orders parked for attribution will not be sold here either.
        for order in self.parked.drain(..) {
            let _ = order.reply.send(Err(PlaceError::OwnerChanged));
        }
        // Handed over, its lease lost, or fenced out: the caller logs which.
        tracing::debug!(
            deal_id = self.state.id(),
            "this node stops selling the deal"
        );
    }
}

impl Handler<Reload> for DealActor {
    type Result = i64;

    fn handle(&mut self, msg: Reload, ctx: &mut Self::Context) -> i64 {
        self.recall();
        let sold_under = self.state.record().owner_epoch;
        let (mut state, drift) =
            DealState::recover(msg.loaded.record, msg.loaded.units_by_customer);
        assert_eq!(state.id(), self.state.id(), "a deal reloads only itself");
        state.load_claims(msg.loaded.claims);
        state.load_waitlist(msg.loaded.waitlist);
        self.state = state;
        // The stored deal is the truth, its epoch included. A takeover sells under the new
        // epoch; any other reload sells on only under the epoch it sold under, so a node that
        // lost the deal never picks the new owner's epoch up from the store.
        let owned = msg.take_over || (self.owned && self.state.record().owner_epoch == sold_under);
        self.set_owned(owned);
        self.publish();
        self.schedule_expiry(ctx);
        if owned {
            self.rearm_or_schedule(ctx);
        }
        self.schedule_claims(ctx);
        self.serve_waitlist(ctx);
        self.serve_parked(ctx);
        drift
    }
}

impl Handler<Follow> for DealActor {
    type Result = bool;

    fn handle(&mut self, Follow(record): Follow, ctx: &mut Self::Context) -> bool {
        if self.owned || record.id != self.state.id() || !record.problems().is_empty() {
            return false;
        }
        let window_moved = record.expires_at != self.state.record().expires_at;
        self.state = DealState::followed(record);
        self.publish();
        if window_moved {
            self.schedule_expiry(ctx);
        }
        true
    }
}

impl Handler<StoredClaims> for DealActor {
    type Result = ();

    fn handle(&mut self, msg: StoredClaims, ctx: &mut Self::Context) {
        // Claims of another tenure belong to a state that is gone (the store has them; a
        // takeover reloads them).
        if !self.owned || msg.owner_epoch != self.state.record().owner_epoch {
            return;
        }
        for (order_id, claim) in msg.claims {
            self.state.claims_mut().insert(order_id, claim);
        }
        self.schedule_claims(ctx);
    }
}
