//! `cargo bench --bench flash_sale`: the standard flash-sale bench, in under 3 minutes.
//!
//! Starts the engine in this process (SQLite in a temporary folder; Postgres when
//! `TOPKART_BENCH_DATABASE_URL` names a server: a fresh database is created there and dropped)
//! and runs, with the same load generator users run (`topkart loadtest`):
//!
//! 1. every scenario in a closed loop (256 connections, 5 s each), baseline first, so each
//!    figure has its ratio to the HTTP ceiling of the same run;
//! 2. the hot deal in an open loop at half of the peak order rate just measured;
//! 3. memory: resident memory before and after creating 10,000 deals;
//! 4. start-up: a store holding 1,000,000 orders, time until the engine is ready.
//!
//! Every scenario ends with its invariants verified; a failed verification fails the bench.
//! Reports: `target/topkart-bench/run-<UTC time>/{report.json,report.html}`, and
//! `target/topkart-bench/summary.json`.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;
use topkart::config::{Secret, Settings};
use topkart::loadtest::{self, LoadtestArgs, Scenario};
use topkart::startup::Application;

const ADMIN_PASSWORD: &str = "bench-admin-password";

/// Where the bench's store lives, and how to drop it afterwards.
struct BenchStore {
    url: String,
    server: Option<(String, String)>,
    dir: std::path::PathBuf,
}

impl BenchStore {
    async fn create(label: &str) -> Self {
        let name = format!("topkart_bench_{label}_{}", topkart::auth::random_hex(4));
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).expect("temp dir");
        match std::env::var("TOPKART_BENCH_DATABASE_URL")
            .ok()
            .filter(|url| url.starts_with("postgres"))
        {
            Some(server) => {
                let mut conn = sqlx::PgConnection::connect(&server)
                    .await
                    .expect("the bench's Postgres");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                let base = server
                    .rsplit_once('/')
                    .map_or(server.clone(), |(base, _)| base.to_owned());
                Self {
                    url: format!("{base}/{name}"),
                    server: Some((server, name)),
                    dir,
                }
            }
            None => Self {
                url: format!("sqlite://{}/bench.db", dir.display()),
                server: None,
                dir,
            },
        }
    }

    async fn remove(self) {
        if let Some((server, name)) = self.server {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            }
        }
        let _ = std::fs::remove_dir_all(self.dir);
    }
}

