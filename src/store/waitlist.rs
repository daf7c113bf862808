//! Waitlist entries: joined, left, promoted with their order (in one transaction under the
//! deal's fencing epoch), expired with their round, and the waiting line the deal's actor
//! loads at start.

use std::collections::HashMap;

use actors::journal::NewOrder;
use actors::model::WaitingEntry;
use actors::{CustomerId, DealId, Millis, OrderId};

use super::error::{StoreError, TxError};
use super::pool::{Backend, Store, on_pool};

/// A waitlist entry as stored, with its place in the line while it waits.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EntryRow {
    pub id: i64,
    pub deal_id: i64,
    pub round: i64,
    pub customer_id: i64,
    pub quantity: i64,
    pub status: String,
    pub order_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// 1 = next to be served; 0 when the entry is not waiting.
    pub position: i64,
    /// The deal's current round and the end of its window: a waiting entry of a round that is
    /// over has expired.
    pub deal_round: Option<i64>,
    pub deal_expires_at: Option<i64>,
}

impl EntryRow {
    pub fn entry(&self) -> WaitingEntry {
        WaitingEntry {
            id: self.id,
            customer_id: self.customer_id,
            quantity: self.quantity,
            round: self.round,
        }
    }
}

/// Entries (`e`) with their position: the waiting entries of their deal and round up to them.
macro_rules! select_entries {
    ($rest:literal) => {
        concat!(
            "SELECT e.*, CASE WHEN e.status = 'WAITING' THEN \
             (SELECT COUNT(*) FROM waitlist_entries w WHERE w.deal_id = e.deal_id AND w.round = e.round \
              AND w.status = 'WAITING' AND w.id <= e.id) ELSE 0 END AS position, \
             d.round AS deal_round, d.expires_at AS deal_expires_at \
             FROM waitlist_entries e LEFT JOIN deals d ON d.id = e.deal_id ",
            $rest
        )
    };
}

