//! Cluster mode as it stands (issue 10, first slice): the settings it refuses, membership in
//! Redis (nodes see each other; a killed node drops out within the TTL, a stopped one at once),
//! `X-Topkart-Node` on every answer, `GET /api/v1/cluster`, and no deal served without an owner.
//! Several nodes are separate processes on loopback ports sharing one Postgres database and one
//! Redis, under a cluster name of the test's own whose keys are deleted afterwards. Redis is
//! required: when it is not reachable the tests fail, they never skip.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::{Value, json};

use crate::engine_process::{EngineProcess, admin_token, scenario};
use crate::helpers::rfc3339;
use crate::helpers::{Backend, TestStore, assert_error, spawn_app};

/// The Redis the tests use (`TOPKART_TEST_REDIS_URL`, default the local server).
fn redis_url() -> String {
    std::env::var("TOPKART_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A cluster name of the test's own; its keys are deleted by `drop_keys`.
fn cluster_name() -> String {
    format!("t{}", topkart::auth::random_hex(6))
}

async fn drop_keys(cluster: &str) {
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

fn node(store: &TestStore, cluster: &str, id: &str) -> EngineProcess {
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
async fn live_nodes(node: &EngineProcess, admin: &str) -> Vec<String> {
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
async fn await_nodes(
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
async fn node_header(node: &EngineProcess) -> String {
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

/// Each deal's owner and epoch as `node` sees them, once every deal has one (bounded poll).
async fn owners(
    node: &EngineProcess,
    admin: &str,
    deals: usize,
    bound: Duration,
) -> Vec<(i64, String, i64)> {
    let started = Instant::now();
    loop {
        let (status, view) = node.call("GET", "/api/v1/cluster", Some(admin), None).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        let owned: Vec<(i64, String, i64)> = view["deals"]
            .as_array()
            .expect("deals")
            .iter()
            .filter_map(|deal| {
                Some((
                    deal["deal_id"].as_i64()?,
                    deal["owner"].as_str()?.to_owned(),
                    deal["epoch"].as_i64()?,
                ))
            })
            .collect();
        if owned.len() == deals {
            return owned;
        }
        assert!(
            started.elapsed() < bound,
            "after {bound:?} only {} of {deals} deals have an owner: {view}",
            owned.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Deals spread over three nodes; each is sold by its owner only (the answer names it, also
/// when another node forwarded the order); SIGKILL an owner and its deals move to the others within
/// the TTL (1 s) and a bit, under a higher epoch, and sell on.
#[actix_web::test]
async fn deals_spread_over_the_nodes_and_move_when_their_owner_dies() {
    let store = TestStore::create(Backend::Postgres).await;
    let cluster = cluster_name();
    let mut nodes = vec![
        node(&store, &cluster, "n1"),
        node(&store, &cluster, "n2"),
        node(&store, &cluster, "n3"),
    ];
    let admin = admin_token(&nodes[0]).await;
    await_nodes(
        &nodes[0],
        &admin,
        &["n1", "n2", "n3"],
        Duration::from_secs(5),
    )
    .await;
    let (_, tokens) = scenario(&nodes[0], 5, 2).await;
    for i in 0..11 {
        let deal = json!({"product_name": format!("Deal {i}"), "actual_price": "20.00", "final_price": "10.00",
            "total_units": 5, "expires_at": rfc3339(actors::clock::now_ms() + 3_600_000)});
        let (status, body) = nodes[0]
            .call("POST", "/api/v1/deals", Some(&admin), Some(deal))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let owned = owners(&nodes[0], &admin, 12, Duration::from_secs(5)).await;
    for id in ["n1", "n2", "n3"] {
        assert!(
            owned.iter().any(|(_, owner, _)| owner == id),
            "{id} owns no deal: {owned:?}"
        );
    }
    let index = |id: &str| {
        ["n1", "n2", "n3"]
            .iter()
            .position(|n| *n == id)
            .expect("a node")
    };
    for (deal_id, owner, _) in &owned {
        let (status, body, answered_by) =
            order_retrying(&nodes[index(owner)], &tokens[0], *deal_id).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "deal {deal_id} via its owner {owner}: {body}"
        );
        assert_eq!(answered_by.as_deref(), Some(owner.as_str()));
        // Through another node: forwarded to the owner, sold there, answered in its name.
        let other = &nodes[(index(owner) + 1) % 3];
        let (status, body, answered_by) = order_retrying(other, &tokens[1], *deal_id).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "deal {deal_id} via another node: {body}"
        );
        assert_eq!(answered_by.as_deref(), Some(owner.as_str()));
    }

    // SIGKILL n3: its deals move to n1 and n2 under a higher epoch, and sell there.
    let lost: Vec<(i64, i64)> = owned
        .iter()
        .filter(|(_, owner, _)| owner == "n3")
        .map(|(id, _, epoch)| (*id, *epoch))
        .collect();
    nodes[2].child.kill().expect("SIGKILL");
    let _ = nodes[2].child.wait();
    let started = Instant::now();
    let moved = loop {
        let now = owners(&nodes[0], &admin, 12, Duration::from_secs(3)).await;
        // Moved: another node holds the lease and has taken the epoch on.
        if lost.iter().all(|(id, old_epoch)| {
            now.iter()
                .any(|(deal, owner, epoch)| deal == id && owner != "n3" && epoch > old_epoch)
        }) {
            break now;
        }
        assert!(
            started.elapsed() < Duration::from_millis(1_000 + 1_000),
            "n3's deals did not move within the TTL + 1 s: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    eprintln!(
        "n3's {} deals moved after {:?}",
        lost.len(),
        started.elapsed()
    );
    for (deal_id, old_epoch) in &lost {
        let (_, owner, epoch) = moved
            .iter()
            .find(|(id, _, _)| id == deal_id)
            .expect("moved");
        assert!(
            epoch > old_epoch,
            "deal {deal_id}: epoch {epoch} after {old_epoch}"
        );
        let (status, body, _) = order_retrying(&nodes[index(owner)], &tokens[1], *deal_id).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "deal {deal_id} sells on at {owner}: {body}"
        );
    }
    let db = topkart::store::Store::connect(&store.url, 1)
        .await
        .expect("store");
    for (deal_id, _, _) in &moved {
        let stock = db
            .stock_check(*deal_id)
            .await
            .expect("store")
            .expect("deal");
        assert!(stock.conserved(), "deal {deal_id}: {stock:?}");
    }
    db.close().await;
    drop(nodes);
    drop_keys(&cluster).await;
    store.remove().await;
}

/// An order at `node`, retried while it answers 503 (as `Retry-After` tells a client; bounded
/// by 1 s): a node that just took a deal over sells it once it has reloaded it from the store.
/// The status, the body and the node named by `X-Topkart-Node`.
async fn order_retrying(
    node: &EngineProcess,
    token: &str,
    deal_id: i64,
) -> (StatusCode, Value, Option<String>) {
    let retry_until = Instant::now() + Duration::from_secs(1);
    loop {
        let mut response = node
            .client
            .post(format!("{}/api/v1/orders", node.base))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .send_json(&json!({"deal_id": deal_id}))
            .await
            .expect("answered");
        let body: Value = response.json().await.unwrap_or_default();
        let answered_by = response
            .headers()
            .get("X-Topkart-Node")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if response.status() != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > retry_until {
            return (response.status(), body, answered_by);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An order through a node that does not own the deal is forwarded to the owner and sold there;
/// then a burst spread over three nodes (1,000 orders from 120 customers, round-robin over the
/// nodes): exactly the 100 units are sold, each 201 names the owner, every other answer is a
/// refusal, and the store holds exactly the 100.
#[actix_web::test]
async fn a_burst_over_three_nodes_sells_exactly_the_units() {
    let store = TestStore::create(Backend::Postgres).await;
    let cluster = cluster_name();
    let nodes = vec![
        node(&store, &cluster, "n1"),
        node(&store, &cluster, "n2"),
        node(&store, &cluster, "n3"),
    ];
    let admin = admin_token(&nodes[0]).await;
    await_nodes(
        &nodes[0],
        &admin,
        &["n1", "n2", "n3"],
        Duration::from_secs(5),
    )
    .await;
    let (deal_id, tokens) = scenario(&nodes[0], 100, 120).await;
    let owned = owners(&nodes[0], &admin, 1, Duration::from_secs(5)).await;
    let owner = owned[0].1.clone();
    // First one order through each node that does not own the deal: forwarded, sold, and
    // answered in the owner's name.
    let mut sold = 0;
    for (i, name) in ["n1", "n2", "n3"].iter().enumerate() {
        if *name == owner {
            continue;
        }
        let (status, body, answered_by) = order_retrying(&nodes[i], &tokens[i], deal_id).await;
        assert_eq!(status, StatusCode::CREATED, "through {name}: {body}");
        assert_eq!(answered_by.as_deref(), Some(owner.as_str()));
        sold += 1;
    }

    let mut requests = Vec::new();
    for i in 0..1_000 {
        let target = &nodes[i % 3];
        let sent_to = ["n1", "n2", "n3"][i % 3];
        let (client, url, token) = (
            target.client.clone(),
            format!("{}/api/v1/orders", target.base),
            tokens[i % tokens.len()].clone(),
        );
        requests.push(crate::helpers::spawn(async move {
            let mut response = client
                .post(url)
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send_json(&json!({"deal_id": deal_id}))
                .await
                .expect("answered");
            let body: Value = response.json().await.unwrap_or_default();
            let node = response
                .headers()
                .get("X-Topkart-Node")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (response.status(), body, node, sent_to)
        }));
    }
    let mut sold_through_another_node = 0;
    let mut answers: std::collections::BTreeMap<(bool, u16, String), usize> = Default::default();
    for request in requests {
        let (status, body, answered_by, sent_to) = request.await.expect("joined");
        *answers
            .entry((
                sent_to == owner,
                status.as_u16(),
                body["code"].as_str().unwrap_or("").to_owned(),
            ))
            .or_default() += 1;
        match status {
            StatusCode::CREATED => {
                sold += 1;
                if sent_to != owner {
                    sold_through_another_node += 1;
                }
                assert_eq!(answered_by.as_deref(), Some(owner.as_str()), "{body}");
            }
            StatusCode::CONFLICT | StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["status"], "error", "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(sold, 100, "exactly the units there are");
    eprintln!(
        "{sold_through_another_node} of the burst's 201s came through a node that forwarded; (to the owner?, status, code) -> count: {answers:?}"
    );
    let db = topkart::store::Store::connect(&store.url, 1)
        .await
        .expect("store");
    let stock = db.stock_check(deal_id).await.expect("store").expect("deal");
    assert_eq!(
        (stock.available_units, stock.units_held, stock.orders_held),
        (0, 100, 100),
        "{stock:?}"
    );
    db.close().await;
    drop(nodes);
    drop_keys(&cluster).await;
    store.remove().await;
}
