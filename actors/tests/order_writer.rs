//! The order writer against a fake journal: batches adapt to the load by themselves, nothing is
//! acknowledged before its batch commits, and a failed commit fails every order of the batch
//! and gives its units back to the deal.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actors::clock::now_ms;
use actors::deal::{DealRecord, PlaceError, PlaceOrder};
use actors::engine::{Engine, EngineConfig};
use actors::journal::{BoxFuture, Journal, JournalError, LoadedDeal, NewOrder, OrderRecord};
use tokio::sync::{Notify, Semaphore, oneshot};

mod support;
use support::live_deal;

/// A journal that records batch sizes, can hold commits until released, and can fail them.
#[derive(Default)]
struct FakeJournal {
    batches: Mutex<Vec<usize>>,
    next_id: Mutex<i64>,
    fail: AtomicBool,
    /// When set, each commit waits for one permit.
    gate: Option<Arc<Semaphore>>,
    /// Notified each time a commit begins.
    began: Notify,
}

impl Journal for FakeJournal {
    fn commit_orders(
        &self,
        orders: Vec<NewOrder>,
    ) -> BoxFuture<Result<Vec<OrderRecord>, JournalError>> {
        self.batches.lock().unwrap().push(orders.len());
        self.began.notify_one();
        let fail = self.fail.load(Ordering::SeqCst);
        let first_id = {
            let mut next = self.next_id.lock().unwrap();
            let first = *next + 1;
            *next += orders.len() as i64;
            first
        };
        let gate = self.gate.clone();
        Box::pin(async move {
            if let Some(gate) = gate {
                gate.acquire().await.expect("gate stays open").forget();
            }
            if fail {
                return Err(JournalError::Failed("injected failure".into()));
            }
            Ok(orders
                .into_iter()
                .enumerate()
                .map(|(i, order)| OrderRecord::stored(first_id + i as i64, order))
                .collect())
        })
    }

    fn rearm_deal(&self, _: i64, _: i64) -> BoxFuture<Result<LoadedDeal, JournalError>> {
        Box::pin(async { Err(JournalError::Failed("not used here".into())) })
    }
}

fn place(
    customer_id: i64,
) -> (
    PlaceOrder,
    oneshot::Receiver<Result<OrderRecord, PlaceError>>,
) {
    let (reply, outcome) = oneshot::channel();
    (
        PlaceOrder {
            customer_id,
            quantity: 1,
            idempotency_key: None,
            reply,
        },
        outcome,
    )
}

/// One order when idle; everything that queued during a commit goes in the next batch; and no
/// order is answered while its batch is still committing.
#[actix::test]
async fn batches_grow_with_the_queue_and_answers_wait_for_the_commit() {
    let gate = Arc::new(Semaphore::new(0));
    let journal = Arc::new(FakeJournal {
        gate: Some(gate.clone()),
        ..Default::default()
    });
    let engine = Engine::start(journal.clone(), EngineConfig::default());
    let (deal, _) = engine.launch(live_deal(1_000));

    let (first, mut first_outcome) = place(1);
    deal.addr.try_send(first).expect("mailbox has room");
    journal.began.notified().await;
    assert_eq!(
        *journal.batches.lock().unwrap(),
        vec![1],
        "the first order commits alone while idle"
    );
    let mut waiting = Vec::new();
    for customer in 2..=301 {
        let (message, outcome) = place(customer);
        deal.addr.send(message).await.expect("deal actor runs");
        waiting.push(outcome);
    }
    assert!(
        first_outcome.try_recv().is_err(),
        "answered before its batch committed"
    );

    gate.add_permits(1);
    assert!(first_outcome.await.expect("answered").is_ok());
    gate.add_permits(1);
    for outcome in waiting {
        assert!(outcome.await.expect("answered").is_ok());
    }
    assert_eq!(
        *journal.batches.lock().unwrap(),
        vec![1, 300],
        "the burst commits as one batch"
    );
    engine.stop();
}

