//! A client written against the original Topkart API: its paths work end to end.

use actix_web::http::StatusCode;
use actors::clock::now_ms;
use serde_json::json;

use crate::helpers::{Backend, assert_error, rfc3339, spawn_app};

/// Register, create and update a deal, list active deals, place an order, approve it and check
/// its status — all over the original paths.
async fn the_original_paths_work(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = Some(app.admin_token.as_str());
    let (status, user) = app.post("/topkart/create/users/", None, json!({"username": "bob", "email": "bob@example.com", "password": "bob-password", "user_type": "customer"})).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let (_, pair) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "bob", "password": "bob-password"}),
        )
        .await;
    let bob = pair["access_token"].as_str().map(str::to_owned);

    let (status, deal) = app
        .post(
            "/topkart/create/update/deals/",
            admin,
            json!({"product_name": "Toaster", "actual_price": "40.00",
        "final_price": "25.00", "total_units": 3, "expires_at": rfc3339(now_ms() + 3_600_000)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let (status, updated) = app
        .call(
            "PUT",
            "/topkart/create/update/deals/",
            admin,
            Some(json!({"deal_id": deal["id"], "final_price": "20.00"})),
        )
        .await;
    assert_eq!(
        (status, &updated["final_price"]),
        (StatusCode::OK, &json!("20.00"))
    );
    assert_error(
        &app.call(
            "PUT",
            "/topkart/create/update/deals/",
            admin,
            Some(json!({"final_price": "1.00"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    );

    let (status, active) = app.get("/topkart/get/active/deals/", None).await;
    assert_eq!((status, &active["count"]), (StatusCode::OK, &json!(1)));
    let (status, order) = app
        .post(
            "/topkart/place/order/",
            bob.as_deref(),
            json!({"deal_id": deal["id"], "quantity": 2, "customer_id": user["id"]}),
        )
        .await;
    assert_eq!(
        (status, &order["unit_price"]),
        (StatusCode::CREATED, &json!("20.00")),
        "{order}"
    );
    let (status, changed) = app
        .call(
            "PUT",
            "/topkart/update/order_status/",
            admin,
            Some(json!({"order_id": order["id"], "status": "APPROVED"})),
        )
        .await;
    assert_eq!(
        (status, &changed["status"]),
        (StatusCode::OK, &json!("APPROVED"))
    );
    let (status, checked) = app
        .get(
            &format!("/topkart/check/order_status/?order_id={}", order["id"]),
            bob.as_deref(),
        )
        .await;
    assert_eq!(
        (status, checked),
        (
            StatusCode::OK,
            json!({"order_id": order["id"], "status": "APPROVED"})
        )
    );
    assert_error(
        &app.get("/topkart/check/order_status/", bob.as_deref())
            .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    );
    assert_error(
        &app.post(
            "/topkart/place/order/",
            bob.as_deref(),
            json!({"deal_id": deal["id"], "quantity": 2}),
        )
        .await,
        StatusCode::CONFLICT,
        "SOLD_OUT",
    );
    assert!(
        app.stock(deal["id"].as_i64().expect("id"))
            .await
            .conserved()
    );
    app.finish().await;
}

/// Two answers of the original API: a deal created without an expiry gets a window of 12 hours
/// from its start (now, or its `starts_at`), and a user registered without `user_type` is a 400
/// naming `user_type` (nothing created).
async fn the_original_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = Some(app.admin_token.as_str());
    let before = now_ms();
    let (status, deal) = app
        .post(
            "/topkart/create/update/deals/",
            admin,
            json!({"product_name": "Kettle", "actual_price": "40.00", "final_price": "25.00", "total_units": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let instant = |field: &str| {
        chrono::DateTime::parse_from_rfc3339(deal[field].as_str().expect(field))
            .expect("RFC 3339")
            .timestamp_millis()
    };
    let window = instant("expires_at") - instant("starts_at");
    assert_eq!(window, 12 * 3_600_000, "{deal}");
    assert!(instant("starts_at") >= before - 1_000, "{deal}");
    assert_eq!(deal["status"], "ACTIVE", "{deal}");

    let starts_at = now_ms() + 3_600_000;
    let (status, later) = app
        .post(
            "/topkart/create/update/deals/",
            admin,
            json!({"product_name": "Mixer", "actual_price": "40.00", "final_price": "25.00", "total_units": 3, "starts_at": rfc3339(starts_at)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{later}");
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(later["expires_at"].as_str().expect("expires_at"))
            .expect("RFC 3339")
            .timestamp_millis();
    assert_eq!(
        expires_at / 1_000,
        (starts_at + 12 * 3_600_000) / 1_000,
        "{later}"
    );

    let reply = app
        .post(
            "/topkart/create/users/",
            None,
            json!({"username": "eve", "email": "eve@example.com", "password": "eve-password"}),
        )
        .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(
        reply.1["errors"]["user_type"],
        json!(["User Type is required"]),
        "{}",
        reply.1
    );
    let (status, login) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "eve", "password": "eve-password"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "nothing was created: {login}"
    );
    app.finish().await;
}

crate::on_both_stores!(the_original_paths_work, the_original_answers);
