//! Redis down and back (issue 10): the nodes use a Redis server of the test's own, on a port of
//! its own, so that stopping it touches no other test. While it is down the owner stops selling
//! at its lease's deadline (nothing is sold without a lease); once it is back, ownership is
//! re-established within the TTL and a second, under a higher epoch, and the deal sells on.

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
    let (status, _, _) = order_retrying(owner, &tokens[0], deal_id).await;
    assert_eq!(status, StatusCode::CREATED);

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
    let db = topkart::store::Store::connect(&store.url, 1)
        .await
        .expect("store");
    assert!(
        db.stock_check(deal_id)
            .await
            .expect("store")
            .expect("deal")
            .conserved()
    );
    db.close().await;
    drop(nodes);
    drop(redis);
    store.remove().await;
}
