//! `GET /orders/statistics`: a customer's own figures; an admin's over every order, with each
//! deal's sale, the last 30 days by day, and the ten newest orders. Computed from the rows on
//! every call (exact: nothing that could drift from the orders).

use std::collections::BTreeMap;

use actix_web::web;
use actors::clock::{DAY_MS, day_of, now_ms};
use actors::journal::OrderStatus;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::State;
use crate::wire::{Money, OrderView};

/// Days of `sales_by_day`, today included.
const DAYS: i64 = 30;

#[derive(Debug, Serialize, ToSchema)]
pub struct Statistics {
    pub total_orders: i64,
    /// Orders by status (every status, 0 included).
    pub by_status: BTreeMap<String, i64>,
    /// What the orders that hold units cost (cancelled ones left out). For an admin: all
    /// customers' orders.
    #[schema(value_type = String, example = "120.00")]
    pub total_spent: Money,
    /// Admins: the same money, as the sellers' revenue.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "120.00")]
    pub revenue: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deals: Option<Vec<DealSaleView>>,
    /// Admins: the last 30 UTC days, oldest first, each with its orders and revenue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sales_by_day: Option<Vec<DaySalesView>>,
    /// Admins: the ten newest orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_orders: Option<Vec<OrderView>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DealSaleView {
    pub deal_id: i64,
    pub product_name: String,
    pub total_units: i64,
    /// Units sold in the deal's current round.
    pub sold_units: i64,
    /// `sold_units` of `total_units`, in percent with one decimal.
    pub percent_sold: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DaySalesView {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    pub orders: i64,
    #[schema(value_type = String, example = "120.00")]
    pub revenue: Money,
}

pub async fn statistics(state: State, caller: Caller) -> Result<web::Json<Statistics>, ApiError> {
    let customer = (!caller.is_admin()).then_some(caller.user_id);
    let totals = state.store.order_totals(customer).await?;
    let mut by_status: BTreeMap<String, i64> = OrderStatus::ALL
        .iter()
        .map(|status| (status.as_str().to_owned(), 0))
        .collect();
    by_status.extend(totals.by_status);
    let mut statistics = Statistics {
        total_orders: totals.total_orders,
        by_status,
        total_spent: Money(totals.total_spent),
        revenue: None,
        deals: None,
        sales_by_day: None,
        recent_orders: None,
    };
    if customer.is_some() {
        return Ok(web::Json(statistics));
    }
    statistics.revenue = Some(Money(totals.total_spent));
    let deals = state.store.deal_sales().await?;
    statistics.deals = Some(
        deals
            .into_iter()
            .map(|deal| DealSaleView {
                percent_sold: if deal.total_units > 0 {
                    (deal.sold_units as f64 * 1000.0 / deal.total_units as f64).round() / 10.0
                } else {
                    0.0
                },
                deal_id: deal.deal_id,
                product_name: deal.product_name,
                total_units: deal.total_units,
                sold_units: deal.sold_units,
            })
            .collect(),
    );
    let today = day_of(now_ms());
    let first = today - (DAYS - 1);
    let mut days: BTreeMap<i64, (i64, i64)> = (first..=today).map(|day| (day, (0, 0))).collect();
    for day in state.store.sales_by_day(first * DAY_MS).await? {
        days.insert(day.day, (day.orders, day.revenue));
    }
    statistics.sales_by_day = Some(
        days.into_iter()
            .filter(|(day, _)| *day >= first)
            .map(|(day, (orders, revenue))| DaySalesView {
                date: crate::wire::rfc3339(day * DAY_MS)[..10].to_owned(),
                orders,
                revenue: Money(revenue),
            })
            .collect(),
    );
    let recent = state.store.newest_orders(10).await?;
    statistics.recent_orders = Some(recent.iter().map(OrderView::from).collect());
    Ok(web::Json(statistics))
}