/// With two commits allowed at once, an order arriving while one batch commits starts the
/// second at once; orders arriving while both commit wait for the first slot to free, and
/// each batch is answered when its own commit returns, whatever the other does.
#[actix::test]
async fn two_commits_overlap_and_each_batch_is_answered_on_its_own_commit() {
    let gate = Arc::new(Semaphore::new(0));
    let journal = Arc::new(FakeJournal {
        gate: Some(gate.clone()),
        ..Default::default()
    });
    let mut config = EngineConfig::default();
    config.writer.commits_in_flight = 2;
    let engine = Engine::start(journal.clone(), config);
    let (deal, _) = engine.launch(live_deal(1_000));

    let (first, first_outcome) = place(1);
    deal.addr.try_send(first).expect("mailbox has room");
    journal.began.notified().await;
    let (second, mut second_outcome) = place(2);
    deal.addr.send(second).await.expect("deal actor runs");
    tokio::time::timeout(std::time::Duration::from_secs(10), journal.began.notified())
        .await
        .expect("a second commit began while the first was under way");
    assert_eq!(
        *journal.batches.lock().unwrap(),
        vec![1, 1],
        "the second order commits beside the first"
    );
    let mut waiting = Vec::new();
    for customer in 3..=302 {
        let (message, outcome) = place(customer);
        deal.addr.send(message).await.expect("deal actor runs");
        waiting.push(outcome);
    }
    assert_eq!(
        journal.batches.lock().unwrap().len(),
        2,
        "no third commit while two are under way"
    );

    // The gate is fair: the first permit releases the first commit only.
    gate.add_permits(1);
    assert!(first_outcome.await.expect("answered").is_ok());
    journal.began.notified().await;
    assert_eq!(*journal.batches.lock().unwrap(), vec![1, 1, 300]);
    assert!(
        second_outcome.try_recv().is_err(),
        "answered before its own commit returned"
    );
    gate.add_permits(2);
    assert!(second_outcome.await.expect("answered").is_ok());
    for outcome in waiting {
        assert!(outcome.await.expect("answered").is_ok());
    }
    engine.stop();
}

/// A failed commit answers StoreFailed to every order of the batch and returns their units.
#[actix::test]
async fn a_failed_commit_fails_the_batch_and_returns_its_units() {
    let journal = Arc::new(FakeJournal::default());
    journal.fail.store(true, Ordering::SeqCst);
    let engine = Engine::start(journal.clone(), EngineConfig::default());
    let (deal, _) = engine.launch(live_deal(10));

    let mut outcomes = Vec::new();
    for customer in 1..=5 {
        let (message, outcome) = place(customer);
        deal.addr.send(message).await.expect("deal actor runs");
        outcomes.push(outcome);
    }
    for outcome in outcomes {
        assert_eq!(
            outcome.await.expect("answered"),
            Err(PlaceError::StoreFailed)
        );
    }
    // Each failure is answered by the deal's actor after it took the units back.
    assert_eq!(deal.mirror.available_units(), 10);
    let record = deal.addr.send(actors::deal::Snapshot).await.expect("runs");
    assert_eq!(record.available_units, 10);

    journal.fail.store(false, Ordering::SeqCst);
    let (message, outcome) = place(9);
    deal.addr.send(message).await.expect("deal actor runs");
    assert!(
        outcome.await.expect("answered").is_ok(),
        "the deal sells again once the store recovers"
    );
    engine.stop();
}

