//! `PATCH /orders/{id}`: a buyer changes the quantity of an open, unpaid order through the
//! deal's actor, on both stores: more units need free units (the order unchanged otherwise),
//! fewer go back at once; limits hold; paid, cancelled and other customers' orders refuse;
//! a claim's changed quantity is what its lapse gives back.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp, assert_error, spawn_app};

async fn change(
    app: &TestApp,
    token: &str,
    order_id: i64,
    quantity: i64,
) -> (StatusCode, serde_json::Value) {
    app.call(
        "PATCH",
        &format!("/api/v1/orders/{order_id}"),
        Some(token),
        Some(json!({ "quantity": quantity })),
    )
    .await
}

async fn available(app: &TestApp, deal_id: i64) -> i64 {
    app.deal(deal_id).await["available_units"]
        .as_i64()
        .expect("units")
}

async fn quantities_change_through_the_deal(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app
        .create_deal(10, json!({"final_price": "4.00", "per_customer_limit": 6}))
        .await;
    let buyers = app.customers(2).await;
    let (_, placed) = app
        .post(
            "/api/v1/orders",
            Some(&buyers[0].token),
            json!({"deal_id": deal_id, "quantity": 2}),
        )
        .await;
    let order_id = placed["id"].as_i64().expect("id");
    let (_, other) = app
        .post(
            "/api/v1/orders",
            Some(&buyers[1].token),
            json!({"deal_id": deal_id, "quantity": 3}),
        )
        .await;

    let (status, changed) = change(&app, &buyers[0].token, order_id, 5).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        (changed["quantity"].clone(), changed["total_price"].clone()),
        (json!(5), json!("20.00"))
    );
    assert_eq!(available(&app, deal_id).await, 2);
    // Past the per-customer limit, past the stock: refused, nothing changed.
    let refused = change(&app, &buyers[0].token, order_id, 7).await;
    assert_error(&refused, StatusCode::CONFLICT, "LIMIT_EXCEEDED");
    let (status, _) = change(&app, &buyers[1].token, other["id"].as_i64().unwrap(), 6).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(available(&app, deal_id).await, 2);
    // Fewer units: back on the shelf at once.
    let (status, changed) = change(&app, &buyers[0].token, order_id, 1).await;
    assert_eq!(
        (status, changed["quantity"].clone()),
        (StatusCode::OK, json!(1))
    );
    assert_eq!(available(&app, deal_id).await, 6);
    // Refusals: bad quantities, another customer's order, an admin, a cancelled order.
    for quantity in [0, -1, 10_001] {
        let (status, body) = change(&app, &buyers[0].token, order_id, quantity).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{quantity}: {body}");
        assert!(body["errors"]["quantity"].is_array(), "{body}");
    }
    let (status, _) = change(&app, &buyers[1].token, order_id, 2).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = change(&app, &app.admin_token, order_id, 2).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.post(
        &format!("/api/v1/orders/{order_id}/cancel"),
        Some(&buyers[0].token),
        json!({}),
    )
    .await;
    let refused = change(&app, &buyers[0].token, order_id, 2).await;
    assert_error(&refused, StatusCode::CONFLICT, "INVALID_TRANSITION");
    assert_eq!(available(&app, deal_id).await, 7);
    assert!(app.stock(deal_id).await.conserved());
    app.finish().await;
}

/// A claim (1 s window) grown from 1 to 4 units lapses with its 4; a paid one cannot change.
async fn a_changed_claim_lapses_with_its_new_quantity(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app
        .create_deal(10, json!({"final_price": "1.00", "payment_window_secs": 1}))
        .await;
    let buyers = app.customers(2).await;
    let (_, claim) = app.order(&buyers[0].token, deal_id).await;
    let claim_id = claim["id"].as_i64().expect("id");
    let (status, changed) = change(&app, &buyers[0].token, claim_id, 4).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["payment_status"], "UNPAID");
    // A paid order's quantity is fixed.
    let (_, paid) = app.order(&buyers[1].token, deal_id).await;
    let paid_id = paid["id"].as_i64().expect("id");
    app.post(
        &format!("/api/v1/users/{}/balance", buyers[1].id),
        Some(&app.admin_token),
        json!({"amount": "5.00"}),
    )
    .await;
    let (status, _) = app
        .post(
            &format!("/api/v1/orders/{paid_id}/pay"),
            Some(&buyers[1].token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let refused = change(&app, &buyers[1].token, paid_id, 2).await;
    assert_error(&refused, StatusCode::CONFLICT, "INVALID_TRANSITION");
    assert_eq!(available(&app, deal_id).await, 5);
    let deadline = Instant::now() + Duration::from_secs(10);
    while available(&app, deal_id).await != 9 {
        assert!(
            Instant::now() < deadline,
            "the claim did not lapse with its 4 units"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(app.stock(deal_id).await.conserved());
    app.finish().await;
}

crate::on_both_stores!(
    quantities_change_through_the_deal,
    a_changed_claim_lapses_with_its_new_quantity
);
