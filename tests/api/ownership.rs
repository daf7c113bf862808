//! Deal ownership across nodes (issue 10): deals spread over the live nodes, each sold by its
//! owner only (other nodes forward), a dead owner's deals moving under a higher epoch, and a
//! burst over every node selling exactly the units there are. Processes on loopback ports, one
//! Postgres database, one Redis under a cluster name of the test's own.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::{Value, json};

use crate::cluster::{await_nodes, cluster_name, drop_keys, history_of, keep_buying, three_nodes};
use crate::engine_process::{EngineProcess, admin_token, scenario};
use crate::helpers::{Backend, TestStore, rfc3339};
use crate::history::{History, check};

/// Each deal's owner and epoch as `node` sees them, once every deal has one that has taken its
/// epoch (bounded poll).
pub async fn owners(
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
                    // An owner holds the lease first and takes the epoch after: until then
                    // (epoch 0, never taken) the deal is not owned yet.
                    deal["epoch"].as_i64().filter(|epoch| *epoch > 0)?,
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

/// Polls `node` (bounded: until `since + bound`) until the single deal left `owner` for
/// another node under an epoch above `old_epoch`; returns the new owner and epoch.
pub async fn await_moved(
    node: &EngineProcess,
    admin: &str,
    owner: &str,
    old_epoch: i64,
    since: Instant,
    bound: Duration,
) -> (String, i64) {
    loop {
        let now = owners(node, admin, 1, Duration::from_secs(3)).await;
        if now[0].1 != owner && now[0].2 > old_epoch {
            return (now[0].1.clone(), now[0].2);
        }
        assert!(
            since.elapsed() < bound,
            "the deal did not move within {bound:?}: {now:?}"
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
    let (mut nodes, admin) = three_nodes(&store, &cluster).await;
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
pub async fn order_retrying(
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
    let (nodes, admin) = three_nodes(&store, &cluster).await;
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

/// SIGTERM a deal's owner under load: every answer it gives is a 201 or a 503 with Retry-After,
/// every 201 is stored, and the deal sells through the other nodes within a second of the
/// signal (the owner hands it over first thing, instead of the others waiting out the TTL).
#[actix_web::test]
async fn a_terminated_owner_hands_its_deals_over_at_once() {
    let store = TestStore::create(Backend::Postgres).await;
    let cluster = cluster_name();
    let redis = crate::cluster::redis_url();
    let start = |id: &str| {
        EngineProcess::start_with_env(
            &store,
            &[
                ("REDIS_URL", redis.as_str()),
                ("TOPKART_CLUSTER", cluster.as_str()),
                ("TOPKART_NODE_ID", id),
                // A long lease, so that only the hand-off can explain a fast move.
                ("TOPKART_LEASE_TTL_MS", "10000"),
                ("TOPKART_DRAIN_GRACE_MS", "1500"),
            ],
        )
    };
    let nodes = vec![start("n1"), start("n2"), start("n3")];
    let admin = admin_token(&nodes[0]).await;
    await_nodes(
        &nodes[0],
        &admin,
        &["n1", "n2", "n3"],
        Duration::from_secs(5),
    )
    .await;
    let (deal_id, tokens) = scenario(&nodes[0], 100_000, 32).await;
    let owner = owners(&nodes[0], &admin, 1, Duration::from_secs(5)).await[0]
        .1
        .clone();
    let index = ["n1", "n2", "n3"]
        .iter()
        .position(|n| *n == owner)
        .expect("a node");
    let leaving = &nodes[index];
    let other = &nodes[(index + 1) % 3];
    let (status, first, _) = order_retrying(leaving, &tokens[0], deal_id).await;
    let mut elsewhere = History::default();
    elsewhere.record_answer(status, &first);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let buyers = keep_buying(leaving, &tokens, deal_id, &stop);
    let terminated = std::process::Command::new("kill")
        .args(["-TERM", &leaving.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(terminated.success());
    let signalled = Instant::now();
    let (status, body, answered_by) = order_retrying(other, &tokens[1], deal_id).await;
    let moved_after = signalled.elapsed();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_ne!(answered_by.as_deref(), Some(owner.as_str()));
    assert!(
        moved_after < Duration::from_secs(1),
        "the deal sold elsewhere only after {moved_after:?}"
    );
    eprintln!("sold through {answered_by:?} {moved_after:?} after SIGTERM");
    elsewhere.record_answer(status, &body);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let (mut history, answers) = history_of(buyers).await;
    for (status, retry_after, body) in &answers {
        match *status {
            StatusCode::CREATED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(retry_after, "a 503 without Retry-After: {body}")
            }
            other => panic!("the leaving owner answered {other}: {body}"),
        }
    }
    history.absorb(elsewhere);
    check("SIGTERM the owner", &store, deal_id, 100_000, &history).await;
    drop(nodes);
    drop_keys(&cluster).await;
    store.remove().await;
}

/// The same Idempotency-Key through two nodes gives one order; a per-customer limit holds when
/// the customer's orders arrive through every node (all decided by the deal's owner).
#[actix_web::test]
async fn keys_and_limits_hold_across_nodes() {
    let store = TestStore::create(Backend::Postgres).await;
    let cluster = cluster_name();
    let (nodes, admin) = three_nodes(&store, &cluster).await;
    let (deal_id, tokens) =
        crate::engine_process::scenario_with_limit(&nodes[0], 100, 2, Some(3)).await;
    owners(&nodes[0], &admin, 1, Duration::from_secs(5)).await;
    let keyed = |node: &EngineProcess, key: &'static str| {
        let request = node
            .client
            .post(format!("{}/api/v1/orders", node.base))
            .insert_header(("Authorization", format!("Bearer {}", tokens[0])))
            .insert_header(("Idempotency-Key", key));
        async move {
            let mut response = request
                .send_json(&json!({"deal_id": deal_id}))
                .await
                .expect("answered");
            let body: Value = response.json().await.unwrap_or_default();
            (response.status(), body)
        }
    };
    // Wait until the owner sells (a retried 503 is what a client does).
    order_retrying(&nodes[0], &tokens[1], deal_id).await;
    let (first, first_body) = keyed(&nodes[1], "key-across-nodes").await;
    let (second, second_body) = keyed(&nodes[2], "key-across-nodes").await;
    assert_eq!((first, second), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(first_body["id"], second_body["id"], "one order for one key");

    // The limit of 3: one ordered above, then through every node in turn.
    let mut sold = 1;
    let mut limited = 0;
    for i in 0..6 {
        let (status, body, _) = order_retrying(&nodes[i % 3], &tokens[0], deal_id).await;
        match status {
            StatusCode::CREATED => sold += 1,
            StatusCode::CONFLICT => {
                assert_eq!(body["code"], "LIMIT_EXCEEDED", "{body}");
                limited += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((sold, limited), (3, 4), "the limit holds across nodes");
    let db = topkart::store::Store::connect(&store.url, 1)
        .await
        .expect("store");
    let stock = db.stock_check(deal_id).await.expect("store").expect("deal");
    assert_eq!((stock.units_held, stock.orders_held), (4, 4), "{stock:?}");
    db.close().await;
    drop(nodes);
    drop_keys(&cluster).await;
    store.remove().await;
}
