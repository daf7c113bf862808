//! The ranges every number about a deal or an order must lie in — one home for each bound, used
//! by the API's validation, the engine's own checks (`DealRecord::problems`) and the store's
//! schema (the migrations repeat them as checks; `tests/api/overflow.rs` proves they agree).
//!
//! The bounds are chosen so that no arithmetic the engine does on valid values can overflow an
//! `i64`: the largest order total is `PRICE_MAX_MINOR × ORDER_QUANTITY_MAX` = 10^15, and the
//! largest unit sum `UNITS_MAX + UNITS_MAX` = 2 × 10^9. Arithmetic on values from outside is
//! done only after they are checked against these, and with checked operations all the same.

use crate::Millis;

/// Units a deal may have at most.
pub const UNITS_MAX: i64 = 1_000_000_000;
/// Units one order may ask for at most.
pub const ORDER_QUANTITY_MAX: i64 = 10_000;
/// The largest price, in minor units (1,000,000,000.00).
pub const PRICE_MAX_MINOR: i64 = 100_000_000_000;
/// A deal's window may not be longer than this.
pub const WINDOW_MAX_MS: Millis = 12 * 3_600_000;
/// A deal's payment window may not be longer than this (a day), in seconds.
pub const PAYMENT_WINDOW_SECS_MAX: i64 = 86_400;
/// The most a wallet may hold, in minor units (100,000,000,000.00); the store checks it too.
pub const BALANCE_MAX_MINOR: i64 = 10_000_000_000_000;
/// The most one credit may add, in minor units (1,000,000,000.00).
pub const CREDIT_MAX_MINOR: i64 = PRICE_MAX_MINOR;
/// Longest product name, in characters.
pub const PRODUCT_NAME_MAX_CHARS: usize = 200;
