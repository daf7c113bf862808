//! The ranges every number about a deal or an order must lie in — one home for each bound, used
//! by the API's validation, the engine's own checks and the store's schema (the migrations
//! repeat them as `CHECK` constraints; `tests/api/overflow.rs` proves the three agree).
//!
//! The bounds are chosen so that no arithmetic the engine does on valid values can overflow an
//! `i64`: the largest order total is `PRICE_MAX_MINOR × ORDER_QUANTITY_MAX` = 10^15, and the
//! largest unit sum `UNITS_MAX + UNITS_MAX` = 2 × 10^9. Arithmetic on values from outside is
//! done only after they are checked against these, and with checked operations all the same.

use crate::Millis;
use crate::deal::DealRecord;

/// Units a deal may have at most.
pub const UNITS_MAX: i64 = 1_000_000_000;
/// Units one order may ask for at most.
pub const ORDER_QUANTITY_MAX: i64 = 10_000;
/// The largest price, in minor units (1,000,000,000.00).
pub const PRICE_MAX_MINOR: i64 = 100_000_000_000;
/// A deal's window may not be longer than this.
pub const WINDOW_MAX_MS: Millis = 12 * 3_600_000;
/// Longest product name, in characters.
pub const PRODUCT_NAME_MAX_CHARS: usize = 200;

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
        if self.round < 1 {
            fail("round", format!("{} is below 1", self.round));
        }
        problems
    }
}
