//! Fixtures shared by the engine's integration tests.

use actors::clock::now_ms;
use actors::deal::{DealRecord, Recurrence};

/// Deal 1: open for the next hour, `units` of everything, no per-customer limit.
pub fn open_deal(units: i64) -> DealRecord {
    let now = now_ms();
    DealRecord {
        id: 1,
        product_name: "Lamp".into(),
        actual_price: 2_000,
        final_price: 1_000,
        total_units: units,
        available_units: units,
        starts_at: now - 1_000,
        expires_at: now + 3_600_000,
        per_customer_limit: None,
        payment_window_secs: None,
        closed: false,
        recurrence: Recurrence::None,
        round: 1,
        rearmed_day: 0,
        owner_epoch: 0,
        created_at: now,
        updated_at: now,
    }
}
