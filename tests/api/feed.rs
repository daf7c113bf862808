//! Any node answers any request (issue 10): every node mirrors every deal through the Redis
//! feed and answers reads from memory, refuses a doomed order itself without a hop, and sends
//! what only the owner may do — an order it cannot refuse, an admin's change to the deal, a
//! cancellation that gives units back — to the deal's owner. Processes on loopback ports, one
//! Postgres database, one Redis under a cluster name of the test's own.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::{Value, json};

use crate::cluster::{cluster_name, drop_keys, three_nodes};
use crate::engine_process::{EngineProcess, scenario};
use crate::fence::metric;
use crate::helpers::{Backend, TestStore};
use crate::ownership::{order_retrying, owners};

/// A request to `node`: the status, the JSON body and the node named by `X-Topkart-Node`.
async fn call(
    node: &EngineProcess,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value, String) {
    let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("a method");
    let request = node
        .client
        .request(method, format!("{}{path}", node.base))
        .insert_header(("Authorization", format!("Bearer {token}")));
    let mut response = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    }
    .expect("answered");
    let body: Value = response.json().await.unwrap_or_default();
    let answered_by = response
        .headers()
        .get("X-Topkart-Node")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (response.status(), body, answered_by)
}

/// Polls `node`'s `GET /deals/{id}` (bounded) until `wanted` holds of it; returns the deal and
/// how long it took.
async fn await_deal(
    node: &EngineProcess,
    deal_id: i64,
    bound: Duration,
    wanted: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let (status, deal) = node
            .call("GET", &format!("/api/v1/deals/{deal_id}"), None, None)
            .await;
        // A deal created on another node is known here once its owner published it.
        assert!(
            status == StatusCode::OK || status == StatusCode::NOT_FOUND,
            "{status} {deal}"
        );
        if status == StatusCode::OK && wanted(&deal) {
            return (deal, started.elapsed());
        }
        assert!(
            started.elapsed() < bound,
            "after {bound:?} the node still shows {deal}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// An order at `node` for `deal_id` is refused with `code`, in `node`'s own name.
async fn assert_refused_locally(
    node: &EngineProcess,
    node_name: &str,
    token: &str,
    deal_id: i64,
    code: &str,
) {
    let (status, refused, answered_by) = call(
        node,
        "POST",
        "/api/v1/orders",
        token,
        Some(json!({"deal_id": deal_id})),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str(), answered_by.as_str()),
        (StatusCode::CONFLICT, Some(code), node_name),
        "{refused}"
    );
}

#[actix_web::test]
async fn every_node_mirrors_every_deal_and_sends_the_owners_work_to_the_owner() {
    let store = TestStore::create(Backend::Postgres).await;
    let cluster = cluster_name();
    let (nodes, admin) = three_nodes(&store, &cluster).await;
    let (deal_id, tokens) = scenario(&nodes[0], 10, 4).await;
    let owner_name = owners(&nodes[0], &admin, 1, Duration::from_secs(5)).await[0]
        .1
        .clone();
    let names = ["n1", "n2", "n3"];
    let owner_at = names
        .iter()
        .position(|name| *name == owner_name)
        .expect("owner");
    let (owner, other) = (&nodes[owner_at], &nodes[(owner_at + 1) % 3]);
    let other_name = names[(owner_at + 1) % 3];

    // Each sale at the owner shows on the other node's mirror soon after.
    let (status, first, _) = order_retrying(owner, &tokens[0], deal_id).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let mut lags = Vec::new();
    for sold in 2..=5 {
        let (status, order, _) = call(
            owner,
            "POST",
            "/api/v1/orders",
            &tokens[sold % 4],
            Some(json!({"deal_id": deal_id})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        let (_, lag) = await_deal(other, deal_id, Duration::from_secs(2), |deal| {
            deal["available_units"] == 10 - sold as i64
        })
        .await;
        lags.push(lag);
    }
    eprintln!("the other node's mirror showed each sale after {lags:?}");

    // Sold out at the owner: the other node refuses from its own mirror, in its own name,
    // forwarding nothing.
    let (status, last, _) = call(
        owner,
        "POST",
        "/api/v1/orders",
        &tokens[1],
        Some(json!({"deal_id": deal_id, "quantity": 5})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{last}");
    await_deal(other, deal_id, Duration::from_secs(2), |deal| {
        deal["status"] == "SOLD_OUT"
    })
    .await;
    let forwards_before = metric(other, "topkart_cluster_forwards_total").await;
    assert_refused_locally(other, other_name, &tokens[2], deal_id, "SOLD_OUT").await;
    assert_eq!(
        metric(other, "topkart_cluster_forwards_total").await,
        forwards_before,
        "a doomed order is not forwarded"
    );
    // The list is served from memory on every node, the same everywhere.
    for node in &nodes {
        let (status, list) = node.call("GET", "/api/v1/deals", None, None).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["results"][0]["available_units"], 0, "{list}");
    }

    // A cancellation through the other node is the owner's: the units go back there and
    // sell again, through any node.
    let (status, cancelled, answered_by) = call(
        other,
        "POST",
        &format!("/api/v1/orders/{}/cancel", first["id"]),
        &tokens[0],
        None,
    )
    .await;
    assert_eq!(
        (status, cancelled["status"].as_str(), answered_by.as_str()),
        (StatusCode::OK, Some("CANCELLED"), owner_name.as_str()),
        "{cancelled}"
    );
    await_deal(other, deal_id, Duration::from_secs(2), |deal| {
        deal["available_units"] == 1
    })
    .await;
    let (status, resold, answered_by) = call(
        other,
        "POST",
        "/api/v1/orders",
        &tokens[3],
        Some(json!({"deal_id": deal_id})),
    )
    .await;
    assert_eq!(
        (status, answered_by.as_str()),
        (StatusCode::CREATED, owner_name.as_str()),
        "{resold}"
    );

    // An admin's changes through the other node are made by the owner, in memory and in the
    // store, and every node's mirror follows.
    let path = format!("/api/v1/deals/{deal_id}");
    let (status, renamed, answered_by) = call(
        other,
        "PATCH",
        &path,
        &admin,
        Some(json!({"product_name": "Console, renamed", "total_units": 20})),
    )
    .await;
    assert_eq!(
        (status, answered_by.as_str()),
        (StatusCode::OK, owner_name.as_str()),
        "{renamed}"
    );
    assert_eq!(
        (&renamed["product_name"], &renamed["available_units"]),
        (&json!("Console, renamed"), &json!(10)),
        "{renamed}"
    );
    let (status, closed, answered_by) =
        call(other, "POST", &format!("{path}/close"), &admin, None).await;
    assert_eq!(
        (status, closed["status"].as_str(), answered_by.as_str()),
        (StatusCode::OK, Some("CLOSED"), owner_name.as_str()),
        "{closed}"
    );
    for node in &nodes {
        await_deal(node, deal_id, Duration::from_secs(2), |deal| {
            deal["status"] == "CLOSED" && deal["product_name"] == "Console, renamed"
        })
        .await;
    }
    assert_refused_locally(other, other_name, &tokens[2], deal_id, "DEAL_CLOSED").await;
    // What an operator sees: the owner holds a lease it acquired, the other node forwarded.
    assert_eq!(metric(owner, "topkart_cluster_leases_held").await, 1.0);
    assert!(metric(owner, "topkart_cluster_leases_acquired_total").await >= 1.0);
    assert!(metric(other, "topkart_cluster_forwards_total").await >= 4.0);
    assert!(metric(owner, "topkart_cluster_feed_deals_published_total").await >= 1.0);
    assert!(metric(other, "topkart_cluster_feed_deals_received_total").await >= 1.0);
    let db = topkart::store::Store::connect(&store.url, 1)
        .await
        .expect("store");
    let stored = db.load_deal(deal_id).await.expect("store").expect("deal");
    assert!(stored.record.closed);
    assert_eq!(
        (
            stored.record.product_name.as_str(),
            stored.record.total_units
        ),
        ("Console, renamed", 20)
    );
    let stock = db.stock_check(deal_id).await.expect("store").expect("deal");
    assert!(stock.conserved(), "{stock:?}");
    assert_eq!((stock.units_held, stock.available_units), (10, 10));
    db.close().await;
    drop(nodes);
    drop_keys(&cluster).await;
    store.remove().await;
}
