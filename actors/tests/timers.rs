//! The deal actor's timers on a paused clock: the end of the window and the midnight re-arm
//! happen at their instants, driven by `tokio::time::advance` (no real waiting). The actor, the
//! writer and the test share one runtime, and the deal reads a `TokioClock` that moves with it.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix::{Actor, Addr, Arbiter};
use actors::clock::{Clock, DAY_MS, TokioClock, day_of};
use actors::deal::{DealActor, DealRecord, DealState, PlaceOrder, Recurrence, Snapshot};
use actors::fast_path::mirror::DealMirror;
use actors::journal::{BoxFuture, Journal, JournalError, LoadedDeal, NewOrder, OrderRecord};
use actors::model::{PlaceError, ReserveError};
use actors::order_writer::{OrderWriter, WriterConfig, WriterStats};
use tokio::sync::oneshot;

/// Stores every batch at once; re-arms a deal the way the store does (a new round from 00:00 of
/// the day, full stock, the window's length kept), recording each re-arm asked for.
struct StoreLikeJournal {
    deal: Mutex<DealRecord>,
    next_id: Mutex<i64>,
    rearms: Mutex<Vec<i64>>,
}

impl Journal for StoreLikeJournal {
    fn commit_orders(
        &self,
        orders: Vec<NewOrder>,
    ) -> BoxFuture<Result<Vec<OrderRecord>, JournalError>> {
        support::store_all(&self.next_id, orders)
    }

    fn rearm_deal(&self, _: i64, day: i64) -> BoxFuture<Result<LoadedDeal, JournalError>> {
        self.rearms.lock().unwrap().push(day);
        let mut deal = self.deal.lock().unwrap();
        if deal.rearmed_day < day {
            let length = deal.expires_at - deal.starts_at;
            deal.round += 1;
            deal.available_units = deal.total_units;
            deal.starts_at = day * DAY_MS;
            deal.expires_at = day * DAY_MS + length;
            deal.rearmed_day = day;
        }
        let loaded = LoadedDeal {
            record: deal.clone(),
            units_by_customer: HashMap::new(),
            claims: Vec::new(),
            waitlist: Vec::new(),
        };
        Box::pin(async move { Ok(loaded) })
    }
}

/// A deal of 10 units open over `[starts_at, expires_at)`.
fn deal(starts_at: i64, expires_at: i64, recurrence: Recurrence) -> DealRecord {
    DealRecord {
        id: 1,
        product_name: "Lamp".into(),
        actual_price: 2_000,
        final_price: 1_000,
        total_units: 10,
        available_units: 10,
        starts_at,
        expires_at,
        per_customer_limit: None,
        payment_window_secs: None,
        closed: false,
        recurrence,
        round: 1,
        rearmed_day: day_of(starts_at),
        owner_epoch: 0,
        created_at: starts_at,
        updated_at: starts_at,
    }
}

struct Running {
    addr: Addr<DealActor>,
    mirror: Arc<DealMirror>,
    journal: Arc<StoreLikeJournal>,
    clock: TokioClock,
}

/// Starts the writer and the deal's actor on this (paused) runtime, the clock at `now`.
fn start(record: DealRecord, now: i64) -> Running {
    let clock = TokioClock::starting_at(now);
    let journal = Arc::new(StoreLikeJournal {
        deal: Mutex::new(record.clone()),
        next_id: Mutex::new(0),
        rearms: Mutex::new(Vec::new()),
    });
    let writer = OrderWriter::start(
        &Arbiter::current(),
        journal.clone(),
        WriterConfig::default(),
        Arc::new(WriterStats::default()),
    );
    let mirror = Arc::new(DealMirror::new(&record));
    let state = DealState::new(record);
    let addr = {
        let (mirror, journal) = (mirror.clone(), journal.clone());
        DealActor::new(state, mirror, writer, journal, Arc::new(clock), 64, true).start()
    };
    Running {
        addr,
        mirror,
        journal,
        clock,
    }
}

/// Moves the paused clock on by `ms` and lets every timer that fell due run.
async fn advance(running: &Running, ms: u64) {
    support::advance(&running.addr, ms).await;
}

async fn order(running: &Running) -> Result<OrderRecord, PlaceError> {
    let (reply, outcome) = oneshot::channel();
    let message = PlaceOrder {
        customer_id: 7,
        quantity: 1,
        idempotency_key: None,
        reply,
    };
    running.addr.send(message).await.expect("the actor runs");
    outcome.await.expect("answered")
}

/// At `expires_at - 1 ms` an order is sold and the counter is lent; at `expires_at` the actor's
/// timer recalls the loan by itself (within tokio's 1 ms tick), and the next order is refused as
/// expired.
#[actix::test]
async fn the_window_ends_at_its_instant_on_a_paused_clock() {
    tokio::time::pause();
    let t0 = 1_800_000_000_000;
    let running = start(deal(t0 - 1_000, t0 + 10_000, Recurrence::None), t0);
    tokio::task::yield_now().await;
    assert!(running.mirror.is_lent(), "an open, unlimited deal is lent");

    advance(&running, 9_999).await;
    assert_eq!(running.clock.now_ms(), t0 + 9_999);
    let sold = order(&running).await.expect("sold before the end");
    assert_eq!(sold.created_at, t0 + 9_999);
    assert!(running.mirror.is_lent());

    // tokio's timers tick in whole milliseconds: the one at `expires_at` has run 1 ms on.
    advance(&running, 2).await;
    assert_eq!(running.clock.now_ms(), t0 + 10_001);
    assert!(
        !running.mirror.is_lent(),
        "the expiry timer recalled the loan, with no order to prompt it"
    );
    assert_eq!(
        order(&running).await,
        Err(PlaceError::Refused(ReserveError::Expired))
    );
    let record = running.addr.send(Snapshot).await.expect("runs");
    assert_eq!(record.available_units, 9);
}

/// A daily deal re-arms at 00:00 UTC: a second before midnight nothing has happened; at
/// midnight (within tokio's 1 ms tick) the actor asks the store for the new day's round, once,
/// and sells it in full.
#[actix::test]
async fn a_daily_deal_rearms_at_midnight_on_a_paused_clock() {
    tokio::time::pause();
    let day = day_of(1_800_000_000_000);
    let midnight = (day + 1) * DAY_MS;
    let running = start(
        deal(midnight - 3_600_000, midnight - 600_000, Recurrence::Daily),
        midnight - 3_600_000 + 1_000,
    );
    assert!(order(&running).await.is_ok());
    assert!(order(&running).await.is_ok());

    advance(&running, 3_600_000 - 1_000 - 1_000).await;
    assert_eq!(running.clock.now_ms(), midnight - 1_000);
    assert!(
        running.journal.rearms.lock().unwrap().is_empty(),
        "not before midnight"
    );
    let before = running.addr.send(Snapshot).await.expect("runs");
    assert_eq!((before.round, before.available_units), (1, 8));

    // tokio's timers tick in whole milliseconds: the midnight timer has run 1 ms on.
    advance(&running, 1_000 + 1).await;
    let after = running.addr.send(Snapshot).await.expect("runs");
    assert_eq!(*running.journal.rearms.lock().unwrap(), vec![day + 1]);
    assert_eq!(
        (after.round, after.available_units, after.starts_at),
        (2, 10, midnight)
    );
    let sold = order(&running).await.expect("the new round sells");
    assert_eq!(sold.round, 2);
}
