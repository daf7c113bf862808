//! Row types as both backends return them, and their conversion into the engine's records.

use actors::deal::{DealRecord, Recurrence};
use actors::journal::{OrderRecord, OrderStatus, PaymentStatus};
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};

use super::error::StoreError;

/// Decodes and checks one deal row, naming the deal and the column of the first thing wrong
/// with it: a value of the wrong type (SQLite before its tables were STRICT), or one outside
/// the range the engine accepts (`DealRecord::problems`).
pub(super) fn decode_deal<'r, R>(row: &'r R) -> Result<DealRecord, StoreError>
where
    R: Row,
    DealRow: FromRow<'r, R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    &'static str: ColumnIndex<R>,
{
    let deal_id = row.try_get::<i64, _>("id").unwrap_or(0);
    let malformed = |column: &str, problem: String| StoreError::Malformed {
        deal_id,
        column: column.trim_matches('"').to_owned(),
        problem,
    };
    let decoded = DealRow::from_row(row).map_err(|error| match error {
        sqlx::Error::ColumnDecode { index, source } => malformed(&index, source.to_string()),
        other => StoreError::Database(other),
    })?;
    let record = decoded.into_record()?;
    match record.problems().into_iter().next() {
        Some(problem) => Err(malformed(problem.column, problem.problem)),
        None => Ok(record),
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub phone_number: Option<String>,
    pub password_hash: String,
    pub user_type: String,
    pub balance: i64,
    pub created_at: i64,
}

/// A user as the service sees it: never with the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub phone_number: Option<String>,
    pub user_type: String,
    pub balance: i64,
    pub created_at: i64,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            username: row.username,
            email: row.email,
            phone_number: row.phone_number,
            user_type: row.user_type,
            balance: row.balance,
            created_at: row.created_at,
        }
    }
}

/// A deal flat, as stored; also what cluster mode's mirror feed carries between nodes.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct DealRow {
    pub id: i64,
    pub product_name: String,
    pub actual_price: i64,
    pub final_price: i64,
    pub total_units: i64,
    pub available_units: i64,
    pub starts_at: i64,
    pub expires_at: i64,
    pub per_customer_limit: Option<i64>,
    /// Absent from the feed of a node that predates payment windows: none.
    #[serde(default)]
    pub payment_window_secs: Option<i64>,
    pub closed: bool,
    pub recurrence: String,
    pub round: i64,
    pub rearmed_day: i64,
    pub owner_epoch: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&DealRecord> for DealRow {
    fn from(record: &DealRecord) -> Self {
        Self {
            id: record.id,
            product_name: record.product_name.clone(),
            actual_price: record.actual_price,
            final_price: record.final_price,
            total_units: record.total_units,
            available_units: record.available_units,
            starts_at: record.starts_at,
            expires_at: record.expires_at,
            per_customer_limit: record.per_customer_limit,
            payment_window_secs: record.payment_window_secs,
            closed: record.closed,
            recurrence: record.recurrence.as_str().to_owned(),
            round: record.round,
            rearmed_day: record.rearmed_day,
            owner_epoch: record.owner_epoch,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

impl DealRow {
    pub fn into_record(self) -> Result<DealRecord, StoreError> {
        let recurrence =
            Recurrence::parse(&self.recurrence).ok_or_else(|| StoreError::Malformed {
                deal_id: self.id,
                column: "recurrence".into(),
                problem: format!("{:?} is neither \"none\" nor \"daily\"", self.recurrence),
            })?;
        Ok(DealRecord {
            id: self.id,
            product_name: self.product_name,
            actual_price: self.actual_price,
            final_price: self.final_price,
            total_units: self.total_units,
            available_units: self.available_units,
            starts_at: self.starts_at,
            expires_at: self.expires_at,
            per_customer_limit: self.per_customer_limit,
            payment_window_secs: self.payment_window_secs,
            closed: self.closed,
            recurrence,
            round: self.round,
            rearmed_day: self.rearmed_day,
            owner_epoch: self.owner_epoch,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct OrderRow {
    pub id: i64,
    pub deal_id: i64,
    pub round: i64,
    pub customer_id: i64,
    pub quantity: i64,
    pub unit_price: i64,
    pub total_price: i64,
    pub status: String,
    pub payment_status: String,
    pub pay_by: Option<i64>,
    pub paid_at: Option<i64>,
    pub idempotency_key: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl OrderRow {
    pub fn into_record(self) -> OrderRecord {
        OrderRecord {
            id: self.id,
            deal_id: self.deal_id,
            round: self.round,
            customer_id: self.customer_id,
            quantity: self.quantity,
            unit_price: self.unit_price,
            total_price: self.total_price,
            // The column's CHECK constraint admits only the four values.
            status: OrderStatus::parse(&self.status).unwrap_or(OrderStatus::Open),
            payment_status: PaymentStatus::parse(&self.payment_status)
                .unwrap_or(PaymentStatus::NotRequired),
            pay_by: self.pay_by,
            paid_at: self.paid_at,
            idempotency_key: self.idempotency_key,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
