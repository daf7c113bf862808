//! The JSON shapes of the API: money as two-decimal strings, instants as RFC 3339 UTC,
//! deals, orders, users and pages as API.md fixes them.

use actors::Millis;
use actors::deal::DealRecord;
use actors::journal::OrderRecord;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use crate::store::User;

/// An amount in integer minor units (cents). Shown as `"10.00"`; read from a string or a
/// number with at most two decimals, never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money(pub i64);

/// Largest amount accepted: keeps `price × quantity` far from overflow.
use actors::limits::PRICE_MAX_MINOR as MONEY_MAX_MINOR;

impl Money {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.starts_with('-') {
            return Err("must not be negative".into());
        }
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || (text.contains('.') && fraction.is_empty())
        {
            return Err("must be a decimal amount such as \"10.00\"".into());
        }
        if fraction.len() > 2 {
            return Err("must have at most two decimal places".into());
        }
        let too_large = || format!("must be at most {}", Money(MONEY_MAX_MINOR));
        let whole: i64 = whole.parse().map_err(|_| too_large())?;
        let cents: i64 = format!("{fraction:0<2}")
            .parse()
            .map_err(|_| "must be a decimal amount".to_string())?;
        let minor = whole
            .checked_mul(100)
            .and_then(|m| m.checked_add(cents))
            .filter(|m| *m <= MONEY_MAX_MINOR);
        minor.map(Money).ok_or_else(too_large)
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => text,
            serde_json::Value::Number(number) => number.to_string(),
            _ => {
                return Err(serde::de::Error::custom(
                    "must be a decimal amount such as \"10.00\"",
                ));
            }
        };
        Money::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The schema of an amount in a request: API.md takes a decimal string (`"10.00"`) or a
/// number (`10`, `59.5`), at most two decimals, never negative. Answers always carry the string.
pub struct MoneyInput;

impl utoipa::PartialSchema for MoneyInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^\s*[0-9]+(\.[0-9]{1,2})?\s*$")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(0)),
            )
            .description(Some(
                "an amount: a decimal string such as \"49.99\" or a number, at most two decimals",
            ))
            .into()
    }
}

// Give a field of this type no doc comment: utoipa then wraps the `oneOf` in an `allOf` with
// an `object` part, a schema no value satisfies (schemathesis refuses it twice over in
// `.ci/schemathesis.sh`). Say what the field means in the struct's doc instead.
impl utoipa::ToSchema for MoneyInput {}

/// An instant as RFC 3339 in UTC (`2026-11-22T10:30:00Z`, milliseconds when there are some).
pub fn rfc3339(at: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(at)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// An instant read from RFC 3339 (any offset, converted to UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant(pub Millis);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(text.trim())
            .map(|at| Instant(at.timestamp_millis()))
            .map_err(|_| {
                serde::de::Error::custom(
                    "must be an RFC 3339 instant such as \"2026-11-22T10:30:00Z\"",
                )
            })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DealView {
    pub id: i64,
    pub product_name: String,
    #[schema(value_type = String, example = "99.00")]
    pub actual_price: Money,
    #[schema(value_type = String, example = "49.00")]
    pub final_price: Money,
    pub total_units: i64,
    pub available_units: i64,
    /// SCHEDULED, ACTIVE, SOLD_OUT, EXPIRED or CLOSED, derived at the moment of the answer.
    pub status: &'static str,
    #[schema(format = DateTime)]
    pub starts_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub per_customer_limit: Option<i64>,
    /// Seconds an order has to be paid in; null: no payment step.
    pub payment_window_secs: Option<i64>,
    /// `none` or `daily`.
    pub recurrence: &'static str,
    /// Which sale of a daily deal this is (1 for the first).
    pub round: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl DealView {
    pub fn new(deal: &DealRecord, now: Millis) -> Self {
        let status = actors::deal::DealStatus::derive(
            deal.closed,
            deal.starts_at,
            deal.expires_at,
            deal.available_units,
            now,
        );
        Self {
            id: deal.id,
            product_name: deal.product_name.clone(),
            actual_price: Money(deal.actual_price),
            final_price: Money(deal.final_price),
            total_units: deal.total_units,
            available_units: deal.available_units,
            status: status.as_str(),
            starts_at: rfc3339(deal.starts_at),
            expires_at: rfc3339(deal.expires_at),
            per_customer_limit: deal.per_customer_limit,
            payment_window_secs: deal.payment_window_secs,
            recurrence: deal.recurrence.as_str(),
            round: deal.round,
            created_at: rfc3339(deal.created_at),
            updated_at: rfc3339(deal.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: i64,
    pub deal_id: i64,
    pub customer_id: i64,
    pub quantity: i64,
    #[schema(value_type = String, example = "49.00")]
    pub unit_price: Money,
    #[schema(value_type = String, example = "98.00")]
    pub total_price: Money,
    /// OPEN, APPROVED, CANCELLED or FULFILLED.
    pub status: &'static str,
    /// NOT_REQUIRED, UNPAID (to be paid by `pay_by`), PAID or REFUNDED.
    pub payment_status: &'static str,
    /// When an unpaid order is cancelled by the engine; null when no payment is required.
    #[schema(format = DateTime)]
    pub pay_by: Option<String>,
    #[schema(format = DateTime)]
    pub paid_at: Option<String>,
    /// The deal's round the order was placed in.
    pub round: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&OrderRecord> for OrderView {
    fn from(order: &OrderRecord) -> Self {
        Self {
            id: order.id,
            deal_id: order.deal_id,
            customer_id: order.customer_id,
            quantity: order.quantity,
            unit_price: Money(order.unit_price),
            total_price: Money(order.total_price),
            status: order.status.as_str(),
            payment_status: order.payment_status.as_str(),
            pay_by: order.pay_by.map(rfc3339),
            paid_at: order.paid_at.map(rfc3339),
            round: order.round,
            created_at: rfc3339(order.created_at),
            updated_at: rfc3339(order.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub phone_number: Option<String>,
    /// `customer` or `admin`.
    pub user_type: String,
    /// The wallet, shown to its owner and to admins.
    #[schema(value_type = String, example = "120.00")]
    pub balance: Money,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            email: user.email.clone(),
            phone_number: user.phone_number.clone(),
            user_type: user.user_type.clone(),
            balance: Money(user.balance),
            created_at: rfc3339(user.created_at),
        }
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
}