/// Orders queued behind a failing commit fail with it, at once: the store is presumed down, so
/// they are not sent to it one batch after another, each waiting out its timeout.
#[actix::test]
async fn orders_queued_behind_a_failed_commit_fail_with_it() {
    let gate = Arc::new(Semaphore::new(0));
    let journal = Arc::new(FakeJournal {
        gate: Some(gate.clone()),
        ..Default::default()
    });
    journal.fail.store(true, Ordering::SeqCst);
    let engine = Engine::start(journal.clone(), EngineConfig::default());
    let (deal, _) = engine.launch(live_deal(100));

    let mut outcomes = Vec::new();
    for customer in 1..=50 {
        let (message, outcome) = place(customer);
        deal.addr.send(message).await.expect("deal actor runs");
        outcomes.push(outcome);
        if customer == 1 {
            // The first order's commit is under way (held at the gate); the rest queue behind.
            journal.began.notified().await;
        }
    }
    // One permit: only the first batch (the one order sent while idle) may reach the journal.
    gate.add_permits(1);
    for outcome in outcomes {
        assert_eq!(
            outcome.await.expect("answered"),
            Err(PlaceError::StoreFailed)
        );
    }
    assert_eq!(
        *journal.batches.lock().unwrap(),
        vec![1],
        "the queued orders were failed without another commit"
    );
    assert_eq!(deal.mirror.available_units(), 100);

    journal.fail.store(false, Ordering::SeqCst);
    gate.add_permits(1);
    let (message, outcome) = place(99);
    deal.addr.send(message).await.expect("deal actor runs");
    assert!(
        outcome.await.expect("answered").is_ok(),
        "the next order tries the store again"
    );
    engine.stop();
}

/// A full writer queue refuses with Overloaded and keeps the units in the deal.
#[actix::test]
async fn a_full_writer_queue_refuses_without_losing_units() {
    let gate = Arc::new(Semaphore::new(0));
    let journal = Arc::new(FakeJournal {
        gate: Some(gate.clone()),
        ..Default::default()
    });
    let mut config = EngineConfig::default();
    config.writer.queue_max = 2;
    let engine = Engine::start(journal.clone(), config);
    let (deal, _) = engine.launch(live_deal(10));

    let mut outcomes = Vec::new();
    let (message, outcome) = place(1);
    let began = journal.began.notified();
    deal.addr.send(message).await.expect("deal actor runs");
    outcomes.push(outcome);
    // The first order must be in its commit before the others arrive, or it would still count
    // against the queue's bound (the writer runs on a thread of its own).
    began.await;
    for customer in 2..=5 {
        let (message, outcome) = place(customer);
        deal.addr.send(message).await.expect("deal actor runs");
        outcomes.push(outcome);
    }
    // One order is committing, two are queued: the last two are refused at once.
    let mut refused = 0;
    for outcome in outcomes.iter_mut().skip(3) {
        if outcome.await.expect("answered") == Err(PlaceError::Overloaded) {
            refused += 1;
        }
    }
    assert_eq!(refused, 2);
    gate.add_permits(10);
    for outcome in outcomes.into_iter().take(3) {
        assert!(outcome.await.expect("answered").is_ok());
    }
    let record = deal.addr.send(actors::deal::Snapshot).await.expect("runs");
    assert_eq!(
        record.available_units, 7,
        "three sold, the refused two given back"
    );
    engine.stop();
}

