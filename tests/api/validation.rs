//! Bad input gets a 400 (or 413) in the error envelope, naming the field, and changes nothing.

use actix_web::http::StatusCode;
use actors::clock::now_ms;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, rfc3339, spawn_app};

/// Deals and orders in the store, to prove a refused request changed nothing.
pub async fn store_counts(app: &TestApp) -> (usize, i64) {
    let deals = app.store().load_deals().await.expect("store").deals.len();
    let (orders, _) = app
        .store()
        .list_orders(&Default::default(), 1, 0)
        .await
        .expect("store");
    (deals, orders)
}

fn deal_with(overrides: Value) -> Value {
    let mut deal = json!({"product_name": "Blender", "actual_price": "80.00", "final_price": "60.00", "total_units": 10,
        "expires_at": rfc3339(now_ms() + 3_600_000)});
    for (key, value) in overrides.as_object().expect("object") {
        if value.is_null() {
            deal.as_object_mut().expect("object").remove(key);
        } else {
            deal[key] = value.clone();
        }
    }
    deal
}

/// Order bodies: malformed, mistyped, missing, zero and negative quantities.
async fn bad_order_input_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(10, json!({})).await;
    let customer = &app.customers(1).await[0];
    let token = Some(customer.token.as_str());
    let before = store_counts(&app).await;

    assert_error(
        &app.call_raw(
            "POST",
            "/api/v1/orders",
            token,
            "application/json",
            "{\"deal_id\": ",
        )
        .await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_JSON",
    );
    assert_error(
        &app.call_raw(
            "POST",
            "/api/v1/orders",
            token,
            "text/plain",
            "{\"deal_id\": 1}",
        )
        .await,
        StatusCode::BAD_REQUEST,
        "MALFORMED_JSON",
    );
    assert_error(
        &app.call_raw(
            "POST",
            "/api/v1/orders",
            token,
            "application/json",
            "[1, 2]",
        )
        .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    );
    for (body, field) in [
        (json!({}), "deal_id"),
        (json!({"deal_id": "one"}), "deal_id"),
        (json!({"deal_id": deal_id, "quantity": "two"}), "quantity"),
        (json!({"deal_id": deal_id, "quantity": 0}), "quantity"),
        (json!({"deal_id": deal_id, "quantity": -3}), "quantity"),
        (json!({"deal_id": deal_id, "quantity": 1.5}), "quantity"),
        (
            json!({"deal_id": deal_id, "quantity": 1_000_000}),
            "quantity",
        ),
    ] {
        let reply = app.post("/api/v1/orders", token, body.clone()).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(
            reply.1["errors"][field].is_array(),
            "{body} should name {field}: {}",
            reply.1
        );
    }
    assert_eq!(store_counts(&app).await, before);
    assert_eq!(app.deal(deal_id).await["available_units"], 10);
    app.finish().await;
}

/// Deal bodies: three decimals, negative or non-numeric prices, final above actual, a window
/// over 12 hours or backwards, units out of range, an unknown recurrence, a missing field.
async fn bad_deal_input_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = Some(app.admin_token.as_str());
    let before = store_counts(&app).await;
    let start = now_ms() + 60_000;
    let cases = [
        (json!({"actual_price": "10.001"}), "actual_price"),
        (json!({"final_price": 10.005}), "final_price"),
        (json!({"actual_price": "-5.00"}), "actual_price"),
        (json!({"actual_price": "ten"}), "actual_price"),
        (json!({"actual_price": true}), "actual_price"),
        (json!({"final_price": "0.00"}), "final_price"),
        (json!({"final_price": "90.00"}), "final_price"),
        (
            json!({"starts_at": rfc3339(start), "expires_at": rfc3339(start + 12 * 3_600_000 + 1_000)}),
            "expires_at",
        ),
        (
            json!({"starts_at": rfc3339(start), "expires_at": rfc3339(start - 1_000)}),
            "expires_at",
        ),
        (json!({"expires_at": "tomorrow"}), "expires_at"),
        (
            json!({"expires_at": rfc3339(now_ms() - 1_000)}),
            "expires_at",
        ),
        (json!({"total_units": -1}), "total_units"),
        (json!({"available_units": 11}), "available_units"),
        (json!({"per_customer_limit": 0}), "per_customer_limit"),
        (json!({"recurrence": "weekly"}), "recurrence"),
        (json!({"product_name": "   "}), "product_name"),
        (json!({"expires_at": null}), "expires_at"),
    ];
    for (overrides, field) in cases {
        let reply = app
            .post("/api/v1/deals", admin, deal_with(overrides.clone()))
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(
            reply.1["errors"][field].is_array(),
            "{overrides} should name {field}: {}",
            reply.1
        );
    }
    assert_eq!(store_counts(&app).await, before);

    let (status, deal) = app
        .post(
            "/api/v1/deals",
            admin,
            deal_with(json!({"actual_price": 80, "final_price": 59.5})),
        )
        .await;
    assert_eq!(
        (status, &deal["final_price"]),
        (StatusCode::CREATED, &json!("59.50")),
        "numbers are accepted too"
    );
    app.finish().await;
}

/// Updates are validated against the deal as it stands, and change nothing when refused.
async fn bad_deal_updates_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = Some(app.admin_token.as_str());
    let deal_id = app.create_deal(10, json!({})).await;
    let before = app.deal(deal_id).await;
    let path = format!("/api/v1/deals/{deal_id}");
    for (body, field) in [
        (json!({"final_price": "500.00"}), "final_price"),
        (
            json!({"expires_at": rfc3339(now_ms() + 13 * 3_600_000)}),
            "expires_at",
        ),
        (
            json!({"total_units": 10, "available_units": 4}),
            "available_units",
        ),
        (json!({"actual_price": "1.999"}), "actual_price"),
    ] {
        let reply = app.call("PATCH", &path, admin, Some(body.clone())).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(
            reply.1["errors"][field].is_array(),
            "{body} should name {field}: {}",
            reply.1
        );
    }
    assert_eq!(app.deal(deal_id).await, before);
    app.finish().await;
}

/// Oversized bodies are 413 in the envelope; unknown routes and bad ids are 404 in the envelope.
async fn limits_and_unknown_routes(backend: Backend) {
    let app = spawn_app(backend).await;
    let huge =
        json!({"username": "x".repeat(100_000), "email": "a@b.co", "password": "password-1"});
    assert_error(
        &app.post("/api/v1/users", None, huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    );
    assert_error(
        &app.get("/api/v1/nothing-here", None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &app.get("/api/v1/deals/abc", None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &app.get("/api/v1/deals/424242", None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &app.get("/api/v1/deals?page=0", None).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    );
    let weak = app
        .post(
            "/api/v1/users",
            None,
            json!({"username": "ab", "email": "nope", "password": "short"}),
        )
        .await;
    assert_error(&weak, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    for field in ["username", "email", "password"] {
        assert!(weak.1["errors"][field].is_array(), "{}", weak.1);
    }
    app.finish().await;
}

crate::on_both_stores!(
    bad_order_input_is_refused,
    bad_deal_input_is_refused,
    bad_deal_updates_are_refused,
    limits_and_unknown_routes
);
