//! The plain data of a deal: what the store keeps and the API shows, what the engine loads,
//! and the check of a stored deal against the engine's limits.

use std::collections::HashMap;

use crate::limits::{PRICE_MAX_MINOR, PRODUCT_NAME_MAX_CHARS, UNITS_MAX, WINDOW_MAX_MS};
use crate::{CustomerId, DealId, Millis};

/// Whether a deal re-arms itself every day at 00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recurrence {
    None,
    Daily,
}

impl Recurrence {
    pub fn as_str(self) -> &'static str {
        match self {
            Recurrence::None => "none",
            Recurrence::Daily => "daily",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(Recurrence::None),
            "daily" => Some(Recurrence::Daily),
            _ => None,
        }
    }
}

/// A deal as stored. Prices are integer minor units; instants are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealRecord {
    pub id: DealId,
    pub product_name: String,
    pub actual_price: i64,
    pub final_price: i64,
    pub total_units: i64,
    pub available_units: i64,
    pub starts_at: Millis,
    pub expires_at: Millis,
    pub per_customer_limit: Option<i64>,
    /// Seconds an order has to be paid in; `None`: no payment step (orders need no payment).
    pub payment_window_secs: Option<i64>,
    pub closed: bool,
    pub recurrence: Recurrence,
    /// Which sale this is: 1 at creation, +1 at every daily re-arm.
    pub round: i64,
    /// The day number (days since 1970, UTC) of the last re-arm; the re-arm is keyed by it so
    /// it happens at most once per date, across restarts and nodes.
    pub rearmed_day: i64,
    /// The fencing epoch this node holds the deal under (cluster mode: taking ownership
    /// increments it in the store; every batch commits only while the store still has it).
    /// 0 on a single node, where nobody takes the deal over.
    pub owner_epoch: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Everything about a deal an admin may change, units aside (those move through `resize`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealTerms {
    pub product_name: String,
    pub actual_price: i64,
    pub final_price: i64,
    pub starts_at: Millis,
    pub expires_at: Millis,
    pub per_customer_limit: Option<i64>,
    pub payment_window_secs: Option<i64>,
    pub recurrence: Recurrence,
}

impl DealRecord {
    pub fn terms(&self) -> DealTerms {
        DealTerms {
            product_name: self.product_name.clone(),
            actual_price: self.actual_price,
            final_price: self.final_price,
            starts_at: self.starts_at,
            expires_at: self.expires_at,
            per_customer_limit: self.per_customer_limit,
            payment_window_secs: self.payment_window_secs,
            recurrence: self.recurrence,
        }
    }
}

/// A deal's status, derived at an instant from its window, its closed flag and its stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DealStatus {
    Scheduled,
    Active,
    SoldOut,
    Expired,
    Closed,
}

impl DealStatus {
    /// Closed wins over everything (an admin's word); then the window; then the stock.
    /// The window is half-open: `[starts_at, expires_at)`.
    pub fn derive(
        closed: bool,
        starts_at: Millis,
        expires_at: Millis,
        available_units: i64,
        now: Millis,
    ) -> Self {
        if closed {
            DealStatus::Closed
        } else if now >= expires_at {
            DealStatus::Expired
        } else if now < starts_at {
            DealStatus::Scheduled
        } else if available_units == 0 {
            DealStatus::SoldOut
        } else {
            DealStatus::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DealStatus::Scheduled => "SCHEDULED",
            DealStatus::Active => "ACTIVE",
            DealStatus::SoldOut => "SOLD_OUT",
            DealStatus::Expired => "EXPIRED",
            DealStatus::Closed => "CLOSED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Scheduled,
            Self::Active,
            Self::SoldOut,
            Self::Expired,
            Self::Closed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// A deal as loaded from the store, with the units each customer holds in its current round.
#[derive(Debug, Clone)]
pub struct LoadedDeal {
    pub record: DealRecord,
    pub units_by_customer: HashMap<CustomerId, i64>,
    /// Its open, unpaid orders of the current round (a deal with a payment window).
    pub claims: Vec<(crate::OrderId, super::order::Claim)>,
    /// Its waiting waitlist entries of the current round, in the order they joined.
    pub waitlist: Vec<super::order::WaitingEntry>,
}

/// One thing wrong with a stored deal: the column and what is wrong with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub column: &'static str,
    pub problem: String,
}

impl DealRecord {
    /// What is wrong with this record, if anything: a deal the engine would never have written
    /// (a row edited by hand, or written by a build with a bug). Empty for a sound record.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut fail =
            |column: &'static str, problem: String| problems.push(Problem { column, problem });
        let name_chars = self.product_name.trim().chars().count();
        if name_chars == 0 || name_chars > PRODUCT_NAME_MAX_CHARS {
            fail(
                "product_name",
                format!("must be 1–{PRODUCT_NAME_MAX_CHARS} characters"),
            );
        }
        if !(1..=PRICE_MAX_MINOR).contains(&self.actual_price) {
            fail(
                "actual_price",
                format!("{} is outside 1..={PRICE_MAX_MINOR}", self.actual_price),
            );
        }
        if !(1..=self.actual_price.min(PRICE_MAX_MINOR)).contains(&self.final_price) {
            fail(
                "final_price",
                format!("{} is outside 1..=actual_price", self.final_price),
            );
        }
        if !(0..=UNITS_MAX).contains(&self.total_units) {
            fail(
                "total_units",
                format!("{} is outside 0..={UNITS_MAX}", self.total_units),
            );
        }
        if !(0..=self.total_units).contains(&self.available_units) {
            fail(
                "available_units",
                format!("{} is outside 0..=total_units", self.available_units),
            );
        }
        match self.expires_at.checked_sub(self.starts_at) {
            Some(window) if window > 0 && window <= WINDOW_MAX_MS => {}
            _ => fail(
                "expires_at",
                "must be after starts_at, by at most 12 hours".into(),
            ),
        }
        if self
            .per_customer_limit
            .is_some_and(|limit| !(1..=UNITS_MAX).contains(&limit))
        {
            fail(
                "per_customer_limit",
                format!("must be from 1 to {UNITS_MAX} or null"),
            );
        }
        if self
            .payment_window_secs
            .is_some_and(|secs| !(1..=crate::limits::PAYMENT_WINDOW_SECS_MAX).contains(&secs))
        {
            fail(
                "payment_window_secs",
                format!(
                    "must be from 1 to {} or null",
                    crate::limits::PAYMENT_WINDOW_SECS_MAX
                ),
            );
        }
        if self.round < 1 {
            fail("round", format!("{} is below 1", self.round));
        }
        problems
    }
}
