//! The deal's state and its waitlist: joining, serving the first entry that fits, and the
//! invariant that no unit stays free while a waiting entry fits it (the data is in
//! `deal/waitlist.rs`).

use super::{DealState, Reservation};
use crate::Millis;
use crate::deal::waitlist::{JoinRefusal, WaitingEntry};
use crate::model::{DealStatus, ReserveError};

impl DealState {
    /// Takes in a stored entry if the deal is sold out and selling at `now`; answers its
    /// position. Refused entries change nothing (the caller removes them from the store).
    pub fn join_waitlist(
        &mut self,
        entry: WaitingEntry,
        now: Millis,
        max: usize,
    ) -> Result<usize, JoinRefusal> {
        if entry.round != self.round() {
            return Err(JoinRefusal::NotSelling(ReserveError::Expired));
        }
        match self.status(now) {
            DealStatus::Closed => return Err(JoinRefusal::NotSelling(ReserveError::Closed)),
            DealStatus::Expired => return Err(JoinRefusal::NotSelling(ReserveError::Expired)),
            DealStatus::Scheduled => {
                return Err(JoinRefusal::NotSelling(ReserveError::NotStarted));
            }
            DealStatus::Active | DealStatus::SoldOut => {}
        }
        if self.available_units() > 0 {
            return Err(JoinRefusal::NotSoldOut {
                available_units: self.available_units(),
            });
        }
        let already = self.units_held_by(entry.customer_id);
        if let Some(limit) = self.record().per_customer_limit {
            if already + entry.quantity > limit {
                return Err(JoinRefusal::LimitExceeded { limit, already });
            }
        }
        let waitlist = self.waitlist_mut();
        if waitlist.has(entry.customer_id) {
            return Err(JoinRefusal::AlreadyWaiting);
        }
        if waitlist.len() >= max {
            return Err(JoinRefusal::Full { max });
        }
        waitlist.insert(entry);
        Ok(waitlist.position(entry.id).unwrap_or(1))
    }

    /// Serves the first waiting entry that the free units fit (within its customer's limit):
    /// its units are taken and it is being served. `None` when no entry fits, or the deal does
    /// not sell now.
    pub fn promote_next(&mut self, now: Millis) -> Option<(WaitingEntry, Reservation)> {
        if self.waitlist().is_empty() || self.available_units() == 0 || self.awaits_attribution() {
            return None;
        }
        let candidates: Vec<WaitingEntry> = self
            .waitlist()
            .waiting()
            .filter(|entry| entry.quantity <= self.available_units())
            .copied()
            .collect();
        for entry in candidates {
            if entry.round != self.round() {
                continue;
            }
            match self.reserve(entry.customer_id, entry.quantity, now) {
                Ok(reservation) => {
                    self.waitlist_mut().begin_serving(entry.id);
                    return Some((entry, reservation));
                }
                Err(ReserveError::SoldOut { .. } | ReserveError::LimitExceeded { .. }) => {}
                Err(ReserveError::InvalidQuantity) => {}
                // The deal does not sell now: nobody is served.
                Err(_) => return None,
            }
        }
        None
    }

    /// The invariant the waitlist keeps: while the deal sells, no waiting entry fits the free
    /// units within its customer's limit (it would have been served).
    pub fn no_waiting_entry_fits(&self, now: Millis) -> bool {
        let selling = matches!(self.status(now), DealStatus::Active | DealStatus::SoldOut);
        if !selling || self.awaits_attribution() {
            return true;
        }
        let limit = self.record().per_customer_limit;
        !self.waitlist().waiting().any(|entry| {
            entry.round == self.round()
                && entry.quantity <= self.available_units()
                && limit.is_none_or(|limit| {
                    self.units_held_by(entry.customer_id) + entry.quantity <= limit
                })
        })
    }
}
