//! `UnitsLedger`: a deal's available units as one atomic word, which the deal's actor may lend
//! to the threads that serve requests.
//!
//! The deal's actor owns the stock (DESIGN.md, decision 1). While a deal is open to everyone —
//! no per-customer limit, not closed, not being re-armed — the actor *lends* the counter: an
//! HTTP worker claims units with one compare-and-swap on its own thread and hands the order
//! straight to the writer, and the actor learns of the claim afterwards (it reads the counter
//! back, and the writer tells it whose orders went into a batch). A claim needs no message to
//! the actor, no wake-up of its thread and no reply from it. While the counter is not lent, only
//! the actor moves it and every order goes through the actor's mailbox.
//!
//! The word: bit 63 says "lent"; bits 40..63 are the lending epoch; bits 0..40 the available
//! units (up to 2^40 - 1, far above the API's bound on units). Every time the actor lends, it
//! takes a new epoch, and a claim names the epoch whose terms (round, price, window) the worker
//! read. A claim therefore never lands under terms the actor has changed since, even when the
//! count has come back to the same number.
//!
//! Only the actor ever adds units or changes the epoch; claims only subtract. So the actor may
//! read the counter at any moment and take the difference to its own count as "claimed since".

use std::sync::atomic::{AtomicU64, Ordering};

const LENT: u64 = 1 << 63;
const EPOCH_SHIFT: u32 = 40;
const EPOCH_MASK: u64 = (1 << 23) - 1;
const UNITS_MASK: u64 = (1 << EPOCH_SHIFT) - 1;

/// The outcome of a worker's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The units are the worker's order's: it must now reach the writer (or be given back).
    Claimed,
    /// Fewer units than asked for are left.
    SoldOut { available_units: i64 },
    /// The counter is not lent under the epoch the worker read: ask the actor, or look again.
    NotLent,
}

#[derive(Debug)]
pub struct UnitsLedger {
    word: AtomicU64,
}

fn units_of(word: u64) -> i64 {
    (word & UNITS_MASK) as i64
}

fn epoch_of(word: u64) -> u32 {
    ((word >> EPOCH_SHIFT) & EPOCH_MASK) as u32
}

fn units_field(available_units: i64) -> u64 {
    let units = u64::try_from(available_units).unwrap_or(0);
    assert!(
        units <= UNITS_MASK,
        "available units {available_units} do not fit the ledger"
    );
    units
}

impl UnitsLedger {
    /// A ledger holding `available_units`, not lent.
    pub fn new(available_units: i64) -> Self {
        Self {
            word: AtomicU64::new(units_field(available_units)),
        }
    }

    pub fn available_units(&self) -> i64 {
        units_of(self.word.load(Ordering::Acquire))
    }

    /// The epoch the counter is lent under, if it is lent.
    pub fn lent_epoch(&self) -> Option<u32> {
        let word = self.word.load(Ordering::Acquire);
        (word & LENT != 0).then(|| epoch_of(word))
    }

    /// Takes `quantity` units if the counter is lent under `epoch` and holds enough.
    pub fn claim(&self, epoch: u32, quantity: i64) -> Claim {
        let Ok(quantity) = u64::try_from(quantity) else {
            return Claim::NotLent;
        };
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            if word & LENT == 0 || epoch_of(word) != epoch {
                return Claim::NotLent;
            }
            if word & UNITS_MASK < quantity {
                return Claim::SoldOut {
                    available_units: units_of(word),
                };
            }
            match self.word.compare_exchange_weak(
                word,
                word - quantity,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Claim::Claimed,
                Err(current) => word = current,
            }
        }
    }

    /// Ends the loan (actor only): no claim succeeds after this returns. Returns the units left.
    pub fn recall(&self) -> i64 {
        units_of(self.word.fetch_and(!LENT, Ordering::AcqRel))
    }

    /// Sets the units of a counter that is not lent (actor only).
    pub fn set(&self, available_units: i64) {
        let word = self.word.load(Ordering::Acquire);
        debug_assert!(word & LENT == 0, "set on a lent ledger");
        let epoch_bits = word & (EPOCH_MASK << EPOCH_SHIFT);
        self.word
            .store(epoch_bits | units_field(available_units), Ordering::Release);
    }

    /// Lends `available_units` under `epoch` (actor only; the counter must not be lent). The
    /// terms published for `epoch` must be in place before this is called.
    pub fn lend(&self, epoch: u32, available_units: i64) {
        debug_assert!(
            self.word.load(Ordering::Acquire) & LENT == 0,
            "lend on a lent ledger"
        );
        let word =
            LENT | ((u64::from(epoch) & EPOCH_MASK) << EPOCH_SHIFT) | units_field(available_units);
        self.word.store(word, Ordering::Release);
    }

    /// The epoch after `epoch`, wrapping inside the word's field.
    pub fn next_epoch(epoch: u32) -> u32 {
        ((u64::from(epoch) + 1) & EPOCH_MASK) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_need_the_lent_epoch_and_enough_units() {
        let ledger = UnitsLedger::new(5);
        assert_eq!(ledger.claim(0, 1), Claim::NotLent, "not lent yet");
        ledger.lend(1, 5);
        assert_eq!(ledger.claim(0, 1), Claim::NotLent, "a stale epoch");
        assert_eq!(ledger.claim(1, 3), Claim::Claimed);
        assert_eq!(ledger.claim(1, 3), Claim::SoldOut { available_units: 2 });
        assert_eq!(ledger.recall(), 2);
        assert_eq!(ledger.claim(1, 1), Claim::NotLent, "recalled");
        ledger.set(7);
        assert_eq!(ledger.available_units(), 7);
        assert_eq!(ledger.lent_epoch(), None);
        ledger.lend(2, 7);
        assert_eq!(ledger.lent_epoch(), Some(2));
        assert_eq!(
            ledger.claim(1, 1),
            Claim::NotLent,
            "the same count, an older loan"
        );
    }

    #[test]
    fn the_epoch_wraps_inside_its_field() {
        let last = EPOCH_MASK as u32;
        assert_eq!(UnitsLedger::next_epoch(last), 0);
        let ledger = UnitsLedger::new(0);
        ledger.lend(last, 3);
        assert_eq!(ledger.lent_epoch(), Some(last));
        assert_eq!(ledger.available_units(), 3);
    }
}
