//! SQLite's order writer: the batches' commits on one connection of their own, on a thread of
//! their own, with prepared statements (rusqlite, on the same libsqlite3 as sqlx).
//!
//! Through sqlx each batch was one text read from a JSON array (`json_each`): every row's nine
//! values were extracted from JSON, twice more for the outbox and the statistics, and each
//! call crossed from the writer's thread to sqlx's connection thread and back (issue 13,
//! docs/BENCHMARKS.md). Here a batch is one `BEGIN IMMEDIATE`, a cached prepared insert per
//! order (its id from `last_insert_rowid`), one update per deal and round, the outbox row
//! (naming the ids) and the statistics' upserts (summed here), and `COMMIT` — the same rows and
//! meaning as Postgres' one statement.
//!
//! Each batch writes its receipt (its key and its ids, `order_batches`). A failure before
//! `COMMIT`, or while `COMMIT` writes the WAL (a full disk), rolls the batch back: nothing
//! stored. A failed sync after the WAL was written leaves the outcome unknown: the order
//! writer then asks through [`SqliteWriter::settle`], on this same thread, what became of the
//! batch.
//!
//! A batch that fails is rolled back; a connection left inside a transaction after that (the
//! rollback itself failed) is replaced by a new one, never used again (the lesson of the
//! disk-full fault test: a connection believing it was inside a transaction once turned the
//! next batch's commit into a savepoint's release).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use actors::journal::NewOrder;
use actors::{DealId, OrderId};
use rusqlite::{Connection, TransactionBehavior, params};

use super::error::StoreError;
use super::stats_rows::{STATS_ADD, stats_key};

/// How often, while orders are being written, a thread of its own copies the WAL's committed
/// pages back into the database file (a passive checkpoint: it never blocks the writer). A
/// checkpoint inside a commit held every order of the batch and every order queued behind it
/// while the pages were copied and the database file synced — the open loop's p99.9 (issue 13,
/// figure 4; docs/BENCHMARKS.md).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// The WAL's size, in pages, past which a commit checkpoints by itself (SQLite's
/// `wal_autocheckpoint`; its default is 1,000). The background checkpoints keep the WAL well
/// under it; it bounds the file if they fall behind, and it is what lets the WAL start again
/// from its beginning under a steady load (only a checkpoint that finds no frame left behind
/// allows that, and the writer's own is one). Large, because fewer, larger checkpoints write
/// the hot index and table pages once each instead of once per checkpoint: from 1,000 to
/// 16,384 pages took the hot deal from 30.4k/32.6k to 37.1k/35.8k orders/s (docs/BENCHMARKS.md).
pub(super) const CHECKPOINT_PAGES_MAX: i64 = 65_536;

/// The writer's page cache, in KiB (SQLite's default is 2,000). With 10,000,000 orders stored
/// the indexes' inner pages no longer fit in 2 MB and every batch read them again from the
/// file: hot deal 0.38 / 0.27× of `/livez` with the default against 0.40 / 0.40× with 64 MiB
/// (0.39–0.45× on an empty store; docs/BENCHMARKS.md). It fills only with pages the writer
/// touches.
const CACHE_KIB: i64 = 65_536;

/// Batches waiting for the writer's thread at most: the order writer has at most
/// `TOPKART_WRITER_COMMITS` (≤ `WRITER_CONNECTIONS_MAX`, 4) batches committing at once.
const JOBS_MAX: usize = 4;

type Reply = tokio::sync::oneshot::Sender<Result<Vec<OrderId>, Failure>>;
type SettleReply = tokio::sync::oneshot::Sender<Result<Option<Vec<OrderId>>, String>>;

/// What the writer's thread is asked to do.
enum Job {
    /// Commit a batch under its key.
    Commit(Vec<NewOrder>, i64, Reply),
    /// Say what became of the batch of that key (see `Store::settle_batch`).
    Settle(i64, SettleReply),
}

/// Why a batch was not committed, as far as the thread knows.
#[derive(Debug)]
enum Failure {
    /// Before `COMMIT`: rolled back, nothing stored.
    RolledBack(String),
    /// `COMMIT` itself failed: it may have been made durable.
    AtCommit(String),
}

/// The handle the store keeps; the thread ends when the last handle is dropped.
#[derive(Debug)]
pub struct SqliteWriter {
    jobs: mpsc::SyncSender<Job>,
    /// The database file.
    path: PathBuf,
}

