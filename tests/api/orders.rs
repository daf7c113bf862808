//! The order lifecycle over HTTP: placement and its refusals (expired, scheduled, closed,
//! limit), durable-before-acknowledged under an injected store fault, idempotency keys,
//! cancellation and the admin's status transitions, listing.
//!
//! Longer than 500 lines: one story of an order, from placement to its last status, kept in
//! one file so the transitions it checks can be read in order.

use std::time::Duration;

use actix_web::http::StatusCode;
use actors::clock::now_ms;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{Backend, TestApp, assert_error, rfc3339, spawn, spawn_app};

/// One order travels the whole path: 201 with the deal's price, the row in the store, the
/// stock moved in memory and in the store.
async fn an_order_is_stored_before_201(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(5, json!({"final_price": "12.34"})).await;
    let customer = &app.customers(1).await[0];

    let (status, order) = app
        .post(
            "/api/v1/orders",
            Some(&customer.token),
            json!({"deal_id": deal_id, "quantity": 2}),
        )
        .await;

    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["unit_price"], "12.34");
    assert_eq!(order["total_price"], "24.68");
    assert_eq!(order["status"], "OPEN");
    assert_eq!(order["customer_id"], customer.id);
    let stored = app
        .store()
        .order_by_id(order["id"].as_i64().expect("id"))
        .await
        .expect("store")
        .expect("stored");
    assert_eq!(
        (stored.quantity, stored.unit_price, stored.customer_id),
        (2, 1234, customer.id)
    );
    assert_eq!(app.deal(deal_id).await["available_units"], 3);
    let stock = app.stock(deal_id).await;
    assert_eq!((stock.available_units, stock.units_held), (3, 2));
    let (status, fetched) = app
        .get(
            &format!("/api/v1/orders/{}", order["id"]),
            Some(&customer.token),
        )
        .await;
    assert_eq!((status, &fetched["id"]), (StatusCode::OK, &order["id"]));
    app.finish().await;
}

/// A deal that expires a second after creation: an order before sells, one after gets 409
/// DEAL_EXPIRED at once (no sweeper window), and the deal leaves the active list.
async fn orders_after_expiry_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let expires_at = now_ms() + 1_000;
    let deal_id = app
        .create_deal(10, json!({"expires_at": rfc3339(expires_at)}))
        .await;
    let customer = &app.customers(1).await[0];

    let before = app.order(&customer.token, deal_id).await;
    assert_eq!(before.0, StatusCode::CREATED, "{}", before.1);

    // Waiting for the clock itself, to the instant the deal expires.
    let remaining = (expires_at - now_ms()).max(0) as u64;
    actix_web::rt::time::sleep(Duration::from_millis(remaining)).await;
    let after = app.order(&customer.token, deal_id).await;

    assert_error(&after, StatusCode::CONFLICT, "DEAL_EXPIRED");
    assert_eq!(app.deal(deal_id).await["status"], "EXPIRED");
    let (_, list) = app.get("/api/v1/deals", None).await;
    assert_eq!(list["count"], 0, "an expired deal is not listed: {list}");
    assert_eq!(app.stock(deal_id).await.orders_held, 1);
    app.finish().await;
}

/// Before its start a deal is SCHEDULED and refuses with DEAL_NOT_STARTED.
async fn scheduled_deals_do_not_sell_yet(backend: Backend) {
    let app = spawn_app(backend).await;
    let start = now_ms() + 3_600_000;
    let deal_id = app
        .create_deal(
            10,
            json!({"starts_at": rfc3339(start), "expires_at": rfc3339(start + 3_600_000)}),
        )
        .await;
    let customer = &app.customers(1).await[0];

    let reply = app.order(&customer.token, deal_id).await;

    assert_error(&reply, StatusCode::CONFLICT, "DEAL_NOT_STARTED");
    assert_eq!(app.deal(deal_id).await["status"], "SCHEDULED");
    assert_eq!(app.stock(deal_id).await.orders_held, 0);
    app.finish().await;
}

