//! Redis down and back, and a node joining (issue 10). Redis down and back: the nodes use a Redis server of the test's own, on a port of
//! its own, so that stopping it touches no other test. While it is down the owner stops selling
//! at its lease's deadline (nothing is sold without a lease); once it is back, ownership is
//! re-established within the TTL and a second, under a higher epoch, and the deal sells on.

use crate::history::{History, check};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::json;

use crate::engine_process::{EngineProcess, admin_token, scenario};
use crate::helpers::{Backend, TestStore};
use crate::ownership::{order_retrying, owners};

/// A throwaway Redis (no persistence) on `port`; killed when dropped.
struct OwnRedis(Child);

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is required for this test");
        let ready = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                ready.elapsed() < Duration::from_secs(5),
                "redis-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Self(child)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[actix_web::test]
async fn a_redis_outage_stops_selling_and_ownership_comes_back() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut redis = OwnRedis::start(port);
    let redis_url = format!("redis://127.0.0.1:{port}");
    let store = TestStore::create(Backend::Postgres).await;
    let start = |id: &str| {
        EngineProcess::start_with_env(
            &store,
            &[
                ("REDIS_URL", redis_url.as_str()),
                ("TOPKART_CLUSTER", "outage"),
                ("TOPKART_NODE_ID", id),
                ("TOPKART_LEASE_TTL_MS", "1000"),
            ],
        )
    };
    let nodes = vec![start("n1"), start("n2")];
    let admin = admin_token(&nodes[0]).await;
    let (deal_id, tokens) = scenario(&nodes[0], 1_000, 2).await;
    let before = owners(&nodes[0], &admin, 1, Duration::from_secs(5)).await;
    let owner = &nodes[if before[0].1 == "n1" { 0 } else { 1 }];
    let mut history = History::default();
    let (status, body, _) = order_retrying(owner, &tokens[0], deal_id).await;
    assert_eq!(status, StatusCode::CREATED);
    history.record_answer(status, &body);

    let _ = redis.0.kill();
    let _ = redis.0.wait();
    let down_at = Instant::now();
    // The lease ends 1 s after its last renewal: from then on the owner sells nothing.
    let stopped = loop {
        let (status, body) = owner
            .call(
                "POST",
                "/api/v1/orders",
                Some(&tokens[0]),
                Some(json!({"deal_id": deal_id})),
            )
            .await;
        history.record_answer(status, &body);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["code"], "DEAL_UNAVAILABLE", "{body}");
            break down_at.elapsed();
        }
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(
            down_at.elapsed() < Duration::from_millis(1_500),
            "still selling without Redis"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("the owner stopped selling {stopped:?} after Redis went down");

    redis = OwnRedis::start(port);
    let up_at = Instant::now();
    let (status, body, _) = loop {
        let answer = order_retrying(owner, &tokens[1], deal_id).await;
        history.record_answer(answer.0, &answer.1);
        if answer.0 == StatusCode::CREATED {
            break answer;
        }
        assert!(
            up_at.elapsed() < Duration::from_millis(1_000 + 1_000),
            "ownership not back within the TTL and a second: {answer:?}"
        );
    };
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let after = owners(&nodes[0], &admin, 1, Duration::from_secs(3)).await;
    assert!(
        after[0].2 > before[0].2,
        "a higher epoch: {before:?} -> {after:?}"
    );
    eprintln!("selling again {:?} after Redis came back", up_at.elapsed());
    check("Redis down, then back", &store, deal_id, 1_000, &history).await;
    drop(nodes);
    drop(redis);
    store.remove().await;
}

/// A node joining under load takes its share of 30 deals within 10 s, and no deal moves twice
/// (each deal's epoch moves on once at most: one takeover).
#[actix_web::test]
async fn a_joining_node_takes_its_share_and_no_deal_moves_twice() {
    let store = TestStore::create(Backend::Postgres).await;
    let cluster = crate::cluster::cluster_name();
    let n1 = crate::cluster::node(&store, &cluster, "n1");
    let n2 = crate::cluster::node(&store, &cluster, "n2");
    let admin = admin_token(&n1).await;
    crate::cluster::await_nodes(&n1, &admin, &["n1", "n2"], Duration::from_secs(5)).await;
    let (first_deal, tokens) = scenario(&n1, 100_000, 16).await;
    for i in 1..30 {
        let deal = json!({"product_name": format!("Deal {i}"), "actual_price": "20.00", "final_price": "10.00",
            "total_units": 5, "expires_at": crate::helpers::rfc3339(actors::clock::now_ms() + 3_600_000)});
        let (status, body) = n1
            .call("POST", "/api/v1/deals", Some(&admin), Some(deal))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let before = owners(&n1, &admin, 30, Duration::from_secs(5)).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let buyers = crate::cluster::keep_buying(&n1, &tokens, first_deal, &stop);

    let n3 = crate::cluster::node(&store, &cluster, "n3");
    let joined = Instant::now();
    let after = loop {
        let now = owners(&n1, &admin, 30, Duration::from_secs(10)).await;
        let settled =
            now.iter()
                .zip(&before)
                .all(|((deal_id, owner, epoch), (_, old_owner, old_epoch))| {
                    // Settled: every deal with the node the three now make its winner, and a deal that
                    // moved has its new epoch too (the lease is taken first, then the epoch).
                    let nodes = ["n1".to_owned(), "n2".to_owned(), "n3".to_owned()];
                    topkart::cluster::ownership::winner(&nodes, *deal_id) == Some(owner)
                        && (owner == old_owner || epoch > old_epoch)
                });
        if settled {
            break now;
        }
        assert!(
            joined.elapsed() < Duration::from_secs(10),
            "not settled: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let share = after.iter().filter(|(_, owner, _)| owner == "n3").count();
    eprintln!("n3 took {share} of 30 deals in {:?}", joined.elapsed());
    assert!(share > 0, "the joining node got no share");
    // A deal that moved took one new epoch; one that stayed took none — unless its owner lost
    // the lease on a renewal that failed (a slow Redis under a loaded machine) and took it
    // back: churn on one node, counted on its /metrics, not a move.
    let mut renewal_failures = std::collections::BTreeMap::new();
    for (name, node) in [("n1", &n1), ("n2", &n2), ("n3", &n3)] {
        let failed =
            crate::fence::metric_sum(node, "topkart_cluster_lease_renewal_failures_total").await;
        renewal_failures.insert(name.to_owned(), failed);
    }
    for ((deal_id, old_owner, old_epoch), (_, new_owner, new_epoch)) in before.iter().zip(&after) {
        let moved = old_owner != new_owner;
        let epochs_taken = new_epoch - old_epoch;
        let retaken_after_a_lost_renewal = !moved && renewal_failures[old_owner] > 0.0;
        assert!(
            epochs_taken == i64::from(moved) || (retaken_after_a_lost_renewal && epochs_taken >= 1),
            "deal {deal_id}: {old_owner}@{old_epoch} -> {new_owner}@{new_epoch}; lease renewals failed: {renewal_failures:?}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (history, answers) = crate::cluster::history_of(buyers).await;
    for (status, retry_after, body) in &answers {
        assert!(
            *status == StatusCode::CREATED
                || (*status == StatusCode::SERVICE_UNAVAILABLE && *retry_after),
            "{status} {body}"
        );
    }
    check(
        "a node joins under load",
        &store,
        first_deal,
        100_000,
        &history,
    )
    .await;
    drop((n1, n2, n3));
    crate::cluster::drop_keys(&cluster).await;
    store.remove().await;
}
