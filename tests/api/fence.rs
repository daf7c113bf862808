//! The fence (issue 10, DESIGN.md decision 8): a batch commits only while the store holds the
//! fencing epoch its deal's orders were sold under. When another node takes a deal over (here:
//! its epoch incremented in the store, as a new owner does), this node's next batch for it
//! stores nothing, its orders answer 503 `DEAL_UNAVAILABLE`, the node stops selling the deal at
//! once, and orders of other deals in the same batch are stored all the same. Postgres only:
//! cluster mode runs on Postgres.

use std::sync::atomic::Ordering;

use actix_web::http::StatusCode;
use serde_json::json;
use sqlx::Connection;

use crate::helpers::{Backend, assert_error, spawn, spawn_app};

#[actix_web::test]
async fn a_batch_under_a_stale_epoch_stores_nothing_and_the_deal_stops_selling() {
    let app = spawn_app(Backend::Postgres).await;
    let lost = app.create_deal(50, json!({})).await;
    let kept = app.create_deal(50, json!({})).await;
    let customers = app.customers(20).await;
    let (status, first) = app.order(&customers[0].token, lost).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");

    // Another node takes `lost` over: its epoch moves on in the store.
    let mut conn = sqlx::PgConnection::connect(&app.store_url())
        .await
        .expect("connect");
    sqlx::query("UPDATE deals SET owner_epoch = owner_epoch + 1 WHERE id = $1")
        .bind(lost)
        .execute(&mut conn)
        .await
        .expect("epoch taken");

    // A burst at both deals at once, so that their orders share batches.
    let mut requests = Vec::new();
    for (i, customer) in customers.iter().enumerate() {
        let deal_id = if i % 2 == 0 { lost } else { kept };
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/orders"),
            customer.token.clone(),
        );
        requests.push((
            deal_id,
            spawn(async move {
                let mut response = client
                    .post(url)
                    .insert_header(("Authorization", format!("Bearer {token}")))
                    .send_json(&json!({"deal_id": deal_id}))
                    .await
                    .expect("answered");
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                (response.status(), body)
            }),
        ));
    }
    for (deal_id, request) in requests {
        let (status, body) = request.await.expect("joined");
        if deal_id == lost {
            assert_error(
                &(status, body),
                StatusCode::SERVICE_UNAVAILABLE,
                "DEAL_UNAVAILABLE",
            );
        } else {
            assert_eq!(status, StatusCode::CREATED, "the kept deal sells: {body}");
        }
    }
    assert!(
        app.state
            .engine
            .writer_stats()
            .batches_fenced
            .load(Ordering::Relaxed)
            >= 1,
        "at least one batch met the fence"
    );
    // The node dropped the deal: refused before the store, however often asked.
    let fenced_before = app
        .state
        .engine
        .writer_stats()
        .batches_fenced
        .load(Ordering::Relaxed);
    assert_error(
        &app.order(&customers[2].token, lost).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "DEAL_UNAVAILABLE",
    );
    assert_eq!(
        app.state
            .engine
            .writer_stats()
            .batches_fenced
            .load(Ordering::Relaxed),
        fenced_before,
        "no further batch for the lost deal reached the store"
    );

    let lost_stock = app.stock(lost).await;
    assert_eq!(
        (
            lost_stock.orders_held,
            lost_stock.units_held,
            lost_stock.available_units
        ),
        (1, 1, 49),
        "only the order sold under the old epoch before the takeover is stored"
    );
    let kept_stock = app.stock(kept).await;
    assert_eq!(
        (kept_stock.orders_held, kept_stock.available_units),
        (10, 40)
    );
    assert!(lost_stock.conserved() && kept_stock.conserved());
    drop(conn);
    app.finish().await;
}
