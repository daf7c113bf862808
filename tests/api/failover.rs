//! SIGKILL a deal's owner mid-burst (issue 10, acceptance 3): the deal moves to another node
//! within the TTL and a second, under a higher epoch, and sells on there; no order anyone was
//! told is stored (201) is lost, nothing is stored for a definite refusal, and the store
//! conserves the units — the fault suite's history checker, with buyers at every node (the
//! other two forward to the owner, so orders in flight through them when it dies are counted
//! as the unknowns they are).

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;

use crate::cluster::{cluster_name, drop_keys, history_of, keep_buying, three_nodes};
use crate::engine_process::scenario;
use crate::helpers::{Backend, TestStore};
use crate::history::check;
use crate::ownership::{await_moved, order_retrying, owners};

#[actix_web::test]
async fn an_owner_killed_mid_burst_loses_no_acknowledged_order() {
    let store = TestStore::create(Backend::Postgres).await;
    let cluster = cluster_name();
    let (mut nodes, admin) = three_nodes(&store, &cluster).await;
    let (deal_id, tokens) = scenario(&nodes[0], 100_000, 48).await;
    let before = owners(&nodes[0], &admin, 1, Duration::from_secs(5)).await;
    let (owner, old_epoch) = (before[0].1.clone(), before[0].2);
    let victim = ["n1", "n2", "n3"]
        .iter()
        .position(|name| *name == owner)
        .expect("a node");
    let (status, body, _) = order_retrying(&nodes[victim], &tokens[0], deal_id).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut buyers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        buyers.extend(keep_buying(
            node,
            &tokens[i * 16..(i + 1) * 16],
            deal_id,
            &stop,
        ));
    }
    // Mid-burst: once the store holds a few hundred of the burst's orders.
    let db = topkart::store::Store::connect(&store.url, 1)
        .await
        .expect("store");
    let burst_began = Instant::now();
    loop {
        let stock = db.stock_check(deal_id).await.expect("store").expect("deal");
        if stock.orders_held >= 300 {
            break;
        }
        assert!(
            burst_began.elapsed() < Duration::from_secs(10),
            "the burst stored only {} orders",
            stock.orders_held
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    nodes[victim].child.kill().expect("SIGKILL");
    let _ = nodes[victim].child.wait();
    let killed_at = Instant::now();

    // The deal moves: another node holds its lease under a higher epoch, and sells it.
    let survivor = &nodes[(victim + 1) % 3];
    let (new_owner, new_epoch) = await_moved(
        survivor,
        &admin,
        &owner,
        old_epoch,
        killed_at,
        Duration::from_millis(1_000 + 1_000),
    )
    .await;
    let (status, body, answered_by) = order_retrying(survivor, &tokens[1], deal_id).await;
    let selling_after = killed_at.elapsed();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(answered_by.as_deref(), Some(new_owner.as_str()));
    assert!(
        selling_after < Duration::from_millis(1_000 + 1_000),
        "selling again only {selling_after:?} after the kill"
    );
    eprintln!(
        "killed {owner} mid-burst; {} took the deal (epoch {old_epoch} -> {}) and sold it {selling_after:?} after the kill",
        new_owner, new_epoch
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let (mut history, answers) = history_of(buyers).await;
    history.record_answer(status, &body);
    let acknowledged = answers
        .iter()
        .filter(|(status, _, body)| *status == StatusCode::CREATED && body["id"].as_i64().is_some())
        .count();
    for (status, retry_after, body) in &answers {
        match *status {
            StatusCode::CREATED => {}
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
                assert!(retry_after, "{status} without Retry-After: {body}")
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        acknowledged >= 300,
        "the history holds the burst's acknowledged orders (the check is not vacuous)"
    );
    db.close().await;
    check(
        "SIGKILL the owner mid-burst",
        &store,
        deal_id,
        100_000,
        &history,
    )
    .await;
    drop(nodes);
    drop_keys(&cluster).await;
    store.remove().await;
}
