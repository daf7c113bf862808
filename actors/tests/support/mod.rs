//! Fixtures shared by the engine's integration tests (not every test uses every one).
#![allow(dead_code)]

use std::sync::Mutex;
use std::time::Duration;

use actix::Addr;
use actors::clock::now_ms;
use actors::deal::{DealActor, DealRecord, Recurrence, Snapshot};
use actors::journal::{BoxFuture, JournalError, NewOrder, OrderRecord};

/// Deal 1 as loaded from the store: `open_deal(units)`, nothing sold, no claims, no waitlist.
pub fn live_deal(units: i64) -> actors::journal::LoadedDeal {
    actors::journal::LoadedDeal {
        record: open_deal(units),
        units_by_customer: Default::default(),
        claims: Vec::new(),
        waitlist: Vec::new(),
    }
}

/// Deal 1: open for the next hour, `units` of everything, no per-customer limit.
pub fn open_deal(units: i64) -> DealRecord {
    let now = now_ms();
    DealRecord {
        id: 1,
        product_name: "Lamp".into(),
        actual_price: 2_000,
        final_price: 1_000,
        total_units: units,
        available_units: units,
        starts_at: now - 1_000,
        expires_at: now + 3_600_000,
        per_customer_limit: None,
        payment_window_secs: None,
        closed: false,
        recurrence: Recurrence::None,
        round: 1,
        rearmed_day: 0,
        owner_epoch: 0,
        created_at: now,
        updated_at: now,
    }
}

/// A small deterministic generator (SplitMix64), so a failing seed replays exactly.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, bound: u64) -> i64 {
        (self.next() % bound) as i64
    }
}

/// Runs `simulate` over many seeds (`TOPKART_SIM_SEEDS`, default `seeds`), or replays the one
/// in `TOPKART_SIM_SEED`. A failure names its seed.
pub fn run_seeds(simulate: fn(u64, usize) -> Result<(), String>, seeds: u64) {
    if let Some(seed) = std::env::var("TOPKART_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        simulate(seed, 400).unwrap_or_else(|failure| panic!("{failure}"));
        return;
    }
    let seeds: u64 = std::env::var("TOPKART_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(seeds);
    for seed in 0..seeds {
        let outcome = std::panic::catch_unwind(|| simulate(seed, 400));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(failure)) => panic!("{failure} (replay: TOPKART_SIM_SEED={seed})"),
            Err(_) => {
                panic!("seed {seed} panicked inside DealState (replay: TOPKART_SIM_SEED={seed})")
            }
        }
    }
}

/// A journal's commit that stores every batch at once, numbering the orders from `next_id`.
pub fn store_all(
    next_id: &Mutex<i64>,
    orders: Vec<NewOrder>,
) -> BoxFuture<Result<Vec<OrderRecord>, JournalError>> {
    let mut next = next_id.lock().unwrap();
    let stored = orders
        .into_iter()
        .map(|order| {
            *next += 1;
            OrderRecord::stored(*next, order)
        })
        .collect();
    Box::pin(async move { Ok(stored) })
}

/// Moves the paused clock on by `ms` and lets every timer that fell due run, with what they
/// spawned: a round trip through the actor's mailbox means its context has run everything due
/// before it.
pub async fn advance(addr: &Addr<DealActor>, ms: u64) {
    tokio::time::advance(Duration::from_millis(ms)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    addr.send(Snapshot).await.expect("the actor runs");
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}
