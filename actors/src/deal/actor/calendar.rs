//! A deal's calendar: the timer at the end of its window and the daily re-arm at midnight UTC
//! (the actor's other half, `mod.rs`, decides orders).

use std::time::Duration;

use actix::prelude::*;

use super::DealActor;
use crate::clock::{DAY_MS, day_of, next_midnight};
use crate::deal::state::DealState;
use crate::model::Recurrence;

/// How long to wait before trying a failed daily re-arm again.
const REARM_RETRY: Duration = Duration::from_secs(1);

impl DealActor {
    /// Re-arms now if the day's round is due, else at the next midnight.
    pub(super) fn rearm_or_schedule(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now_ms();
        if self.state.rearm_due(now) {
            self.rearm(ctx, day_of(now));
        } else {
            self.schedule_rearm(ctx);
        }
    }

    /// At the end of the window the loan is recalled, so no claim lands after it whatever the
    /// claiming thread's clock says, and the mirror publishes the deal as it stands. Orders are
    /// refused at the instant either way: each compares its own `now` with `expires_at`.
    pub(super) fn schedule_expiry(&self, ctx: &mut Context<Self>) {
        let expires_at = self.state.record().expires_at;
        let wait = expires_at - self.clock.now_ms();
        if wait < 0 {
            return;
        }
        // A window far ahead is waited for a day at a time (the timer then looks again).
        let wait = Duration::from_millis(u64::try_from(wait.min(DAY_MS)).unwrap_or(0));
        ctx.run_later(wait, move |actor, ctx| {
            // The window may have moved since (an admin's change or a re-arm): look again.
            if actor.state.record().expires_at != expires_at {
                return;
            }
            if actor.clock.now_ms() < expires_at {
                actor.schedule_expiry(ctx);
                return;
            }
            actor.recall();
            actor.publish();
            tracing::debug!(deal_id = actor.state.id(), "deal window ended");
        });
    }

    pub(super) fn schedule_rearm(&self, ctx: &mut Context<Self>) {
        if self.state.record().recurrence != Recurrence::Daily {
            return;
        }
        let now = self.clock.now_ms();
        let midnight = next_midnight(now);
        let wait = Duration::from_millis(u64::try_from(midnight - now).unwrap_or(0));
        ctx.run_later(wait, move |actor, ctx| actor.rearm(ctx, day_of(midnight)));
    }

    /// Starts the round of `day`: pauses sales, persists the re-arm, then takes the stored deal
    /// as the new state. Keyed by day in the store, so a restart or a second timer is harmless.
    pub(super) fn rearm(&mut self, ctx: &mut Context<Self>, day: i64) {
        if !self.owned
            || self.state.record().recurrence != Recurrence::Daily
            || self.state.record().rearmed_day >= day
        {
            return;
        }
        self.recall();
        self.state.begin_rearm();
        self.mirror.set_rearming(true);
        self.publish_units();
        let deal_id = self.state.id();
        let persisted = self.journal.rearm_deal(deal_id, day);
        ctx.spawn(
            persisted
                .into_actor(self)
                .map(move |result, actor, ctx| match result {
                    Ok(loaded) => {
                        let sold_under = actor.state.record().owner_epoch;
                        let (mut state, drift) =
                            DealState::recover(loaded.record, loaded.units_by_customer);
                        // The old round's claims still lapse at their deadlines (their units
                        // are the old round's: none come back to the new one).
                        *state.claims_mut() = std::mem::take(actor.state.claims_mut());
                        state.load_claims(loaded.claims);
                        // The old round's entries are over; the store has none of the new.
                        state.load_waitlist(loaded.waitlist);
                        if drift != 0 {
                            tracing::error!(
                                deal_id,
                                drift,
                                "stored available_units drifted from the orders"
                            );
                        }
                        actor.state = state;
                        actor.mirror.set_rearming(false);
                        if actor.state.record().owner_epoch != sold_under {
                            // Another node took the deal while this one re-armed it: sell
                            // nothing under the epoch read back.
                            actor.set_owned(false);
                        }
                        actor.publish();
                        tracing::info!(deal_id, round = actor.state.round(), "daily deal re-armed");
                        actor.schedule_rearm(ctx);
                        actor.schedule_expiry(ctx);
                        actor.serve_parked(ctx);
                    }
                    Err(error) => {
                        tracing::error!(deal_id, %error, "daily re-arm failed; retrying");
                        actor.state.abort_rearm();
                        actor.mirror.set_rearming(false);
                        actor.publish_units();
                        ctx.run_later(REARM_RETRY, move |actor, ctx| actor.rearm(ctx, day));
                    }
                }),
        );
    }
}
