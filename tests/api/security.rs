//! Who may do what: other customers' orders are invisible (404), admin routes refuse customers
//! (403, nothing changes), forged, expired or misused tokens are 401, refresh tokens rotate,
//! and fields that would set price, status, owner or stock are never taken from a client.

use actix_web::http::StatusCode;
use actors::clock::now_ms;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::helpers::{Backend, JWT_SECRET, assert_error, spawn_app};

/// Another customer's order answers 404 to read, cancel and the compat status check.
async fn other_customers_orders_are_invisible(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(10, json!({})).await;
    let customers = app.customers(2).await;
    let (_, order) = app.order(&customers[0].token, deal_id).await;
    let intruder = Some(customers[1].token.as_str());
    let id = &order["id"];

    assert_error(
        &app.get(&format!("/api/v1/orders/{id}"), intruder).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &app.post(&format!("/api/v1/orders/{id}/cancel"), intruder, json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &app.get(
            &format!("/topkart/check/order_status/?order_id={id}"),
            intruder,
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &app.get("/api/v1/orders/999999", intruder).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    let (_, theirs) = app.get("/api/v1/orders", intruder).await;
    assert_eq!(theirs["count"], 0);
    let stored = app
        .store()
        .order_by_id(id.as_i64().expect("id"))
        .await
        .expect("store")
        .expect("order");
    assert_eq!(
        stored.status.as_str(),
        "OPEN",
        "the intruder's cancel changed nothing"
    );
    app.finish().await;
}

/// Every admin route answers 403 to a customer and changes nothing.
async fn customers_cannot_use_admin_routes(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(10, json!({})).await;
    let customer = &app.customers(1).await[0];
    let (_, order) = app.order(&customer.token, deal_id).await;
    let deal_before = app.deal(deal_id).await;
    let new_deal = json!({"product_name": "x", "actual_price": "2.00", "final_price": "1.00", "total_units": 5,
        "expires_at": crate::helpers::rfc3339(now_ms() + 60_000)});
    let calls: Vec<(&str, String, Value)> = vec![
        ("POST", "/api/v1/deals".into(), new_deal.clone()),
        (
            "PATCH",
            format!("/api/v1/deals/{deal_id}"),
            json!({"final_price": "0.01"}),
        ),
        (
            "PUT",
            format!("/api/v1/deals/{deal_id}"),
            json!({"total_units": 1000}),
        ),
        ("POST", format!("/api/v1/deals/{deal_id}/close"), json!({})),
        ("POST", format!("/api/v1/deals/{deal_id}/open"), json!({})),
        (
            "PATCH",
            format!("/api/v1/orders/{}/status", order["id"]),
            json!({"status": "FULFILLED"}),
        ),
        ("POST", "/topkart/create/update/deals/".into(), new_deal),
        (
            "PUT",
            "/topkart/create/update/deals/".into(),
            json!({"id": deal_id, "final_price": "0.01"}),
        ),
        (
            "PUT",
            "/topkart/update/order_status/".into(),
            json!({"order_id": order["id"], "status": "FULFILLED"}),
        ),
    ];
    for (method, path, body) in calls {
        let reply = app
            .call(method, &path, Some(&customer.token), Some(body))
            .await;
        assert_error(&reply, StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    let admin_signup = json!({"username": "mallory", "email": "m@example.com", "password": "password-123", "user_type": "admin"});
    assert_error(
        &app.post("/api/v1/users", Some(&customer.token), admin_signup.clone())
            .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    assert_error(
        &app.post("/api/v1/users", None, admin_signup).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    );

    let mut deal_after = app.deal(deal_id).await;
    deal_after["status"] = deal_before["status"].clone();
    assert_eq!(deal_after, deal_before, "nothing changed");
    assert_eq!(
        app.store().load_deals().await.expect("store").deals.len(),
        1,
        "no deal created"
    );
    assert!(
        app.store()
            .user_by_login("mallory")
            .await
            .expect("store")
            .is_none()
    );
    let stored = app
        .store()
        .order_by_id(order["id"].as_i64().expect("id"))
        .await
        .expect("store")
        .expect("order");
    assert_eq!(stored.status.as_str(), "OPEN");
    app.finish().await;
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn claims(sub: i64, role: &str, typ: &str, exp: i64) -> Value {
    json!({"sub": sub.to_string(), "role": role, "typ": typ, "iat": now_ms() / 1000, "exp": exp, "jti": "t"})
}

/// `alg: none`, an RS256/HS512 relabelling, a wrong signature, an expired token and a refresh
/// token used as an access token are all 401 INVALID_TOKEN; no token at all is 401 UNAUTHORIZED.
async fn forged_and_misused_tokens_are_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = &app.customers(1).await[0];
    let later = now_ms() / 1000 + 600;
    let unsigned = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"JWT"}"#),
        base64url(
            claims(customer.id, "admin", "access", later)
                .to_string()
                .as_bytes()
        )
    );
    let sign = |secret: &[u8], claims: Value| {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .expect("signed")
    };
    let wrong_key = sign(
        b"another-secret-another-secret-0000",
        claims(customer.id, "admin", "access", later),
    );
    let expired = sign(
        JWT_SECRET.as_bytes(),
        claims(customer.id, "customer", "access", now_ms() / 1000 - 120),
    );
    let refresh_as_access = sign(
        JWT_SECRET.as_bytes(),
        claims(customer.id, "customer", "refresh", later),
    );
    let genuine = sign(
        JWT_SECRET.as_bytes(),
        claims(customer.id, "customer", "access", later),
    );
    // Algorithm confusion: the header claims RS256 (or HS512) over a genuine HS256 signature; the
    // server pins HS256 and must not pick a verifier from the token's own header.
    let genuine_parts: Vec<&str> = genuine.split('.').collect();
    let relabelled = |alg: &str| {
        format!(
            "{}.{}.{}",
            base64url(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes()),
            genuine_parts[1],
            genuine_parts[2]
        )
    };
    let (rs256, hs512) = (relabelled("RS256"), relabelled("HS512"));

    for token in [
        &rs256,
        &hs512,
        &unsigned,
        &wrong_key,
        &expired,
        &refresh_as_access,
        &"not-a-jwt".to_owned(),
    ] {
        assert_error(
            &app.get("/api/v1/users/me", Some(token)).await,
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
        );
    }
    assert_error(
        &app.get("/api/v1/users/me", None).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    );
    assert_error(
        &app.get("/api/v1/orders", None).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
    );
    let (status, me) = app.get("/api/v1/users/me", Some(&genuine)).await;
    assert_eq!(
        (status, &me["id"]),
        (StatusCode::OK, &json!(customer.id)),
        "the control token works"
    );
    app.finish().await;
}

/// Registration, login, refresh rotation: a refresh token works once; its reuse fails and
/// revokes the whole family (the token it was rotated into stops working too).
async fn refresh_tokens_rotate_and_reuse_revokes(backend: Backend) {
    let app = spawn_app(backend).await;
    let signup = json!({"username": "alice", "email": "Alice@Example.com", "password": "correct horse", "phone_number": "+1 555 0100"});
    let (status, user) = app.post("/api/v1/users", None, signup.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(
        (&user["user_type"], &user["email"]),
        (&json!("customer"), &json!("alice@example.com"))
    );
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let taken = app.post("/api/v1/users", None, signup).await;
    assert_error(&taken, StatusCode::CONFLICT, "CONFLICT");
    assert!(
        taken.1["errors"]["username"].is_array() && taken.1["errors"]["email"].is_array(),
        "both named: {}",
        taken.1
    );

    let wrong = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "alice", "password": "wrong password"}),
        )
        .await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let nobody = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "nobody", "password": "wrong password"}),
        )
        .await;
    assert_error(&nobody, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let (status, pair) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "alice@example.com", "password": "correct horse"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    assert_eq!(pair["token_type"], "Bearer");
    assert!(pair["expires_in"].as_i64().is_some_and(|secs| secs > 0));
    let (status, me) = app
        .get("/api/v1/users/me", pair["access_token"].as_str())
        .await;
    assert_eq!((status, &me["username"]), (StatusCode::OK, &json!("alice")));

    let first = pair["refresh_token"].clone();
    let (status, rotated) = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": first}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(rotated["refresh_token"], first);
    assert_error(
        &app.post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": first}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    );
    let family_revoked = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": rotated["refresh_token"]}),
        )
        .await;
    assert_error(&family_revoked, StatusCode::UNAUTHORIZED, "INVALID_TOKEN");
    let access_as_refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": pair["access_token"]}),
        )
        .await;
    assert_error(
        &access_as_refresh,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    );
    app.finish().await;
}

