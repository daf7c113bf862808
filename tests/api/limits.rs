//! Rate limits answer 429 RATE_LIMITED with Retry-After, change nothing, touch only the key they
//! limit, and `TOPKART_RATE_LIMITS=off` turns them all off.

use actix_web::http::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestStore, assert_error, spawn_app, spawn_app_with};

/// Ten failed logins lock the account for the window — the right password included — while
/// another account logs in as usual.
async fn failed_logins_lock_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    for name in ["victim", "bystander"] {
        let signup = json!({"username": name, "email": format!("{name}@example.com"), "password": "right-password"});
        assert_eq!(
            app.post("/api/v1/users", None, signup).await.0,
            StatusCode::CREATED
        );
    }
    for _ in 0..10 {
        let wrong = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({"username": "victim", "password": "wrong-password"}),
            )
            .await;
        assert_error(&wrong, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let mut response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .send_json(&json!({"username": "victim", "password": "right-password"}))
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["code"], "RATE_LIMITED");
    let other = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "bystander", "password": "right-password"}),
        )
        .await;
    assert_eq!(other.0, StatusCode::OK, "{}", other.1);
    app.finish().await;
}

/// The per-address limits, shrunk: registrations, successful logins and failed logins from one
/// address each stop at their limit with 429 `RATE_LIMITED`, and the refused request changes
/// nothing (the refused registration creates no user).
async fn per_address_limits_answer_429(backend: Backend) {
    let store = TestStore::create(backend).await;
    let app = spawn_app_with(store, |settings| {
        settings.rate_limit_registrations_per_address = "3/1m".parse().expect("setting");
        settings.rate_limit_logins_per_address = "2/1m".parse().expect("setting");
        settings.rate_limit_failed_logins_per_address = "2/15m".parse().expect("setting");
    })
    .await;
    let signup = |name: &str| json!({"username": name, "email": format!("{name}@example.com"), "password": "right-password"});
    for name in ["one", "two", "three"] {
        assert_eq!(
            app.post("/api/v1/users", None, signup(name)).await.0,
            StatusCode::CREATED
        );
    }
    let refused = app.post("/api/v1/users", None, signup("four")).await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert!(
        app.store()
            .user_by_login("four")
            .await
            .expect("store")
            .is_none(),
        "the refused registration created no user"
    );

    let login = |name: &str, password: &str| json!({"username": name, "password": password});
    for name in ["one", "two"] {
        let ok = app
            .post("/api/v1/auth/login", None, login(name, "right-password"))
            .await;
        assert_eq!(ok.0, StatusCode::OK, "{}", ok.1);
    }
    let refused = app
        .post("/api/v1/auth/login", None, login("three", "right-password"))
        .await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");

    // Failed logins from the address, spread over accounts so no account limit is reached.
    for name in ["one", "two"] {
        let wrong = app
            .post("/api/v1/auth/login", None, login(name, "wrong-password"))
            .await;
        assert_error(&wrong, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let refused = app
        .post("/api/v1/auth/login", None, login("three", "wrong-password"))
        .await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    app.finish().await;
}

/// A customer over the order limit gets 429 and reserves nothing; other customers still buy.
async fn order_attempts_are_limited_per_customer(backend: Backend) {
    let store = TestStore::create(backend).await;
    let app = spawn_app_with(store, |settings| {
        settings.rate_limit_orders_per_customer = "3/1m".parse().expect("setting")
    })
    .await;
    let deal_id = app.create_deal(10, json!({})).await;
    let customers = app.customers(2).await;
    for _ in 0..3 {
        assert_eq!(
            app.order(&customers[0].token, deal_id).await.0,
            StatusCode::CREATED
        );
    }
    let limited = app.order(&customers[0].token, deal_id).await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert_eq!(
        app.deal(deal_id).await["available_units"],
        7,
        "the refused attempt reserved nothing"
    );
    assert_eq!(
        app.order(&customers[1].token, deal_id).await.0,
        StatusCode::CREATED
    );
    assert_eq!(app.stock(deal_id).await.orders_held, 4);
    app.finish().await;
}

/// With TOPKART_RATE_LIMITS=off even a tiny limit never answers 429.
async fn rate_limits_off_means_off(backend: Backend) {
    let store = TestStore::create(backend).await;
    let app = spawn_app_with(store, |settings| {
        settings.rate_limits = "off".into();
        settings.rate_limit_orders_per_customer = "1/1m".parse().expect("setting");
        settings.rate_limit_registrations_per_address = "1/1m".parse().expect("setting");
    })
    .await;
    let deal_id = app.create_deal(10, json!({})).await;
    let customer = &app.customers(1).await[0];
    for _ in 0..3 {
        assert_eq!(
            app.order(&customer.token, deal_id).await.0,
            StatusCode::CREATED
        );
    }
    for name in ["one", "two", "three"] {
        let signup = json!({"username": name, "email": format!("{name}@example.com"), "password": "password-123"});
        assert_eq!(
            app.post("/api/v1/users", None, signup).await.0,
            StatusCode::CREATED
        );
    }
    app.finish().await;
}

/// A flood of logins (argon2id at the production cost, on the blocking pool) does not starve
/// orders: every order of a burst sent after the flood began is answered before the flood ends.
async fn a_login_flood_does_not_starve_orders(backend: Backend) {
    let store = TestStore::create(backend).await;
    let app = spawn_app_with(store, |settings| {
        settings.passwords.argon2_memory_kib = 19_456;
        settings.passwords.argon2_iterations = 2;
        settings.rate_limits = "off".into();
    })
    .await;
    let signup = json!({"username": "flooded", "email": "flooded@example.com", "password": "flood-password"});
    assert_eq!(
        app.post("/api/v1/users", None, signup).await.0,
        StatusCode::CREATED
    );
    let deal_id = app.create_deal(100, json!({})).await;
    let customers = app.customers(20).await;
    let finished = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (client, url, finished) = (
            app.client.clone(),
            app.url("/api/v1/auth/login"),
            finished.clone(),
        );
        tasks.push(crate::helpers::spawn(async move {
            let response = client
                .post(url)
                .send_json(&json!({"username": "flooded", "password": "flood-password"}))
                .await
                .expect("answered");
            assert_eq!(response.status(), StatusCode::OK, "login {i}");
            finished.borrow_mut().push("login");
        }));
    }
    for customer in &customers {
        let (client, url, token, finished) = (
            app.client.clone(),
            app.url("/api/v1/orders"),
            customer.token.clone(),
            finished.clone(),
        );
        tasks.push(crate::helpers::spawn(async move {
            let response = client
                .post(url)
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send_json(&json!({"deal_id": deal_id}))
                .await
                .expect("answered");
            assert_eq!(response.status(), StatusCode::CREATED);
            finished.borrow_mut().push("order");
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let finished = finished.borrow();
    let last_order = finished
        .iter()
        .rposition(|what| *what == "order")
        .expect("orders finished");
    let last_login = finished
        .iter()
        .rposition(|what| *what == "login")
        .expect("logins finished");
    assert!(
        last_order < last_login,
        "the orders waited for the whole login flood: {finished:?}"
    );
    assert_eq!(app.stock(deal_id).await.orders_held, 20);
    app.finish().await;
}

crate::on_both_stores!(
    failed_logins_lock_the_account,
    per_address_limits_answer_429,
    order_attempts_are_limited_per_customer,
    rate_limits_off_means_off,
    a_login_flood_does_not_starve_orders
);
