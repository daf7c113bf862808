//! Order statistics, computed from the rows themselves every time (exact by construction: no
//! counter that could drift from the orders). Fast on a big store is still to be shown (issue
//! 12's figure of 1,000,000 orders); the customer's figures use the customer's index.

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
        const SQL: &str = "SELECT status, COUNT(*), CAST(COALESCE(SUM(total_price), 0) AS BIGINT) FROM orders \
                           WHERE ($1 IS NULL OR customer_id = $1) GROUP BY status";
        let rows: Vec<(String, i64, i64)> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(customer_id).fetch_all(pool).await)?;
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

    /// Orders that hold units, and their revenue, per UTC day from `since`.
    pub async fn sales_by_day(&self, since: Millis) -> Result<Vec<DaySales>, StoreError> {
        const SQL: &str = "SELECT created_at / 86400000 AS day, COUNT(*) AS orders, \
                           CAST(COALESCE(SUM(total_price), 0) AS BIGINT) AS revenue FROM orders \
                           WHERE created_at >= $1 AND status <> 'CANCELLED' GROUP BY created_at / 86400000 ORDER BY day";
        let days: Vec<DaySales> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(since).fetch_all(pool).await)?;
        Ok(days)
    }
}