/// Price, status, owner and stock sent by a client are ignored: the order takes the deal's
/// price, starts OPEN, belongs to the caller, and moves the stock by its quantity only.
async fn client_supplied_price_status_owner_and_stock_are_ignored(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(10, json!({"final_price": "99.00"})).await;
    let customers = app.customers(2).await;
    let body = json!({"deal_id": deal_id, "quantity": 1, "unit_price": "0.01", "total_price": "0.01", "status": "FULFILLED",
        "customer_id": customers[1].id, "available_units": 1000, "id": 1});

    let (status, order) = app
        .post("/api/v1/orders", Some(&customers[0].token), body)
        .await;

    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(
        (&order["unit_price"], &order["status"]),
        (&json!("99.00"), &json!("OPEN"))
    );
    assert_eq!(order["customer_id"], customers[0].id);
    let stored = app
        .store()
        .order_by_id(order["id"].as_i64().expect("id"))
        .await
        .expect("store")
        .expect("order");
    assert_eq!(
        (stored.unit_price, stored.customer_id),
        (9_900, customers[0].id)
    );
    assert_eq!(app.deal(deal_id).await["available_units"], 9);
    let compat = app
        .post(
            "/topkart/place/order/",
            Some(&customers[0].token),
            json!({"deal_id": deal_id, "customer_id": customers[1].id}),
        )
        .await;
    assert_error(&compat, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(app.deal(deal_id).await["available_units"], 9);
    app.finish().await;
}

crate::on_both_stores!(
    other_customers_orders_are_invisible,
    customers_cannot_use_admin_routes,
    forged_and_misused_tokens_are_rejected,
    refresh_tokens_rotate_and_reuse_revokes,
    client_supplied_price_status_owner_and_stock_are_ignored,
);