/// Closing stops sales at once (409 DEAL_CLOSED); reopening inside the window sells again;
/// the closed flag is in the store.
async fn closing_and_reopening(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(10, json!({})).await;
    let customer = &app.customers(1).await[0];
    let admin = Some(app.admin_token.as_str());

    let (status, closed) = app
        .post(&format!("/api/v1/deals/{deal_id}/close"), admin, json!({}))
        .await;
    assert_eq!(
        (status, &closed["status"]),
        (StatusCode::OK, &json!("CLOSED"))
    );
    assert_error(
        &app.order(&customer.token, deal_id).await,
        StatusCode::CONFLICT,
        "DEAL_CLOSED",
    );
    let stored = app
        .store()
        .load_deal(deal_id)
        .await
        .expect("store")
        .expect("deal");
    assert!(stored.record.closed);

    let (status, opened) = app
        .post(&format!("/api/v1/deals/{deal_id}/open"), admin, json!({}))
        .await;
    assert_eq!(
        (status, &opened["status"]),
        (StatusCode::OK, &json!("ACTIVE"))
    );
    let reply = app.order(&customer.token, deal_id).await;
    assert_eq!(reply.0, StatusCode::CREATED);
    app.finish().await;
}

/// The per-customer limit counts what the customer holds; a cancellation frees it.
async fn the_per_customer_limit_holds(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(10, json!({"per_customer_limit": 2})).await;
    let customer = &app.customers(1).await[0];
    let token = Some(customer.token.as_str());

    let (status, first) = app
        .post(
            "/api/v1/orders",
            token,
            json!({"deal_id": deal_id, "quantity": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_error(
        &app.post("/api/v1/orders", token, json!({"deal_id": deal_id}))
            .await,
        StatusCode::CONFLICT,
        "LIMIT_EXCEEDED",
    );
    let (status, _) = app
        .post(
            &format!("/api/v1/orders/{}/cancel", first["id"]),
            token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.post("/api/v1/orders", token, json!({"deal_id": deal_id}))
            .await
            .0,
        StatusCode::CREATED
    );
    app.finish().await;
}

/// Orders of an unlimited deal are claimed without the deal's actor; a limit set afterwards
/// still counts them, and lifting it lets the customer buy again.
async fn a_limit_set_later_counts_the_orders_before_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = Some(app.admin_token.as_str());
    let deal_id = app.create_deal(10, json!({})).await;
    let customers = app.customers(2).await;
    let (first, second) = (
        Some(customers[0].token.as_str()),
        Some(customers[1].token.as_str()),
    );
    let order = |token, quantity| {
        app.post(
            "/api/v1/orders",
            token,
            json!({"deal_id": deal_id, "quantity": quantity}),
        )
    };
    assert_eq!(order(first, 2).await.0, StatusCode::CREATED);

    let path = format!("/api/v1/deals/{deal_id}");
    let limit = |value: Value| {
        app.call(
            "PATCH",
            &path,
            admin,
            Some(json!({"per_customer_limit": value})),
        )
    };
    assert_eq!(limit(json!(2)).await.0, StatusCode::OK);
    let refused = order(first, 1).await;
    assert_error(&refused, StatusCode::CONFLICT, "LIMIT_EXCEEDED");
    assert_eq!(order(second, 2).await.0, StatusCode::CREATED);
    assert_error(
        &order(second, 1).await,
        StatusCode::CONFLICT,
        "LIMIT_EXCEEDED",
    );

    assert_eq!(limit(Value::Null).await.0, StatusCode::OK);
    assert_eq!(order(first, 1).await.0, StatusCode::CREATED);
    let (_, deal) = app.get(&path, admin).await;
    assert_eq!(deal["available_units"], json!(5));
    app.finish().await;
}

/// Makes every insert into `orders` fail in the app's store (a store made unwritable for orders).
async fn set_insert_fault(app: &TestApp, backend: Backend, on: bool) {
    let url = app.store_url();
    let statements: &[&'static str] = match (backend, on) {
        (Backend::Sqlite, true) => &[
            "CREATE TRIGGER fault BEFORE INSERT ON orders BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
        ],
        (Backend::Sqlite, false) => &["DROP TRIGGER fault"],
        (Backend::Postgres, true) => &[
            "CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$",
            "CREATE TRIGGER fault BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION fault()",
        ],
        (Backend::Postgres, false) => &["DROP TRIGGER fault ON orders", "DROP FUNCTION fault()"],
    };
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("connect");
            for sql in statements {
                sqlx::query(*sql)
                    .execute(&mut conn)
                    .await
                    .expect("fault statement");
            }
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
            for sql in statements {
                sqlx::query(*sql)
                    .execute(&mut conn)
                    .await
                    .expect("fault statement");
            }
        }
    }
}

