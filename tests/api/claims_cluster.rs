//! Claims and the waitlist in cluster mode (issue 12, acceptance 8): a sold-out deal's owner is
//! paused (SIGSTOP) past its lease with unpaid claims open and customers waiting; the node that
//! takes the deal over reloads both from the store, lapses the claims at their deadlines and
//! serves their units to the waiting customers first come first served, while the paid claim
//! stays; when the old owner wakes it changes nothing (its lease and epoch are gone). Checked in
//! the store.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::json;
use sqlx::Connection;

use crate::cluster::{cluster_name, drop_keys, three_nodes};
use crate::engine_process::register_buyer;
use crate::helpers::{Backend, TestStore, rfc3339};
use crate::ownership::{await_moved, owners};

#[actix_web::test]
async fn claims_lapse_and_the_waitlist_is_served_under_the_new_owner_after_the_old_one_is_paused() {
    let store = TestStore::create(Backend::Postgres).await;
    let cluster = cluster_name();
    let (nodes, admin) = three_nodes(&store, &cluster).await;
    let deal = json!({"product_name": "Claimed", "actual_price": "20.00", "final_price": "10.00", "total_units": 4,
        "expires_at": rfc3339(actors::clock::now_ms() + 3_600_000), "payment_window_secs": 3});
    let (status, deal) = nodes[0]
        .call("POST", "/api/v1/deals", Some(&admin), Some(deal))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let deal_id = deal["id"].as_i64().expect("id");
    let before = owners(&nodes[0], &admin, 1, Duration::from_secs(5)).await;
    let (owner, old_epoch) = (before[0].1.clone(), before[0].2);
    let index = ["n1", "n2", "n3"]
        .iter()
        .position(|n| *n == owner)
        .expect("a node");
    let (paused, other) = (&nodes[index], &nodes[(index + 1) % 3]);

    // Four claims, each placed through another node than the owner (forwarded); one is paid.
    let mut orders = Vec::new();
    let mut payer = None;
    for i in 0..4 {
        let (id, token) = register_buyer(
            other,
            &format!("claimer{i}_{}", topkart::auth::random_hex(3)),
        )
        .await;
        let (status, order) = other
            .call(
                "POST",
                "/api/v1/orders",
                Some(&token),
                Some(json!({"deal_id": deal_id})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        assert_eq!(order["payment_status"], "UNPAID");
        orders.push(order["id"].as_i64().expect("id"));
        if i == 0 {
            payer = Some((id, token));
        }
    }
    let (payer_id, payer_token) = payer.expect("a payer");

    // Sold out: four customers wait, each joining through another node than the owner.
    let mut waiters = Vec::new();
    for i in 0..4 {
        let (id, token) = register_buyer(
            other,
            &format!("waiter{i}_{}", topkart::auth::random_hex(3)),
        )
        .await;
        other.credit(&admin, id, "10.00").await;
        let (status, entry) = other
            .call(
                "POST",
                &format!("/api/v1/deals/{deal_id}/waitlist"),
                Some(&token),
                Some(json!({"quantity": 1})),
            )
            .await;
        assert_eq!(
            (status, entry["position"].as_i64()),
            (StatusCode::CREATED, Some(i + 1)),
            "{entry}"
        );
        waiters.push(token);
    }
    let (status, _) = other
        .call(
            "POST",
            &format!("/api/v1/users/{payer_id}/balance"),
            Some(&admin),
            Some(json!({"amount": "10.00"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, paid) = other
        .call(
            "POST",
            &format!("/api/v1/orders/{}/pay", orders[0]),
            Some(&payer_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{paid}");

    // The owner stops before the deadlines; another node takes the deal over.
    paused.signal("-STOP");
    let stopped_at = Instant::now();
    let (new_owner, _) = await_moved(
        other,
        &admin,
        &owner,
        old_epoch,
        stopped_at,
        Duration::from_secs(4),
    )
    .await;
    let seller = &nodes[["n1", "n2", "n3"]
        .iter()
        .position(|n| *n == new_owner)
        .expect("a node")];

    // The new owner lapses the three unpaid claims at their deadlines and serves their units to
    // the first three waiting customers (polled, bounded); each pays their own claim.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut served = Vec::new();
    for token in &waiters[..3] {
        loop {
            let (_, entry) = seller
                .call(
                    "GET",
                    &format!("/api/v1/deals/{deal_id}/waitlist/me"),
                    Some(token),
                    None,
                )
                .await;
            if let Some(order_id) = entry["order_id"].as_i64() {
                assert_eq!(entry["status"], "PROMOTED");
                served.push((order_id, token));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not served under {new_owner}: {entry}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for (order_id, token) in served {
        let (status, paid) = other
            .call(
                "POST",
                &format!("/api/v1/orders/{order_id}/pay"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "a served claim is paid: {paid}");
    }
    let (_, last) = other
        .call(
            "GET",
            &format!("/api/v1/deals/{deal_id}/waitlist/me"),
            Some(&waiters[3]),
            None,
        )
        .await;
    assert_eq!(
        (&last["status"], &last["position"]),
        (&json!("WAITING"), &json!(1)),
        "{last}"
    );
    paused.signal("-CONT");

    // In the store: three cancelled unpaid, four open and paid (one bought, three served), the
    // units conserved and none on the shelf — also after
    // the old owner woke (give it a moment to try whatever it would).
    let mut db = sqlx::PgConnection::connect(&store.url)
        .await
        .expect("connect");
    let check = |rows: Vec<(String, String)>| {
        let cancelled = rows
            .iter()
            .filter(|(s, p)| s == "CANCELLED" && p == "UNPAID")
            .count();
        let paid = rows
            .iter()
            .filter(|(s, p)| s == "OPEN" && p == "PAID")
            .count();
        assert_eq!((cancelled, paid, rows.len()), (3, 4, 7), "{rows:?}");
    };
    let orders_sql = "SELECT status, payment_status FROM orders WHERE deal_id = $1 ORDER BY id";
    let stock_sql = "SELECT d.available_units, d.total_units, COALESCE(SUM(o.quantity) FILTER (WHERE o.status <> 'CANCELLED'), 0)::BIGINT \
                     FROM deals d LEFT JOIN orders o ON o.deal_id = d.id WHERE d.id = $1 GROUP BY d.id";
    check(
        sqlx::query_as(orders_sql)
            .bind(deal_id)
            .fetch_all(&mut db)
            .await
            .expect("orders"),
    );
    let (status, _) = paused.call("GET", "/livez", None, None).await;
    assert_eq!(status, StatusCode::OK, "the old owner is awake");
    let (status, after) = other
        .call(
            "GET",
            &format!("/api/v1/orders/{}", orders[1]),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (status, after["status"].clone()),
        (StatusCode::OK, json!("CANCELLED"))
    );
    check(
        sqlx::query_as(orders_sql)
            .bind(deal_id)
            .fetch_all(&mut db)
            .await
            .expect("orders"),
    );
    let (available, total, held): (i64, i64, i64) = sqlx::query_as(stock_sql)
        .bind(deal_id)
        .fetch_one(&mut db)
        .await
        .expect("stock");
    assert_eq!(
        (available + held, available),
        (total, 0),
        "conserved in the store"
    );
    let waiting: Vec<String> =
        sqlx::query_scalar("SELECT status FROM waitlist_entries WHERE deal_id = $1 ORDER BY id")
            .bind(deal_id)
            .fetch_all(&mut db)
            .await
            .expect("entries");
    assert_eq!(waiting, ["PROMOTED", "PROMOTED", "PROMOTED", "WAITING"]);
    drop(nodes);
    drop_keys(&cluster).await;
    store.remove().await;
}
