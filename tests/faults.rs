//! The fault suite: a burst against a real engine process while a fault is injected, every
//! request recorded in a history (invoked → ok / definite failure / unknown), then checked:
//!
//! - ok orders ≤ units, and the store never holds more units than the deal has;
//! - every ok order exists afterwards;
//! - no order exists for a definite failure (stored ≤ ok + unknown);
//! - conservation for the deal;
//! - no customer holds more units than the deal's per-customer limit.
//!
//! Faults: SIGKILL at a seeded moment (several seeds), SIGSTOP for 2 s then SIGCONT, Postgres
//! stopped mid-burst and started again, Postgres crashed and restarted (`-m immediate`) under
//! buyers in a loop, several rounds, the SQLite store made unwritable (a full disk), Redis
//! stopped. Each run prints its history and verdict; `TOPKART_FAULT_SEED=n` replays
//! one SIGKILL seed. The faults run one at a time: a Postgres restart touches the shared server.

#[path = "api/engine_process.rs"]
#[allow(dead_code)]
mod engine_process;
#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "api/history.rs"]
#[allow(dead_code)]
mod history;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use engine_process::{EngineProcess, Outcome, admin_token, fire, scenario, scenario_with_limit};
use helpers::{Backend, TestStore};
use history::{History, check};
use serde_json::json;

/// One fault at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const UNITS: i64 = 300;
const BURST: usize = 600;
const BUYERS: usize = 30;
/// 30 buyers × 15 > 300 units: the deal still sells out, and the limit refuses the bots.
const PER_CUSTOMER_LIMIT: i64 = 15;
/// The first few buyers are bots: each sends this many times as many orders as a person.
const BOTS: usize = 5;
const BOT_REPEAT: usize = 5;

/// The standard fault scenario: `UNITS` units, `PER_CUSTOMER_LIMIT` per customer, and the
/// tokens to fire with, in which every bot appears `BOT_REPEAT` times — so a burst makes the
/// bots run into the limit before the deal sells out, and the checker has a limit to check.
async fn limited_scenario(engine: &EngineProcess) -> (i64, Vec<String>) {
    let (deal_id, buyers) =
        scenario_with_limit(engine, UNITS, BUYERS, Some(PER_CUSTOMER_LIMIT)).await;
    let mut tokens = Vec::new();
    for (i, token) in buyers.into_iter().enumerate() {
        let copies = if i < BOTS { BOT_REPEAT } else { 1 };
        tokens.extend(std::iter::repeat_n(token, copies));
    }
    (deal_id, tokens)
}

fn signal(engine: &EngineProcess, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &engine.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name}");
}

/// SIGKILL after a seeded number of answers, restart, burst again: the combined history holds.
async fn sigkill_at_a_seeded_moment(backend: Backend, seed: u64) {
    let store = TestStore::create(backend).await;
    let mut engine = EngineProcess::start(&store);
    let (deal_id, tokens) = limited_scenario(&engine).await;
    let answers_before_kill = 5 + (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % 120;
    let mut history = History::default();
    let mut outcomes = fire(&engine, deal_id, &tokens, BURST);
    history.record_n(&mut outcomes, answers_before_kill).await;
    engine.child.kill().expect("SIGKILL");
    let _ = engine.child.wait();
    history.record_rest(&mut outcomes).await;
    drop(engine);

    let engine = EngineProcess::start(&store);
    let mut outcomes = fire(&engine, deal_id, &tokens, BURST);
    history.record_rest(&mut outcomes).await;
    drop(engine);
    check(
        &format!("fault=sigkill seed={seed} after={answers_before_kill} store={backend:?}"),
        &store,
        deal_id,
        UNITS,
        &history,
    )
    .await;
    store.remove().await;
}

async fn sigkill_seeds(backend: Backend) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let seeds: Vec<u64> = match std::env::var("TOPKART_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => vec![1, 2, 3],
    };
    for seed in seeds {
        sigkill_at_a_seeded_moment(backend, seed).await;
    }
}

