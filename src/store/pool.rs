//! The connection to the store: SQLite (embedded default) or Postgres (production), chosen by
//! the URL's scheme, and [`on_pool!`], which runs one query text on whichever it is.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use super::error::StoreError;

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
pub(super) use on_pool;

#[derive(Clone, Debug)]
pub(super) enum Backend {
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
    pub(super) backend: Backend,
    /// Where order batches commit: one connection of their own, so the writer's stays warm
    /// (SQLite drops a connection's page cache whenever another connection wrote since it last
    /// read; on Postgres each batch round-robined over the pool woke another server process:
    /// docs/BENCHMARKS.md).
    pub(super) order_writer: OrderWriter,
    /// The next order batch's key (see `order_batches`): counts up from a random start, so two
    /// nodes (or two runs) of one store do not choose the same keys, and each node's keys go
    /// into the key's index in order.
    pub(super) batch_keys: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

/// The order writer's connection.
#[derive(Clone, Debug)]
pub(super) enum OrderWriter {
    /// A connection on a thread of its own, with prepared statements (`sqlite_writer`).
    Sqlite(std::sync::Arc<super::sqlite_writer::SqliteWriter>),
    /// A pool of its own, a connection for each batch committing at once (it reconnects by
    /// itself).
    Postgres(PgPool),
}

/// Connections the order writer may hold at most (`TOPKART_WRITER_COMMITS` chooses how many
/// batches commit at once; a pool only opens the connections it is asked for).
pub const WRITER_CONNECTIONS_MAX: u32 = 4;

/// How long a query waits for a connection, including reconnecting to a store that is down.
/// An order waits at most about this long for its 503 during an outage (see `OrderWriter`).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A random start for the batch keys in `0..2^62`: a run would need 2^62 batches to wrap.
fn first_batch_key() -> i64 {
    use rand::Rng;
    rand::rng().random_range(0..1i64 << 62)
}

impl Store {
    /// The key the next order batch writes in its own transaction.
    pub(super) fn next_batch_key(&self) -> i64 {
        self.batch_keys
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

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
                .page_size(1024)
                .pragma(
                    "wal_autocheckpoint",
                    super::sqlite_writer::CHECKPOINT_PAGES_MAX.to_string(),
                );
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
            let order_writer = super::sqlite_writer::SqliteWriter::start(options.get_filename())?;
            (
                Backend::Sqlite(pool),
                OrderWriter::Sqlite(std::sync::Arc::new(order_writer)),
            )
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
                .max_connections(WRITER_CONNECTIONS_MAX)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_lazy_with(options);
            (Backend::Postgres(pool), OrderWriter::Postgres(order_writer))
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        Ok(Self {
            backend,
            order_writer,
            batch_keys: std::sync::Arc::new(std::sync::atomic::AtomicI64::new(first_batch_key())),
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

    /// Closes the pools (SQLite's writer thread ends with the last handle on the store).
    pub async fn close(&self) {
        if let OrderWriter::Postgres(pool) = &self.order_writer {
            pool.close().await;
        }
        self.backend.close().await;
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(())
    }
}
