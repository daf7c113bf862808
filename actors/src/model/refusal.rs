//! Why the engine says no: to an order, to a change of a deal's units. Each maps to one error
//! code of the API.

use crate::limits::{ORDER_QUANTITY_MAX, UNITS_MAX};

/// Why a reservation was refused. Each maps to one error code of the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    #[error("quantity must be from 1 to {}", ORDER_QUANTITY_MAX)]
    InvalidQuantity,
    #[error("the deal has not started yet")]
    NotStarted,
    #[error("the deal has expired")]
    Expired,
    #[error("the deal is closed")]
    Closed,
    #[error("not enough units left: {available_units} available")]
    SoldOut { available_units: i64 },
    #[error("the per-customer limit is {limit} units and {already} are already ordered")]
    LimitExceeded { limit: i64, already: i64 },
}

/// Why a change of the deal's units was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResizeError {
    #[error("{sold_units} units are already sold; total_units cannot go below that")]
    BelowSold { sold_units: i64 },
    /// The change would take `total_units` past [`UNITS_MAX`] (or below zero): refused before
    /// any arithmetic could wrap.
    #[error("total_units must be from 0 to {}", UNITS_MAX)]
    OutOfRange,
}

/// Why an order was not placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error(transparent)]
    Refused(#[from] ReserveError),
    /// A bounded queue on the way to the store was full; nothing was reserved.
    #[error("the engine is overloaded; retry shortly")]
    Overloaded,
    /// The batch holding this order could not be committed; its units went back to the deal.
    #[error("the order could not be stored")]
    StoreFailed,
    /// Another node took the deal over (its fencing epoch moved on): nothing was stored.
    #[error("the deal moved to another node; nothing was stored")]
    OwnerChanged,
    /// The store was sent the order's batch and its answer was lost; the store did not say
    /// in time whether it committed. The units stay taken until it does.
    #[error("the order may or may not have been stored: the store did not say in time")]
    OutcomeUnknown,
    /// The engine stopped before the order was decided.
    #[error("the engine is shutting down")]
    ShuttingDown,
}
