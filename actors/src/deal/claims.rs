//! A deal's claims: its stored orders that must be paid by a deadline (`pay_by`), as the deal's
//! actor decides them (DESIGN.md decision 10). Plain data with an instant passed in, like
//! `DealState`; no I/O.
//!
//! A claim is `Waiting` until one of three things happens, each decided here at an instant:
//!
//! - a payment begins before `pay_by` (`begin_payment`): the claim is `Paying`, and no lapse
//!   touches it until the payment's outcome is known (`end_payment`). A payment that failed
//!   (no money) leaves the claim `Waiting` — or lapsing at once when its deadline has passed
//!   meanwhile;
//! - its deadline comes (`due`): the claim is `Lapsing` and a payment is refused from then on;
//!   the store cancels the order only if it is still open and unpaid (`settled`), and only
//!   then do its units come back;
//! - it is cancelled (by its customer or an admin) or paid: `forget`.
//!
//! So a payment and its deadline are decided one way: a payment that began at `pay_by − 1 ms`
//! is not lapsed under it, and one that asks at `pay_by` is refused, whatever the store's
//! timing.

use std::collections::{BTreeSet, HashMap};

pub use crate::model::Claim;
use crate::{Millis, OrderId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Waiting,
    Paying,
    Lapsing,
}

/// Why a payment may not begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentRefusal {
    /// The deadline has come (or the claim is being lapsed).
    Expired,
    /// Another payment of this order is under way.
    InProgress,
    /// The deal holds no such claim: the order was paid, cancelled or lapsed already, or
    /// needs no payment. The store says which.
    NotClaimed,
    /// This node does not sell the deal (any more): its owner decides.
    NotOwner,
}

#[derive(Debug, Clone, Default)]
pub struct Claims {
    claims: HashMap<OrderId, (Claim, Stage)>,
    /// The `Waiting` claims by deadline.
    deadlines: BTreeSet<(Millis, OrderId)>,
}

impl Claims {
    pub fn len(&self) -> usize {
        self.claims.len()
    }

    pub fn is_empty(&self) -> bool {
        self.claims.is_empty()
    }

    /// A claim the store now holds (the writer's report, or a reload).
    pub fn insert(&mut self, order_id: OrderId, claim: Claim) {
        if let Some((old, Stage::Waiting)) = self.claims.insert(order_id, (claim, Stage::Waiting)) {
            self.deadlines.remove(&(old.pay_by, order_id));
        }
        self.deadlines.insert((claim.pay_by, order_id));
    }

    pub fn get(&self, order_id: OrderId) -> Option<Claim> {
        self.claims.get(&order_id).map(|(claim, _)| *claim)
    }

