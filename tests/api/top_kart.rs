//! The "Top-Kart" paths, used as a client written against them would (issue 12, acceptance 6):
//! an admin creates a deal by name, a customer orders it by name at the price it shows (never
//! charged from the client's number), tracks it, and the admin approves the deal's orders.

use actix_web::http::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, assert_error, spawn_app};

async fn a_top_kart_client_buys_by_product_name(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = Some(app.admin_token.as_str());
    let (status, deal) = app
        .post(
            "/create-deal/",
            admin,
            json!({"product_name": "Blender", "actual_price": "80.00", "discounted_price": "55.50", "units": 20}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    assert_eq!(
        (deal["recurrence"].clone(), deal["final_price"].clone()),
        (json!("daily"), json!("55.50"))
    );
    let millis = |at: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(at.as_str().expect("instant"))
            .expect("RFC 3339")
            .timestamp_millis()
    };
    let window = millis(&deal["expires_at"]) - millis(&deal["starts_at"]);
    assert_eq!(window, 12 * 3_600_000);
    let (status, listed) = app.get("/fetch-deals", None).await;
    assert_eq!(
        (status, listed["count"].clone()),
        (StatusCode::OK, json!(1))
    );

    let buyer = app.customers(1).await.remove(0);
    let (_, me) = app.get("/api/v1/users/me", Some(&buyer.token)).await;
    let name = me["username"].as_str().expect("username").to_owned();
    let order = |price: &str, buyer_name: &str| json!({"product_name": "Blender", "price": price, "buyer_name": buyer_name, "quantity": 2});
    // A client-supplied price never sets what is charged: a different one is refused.
    let refused = app
        .post("/create-order/", Some(&buyer.token), order("1.00", &name))
        .await;
    assert_error(&refused, StatusCode::CONFLICT, "PRICE_CHANGED");
    assert_eq!(refused.1["price"], "55.50");
    let refused = app
        .post(
            "/create-order/",
            Some(&buyer.token),
            order("55.50", "someone-else"),
        )
        .await;
    assert_eq!(refused.0, StatusCode::FORBIDDEN);
    let (status, placed) = app
        .post("/create-order", Some(&buyer.token), order("55.50", &name))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    assert_eq!(
        (placed["total_price"].clone(), placed["quantity"].clone()),
        (json!("111.00"), json!(2))
    );
    let (status, missing) = app
        .post(
            "/create-order/",
            Some(&buyer.token),
            json!({"product_name": "Toaster", "price": "1.00", "buyer_name": name}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");

    let (status, tracked) = app
        .post(
            "/track-status/",
            Some(&buyer.token),
            json!({"product_name": "Blender"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tracked}");
    assert_eq!(tracked["orders"][0]["status"], "OPEN");
    let (status, approved) = app
        .post("/update-order/", admin, json!({"product_name": "Blender"}))
        .await;
    assert_eq!(
        (status, approved["approved"].clone()),
        (StatusCode::OK, json!(1))
    );
    let (_, tracked) = app
        .post(
            "/track-status",
            Some(&buyer.token),
            json!({"product_name": "Blender"}),
        )
        .await;
    assert_eq!(tracked["orders"][0]["status"], "APPROVED");
    let refused = app
        .post(
            "/update-order/",
            Some(&buyer.token),
            json!({"product_name": "Blender"}),
        )
        .await;
    assert_eq!(refused.0, StatusCode::FORBIDDEN);

    // Two active deals of one name: the name no longer picks one.
    app.post(
        "/create-deal/",
        admin,
        json!({"product_name": "Blender", "actual_price": "80.00", "discounted_price": "50.00", "units": 5}),
    )
    .await;
    let refused = app
        .post("/create-order/", Some(&buyer.token), order("55.50", &name))
        .await;
    assert_error(&refused, StatusCode::CONFLICT, "CONFLICT");
    app.finish().await;
}

crate::on_both_stores!(a_top_kart_client_buys_by_product_name);
