//! Criterion micro-benches of the engine's steps:
//!
//! - `deal_state/reserve_release`: one reservation and its release in `DealState`;
//! - `mirror/claim`: one claim of a unit from a lent counter (the hot deal's order path on the
//!   HTTP worker's thread), with the recall that gives it back;
//! - `deal_actor/round_trip`: one `Snapshot` message to a deal's actor on its arbiter and back;
//! - `order_writer/commit/{sqlite,postgres}/{100,1000}`: one group commit of a batch of orders
//!   into the store (throughput in orders), the writer's unit of work.
//!
//! `cargo bench --bench engine`. Postgres: `TOPKART_BENCH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`; a fresh database is created and dropped).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::clock::now_ms;
use actors::deal::{DealRecord, DealState, DealTerms, Recurrence, Snapshot};
use actors::engine::{Engine, EngineConfig};
use actors::journal::{BoxFuture, Journal, JournalError, LoadedDeal, NewOrder, OrderRecord};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sqlx::Connection;
use topkart::store::{NewDeal, NewUser, Store};

fn record(units: i64) -> DealRecord {
    let now = now_ms();
    DealRecord {
        id: 1,
        product_name: "bench".into(),
        actual_price: 1_000,
        final_price: 500,
        total_units: units,
        available_units: units,
        starts_at: now - 1_000,
        expires_at: now + 3_600_000,
        per_customer_limit: Some(1_000_000),
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

fn deal_state(c: &mut Criterion) {
    let mut state = DealState::new(record(1_000_000));
    let now = now_ms();
    let mut customer = 0i64;
    c.bench_function("deal_state/reserve_release", |b| {
        b.iter(|| {
            customer = (customer + 1) % 1_000;
            let reservation = state.reserve(customer, 1, now).expect("units available");
            state.release(reservation.customer_id, 1, reservation.round)
        })
    });
}

fn mirror_claim(c: &mut Criterion) {
    use actors::fast_path::mirror::{DealMirror, FastClaim};
    let mut unlimited = record(1_000_000);
    unlimited.per_customer_limit = None;
    let mirror = DealMirror::new(&unlimited);
    mirror.lend(1_000_000);
    let now = now_ms();
    c.bench_function("mirror/claim", |b| {
        b.iter(|| {
            let claimed = matches!(mirror.try_claim(1, now), FastClaim::Claimed(_));
            if mirror.available_units() < 1_000 {
                mirror.recall();
                mirror.lend(1_000_000);
            }
            claimed
        })
    });
}

struct NoJournal;

impl Journal for NoJournal {
    fn commit_orders(
        &self,
        orders: Vec<NewOrder>,
    ) -> BoxFuture<Result<Vec<OrderRecord>, JournalError>> {
        Box::pin(async move {
            Ok(orders
                .into_iter()
                .map(|o| OrderRecord::stored(1, o))
                .collect())
        })
    }
    fn rearm_deal(&self, _: i64, _: i64) -> BoxFuture<Result<LoadedDeal, JournalError>> {
        Box::pin(async { Err(JournalError::Failed("unused".into())) })
    }
}

fn deal_actor(c: &mut Criterion) {
    let system = actix::System::new();
    let engine =
        system.block_on(async { Engine::start(Arc::new(NoJournal), EngineConfig::default()) });
    let (deal, _) = system.block_on(async {
        engine.launch(LoadedDeal {
            record: record(10),
            units_by_customer: HashMap::new(),
            claims: Vec::new(),
            waitlist: Vec::new(),
        })
    });
    c.bench_function("deal_actor/round_trip", |b| {
        b.iter_custom(|iterations| {
            system.block_on(async {
                let started = Instant::now();
                for _ in 0..iterations {
                    let _ = deal.addr.send(Snapshot).await;
                }
                started.elapsed()
            })
        })
    });
    engine.stop();
}

/// A store with one deal and one customer to commit orders for; dropped afterwards.
struct BenchStore {
    store: Arc<Store>,
    deal_id: i64,
    customer_id: i64,
    drop_database: Option<(String, String)>,
}

async fn bench_store(postgres: bool) -> BenchStore {
    let (url, drop_database) = if postgres {
        let admin = std::env::var("TOPKART_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("topkart_bench_{}", topkart::auth::random_hex(4));
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("Postgres for the bench");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let base = admin
            .rsplit_once('/')
            .map_or(admin.clone(), |(base, _)| base.to_owned());
        (format!("{base}/{name}"), Some((admin, name)))
    } else {
        let dir =
            std::env::temp_dir().join(format!("topkart_bench_{}", topkart::auth::random_hex(4)));
        (format!("sqlite://{}/bench.db", dir.display()), None)
    };
    let store = Store::connect(&url, 4).await.expect("store");
    store.migrate().await.expect("migrate");
    let now = now_ms();
    let user = NewUser {
        username: "b".into(),
        email: "b@b.bb".into(),
        phone_number: None,
        password_hash: "x".into(),
        user_type: "customer".into(),
    };
    let customer_id = store.create_user(&user, now).await.expect("user").id;
    let terms = DealTerms {
        product_name: "bench".into(),
        actual_price: 1_000,
        final_price: 500,
        starts_at: now,
        expires_at: now + 3_600_000,
        per_customer_limit: None,
        payment_window_secs: None,
        recurrence: Recurrence::None,
    };
    let deal_id = store
        .insert_deal(
            &NewDeal {
                terms,
                total_units: 1_000_000_000,
                available_units: 1_000_000_000,
            },
            now,
        )
        .await
        .expect("deal")
        .id;
    BenchStore {
        store: Arc::new(store),
        deal_id,
        customer_id,
        drop_database,
    }
}

fn order_writer_commit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("order_writer/commit");
    group
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    for (backend, postgres) in [("sqlite", false), ("postgres", true)] {
        let bench = runtime.block_on(bench_store(postgres));
        for batch in [100usize, 1_000] {
            let orders: Vec<NewOrder> = (0..batch)
                .map(|i| NewOrder {
                    deal_id: bench.deal_id,
                    round: 1,
                    customer_id: bench.customer_id,
                    quantity: 1,
                    unit_price: 500,
                    total_price: 500,
                    idempotency_key: None,
                    created_at: now_ms() + i as i64,
                    owner_epoch: 0,
                    pay_by: None,
                })
                .collect();
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("{backend}/{batch}"), |b| {
                b.iter(|| {
                    runtime
                        .block_on(bench.store.commit_orders(&orders))
                        .expect("commit")
                })
            });
        }
        runtime.block_on(async {
            bench.store.close().await;
            if let Some((admin, name)) = &bench.drop_database {
                if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            }
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    deal_state,
    mirror_claim,
    deal_actor,
    order_writer_commit
);
criterion_main!(benches);