impl Store {
    /// Stores a waiting entry; `Conflict` when the customer is waiting for the deal's round
    /// already.
    pub async fn insert_waitlist_entry(
        &self,
        deal_id: DealId,
        round: i64,
        customer_id: CustomerId,
        quantity: i64,
        now: Millis,
    ) -> Result<WaitingEntry, StoreError> {
        const SQL: &str = "INSERT INTO waitlist_entries (deal_id, round, customer_id, quantity, status, created_at, updated_at) \
                           VALUES ($1, $2, $3, $4, 'WAITING', $5, $5) RETURNING id";
        let inserted: Result<i64, sqlx::Error> = on_pool!(self, pool => sqlx::query_scalar(SQL)
            .bind(deal_id).bind(round).bind(customer_id).bind(quantity).bind(now)
            .fetch_one(pool).await);
        match inserted {
            Ok(id) => Ok(WaitingEntry {
                id,
                customer_id,
                quantity,
                round,
            }),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::Conflict {
                    fields: vec!["customer"],
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Removes an entry the deal refused (it never waited).
    pub async fn remove_waitlist_entry(&self, entry_id: i64) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM waitlist_entries WHERE id = $1 AND status = 'WAITING'";
        on_pool!(self, pool => sqlx::query(SQL).bind(entry_id).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Marks a waiting entry LEFT; false when it was not waiting any more.
    pub async fn leave_waitlist(&self, entry_id: i64, now: Millis) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE waitlist_entries SET status = 'LEFT', updated_at = $2 WHERE id = $1 AND status = 'WAITING'";
        let left = on_pool!(self, pool => sqlx::query(SQL).bind(entry_id).bind(now).execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(left == 1)
    }

    /// The customer's newest entry for the deal, with its position.
    pub async fn waitlist_entry_of(
        &self,
        deal_id: DealId,
        customer_id: CustomerId,
    ) -> Result<Option<EntryRow>, StoreError> {
        const SQL: &str = select_entries!(
            "WHERE e.deal_id = $1 AND e.customer_id = $2 ORDER BY e.id DESC LIMIT 1"
        );
        let row: Option<EntryRow> = on_pool!(self, pool => sqlx::query_as(SQL).bind(deal_id).bind(customer_id).fetch_optional(pool).await)?;
        Ok(row)
    }

    /// Every entry of the deal (admins' view and tests), in the order they joined.
    pub async fn waitlist_entries(&self, deal_id: DealId) -> Result<Vec<EntryRow>, StoreError> {
        const SQL: &str = select_entries!("WHERE e.deal_id = $1 ORDER BY e.id");
        let rows: Vec<EntryRow> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(deal_id).fetch_all(pool).await)?;
        Ok(rows)
    }

    /// The waiting entries of each deal's current round (one deal's, or all), in line order:
    /// what the deals' actors take in at start.
    pub(super) async fn waiting_entries(
        &self,
        deal_id: Option<DealId>,
    ) -> Result<HashMap<DealId, Vec<WaitingEntry>>, StoreError> {
        const SQL: &str = "SELECT e.id, e.deal_id, e.customer_id, e.quantity, e.round FROM waitlist_entries e \
                           JOIN deals d ON d.id = e.deal_id AND d.round = e.round \
                           WHERE e.status = 'WAITING' AND ($1 IS NULL OR e.deal_id = $1) ORDER BY e.id";
        let rows: Vec<(i64, i64, i64, i64, i64)> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(deal_id).fetch_all(pool).await)?;
        let mut by_deal: HashMap<DealId, Vec<WaitingEntry>> = HashMap::new();
        for (id, deal_id, customer_id, quantity, round) in rows {
            by_deal.entry(deal_id).or_default().push(WaitingEntry {
                id,
                customer_id,
                quantity,
                round,
            });
        }
        Ok(by_deal)
    }

    /// Stores the orders of served entries and marks each entry PROMOTED with its order, taking
    /// the units off the deal's stored stock: one transaction under the deal's fencing epoch
    /// (`OwnershipLost` when another node holds the deal; nothing changed). Returns the orders'
    /// ids in the given order.
    pub async fn promote_waitlist(
        &self,
        deal_id: DealId,
        epoch: i64,
        promotions: &[(WaitingEntry, NewOrder)],
    ) -> Result<Vec<OrderId>, StoreError> {
        const TAKE: &str = "UPDATE deals SET available_units = available_units - $2 \
                            WHERE id = $1 AND round = $3 AND owner_epoch = $4 AND available_units >= $2";
        const INSERT: &str = "INSERT INTO orders (deal_id, round, customer_id, quantity, unit_price, total_price, \
                              status, idempotency_key, created_at, updated_at, payment_status, pay_by) \
                              VALUES ($1, $2, $3, $4, $5, $6, 'OPEN', NULL, $7, $7, \
                              CASE WHEN $8 IS NULL THEN 'NOT_REQUIRED' ELSE 'UNPAID' END, $8) RETURNING id";
        // Conditional: an entry is served once, whatever is asked twice.
        const PROMOTE: &str = "UPDATE waitlist_entries SET status = 'PROMOTED', order_id = $2, updated_at = $3 WHERE id = $1 AND status = 'WAITING'";
        let Some((_, first)) = promotions.first() else {
            return Ok(Vec::new());
        };
        let units: i64 = promotions.iter().map(|(_, order)| order.quantity).sum();
        let round = first.round;
        const EPOCH: &str = "SELECT owner_epoch FROM deals WHERE id = $1";
        // `Err(true)`: the deal is this epoch's, but its round moved on or its stored stock
        // is short; `Err(false)`: another node holds it.
        let ids: Result<Option<Result<Vec<OrderId>, bool>>, TxError> = on_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            let stored = async {
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                // The deal's row first: the fence, and the lock that orders this with the
                // writer's batches and with a new owner's epoch.
                let taken = sqlx::query(TAKE).bind(deal_id).bind(units).bind(round).bind(epoch).execute(&mut *tx).await?;
                if taken.rows_affected() != 1 {
                    let held: Option<i64> = sqlx::query_scalar(EPOCH).bind(deal_id).fetch_optional(&mut *tx).await?;
                    return Ok::<_, TxError>(Some(Err(held == Some(epoch))));
                }
                let mut ids = Vec::with_capacity(promotions.len());
                for (entry, order) in promotions {
                    let id: i64 = sqlx::query_scalar(INSERT)
                        .bind(order.deal_id).bind(order.round).bind(order.customer_id).bind(order.quantity)
                        .bind(order.unit_price).bind(order.total_price).bind(order.created_at).bind(order.pay_by)
                        .fetch_one(&mut *tx).await?;
                    let promoted = sqlx::query(PROMOTE).bind(entry.id).bind(id).bind(order.created_at).execute(&mut *tx).await?;
                    if promoted.rows_affected() != 1 {
                        // Served or gone already: dropping the transaction undoes it all.
                        return Ok(Some(Err(true)));
                    }
                    let (day, slot) = super::stats_rows::stats_key(order.created_at, order.deal_id);
                    sqlx::query(super::stats_rows::STATS_ADD).bind(day).bind("OPEN").bind(slot)
                        .bind(1_i64).bind(order.total_price).execute(&mut *tx).await?;
                    ids.push(id);
                }
                // The served customers' notices are owed from the same transaction.
                let owed = serde_json::to_string(&ids).unwrap_or_default();
                sqlx::query(super::outbox::INSERT_OUTBOX).bind("WAITLIST_SERVED").bind(owed).bind(first.created_at).execute(&mut *tx).await?;
                tx.commit().await.map_err(TxError::AtCommit)?;
                Ok(Some(Ok(ids)))
            }
            .await;
            if stored.is_err() {
                conn.close_on_drop();
            }
            stored
        });
        let ids = match ids {
            Err(TxError::AtCommit(error)) => {
                let cause = crate::telemetry::error_chain(&error);
                return self.promotions_read_back(promotions, cause).await;
            }
            other => other?,
        };
        match ids {
            Some(Ok(ids)) => Ok(ids),
            Some(Err(true)) => Err(StoreError::OutOfRange {
                deal_id,
                what: "serving the waitlist (its round moved on, or its stored stock is short)"
                    .to_owned(),
            }),
            Some(Err(false)) | None => Err(StoreError::OwnershipLost {
                deal_ids: vec![deal_id],
            }),
        }
    }
}

