//! SQLite's start: the units each customer holds in each deal's current round, summed here
//! over one pass of the orders table.
//!
//! The one-query version (a join on the deals' current round and a `GROUP BY` deal and
//! customer) took 17.5 s with 10,000,000 orders stored: SQLite fetched every row through the
//! `(deal_id, round, status)` index, one lookup of the table each, and sorted the groups in a
//! temporary B-tree (issue 13, figure 6; docs/BENCHMARKS.md). Here the table is read once in
//! its own order, the rows of cancelled orders are skipped by SQLite itself, and the sums are a
//! hash map keyed by deal and customer — only rows of a deal's current round count.

use std::collections::HashMap;
use std::path::PathBuf;

use actors::{CustomerId, DealId};
use rusqlite::{Connection, OpenFlags};

use super::error::StoreError;

/// `(deal, customer, units)` for every customer holding units of a deal's current round
/// (orders not cancelled), on a thread of its own (a blocking read).
pub(super) async fn held_units(
    path: PathBuf,
) -> Result<Vec<(DealId, CustomerId, i64)>, StoreError> {
    tokio::task::spawn_blocking(move || scan(&path))
        .await
        .map_err(|error| StoreError::Writer(format!("the start-up scan stopped: {error}")))?
        .map_err(|error| StoreError::Writer(error.to_string()))
}

fn scan(path: &std::path::Path) -> rusqlite::Result<Vec<(DealId, CustomerId, i64)>> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let rounds: HashMap<DealId, i64> = conn
        .prepare("SELECT id, round FROM deals")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut held: HashMap<(DealId, CustomerId), i64> = HashMap::new();
    let mut orders = conn.prepare(
        "SELECT deal_id, round, customer_id, quantity FROM orders WHERE status <> 'CANCELLED'",
    )?;
    let mut rows = orders.query([])?;
    while let Some(row) = rows.next()? {
        let deal_id: DealId = row.get(0)?;
        if rounds.get(&deal_id) != Some(&row.get::<_, i64>(1)?) {
            continue;
        }
        *held.entry((deal_id, row.get(2)?)).or_default() += row.get::<_, i64>(3)?;
    }
    Ok(held
        .into_iter()
        .map(|((deal_id, customer_id), units)| (deal_id, customer_id, units))
        .collect())
}
