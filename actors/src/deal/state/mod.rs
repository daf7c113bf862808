//! `DealState`: one deal's stock, window and per-customer counts, as a plain synchronous struct.
//!
//! Every decision about a deal's units is made here, in the order the deal's actor receives
//! the requests, against an instant (`now`) the caller passes in. No I/O, no clock, no locks:
//! this is the unit the seeded simulation test drives. After every change the conservation
//! invariant is asserted, in release builds too:
//!
//! `available_units + sold_units == total_units`, both non-negative, where `sold_units` counts
//! the units of every live order of the current round (committed or still in the writer).
//!
//! Units claimed on HTTP workers' threads while the deal's actor lent its counter (see
//! `ledger.rs`) enter here in two steps: [`DealState::absorb_claims`] counts them as sold but
//! not yet *attributed* to a customer, and [`DealState::attribute`] assigns them once the writer
//! reports whose orders they were. The per-customer counts are exact only when nothing is
//! unattributed, which is why a deal is lent only while it has no per-customer limit.

use std::collections::HashMap;

use super::claims::Claims;
use super::waitlist::{WaitingEntry, Waitlist};
use crate::limits::{ORDER_QUANTITY_MAX, UNITS_MAX};
use crate::model::{DealRecord, DealStatus, DealTerms, Recurrence, ReserveError, ResizeError};
use crate::{CustomerId, DealId, Millis};

mod waitlist;

/// Units set aside for one order: what the order writer persists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub deal_id: DealId,
    pub round: i64,
    pub customer_id: CustomerId,
    pub quantity: i64,
    /// The deal's price at the instant of the reservation; never taken from the client.
    pub unit_price: i64,
    pub total_price: i64,
}

/// What an order of `quantity` units at `unit_price` costs. Both are bounded (the price by the
/// deal's validation, the quantity by `ORDER_QUANTITY_MAX`), so the product fits an `i64` with
/// room to spare; checked all the same, so a bound loosened by mistake panics instead of wrapping.
pub fn order_total(unit_price: i64, quantity: i64) -> i64 {
    unit_price
        .checked_mul(quantity)
        .expect("price × quantity fits: both are bounded by crate::limits")
}

#[derive(Debug, Clone)]
pub struct DealState {
    record: DealRecord,
    /// Units held by live orders of the current round.
    sold_units: i64,
    /// Units held by each customer in the current round, for the per-customer limit.
    units_by_customer: HashMap<CustomerId, i64>,
    /// Units of `sold_units` claimed from the lent counter whose customer is not known yet.
    unattributed_units: i64,
    /// Set between 00:00 UTC and the moment the daily re-arm is persisted: the new round may
    /// not sell before the store knows about it, or its sales would be overwritten.
    rearming: bool,
    /// Stored orders of this round awaiting payment (a deal with a payment window). Their
    /// units are part of `sold_units` until they are paid, cancelled or lapsed.
    claims: Claims,
    /// Customers waiting for units of this round, served as units come free.
    waitlist: Waitlist,
}

impl DealState {
    /// Rebuilds a deal's state from the store: the live orders of the current round are the
    /// facts, and `available_units` is derived from them. Returns the drift between the stored
    /// `available_units` and the derived one (0 when the store was consistent).
    pub fn recover(
        mut record: DealRecord,
        mut units_by_customer: HashMap<CustomerId, i64>,
    ) -> (Self, i64) {
        units_by_customer.retain(|_, units| *units > 0);
        let sold_units: i64 = units_by_customer.values().sum();
        let derived_available = (record.total_units - sold_units).max(0);
        let drift = record.available_units - derived_available;
        record.available_units = derived_available;
        // An oversold history (sold > total) cannot be repaired by arithmetic: keep the total
        // honest by raising it to what was sold, so conservation holds from here on.
        if sold_units > record.total_units {
            record.total_units = sold_units;
        }
        let state = Self {
            record,
            sold_units,
            units_by_customer,
            unattributed_units: 0,
            rearming: false,
            claims: Claims::default(),
            waitlist: Waitlist::default(),
        };
        state.assert_conserved();
        (state, drift)
    }