/// How often, and how many times at most, the entries of a promotion whose commit's answer
/// was lost are read back (about the order writer's default outcome wait).
const READ_BACK_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
const READ_BACK_TRIES: usize = 100;

impl Store {
    /// After a promotion whose commit's answer was lost: its entries read back say what
    /// became of it — all promoted (its orders' ids), or all still waiting (a failure: nothing
    /// was stored); the transaction made both or neither. No answer in time: `OutcomeUnknown`.
    async fn promotions_read_back(
        &self,
        promotions: &[(WaitingEntry, NewOrder)],
        cause: String,
    ) -> Result<Vec<OrderId>, StoreError> {
        const READ: &str =
            "SELECT order_id FROM waitlist_entries WHERE id = $1 AND status = 'PROMOTED'";
        tracing::warn!(
            entries = promotions.len(),
            cause,
            "a waitlist promotion's commit outcome is unknown; reading its entries back"
        );
        let Some((first, _)) = promotions.first() else {
            return Ok(Vec::new());
        };
        for _ in 0..READ_BACK_TRIES {
            let first_promoted: Result<Option<Option<i64>>, sqlx::Error> = on_pool!(self, pool => sqlx::query_scalar(READ).bind(first.id).fetch_optional(pool).await);
            match first_promoted {
                Ok(None) => {
                    return Err(StoreError::Writer(
                        "the waitlist promotion did not commit".into(),
                    ));
                }
                Ok(Some(_)) => {
                    let mut ids = Vec::with_capacity(promotions.len());
                    for (entry, _) in promotions {
                        let id: Option<Option<i64>> = on_pool!(self, pool => sqlx::query_scalar(READ).bind(entry.id).fetch_optional(pool).await)?;
                        ids.push(id.flatten().ok_or_else(|| {
                            StoreError::Writer(format!(
                                "entry {} promoted without its order",
                                entry.id
                            ))
                        })?);
                    }
                    return Ok(ids);
                }
                Err(_) => actix_web::rt::time::sleep(READ_BACK_EVERY).await,
            }
        }
        Err(StoreError::OutcomeUnknown {
            batch_key: None,
            cause,
        })
    }
}