/// When the writer's commit fails, every waiting request gets a 5xx, no 201 is sent, no row
/// exists, and the units are back in the deal; when the store recovers, the deal sells again.
async fn a_failed_commit_answers_5xx_and_returns_units(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(50, json!({})).await;
    let customers = app.customers(20).await;
    set_insert_fault(&app, backend, true).await;

    let mut handles = Vec::new();
    for customer in &customers {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/orders"),
            customer.token.clone(),
        );
        handles.push(spawn(async move {
            let mut response = client
                .post(url)
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send_json(&json!({"deal_id": deal_id, "quantity": 2}))
                .await
                .expect("sent");
            let body: serde_json::Value = response.json().await.expect("JSON");
            (response.status(), body)
        }));
    }
    for handle in handles {
        let reply = handle.await.expect("task");
        assert_error(&reply, StatusCode::SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE");
    }
    assert_eq!(
        app.deal(deal_id).await["available_units"],
        50,
        "units returned to the deal"
    );
    let stock = app.stock(deal_id).await;
    assert_eq!((stock.orders_held, stock.available_units), (0, 50));

    set_insert_fault(&app, backend, false).await;
    let reply = app.order(&customers[0].token, deal_id).await;
    assert_eq!(reply.0, StatusCode::CREATED, "{}", reply.1);
    assert!(app.stock(deal_id).await.conserved());
    app.finish().await;
}

