//! Cluster mode: the settings it refuses, membership in
//! Redis (nodes see each other; a killed node drops out within the TTL, a stopped one at once),
//! `X-Topkart-Node` on every answer, `GET /api/v1/cluster`, and no deal served without an owner.
//! Several nodes are separate processes on loopback ports sharing one Postgres database and one
//! Redis, under a cluster name of the test's own whose keys are deleted afterwards. Redis is
//! required: when it is not reachable the tests fail, they never skip.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::{Value, json};

use crate::engine_process::{EngineProcess, admin_token};
use crate::helpers::{Backend, TestStore, assert_error, spawn_app};
use crate::history::History;

/// The Redis the tests use (`TOPKART_TEST_REDIS_URL`, default the local server).
pub fn redis_url() -> String {
    std::env::var("TOPKART_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A cluster name of the test's own; its keys are deleted by `drop_keys`.
pub fn cluster_name() -> String {
    format!("t{}", topkart::auth::random_hex(6))
}

pub async fn drop_keys(cluster: &str) {
    let client = redis::Client::open(redis_url()).expect("a Redis URL");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|error| {
            panic!(
                "Redis is required for these tests ({}): {error}",
                redis_url()
            )
        });
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{cluster}:*"))
        .query_async(&mut redis)
        .await
        .expect("KEYS");
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut redis)
            .await
            .expect("DEL");
    }
}

pub fn node(store: &TestStore, cluster: &str, id: &str) -> EngineProcess {
    let redis = redis_url();
    EngineProcess::start_with_env(
        store,
        &[
            ("REDIS_URL", redis.as_str()),
            ("TOPKART_CLUSTER", cluster),
            ("TOPKART_NODE_ID", id),
            ("TOPKART_LEASE_TTL_MS", "1000"),
        ],
    )
}

