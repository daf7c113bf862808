//! The order writer when a commit's outcome is unknown (the store's answer was lost): the
//! batch's units stay taken and its requesters wait while the writer asks the store what
//! became of it; a committed batch is answered as stored, a void one gives its units back and
//! fails; past the writer's `outcome_wait` the requesters hear `OutcomeUnknown` and the units
//! stay taken until the store says.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actors::deal::{PlaceError, PlaceOrder, Snapshot};
use actors::engine::{Engine, EngineConfig};
use actors::journal::{
    BatchFate, BoxFuture, Journal, JournalError, LoadedDeal, NewOrder, OrderRecord,
};
use tokio::sync::{Notify, oneshot};

mod support;
use support::live_deal;

/// What the fake store says, in turn, when asked what became of a batch.
#[derive(Clone, Copy, Debug)]
enum Says {
    /// It cannot answer (down).
    Nothing,
    Committed,
    Void,
}

/// A journal whose every commit loses its answer; `settle_batch` answers from a script.
struct LostAnswers {
    /// The orders of each batch sent, by key.
    sent: Mutex<HashMap<i64, Vec<NewOrder>>>,
    next_key: Mutex<i64>,
    script: Mutex<VecDeque<Says>>,
    /// Notified each time the writer asks.
    asked: Notify,
}

impl LostAnswers {
    fn new(script: &[Says]) -> Arc<Self> {
        Arc::new(Self {
            sent: Mutex::new(HashMap::new()),
            next_key: Mutex::new(100),
            script: Mutex::new(script.iter().copied().collect()),
            asked: Notify::new(),
        })
    }

    fn then_say(&self, says: Says) {
        self.script.lock().unwrap().push_back(says);
    }
}

impl Journal for LostAnswers {
    fn commit_orders(
        &self,
        orders: Vec<NewOrder>,
    ) -> BoxFuture<Result<Vec<OrderRecord>, JournalError>> {
        let batch_key = {
            let mut next = self.next_key.lock().unwrap();
            *next += 1;
            *next
        };
        self.sent.lock().unwrap().insert(batch_key, orders);
        Box::pin(async move {
            Err(JournalError::OutcomeUnknown {
                batch_key: Some(batch_key),
                cause: "connection reset after the commit was sent".into(),
            })
        })
    }

    fn settle_batch(&self, batch_key: i64) -> BoxFuture<Result<BatchFate, JournalError>> {
        let says = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Says::Nothing);
        let orders = self.sent.lock().unwrap()[&batch_key].len() as i64;
        self.asked.notify_one();
        Box::pin(async move {
            match says {
                Says::Nothing => Err(JournalError::Failed("store down".into())),
                Says::Committed => Ok(BatchFate::Committed((1..=orders).collect())),
                Says::Void => Ok(BatchFate::Void),
            }
        })
    }

    fn rearm_deal(&self, _: i64, _: i64) -> BoxFuture<Result<LoadedDeal, JournalError>> {
        Box::pin(async { Err(JournalError::Failed("not used here".into())) })
    }
}

fn engine(journal: Arc<LostAnswers>, outcome_wait: Duration) -> Engine {
    let mut config = EngineConfig::default();
    config.writer.outcome_wait = outcome_wait;
    Engine::start(journal, config)
}

async fn place(
    deal: &actors::deal_handle::DealHandle,
    customer_id: i64,
) -> oneshot::Receiver<Result<OrderRecord, PlaceError>> {
    let (reply, outcome) = oneshot::channel();
    let order = PlaceOrder {
        customer_id,
        quantity: 2,
        idempotency_key: None,
        reply,
    };
    deal.addr.send(order).await.expect("deal actor runs");
    outcome
}

async fn available(deal: &actors::deal_handle::DealHandle) -> i64 {
    deal.addr
        .send(Snapshot)
        .await
        .expect("deal actor runs")
        .available_units
}

/// The store was down when first asked, then says the batch committed: the order is answered
/// as stored, with the id the store gave it, and its units stay sold.
#[actix::test]
async fn a_batch_found_committed_is_answered_as_stored() {
    let journal = LostAnswers::new(&[Says::Nothing, Says::Nothing, Says::Committed]);
    let engine = engine(journal.clone(), Duration::from_secs(60));
    let (deal, _) = engine.launch(live_deal(10));

    let outcome = place(&deal, 7).await;
    let order = outcome
        .await
        .expect("answered")
        .expect("stored: the store found the batch committed");
    assert_eq!((order.id, order.customer_id, order.quantity), (1, 7, 2));
    assert_eq!(available(&deal).await, 8, "its units stay sold");
    assert!(
        journal.script.lock().unwrap().is_empty(),
        "asked three times"
    );
    engine.stop();
}

/// The store says the batch did not commit: its units go back and the order fails (503).
#[actix::test]
async fn a_batch_found_void_gives_its_units_back_and_fails() {
    let journal = LostAnswers::new(&[Says::Void]);
    let engine = engine(journal.clone(), Duration::from_secs(60));
    let (deal, _) = engine.launch(live_deal(10));

    let outcome = place(&deal, 7).await;
    assert_eq!(
        outcome.await.expect("answered"),
        Err(PlaceError::StoreFailed)
    );
    assert_eq!(
        available(&deal).await,
        10,
        "its units are back on the shelf"
    );
    assert_eq!(deal.mirror.available_units(), 10);
    engine.stop();
}

/// The store does not answer within `outcome_wait`: the requester hears `OutcomeUnknown`, and
/// the units stay taken until the store finally says the batch did not commit.
#[actix::test]
async fn past_the_wait_the_outcome_is_unknown_and_the_units_stay_taken_until_the_store_says() {
    let journal = LostAnswers::new(&[]);
    let engine = engine(journal.clone(), Duration::from_millis(200));
    let (deal, _) = engine.launch(live_deal(10));

    let outcome = place(&deal, 7).await;
    assert_eq!(
        outcome.await.expect("answered"),
        Err(PlaceError::OutcomeUnknown)
    );
    assert_eq!(
        available(&deal).await,
        8,
        "the units stay taken while the batch may be stored"
    );

    journal.then_say(Says::Void);
    // The writer keeps asking (at most a second apart); poll with a bound.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while available(&deal).await != 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the units came back once the store said the batch is void"
        );
        tokio::time::timeout(Duration::from_millis(100), journal.asked.notified())
            .await
            .ok();
    }
    assert_eq!(deal.mirror.available_units(), 10);
    engine.stop();
}
