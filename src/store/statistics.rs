//! Order statistics. A customer's figures are computed from their orders (through the
//! customer's index). An admin's come from `order_stats`: orders and revenue by day of placing,
//! status and slot, changed in the same transaction as every change to the orders they count
//! (the writer's batch, a status change, a lapse, a quantity change, a served waitlist entry),
//! so they are exact — never a counter beside the rows that could drift — and read a few hundred
//! rows instead of every order (docs/BENCHMARKS.md; `stats_rows`: where an order counts;
//! `tests/api/lifecycle.rs`' `statistics_equal_a_recount_of_the_orders` recounts).

use std::collections::BTreeMap;

use actors::{CustomerId, Millis};

use super::error::StoreError;
use super::pool::{Backend, Store, on_pool};

/// A customer's figures (admins: over every order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderTotals {
    pub total_orders: i64,
    pub by_status: BTreeMap<String, i64>,
    /// Totals of the orders that hold units (not cancelled), minor units.
    pub total_spent: i64,
}

/// One deal's sale, for admins.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DealSale {
    pub deal_id: i64,
    pub product_name: String,
    pub total_units: i64,
    pub sold_units: i64,
}

/// One day's sales (UTC), for admins.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DaySales {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub orders: i64,
    pub revenue: i64,
}

impl Store {
    /// Orders by status and what they cost, for one customer or (`None`) for all.
    pub async fn order_totals(
        &self,
        customer_id: Option<CustomerId>,
    ) -> Result<OrderTotals, StoreError> {
        // Two texts, not `($1 IS NULL OR customer_id = $1)`: with the OR neither store uses the
        // customer index, and a customer's figures scanned every order (81 ms at 1,000,000
        // orders on SQLite for a customer with none; scripts/statistics.sh).
        const ALL: &str = "SELECT status, CAST(SUM(orders) AS BIGINT), CAST(SUM(revenue) AS BIGINT) FROM order_stats \
                           GROUP BY status HAVING SUM(orders) <> 0";
        const ONE: &str = "SELECT status, COUNT(*), CAST(COALESCE(SUM(total_price), 0) AS BIGINT) FROM orders \
                           WHERE customer_id = $1 GROUP BY status";
        let rows: Vec<(String, i64, i64)> = match customer_id {
            Some(customer_id) => {
                on_pool!(self, pool => sqlx::query_as(ONE).bind(customer_id).fetch_all(pool).await)?
            }
            None => on_pool!(self, pool => sqlx::query_as(ALL).fetch_all(pool).await)?,
        };
        let mut totals = OrderTotals::default();
        for (status, count, total) in rows {
            totals.total_orders += count;
            if status != "CANCELLED" {
                totals.total_spent += total;
            }
            totals.by_status.insert(status, count);
        }
        Ok(totals)
    }

    /// Every deal's units sold in its current round.
    pub async fn deal_sales(&self) -> Result<Vec<DealSale>, StoreError> {
        const SQL: &str = "SELECT id AS deal_id, product_name, total_units, total_units - available_units AS sold_units \
                           FROM deals ORDER BY id";
        let sales: Vec<DealSale> =
            on_pool!(self, pool => sqlx::query_as(SQL).fetch_all(pool).await)?;
        Ok(sales)
    }

    /// The newest orders (no count: the listing's would scan every order).
    pub async fn newest_orders(
        &self,
        limit: i64,
    ) -> Result<Vec<actors::journal::OrderRecord>, StoreError> {
        const SQL: &str = "SELECT * FROM orders ORDER BY id DESC LIMIT $1";
        let rows: Vec<super::rows::OrderRow> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(limit).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(super::rows::OrderRow::into_record)
            .collect())
    }

    /// Orders that hold units, and their revenue, per UTC day from `since`.
    pub async fn sales_by_day(&self, since: Millis) -> Result<Vec<DaySales>, StoreError> {
        const SQL: &str = "SELECT day, CAST(SUM(orders) AS BIGINT) AS orders, CAST(SUM(revenue) AS BIGINT) AS revenue \
                           FROM order_stats WHERE day >= $1 AND status <> 'CANCELLED' \
                           GROUP BY day HAVING SUM(orders) <> 0 ORDER BY day";
        let days: Vec<DaySales> = on_pool!(self, pool => sqlx::query_as(SQL).bind(actors::clock::day_of(since)).fetch_all(pool).await)?;
        Ok(days)
    }
}