    /// The earliest deadline of a `Waiting` claim: when the actor must look again.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.deadlines.first().map(|(pay_by, _)| *pay_by)
    }

    /// A payment of `order_id` asks to begin at `now`.
    pub fn begin_payment(
        &mut self,
        order_id: OrderId,
        now: Millis,
    ) -> Result<Claim, PaymentRefusal> {
        let Some((claim, stage)) = self.claims.get_mut(&order_id) else {
            return Err(PaymentRefusal::NotClaimed);
        };
        match stage {
            Stage::Paying => Err(PaymentRefusal::InProgress),
            Stage::Lapsing => Err(PaymentRefusal::Expired),
            Stage::Waiting if now >= claim.pay_by => Err(PaymentRefusal::Expired),
            Stage::Waiting => {
                *stage = Stage::Paying;
                self.deadlines.remove(&(claim.pay_by, order_id));
                Ok(*claim)
            }
        }
    }

    /// A payment begun earlier ended. Paid: the claim is done. Not paid: it waits again — or,
    /// past its deadline, lapses now (returned, `Lapsing`, for the actor to settle).
    pub fn end_payment(&mut self, order_id: OrderId, paid: bool, now: Millis) -> Option<OrderId> {
        let Some((claim, stage)) = self.claims.get_mut(&order_id) else {
            return None;
        };
        if *stage != Stage::Paying {
            return None;
        }
        if paid {
            self.claims.remove(&order_id);
            return None;
        }
        if now >= claim.pay_by {
            *stage = Stage::Lapsing;
            return Some(order_id);
        }
        *stage = Stage::Waiting;
        self.deadlines.insert((claim.pay_by, order_id));
        None
    }

    /// The `Waiting` claims whose deadline has come at `now`, now `Lapsing`.
    pub fn due(&mut self, now: Millis) -> Vec<OrderId> {
        let mut due = Vec::new();
        while let Some(&(pay_by, order_id)) = self.deadlines.first() {
            if pay_by > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some((_, stage)) = self.claims.get_mut(&order_id) {
                *stage = Stage::Lapsing;
                due.push(order_id);
            }
        }
        due
    }

    /// A quantity change begun with `begin_payment` (which holds the claim the same way)
    /// ended: the claim now holds `quantity` units when the change was stored. It waits again —
    /// or, past its deadline, lapses now (returned, as `end_payment` does).
    pub fn end_change(
        &mut self,
        order_id: OrderId,
        quantity: Option<i64>,
        now: Millis,
    ) -> Option<OrderId> {
        if let (Some(quantity), Some((claim, Stage::Paying))) =
            (quantity, self.claims.get_mut(&order_id))
        {
            claim.quantity = quantity;
        }
        self.end_payment(order_id, false, now)
    }

    /// The store settled a lapse: the claim is gone either way (cancelled by the lapse, or
    /// changed by someone else first). Returns it, for the units when the lapse took them.
    pub fn settled(&mut self, order_id: OrderId) -> Option<Claim> {
        self.claims.remove(&order_id).map(|(claim, _)| claim)
    }

    /// A lapse could not be stored (the store did not answer): the claim waits to be lapsed
    /// again at the next look.
    pub fn retry_lapse(&mut self, order_id: OrderId) {
        if let Some((claim, stage)) = self.claims.get_mut(&order_id) {
            if *stage == Stage::Lapsing {
                *stage = Stage::Waiting;
                self.deadlines.insert((claim.pay_by, order_id));
            }
        }
    }

    /// The order was cancelled or paid elsewhere: the claim ends.
    pub fn forget(&mut self, order_id: OrderId) -> Option<Claim> {
        let (claim, stage) = self.claims.remove(&order_id)?;
        if stage == Stage::Waiting {
            self.deadlines.remove(&(claim.pay_by, order_id));
        }
        Some(claim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(pay_by: Millis) -> Claim {
        Claim {
            customer_id: 7,
            quantity: 2,
            round: 1,
            pay_by,
        }
    }

    /// A payment asking 1 ms before the deadline begins, and no lapse touches it; one asking at
    /// the deadline is refused; the deadline lapses exactly the waiting claims.
    #[test]
    fn a_payment_and_its_deadline_are_decided_one_way() {
        let mut claims = Claims::default();
        claims.insert(1, claim(1_000));
        claims.insert(2, claim(1_000));
        claims.insert(3, claim(2_000));
        assert_eq!(claims.next_deadline(), Some(1_000));
        assert!(claims.begin_payment(1, 999).is_ok());
        assert_eq!(claims.begin_payment(2, 1_000), Err(PaymentRefusal::Expired));
        assert_eq!(
            claims.begin_payment(1, 999),
            Err(PaymentRefusal::InProgress)
        );
        assert_eq!(claims.due(1_000), vec![2]);
        assert_eq!(claims.begin_payment(2, 999), Err(PaymentRefusal::Expired));
        assert_eq!(claims.next_deadline(), Some(2_000));
        // The payment that began in time fails for want of money after the deadline: it
        // lapses now.
        assert_eq!(claims.end_payment(1, false, 1_001), Some(1));
        assert_eq!(claims.settled(1), Some(claim(1_000)));
        assert_eq!(claims.settled(2), Some(claim(1_000)));
        // Paid in time: gone, never lapsed.
        assert!(claims.begin_payment(3, 1_999).is_ok());
        assert_eq!(claims.end_payment(3, true, 2_500), None);
        assert!(claims.due(5_000).is_empty());
        assert!(claims.is_empty());
        assert_eq!(claims.begin_payment(3, 0), Err(PaymentRefusal::NotClaimed));
    }

    /// A failed payment before the deadline waits again; a lapse that could not be stored is
    /// tried again; a cancelled claim is forgotten with its deadline.
    #[test]
    fn claims_wait_again_and_are_forgotten() {
        let mut claims = Claims::default();
        claims.insert(1, claim(1_000));
        claims.insert(2, claim(1_500));
        assert!(claims.begin_payment(1, 10).is_ok());
        assert_eq!(claims.next_deadline(), Some(1_500));
        assert_eq!(claims.end_payment(1, false, 20), None);
        assert_eq!(claims.next_deadline(), Some(1_000));
        assert_eq!(claims.due(1_000), vec![1]);
        claims.retry_lapse(1);
        assert_eq!(claims.due(1_000), vec![1]);
        assert_eq!(claims.forget(2), Some(claim(1_500)));
        assert_eq!(claims.next_deadline(), None);
        assert!(claims.due(10_000).is_empty());
    }
}
