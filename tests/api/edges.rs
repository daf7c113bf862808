//! Every numeric field of every body, query and path, on the v1 and the compatibility paths, at
//! and past its edges (issue 8's hunt for the overflow's kin).

use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};
use crate::overflow::{assert_in_step, memory_and_store};

/// Values at and past the edges of every numeric reading: i64's ends, past u64, floats out of
/// range, numbers as text, and text that is not a number.
fn edge_values() -> Vec<Value> {
    vec![
        json!(i64::MIN),
        json!(i64::MIN + 1),
        json!(-1),
        json!(0),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(1e308),
        json!(-1e308),
        json!(0.5),
        json!("99999999999999999999999999999"),
        json!("1e308"),
        json!("NaN"),
        json!("-0"),
    ]
}

/// The same values as they would appear in a query string or a path.
fn edge_texts() -> Vec<String> {
    edge_values()
        .into_iter()
        .map(|value| match value {
            Value::String(text) => text,
            other => other.to_string(),
        })
        .chain(["-9223372036854775809", "9223372036854775808", "", "%00"].map(String::from))
        .collect()
}

/// Every numeric field of every body, query and path, on the v1 and the compatibility paths,
/// with each edge value: never a 5xx, always the envelope for a 4xx, and the live deal they hit
/// still the same in memory and in the store, units conserved and in range.
async fn every_numeric_field_survives_its_edges(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token.clone();
    let customer = app.customers(1).await.remove(0);
    let deal_id = app.create_deal(1_000, json!({})).await;
    let (_, order) = app.order(&customer.token, deal_id).await;
    let order_id = order["id"].as_i64().expect("an order");
    let deal = deal_id.to_string();
    // (method, path, token, body with the field set to the value, field)
    let bodies: Vec<(&str, String, &str, Value, &str)> = vec![
        (
            "POST",
            "/api/v1/orders".into(),
            &customer.token,
            json!({"deal_id": deal_id}),
            "quantity",
        ),
        (
            "POST",
            "/api/v1/orders".into(),
            &customer.token,
            json!({}),
            "deal_id",
        ),
        (
            "POST",
            "/topkart/place/order/".into(),
            &customer.token,
            json!({"deal_id": deal_id}),
            "quantity",
        ),
        (
            "POST",
            "/topkart/place/order/".into(),
            &customer.token,
            json!({"deal_id": deal_id}),
            "customer_id",
        ),
        (
            "POST",
            "/topkart/place/order/".into(),
            &customer.token,
            json!({}),
            "deal_id",
        ),
        (
            "PATCH",
            format!("/api/v1/deals/{deal}"),
            &admin,
            json!({}),
            "total_units",
        ),
        (
            "PATCH",
            format!("/api/v1/deals/{deal}"),
            &admin,
            json!({}),
            "available_units",
        ),
        (
            "PATCH",
            format!("/api/v1/deals/{deal}"),
            &admin,
            json!({}),
            "per_customer_limit",
        ),
        (
            "PATCH",
            format!("/api/v1/deals/{deal}"),
            &admin,
            json!({}),
            "actual_price",
        ),
        (
            "PATCH",
            format!("/api/v1/deals/{deal}"),
            &admin,
            json!({}),
            "final_price",
        ),
        (
            "PATCH",
            format!("/api/v1/deals/{deal}"),
            &admin,
            json!({}),
            "starts_at",
        ),
        (
            "PATCH",
            format!("/api/v1/deals/{deal}"),
            &admin,
            json!({}),
            "expires_at",
        ),
        (
            "PUT",
            "/topkart/create/update/deals/".into(),
            &admin,
            json!({"id": deal_id}),
            "total_units",
        ),
        (
            "PUT",
            "/topkart/create/update/deals/".into(),
            &admin,
            json!({"total_units": 5}),
            "id",
        ),
        (
            "PUT",
            "/topkart/create/update/deals/".into(),
            &admin,
            json!({"total_units": 5}),
            "deal_id",
        ),
        (
            "PUT",
            "/topkart/update/order_status/".into(),
            &admin,
            json!({"status": "APPROVED"}),
            "order_id",
        ),
        (
            "PATCH",
            format!("/api/v1/orders/{order_id}/status"),
            &admin,
            json!({}),
            "status",
        ),
        (
            "POST",
            "/api/v1/users".into(),
            &admin,
            json!({"username": "u", "email": "u@x.io", "password": "password-1"}),
            "phone_number",
        ),
        (
            "POST",
            "/api/v1/auth/login".into(),
            "",
            json!({"password": "x"}),
            "username",
        ),
        (
            "POST",
            "/api/v1/auth/refresh".into(),
            "",
            json!({}),
            "refresh_token",
        ),
    ];
    for (method, path, token, base, field) in &bodies {
        for value in edge_values() {
            let mut body = base.clone();
            body[*field] = value.clone();
            let token = (!token.is_empty()).then_some(*token);
            let (status, answer) = app.call(method, path, token, Some(body.clone())).await;
            assert!(
                !status.is_server_error(),
                "{method} {path} {body} answered {status} {answer}"
            );
            if status.is_client_error() {
                assert_eq!(
                    answer["status"], "error",
                    "{method} {path} {body}: {answer}"
                );
            }
        }
    }
    // Queries and paths: the same values as text.
    let mut targets = Vec::new();
    for text in edge_texts() {
        let text = text.replace('%', "%25");
        for (path, token) in [
            (format!("/api/v1/deals?page={text}"), None),
            (format!("/api/v1/deals?page_size={text}"), None),
            (
                format!("/api/v1/deals?status=all&page={text}"),
                Some(admin.as_str()),
            ),
            (
                format!("/api/v1/orders?page={text}"),
                Some(customer.token.as_str()),
            ),
            (
                format!("/api/v1/orders?deal_id={text}"),
                Some(customer.token.as_str()),
            ),
            (
                format!("/api/v1/orders?page={text}&page_size=100"),
                Some(admin.as_str()),
            ),
            (
                format!("/topkart/check/order_status/?order_id={text}"),
                Some(customer.token.as_str()),
            ),
            (format!("/topkart/get/active/deals/?page={text}"), None),
            (format!("/api/v1/deals/{text}"), None),
            (
                format!("/api/v1/orders/{text}"),
                Some(customer.token.as_str()),
            ),
        ] {
            targets.push((path, token));
        }
    }
    for (path, token) in targets {
        let (status, answer) = app.get(&path, token).await;
        assert!(
            !status.is_server_error(),
            "GET {path} answered {status} {answer}"
        );
        if status.is_client_error() {
            assert_eq!(answer["status"], "error", "GET {path}: {answer}");
        }
    }
    let pair = memory_and_store(&app, deal_id).await;
    assert_in_step(&pair, "the sweep");
    let stock = app.stock(deal_id).await;
    assert!(stock.conserved());
    // Some edge values are valid (`available_units: 0` shrinks the deal to what is sold):
    // whatever they did, the deal stays in range.
    assert!((0..=actors::limits::UNITS_MAX).contains(&stock.total_units));
    app.finish().await;
}

crate::on_both_stores!(every_numeric_field_survives_its_edges);
