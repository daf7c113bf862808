//! Deals: insert, load (setting malformed rows aside), change terms, units and the closed flag,
//! the daily re-arm keyed by date, and the stock check against the orders.

use std::collections::HashMap;

use actors::deal::{Claim, DealRecord, DealTerms};
use actors::journal::LoadedDeal;
use actors::limits::UNITS_MAX;
use actors::{CustomerId, DealId, Millis};

use super::error::StoreError;
use super::pool::{Backend, OrderWriter, Store, on_pool};
use super::rows::{self, DealRow};

/// A deal to create, validated.
#[derive(Debug, Clone)]
pub struct NewDeal {
    pub terms: DealTerms,
    pub total_units: i64,
    pub available_units: i64,
}

/// What `load_deals` found: the deals the engine can take, and the rows it cannot.
#[derive(Debug, Default)]
pub struct LoadedDeals {
    pub deals: Vec<LoadedDeal>,
    pub malformed: Vec<MalformedDeal>,
}

/// A stored deal left out at start: which one, which column, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MalformedDeal {
    pub deal_id: DealId,
    pub column: String,
    pub problem: String,
}

/// A deal's stored stock against its orders, for the conservation check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockCheck {
    pub total_units: i64,
    pub available_units: i64,
    /// Units of the current round's OPEN, APPROVED and FULFILLED orders.
    pub units_held: i64,
    pub orders_held: i64,
}

impl StockCheck {
    pub fn conserved(&self) -> bool {
        self.available_units + self.units_held == self.total_units
    }
}

