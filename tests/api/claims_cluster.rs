//! Claims in cluster mode (issue 12, acceptance 8): a deal's owner is paused (SIGSTOP) past its
//! lease with unpaid claims open; the node that takes the deal over reloads them from the store
//! and lapses them at their deadlines, with their units back, while the paid claim stays; when
//! the old owner wakes it changes nothing (its lease and epoch are gone). Checked in the store.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::json;
use sqlx::Connection;

use crate::cluster::{cluster_name, drop_keys, three_nodes};
use crate::engine_process::register_buyer;
use crate::helpers::{Backend, TestStore, rfc3339};
use crate::ownership::{await_moved, owners};

#[actix_web::test]
async fn claims_lapse_under_the_new_owner_after_the_old_one_is_paused() {
    let store = TestStore::create(Backend::Postgres).await;
    let cluster = cluster_name();
    let (nodes, admin) = three_nodes(&store, &cluster).await;
    let deal = json!({"product_name": "Claimed", "actual_price": "20.00", "final_price": "10.00", "total_units": 20,
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

    // The new owner lapses the three unpaid claims at their deadlines (polled, bounded).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, shown) = seller
            .call("GET", &format!("/api/v1/deals/{deal_id}"), None, None)
            .await;
        if shown["available_units"] == 19 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the claims did not lapse under {new_owner}: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    paused.signal("-CONT");

    // In the store: three cancelled unpaid, one open and paid, the units conserved — also after
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
        assert_eq!((cancelled, paid, rows.len()), (3, 1, 4), "{rows:?}");
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
        (total, 19),
        "conserved in the store"
    );
    drop(nodes);
    drop_keys(&cluster).await;
    store.remove().await;
}