    /// A brand-new deal: nothing sold yet, `available_units` as the admin set it.
    pub fn new(record: DealRecord) -> Self {
        let sold_units = record.total_units - record.available_units;
        let state = Self {
            record,
            sold_units,
            units_by_customer: HashMap::new(),
            unattributed_units: 0,
            rearming: false,
            claims: Claims::default(),
            waitlist: Waitlist::default(),
        };
        state.assert_conserved();
        state
    }

    /// A deal as another node sells it (cluster mode's follower): its units sold are known,
    /// not who bought them, so all count as unattributed. A follower never sells; taking the
    /// deal over reloads it from the store.
    pub fn followed(record: DealRecord) -> Self {
        let sold_units = record.total_units - record.available_units;
        let state = Self {
            record,
            sold_units,
            units_by_customer: HashMap::new(),
            unattributed_units: sold_units,
            rearming: false,
            claims: Claims::default(),
            waitlist: Waitlist::default(),
        };
        state.assert_conserved();
        state
    }

    pub fn record(&self) -> &DealRecord {
        &self.record
    }

    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    pub fn claims_mut(&mut self) -> &mut Claims {
        &mut self.claims
    }

    /// Takes in the claims the store holds (start, takeover). A claim of an earlier round
    /// still lapses at its deadline; its units are that round's, so none come back
    /// (`release` ignores other rounds).
    pub fn load_claims(&mut self, claims: Vec<(crate::OrderId, crate::model::Claim)>) {
        for (order_id, claim) in claims {
            self.claims.insert(order_id, claim);
        }
    }

    pub fn waitlist(&self) -> &Waitlist {
        &self.waitlist
    }

    pub fn waitlist_mut(&mut self) -> &mut Waitlist {
        &mut self.waitlist
    }

    /// Takes in the store's waiting entries of the current round (start, takeover, re-arm),
    /// in the order they joined. Entries of another round are over: left out.
    pub fn load_waitlist(&mut self, entries: Vec<WaitingEntry>) {
        for entry in entries {
            if entry.round == self.record.round {
                self.waitlist.insert(entry);
            }
        }
    }

    pub fn id(&self) -> DealId {
        self.record.id
    }

    pub fn available_units(&self) -> i64 {
        self.record.available_units
    }

    pub fn sold_units(&self) -> i64 {
        self.sold_units
    }

    pub fn round(&self) -> i64 {
        self.record.round
    }

    pub fn unattributed_units(&self) -> i64 {
        self.unattributed_units
    }

    /// Whether the counter may be lent to the HTTP workers: the deal is open to everyone, so a
    /// claim needs to know nothing but the count and the window.
    pub fn lendable(&self) -> bool {
        !self.rearming
            && !self.record.closed
            && self.record.per_customer_limit.is_none()
            && self.record.payment_window_secs.is_none()
    }

    /// Whether a reservation must wait for the writer's report on claimed units: the
    /// per-customer limit cannot be checked while some units have no known customer.
    pub fn awaits_attribution(&self) -> bool {
        self.record.per_customer_limit.is_some() && self.unattributed_units > 0
    }

    /// Takes in the claims made on the lent counter: it now reads `ledger_units`, and every
    /// unit below the state's own count was claimed since the last look.
    pub fn absorb_claims(&mut self, ledger_units: i64) {
        let claimed = self.record.available_units - ledger_units;
        assert!(
            claimed >= 0,
            "deal {}: the ledger holds {ledger_units} units, more than the {} the actor knows of",
            self.record.id,
            self.record.available_units
        );
        if claimed == 0 {
            return;
        }
        self.record.available_units = ledger_units;
        self.sold_units += claimed;
        self.unattributed_units += claimed;
        self.assert_conserved();
    }