/// SIGSTOP for two seconds mid-burst, then SIGCONT: everything in flight is answered and holds.
async fn sigstop_then_sigcont(backend: Backend) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let store = TestStore::create(backend).await;
    let engine = EngineProcess::start(&store);
    let (deal_id, tokens) = limited_scenario(&engine).await;
    let mut history = History::default();
    let mut outcomes = fire(&engine, deal_id, &tokens, BURST);
    history.record_n(&mut outcomes, 30).await;
    signal(&engine, "STOP");
    // The fault is the pause itself: the process is frozen for this long.
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    signal(&engine, "CONT");
    history.record_rest(&mut outcomes).await;
    assert_eq!(
        history.unknown, 0,
        "a paused engine answers everything once resumed"
    );
    drop(engine);
    check(
        &format!("fault=sigstop-2s store={backend:?}"),
        &store,
        deal_id,
        UNITS,
        &history,
    )
    .await;
    store.remove().await;
}

/// Runs `pg_ctlcluster <action>` on the machine's one cluster and waits for it to finish.
fn postgres_cluster(action: &str) -> bool {
    let Some(version) = std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut entries| entries.next())
        .and_then(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
    else {
        return false;
    };
    let mut args = vec!["--skip-systemctl-redirect", &version, "main", action];
    match action {
        "stop" => args.extend(["-m", "fast"]),
        // A crash: every backend killed at once, no shutdown checkpoint, recovery at start.
        "restart" => args.extend(["-m", "immediate"]),
        _ => {}
    }
    Command::new("pg_ctlcluster")
        .args(&args)
        // "Cluster is already running" from the guard's start after a passing test is noise.
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Starts Postgres again when dropped, so a failing test cannot leave the server down.
struct StartPostgres;

impl Drop for StartPostgres {
    fn drop(&mut self) {
        postgres_cluster("start");
    }
}

/// A store outage in the middle of a burst, on an engine selling `OUTAGE_UNITS`: `fail` makes
/// the store fail; every one of 40 orders sent then must be answered 503 `STORE_UNAVAILABLE`
/// (never a 201, never a hang); `restore` ends the outage, and the engine must sell again
/// without a restart. The whole history is then checked against the store.
async fn outage_mid_burst(
    label: &str,
    store: &TestStore,
    engine: EngineProcess,
    fail: impl FnOnce(&EngineProcess),
    restore: impl FnOnce(&EngineProcess),
) {
    // More units than all the requests ask for, so units remain to sell after the outage.
    let (deal_id, tokens) = scenario(&engine, OUTAGE_UNITS, BUYERS).await;
    let mut history = History::default();
    let mut burst = fire(&engine, deal_id, &tokens, 1_000);
    history.record_n(&mut burst, 30).await;

    fail(&engine);
    // Whatever of the burst was committing as the outage began is answered either way.
    history.record_rest(&mut burst).await;
    let mut outage = History::default();
    let mut during = fire(&engine, deal_id, &tokens, 40);
    outage.record_rest(&mut during).await;
    println!("{label}, during the outage: {outage:?}");
    assert_eq!(
        (outage.ok.len(), outage.timed_out),
        (0, 0),
        "{label}: no order is acknowledged or left hanging during the outage: {outage:?}"
    );
    assert_eq!(
        outage.failures_by_kind.keys().collect::<Vec<_>>(),
        ["503 STORE_UNAVAILABLE"],
        "{label}: {outage:?}"
    );
    history.absorb(outage);

    restore(&engine);
    // The pool reconnects by itself; the first orders after the outage may still meet a
    // connection it broke, so ask again a bounded number of times.
    let mut after = History::default();
    for _ in 0..20 {
        let mut outcomes = fire(&engine, deal_id, &tokens, 20);
        after.record_rest(&mut outcomes).await;
        if !after.ok.is_empty() {
            break;
        }
    }
    assert!(
        !after.ok.is_empty(),
        "{label}: the engine sells again after the outage: {after:?}"
    );
    history.absorb(after);
    drop(engine);
    check(label, store, deal_id, OUTAGE_UNITS, &history).await;
}

const OUTAGE_UNITS: i64 = 10_000;

/// Postgres stopped mid-burst (`pg_ctlcluster stop -m fast`) and started again.
#[actix_web::test]
async fn postgres_restart_mid_burst() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let store = TestStore::create(Backend::Postgres).await;
    let engine = EngineProcess::start(&store);
    let _start_again = StartPostgres;
    outage_mid_burst(
        "fault=postgres-stop-start store=Postgres",
        &store,
        engine,
        |_| assert!(postgres_cluster("stop"), "Postgres stopped"),
        |_| assert!(postgres_cluster("start"), "Postgres started"),
    )
    .await;
    store.remove().await;
}

