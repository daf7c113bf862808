//! Orders: the writer's batch commit (one call per batch, the same meaning on both stores),
//! lookups and listings, and the conditional status change that restocks exactly once.

use std::collections::HashMap;

use actors::journal::{NewOrder, OrderRecord, OrderStatus, PaymentStatus};
use actors::{CustomerId, DealId, Millis, OrderId};

use super::error::{StoreError, TxError};
use super::pool::{Backend, OrderWriter, Store, on_pool};
use super::rows::OrderRow;
use super::stats_rows::{STATS_ADD, stats_key};

/// Which orders a listing returns.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub customer_id: Option<CustomerId>,
    pub deal_id: Option<DealId>,
    pub status: Option<OrderStatus>,
    /// Placed at or after this instant.
    pub created_from: Option<Millis>,
    /// Placed before this instant.
    pub created_to: Option<Millis>,
}

/// The outcome of a conditional status change.
#[derive(Debug, Clone)]
pub enum Transition {
    /// Changed; `restocked` says whether the order's units went back to its deal's stored stock.
    Changed {
        order: OrderRecord,
        restocked: bool,
    },
    /// Refused: the order is in `current`, from which that change is not allowed.
    Refused {
        current: OrderRecord,
    },
    NotFound,
}

/// The batch's receipt (`receipt`, `$15`): its key and its orders' ids in `order_batches`, in
/// the batch's own transaction, so that when the commit's answer is lost the writer can learn
/// what became of it ([`Store::settle_batch`]).
///
/// Postgres commits a batch as ONE statement, so one round trip and one implicit transaction:
/// the insert and the units' update are data-modifying CTEs, which run exactly once and to
/// completion whether or not the outer query reads them. As a transaction of four statements
/// (`BEGIN`, insert, update, `COMMIT`) each batch made four round trips, each a hand-off between
/// the writer's thread, the server and back on a busy machine (measured: docs/BENCHMARKS.md).
/// Ids are taken from the sequence in the `ORDER BY n` order: the batch's order.
///
/// The fence (cluster mode, DESIGN.md decision 8): the units' update matches a deal only under
/// the fencing epoch its orders were sold under (`$12`), takes units only in the deal's current
/// round, and returns the deals it matched; `topkart_require_owner` aborts the whole statement
/// (SQLSTATE TK409, nothing stored) unless every one of the batch's `$13` deals matched. The
/// update takes each deal's row lock, so a new owner's epoch increment either waits for this
/// commit or, if it came first, makes this one fail: no write of a stale owner lands. It adds
/// no write: the row is updated anyway.
///
/// The deal's row lock is taken last, after every order row is inserted: it is held until the
/// commit's WAL flush, so a batch that locked its deal first would keep the writer's other
/// connection (`TOPKART_WRITER_COMMITS`) waiting through its whole insert as well. The fence's
/// first argument counts the inserted rows, which runs the insert to completion before the
/// subquery that reads `taken` starts the update (a function's arguments are evaluated in
/// order; the data-modifying CTEs no query reads, the statistics and the outbox, run after the
/// main query). Deals are locked in id order (`locked`), whatever plan the update gets, so two
/// batches of several deals each cannot deadlock on each other.
const POSTGRES_COMMIT_BATCH: &str = "WITH inserted AS ( \
       INSERT INTO orders (deal_id, round, customer_id, quantity, unit_price, total_price, \
         status, idempotency_key, created_at, updated_at, payment_status, pay_by) \
       SELECT deal_id, round, customer_id, quantity, unit_price, total_price, 'OPEN', idempotency_key, created_at, created_at, \
         CASE WHEN pay_by IS NULL THEN 'NOT_REQUIRED' ELSE 'UNPAID' END, pay_by \
       FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[], $7::TEXT[], $8::BIGINT[], $14::BIGINT[]) \
       WITH ORDINALITY AS batch (deal_id, round, customer_id, quantity, unit_price, total_price, idempotency_key, created_at, pay_by, n) \
       ORDER BY n RETURNING id), \
     locked AS MATERIALIZED (SELECT id FROM deals WHERE id = ANY($9::BIGINT[]) ORDER BY id FOR UPDATE), \
     taken AS ( \
       UPDATE deals SET available_units = CASE WHEN deals.round = take.round \
         THEN deals.available_units - take.quantity ELSE deals.available_units END \
       FROM UNNEST($9::BIGINT[], $10::BIGINT[], $11::BIGINT[], $12::BIGINT[]) AS take (deal_id, round, quantity, epoch) \
       WHERE deals.id = take.deal_id AND deals.owner_epoch = take.epoch AND deals.id IN (SELECT id FROM locked) \
       RETURNING deals.id), \
     counted AS ( \
       INSERT INTO order_stats (day, status, slot, orders, revenue) \
       SELECT created_at / 86400000, 'OPEN', deal_id % 64, COUNT(*), SUM(total_price) \
       FROM UNNEST($1::BIGINT[], $6::BIGINT[], $8::BIGINT[]) AS counted (deal_id, total_price, created_at) \
       GROUP BY 1, 3 ORDER BY 1, 3 \
       ON CONFLICT (day, status, slot) DO UPDATE SET orders = order_stats.orders + EXCLUDED.orders, \
       revenue = order_stats.revenue + EXCLUDED.revenue), \
     mailed AS ( \
       INSERT INTO mail_outbox (kind, order_ids, next_attempt_at, created_at) \
       SELECT 'ORDER_CONFIRMED', json_agg(id)::TEXT, 0, (SELECT max(c) FROM UNNEST($8::BIGINT[]) AS c) FROM inserted), \
     receipt AS ( \
       INSERT INTO order_batches (batch_key, order_ids, created_at) \
       SELECT $15::BIGINT, json_agg(id ORDER BY id)::TEXT, (SELECT max(c) FROM UNNEST($8::BIGINT[]) AS c) FROM inserted) \
     SELECT inserted.id FROM inserted \
     CROSS JOIN (SELECT topkart_require_owner((SELECT count(*) FROM inserted) * 0 + (SELECT count(DISTINCT id) FROM taken), $13::BIGINT)) AS fence (held)";

