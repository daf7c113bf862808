//! `topkart loadtest` against a real server: the scenario is set up over the API, the run is
//! verified against the store, and the warm-up's requests are verified but kept out of the
//! figures.

use topkart::config::Secret;
use topkart::loadtest::{self, LoadtestArgs, Scenario};

use crate::engine_process::EngineProcess;
use crate::fence::metric;
use crate::helpers::{ADMIN_PASSWORD, Backend, TestStore, spawn_app_with};

fn args(url: &str, scenario: Scenario, out_dir: std::path::PathBuf) -> LoadtestArgs {
    LoadtestArgs {
        urls: vec![url.to_owned()],
        admin_username: "admin".into(),
        admin_password: Secret(ADMIN_PASSWORD.into()),
        scenario,
        connections: Some(8),
        rate: None,
        duration_secs: 1,
        warmup_secs: 1,
        units: 1_000_000,
        buyers: 10,
        deals: 10,
        threads: Some(1),
        listeners: 0,
        out_dir,
    }
}

#[actix_web::test]
async fn the_warm_up_is_verified_but_kept_out_of_the_figures() {
    let store = TestStore::create(Backend::Sqlite).await;
    let app = spawn_app_with(store, |settings| settings.rate_limits = "off".into()).await;
    let out_dir = std::env::temp_dir().join(format!("topkart-loadtest-{}", std::process::id()));

    // Two generator threads, their connections split between them and their figures merged.
    let closed = LoadtestArgs {
        threads: Some(2),
        ..args(&app.base, Scenario::HotDeal, out_dir.clone())
    };
    let reports = loadtest::run(&closed).await.expect("the run verifies");
    let hot = &reports[0];
    assert!(hot.verification.passed, "{:?}", hot.verification.failures);
    assert!(
        hot.generator_cpu_us_per_request.is_some_and(|us| us > 0.0),
        "the generator's own cost is reported: {:?}",
        hot.generator_cpu_us_per_request
    );
    assert!(hot.warmup.requests > 0, "the warm-up sent requests");
    // A closed loop sends each request when it means to: no lateness of its own to report.
    assert!(hot.send_lag_ms.is_none(), "{:?}", hot.send_lag_ms);
    assert!(hot.tally.ok_2xx > 0, "the measured window sold");
    // Every order is verified, the warm-up's included; the figures count the measured ones.
    assert_eq!(
        hot.orders_created,
        hot.tally.ok_2xx + hot.warmup.requests,
        "every request of an unlimited hot deal with units left is a 201"
    );

    let open = LoadtestArgs {
        connections: None,
        rate: Some(200),
        ..args(&app.base, Scenario::HotDeal, out_dir.clone())
    };
    let reports = loadtest::run(&open).await.expect("the run verifies");
    let hot = &reports[0];
    assert!(hot.verification.passed, "{:?}", hot.verification.failures);
    assert!(hot.warmup.requests > 0 && hot.tally.answered() > 0);
    // The rate is over the measured window: 200 a second offered for 1 s is ~200 a second
    // achieved (it was once divided by the window plus the time the last answers took).
    assert_eq!(hot.duration_secs, 1.0);
    assert!(
        (190.0..=210.0).contains(&hot.achieved_rate),
        "{} req/s for 200 offered",
        hot.achieved_rate
    );
    assert!(
        (190.0..=210.0).contains(&hot.orders_per_sec),
        "{} orders/s for 200 offered",
        hot.orders_per_sec
    );
    assert!(hot.order_latency_ms.is_some());
    // The generator's own lateness is part of every latency: never more than the latency.
    let (lag, latency) = (
        hot.send_lag_ms
            .expect("an open loop reports its own lateness"),
        hot.latency_ms,
    );
    assert!(
        lag.max <= latency.max && lag.p99 <= latency.p99,
        "lateness {lag:?} against latency {latency:?}"
    );
    // Seconds are counted by when requests were meant to go: the warm-up's second and the
    // measured one, each full (the last is no sliver of late answers).
    assert_eq!(hot.per_second.len(), 2, "{:?}", hot.per_second);
    for second in &hot.per_second {
        assert!(
            (190..=210).contains(&second.answered),
            "{:?}",
            hot.per_second
        );
    }
    // The run's deals are marked with its tag, and closed once verified.
    let (_, deals) = app
        .get(
            "/api/v1/deals?status=all&page_size=100",
            Some(&app.admin_token),
        )
        .await;
    let deals = deals["results"].as_array().expect("deals").clone();
    assert_eq!(deals.len(), 2, "one hot deal per run");
    for deal in &deals {
        assert!(
            deal["product_name"]
                .as_str()
                .is_some_and(|name| name.starts_with("[loadtest-")),
            "{deal}"
        );
        assert_eq!(deal["status"], "CLOSED", "{deal}");
    }
    // Each run kept its own report folder, and each report says what it was a run of.
    let runs: Vec<std::path::PathBuf> = std::fs::read_dir(&out_dir)
        .expect("the report folder")
        .map(|entry| entry.expect("an entry").path())
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in &runs {
        let name = run
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("run-20"), "{name}");
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(run.join("report.json")).expect("report.json"),
        )
        .expect("JSON");
        assert!(
            report["run"]["date"]
                .as_str()
                .is_some_and(|date| date.ends_with('Z'))
        );
        assert!(
            report["run"]["commit"]
                .as_str()
                .is_some_and(|commit| !commit.is_empty())
        );
        assert_eq!(report["run"]["targets"], serde_json::json!([app.base]));
        assert_eq!(report["run"]["settings"]["scenario"], "hot-deal");
        assert!(report["run"]["settings"].get("admin_password").is_none());
        assert_eq!(report["scenarios"][0]["scenario"], "hot-deal");
        // The page says what it shows: the run, the columns, the axes, the legend, the warm-up.
        let page = std::fs::read_to_string(run.join("report.html")).expect("report.html");
        for needed in [
            report["run"]["date"].as_str().expect("date"),
            report["run"]["commit"].as_str().expect("commit"),
            app.base.as_str(),
            "<b>ratio to baseline</b>",
            "percentile (each step right: ten times rarer)",
            "latency, ms",
            "answers / s",
            "seconds from the start",
            ">warm-up<",
            ">2xx<",
            "Warm-up: 1 s",
        ] {
            assert!(page.contains(needed), "report.html lacks {needed:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    app.finish().await;
}

/// `--listeners N` holds live stock listeners on the deal during the run: the report says how
/// many, what they cost the engine's memory, and that they got events while the deal sold.
#[actix_web::test]
async fn listeners_are_held_and_reported() {
    let store = TestStore::create(Backend::Sqlite).await;
    let app = spawn_app_with(store, |settings| settings.rate_limits = "off".into()).await;
    let out_dir = std::env::temp_dir().join(format!("topkart-listeners-{}", std::process::id()));
    let run = LoadtestArgs {
        listeners: 50,
        ..args(&app.base, Scenario::HotDeal, out_dir.clone())
    };
    let reports = loadtest::run(&run).await.expect("the run verifies");
    let listened = reports[0].listeners.expect("listeners reported");
    assert_eq!(listened.listeners, 50);
    assert!(listened.engine_memory_before_bytes.is_some());
    assert!(listened.engine_bytes_per_listener.is_some());
    // 2 s of a selling deal: every listener got events (at most ten a second each).
    assert!(
        (50..=50 * 25).contains(&listened.events_received),
        "{} events",
        listened.events_received
    );
    let _ = std::fs::remove_dir_all(&out_dir);
    app.finish().await;
}

/// A fatal error (here the admin's wrong password) is printed once, not as a log line and then
/// again as a message; the exit code says it failed.
#[actix_web::test]
async fn a_fatal_error_is_printed_once() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await;
    let base = app.base.clone();
    let output = actix_web::rt::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_topkart"))
            .args([
                "loadtest",
                "--url",
                &base,
                "--admin-password",
                "not-the-password",
            ])
            .output()
            .expect("topkart runs")
    })
    .await
    .expect("it ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(
        stderr.matches("admin login failed").count(),
        1,
        "printed once: {stderr}"
    );
    app.finish().await;
}