impl SqliteWriter {
    /// Opens the writer's connection to the database file at `path` (already created and
    /// migrated by sqlx) and starts its thread.
    pub fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = open(path).map_err(writer_error)?;
        let checkpoints = open(path).map_err(writer_error)?;
        let (jobs, inbox) = mpsc::sync_channel::<Job>(JOBS_MAX);
        // One pending "something was committed" at most; the checkpointer ends with the writer.
        let (committed, written) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_while_writing(&checkpoints, &written))
            .map_err(StoreError::Io)?;
        let thread_path = path.to_path_buf();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, &thread_path, inbox, &committed))
            .map_err(StoreError::Io)?;
        Ok(Self {
            jobs,
            path: path.to_path_buf(),
        })
    }

    /// The database file it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commits the batch: every order inserted, their units taken, their confirmations owed,
    /// the statistics moved, in one transaction — or nothing. The ids in the batch's order.
    pub async fn commit(
        &self,
        orders: Vec<NewOrder>,
        batch_key: i64,
    ) -> Result<Vec<OrderId>, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        // The order writer has at most JOBS_MAX batches committing at once, and settles only
        // with `try_send`: the channel never fills here.
        self.jobs
            .send(Job::Commit(orders, batch_key, reply))
            .map_err(|_| gone())?;
        match answer.await.map_err(|_| gone())? {
            Ok(ids) => Ok(ids),
            Err(Failure::RolledBack(cause)) => Err(StoreError::Writer(cause)),
            Err(Failure::AtCommit(cause)) => Err(StoreError::OutcomeUnknown {
                batch_key: Some(batch_key),
                cause,
            }),
        }
    }

    /// What became of the batch of `batch_key`, asked on the writer's own thread (so never
    /// beside one of its commits): its ids, or `None` — then its key is written as void.
    pub async fn settle(&self, batch_key: i64) -> Result<Option<Vec<OrderId>>, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(Job::Settle(batch_key, reply))
            .map_err(|_| StoreError::Writer("the SQLite writer is busy; ask again".into()))?;
        answer
            .await
            .map_err(|_| gone())?
            .map_err(StoreError::Writer)
    }
}

fn gone() -> StoreError {
    StoreError::Writer("the SQLite writer's thread is gone".into())
}

fn writer_error(error: rusqlite::Error) -> StoreError {
    StoreError::Writer(error.to_string())
}

/// The writer's (and the checkpointer's) connection: the same settings as sqlx's (WAL,
/// synchronous=FULL, the same checkpoint bound, a busy timeout for the other connections'
/// writes).
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES_MAX)?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

fn run(
    mut conn: Connection,
    path: &PathBuf,
    inbox: mpsc::Receiver<Job>,
    wrote: &mpsc::SyncSender<()>,
) {
    for job in inbox {
        let (orders, batch_key, reply) = match job {
            Job::Commit(orders, batch_key, reply) => (orders, batch_key, reply),
            Job::Settle(batch_key, reply) => {
                let _ = reply.send(settle(&conn, batch_key).map_err(|error| error.to_string()));
                continue;
            }
        };
        let committed = commit(&mut conn, &orders, batch_key);
        if committed.is_ok() {
            // Full: the checkpointer already knows there is something to copy back.
            let _ = wrote.try_send(());
        }
        if committed.is_err() && !conn.is_autocommit() {
            // Still inside the failed transaction: this connection is not used again.
            match open(path) {
                Ok(fresh) => conn = fresh,
                Err(error) => tracing::error!(%error, "the SQLite writer could not reconnect"),
            }
        }
        let _ = reply.send(committed);
    }
}

/// Waits (without polling) until the writer committed something, then passively checkpoints at
/// most once every `CHECKPOINT_EVERY`. Ends when the writer's thread ends.
fn checkpoint_while_writing(conn: &Connection, written: &mpsc::Receiver<()>) {
    while written.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_EVERY);
        if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            // The next commit's signal tries again; the writer's own checkpoint bounds the WAL.
            tracing::debug!(%error, "a background SQLite checkpoint failed");
        }
    }
}

/// The batch's receipt if it committed (its ids), or `None` after writing its key as void.
fn settle(conn: &Connection, batch_key: i64) -> rusqlite::Result<Option<Vec<OrderId>>> {
    const VOID: &str = "INSERT INTO order_batches (batch_key, order_ids, created_at) \
                        VALUES (?1, NULL, ?2) ON CONFLICT (batch_key) DO NOTHING";
    const READ: &str = "SELECT order_ids FROM order_batches WHERE batch_key = ?1";
    conn.execute(VOID, params![batch_key, actors::clock::now_ms()])?;
    let stored: Option<String> = conn.query_row(READ, params![batch_key], |row| row.get(0))?;
    let Some(text) = stored else {
        return Ok(None);
    };
    let mut ids: Vec<OrderId> = serde_json::from_str(&text)
        .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
    ids.sort_unstable();
    Ok(Some(ids))
}