    /// Assigns claimed units to the customer whose order holds them. Claims of another round
    /// belong to a state that is gone: ignored. Returns whether anything was assigned.
    pub fn attribute(&mut self, customer_id: CustomerId, quantity: i64, round: i64) -> bool {
        if !self.take_unattributed(quantity, round) {
            return false;
        }
        *self.units_by_customer.entry(customer_id).or_insert(0) += quantity;
        self.assert_conserved();
        true
    }

    /// Gives back claimed units whose order was never stored and never attributed.
    pub fn return_claim(&mut self, quantity: i64, round: i64) -> bool {
        if !self.take_unattributed(quantity, round) {
            return false;
        }
        self.sold_units -= quantity;
        self.record.available_units += quantity;
        self.assert_conserved();
        true
    }

    /// Takes `quantity` claimed units of `round` off the unattributed count, for `attribute` or
    /// `return_claim` to put somewhere. False (nothing taken) for another round's claim.
    fn take_unattributed(&mut self, quantity: i64, round: i64) -> bool {
        if round != self.record.round || quantity < 1 {
            return false;
        }
        assert!(
            self.unattributed_units >= quantity,
            "deal {}: {quantity} claimed units settled with {} unattributed",
            self.record.id,
            self.unattributed_units
        );
        self.unattributed_units -= quantity;
        true
    }

    pub fn units_held_by(&self, customer_id: CustomerId) -> i64 {
        self.units_by_customer
            .get(&customer_id)
            .copied()
            .unwrap_or(0)
    }

    pub fn status(&self, now: Millis) -> DealStatus {
        let r = &self.record;
        DealStatus::derive(r.closed, r.starts_at, r.expires_at, r.available_units, now)
    }

    /// Sets `quantity` units aside for `customer_id`, or says why not.
    ///
    /// The checks run in the order a buyer would want to hear them, and the stock check comes
    /// before the per-customer limit so that the registry's mirror (which knows no customers)
    /// refuses exactly what this would refuse.
    pub fn reserve(
        &mut self,
        customer_id: CustomerId,
        quantity: i64,
        now: Millis,
    ) -> Result<Reservation, ReserveError> {
        if !(1..=ORDER_QUANTITY_MAX).contains(&quantity) {
            return Err(ReserveError::InvalidQuantity);
        }
        self.take(customer_id, quantity, now)?;
        let unit_price = self.record.final_price;
        Ok(Reservation {
            deal_id: self.record.id,
            round: self.record.round,
            customer_id,
            quantity,
            unit_price,
            total_price: order_total(unit_price, quantity),
        })
    }

    /// Takes `more` units for an order the customer already holds (its quantity grows), with the
    /// checks a new order of `more` units would meet, save the quantity bound (the caller
    /// checked the order's new quantity).
    pub fn take_more(
        &mut self,
        customer_id: CustomerId,
        more: i64,
        round: i64,
        now: Millis,
    ) -> Result<(), ReserveError> {
        if round != self.record.round {
            return Err(ReserveError::Expired);
        }
        self.take(customer_id, more, now)
    }

    /// Sets `units` aside for `customer_id` if the deal sells them at `now`: the checks in the
    /// order a buyer would want to hear them, the stock before the per-customer limit (so the
    /// mirror, which knows no customers, refuses exactly what this refuses).
    fn take(
        &mut self,
        customer_id: CustomerId,
        units: i64,
        now: Millis,
    ) -> Result<(), ReserveError> {
        if self.rearming {
            return Err(ReserveError::NotStarted);
        }
        match self.status(now) {
            DealStatus::Closed => return Err(ReserveError::Closed),
            DealStatus::Expired => return Err(ReserveError::Expired),
            DealStatus::Scheduled => return Err(ReserveError::NotStarted),
            DealStatus::Active | DealStatus::SoldOut => {}
        }
        if self.record.available_units < units {
            return Err(ReserveError::SoldOut {
                available_units: self.record.available_units,
            });
        }
        let already = self.units_held_by(customer_id);
        if let Some(limit) = self.record.per_customer_limit {
            if already + units > limit {
                return Err(ReserveError::LimitExceeded { limit, already });
            }
        }
        self.record.available_units -= units;
        self.sold_units += units;
        self.units_by_customer.insert(customer_id, already + units);
        self.assert_conserved();
        Ok(())
    }

