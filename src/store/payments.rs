//! Money: wallets (credits by admins), paying an order from its customer's wallet, and
//! lapsing unpaid claims at their deadline. Every movement of money is a row of
//! `wallet_entries` written in the same transaction as the balance it changes; the unique
//! index on (order, kind) makes a second debit or refund of an order impossible, whatever
//! retries or races do. The refund of a cancelled paid order is in `orders::transition_order`,
//! inside the cancellation's own transaction.

use actors::{CustomerId, DealId, Millis, OrderId};

use super::error::{StoreError, TxError};
use super::pool::{Backend, Store, on_pool};
use super::rows::{User, UserRow};
use super::stats_rows::{STATS_ADD, stats_key};

/// The outcome of a payment attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payment {
    /// Paid now: the order is PAID, the wallet debited once.
    Paid,
    /// The wallet holds less than the order costs: nothing changed.
    InsufficientBalance { balance: i64 },
    /// The order is not open and unpaid any more (paid, cancelled or lapsed first): nothing
    /// changed.
    NotPayable,
}

/// Which users a listing returns.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub user_type: Option<String>,
}

impl Store {
    /// Adds `amount` to the user's wallet, if it stays within `balance_max`; returns the user
    /// afterwards (`None`: no such user). `Err(Conflict)` names `amount` when the wallet would
    /// hold more than allowed.
    pub async fn credit(
        &self,
        user_id: i64,
        amount: i64,
        balance_max: i64,
        now: Millis,
    ) -> Result<Option<User>, StoreError> {
        const CREDIT: &str =
            "UPDATE users SET balance = balance + $2 WHERE id = $1 AND balance <= $3 - $2";
        const ENTRY: &str = "INSERT INTO wallet_entries (user_id, order_id, kind, amount, created_at) VALUES ($1, NULL, 'CREDIT', $2, $3)";
        const USER: &str = "SELECT * FROM users WHERE id = $1";
        let user: Option<UserRow> = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let credited = sqlx::query(CREDIT).bind(user_id).bind(amount).bind(balance_max).execute(&mut *tx).await?.rows_affected();
            if credited == 1 {
                sqlx::query(ENTRY).bind(user_id).bind(amount).bind(now).execute(&mut *tx).await?;
            }
            let user: Option<UserRow> = sqlx::query_as(USER).bind(user_id).fetch_optional(&mut *tx).await?;
            if credited != 1 && user.is_some() {
                return Err(StoreError::Conflict { fields: vec!["amount"] });
            }
            tx.commit().await.map_err(TxError::AtCommit)?;
            user
        });
        Ok(user.map(User::from))
    }

    /// Users, newest first, with their balances.
    pub async fn list_users(
        &self,
        filter: &UserFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<User>, i64), StoreError> {
        const LIST: &str = "SELECT * FROM users WHERE ($1 IS NULL OR user_type = $1) ORDER BY id DESC LIMIT $2 OFFSET $3";
        const COUNT: &str = "SELECT COUNT(*) FROM users WHERE ($1 IS NULL OR user_type = $1)";
        let rows: Vec<UserRow> = on_pool!(self, pool => sqlx::query_as(LIST).bind(&filter.user_type).bind(limit).bind(offset).fetch_all(pool).await)?;
        let count: i64 = on_pool!(self, pool => sqlx::query_scalar(COUNT).bind(&filter.user_type).fetch_one(pool).await)?;
        Ok((rows.into_iter().map(User::from).collect(), count))
    }

    /// Pays an open, unpaid order of `customer_id` from their wallet, in one transaction: the
    /// order becomes PAID, the wallet loses its total, and the debit is written — or nothing.
    /// The deal's actor decided beforehand that the payment came before the deadline.
    pub async fn pay_order(
        &self,
        order_id: OrderId,
        customer_id: CustomerId,
        key: Option<&str>,
        now: Millis,
    ) -> Result<Payment, StoreError> {
        const MARK: &str = "UPDATE orders SET payment_status = 'PAID', paid_at = $3, updated_at = $3 \
                            WHERE id = $1 AND customer_id = $2 AND status = 'OPEN' AND payment_status = 'UNPAID' \
                            RETURNING total_price";
        const DEBIT: &str =
            "UPDATE users SET balance = balance - $2 WHERE id = $1 AND balance >= $2";
        const ENTRY: &str = "INSERT INTO wallet_entries (user_id, order_id, kind, amount, created_at, idempotency_key) VALUES ($1, $2, 'DEBIT', $3, $4, $5)";
        const BALANCE: &str = "SELECT balance FROM users WHERE id = $1";
        let payment = on_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            let paid = async {
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let total: Option<i64> = sqlx::query_scalar(MARK).bind(order_id).bind(customer_id).bind(now).fetch_optional(&mut *tx).await?;
                let Some(total) = total else {
                    return Ok::<_, TxError>(Payment::NotPayable);
                };
                let debited = sqlx::query(DEBIT).bind(customer_id).bind(total).execute(&mut *tx).await?.rows_affected();
                if debited != 1 {
                    let balance: i64 = sqlx::query_scalar(BALANCE).bind(customer_id).fetch_one(&mut *tx).await?;
                    // Dropping the transaction rolls the order's change back.
                    return Ok(Payment::InsufficientBalance { balance });
                }
                sqlx::query(ENTRY).bind(customer_id).bind(order_id).bind(total).bind(now).bind(key).execute(&mut *tx).await?;
                // The receipt is owed from the same transaction.
                sqlx::query(super::outbox::INSERT_OUTBOX).bind("PAYMENT_RECEIPT").bind(format!("[{order_id}]")).bind(now).execute(&mut *tx).await?;
                tx.commit().await.map_err(TxError::AtCommit)?;
                Ok(Payment::Paid)
            }
            .await;
            // Never reuse a connection whose transaction failed (see `commit_orders`).
            if paid.is_err() {
                conn.close_on_drop();
            }
            paid
        })?;
        Ok(payment)
    }

    /// Cancels those of `order_ids` (claims of `deal_id`) that are still open and unpaid with
    /// their deadline at or before `now`, and puts their units back on the deal's stored stock
    /// (current round only) — in one transaction, under the deal's fencing epoch. Returns the
    /// orders cancelled, and those of `order_ids` found cancelled unpaid already: asking again
    /// after a lapse whose commit's answer was lost returns what it lapsed, restocking nothing
    /// twice.
    pub async fn lapse_claims(
        &self,
        deal_id: DealId,
        order_ids: &[OrderId],
        epoch: i64,
        now: Millis,
    ) -> Result<Vec<OrderId>, StoreError> {
        const LAPSE: &str = "UPDATE orders SET status = 'CANCELLED', updated_at = $3 \
                             WHERE id = $1 AND deal_id = $2 AND status = 'OPEN' AND payment_status = 'UNPAID' AND pay_by <= $3 \
                             RETURNING quantity, round, total_price, created_at";
        const RESTOCK: &str = "UPDATE deals SET available_units = available_units + $2 WHERE id = $1 AND round = $3 AND owner_epoch = $4";
        const ENDED_UNPAID: &str = "SELECT id FROM orders WHERE id = $1 AND deal_id = $2 AND status = 'CANCELLED' AND payment_status = 'UNPAID'";
        const FENCE: &str = "SELECT COUNT(*) FROM deals WHERE id = $1 AND owner_epoch = $2";
        let lapsed: Option<Vec<OrderId>> = on_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            let lapsed = async {
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let held: i64 = sqlx::query_scalar(FENCE).bind(deal_id).bind(epoch).fetch_one(&mut *tx).await?;
                if held != 1 {
                    return Ok::<_, TxError>(None);
                }
                let mut lapsed = Vec::new();
                let mut units: std::collections::HashMap<i64, i64> = Default::default();
                let mut lapsed_by_day: std::collections::BTreeMap<(i64, i64), (i64, i64)> = Default::default();
                for order_id in order_ids {
                    let row: Option<(i64, i64, i64, i64)> = sqlx::query_as(LAPSE).bind(order_id).bind(deal_id).bind(now).fetch_optional(&mut *tx).await?;
                    if let Some((quantity, round, total, created_at)) = row {
                        let moved = lapsed_by_day.entry(stats_key(created_at, deal_id)).or_insert((0, 0));
                        *moved = (moved.0 + 1, moved.1 + total);
                        lapsed.push(*order_id);
                        *units.entry(round).or_default() += quantity;
                    } else if sqlx::query_scalar::<_, i64>(ENDED_UNPAID).bind(order_id).bind(deal_id).fetch_optional(&mut *tx).await?.is_some() {
                        // Cancelled unpaid already — by an earlier lapse whose answer was
                        // lost, or a cancellation the deal's actor never heard of: its units
                        // are back in the store, and the actor, which still counts the claim,
                        // takes them back too (a claim it no longer counts it ignores).
                        lapsed.push(*order_id);
                    }
                }
                // Units of an earlier round are not this round's stock: the round condition
                // leaves them out.
                for (round, quantity) in units {
                    sqlx::query(RESTOCK).bind(deal_id).bind(quantity).bind(round).bind(epoch).execute(&mut *tx).await?;
                }
                // The statistics after the deal's row, day by day (the order every
                // transaction locks them in: see `transition_order`).
                for ((day, slot), (orders, total)) in lapsed_by_day {
                    sqlx::query(STATS_ADD).bind(day).bind("OPEN").bind(slot).bind(-orders).bind(-total).execute(&mut *tx).await?;
                    sqlx::query(STATS_ADD).bind(day).bind("CANCELLED").bind(slot).bind(orders).bind(total).execute(&mut *tx).await?;
                }
                tx.commit().await.map_err(TxError::AtCommit)?;
                Ok(Some(lapsed))
            }
            .await;
            if lapsed.is_err() {
                conn.close_on_drop();
            }
            lapsed
        })?;
        lapsed.ok_or(StoreError::OwnershipLost {
            deal_ids: vec![deal_id],
        })
    }

    /// The `Idempotency-Key` the order's payment was made with, if it was paid with one.
    pub async fn payment_key(&self, order_id: OrderId) -> Result<Option<String>, StoreError> {
        const SQL: &str =
            "SELECT idempotency_key FROM wallet_entries WHERE order_id = $1 AND kind = 'DEBIT'";
        let key: Option<Option<String>> = on_pool!(self, pool => sqlx::query_scalar(SQL).bind(order_id).fetch_optional(pool).await)?;
        Ok(key.flatten())
    }

    /// Changes an open, unpaid order's quantity from `from` to `to` and moves its deal's stored
    /// units by the difference, in one transaction under the deal's epoch (`OwnershipLost`
    /// when another node holds it). False when the order is not open, unpaid and of `from`
    /// units any more (paid, cancelled, lapsed or changed first): nothing changed.
    pub async fn change_order_quantity(
        &self,
        order: &actors::journal::OrderRecord,
        to: i64,
        epoch: i64,
        now: Millis,
    ) -> Result<bool, StoreError> {
        const CHANGE: &str = "UPDATE orders SET quantity = $3, total_price = unit_price * $3, updated_at = $4 \
                              WHERE id = $1 AND quantity = $2 AND status = 'OPEN' AND payment_status IN ('NOT_REQUIRED', 'UNPAID')";
        const UNITS: &str = "UPDATE deals SET available_units = available_units - $2 WHERE id = $1 AND round = $3 AND owner_epoch = $4";
        let delta = to - order.quantity;
        let changed: Option<bool> = on_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            let changed = async {
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let changed = sqlx::query(CHANGE).bind(order.id).bind(order.quantity).bind(to).bind(now).execute(&mut *tx).await?.rows_affected();
                if changed != 1 {
                    return Ok::<_, TxError>(Some(false));
                }
                let moved = sqlx::query(UNITS).bind(order.deal_id).bind(delta).bind(order.round).bind(epoch).execute(&mut *tx).await?.rows_affected();
                if moved != 1 {
                    // Another node holds the deal (or its round moved on): nothing changes.
                    return Ok(None);
                }
                let (day, slot) = stats_key(order.created_at, order.deal_id);
                sqlx::query(STATS_ADD).bind(day).bind("OPEN").bind(slot).bind(0_i64).bind(order.unit_price * delta).execute(&mut *tx).await?;
                tx.commit().await.map_err(TxError::AtCommit)?;
                Ok(Some(true))
            }
            .await;
            if changed.is_err() {
                conn.close_on_drop();
            }
            changed
        })?;
        changed.ok_or(StoreError::OwnershipLost {
            deal_ids: vec![order.deal_id],
        })
    }

    /// Money in and out, for the invariants' checks: (credits, debits, refunds) in all.
    pub async fn wallet_totals(&self) -> Result<(i64, i64, i64), StoreError> {
        const SQL: &str = "SELECT \
            CAST(COALESCE(SUM(CASE WHEN kind = 'CREDIT' THEN amount ELSE 0 END), 0) AS BIGINT), \
            CAST(COALESCE(SUM(CASE WHEN kind = 'DEBIT' THEN amount ELSE 0 END), 0) AS BIGINT), \
            CAST(COALESCE(SUM(CASE WHEN kind = 'REFUND' THEN amount ELSE 0 END), 0) AS BIGINT) FROM wallet_entries";
        let totals: (i64, i64, i64) =
            on_pool!(self, pool => sqlx::query_as(SQL).fetch_one(pool).await)?;
        Ok(totals)
    }
}
