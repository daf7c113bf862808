//! A lock-free mirror of one deal, written only by the deal's actor, read by everyone.
//!
//! Requests that are certain to fail (sold out, closed, expired, not started) are refused from
//! here without entering the actor's mailbox, so a storm of doomed requests after a sell-out costs
//! a few atomic loads each. The mirror can only be *behind* the actor; every refusal it makes is
//! one the actor would have made at the moment of its last update, and every request it lets
//! through is decided again by the actor.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use crate::Millis;
use crate::deal::{DealRecord, DealStatus, ReserveError};

/// The shared, read-mostly view of a deal.
#[derive(Debug)]
pub struct DealMirror {
    /// Units the actor could still reserve; the hot field, updated after every reservation.
    available_units: AtomicI64,
    /// Set while an admin has closed the deal.
    closed: AtomicBool,
    /// Set while a daily re-arm is being persisted; orders wait for the new round.
    rearming: AtomicBool,
    /// The window, copied out of `record` so the fast path takes no lock.
    starts_at: AtomicI64,
    expires_at: AtomicI64,
    /// Everything else about the deal (name, prices, totals), replaced only when the deal's
    /// definition changes — never on an order — so readers rarely meet a writer.
    record: RwLock<Arc<DealRecord>>,
}

impl DealMirror {
    pub fn new(record: &DealRecord) -> Self {
        Self {
            available_units: AtomicI64::new(record.available_units),
            closed: AtomicBool::new(record.closed),
            rearming: AtomicBool::new(false),
            starts_at: AtomicI64::new(record.starts_at),
            expires_at: AtomicI64::new(record.expires_at),
            record: RwLock::new(Arc::new(record.clone())),
        }
    }

    /// Publishes a new definition of the deal (called by its actor only).
    pub fn publish_record(&self, record: &DealRecord) {
        self.starts_at.store(record.starts_at, Ordering::Release);
        self.expires_at.store(record.expires_at, Ordering::Release);
        self.closed.store(record.closed, Ordering::Release);
        self.available_units
            .store(record.available_units, Ordering::Release);
        let mut slot = self
            .record
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = Arc::new(record.clone());
    }

    /// Publishes the stock after a reservation or a release (called by its actor only).
    pub fn publish_available(&self, available_units: i64) {
        self.available_units
            .store(available_units, Ordering::Release);
    }

    pub fn set_rearming(&self, rearming: bool) {
        self.rearming.store(rearming, Ordering::Release);
    }

    pub fn available_units(&self) -> i64 {
        self.available_units.load(Ordering::Acquire)
    }

    /// The deal as of the actor's last update, with its live stock.
    pub fn snapshot(&self) -> DealRecord {
        let record = self
            .record
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut snapshot = DealRecord::clone(&record);
        snapshot.available_units = self.available_units();
        snapshot
    }

    /// The status at `now`, derived from the window, the closed flag and the stock.
    pub fn status(&self, now: Millis) -> DealStatus {
        DealStatus::derive(
            self.closed.load(Ordering::Acquire),
            self.starts_at.load(Ordering::Acquire),
            self.expires_at.load(Ordering::Acquire),
            self.available_units(),
            now,
        )
    }

    /// The refusal the actor would give right now, if any. `None` means "ask the actor".
    pub fn refusal(&self, quantity: i64, now: Millis) -> Option<ReserveError> {
        if self.rearming.load(Ordering::Acquire) {
            return None;
        }
        match self.status(now) {
            DealStatus::Closed => Some(ReserveError::Closed),
            DealStatus::Expired => Some(ReserveError::Expired),
            DealStatus::Scheduled => Some(ReserveError::NotStarted),
            DealStatus::Active | DealStatus::SoldOut => {
                let available_units = self.available_units();
                (available_units < quantity).then_some(ReserveError::SoldOut { available_units })
            }
        }
    }
}