/// `--url` repeated: the load goes to every node of a cluster in turn (the two that do not own
/// the deal forward its orders), and the run verifies as on one node.
#[actix_web::test]
async fn a_cluster_is_loaded_through_all_its_nodes() {
    let store = TestStore::create(Backend::Postgres).await;
    let cluster = crate::cluster::cluster_name();
    let redis = crate::cluster::redis_url();
    let nodes: Vec<EngineProcess> = ["n1", "n2", "n3"]
        .iter()
        .map(|id| {
            EngineProcess::start_with_env(
                &store,
                &[
                    ("REDIS_URL", redis.as_str()),
                    ("TOPKART_CLUSTER", cluster.as_str()),
                    ("TOPKART_NODE_ID", id),
                    ("TOPKART_LEASE_TTL_MS", "1000"),
                    ("TOPKART_RATE_LIMITS", "off"),
                ],
            )
        })
        .collect();
    let admin = crate::engine_process::admin_token(&nodes[0]).await;
    crate::cluster::await_nodes(
        &nodes[0],
        &admin,
        &["n1", "n2", "n3"],
        std::time::Duration::from_secs(5),
    )
    .await;
    let out_dir =
        std::env::temp_dir().join(format!("topkart-loadtest-cluster-{}", std::process::id()));
    let run = LoadtestArgs {
        urls: nodes.iter().map(|node| node.base.clone()).collect(),
        ..args(&nodes[0].base, Scenario::HotDeal, out_dir.clone())
    };
    let reports = loadtest::run(&run).await.expect("the run verifies");
    let hot = &reports[0];
    assert!(hot.verification.passed, "{:?}", hot.verification.failures);
    assert!(hot.tally.ok_2xx > 0, "the measured window sold");
    let mut forwarding_nodes = 0;
    for node in &nodes {
        if metric(node, "topkart_cluster_forwards_total").await > 0.0 {
            forwarding_nodes += 1;
        }
    }
    assert_eq!(
        forwarding_nodes, 2,
        "the nodes that do not own the deal got its orders and forwarded them"
    );
    let _ = std::fs::remove_dir_all(&out_dir);
    drop(nodes);
    crate::cluster::drop_keys(&cluster).await;
    store.remove().await;
}
