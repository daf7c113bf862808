//! A lock-free mirror of one deal, written only by the deal's actor, read by everyone.
//!
//! Requests that are certain to fail (sold out, closed, expired, not started) are refused from
//! here without entering the actor's mailbox, so a storm of doomed requests after a sell-out costs
//! a few atomic loads each. The mirror can only be *behind* the actor; every refusal it makes is
//! one the actor would have made at the moment of its last update.
//!
//! The mirror also carries the deal's [`UnitsLedger`]: while the actor lends it, a request's
//! units are claimed here, on the caller's thread ([`DealMirror::try_claim`]), under the terms
//! the actor published with the loan.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::ledger::{Claim, UnitsLedger};
use crate::Millis;
use crate::model::{DealRecord, DealStatus, ReserveError};

/// The shared, read-mostly view of a deal.
#[derive(Debug)]
pub struct DealMirror {
    /// Units the actor could still reserve (or that may still be claimed, while lent).
    ledger: UnitsLedger,
    /// Set while an admin has closed the deal.
    closed: AtomicBool,
    /// Set while a daily re-arm is being persisted; orders wait for the new round.
    rearming: AtomicBool,
    /// Set once the deal's ownership was lost to another node (cluster mode): nothing is sold
    /// here any more.
    unowned: AtomicBool,
    /// Orders sent to the actor's mailbox and not yet taken out (for `/metrics`' mailbox fill).
    queued_orders: AtomicI64,
    /// Counts the definitions published (cluster mode's feed republishes a deal when it moves).
    version: AtomicU64,
    /// The window, copied out of `published` so the fast path takes no lock.
    starts_at: AtomicI64,
    expires_at: AtomicI64,
    /// Everything else about the deal (name, prices, totals) and the epoch of the ledger's loan
    /// these terms belong to; replaced only when the deal's definition changes or a loan
    /// begins — never on an order — so readers rarely meet a writer.
    published: RwLock<Published>,
}

#[derive(Debug)]
struct Published {
    epoch: u32,
    record: Arc<DealRecord>,
}

/// The outcome of [`DealMirror::try_claim`].
#[derive(Debug)]
pub enum FastClaim {
    /// The units are claimed under these terms; the order must now reach the writer.
    Claimed(Arc<DealRecord>),
    /// Refused, exactly as the actor would refuse it now.
    Refused(ReserveError),
    /// The units are not lent right now: the deal's actor decides.
    AskTheActor,
}

/// How many times a claim looks again when the actor changed the loan under it.
const CLAIM_ATTEMPTS: usize = 4;

impl DealMirror {
    pub fn new(record: &DealRecord) -> Self {
        Self {
            ledger: UnitsLedger::new(record.available_units),
            closed: AtomicBool::new(record.closed),
            rearming: AtomicBool::new(false),
            unowned: AtomicBool::new(false),
            queued_orders: AtomicI64::new(0),
            version: AtomicU64::new(0),
            starts_at: AtomicI64::new(record.starts_at),
            expires_at: AtomicI64::new(record.expires_at),
            published: RwLock::new(Published {
                epoch: 0,
                record: Arc::new(record.clone()),
            }),
        }
    }

    /// Publishes a new definition of the deal (actor only, while the ledger is not lent).
    pub fn publish_record(&self, record: &DealRecord) {
        self.starts_at.store(record.starts_at, Ordering::Release);
        self.expires_at.store(record.expires_at, Ordering::Release);
        self.closed.store(record.closed, Ordering::Release);
        self.ledger.set(record.available_units);
        self.write_published().record = Arc::new(record.clone());
        self.version.fetch_add(1, Ordering::Release);
    }

    /// How many definitions of the deal were published so far: with the live stock, whether
    /// anything about the deal changed since it was last looked at.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Sets the stock of a ledger that is not lent (actor only).
    pub fn publish_available(&self, available_units: i64) {
        self.ledger.set(available_units);
    }

    /// Lends `available_units` under the published terms and a new epoch (actor only, while
    /// the ledger is not lent).
    pub fn lend(&self, available_units: i64) {
        let mut published = self.write_published();
        published.epoch = UnitsLedger::next_epoch(published.epoch);
        // Still under the write lock: a reader that sees the new epoch sees these terms.
        self.ledger.lend(published.epoch, available_units);
    }

    /// Ends the loan (actor only). Returns the units left: what was lent minus every claim.
    pub fn recall(&self) -> i64 {
        self.ledger.recall()
    }

    /// Whether the actor lends the counter right now (claims go straight to the writer).
    pub fn is_lent(&self) -> bool {
        self.ledger.lent_epoch().is_some()
    }

    /// The ledger's count as of now (claims only lower it while it is lent).
    pub fn ledger_units(&self) -> i64 {
        self.ledger.available_units()
    }

    /// Claims `quantity` units on the caller's thread if the actor lends them.
    pub fn try_claim(&self, quantity: i64, now: Millis) -> FastClaim {
        if !(1..=crate::limits::ORDER_QUANTITY_MAX).contains(&quantity) {
            return FastClaim::Refused(ReserveError::InvalidQuantity);
        }
        for _ in 0..CLAIM_ATTEMPTS {
            let Some(epoch) = self.ledger.lent_epoch() else {
                return FastClaim::AskTheActor;
            };
            let record = {
                let published = self.read_published();
                if published.epoch != epoch {
                    // The actor is between a recall and a new loan: look again.
                    continue;
                }
                published.record.clone()
            };
            // A lent ledger means open and unlimited; the window is the one thing left to check.
            if now < record.starts_at {
                return FastClaim::Refused(ReserveError::NotStarted);
            }
            if now >= record.expires_at {
                return FastClaim::Refused(ReserveError::Expired);
            }
            match self.ledger.claim(epoch, quantity) {
                Claim::Claimed => return FastClaim::Claimed(record),
                Claim::SoldOut { available_units } => {
                    return FastClaim::Refused(ReserveError::SoldOut { available_units });
                }
                Claim::NotLent => continue,
            }
        }
        FastClaim::AskTheActor
    }

    fn read_published(&self) -> std::sync::RwLockReadGuard<'_, Published> {
        self.published
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_published(&self) -> std::sync::RwLockWriteGuard<'_, Published> {
        self.published
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The fencing epoch the deal is sold under here (cluster mode; 0 on a single node that
    /// never ran in a cluster).
    pub fn owner_epoch(&self) -> i64 {
        self.read_published().record.owner_epoch
    }

    /// The deal was lost to another node, or taken (back) over (actor only).
    pub fn set_unowned(&self, unowned: bool) {
        self.unowned.store(unowned, Ordering::Release);
    }

    /// Whether another node owns the deal now.
    pub fn is_unowned(&self) -> bool {
        self.unowned.load(Ordering::Acquire)
    }

    pub fn set_rearming(&self, rearming: bool) {
        self.rearming.store(rearming, Ordering::Release);
    }

    /// An order goes into (`+1`) or comes out of (`-1`) the actor's mailbox.
    pub fn note_queued(&self, change: i64) {
        self.queued_orders.fetch_add(change, Ordering::Relaxed);
    }

    /// Orders in the actor's mailbox right now.
    pub fn queued_orders(&self) -> i64 {
        self.queued_orders.load(Ordering::Relaxed)
    }

    pub fn available_units(&self) -> i64 {
        self.ledger.available_units()
    }

    /// The deal as of the actor's last update, with its live stock.
    pub fn snapshot(&self) -> DealRecord {
        let mut snapshot = DealRecord::clone(&self.read_published().record);
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
