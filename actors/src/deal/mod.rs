//! A deal's actor: the thin actix shell around one [`DealState`].
//!
//! Every handler is synchronous, so the deal's decisions happen one at a time in mailbox order
//! with no lock and no await. The only asynchronous work (the daily re-arm's write) runs as a
//! spawned future while sales are paused by `DealState::begin_rearm`.

mod message;
mod record;
mod state;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

pub use message::{
    Amend, PlaceError, PlaceOrder, PlaceReply, Release, Resize, ReturnUnits, SetClosed, Snapshot,
};
pub use record::{DealRecord, DealStatus, DealTerms, Recurrence};
pub use state::{DealState, Reservation, ReserveError, ResizeError};

use crate::clock::{day_of, next_midnight, now_ms};
use crate::journal::{Journal, NewOrder};
use crate::mirror::DealMirror;
use crate::order_writer::{OrderWriter, PendingOrder, Persist};

/// How long to wait before trying a failed daily re-arm again.
const REARM_RETRY: Duration = Duration::from_secs(1);

pub struct DealActor {
    state: DealState,
    mirror: Arc<DealMirror>,
    writer: Addr<OrderWriter>,
    journal: Arc<dyn Journal>,
    /// Bound on queued messages; a full mailbox answers `OVERLOADED` instead of growing.
    mailbox_capacity: usize,
}

impl DealActor {
    pub fn new(
        state: DealState,
        mirror: Arc<DealMirror>,
        writer: Addr<OrderWriter>,
        journal: Arc<dyn Journal>,
        mailbox_capacity: usize,
    ) -> Self {
        Self {
            state,
            mirror,
            writer,
            journal,
            mailbox_capacity,
        }
    }

    fn publish(&self) {
        self.mirror.publish_record(self.state.record());
    }

    fn schedule_rearm(&self, ctx: &mut Context<Self>) {
        if self.state.record().recurrence != Recurrence::Daily {
            return;
        }
        let now = now_ms();
        let midnight = next_midnight(now);
        let wait = Duration::from_millis(u64::try_from(midnight - now).unwrap_or(0));
        ctx.run_later(wait, move |actor, ctx| actor.rearm(ctx, day_of(midnight)));
    }

    /// Starts the round of `day`: pauses sales, persists the re-arm, then takes the stored deal
    /// as the new state. Keyed by day in the store, so a restart or a second timer is harmless.
    fn rearm(&mut self, ctx: &mut Context<Self>, day: i64) {
        if self.state.record().recurrence != Recurrence::Daily
            || self.state.record().rearmed_day >= day
        {
            return;
        }
        self.state.begin_rearm();
        self.mirror.set_rearming(true);
        let deal_id = self.state.id();
        let persisted = self.journal.rearm_deal(deal_id, day);
        ctx.spawn(
            persisted
                .into_actor(self)
                .map(move |result, actor, ctx| match result {
                    Ok(loaded) => {
                        let (state, drift) =
                            DealState::recover(loaded.record, loaded.units_by_customer);
                        if drift != 0 {
                            tracing::error!(
                                deal_id,
                                drift,
                                "stored available_units drifted from the orders"
                            );
                        }
                        actor.state = state;
                        actor.mirror.set_rearming(false);
                        actor.publish();
                        tracing::info!(deal_id, round = actor.state.round(), "daily deal re-armed");
                        actor.schedule_rearm(ctx);
                    }
                    Err(error) => {
                        tracing::error!(deal_id, %error, "daily re-arm failed; retrying");
                        actor.state.abort_rearm();
                        actor.mirror.set_rearming(false);
                        ctx.run_later(REARM_RETRY, move |actor, ctx| actor.rearm(ctx, day));
                    }
                }),
        );
    }
}

impl Actor for DealActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
        let now = now_ms();
        if self.state.rearm_due(now) {
            self.rearm(ctx, day_of(now));
        } else {
            self.schedule_rearm(ctx);
        }
    }
}

impl Handler<PlaceOrder> for DealActor {
    type Result = ();

    fn handle(&mut self, msg: PlaceOrder, ctx: &mut Self::Context) {
        let now = now_ms();
        let reservation = match self.state.reserve(msg.customer_id, msg.quantity, now) {
            Ok(reservation) => reservation,
            Err(refusal) => {
                let _ = msg.reply.send(Err(refusal.into()));
                return;
            }
        };
        self.mirror.publish_available(self.state.available_units());
        let order = NewOrder {
            deal_id: reservation.deal_id,
            round: reservation.round,
            customer_id: reservation.customer_id,
            quantity: reservation.quantity,
            unit_price: reservation.unit_price,
            total_price: reservation.total_price,
            idempotency_key: msg.idempotency_key,
            created_at: now,
        };
        let pending = PendingOrder {
            order,
            reply: msg.reply,
            release_to: ctx.address().recipient(),
        };
        // `try_send`, never `do_send`: a full writer must turn into a 503, not unbounded memory.
        if let Err(refused) = self.writer.try_send(Persist(pending)) {
            let Persist(pending) = refused.into_inner();
            self.state.release(
                pending.order.customer_id,
                pending.order.quantity,
                pending.order.round,
            );
            self.mirror.publish_available(self.state.available_units());
            let _ = pending.reply.send(Err(PlaceError::Overloaded));
        }
    }
}

impl Handler<Release> for DealActor {
    type Result = bool;

    fn handle(&mut self, msg: Release, _: &mut Self::Context) -> bool {
        let released = self.state.release(msg.customer_id, msg.quantity, msg.round);
        self.mirror.publish_available(self.state.available_units());
        released
    }
}

impl Handler<ReturnUnits> for DealActor {
    type Result = ();

    fn handle(&mut self, msg: ReturnUnits, _: &mut Self::Context) {
        self.state.release(msg.customer_id, msg.quantity, msg.round);
        self.mirror.publish_available(self.state.available_units());
        let _ = msg.reply.send(Err(msg.error));
    }
}

impl Handler<Resize> for DealActor {
    type Result = Result<DealRecord, ResizeError>;

    fn handle(&mut self, msg: Resize, _: &mut Self::Context) -> Self::Result {
        self.state.resize(msg.delta_units)?;
        self.publish();
        Ok(self.state.record().clone())
    }
}

impl Handler<Amend> for DealActor {
    type Result = Result<DealRecord, ReserveError>;

    fn handle(&mut self, msg: Amend, ctx: &mut Self::Context) -> Self::Result {
        let was_daily = self.state.record().recurrence == Recurrence::Daily;
        self.state.amend(msg.terms, msg.updated_at);
        self.publish();
        if !was_daily {
            self.schedule_rearm(ctx);
        }
        Ok(self.state.record().clone())
    }
}

impl Handler<SetClosed> for DealActor {
    type Result = Result<DealRecord, ReserveError>;

    fn handle(&mut self, msg: SetClosed, _: &mut Self::Context) -> Self::Result {
        if !msg.closed && now_ms() >= self.state.record().expires_at {
            return Err(ReserveError::Expired);
        }
        self.state.set_closed(msg.closed, msg.updated_at);
        self.publish();
        Ok(self.state.record().clone())
    }
}

impl Handler<Snapshot> for DealActor {
    type Result = Result<DealRecord, ReserveError>;

    fn handle(&mut self, _: Snapshot, _: &mut Self::Context) -> Self::Result {
        Ok(self.state.record().clone())
    }
}