impl Store {
    /// One transaction: insert every order, take their units off their deals. All or nothing.
    ///
    /// SQLite: prepared statements on the writer's own connection and thread
    /// (`sqlite_writer`). Postgres: one statement of fixed text whatever the batch size, so it
    /// is prepared once and cached, reading the batch from parallel arrays (`UNNEST`); a
    /// `VALUES` list would be new SQL for every batch size, parsed and planned again each time
    /// (measured: most of the writer's CPU). Ids come back in the batch's order.
    ///
    /// A connection whose commit failed is closed, never handed out again: the transaction may
    /// still be open on it (closing rolls it back), and a connection left believing it is inside
    /// a transaction once turned the next batch's commit into the release of a savepoint — an
    /// order acknowledged and never stored (found by the fault suite's disk-full test).
    ///
    /// An answer lost after the batch was sent is `StoreError::OutcomeUnknown` with the batch's
    /// key; a failure before it was sent, or the server's refusal, is a failure: nothing stored.
    pub async fn commit_orders(&self, orders: &[NewOrder]) -> Result<Vec<OrderId>, StoreError> {
        let batch_key = self.next_batch_key();
        let pool = match &self.order_writer {
            OrderWriter::Postgres(pool) => pool,
            OrderWriter::Sqlite(writer) => return writer.commit(orders.to_vec(), batch_key).await,
        };
        let mut units: HashMap<(DealId, i64), i64> = HashMap::new();
        // A deal's epoch in this batch: the lowest its orders carry (orders sold under an older
        // epoch make the whole deal's part of the batch fail the fence, as they must).
        let mut epochs: HashMap<DealId, i64> = HashMap::new();
        for order in orders {
            *units.entry((order.deal_id, order.round)).or_default() += order.quantity;
            let epoch = epochs.entry(order.deal_id).or_insert(order.owner_epoch);
            *epoch = (*epoch).min(order.owner_epoch);
        }
        // One statement takes the units off every deal of the batch (a burst spread over a
        // thousand deals would otherwise cost a thousand round trips per commit).
        let mut by_deal: Vec<((DealId, i64), i64)> = units.into_iter().collect();
        by_deal.sort_unstable();
        let deal_ids: Vec<i64> = by_deal.iter().map(|((deal_id, _), _)| *deal_id).collect();
        let rounds: Vec<i64> = by_deal.iter().map(|((_, round), _)| *round).collect();
        let quantities: Vec<i64> = by_deal.iter().map(|(_, quantity)| *quantity).collect();
        let committed = {
            let column =
                |field: fn(&NewOrder) -> i64| orders.iter().map(field).collect::<Vec<i64>>();
            let keys: Vec<Option<String>> = orders
                .iter()
                .map(|order| order.idempotency_key.clone())
                .collect();
            let mut conn = pool.acquire().await?;
            let committed = sqlx::query_scalar(POSTGRES_COMMIT_BATCH)
                .bind(column(|o| o.deal_id))
                .bind(column(|o| o.round))
                .bind(column(|o| o.customer_id))
                .bind(column(|o| o.quantity))
                .bind(column(|o| o.unit_price))
                .bind(column(|o| o.total_price))
                .bind(keys)
                .bind(column(|o| o.created_at))
                .bind(&deal_ids)
                .bind(&rounds)
                .bind(&quantities)
                .bind(
                    deal_ids
                        .iter()
                        .map(|deal_id| epochs[deal_id])
                        .collect::<Vec<i64>>(),
                )
                .bind(epochs.len() as i64)
                .bind(
                    orders
                        .iter()
                        .map(|o| o.pay_by)
                        .collect::<Vec<Option<i64>>>(),
                )
                .bind(batch_key)
                .fetch_all(&mut *conn)
                .await;
            if let Err(sqlx::Error::Database(error)) = &committed {
                if error.code().as_deref() == Some("TK409") {
                    // The connection is sound (the statement rolled back on its own).
                    drop(conn);
                    return Err(fenced_deals(pool, &epochs).await);
                }
            }
            if committed.is_err() {
                conn.close_on_drop();
            }
            committed.map_err(|error| StoreError::after_send(error, Some(batch_key)))
        };
        let mut ids: Vec<i64> = committed?;
        // Ids are handed out in the batch's order; sorting undoes any reordering of the
        // returned rows.
        ids.sort_unstable();
        assert_eq!(ids.len(), orders.len(), "one id per inserted order");
        Ok(ids)
    }

