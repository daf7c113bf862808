//! Bursts over real HTTP: exactly the units there are are sold, the store agrees, and stock is
//! conserved — with single units, mixed quantities, and cancellations racing the orders.

use actix_web::http::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, Customer, spawn, spawn_app};

/// Fires one order per (customer, quantity) pair at once; returns (status, body) per request.
async fn fire(
    app: &crate::helpers::TestApp,
    deal_id: i64,
    orders: Vec<(&Customer, i64)>,
) -> Vec<(StatusCode, serde_json::Value, i64)> {
    let mut handles = Vec::with_capacity(orders.len());
    for (customer, quantity) in orders {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/orders"),
            customer.token.clone(),
        );
        handles.push(spawn(async move {
            let mut response = client
                .post(url)
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send_json(&json!({"deal_id": deal_id, "quantity": quantity}))
                .await
                .expect("request sent");
            let body: serde_json::Value = response.json().await.expect("JSON body");
            (response.status(), body, quantity)
        }));
    }
    let mut replies = Vec::with_capacity(handles.len());
    for handle in handles {
        replies.push(handle.await.expect("request task"));
    }
    replies
}

/// 100 units, 1,000 concurrent single-unit orders from 100 customers: exactly 100 × 201 and
/// 900 × 409 SOLD_OUT; the deal shows 0; the store holds exactly 100 orders; conserved.
async fn burst_sells_exactly_the_units(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(100, json!({})).await;
    let customers = app.customers(100).await;
    let orders = (0..1_000).map(|i| (&customers[i % 100], 1)).collect();

    let replies = fire(&app, deal_id, orders).await;

    let created: Vec<_> = replies
        .iter()
        .filter(|(status, ..)| *status == StatusCode::CREATED)
        .collect();
    let sold_out = replies
        .iter()
        .filter(|(status, body, _)| *status == StatusCode::CONFLICT && body["code"] == "SOLD_OUT")
        .count();
    assert_eq!(created.len(), 100, "201s");
    assert_eq!(sold_out, 900, "409 SOLD_OUT");
    let mut ids: Vec<i64> = created
        .iter()
        .map(|(_, body, _)| body["id"].as_i64().expect("order id"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100, "every 201 names its own order");
    for id in &ids {
        assert!(
            app.store().order_by_id(*id).await.expect("store").is_some(),
            "acknowledged order {id} is stored"
        );
    }
    assert_eq!(app.deal(deal_id).await["available_units"], 0);
    assert_eq!(app.deal(deal_id).await["status"], "SOLD_OUT");
    let stock = app.stock(deal_id).await;
    assert_eq!(
        (stock.orders_held, stock.units_held, stock.available_units),
        (100, 100, 0)
    );
    assert!(stock.conserved(), "{stock:?}");
    app.finish().await;
}

/// Quantities 1–5: units sold + units left = 100, and every SOLD_OUT asked for more than is left.
async fn burst_with_mixed_quantities(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(100, json!({})).await;
    let customers = app.customers(100).await;
    let orders = (0..1_000)
        .map(|i| (&customers[i % 100], 1 + (i * 7 % 5) as i64))
        .collect();

    let replies = fire(&app, deal_id, orders).await;

    let sold: i64 = replies
        .iter()
        .filter(|(s, ..)| *s == StatusCode::CREATED)
        .map(|(_, _, q)| q)
        .sum();
    let left = app.deal(deal_id).await["available_units"]
        .as_i64()
        .expect("available");
    assert_eq!(sold + left, 100);
    for (status, body, quantity) in &replies {
        assert!(
            *status == StatusCode::CREATED
                || (*status == StatusCode::CONFLICT
                    && body["code"] == "SOLD_OUT"
                    && *quantity > left),
            "unexpected answer {status} {body} for quantity {quantity} with {left} left"
        );
    }
    let stock = app.stock(deal_id).await;
    assert_eq!((stock.units_held, stock.available_units), (sold, left));
    assert!(stock.conserved(), "{stock:?}");
    app.finish().await;
}

/// Orders race cancellations (each cancelled twice): every cancellation restocks once, and
/// memory and store agree on what is left.
async fn burst_with_concurrent_cancellations(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(100, json!({})).await;
    let customers = app.customers(100).await;
    let first = fire(&app, deal_id, (0..60).map(|i| (&customers[i], 1)).collect()).await;
    let placed: Vec<(i64, usize)> = first
        .iter()
        .enumerate()
        .map(|(i, (_, body, _))| (body["id"].as_i64().expect("id"), i))
        .collect();
    assert_eq!(placed.len(), 60);

    let mut cancels = Vec::new();
    for (order_id, owner) in placed.iter().take(30) {
        for _ in 0..2 {
            let (client, url, token) = (
                app.client.clone(),
                app.url(&format!("/api/v1/orders/{order_id}/cancel")),
                customers[*owner].token.clone(),
            );
            cancels.push(spawn(async move {
                let response = client
                    .post(url)
                    .insert_header(("Authorization", format!("Bearer {token}")))
                    .send()
                    .await
                    .expect("sent");
                response.status()
            }));
        }
    }
    let more = fire(
        &app,
        deal_id,
        (0..500).map(|i| (&customers[i % 100], 1)).collect(),
    )
    .await;
    for cancel in cancels {
        assert_eq!(
            cancel.await.expect("task"),
            StatusCode::OK,
            "cancelling (even twice) answers 200"
        );
    }

    let sold_later = more
        .iter()
        .filter(|(s, ..)| *s == StatusCode::CREATED)
        .count() as i64;
    let left = app.deal(deal_id).await["available_units"]
        .as_i64()
        .expect("available");
    assert_eq!(
        60 - 30 + sold_later + left,
        100,
        "live orders + available = total"
    );
    let stock = app.stock(deal_id).await;
    assert_eq!(stock.available_units, left, "store and memory agree");
    assert_eq!(stock.orders_held, 30 + sold_later);
    assert!(stock.conserved(), "{stock:?}");
    app.finish().await;
}

/// With the deal's mailbox and the writer's queue shrunk to almost nothing, a burst is answered
/// at once: what does not fit gets 503 OVERLOADED with Retry-After, nothing hangs, every 201 is
/// stored, no 503 leaves an order or a reserved unit behind.
async fn full_queues_answer_503_with_retry_after(backend: Backend) {
    let store = crate::helpers::TestStore::create(backend).await;
    let app = crate::helpers::spawn_app_with(store, |settings| {
        settings.deal_mailbox_capacity = 1;
        settings.writer_queue_max = 1;
    })
    .await;
    let deal_id = app.create_deal(1_000, json!({})).await;
    let customers = app.customers(50).await;
    let mut handles = Vec::new();
    for i in 0..500 {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/orders"),
            customers[i % 50].token.clone(),
        );
        handles.push(spawn(async move {
            let mut response = client
                .post(url)
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send_json(&json!({"deal_id": deal_id}))
                .await
                .expect("answered");
            let retry_after = response.headers().get("Retry-After").is_some();
            let body: serde_json::Value = response.json().await.expect("JSON");
            (response.status(), body, retry_after)
        }));
    }
    let (mut created, mut overloaded) = (0i64, 0i64);
    for handle in handles {
        let (status, body, retry_after) = handle.await.expect("task");
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["code"], "OVERLOADED", "{body}");
                assert!(retry_after, "503 carries Retry-After");
                overloaded += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(overloaded > 0, "the shrunk queues refused some orders");
    assert!(created > 0, "and still sold");
    assert_eq!(app.deal(deal_id).await["available_units"], 1_000 - created);
    let stock = app.stock(deal_id).await;
    assert_eq!(
        (stock.orders_held, stock.available_units),
        (created, 1_000 - created)
    );
    assert!(stock.conserved(), "{stock:?}");
    app.finish().await;
}

crate::on_both_stores!(
    full_queues_answer_503_with_retry_after,
    burst_sells_exactly_the_units,
    burst_with_mixed_quantities,
    burst_with_concurrent_cancellations
);