/// The same key returns the first answer and reserves once; another body under the same key
/// is 422; concurrent duplicates create one order.
async fn idempotency_keys_reserve_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(10, json!({})).await;
    let customers = app.customers(2).await;
    let token = Some(customers[0].token.as_str());
    let keyed = |key: &'static str| [("Idempotency-Key", key)];

    let first = app
        .call_with(
            "POST",
            "/api/v1/orders",
            token,
            Some(json!({"deal_id": deal_id})),
            &keyed("k-1"),
        )
        .await;
    let again = app
        .call_with(
            "POST",
            "/api/v1/orders",
            token,
            Some(json!({"deal_id": deal_id})),
            &keyed("k-1"),
        )
        .await;
    assert_eq!(first.0, StatusCode::CREATED);
    assert_eq!(
        (again.0, &again.1["id"]),
        (StatusCode::CREATED, &first.1["id"]),
        "the replay is the first answer"
    );
    assert_eq!(
        app.deal(deal_id).await["available_units"],
        9,
        "reserved once"
    );

    let other = app
        .call_with(
            "POST",
            "/api/v1/orders",
            token,
            Some(json!({"deal_id": deal_id, "quantity": 2})),
            &keyed("k-1"),
        )
        .await;
    assert_error(
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_MISMATCH",
    );

    let someone_else = app
        .call_with(
            "POST",
            "/api/v1/orders",
            Some(&customers[1].token),
            Some(json!({"deal_id": deal_id})),
            &keyed("k-1"),
        )
        .await;
    assert_eq!(someone_else.0, StatusCode::CREATED);
    assert_ne!(someone_else.1["id"], first.1["id"], "keys are per customer");

    let mut handles = Vec::new();
    for _ in 0..20 {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/orders"),
            customers[0].token.clone(),
        );
        handles.push(spawn(async move {
            let mut response = client
                .post(url)
                .insert_header(("Authorization", format!("Bearer {token}")))
                .insert_header(("Idempotency-Key", "k-burst"))
                .send_json(&json!({"deal_id": deal_id}))
                .await
                .expect("sent");
            let body: serde_json::Value = response.json().await.expect("JSON");
            (response.status(), body)
        }));
    }
    let mut ids = Vec::new();
    for handle in handles {
        let (status, body) = handle.await.expect("task");
        match status {
            StatusCode::CREATED => ids.push(body["id"].clone()),
            _ => assert_error(
                &(status, body),
                StatusCode::CONFLICT,
                "IDEMPOTENCY_IN_PROGRESS",
            ),
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one order for one key: {ids:?}");
    assert_eq!(app.deal(deal_id).await["available_units"], 7);
    assert_eq!(app.stock(deal_id).await.orders_held, 3);
    app.finish().await;
}

async fn set_status(app: &TestApp, id: serde_json::Value, status: String) -> crate::helpers::Reply {
    let path = format!("/api/v1/orders/{id}/status");
    app.call(
        "PATCH",
        &path,
        Some(&app.admin_token),
        Some(json!({"status": status})),
    )
    .await
}

/// Cancelling twice restores once; the admin transitions are exactly the allowed four.
async fn cancellation_and_transitions(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(10, json!({})).await;
    let customer = &app.customers(1).await[0];
    let token = Some(customer.token.as_str());
    let place = || {
        app.post(
            "/api/v1/orders",
            token,
            json!({"deal_id": deal_id, "quantity": 3}),
        )
    };
    let status_of =
        |id: &serde_json::Value, status: &str| set_status(&app, id.clone(), status.to_owned());

    let (_, order) = place().await;
    for _ in 0..2 {
        let (status, cancelled) = app
            .post(
                &format!("/api/v1/orders/{}/cancel", order["id"]),
                token,
                json!({}),
            )
            .await;
        assert_eq!(
            (status, &cancelled["status"]),
            (StatusCode::OK, &json!("CANCELLED"))
        );
    }
    assert_eq!(
        app.deal(deal_id).await["available_units"],
        10,
        "restored once"
    );
    assert!(app.stock(deal_id).await.conserved());
    assert_error(
        &status_of(&order["id"], "OPEN").await,
        StatusCode::CONFLICT,
        "INVALID_TRANSITION",
    );

    let (_, order) = place().await;
    assert_error(
        &status_of(&order["id"], "FULFILLED").await,
        StatusCode::CONFLICT,
        "INVALID_TRANSITION",
    );
    assert_eq!(
        status_of(&order["id"], "APPROVED").await.1["status"],
        "APPROVED"
    );
    assert_eq!(
        status_of(&order["id"], "FULFILLED").await.1["status"],
        "FULFILLED"
    );
    let reply = app
        .post(
            &format!("/api/v1/orders/{}/cancel", order["id"]),
            token,
            json!({}),
        )
        .await;
    assert_error(&reply, StatusCode::CONFLICT, "INVALID_TRANSITION");
    assert_error(
        &status_of(&order["id"], "SHIPPED").await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    );
    assert_eq!(
        app.deal(deal_id).await["available_units"],
        7,
        "a fulfilled order keeps its units"
    );

    let (_, approved) = place().await;
    status_of(&approved["id"], "APPROVED").await;
    assert_eq!(
        status_of(&approved["id"], "CANCELLED").await.1["status"],
        "CANCELLED"
    );
    assert_eq!(
        app.deal(deal_id).await["available_units"],
        7,
        "an approved order's cancellation restocks"
    );
    let stock = app.stock(deal_id).await;
    assert!(stock.conserved(), "{stock:?}");
    app.finish().await;
}

/// Customers list their own orders, admins all; filters and pagination links work.
async fn listing_orders(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_a = app.create_deal(50, json!({})).await;
    let deal_b = app.create_deal(50, json!({})).await;
    let customers = app.customers(2).await;
    for i in 0..5 {
        let deal_id = if i % 2 == 0 { deal_a } else { deal_b };
        app.order(&customers[0].token, deal_id).await;
    }
    app.order(&customers[1].token, deal_a).await;

    let (_, mine) = app
        .get("/api/v1/orders?page_size=2", Some(&customers[0].token))
        .await;
    assert_eq!(mine["count"], 5);
    assert_eq!(mine["results"].as_array().map(Vec::len), Some(2));
    assert!(
        mine["next"]
            .as_str()
            .is_some_and(|next| next.contains("page=2")),
        "{mine}"
    );
    assert_eq!(mine["previous"], serde_json::Value::Null);
    let ids: Vec<i64> = mine["results"]
        .as_array()
        .expect("list")
        .iter()
        .map(|o| o["id"].as_i64().expect("id"))
        .collect();
    assert!(ids[0] > ids[1], "newest first");
    let (_, last) = app
        .get(
            "/api/v1/orders?page_size=2&page=3",
            Some(&customers[0].token),
        )
        .await;
    assert_eq!(
        (last["results"].as_array().map(Vec::len), &last["next"]),
        (Some(1), &serde_json::Value::Null)
    );

    let (_, all) = app.get("/api/v1/orders", Some(&app.admin_token)).await;
    assert_eq!(all["count"], 6);
    let (_, filtered) = app
        .get(
            &format!("/api/v1/orders?deal_id={deal_b}&status=OPEN"),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(filtered["count"], 2);
    assert_error(
        &app.get("/api/v1/orders?page_size=101", Some(&app.admin_token))
            .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    );
    assert_error(
        &app.get("/api/v1/orders?status=LOST", Some(&app.admin_token))
            .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    );
    app.finish().await;
}

crate::on_both_stores!(
    an_order_is_stored_before_201,
    orders_after_expiry_are_refused,
    scheduled_deals_do_not_sell_yet,
    closing_and_reopening,
    the_per_customer_limit_holds,
    a_limit_set_later_counts_the_orders_before_it,
    a_failed_commit_answers_5xx_and_returns_units,
    idempotency_keys_reserve_once,
    cancellation_and_transitions,
    listing_orders,
);