    /// What became of the order batch that wrote `batch_key`: its order ids (in the batch's
    /// order) if it committed; `None` if it did not — and then the key is written as void
    /// first, so that the batch, if it is still under way on the server, fails on the key's
    /// uniqueness and can never commit afterwards (an insert that meets the batch's own
    /// uncommitted row waits for that transaction's end, then finds it or not).
    ///
    /// Two statements: the second's snapshot must see whatever the first waited for.
    pub async fn settle_batch(&self, batch_key: i64) -> Result<Option<Vec<OrderId>>, StoreError> {
        const VOID: &str = "INSERT INTO order_batches (batch_key, order_ids, created_at) \
                            VALUES ($1, NULL, $2) ON CONFLICT (batch_key) DO NOTHING";
        const READ: &str = "SELECT order_ids FROM order_batches WHERE batch_key = $1";
        if let OrderWriter::Sqlite(writer) = &self.order_writer {
            // On the writer's own connection: between its batches, never beside one.
            return writer.settle(batch_key).await;
        }
        on_pool!(self, pool => sqlx::query(VOID).bind(batch_key).bind(actors::clock::now_ms()).execute(pool).await.map(|_| ()))?;
        let ids: Option<Option<String>> = on_pool!(self, pool => sqlx::query_scalar(READ).bind(batch_key).fetch_optional(pool).await)?;
        batch_ids(batch_key, ids)
    }

