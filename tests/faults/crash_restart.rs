//! PostgreSQL crashed and restarted (`pg_ctlcluster restart -m immediate`: every backend
//! killed, recovery at start) under buyers ordering in a loop, several rounds. A commit whose
//! answer the crash cut off may have committed: the engine must answer it 201 or 504, never as
//! a failure, and its memory must come back equal to the store (docs/RELIABILITY.md).

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::json;

use super::engine_process::{self, EngineProcess, Outcome, admin_token, fire, scenario};
use super::helpers::{Backend, TestStore};
use super::history::{History, check};
use super::{OUTAGE_UNITS, SERIAL, StartPostgres, postgres_cluster};

/// Rounds of the crash-restart run, and what each waits for.
const CRASH_ROUNDS: usize = 4;
const CRASH_BUYERS: usize = 32;
/// Acknowledged orders in a round before Postgres is crashed, and after it is back.
const CRASH_OKS_BEFORE: usize = 300;
const CRASH_OKS_AFTER: usize = 100;
/// Orders one buyer sends in a round at most, and how long a round may last at most.
const CRASH_ORDERS_PER_BUYER_MAX: usize = 2_000;
const CRASH_ROUND_MAX: Duration = Duration::from_secs(60);

/// `CRASH_BUYERS` buyers, each ordering one unit at a time in a loop until `stop` is set (or
/// their bound is reached); every outcome on the channel.
fn buyers_in_a_loop(
    engine: &EngineProcess,
    deal_id: i64,
    tokens: &[String],
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::sync::mpsc::UnboundedReceiver<Outcome> {
    let (sender, outcomes) = tokio::sync::mpsc::unbounded_channel();
    for token in tokens.iter().take(CRASH_BUYERS) {
        let (client, url, token, sender, stop) = (
            engine.client.clone(),
            format!("{}/api/v1/orders", engine.base),
            token.clone(),
            sender.clone(),
            stop.clone(),
        );
        actix_web::rt::spawn(async move {
            for _ in 0..CRASH_ORDERS_PER_BUYER_MAX {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let outcome = engine_process::order_one(&client, &url, &token, deal_id).await;
                if sender.send(outcome).is_err() {
                    return;
                }
            }
        });
    }
    outcomes
}

/// Records outcomes until `oks` more orders were acknowledged (or the round's bound passed, or
/// every buyer stopped).
async fn record_until_oks(
    history: &mut History,
    outcomes: &mut tokio::sync::mpsc::UnboundedReceiver<Outcome>,
    oks: usize,
    deadline: Instant,
) {
    let target = history.ok.len() + oks;
    while history.ok.len() < target && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), outcomes.recv()).await {
            Ok(Some(outcome)) => history.record(outcome),
            Ok(None) => return,
            Err(_) => {}
        }
    }
}

/// The available units the engine shows for the deal, and the store's.
async fn available_units(engine: &EngineProcess, store: &TestStore, deal_id: i64) -> (i64, i64) {
    let (status, deal) = engine
        .call("GET", &format!("/api/v1/deals/{deal_id}"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{deal}");
    let db = topkart::store::Store::connect(&store.url, 1)
        .await
        .expect("store");
    let stock = db.stock_check(deal_id).await.expect("store").expect("deal");
    db.close().await;
    (
        deal["available_units"].as_i64().expect("available_units"),
        stock.total_units - stock.units_held,
    )
}

/// PostgreSQL crashed and restarted (`pg_ctlcluster restart -m immediate`) under 32 buyers
/// ordering in a loop, four rounds: every stored order was answered 201 or 504 (none a definite
/// failure), every 201 is stored, stock conserved; once the store is back the engine's available
/// units equal the store's, and the deal, cut down to its last units, sells out to exactly 0 and
/// answers SOLD_OUT.
#[actix_web::test]
async fn postgres_crash_restart_rounds_under_buyers_in_a_loop() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let store = TestStore::create(Backend::Postgres).await;
    let engine = EngineProcess::start_with_env(&store, &[("TOPKART_RATE_LIMITS", "off")]);
    let _start_again = StartPostgres;
    let units = OUTAGE_UNITS * 100;
    let (deal_id, tokens) = scenario(&engine, units, CRASH_BUYERS).await;
    let mut history = History::default();
    for round in 0..CRASH_ROUNDS {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut outcomes = buyers_in_a_loop(&engine, deal_id, &tokens, stop.clone());
        let deadline = Instant::now() + CRASH_ROUND_MAX;
        record_until_oks(&mut history, &mut outcomes, CRASH_OKS_BEFORE, deadline).await;
        let crash = actix_web::rt::task::spawn_blocking(|| postgres_cluster("restart"));
        while !crash.is_finished() {
            match tokio::time::timeout(Duration::from_millis(100), outcomes.recv()).await {
                Ok(Some(outcome)) => history.record(outcome),
                Ok(None) | Err(_) => {}
            }
        }
        assert!(crash.await.expect("restart ran"), "Postgres restarted");
        record_until_oks(&mut history, &mut outcomes, CRASH_OKS_AFTER, deadline).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        history.record_rest(&mut outcomes).await;
        eprintln!("crash round {round}: {history:?}");
    }
    // Batches whose outcome was unknown are settled once the store answers: wait for it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (engine_units, store_units) = available_units(&engine, &store, deal_id).await;
        if engine_units == store_units {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the engine's available units ({engine_units}) came to equal the store's ({store_units})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check(
        "fault=postgres-crash-restart rounds=4 store=Postgres",
        &store,
        deal_id,
        units,
        &history,
    )
    .await;

    // Down to its last units: exactly those sell, then SOLD_OUT, at 0 in memory and store.
    let admin = admin_token(&engine).await;
    let (status, deal) = engine
        .call(
            "PATCH",
            &format!("/api/v1/deals/{deal_id}"),
            Some(&admin),
            Some(json!({"available_units": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{deal}");
    let mut last = History::default();
    let mut outcomes = fire(&engine, deal_id, &tokens, 40);
    last.record_rest(&mut outcomes).await;
    assert_eq!(
        (
            last.ok.len(),
            last.unknown,
            last.failures_by_kind
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
        ),
        (5, 0, vec!["409 SOLD_OUT"]),
        "the last units sell exactly, then the deal is sold out: {last:?}"
    );
    assert_eq!(available_units(&engine, &store, deal_id).await, (0, 0));
    drop(engine);
    store.remove().await;
}