impl Store {
    pub async fn insert_deal(&self, deal: &NewDeal, now: Millis) -> Result<DealRecord, StoreError> {
        const SQL: &str = "INSERT INTO deals (product_name, actual_price, final_price, total_units, available_units, \
                           starts_at, expires_at, per_customer_limit, closed, recurrence, round, rearmed_day, created_at, updated_at, \
                           payment_window_secs) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE, $9, 1, $10, $11, $11, $12) RETURNING *";
        let t = &deal.terms;
        let row: DealRow = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(&t.product_name)
            .bind(t.actual_price)
            .bind(t.final_price)
            .bind(deal.total_units)
            .bind(deal.available_units)
            .bind(t.starts_at)
            .bind(t.expires_at)
            .bind(t.per_customer_limit)
            .bind(t.recurrence.as_str())
            .bind(actors::clock::day_of(t.starts_at))
            .bind(now)
            .bind(t.payment_window_secs)
            .fetch_one(pool)
            .await)?;
        row.into_record()
    }

    /// Every deal with the units each customer holds in its current round: what the engine
    /// starts from. A row the engine cannot take (a value out of its range or of the wrong
    /// type, written by hand or by a faulty build) is set aside in `malformed`, named by deal
    /// and column, and the others load: one bad row must not keep the engine from starting.
    pub async fn load_deals(&self) -> Result<LoadedDeals, StoreError> {
        const DEALS: &str = "SELECT * FROM deals ORDER BY id";
        const HELD: &str = "SELECT o.deal_id, o.customer_id, CAST(SUM(o.quantity) AS BIGINT) AS units FROM orders o \
                            JOIN deals d ON d.id = o.deal_id AND d.round = o.round \
                            WHERE o.status <> 'CANCELLED' GROUP BY o.deal_id, o.customer_id";
        let rows: Vec<Result<DealRecord, StoreError>> = on_pool!(self, pool => {
            let rows = sqlx::query(DEALS).fetch_all(pool).await?;
            rows.iter().map(|row| rows::decode_deal(row)).collect()
        });
        let held: Vec<(i64, i64, i64)> = match (&self.backend, &self.order_writer) {
            (Backend::Sqlite(_), OrderWriter::Sqlite(writer)) => {
                super::sqlite_held::held_units(writer.path().to_path_buf()).await?
            }
            _ => on_pool!(self, pool => sqlx::query_as(HELD).fetch_all(pool).await)?,
        };
        let mut by_deal: HashMap<DealId, HashMap<CustomerId, i64>> = HashMap::new();
        for (deal_id, customer_id, units) in held {
            by_deal
                .entry(deal_id)
                .or_default()
                .insert(customer_id, units);
        }
        let mut claims = self.unpaid_claims(None).await?;
        let mut waiting = self.waiting_entries(None).await?;
        let mut loaded = LoadedDeals::default();
        for row in rows {
            match row {
                Ok(record) => {
                    let units_by_customer = by_deal.remove(&record.id).unwrap_or_default();
                    let claims = claims.remove(&record.id).unwrap_or_default();
                    let waitlist = waiting.remove(&record.id).unwrap_or_default();
                    loaded.deals.push(LoadedDeal {
                        record,
                        units_by_customer,
                        claims,
                        waitlist,
                    });
                }
                Err(StoreError::Malformed {
                    deal_id,
                    column,
                    problem,
                }) => loaded.malformed.push(MalformedDeal {
                    deal_id,
                    column,
                    problem,
                }),
                Err(error) => return Err(error),
            }
        }
        Ok(loaded)
    }

    /// One deal, as `load_deals` loads it; a malformed row is `StoreError::Malformed`.
    pub async fn load_deal(&self, deal_id: DealId) -> Result<Option<LoadedDeal>, StoreError> {
        const DEAL: &str = "SELECT * FROM deals WHERE id = $1";
        const HELD: &str = "SELECT o.customer_id, CAST(SUM(o.quantity) AS BIGINT) AS units FROM orders o \
                            JOIN deals d ON d.id = o.deal_id AND d.round = o.round \
                            WHERE o.deal_id = $1 AND o.status <> 'CANCELLED' GROUP BY o.customer_id";
        let record: Option<DealRecord> = on_pool!(self, pool => {
            let row = sqlx::query(DEAL).bind(deal_id).fetch_optional(pool).await?;
            row.as_ref().map(|row| rows::decode_deal(row)).transpose()?
        });
        let Some(record) = record else {
            return Ok(None);
        };
        let held: Vec<(i64, i64)> =
            on_pool!(self, pool => sqlx::query_as(HELD).bind(deal_id).fetch_all(pool).await)?;
        let claims = self
            .unpaid_claims(Some(deal_id))
            .await?
            .remove(&deal_id)
            .unwrap_or_default();
        let waitlist = self
            .waiting_entries(Some(deal_id))
            .await?
            .remove(&deal_id)
            .unwrap_or_default();
        Ok(Some(LoadedDeal {
            record,
            units_by_customer: held.into_iter().collect(),
            claims,
            waitlist,
        }))
    }

    /// The open, unpaid orders (claims) of one deal or of all, by deal: what their actors
    /// watch the deadlines of.
    async fn unpaid_claims(
        &self,
        deal_id: Option<DealId>,
    ) -> Result<HashMap<DealId, Vec<(actors::OrderId, Claim)>>, StoreError> {
        const SQL: &str = "SELECT id, deal_id, customer_id, quantity, round, pay_by FROM orders \
                           WHERE payment_status = 'UNPAID' AND status = 'OPEN' AND ($1 IS NULL OR deal_id = $1) ORDER BY id";
        let rows: Vec<(i64, i64, i64, i64, i64, Option<i64>)> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(deal_id).fetch_all(pool).await)?;
        let mut claims: HashMap<DealId, Vec<(actors::OrderId, Claim)>> = HashMap::new();
        for (order_id, deal_id, customer_id, quantity, round, pay_by) in rows {
            let claim = Claim {
                customer_id,
                quantity,
                round,
                // An unpaid order always has its deadline (written with it); none: due now.
                pay_by: pay_by.unwrap_or(0),
            };
            claims.entry(deal_id).or_default().push((order_id, claim));
        }
        Ok(claims)
    }

    /// Stores a deal's new definition (units aside), if the store still holds the deal under
    /// `epoch` (the fence: else `OwnershipLost`, nothing changed).
    pub async fn update_deal_terms(
        &self,
        deal_id: DealId,
        epoch: i64,
        terms: &DealTerms,
        now: Millis,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE deals SET product_name = $2, actual_price = $3, final_price = $4, starts_at = $5, \
                           expires_at = $6, per_customer_limit = $7, recurrence = $8, updated_at = $9, payment_window_secs = $11 \
                           WHERE id = $1 AND owner_epoch = $10";
        let changed = on_pool!(self, pool => sqlx::query(SQL)
            .bind(deal_id)
            .bind(&terms.product_name)
            .bind(terms.actual_price)
            .bind(terms.final_price)
            .bind(terms.starts_at)
            .bind(terms.expires_at)
            .bind(terms.per_customer_limit)
            .bind(terms.recurrence.as_str())
            .bind(now)
            .bind(epoch)
            .bind(terms.payment_window_secs)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        fenced_unless(changed == 1, deal_id)
    }

    /// Moves a deal's stored total and available units by the same amount. Relative, so it
    /// commutes with the writer's concurrent decrements. The delta must lie within
    /// `±UNITS_MAX` (the engine proved it), and the row changes only if the new total stays in
    /// `0..=UNITS_MAX` with its available units not below zero: the store never receives a
    /// value the engine would refuse, and never takes one that would wrap (SQLite would turn
    /// an overflowing sum into a REAL). Fenced by `epoch` like every change to a deal.
    pub async fn resize_deal(
        &self,
        deal_id: DealId,
        epoch: i64,
        delta_units: i64,
        now: Millis,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE deals SET total_units = total_units + $2, available_units = available_units + $2, \
                           updated_at = $3 WHERE id = $1 AND total_units + $2 BETWEEN 0 AND $4 AND available_units + $2 >= 0 \
                           AND owner_epoch = $5";
        if !(-UNITS_MAX..=UNITS_MAX).contains(&delta_units) {
            return Err(StoreError::OutOfRange {
                deal_id,
                what: format!("a change of {delta_units} units"),
            });
        }
        let changed = on_pool!(self, pool => sqlx::query(SQL).bind(deal_id).bind(delta_units).bind(now).bind(UNITS_MAX).bind(epoch).execute(pool).await.map(|done| done.rows_affected()))?;
        if changed != 1 {
            if self.deal_epoch(deal_id).await? != Some(epoch) {
                return Err(StoreError::OwnershipLost {
                    deal_ids: vec![deal_id],
                });
            }
            return Err(StoreError::OutOfRange {
                deal_id,
                what: format!("a change of {delta_units} units"),
            });
        }
        Ok(())
    }

    /// Closes or reopens the deal in the store, fenced by `epoch`.
    pub async fn set_deal_closed(
        &self,
        deal_id: DealId,
        epoch: i64,
        closed: bool,
        now: Millis,
    ) -> Result<(), StoreError> {
        const SQL: &str =
            "UPDATE deals SET closed = $2, updated_at = $3 WHERE id = $1 AND owner_epoch = $4";
        let changed = on_pool!(self, pool => sqlx::query(SQL).bind(deal_id).bind(closed).bind(now).bind(epoch).execute(pool).await.map(|done| done.rows_affected()))?;
        fenced_unless(changed == 1, deal_id)
    }

    /// The deal's fencing epoch in the store; `None` when there is no such deal.
    pub async fn deal_epoch(&self, deal_id: DealId) -> Result<Option<i64>, StoreError> {
        const SQL: &str = "SELECT owner_epoch FROM deals WHERE id = $1";
        let epoch = on_pool!(self, pool => sqlx::query_scalar(SQL).bind(deal_id).fetch_optional(pool).await)?;
        Ok(epoch)
    }

    /// The deal's stored stock against its current round's live orders.
    pub async fn stock_check(&self, deal_id: DealId) -> Result<Option<StockCheck>, StoreError> {
        const SQL: &str = "SELECT d.total_units, d.available_units, \
                           COALESCE((SELECT CAST(SUM(o.quantity) AS BIGINT) FROM orders o WHERE o.deal_id = d.id AND o.round = d.round \
                                     AND o.status <> 'CANCELLED'), 0) AS units_held, \
                           (SELECT COUNT(*) FROM orders o WHERE o.deal_id = d.id AND o.round = d.round \
                                     AND o.status <> 'CANCELLED') AS orders_held \
                           FROM deals d WHERE d.id = $1";
        let row: Option<(i64, i64, i64, i64)> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(deal_id).fetch_optional(pool).await)?;
        Ok(row.map(
            |(total_units, available_units, units_held, orders_held)| StockCheck {
                total_units,
                available_units,
                units_held,
                orders_held,
            },
        ))
    }

    pub(super) async fn rearm(&self, deal_id: DealId, day: i64) -> Result<LoadedDeal, StoreError> {
        // The new window starts at 00:00 UTC of `day` and keeps the deal's length; the
        // `rearmed_day < $2` condition makes the re-arm happen at most once per date.
        const SQL: &str = "UPDATE deals SET round = round + 1, available_units = total_units, \
                           expires_at = $3 + (expires_at - starts_at), starts_at = $3, rearmed_day = $2, updated_at = $4 \
                           WHERE id = $1 AND recurrence = 'daily' AND rearmed_day < $2";
        let midnight = day * actors::clock::DAY_MS;
        let now = actors::clock::now_ms();
        // The earlier rounds' entries end with them.
        const EXPIRE: &str = "UPDATE waitlist_entries SET status = 'EXPIRED', updated_at = $2 \
                              WHERE deal_id = $1 AND status = 'WAITING' AND round < (SELECT round FROM deals WHERE id = $1)";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(SQL).bind(deal_id).bind(day).bind(midnight).bind(now).execute(&mut *tx).await?;
            sqlx::query(EXPIRE).bind(deal_id).bind(now).execute(&mut *tx).await?;
            tx.commit().await
        })?;
        let loaded = self.load_deal(deal_id).await?;
        loaded.ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Takes the deal over (cluster mode): its fencing epoch moves on, so no batch of an
    /// earlier owner can commit any more (the writer's fence). Returns the new epoch.
    pub async fn take_deal(&self, deal_id: DealId) -> Result<i64, StoreError> {
        const SQL: &str =
            "UPDATE deals SET owner_epoch = owner_epoch + 1 WHERE id = $1 RETURNING owner_epoch";
        let epoch: i64 =
            on_pool!(self, pool => sqlx::query_scalar(SQL).bind(deal_id).fetch_one(pool).await)?;
        Ok(epoch)
    }

    /// Every deal's fencing epoch, by id (cluster mode's ownership; 0 until a node takes it).
    pub async fn deal_epochs(&self) -> Result<std::collections::BTreeMap<DealId, i64>, StoreError> {
        const SQL: &str = "SELECT id, owner_epoch FROM deals ORDER BY id";
        let rows: Vec<(i64, i64)> =
            on_pool!(self, pool => sqlx::query_as(SQL).fetch_all(pool).await)?;
        Ok(rows.into_iter().collect())
    }
}

/// A fenced change that matched no row: the store holds the deal under another epoch (or no
/// longer holds it), so another node owns it now and nothing was changed.
fn fenced_unless(changed: bool, deal_id: DealId) -> Result<(), StoreError> {
    if changed {
        Ok(())
    } else {
        Err(StoreError::OwnershipLost {
            deal_ids: vec![deal_id],
        })
    }
}
