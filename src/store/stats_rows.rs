//! Where an order counts in `order_stats` — the UTC day it was placed and its deal's slot — and
//! the upsert that moves it. Shared by every transaction that changes orders (the SQLite
//! writer's batch included), so it imports nothing of the store.

use actors::{DealId, Millis};

/// Deals are spread over this many statistics rows a day and status (so concurrent
/// transactions on different deals seldom update the same row). The Postgres batch statement
/// and the migrations say `deal_id % 64` in SQL.
const SLOTS: i64 = 64;

/// Adds `orders` and `revenue` (negative to take away) to the statistics of a day, status and
/// slot: `$1` day, `$2` status, `$3` slot, `$4` orders, `$5` revenue. Run inside the
/// transaction of the change it counts. Every number is bound as an `i64` (`1_i64`): Postgres
/// prepares the text once, and an `i32` bound later is refused as "incorrect binary data".
pub(super) const STATS_ADD: &str = "INSERT INTO order_stats (day, status, slot, orders, revenue) VALUES ($1, $2, $3, $4, $5) \
    ON CONFLICT (day, status, slot) DO UPDATE SET orders = order_stats.orders + excluded.orders, \
    revenue = order_stats.revenue + excluded.revenue";

/// An order's statistics row: the day it was placed and its deal's slot.
pub(super) fn stats_key(created_at: Millis, deal_id: DealId) -> (i64, i64) {
    (actors::clock::day_of(created_at), deal_id.rem_euclid(SLOTS))
}