/// The batch in one transaction; see `Failure` for what a failure says.
fn commit(
    conn: &mut Connection,
    orders: &[NewOrder],
    batch_key: i64,
) -> Result<Vec<OrderId>, Failure> {
    let tx = write_batch(conn, orders, batch_key)
        .map_err(|error| Failure::RolledBack(error.to_string()))?;
    let (tx, ids) = tx;
    tx.commit().map_err(|error| {
        if sync_failed(&error) {
            Failure::AtCommit(error.to_string())
        } else {
            Failure::RolledBack(error.to_string())
        }
    })?;
    Ok(ids)
}

/// Whether a failed `COMMIT` may have made the batch durable: only when every frame of it,
/// the commit frame included, was written to the WAL and the sync after them failed — a later
/// recovery could still find them. A failed write (a full disk: `SQLITE_FULL`, an I/O error
/// while writing) leaves no commit frame, and SQLite rolls the transaction back.
fn sync_failed(error: &rusqlite::Error) -> bool {
    use rusqlite::ffi::{SQLITE_IOERR_DIR_FSYNC, SQLITE_IOERR_FSYNC};
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == SQLITE_IOERR_FSYNC
                || failure.extended_code == SQLITE_IOERR_DIR_FSYNC
    )
}

/// Every row of the batch, inside its transaction, not yet committed.
fn write_batch<'c>(
    conn: &'c mut Connection,
    orders: &[NewOrder],
    batch_key: i64,
) -> rusqlite::Result<(rusqlite::Transaction<'c>, Vec<OrderId>)> {
    const INSERT: &str = "INSERT INTO orders (deal_id, round, customer_id, quantity, unit_price, total_price, \
                          status, idempotency_key, created_at, updated_at, payment_status, pay_by) \
                          VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'OPEN', ?7, ?8, ?8, ?9, ?10)";
    const TAKE: &str =
        "UPDATE deals SET available_units = available_units - ?2 WHERE id = ?1 AND round = ?3";
    const OWED: &str = "INSERT INTO mail_outbox (kind, order_ids, next_attempt_at, created_at) \
                        VALUES ('ORDER_CONFIRMED', ?1, 0, ?2)";
    const RECEIPT: &str =
        "INSERT INTO order_batches (batch_key, order_ids, created_at) VALUES (?1, ?2, ?3)";
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut ids = Vec::with_capacity(orders.len());
    let mut units: BTreeMap<(DealId, i64), i64> = BTreeMap::new();
    let mut counted: BTreeMap<(i64, i64), (i64, i64)> = BTreeMap::new();
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        for order in orders {
            let payment_status = if order.pay_by.is_some() {
                "UNPAID"
            } else {
                "NOT_REQUIRED"
            };
            insert.execute(params![
                order.deal_id,
                order.round,
                order.customer_id,
                order.quantity,
                order.unit_price,
                order.total_price,
                order.idempotency_key,
                order.created_at,
                payment_status,
                order.pay_by,
            ])?;
            ids.push(tx.last_insert_rowid());
            *units.entry((order.deal_id, order.round)).or_default() += order.quantity;
            let count = counted
                .entry(stats_key(order.created_at, order.deal_id))
                .or_default();
            *count = (count.0 + 1, count.1 + order.total_price);
        }
    }
    {
        let mut take = tx.prepare_cached(TAKE)?;
        for ((deal_id, round), quantity) in &units {
            take.execute(params![deal_id, quantity, round])?;
        }
    }
    let created_at = orders.iter().map(|order| order.created_at).max();
    let named = serde_json::to_string(&ids).unwrap_or_default();
    tx.prepare_cached(OWED)?
        .execute(params![named, created_at.unwrap_or(0)])?;
    tx.prepare_cached(RECEIPT)?
        .execute(params![batch_key, named, created_at.unwrap_or(0)])?;
    {
        // `$1`…`$5` are SQLite parameters numbered in order of appearance: bound by position.
        let mut count = tx.prepare_cached(STATS_ADD)?;
        for ((day, slot), (orders, revenue)) in &counted {
            count.execute(params![day, "OPEN", slot, orders, revenue])?;
        }
    }
    Ok((tx, ids))
}