/// An order claimed on the caller's thread reaches the writer without the actor, is reported to
/// its deal when it enters a batch (a limit switched on afterwards counts it), and, when its
/// commit fails, its units come back.
#[actix::test]
async fn claimed_orders_are_reported_to_their_deal_and_returned_on_failure() {
    use actors::deal::{Amend, ReserveError};
    use actors::deal_handle::Intake;

    // Open until the failing part below closes it (so that nothing fails before all of its
    // orders are claimed: a failure returns units through the actor, which recalls the loan
    // meanwhile, and an order placed in that moment would go to the actor instead).
    let gate = Arc::new(Semaphore::new(1_000_000));
    let journal = Arc::new(FakeJournal {
        gate: Some(gate.clone()),
        ..Default::default()
    });
    let engine = Engine::start(journal.clone(), EngineConfig::default());
    let (deal, _) = engine.launch(live_deal(10));
    // The actor lends its counter once it has started; a snapshot waits for that.
    deal.addr.send(actors::deal::Snapshot).await.expect("runs");

    let (path, outcome) = deal.place(4, 2, None).expect("taken in");
    assert_eq!(
        path,
        Intake::Claimed,
        "an open, unlimited deal is claimed on this thread"
    );
    let order = outcome.await.expect("answered").expect("stored");
    assert_eq!(
        (order.customer_id, order.quantity, order.unit_price),
        (4, 2, 1_000)
    );
    assert_eq!(deal.mirror.available_units(), 8);

    let mut terms = live_deal(10).record.terms();
    terms.per_customer_limit = Some(2);
    deal.addr
        .send(Amend {
            terms,
            updated_at: now_ms(),
        })
        .await
        .expect("runs");
    let (path, outcome) = deal.place(4, 1, None).expect("taken in");
    assert_eq!(
        path,
        Intake::Actor,
        "a limited deal is decided by its actor"
    );
    assert_eq!(
        outcome.await.expect("answered"),
        Err(PlaceError::Refused(ReserveError::LimitExceeded {
            limit: 2,
            already: 2
        })),
        "the claimed order counts toward the limit"
    );

    let (other, _) = engine.launch(LoadedDeal {
        record: DealRecord {
            id: 2,
            ..live_deal(5).record
        },
        units_by_customer: HashMap::new(),
        claims: Vec::new(),
        waitlist: Vec::new(),
    });
    other.addr.send(actors::deal::Snapshot).await.expect("runs");
    journal.fail.store(true, Ordering::SeqCst);
    let open = gate.available_permits() as u32;
    gate.acquire_many(open).await.expect("gate").forget();
    let mut outcomes = Vec::new();
    for customer in 1..=5 {
        let (path, outcome) = other.place(customer, 1, None).expect("taken in");
        assert_eq!(path, Intake::Claimed);
        outcomes.push(outcome);
    }
    gate.add_permits(1_000);
    for outcome in outcomes {
        assert_eq!(
            outcome.await.expect("answered"),
            Err(PlaceError::StoreFailed)
        );
    }
    assert_eq!(
        other.mirror.available_units(),
        5,
        "every failed claim's units came back"
    );
    let record = other.addr.send(actors::deal::Snapshot).await.expect("runs");
    assert_eq!((record.available_units, record.total_units), (5, 5));
    engine.stop();
}

/// Orders handed over from many threads while the writer keeps going idle and waking: every one
/// is answered (a lost wake-up would leave orders in the inbox with the writer asleep).
#[actix::test]
async fn orders_from_many_threads_are_all_answered() {
    const THREADS: i64 = 4;
    const ORDERS_PER_THREAD: i64 = 2_000;
    let journal = Arc::new(FakeJournal::default());
    let engine = Engine::start(journal.clone(), EngineConfig::default());
    let (deal, _) = engine.launch(live_deal(THREADS * ORDERS_PER_THREAD));
    deal.addr.send(actors::deal::Snapshot).await.expect("runs");

    let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();
    for thread in 0..THREADS {
        let (deal, done) = (deal.clone(), done.clone());
        std::thread::spawn(move || {
            let mut stored = 0;
            for _ in 0..ORDERS_PER_THREAD {
                // One at a time: each order waits for its commit, so the writer goes idle often.
                let (_, outcome) = deal.place(thread, 1, None).expect("taken in");
                if matches!(outcome.blocking_recv(), Ok(Ok(_))) {
                    stored += 1;
                }
            }
            let _ = done.send(stored);
        });
    }
    drop(done);
    let mut stored = 0;
    let all_answered = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(count) = finished.recv().await {
            stored += count;
        }
    })
    .await;
    assert!(all_answered.is_ok(), "some orders were never answered");
    assert_eq!(stored, THREADS * ORDERS_PER_THREAD);
    assert_eq!(deal.mirror.available_units(), 0);
    let committed: usize = journal.batches.lock().unwrap().iter().sum();
    assert_eq!(committed as i64, THREADS * ORDERS_PER_THREAD);
    engine.stop();
}
