//! The store: SQLite (embedded default) or Postgres (production), chosen by the URL's scheme.
//!
//! Both backends run the very same SQL text (`$N` placeholders work in both through sqlx), so
//! the two cannot drift apart in meaning: the [`on_pool!`] macro expands each query once per
//! backend. Only the migrations differ (the id column's type). The one story test in
//! `tests/store_story.rs` and the whole API suite run against both.

mod rows;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use actors::deal::{DealRecord, DealTerms};
use actors::journal::{
    BoxFuture, Journal, JournalError, LoadedDeal, NewOrder, OrderRecord, OrderStatus,
};
use actors::limits::UNITS_MAX;
use actors::{CustomerId, DealId, Millis, OrderId};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use rows::User;
use rows::{DealRow, OrderRow, UserRow};

/// What can go wrong in the store, as the layers above need to tell it apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; `fields` names the columns already taken.
    #[error("{} already taken", fields.join(" and "))]
    Conflict { fields: Vec<&'static str> },
    #[error("unsupported database URL {0:?}: use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("could not prepare the SQLite file: {0}")]
    Io(#[from] std::io::Error),
    /// A write the store refused because it would leave a value out of its range (or the deal
    /// is gone): nothing was changed.
    #[error("deal {deal_id}: {what} would leave its units out of range; nothing was changed")]
    OutOfRange { deal_id: DealId, what: String },
    /// A stored deal the engine cannot take: the column and what is wrong with it.
    #[error("deal {deal_id}: column {column}: {problem}")]
    Malformed {
        deal_id: DealId,
        column: String,
        problem: String,
    },
}

/// Runs `$body` with `$pool` bound to whichever backend's pool the store holds. The body is
/// compiled once per backend, so the same query text serves both.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite($pool) => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Backend {
    async fn close(&self) {
        match self {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

/// A handle on the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    /// The one connection order batches commit on (a pool of one: it reconnects by itself).
    /// SQLite drops a connection's page cache whenever another connection wrote since it last
    /// read, so batches committed round-robin over the pool each began with a cold cache and
    /// re-read the pages they touch; on Postgres each batch woke another server process (see
    /// docs/BENCHMARKS.md). A connection of its own keeps the writer's warm.
    order_writer: Backend,
}

/// A user to create; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub phone_number: Option<String>,
    pub password_hash: String,
    pub user_type: String,
}

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

/// Which orders a listing returns.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub customer_id: Option<CustomerId>,
    pub deal_id: Option<DealId>,
    pub status: Option<OrderStatus>,
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

/// SQLite commits a batch in one call to its connection: begin, insert the orders, take the
/// units, commit. As four calls (sqlx's begin, the insert, the update, the commit) each batch
/// made four hand-offs between the writer's thread and the connection's own thread, each
/// waiting for a core on a busy machine (measured: see docs/BENCHMARKS.md). `$1` is the batch
/// as a JSON array of `[deal_id, round, customer_id, quantity, unit_price, total_price,
/// idempotency_key, created_at]` rows (see `orders_as_json`); numbered parameters are shared by
/// every statement of the text. `BEGIN IMMEDIATE` takes the write lock at once, so the
/// transaction never has to upgrade a read lock.
macro_rules! sqlite_commit_batch {
    ($take_units:literal) => {
        concat!(
            "BEGIN IMMEDIATE; ",
            "INSERT INTO orders (deal_id, round, customer_id, quantity, unit_price, total_price, \
             status, idempotency_key, created_at, updated_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, 'OPEN', \
             value ->> 6, value ->> 7, value ->> 7 FROM json_each($1) ORDER BY key RETURNING id; ",
            $take_units,
            "; COMMIT;"
        )
    };
}

/// A batch of one deal (the hot deal's case): `$2` deal, `$3` round, `$4` units.
const SQLITE_COMMIT_ONE_DEAL: &str = sqlite_commit_batch!(
    "UPDATE deals SET available_units = available_units - $4 WHERE id = $2 AND round = $3"
);

/// A batch over many deals: `$2` is `[[deal ids], [rounds], [quantities]]` as JSON.
const SQLITE_COMMIT_MANY_DEALS: &str = sqlite_commit_batch!(
    "UPDATE deals SET available_units = available_units - take.quantity \
     FROM (SELECT d.value AS deal_id, r.value AS round, q.value AS quantity \
           FROM json_each($2, '$[0]') d JOIN json_each($2, '$[1]') r ON r.key = d.key \
           JOIN json_each($2, '$[2]') q ON q.key = d.key) AS take \
     WHERE deals.id = take.deal_id AND deals.round = take.round"
);

/// Postgres commits a batch as ONE statement, so one round trip and one implicit transaction:
/// the insert and the units' update are data-modifying CTEs, which run exactly once and to
/// completion whether or not the outer query reads them. As a transaction of four statements
/// (`BEGIN`, insert, update, `COMMIT`) each batch made four round trips, each a hand-off between
/// the writer's thread, the server and back on a busy machine (measured: docs/BENCHMARKS.md).
/// Ids are taken from the sequence in the `ORDER BY n` order: the batch's order.
const POSTGRES_COMMIT_BATCH: &str = "WITH inserted AS ( \
       INSERT INTO orders (deal_id, round, customer_id, quantity, unit_price, total_price, \
         status, idempotency_key, created_at, updated_at) \
       SELECT deal_id, round, customer_id, quantity, unit_price, total_price, 'OPEN', idempotency_key, created_at, created_at \
       FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[], $7::TEXT[], $8::BIGINT[]) \
       WITH ORDINALITY AS batch (deal_id, round, customer_id, quantity, unit_price, total_price, idempotency_key, created_at, n) \
       ORDER BY n RETURNING id), \
     taken AS ( \
       UPDATE deals SET available_units = deals.available_units - take.quantity \
       FROM UNNEST($9::BIGINT[], $10::BIGINT[], $11::BIGINT[]) AS take (deal_id, round, quantity) \
       WHERE deals.id = take.deal_id AND deals.round = take.round) \
     SELECT id FROM inserted";

/// Renders orders as the JSON rows `SQLITE_COMMIT_*` read.
fn orders_as_json(orders: &[NewOrder]) -> String {
    let rows: Vec<serde_json::Value> = orders
        .iter()
        .map(|o| {
            serde_json::json!([
                o.deal_id,
                o.round,
                o.customer_id,
                o.quantity,
                o.unit_price,
                o.total_price,
                o.idempotency_key,
                o.created_at
            ])
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

/// How long a query waits for a connection, including reconnecting to a store that is down.
/// An order waits at most about this long for its 503 during an outage (see `OrderWriter`).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Opens the store the URL names, creating the SQLite file and its folder when missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let (backend, order_writer) = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: an acknowledged order survives a power cut, not only a process crash.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
                // A new database only (an existing one keeps its size). An order touches one
                // leaf of the per-customer index at a random place, so a batch of n orders
                // rewrites about n pages into the WAL: 1 KiB pages write a quarter of what
                // 4 KiB pages do (measured: see docs/BENCHMARKS.md).
                .page_size(1024);
            if let Some(folder) = options.get_filename().parent() {
                if !folder.as_os_str().is_empty() {
                    std::fs::create_dir_all(folder)?;
                }
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options.clone())
                .await?;
            let order_writer = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            (Backend::Sqlite(pool), Backend::Sqlite(order_writer))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options.clone())
                .await?;
            // Lazy: the connection opens on the first commit, on the writer's own thread. sqlx
            // registers a Postgres connection with the reactor of the runtime that opened it,
            // so opened here (on the main thread) every round trip of the writer would be
            // woken through the main thread first (measured: docs/BENCHMARKS.md).
            let order_writer = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_lazy_with(options);
            (Backend::Postgres(pool), Backend::Postgres(order_writer))
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        Ok(Self {
            backend,
            order_writer,
        })
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
            Backend::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.order_writer.close().await;
        self.backend.close().await;
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(())
    }

    // ---- users -------------------------------------------------------------------------

    pub async fn create_user(&self, user: &NewUser, now: Millis) -> Result<User, StoreError> {
        const SQL: &str = "INSERT INTO users (username, email, phone_number, password_hash, user_type, created_at) \
                           VALUES ($1, $2, $3, $4, $5, $6) RETURNING *";
        let row: Result<UserRow, sqlx::Error> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(&user.username)
            .bind(&user.email)
            .bind(&user.phone_number)
            .bind(&user.password_hash)
            .bind(&user.user_type)
            .bind(now)
            .fetch_one(pool)
            .await);
        match row {
            Ok(row) => Ok(row.into()),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(self.taken_user_fields(user).await)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Which of the user's unique fields are taken (both backends name only one in the error).
    async fn taken_user_fields(&self, user: &NewUser) -> StoreError {
        const SQL: &str = "SELECT COALESCE(SUM(CASE WHEN username = $1 THEN 1 ELSE 0 END), 0), \
                           COALESCE(SUM(CASE WHEN email = $2 THEN 1 ELSE 0 END), 0) FROM users WHERE username = $1 OR email = $2";
        let counts: Result<(i64, i64), sqlx::Error> = on_pool!(self, pool => sqlx::query_as(SQL).bind(&user.username).bind(&user.email).fetch_one(pool).await);
        let fields = match counts {
            Ok((username, email)) => [("username", username), ("email", email)]
                .into_iter()
                .filter(|(_, taken)| *taken > 0)
                .map(|(field, _)| field)
                .collect(),
            Err(_) => Vec::new(),
        };
        StoreError::Conflict {
            fields: if fields.is_empty() {
                vec!["username"]
            } else {
                fields
            },
        }
    }

    /// The user whose username or email is `login`, with the password hash.
    pub async fn user_by_login(&self, login: &str) -> Result<Option<(User, String)>, StoreError> {
        const SQL: &str =
            "SELECT * FROM users WHERE username = $1 OR email = $1 ORDER BY id LIMIT 1";
        let row: Option<UserRow> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(login).fetch_optional(pool).await)?;
        Ok(row.map(|row| {
            let hash = row.password_hash.clone();
            (row.into(), hash)
        }))
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        const SQL: &str = "SELECT * FROM users WHERE id = $1";
        let row: Option<UserRow> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(id).fetch_optional(pool).await)?;
        Ok(row.map(User::from))
    }

    // ---- refresh tokens ----------------------------------------------------------------

    pub async fn insert_refresh_token(
        &self,
        jti: &str,
        user_id: i64,
        family: &str,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO refresh_tokens (jti, user_id, family, used, expires_at) VALUES ($1, $2, $3, FALSE, $4)";
        on_pool!(self, pool => sqlx::query(SQL).bind(jti).bind(user_id).bind(family).bind(expires_at).execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Marks the refresh token used, once: true for the first caller only, false for a token
    /// that was already used, revoked, expired or never issued.
    pub async fn consume_refresh_token(&self, jti: &str, now: Millis) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE refresh_tokens SET used = TRUE WHERE jti = $1 AND used = FALSE AND expires_at > $2";
        let changed = on_pool!(self, pool => sqlx::query(SQL).bind(jti).bind(now).execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Revokes every refresh token of a family (a reused token means the family leaked).
    pub async fn revoke_refresh_family(&self, family: &str) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE refresh_tokens SET used = TRUE WHERE family = $1";
        on_pool!(self, pool => sqlx::query(SQL).bind(family).execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(())
    }

    // ---- deals -------------------------------------------------------------------------

    pub async fn insert_deal(&self, deal: &NewDeal, now: Millis) -> Result<DealRecord, StoreError> {
        const SQL: &str = "INSERT INTO deals (product_name, actual_price, final_price, total_units, available_units, \
                           starts_at, expires_at, per_customer_limit, closed, recurrence, round, rearmed_day, created_at, updated_at) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE, $9, 1, $10, $11, $11) RETURNING *";
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
        let held: Vec<(i64, i64, i64)> =
            on_pool!(self, pool => sqlx::query_as(HELD).fetch_all(pool).await)?;
        let mut by_deal: HashMap<DealId, HashMap<CustomerId, i64>> = HashMap::new();
        for (deal_id, customer_id, units) in held {
            by_deal
                .entry(deal_id)
                .or_default()
                .insert(customer_id, units);
        }
        let mut loaded = LoadedDeals::default();
        for row in rows {
            match row {
                Ok(record) => {
                    let units_by_customer = by_deal.remove(&record.id).unwrap_or_default();
                    loaded.deals.push(LoadedDeal {
                        record,
                        units_by_customer,
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
        Ok(Some(LoadedDeal {
            record,
            units_by_customer: held.into_iter().collect(),
        }))
    }

    /// Stores a deal's new definition (units aside).
    pub async fn update_deal_terms(
        &self,
        deal_id: DealId,
        terms: &DealTerms,
        now: Millis,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE deals SET product_name = $2, actual_price = $3, final_price = $4, starts_at = $5, \
                           expires_at = $6, per_customer_limit = $7, recurrence = $8, updated_at = $9 WHERE id = $1";
        on_pool!(self, pool => sqlx::query(SQL)
            .bind(deal_id)
            .bind(&terms.product_name)
            .bind(terms.actual_price)
            .bind(terms.final_price)
            .bind(terms.starts_at)
            .bind(terms.expires_at)
            .bind(terms.per_customer_limit)
            .bind(terms.recurrence.as_str())
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Moves a deal's stored total and available units by the same amount. Relative, so it
    /// commutes with the writer's concurrent decrements. The delta must lie within
    /// `±UNITS_MAX` (the engine proved it), and the row changes only if the new total stays in
    /// `0..=UNITS_MAX` with its available units not below zero: the store never receives a
    /// value the engine would refuse, and never takes one that would wrap (SQLite would turn
    /// an overflowing sum into a REAL).
    pub async fn resize_deal(
        &self,
        deal_id: DealId,
        delta_units: i64,
        now: Millis,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE deals SET total_units = total_units + $2, available_units = available_units + $2, \
                           updated_at = $3 WHERE id = $1 AND total_units + $2 BETWEEN 0 AND $4 AND available_units + $2 >= 0";
        if !(-UNITS_MAX..=UNITS_MAX).contains(&delta_units) {
            return Err(StoreError::OutOfRange {
                deal_id,
                what: format!("a change of {delta_units} units"),
            });
        }
        let changed = on_pool!(self, pool => sqlx::query(SQL).bind(deal_id).bind(delta_units).bind(now).bind(UNITS_MAX).execute(pool).await.map(|done| done.rows_affected()))?;
        if changed != 1 {
            return Err(StoreError::OutOfRange {
                deal_id,
                what: format!("a change of {delta_units} units"),
            });
        }
        Ok(())
    }

    pub async fn set_deal_closed(
        &self,
        deal_id: DealId,
        closed: bool,
        now: Millis,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE deals SET closed = $2, updated_at = $3 WHERE id = $1";
        on_pool!(self, pool => sqlx::query(SQL).bind(deal_id).bind(closed).bind(now).execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(())
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

    async fn rearm(&self, deal_id: DealId, day: i64) -> Result<LoadedDeal, StoreError> {
        // The new window starts at 00:00 UTC of `day` and keeps the deal's length; the
        // `rearmed_day < $2` condition makes the re-arm happen at most once per date.
        const SQL: &str = "UPDATE deals SET round = round + 1, available_units = total_units, \
                           expires_at = $3 + (expires_at - starts_at), starts_at = $3, rearmed_day = $2, updated_at = $4 \
                           WHERE id = $1 AND recurrence = 'daily' AND rearmed_day < $2";
        let midnight = day * actors::clock::DAY_MS;
        let now = actors::clock::now_ms();
        on_pool!(self, pool => sqlx::query(SQL).bind(deal_id).bind(day).bind(midnight).bind(now).execute(pool).await.map(|done| done.rows_affected()))?;
        let loaded = self.load_deal(deal_id).await?;
        loaded.ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    // ---- orders ------------------------------------------------------------------------

    /// One transaction: insert every order, take their units off their deals. All or nothing.
    ///
    /// One call of fixed text per backend, whatever the batch size, so it is prepared once and
    /// cached: SQLite reads the batch from a JSON array (`json_each`), Postgres from parallel
    /// arrays (`UNNEST`). A `VALUES` list would be new SQL for every batch size, parsed and
    /// planned again each time (measured: most of the writer's CPU). Ids come back in the
    /// batch's order.
    ///
    /// A connection whose commit failed is closed, never handed out again: the transaction may
    /// still be open on it (closing rolls it back), and a connection left believing it is inside
    /// a transaction once turned the next batch's commit into the release of a savepoint — an
    /// order acknowledged and never stored (found by the fault suite's disk-full test).
    pub async fn commit_orders(&self, orders: &[NewOrder]) -> Result<Vec<OrderId>, StoreError> {
        let mut units: HashMap<(DealId, i64), i64> = HashMap::new();
        for order in orders {
            *units.entry((order.deal_id, order.round)).or_default() += order.quantity;
        }
        // One statement takes the units off every deal of the batch (a burst spread over a
        // thousand deals would otherwise cost a thousand round trips per commit).
        let mut by_deal: Vec<((DealId, i64), i64)> = units.into_iter().collect();
        by_deal.sort_unstable();
        let deal_ids: Vec<i64> = by_deal.iter().map(|((deal_id, _), _)| *deal_id).collect();
        let rounds: Vec<i64> = by_deal.iter().map(|((_, round), _)| *round).collect();
        let quantities: Vec<i64> = by_deal.iter().map(|(_, quantity)| *quantity).collect();
        let committed = match &self.order_writer {
            Backend::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                // A hot deal's batch is all one deal: the plain update is cheaper than the
                // set-based one.
                let query = if let ([deal_id], [round], [quantity]) =
                    (&deal_ids[..], &rounds[..], &quantities[..])
                {
                    sqlx::query_scalar(SQLITE_COMMIT_ONE_DEAL)
                        .bind(orders_as_json(orders))
                        .bind(deal_id)
                        .bind(round)
                        .bind(quantity)
                } else {
                    let takes = serde_json::json!([deal_ids, rounds, quantities]).to_string();
                    sqlx::query_scalar(SQLITE_COMMIT_MANY_DEALS)
                        .bind(orders_as_json(orders))
                        .bind(takes)
                };
                let committed = query.fetch_all(&mut *conn).await;
                if committed.is_err() {
                    conn.close_on_drop();
                }
                committed
            }
            Backend::Postgres(pool) => {
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
                    .fetch_all(&mut *conn)
                    .await;
                if committed.is_err() {
                    conn.close_on_drop();
                }
                committed
            }
        };
        let mut ids: Vec<i64> = committed?;
        // Ids are handed out in the batch's order; sorting undoes any reordering of the
        // returned rows.
        ids.sort_unstable();
        assert_eq!(ids.len(), orders.len(), "one id per inserted order");
        Ok(ids)
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
    pub async fn list_orders(
        &self,
        filter: &OrderFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<OrderRecord>), StoreError> {
        const WHERE: &str = " WHERE ($1 IS NULL OR customer_id = $1) AND ($2 IS NULL OR deal_id = $2) AND ($3 IS NULL OR status = $3)";
        const COUNT: &str = const_format_concat!("SELECT COUNT(*) FROM orders", WHERE);
        const PAGE: &str = const_format_concat!(
            "SELECT * FROM orders",
            WHERE,
            " ORDER BY id DESC LIMIT $4 OFFSET $5"
        );
        let status = filter.status.map(OrderStatus::as_str);
        let count: i64 = on_pool!(self, pool => sqlx::query_scalar(COUNT)
            .bind(filter.customer_id)
            .bind(filter.deal_id)
            .bind(status)
            .fetch_one(pool)
            .await)?;
        let rows: Vec<OrderRow> = on_pool!(self, pool => sqlx::query_as(PAGE)
            .bind(filter.customer_id)
            .bind(filter.deal_id)
            .bind(status)
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
        now: Millis,
    ) -> Result<Transition, StoreError> {
        const UPDATE: &str =
            "UPDATE orders SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2";
        const RESTOCK: &str =
            "UPDATE deals SET available_units = available_units + $3 WHERE id = $1 AND round = $2";
        let Some(current) = self.order_by_id(order_id).await? else {
            return Ok(Transition::NotFound);
        };
        if !current.status.may_become(next) {
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
                    sqlx::query(RESTOCK).bind(current.deal_id).bind(current.round).bind(current.quantity).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(changed)
            }
            .await;
            // Never reuse a connection whose transaction failed (see `commit_orders`).
            if changed.is_err() {
                conn.close_on_drop();
            }
            changed
        })?;
        if changed != 1 {
            // Someone changed it between our read and our update: report what it is now.
            return Ok(match self.order_by_id(order_id).await? {
                Some(current) => Transition::Refused { current },
                None => Transition::NotFound,
            });
        }
        let restocked = next == OrderStatus::Cancelled;
        Ok(Transition::Changed {
            order: OrderRecord {
                status: next,
                updated_at: now,
                ..current
            },
            restocked,
        })
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

/// The store as the engine's journal: the writer's commits and the daily re-arm.
#[derive(Clone)]
pub struct StoreJournal(pub Arc<Store>);

impl Journal for StoreJournal {
    fn commit_orders(
        &self,
        orders: Vec<NewOrder>,
    ) -> BoxFuture<Result<Vec<OrderRecord>, JournalError>> {
        let store = self.0.clone();
        Box::pin(async move {
            let ids = store
                .commit_orders(&orders)
                .await
                .map_err(|error| JournalError(error_chain(&error)))?;
            Ok(ids
                .into_iter()
                .zip(orders)
                .map(|(id, order)| OrderRecord::stored(id, order))
                .collect())
        })
    }

    fn rearm_deal(&self, deal_id: DealId, day: i64) -> BoxFuture<Result<LoadedDeal, JournalError>> {
        let store = self.0.clone();
        Box::pin(async move {
            store
                .rearm(deal_id, day)
                .await
                .map_err(|error| JournalError(error_chain(&error)))
        })
    }
}

/// An error and its sources on one line, for the log.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