/// Sets the engine process's file-size limit (RLIMIT_FSIZE) to `bytes`, or lifts it.
fn limit_file_size(engine: &EngineProcess, bytes: Option<u64>) {
    let limit = bytes.map_or_else(|| "unlimited".to_owned(), |bytes| bytes.to_string());
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &engine.child.id().to_string(),
            // The soft limit only: lifting a hard limit again needs a privilege.
            &format!("--fsize={limit}:"),
        ])
        .status()
        .expect("prlimit runs");
    assert!(status.success(), "prlimit --fsize={limit}");
}

/// The SQLite store made unwritable mid-burst: a full disk, simulated by a file-size limit of
/// one byte on the engine, so every write into its database and WAL fails (EFBIG); then room
/// again.
#[actix_web::test]
async fn sqlite_disk_full_mid_burst() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let store = TestStore::create(Backend::Sqlite).await;
    let engine = EngineProcess::start_ignoring_file_size_signal(&store);
    outage_mid_burst(
        "fault=disk-full store=Sqlite",
        &store,
        engine,
        |engine| limit_file_size(engine, Some(1)),
        |engine| limit_file_size(engine, None),
    )
    .await;
    store.remove().await;
}

#[actix_web::test]
async fn sqlite_sigkill_seeds() {
    sigkill_seeds(Backend::Sqlite).await;
}

#[actix_web::test]
async fn postgres_sigkill_seeds() {
    sigkill_seeds(Backend::Postgres).await;
}

#[actix_web::test]
async fn sqlite_sigstop_then_sigcont() {
    sigstop_then_sigcont(Backend::Sqlite).await;
}

#[actix_web::test]
async fn postgres_sigstop_then_sigcont() {
    sigstop_then_sigcont(Backend::Postgres).await;
}

/// Starts Redis again when dropped, whatever the test did in between.
struct RestartRedis;

impl Drop for RestartRedis {
    fn drop(&mut self) {
        let _ = Command::new("redis-server")
            .args([
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .status();
        for _ in 0..100 {
            if Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", "6379", "ping"])
                .output()
                .is_ok_and(|out| out.stdout.starts_with(b"PONG"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Redis stopped during a burst: a single node does not use it, so nothing changes — every
/// request is answered and the history holds.
#[actix_web::test]
async fn redis_stopped_is_no_fault_for_a_single_node() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let store = TestStore::create(Backend::Sqlite).await;
    let engine = EngineProcess::start(&store);
    let (deal_id, tokens) = limited_scenario(&engine).await;
    let _restart = RestartRedis;
    let mut history = History::default();
    let mut outcomes = fire(&engine, deal_id, &tokens, BURST);
    history.record_n(&mut outcomes, 30).await;
    // The connection drops as the server exits, so the command's own status says nothing.
    let _ = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"])
        .output();
    history.record_rest(&mut outcomes).await;
    assert_eq!(
        (history.ok.len() as i64, history.unknown),
        (UNITS, 0),
        "{history:?}"
    );
    drop(engine);
    check(
        "fault=redis-stopped store=Sqlite",
        &store,
        deal_id,
        UNITS,
        &history,
    )
    .await;
    store.remove().await;
}

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
                let sent = client
                    .post(&url)
                    .insert_header(("Authorization", format!("Bearer {token}")))
                    .send_json(&json!({"deal_id": deal_id}))
                    .await;
                let outcome = match sent {
                    Ok(mut response) => match response.json::<serde_json::Value>().await {
                        Ok(body) => Ok((response.status(), body)),
                        Err(_) => Err(engine_process::Unanswered::ConnectionLost),
                    },
                    Err(awc::error::SendRequestError::Timeout) => {
                        Err(engine_process::Unanswered::TimedOut)
                    }
                    Err(_) => Err(engine_process::Unanswered::ConnectionLost),
                };
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