    /// Drops the receipts of batches older than `before`: each is needed only until its
    /// writer heard its commit's answer, or learned it.
    pub async fn purge_batch_receipts(&self, before: Millis) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM order_batches WHERE created_at < $1";
        let purged = on_pool!(self, pool => sqlx::query(SQL).bind(before).execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(purged)
    }

    pub async fn order_by_id(&self, order_id: OrderId) -> Result<Option<OrderRecord>, StoreError> {
        const SQL: &str = "SELECT * FROM orders WHERE id = $1";
        let row: Option<OrderRow> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(order_id).fetch_optional(pool).await)?;
        Ok(row.map(OrderRow::into_record))
    }

    /// The customer's order placed with this idempotency key since `since`, if any.
    pub async fn order_by_idempotency_key(
        &self,
        customer_id: CustomerId,
        key: &str,
        since: Millis,
    ) -> Result<Option<OrderRecord>, StoreError> {
        const SQL: &str = "SELECT * FROM orders WHERE customer_id = $1 AND idempotency_key = $2 AND created_at >= $3 \
                           ORDER BY id LIMIT 1";
        let row: Option<OrderRow> = on_pool!(self, pool => sqlx::query_as(SQL).bind(customer_id).bind(key).bind(since).fetch_optional(pool).await)?;
        Ok(row.map(OrderRow::into_record))
    }

    /// A page of orders, newest first, and how many match in all.
    ///
    /// The customer's (or the deal's) column is compared with a plain `=` when it is given:
    /// SQLite plans a statement once for any values, so `($1 IS NULL OR customer_id = $1)`
    /// read the whole table for one customer's orders (112 ms p50 with ~800,000 orders stored,
    /// issue 13 figure 6; docs/BENCHMARKS.md) where the `(customer_id, id)` index answers
    /// both the count and the newest-first page.
    pub async fn list_orders(
        &self,
        filter: &OrderFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<OrderRecord>), StoreError> {
        const REST: &str = " AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at < $5)";
        const BY_CUSTOMER: &str = const_format_concat!(
            " WHERE customer_id = $1 AND ($2 IS NULL OR deal_id = $2)",
            REST
        );
        const BY_DEAL: &str = const_format_concat!(
            " WHERE ($1 IS NULL OR customer_id = $1) AND deal_id = $2",
            REST
        );
        const ANY: &str = const_format_concat!(
            " WHERE ($1 IS NULL OR customer_id = $1) AND ($2 IS NULL OR deal_id = $2)",
            REST
        );
        const PAGE_END: &str = " ORDER BY id DESC LIMIT $6 OFFSET $7";
        let (count_sql, page_sql) = match (filter.customer_id, filter.deal_id) {
            (Some(_), _) => (
                const_format_concat!("SELECT COUNT(*) FROM orders", BY_CUSTOMER),
                const_format_concat!("SELECT * FROM orders", BY_CUSTOMER, PAGE_END),
            ),
            (None, Some(_)) => (
                const_format_concat!("SELECT COUNT(*) FROM orders", BY_DEAL),
                const_format_concat!("SELECT * FROM orders", BY_DEAL, PAGE_END),
            ),
            (None, None) => (
                const_format_concat!("SELECT COUNT(*) FROM orders", ANY),
                const_format_concat!("SELECT * FROM orders", ANY, PAGE_END),
            ),
        };
        let status = filter.status.map(OrderStatus::as_str);
        let count: i64 = on_pool!(self, pool => sqlx::query_scalar(count_sql)
            .bind(filter.customer_id)
            .bind(filter.deal_id)
            .bind(status)
            .bind(filter.created_from)
            .bind(filter.created_to)
            .fetch_one(pool)
            .await)?;
        let rows: Vec<OrderRow> = on_pool!(self, pool => sqlx::query_as(page_sql)
            .bind(filter.customer_id)
            .bind(filter.deal_id)
            .bind(status)
            .bind(filter.created_from)
            .bind(filter.created_to)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await)?;
        Ok((count, rows.into_iter().map(OrderRow::into_record).collect()))
    }

    /// Moves an order to `next` if its current status allows it, in one transaction with the
    /// return of its units when `next` is CANCELLED. The status update is conditional on the
    /// status read, so two concurrent cancellations restock once. The transaction's first
    /// statement is the write, so SQLite takes its write lock up front (waiting on the busy
    /// timeout) instead of failing a read-to-write upgrade.
    pub async fn transition_order(
        &self,
        order_id: OrderId,
        next: OrderStatus,
        epoch: i64,
        now: Millis,
    ) -> Result<Transition, StoreError> {
        // An order that must be paid is approved only once paid (checked here too, so a
        // lapse or a payment between the read and the update cannot slip through).
        const UPDATE: &str = "UPDATE orders SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2 \
                              AND NOT ($3 = 'APPROVED' AND payment_status = 'UNPAID')";
        // A paid order cancelled is refunded in the same transaction, exactly once (the
        // conditional update, and the unique index on the wallet's entries).
        const REFUND: &str = "UPDATE orders SET payment_status = 'REFUNDED' WHERE id = $1 AND payment_status = 'PAID' \
                              RETURNING customer_id, total_price";
        const CREDIT_BACK: &str = "UPDATE users SET balance = balance + $2 WHERE id = $1";
        const REFUND_ENTRY: &str = "INSERT INTO wallet_entries (user_id, order_id, kind, amount, created_at) VALUES ($1, $2, 'REFUND', $3, $4)";
        // Fenced like every change to a deal: the units go back only under the epoch of the
        // node whose actor takes them back (an order of an earlier round restocks nothing).
        const RESTOCK: &str = "UPDATE deals SET available_units = available_units + CASE WHEN round = $2 THEN $3 ELSE 0 END \
                               WHERE id = $1 AND owner_epoch = $4";
        let Some(current) = self.order_by_id(order_id).await? else {
            return Ok(Transition::NotFound);
        };
        let unpaid = current.payment_status == PaymentStatus::Unpaid;
        if !current.status.may_become(next) || (next == OrderStatus::Approved && unpaid) {
            return Ok(Transition::Refused { current });
        }
        let changed = on_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            let changed = async {
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let changed = sqlx::query(UPDATE)
                    .bind(order_id)
                    .bind(current.status.as_str())
                    .bind(next.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if changed == 1 && next == OrderStatus::Cancelled {
                    let restocked = sqlx::query(RESTOCK).bind(current.deal_id).bind(current.round).bind(current.quantity).bind(epoch).execute(&mut *tx).await?.rows_affected();
                    if restocked != 1 {
                        // Dropping the transaction rolls the status change back.
                        return Ok(None);
                    }
                    let paid: Option<(i64, i64)> = sqlx::query_as(REFUND).bind(order_id).fetch_optional(&mut *tx).await?;
                    if let Some((customer_id, total)) = paid {
                        sqlx::query(CREDIT_BACK).bind(customer_id).bind(total).execute(&mut *tx).await?;
                        sqlx::query(REFUND_ENTRY).bind(customer_id).bind(order_id).bind(total).bind(now).execute(&mut *tx).await?;
                    }
                }
                // The statistics last: every transaction locks the deal's row before them (the
                // writer's batch too), and a status only moves forward (OPEN, APPROVED,
                // FULFILLED, CANCELLED), so their rows are locked in one order and never
                // deadlock.
                if changed == 1 {
                    let (day, slot) = stats_key(current.created_at, current.deal_id);
                    sqlx::query(STATS_ADD).bind(day).bind(current.status.as_str()).bind(slot).bind(-1_i64).bind(-current.total_price).execute(&mut *tx).await?;
                    sqlx::query(STATS_ADD).bind(day).bind(next.as_str()).bind(slot).bind(1_i64).bind(current.total_price).execute(&mut *tx).await?;
                }
                tx.commit().await.map_err(TxError::AtCommit)?;
                Ok::<_, TxError>(Some(changed))
            }
            .await;
            // Never reuse a connection whose transaction failed (see `commit_orders`).
            if changed.is_err() {
                conn.close_on_drop();
            }
            changed
        })?;
        let Some(changed) = changed else {
            return Err(StoreError::OwnershipLost {
                deal_ids: vec![current.deal_id],
            });
        };
        if changed != 1 {
            // Someone changed it between our read and our update: report what it is now.
            return Ok(match self.order_by_id(order_id).await? {
                Some(current) => Transition::Refused { current },
                None => Transition::NotFound,
            });
        }
        let restocked = next == OrderStatus::Cancelled;
        // Read back: a cancellation may have refunded the order in the same transaction.
        let order = match self.order_by_id(order_id).await? {
            Some(order) => order,
            None => OrderRecord {
                status: next,
                updated_at: now,
                ..current
            },
        };
        Ok(Transition::Changed { order, restocked })
    }
}