    /// Gives back the units of an order of `round` that will not be sold (its commit failed, or
    /// it was cancelled). Units of an earlier round are not this round's stock: ignored.
    /// Returns whether anything came back.
    pub fn release(&mut self, customer_id: CustomerId, quantity: i64, round: i64) -> bool {
        if round != self.record.round || quantity < 1 {
            return false;
        }
        let held = self.units_held_by(customer_id);
        assert!(
            held >= quantity,
            "deal {}: release of {quantity} units for customer {customer_id} who holds {held}",
            self.record.id
        );
        if held == quantity {
            self.units_by_customer.remove(&customer_id);
        } else {
            self.units_by_customer.insert(customer_id, held - quantity);
        }
        self.sold_units -= quantity;
        self.record.available_units += quantity;
        self.assert_conserved();
        true
    }

    /// Moves `total_units` and `available_units` together by `delta_units`. The new total must
    /// lie in `0..=UNITS_MAX` and cover what is sold; checked before anything changes, with
    /// arithmetic that cannot wrap whatever `delta_units` is.
    pub fn resize(&mut self, delta_units: i64) -> Result<(), ResizeError> {
        let total_units = self
            .record
            .total_units
            .checked_add(delta_units)
            .filter(|total| (0..=UNITS_MAX).contains(total))
            .ok_or(ResizeError::OutOfRange)?;
        if total_units < self.sold_units {
            return Err(ResizeError::BelowSold {
                sold_units: self.sold_units,
            });
        }
        self.record.total_units = total_units;
        self.record.available_units = total_units - self.sold_units;
        self.assert_conserved();
        Ok(())
    }

    /// Replaces the deal's definition (everything but its units).
    pub fn amend(&mut self, terms: DealTerms, updated_at: Millis) {
        let r = &mut self.record;
        r.product_name = terms.product_name;
        r.actual_price = terms.actual_price;
        r.final_price = terms.final_price;
        r.starts_at = terms.starts_at;
        r.expires_at = terms.expires_at;
        r.per_customer_limit = terms.per_customer_limit;
        r.payment_window_secs = terms.payment_window_secs;
        r.recurrence = terms.recurrence;
        r.updated_at = updated_at;
    }

    pub fn set_updated_at(&mut self, updated_at: Millis) {
        self.record.updated_at = updated_at;
    }

    pub fn set_closed(&mut self, closed: bool, updated_at: Millis) {
        self.record.closed = closed;
        self.record.updated_at = updated_at;
    }

    /// Stops sales until the re-armed round is persisted (see `rearming`).
    pub fn begin_rearm(&mut self) {
        self.rearming = true;
    }

    /// Ends a re-arm that could not be persisted: the old round goes on.
    pub fn abort_rearm(&mut self) {
        self.rearming = false;
    }

    /// Whether a daily deal is due a re-arm at `now` (its last re-arm was before today).
    pub fn rearm_due(&self, now: Millis) -> bool {
        self.record.recurrence == Recurrence::Daily
            && self.record.rearmed_day < crate::clock::day_of(now)
    }

    /// Panics if units were created or lost. Called after every change, in every build: a
    /// broken count must stop this deal rather than sell units that do not exist.
    pub fn assert_conserved(&self) {
        let r = &self.record;
        assert!(
            r.available_units >= 0
                && self.sold_units >= 0
                && self.unattributed_units >= 0
                && r.available_units + self.sold_units == r.total_units,
            "deal {}: conservation broken: available {} + sold {} != total {}",
            r.id,
            r.available_units,
            self.sold_units,
            r.total_units
        );
        debug_assert_eq!(
            self.units_by_customer.values().sum::<i64>() + self.unattributed_units,
            self.sold_units,
            "deal {}: per-customer units do not add up to the units sold",
            r.id
        );
    }
}
