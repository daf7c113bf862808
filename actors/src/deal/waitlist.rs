//! A deal's waitlist (DESIGN.md decision 11): customers waiting for units of a sold-out deal,
//! served first come first served as units come free. Plain data with an instant passed in, like
//! `DealState` and `Claims`; no I/O.
//!
//! An entry is stored before the deal's actor takes it in (`join`), so a crash never loses an
//! entry a customer was told of. It is `waiting` until one of three things happens:
//!
//! - units come free and it is the first entry that fits them (`DealState::promote_next`, in `state/waitlist.rs`):
//!   its units are taken at once and it is `serving` while its order is being stored; stored,
//!   it is gone (`served`); not stored, it waits again in its place (`unserve`);
//! - its customer leaves (`leave`); an entry being served cannot be left (its order is on
//!   the way, and can be cancelled once it is there);
//! - the round ends: the store's entries of an earlier round are over, and a reload brings only
//!   the new round's.
//!
//! No unit stays on the shelf while a waiting entry fits it: every path that frees units
//! serves the waitlist before anything else can take them (checked by
//! [`DealState::no_waiting_entry_fits`] in the seeded simulation).

use std::collections::{BTreeMap, HashMap};

use crate::CustomerId;
use crate::model::ReserveError;
pub use crate::model::WaitingEntry;

/// A waitlist entry's id in the store; entries join in the order of their ids.
pub type EntryId = i64;

/// Why an entry may not join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinRefusal {
    /// Units are on the shelf: order them instead.
    NotSoldOut { available_units: i64 },
    /// The deal does not sell now (closed, expired, not started, or in another round).
    NotSelling(ReserveError),
    /// Served, the entry would take the customer past the deal's per-customer limit.
    LimitExceeded { limit: i64, already: i64 },
    /// The customer is waiting already.
    AlreadyWaiting,
    /// The waitlist is at its maximum length.
    Full { max: usize },
    /// This node does not sell the deal (any more).
    NotOwner,
}

/// What leaving found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaving {
    /// The customer's entry left the waitlist.
    Left(EntryId),
    /// The customer's entry is being served: its order is on the way.
    Serving(EntryId),
    /// The customer has no entry here.
    NotWaiting,
}

#[derive(Debug, Clone, Default)]
pub struct Waitlist {
    /// Waiting entries in the order they joined.
    waiting: BTreeMap<EntryId, WaitingEntry>,
    /// Entries whose order is being stored.
    serving: HashMap<EntryId, WaitingEntry>,
    /// Each customer's entry, waiting or being served.
    by_customer: HashMap<CustomerId, EntryId>,
}

impl Waitlist {
    /// Waiting entries (not those being served).
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub fn serving(&self) -> usize {
        self.serving.len()
    }

    /// Whether the customer has an entry waiting or being served.
    pub fn has(&self, customer_id: CustomerId) -> bool {
        self.by_customer.contains_key(&customer_id)
    }

    /// An entry the store holds (a join, or a reload of the store's waiting entries).
    pub fn insert(&mut self, entry: WaitingEntry) {
        if let Some(old) = self.by_customer.insert(entry.customer_id, entry.id) {
            self.waiting.remove(&old);
        }
        self.waiting.insert(entry.id, entry);
    }

    /// The entry's place in the line (1 = next to be served); `None` when it is not waiting.
    pub fn position(&self, entry_id: EntryId) -> Option<usize> {
        self.waiting
            .contains_key(&entry_id)
            .then(|| self.waiting.range(..=entry_id).count())
    }

    pub fn waiting(&self) -> impl Iterator<Item = &WaitingEntry> {
        self.waiting.values()
    }

    pub fn leave(&mut self, customer_id: CustomerId) -> Leaving {
        let Some(&entry_id) = self.by_customer.get(&customer_id) else {
            return Leaving::NotWaiting;
        };
        if self.serving.contains_key(&entry_id) {
            return Leaving::Serving(entry_id);
        }
        self.waiting.remove(&entry_id);
        self.by_customer.remove(&customer_id);
        Leaving::Left(entry_id)
    }

    /// Moves a waiting entry to `serving`.
    pub(crate) fn begin_serving(&mut self, entry_id: EntryId) -> Option<WaitingEntry> {
        let entry = self.waiting.remove(&entry_id)?;
        self.serving.insert(entry_id, entry);
        Some(entry)
    }

    /// The entry's order is stored: the entry is over.
    pub fn served(&mut self, entry_id: EntryId) -> Option<WaitingEntry> {
        let entry = self.serving.remove(&entry_id)?;
        if self.by_customer.get(&entry.customer_id) == Some(&entry_id) {
            self.by_customer.remove(&entry.customer_id);
        }
        Some(entry)
    }

    /// The entry's order could not be stored: it waits again in its place.
    pub fn unserve(&mut self, entry_id: EntryId) -> Option<WaitingEntry> {
        let entry = self.serving.remove(&entry_id)?;
        self.waiting.insert(entry_id, entry);
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: EntryId, customer_id: CustomerId, quantity: i64) -> WaitingEntry {
        WaitingEntry {
            id,
            customer_id,
            quantity,
            round: 1,
        }
    }

    #[test]
    fn entries_wait_in_line_and_leave() {
        let mut waitlist = Waitlist::default();
        waitlist.insert(entry(5, 1, 2));
        waitlist.insert(entry(7, 2, 1));
        waitlist.insert(entry(9, 3, 1));
        assert_eq!(waitlist.position(7), Some(2));
        assert_eq!(waitlist.leave(1), Leaving::Left(5));
        assert_eq!(waitlist.position(7), Some(1));
        assert_eq!(waitlist.begin_serving(7), Some(entry(7, 2, 1)));
        assert_eq!(waitlist.leave(2), Leaving::Serving(7));
        assert_eq!(waitlist.position(9), Some(1));
        assert_eq!(waitlist.unserve(7), Some(entry(7, 2, 1)));
        assert_eq!(waitlist.position(9), Some(2));
        waitlist.begin_serving(7);
        assert_eq!(waitlist.served(7), Some(entry(7, 2, 1)));
        assert!(!waitlist.has(2));
        assert_eq!(waitlist.leave(4), Leaving::NotWaiting);
        assert_eq!(waitlist.len(), 1);
    }
}
