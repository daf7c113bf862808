//! A deal's claims in its actor, on a paused clock (issue 12): a payment that asks 1 ms before
//! its order's deadline begins and is never lapsed under it; one that asks at the deadline is
//! refused; the actor lapses the unpaid claims at their instant by itself (no sweeper) and
//! takes their units back only for the orders the store cancelled; a payment that began in
//! time and then failed lapses at once.

mod support;

use std::sync::{Arc, Mutex};

use actix::{Actor, Addr, Arbiter};
use actors::clock::{Clock, TokioClock, day_of};
use actors::deal::{
    BeginPayment, DealActor, DealRecord, DealState, EndPayment, PaymentRefusal, PlaceOrder,
    Recurrence, Snapshot,
};
use actors::journal::{BoxFuture, Journal, JournalError, LoadedDeal, NewOrder, OrderRecord};
use actors::order_writer::{OrderWriter, WriterConfig, WriterStats};
use actors::{DealId, Millis, OrderId};
use tokio::sync::oneshot;

/// Stores every batch at once; lapses what it is asked to unless the order was "paid" in the
/// store first (`paid`), recording each request with its instant.
#[derive(Default)]
struct ClaimsJournal {
    next_id: Mutex<i64>,
    paid: Mutex<Vec<OrderId>>,
    lapses: Mutex<Vec<(Vec<OrderId>, Millis)>>,
}

impl Journal for ClaimsJournal {
    fn commit_orders(
        &self,
        orders: Vec<NewOrder>,
    ) -> BoxFuture<Result<Vec<OrderRecord>, JournalError>> {
        support::store_all(&self.next_id, orders)
    }

    fn rearm_deal(&self, _: DealId, _: i64) -> BoxFuture<Result<LoadedDeal, JournalError>> {
        Box::pin(async { Err(JournalError::Failed("not in this test".into())) })
    }

    fn lapse_claims(
        &self,
        _: DealId,
        order_ids: Vec<OrderId>,
        _: i64,
        now: Millis,
    ) -> BoxFuture<Result<Vec<OrderId>, JournalError>> {
        self.lapses.lock().unwrap().push((order_ids.clone(), now));
        let paid = self.paid.lock().unwrap().clone();
        let lapsed = order_ids
            .into_iter()
            .filter(|id| !paid.contains(id))
            .collect();
        Box::pin(async move { Ok(lapsed) })
    }
}

const WINDOW_MS: i64 = 10_000;

fn deal(now: i64) -> DealRecord {
    DealRecord {
        id: 1,
        product_name: "Lamp".into(),
        actual_price: 2_000,
        final_price: 1_000,
        total_units: 10,
        available_units: 10,
        starts_at: now - 1_000,
        expires_at: now + 3_600_000,
        per_customer_limit: None,
        payment_window_secs: Some(WINDOW_MS / 1_000),
        closed: false,
        recurrence: Recurrence::None,
        round: 1,
        rearmed_day: day_of(now),
        owner_epoch: 0,
        created_at: now,
        updated_at: now,
    }
}

struct Running {
    addr: Addr<DealActor>,
    journal: Arc<ClaimsJournal>,
    clock: TokioClock,
}

fn start(now: i64) -> Running {
    let clock = TokioClock::starting_at(now);
    let journal = Arc::new(ClaimsJournal::default());
    let writer = OrderWriter::start(
        &Arbiter::current(),
        journal.clone(),
        WriterConfig::default(),
        Arc::new(WriterStats::default()),
    );
    let record = deal(now);
    let mirror = Arc::new(actors::fast_path::mirror::DealMirror::new(&record));
    let addr = DealActor::new(
        DealState::new(record),
        mirror,
        writer,
        journal.clone(),
        Arc::new(clock),
        64,
        true,
    )
    .start();
    Running {
        addr,
        journal,
        clock,
    }
}

async fn advance(running: &Running, ms: u64) {
    support::advance(&running.addr, ms).await;
}

async fn order(running: &Running, customer_id: i64) -> OrderRecord {
    let (reply, outcome) = oneshot::channel();
    let message = PlaceOrder {
        customer_id,
        quantity: 2,
        idempotency_key: None,
        reply,
    };
    running.addr.send(message).await.expect("the actor runs");
    outcome.await.expect("answered").expect("sold")
}

async fn available(running: &Running) -> i64 {
    running
        .addr
        .send(Snapshot)
        .await
        .expect("runs")
        .available_units
}

#[actix::test]
async fn a_payment_and_its_deadline_are_decided_one_way_by_the_actor() {
    tokio::time::pause();
    let t0 = 1_800_000_000_000;
    let running = start(t0);
    let a = order(&running, 7).await;
    let b = order(&running, 8).await;
    let c = order(&running, 9).await;
    assert_eq!(a.pay_by, Some(t0 + WINDOW_MS));
    assert_eq!(available(&running).await, 4);

    // 1 ms before the deadline: A's payment begins (and, in the store, goes through: C's).
    advance(&running, (WINDOW_MS - 1) as u64).await;
    assert_eq!(running.clock.now_ms(), a.pay_by.unwrap() - 1);
    let begun = running
        .addr
        .send(BeginPayment { order_id: a.id })
        .await
        .unwrap();
    assert!(begun.is_ok(), "{begun:?}");
    assert!(
        running
            .addr
            .send(BeginPayment { order_id: c.id })
            .await
            .unwrap()
            .is_ok()
    );
    running.journal.paid.lock().unwrap().push(c.id);
    running
        .addr
        .send(EndPayment {
            order_id: c.id,
            paid: true,
        })
        .await
        .unwrap();

    // At the deadline: B's payment is refused, and the actor lapses B by itself — not A,
    // whose payment is under way, nor C, paid.
    advance(&running, 1).await;
    let refused = running
        .addr
        .send(BeginPayment { order_id: b.id })
        .await
        .unwrap();
    assert_eq!(refused, Err(PaymentRefusal::Expired));
    advance(&running, 1).await;
    let lapses = running.journal.lapses.lock().unwrap().clone();
    assert_eq!(lapses.len(), 1, "{lapses:?}");
    assert_eq!(lapses[0].0, vec![b.id]);
    assert!(
        lapses[0].1 >= b.pay_by.unwrap(),
        "lapsed at or after its deadline"
    );
    assert_eq!(available(&running).await, 6, "B's two units are back");

    // A's payment fails after the deadline (no money): A lapses at once.
    running
        .addr
        .send(EndPayment {
            order_id: a.id,
            paid: false,
        })
        .await
        .unwrap();
    advance(&running, 1).await;
    let lapses = running.journal.lapses.lock().unwrap().clone();
    assert_eq!(lapses.len(), 2, "{lapses:?}");
    assert_eq!(lapses[1].0, vec![a.id]);
    assert_eq!(
        available(&running).await,
        8,
        "A's units are back; C's stay sold"
    );
    // Nothing else is ever lapsed.
    advance(&running, 60_000).await;
    assert_eq!(running.journal.lapses.lock().unwrap().len(), 2);
}