fn settings(store: &BenchStore) -> Settings {
    let mut settings = Settings::defaults();
    settings.bind = "127.0.0.1:0".into();
    settings.store.database_url = store.url.clone();
    settings.data_dir = store.dir.clone();
    settings.jwt_secret = Some(Secret("bench-secret-bench-secret-bench-secret!".into()));
    settings.admin_password = Some(Secret(ADMIN_PASSWORD.into()));
    // Buyers are registered over the API before the load; cheap hashing keeps the set-up short.
    // The order path does not hash passwords.
    settings.passwords.argon2_memory_kib = 64;
    settings.passwords.argon2_iterations = 1;
    // Thousands of orders per buyer and hundreds of registrations from one address: a load test.
    settings.rate_limits = "off".into();
    settings
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn args(url: &str, scenario: Scenario) -> LoadtestArgs {
    LoadtestArgs {
        urls: vec![url.to_owned()],
        admin_username: "admin".into(),
        admin_password: Secret(ADMIN_PASSWORD.into()),
        scenario,
        connections: Some(256),
        rate: None,
        duration_secs: 5,
        warmup_secs: 1,
        units: 400_000,
        buyers: 200,
        deals: 1_000,
        threads: Some(1),
        listeners: 0,
        out_dir: "target/topkart-bench".into(),
    }
}

/// Fills a fresh store with one deal and 1,000,000 of its orders, then times a start.
async fn startup_with_a_million_orders() -> f64 {
    let store = BenchStore::create("startup").await;
    let orders = 1_000_000i64;
    {
        let db = topkart::store::Store::connect(&store.url, 1)
            .await
            .expect("store");
        db.migrate().await.expect("migrate");
        db.close().await;
    }
    let now = actors::clock::now_ms();
    let statements = [
        format!(
            "INSERT INTO users (username, email, password_hash, user_type, created_at) VALUES ('bulk', 'bulk@x.io', 'x', 'customer', {now})"
        ),
        format!(
            "INSERT INTO deals (product_name, actual_price, final_price, total_units, available_units, starts_at, expires_at, \
                 recurrence, round, rearmed_day, created_at, updated_at) VALUES ('bulk', 200, 100, {}, 1000, {now}, {}, 'none', 1, 0, {now}, {now})",
            orders + 1_000,
            now + 3_600_000
        ),
    ];
    let bulk = match store.server {
        Some(_) => format!(
            "INSERT INTO orders (deal_id, round, customer_id, quantity, unit_price, total_price, status, created_at, updated_at) \
                            SELECT 1, 1, 1, 1, 100, 100, 'OPEN', {now}, {now} FROM generate_series(1, {orders})"
        ),
        None => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {orders}) \
                         INSERT INTO orders (deal_id, round, customer_id, quantity, unit_price, total_price, status, created_at, updated_at) \
                         SELECT 1, 1, 1, 1, 100, 100, 'OPEN', {now}, {now} FROM n"
        ),
    };
    match store.server {
        Some(_) => {
            let mut conn = sqlx::PgConnection::connect(&store.url)
                .await
                .expect("connect");
            for sql in statements.iter().chain(std::iter::once(&bulk)) {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(&mut conn)
                    .await
                    .expect("fill");
            }
        }
        None => {
            let mut conn = sqlx::SqliteConnection::connect(&store.url)
                .await
                .expect("connect");
            for sql in statements.iter().chain(std::iter::once(&bulk)) {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(&mut conn)
                    .await
                    .expect("fill");
            }
        }
    }
    let started = Instant::now();
    let app = Application::build(settings(&store))
        .await
        .expect("engine builds");
    let url = format!("http://{}/readyz", app.address());
    let shutdown = app.shutdown_handle();
    let running = actix_web::rt::spawn(app.run_until_stopped());
    let client = awc::Client::default();
    let ready_secs = loop {
        if matches!(client.get(&url).send().await, Ok(response) if response.status() == 200) {
            break started.elapsed().as_secs_f64();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not ready within a minute"
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    };
    shutdown.shutdown().await;
    let _ = running.await;
    store.remove().await;
    ready_secs
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    topkart::telemetry::init_logging_or("error");
    let started = Instant::now();
    let system = actix_web::rt::System::new();
    let outcome: Result<serde_json::Value, String> = system.block_on(async {
        let ready_secs = startup_with_a_million_orders().await;
        eprintln!("start-up with 1,000,000 orders in the store: ready in {ready_secs:.2} s");

        let store = BenchStore::create("load").await;
        let backend = if store.server.is_some() { "postgres" } else { "sqlite" };
        let app = Application::build(settings(&store)).await.map_err(|e| e.to_string())?;
        let url = format!("http://{}", app.address());
        let shutdown = app.shutdown_handle();
        let running = actix_web::rt::spawn(app.run_until_stopped());
        eprintln!("engine on {url} ({backend}); load generator in this process, 1 thread");

        let mut reports = loadtest::run(&args(&url, Scenario::All)).await?;
        let peak = reports.iter().find(|r| r.scenario == "hot-deal").map_or(1_000.0, |r| r.orders_per_sec);
        let mut open = args(&url, Scenario::HotDeal);
        open.connections = None;
        open.rate = Some((peak / 2.0).max(100.0) as u64);
        open.out_dir = "target/topkart-bench/open-loop".into();
        reports.extend(loadtest::run(&open).await?);

        let before_kib = resident_kib();
        let api = loadtest::setup::Api::login(&url, "admin", ADMIN_PASSWORD).await?;
        for chunk in (0..10_000).collect::<Vec<usize>>().chunks(64) {
            let names: Vec<String> = chunk.iter().map(|i| format!("memory {i}")).collect();
            let created = loadtest::setup::join_all(names.iter().map(|name| api.create_deal(name, 100)).collect()).await;
            for deal in created {
                deal?;
            }
        }
        let after_kib = resident_kib();
        let memory_mb = (after_kib.saturating_sub(before_kib)) as f64 / 1024.0;
        eprintln!("memory: 10,000 more deals cost {memory_mb:.1} MB resident ({before_kib} → {after_kib} KiB)");

        shutdown.shutdown().await;
        let _ = running.await;
        store.remove().await;
        let baseline = reports.iter().find(|r| r.scenario == "baseline").map_or(0.0, |r| r.achieved_rate);
        let figure = |name: &str| reports.iter().find(|r| r.scenario == name).cloned();
        let open_loop = reports.last().cloned();
        Ok(json!({
            "backend": backend,
            "baseline_req_per_sec": baseline,
            "hot_deal_orders_per_sec": figure("hot-deal").map(|r| r.orders_per_sec),
            "hot_deal_ratio": figure("hot-deal").and_then(|r| r.ratio_to_baseline),
            "sold_out_storm_rejections_per_sec": figure("sold-out-storm").map(|r| r.rejections_per_sec),
            "sold_out_storm_ratio": figure("sold-out-storm").and_then(|r| r.ratio_to_baseline),
            "many_deals_orders_per_sec": figure("many-deals").map(|r| r.orders_per_sec),
            "browse_and_buy_req_per_sec": figure("browse-and-buy").map(|r| r.achieved_rate),
            "open_loop_rate": open_loop.as_ref().and_then(|r| r.offered_rate),
            "open_loop_order_p99_ms": open_loop.as_ref().and_then(|r| r.order_latency_ms.map(|l| l.p99)),
            "open_loop_order_p99_9_ms": open_loop.as_ref().and_then(|r| r.order_latency_ms.map(|l| l.p99_9)),
            "memory_10k_deals_mb": memory_mb,
            "ready_with_1m_orders_secs": ready_secs,
        }))
    });
    match outcome {
        Ok(summary) => {
            let _ = std::fs::create_dir_all("target/topkart-bench");
            let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
            let _ = std::fs::write("target/topkart-bench/summary.json", &text);
            println!("{text}");
            println!(
                "flash_sale bench finished in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        Err(error) => {
            eprintln!("flash_sale bench FAILED: {error}");
            std::process::exit(1);
        }
    }
}
