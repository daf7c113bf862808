//! The plain data of a deal: what the store keeps and the API shows.

use crate::{DealId, Millis};

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
    pub closed: bool,
    pub recurrence: Recurrence,
    /// Which sale this is: 1 at creation, +1 at every daily re-arm.
    pub round: i64,
    /// The day number (days since 1970, UTC) of the last re-arm; the re-arm is keyed by it so
    /// it happens at most once per date, across restarts and nodes.
    pub rearmed_day: i64,
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