/// Concatenates string constants at compile time (the listing's shared WHERE clause).
macro_rules! const_format_concat {
    ($($part:expr),+ $(,)?) => {{
        const PARTS: &[&str] = &[$($part),+];
        const LEN: usize = { let mut len = 0; let mut i = 0; while i < PARTS.len() { len += PARTS[i].len(); i += 1; } len };
        const BYTES: [u8; LEN] = {
            let mut out = [0u8; LEN];
            let (mut at, mut i) = (0, 0);
            while i < PARTS.len() {
                let part = PARTS[i].as_bytes();
                let mut j = 0;
                while j < part.len() { out[at] = part[j]; at += 1; j += 1; }
                i += 1;
            }
            out
        };
        match std::str::from_utf8(&BYTES) { Ok(text) => text, Err(_) => panic!("concatenated SQL is UTF-8") }
    }};
}
use const_format_concat;

/// Which of a fenced batch's deals the store holds under another epoch than the batch's
/// (Postgres: cluster mode runs on Postgres only).
async fn fenced_deals(pool: &sqlx::PgPool, epochs: &HashMap<DealId, i64>) -> StoreError {
    const SQL: &str = "SELECT id, owner_epoch FROM deals WHERE id = ANY($1)";
    let ids: Vec<i64> = epochs.keys().copied().collect();
    let stored: Result<Vec<(i64, i64)>, sqlx::Error> =
        sqlx::query_as(SQL).bind(&ids).fetch_all(pool).await;
    match stored {
        Ok(stored) => {
            let mut deal_ids: Vec<DealId> = stored
                .into_iter()
                .filter(|(id, epoch)| epochs.get(id) != Some(epoch))
                .map(|(id, _)| id)
                .collect();
            deal_ids.sort_unstable();
            StoreError::OwnershipLost { deal_ids }
        }
        Err(error) => StoreError::Database(error),
    }
}

/// A batch's receipt as read back: its ids (sorted: they were handed out in the batch's order),
/// or `None` for a void batch; no row at all cannot be, right after writing one.
pub(super) fn batch_ids(
    batch_key: i64,
    stored: Option<Option<String>>,
) -> Result<Option<Vec<OrderId>>, StoreError> {
    let Some(stored) = stored else {
        return Err(StoreError::Writer(format!(
            "batch {batch_key}: no receipt right after one was written"
        )));
    };
    let Some(text) = stored else {
        return Ok(None);
    };
    let mut ids: Vec<OrderId> = serde_json::from_str(&text).map_err(|error| {
        StoreError::Writer(format!("batch {batch_key}: its receipt's ids: {error}"))
    })?;
    ids.sort_unstable();
    Ok(Some(ids))
}