/// The ids of the live nodes as `node` sees them.
pub async fn live_nodes(node: &EngineProcess, admin: &str) -> Vec<String> {
    let (status, view) = node.call("GET", "/api/v1/cluster", Some(admin), None).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["mode"], "cluster", "{view}");
    view["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|node| node["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Polls (bounded) until `node` sees exactly `expected`; returns how long it took.
pub async fn await_nodes(
    node: &EngineProcess,
    admin: &str,
    expected: &[&str],
    bound: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let seen = live_nodes(node, admin).await;
        if seen == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < bound,
            "after {bound:?} the node sees {seen:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The `X-Topkart-Node` header of a `GET /livez`.
pub async fn node_header(node: &EngineProcess) -> String {
    let response = node
        .client
        .get(format!("{}/livez", node.base))
        .send()
        .await
        .expect("livez answers");
    response
        .headers()
        .get("X-Topkart-Node")
        .and_then(|value| value.to_str().ok())
        .expect("X-Topkart-Node on every answer")
        .to_owned()
}

/// Runs the binary with `vars` until it exits; its exit status and stderr.
fn refused_start(vars: &[(&str, &str)]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_topkart"))
        .env_remove("TOPKART_JWT_SECRET")
        .env("TOPKART_BIND", "127.0.0.1:0")
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .output()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Cluster mode on an SQLite store, without a shared JWT secret, or with Redis unreachable:
/// the engine refuses to start and says why.
#[actix_web::test]
async fn cluster_mode_refuses_to_start_on_settings_that_cannot_hold_it() {
    let redis = redis_url();
    let dir = std::env::temp_dir().join(format!("topkart_refuse_{}", topkart::auth::random_hex(4)));
    let sqlite = format!("sqlite://{}/topkart.db", dir.display());
    let (ok, stderr) = refused_start(&[
        ("REDIS_URL", &redis),
        ("DATABASE_URL", &sqlite),
        ("TOPKART_JWT_SECRET", crate::helpers::JWT_SECRET),
    ]);
    assert!(!ok && stderr.contains("postgres://"), "{stderr}");
    assert!(!dir.exists(), "nothing was opened");

    let store = TestStore::create(Backend::Postgres).await;
    let (ok, stderr) = refused_start(&[("REDIS_URL", &redis), ("DATABASE_URL", &store.url)]);
    assert!(!ok && stderr.contains("TOPKART_JWT_SECRET"), "{stderr}");

    let (ok, stderr) = refused_start(&[
        ("REDIS_URL", "redis://127.0.0.1:1"),
        ("DATABASE_URL", &store.url),
        ("TOPKART_JWT_SECRET", crate::helpers::JWT_SECRET),
        ("TOPKART_DATA_DIR", &store.data_dir().display().to_string()),
    ]);
    assert!(!ok && stderr.contains("Redis does not answer"), "{stderr}");
    store.remove().await;
}

/// Three nodes see each other; each answer names its node; a SIGKILLed node drops out within
/// the TTL (1 s) and a bit, a SIGTERMed one at once; no deal is sold without an owner.
#[actix_web::test]
async fn nodes_see_each_other_and_leave() {
    let store = TestStore::create(Backend::Postgres).await;
    let cluster = cluster_name();
    let n1 = node(&store, &cluster, "n1");
    let n2 = node(&store, &cluster, "n2");
    let mut n3 = node(&store, &cluster, "n3");
    let admin = admin_token(&n1).await;
    await_nodes(&n2, &admin, &["n1", "n2", "n3"], Duration::from_secs(5)).await;
    for (engine, id) in [(&n1, "n1"), (&n2, "n2"), (&n3, "n3")] {
        assert_eq!(node_header(engine).await, id);
    }
    let (status, ready) = n1.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{ready}");

    n3.child.kill().expect("SIGKILL");
    let _ = n3.child.wait();
    let took = await_nodes(
        &n1,
        &admin,
        &["n1", "n2"],
        Duration::from_millis(1_000 + 1_500),
    )
    .await;
    eprintln!("a killed node dropped out after {took:?}");

    let terminated = Command::new("kill")
        .args(["-TERM", &n2.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(terminated.success());
    await_nodes(&n1, &admin, &["n1"], Duration::from_millis(800)).await;

    drop((n1, n2, n3));
    drop_keys(&cluster).await;
    store.remove().await;
}

/// A single node shows itself as the whole cluster: mode `single`, one node owning every live
/// deal, and its id on every answer.
#[actix_web::test]
async fn a_single_node_shows_itself_as_the_cluster() {
    let app = spawn_app(Backend::Sqlite).await;
    let deal_id = app.create_deal(5, json!({})).await;
    let (status, view) = app.get("/api/v1/cluster", Some(&app.admin_token)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let node_id = view["node_id"].as_str().expect("node id").to_owned();
    assert_eq!(view["mode"], "single");
    assert_eq!(view["nodes"].as_array().map(Vec::len), Some(1), "{view}");
    assert_eq!(view["nodes"][0]["id"], node_id.as_str());
    assert_eq!(view["nodes"][0]["deals_owned"], 1);
    let deals: &Value = &view["deals"];
    assert_eq!(deals[0]["deal_id"], deal_id);
    assert_eq!(deals[0]["owner"], node_id.as_str());
    let response = app
        .client
        .get(app.url("/livez"))
        .send()
        .await
        .expect("livez");
    assert_eq!(
        response
            .headers()
            .get("X-Topkart-Node")
            .and_then(|v| v.to_str().ok()),
        Some(node_id.as_str())
    );
    let customer = &app.customers(1).await[0];
    assert_error(
        &app.get("/api/v1/cluster", Some(&customer.token)).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    app.finish().await;
}

/// Three nodes n1, n2, n3 on one store under `cluster` (TTL 1 s), each seeing the others; and
/// the bootstrap admin's token.
pub async fn three_nodes(store: &TestStore, cluster: &str) -> (Vec<EngineProcess>, String) {
    let nodes = vec![
        node(store, cluster, "n1"),
        node(store, cluster, "n2"),
        node(store, cluster, "n3"),
    ];
    let admin = admin_token(&nodes[0]).await;
    await_nodes(
        &nodes[0],
        &admin,
        &["n1", "n2", "n3"],
        Duration::from_secs(5),
    )
    .await;
    (nodes, admin)
}

/// One answer a buyer got: the status, whether it carried `Retry-After`, the body.
pub type Answer = (StatusCode, bool, Value);

/// What one buyer saw: its answers, and whether its last request went unanswered (the node
/// closed the connection, or died, before answering).
#[derive(Debug, Default)]
pub struct BuyerLog {
    pub answers: Vec<Answer>,
    pub unanswered: bool,
}

/// Each token's buyer orders from `node`, again as soon as answered, until `stop` is set or
/// the node stops answering (its listener closed); each buyer's log comes back on join.
pub fn keep_buying(
    node: &EngineProcess,
    tokens: &[String],
    deal_id: i64,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<actix_web::rt::task::JoinHandle<BuyerLog>> {
    tokens
        .iter()
        .cloned()
        .map(|token| {
            let (client, url, stop) = (
                node.client.clone(),
                format!("{}/api/v1/orders", node.base),
                stop.clone(),
            );
            crate::helpers::spawn(async move {
                let mut log = BuyerLog::default();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(mut response) = client
                        .post(url.clone())
                        .insert_header(("Authorization", format!("Bearer {token}")))
                        .send_json(&json!({"deal_id": deal_id}))
                        .await
                    else {
                        log.unanswered = true;
                        break;
                    };
                    let retry_after = response.headers().contains_key("Retry-After");
                    let Ok(body) = response.json::<Value>().await else {
                        // The head came, the body did not: the outcome is unknown.
                        log.unanswered = true;
                        break;
                    };
                    log.answers.push((response.status(), retry_after, body));
                }
                log
            })
        })
        .collect()
}

/// The buyers' logs, joined, as one history for the checker.
pub async fn history_of(
    buyers: Vec<actix_web::rt::task::JoinHandle<BuyerLog>>,
) -> (History, Vec<Answer>) {
    let mut history = History::default();
    let mut answers = Vec::new();
    for buyer in buyers {
        let log = buyer.await.expect("joined");
        for (status, _, body) in &log.answers {
            history.record_answer(*status, body);
        }
        if log.unanswered {
            history.record_unanswered();
        }
        answers.extend(log.answers);
    }
    (history, answers)
}
