//! Deals over HTTP: updates (terms and units, in memory and in the store), the list served from
//! memory, start-up recovery from the store, and the daily re-arm keyed by date.

use std::time::Duration;

use actix_web::http::StatusCode;
use actors::clock::now_ms;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{Backend, TestStore, assert_error, rfc3339, spawn_app, spawn_app_with};

/// Terms apply to the next order; units move total and available together in memory and in
/// the store; they may not drop below what is sold; a null limit removes the limit.
async fn updating_a_deal(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = Some(app.admin_token.as_str());
    let deal_id = app.create_deal(10, json!({"per_customer_limit": 1})).await;
    let customer = &app.customers(1).await[0];
    let path = format!("/api/v1/deals/{deal_id}");
    app.post(
        "/api/v1/orders",
        Some(&customer.token),
        json!({"deal_id": deal_id, "quantity": 1}),
    )
    .await;

    let (status, deal) = app.call("PATCH", &path, admin, Some(json!({"final_price": "50.00", "per_customer_limit": null, "product_name": "Headphones v2"}))).await;
    assert_eq!(status, StatusCode::OK, "{deal}");
    assert_eq!(
        (
            &deal["final_price"],
            &deal["per_customer_limit"],
            &deal["product_name"]
        ),
        (&json!("50.00"), &Value::Null, &json!("Headphones v2"))
    );
    let (status, order) = app
        .post(
            "/api/v1/orders",
            Some(&customer.token),
            json!({"deal_id": deal_id, "quantity": 3}),
        )
        .await;
    assert_eq!(
        (status, &order["unit_price"]),
        (StatusCode::CREATED, &json!("50.00")),
        "new price, no limit: {order}"
    );

    let (_, grown) = app
        .call("PUT", &path, admin, Some(json!({"total_units": 15})))
        .await;
    assert_eq!(
        (&grown["total_units"], &grown["available_units"]),
        (&json!(15), &json!(11))
    );
    let (_, by_available) = app
        .call("PATCH", &path, admin, Some(json!({"available_units": 2})))
        .await;
    assert_eq!(
        (
            &by_available["total_units"],
            &by_available["available_units"]
        ),
        (&json!(6), &json!(2))
    );
    let (_, both) = app
        .call(
            "PATCH",
            &path,
            admin,
            Some(json!({"total_units": 8, "available_units": 4})),
        )
        .await;
    assert_eq!(
        (&both["total_units"], &both["available_units"]),
        (&json!(8), &json!(4))
    );
    let below = app
        .call("PATCH", &path, admin, Some(json!({"total_units": 3})))
        .await;
    assert_error(&below, StatusCode::CONFLICT, "CONFLICT");

    let stored = app
        .store()
        .load_deal(deal_id)
        .await
        .expect("store")
        .expect("deal");
    assert_eq!(
        (
            stored.record.total_units,
            stored.record.available_units,
            stored.record.final_price
        ),
        (8, 4, 5_000)
    );
    assert_eq!(stored.record.per_customer_limit, None);
    assert!(app.stock(deal_id).await.conserved());
    app.finish().await;
}

/// The public list shows ACTIVE and SOLD_OUT deals only; admins filter by status or see all.
async fn listing_deals(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = Some(app.admin_token.as_str());
    let active = app.create_deal(5, json!({})).await;
    let sold_out = app.create_deal(1, json!({})).await;
    let start = now_ms() + 3_600_000;
    let scheduled = app
        .create_deal(
            5,
            json!({"starts_at": rfc3339(start), "expires_at": rfc3339(start + 60_000)}),
        )
        .await;
    let closed = app.create_deal(5, json!({})).await;
    app.post(&format!("/api/v1/deals/{closed}/close"), admin, json!({}))
        .await;
    let customer = &app.customers(1).await[0];
    app.order(&customer.token, sold_out).await;

    let ids = |page: &Value| -> Vec<i64> {
        page["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|d| d["id"].as_i64().expect("id"))
            .collect()
    };
    let (_, public) = app.get("/api/v1/deals", None).await;
    assert_eq!(ids(&public), vec![active, sold_out]);
    assert_eq!(public["results"][1]["status"], "SOLD_OUT");
    // Only admins list by any status; a customer asking is told so, not shown less.
    let (status, refused) = app
        .get("/api/v1/deals?status=all", Some(&customer.token))
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("FORBIDDEN")),
        "{refused}"
    );
    let (_, all) = app.get("/api/v1/deals?status=all", admin).await;
    assert_eq!(ids(&all), vec![active, sold_out, scheduled, closed]);
    let (_, only_scheduled) = app.get("/api/v1/deals?status=SCHEDULED", admin).await;
    assert_eq!(ids(&only_scheduled), vec![scheduled]);
    let (_, page) = app
        .get("/api/v1/deals?status=all&page_size=3&page=2", admin)
        .await;
    assert_eq!((ids(&page), &page["count"]), (vec![closed], &json!(4)));
    assert!(
        page["previous"]
            .as_str()
            .is_some_and(|link| link.contains("page=1"))
    );
    assert_error(
        &app.get("/api/v1/deals?status=LOST", admin).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    );
    app.finish().await;
}

/// After a restart every deal's actor starts from the store: the stock, the per-customer
/// counts and conservation carry over, and the deal sells exactly its remaining units.
async fn restart_recovers_from_the_store(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(10, json!({"per_customer_limit": 3})).await;
    let customers = app.customers(4).await;
    for customer in &customers[..3] {
        app.post(
            "/api/v1/orders",
            Some(&customer.token),
            json!({"deal_id": deal_id, "quantity": 2}),
        )
        .await;
    }
    let (_, extra) = app.order(&customers[0].token, deal_id).await;
    app.post(
        &format!("/api/v1/orders/{}/cancel", extra["id"]),
        Some(&customers[0].token),
        json!({}),
    )
    .await;
    let tokens: Vec<String> = customers.iter().map(|c| c.token.clone()).collect();
    let store = app.stop_keeping_store().await;

    let app = spawn_app_with(store, |_| {}).await;
    assert_eq!(app.deal(deal_id).await["available_units"], 4);
    assert!(app.stock(deal_id).await.conserved());
    let over_limit = app
        .post(
            "/api/v1/orders",
            Some(&tokens[0]),
            json!({"deal_id": deal_id, "quantity": 2}),
        )
        .await;
    assert_error(&over_limit, StatusCode::CONFLICT, "LIMIT_EXCEEDED");
    let mut sold = 0;
    for token in &tokens[..3] {
        if app.order(&token, deal_id).await.0 == StatusCode::CREATED {
            sold += 1;
        }
    }
    assert_eq!(sold, 3);
    let (status, last) = app.order(&tokens[3], deal_id).await;
    assert_eq!(status, StatusCode::CREATED, "{last}");
    assert_error(
        &app.order(&tokens[3], deal_id).await,
        StatusCode::CONFLICT,
        "SOLD_OUT",
    );
    let stock = app.stock(deal_id).await;
    assert_eq!((stock.available_units, stock.units_held), (0, 10));
    app.finish().await;
}

/// Moves a daily deal's last re-arm back one day in the store, as if the engine had been down
/// over midnight.
async fn pretend_last_rearm_was_yesterday(store: &TestStore, deal_id: i64) {
    let sql = "UPDATE deals SET rearmed_day = rearmed_day - 1 WHERE id = $1";
    match store.backend() {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&store.url)
                .await
                .expect("connect");
            sqlx::query(sql)
                .bind(deal_id)
                .execute(&mut conn)
                .await
                .expect("update");
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&store.url)
                .await
                .expect("connect");
            sqlx::query(sql)
                .bind(deal_id)
                .execute(&mut conn)
                .await
                .expect("update");
        }
    }
}

/// A daily deal whose re-arm is due re-arms at start (new round, full stock, window from
/// 00:00 UTC); a second restart the same day does not re-arm again.
async fn daily_deals_rearm_once_per_date(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app
        .create_deal(
            10,
            json!({"recurrence": "daily", "expires_at": rfc3339(now_ms() + 2 * 3_600_000)}),
        )
        .await;
    let created = app
        .store()
        .load_deal(deal_id)
        .await
        .expect("store")
        .expect("deal")
        .record;
    let window_ms = created.expires_at - created.starts_at;
    let customer = &app.customers(1).await[0];
    let (_, order) = app
        .post(
            "/api/v1/orders",
            Some(&customer.token),
            json!({"deal_id": deal_id, "quantity": 4}),
        )
        .await;
    assert_eq!(
        (&order["round"], &app.deal(deal_id).await["recurrence"]),
        (&json!(1), &json!("daily"))
    );
    let store = app.stop_keeping_store().await;
    pretend_last_rearm_was_yesterday(&store, deal_id).await;

    let app = spawn_app_with(store, |_| {}).await;
    let mut deal = app.deal(deal_id).await;
    for _ in 0..100 {
        if deal["round"] == 2 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        deal = app.deal(deal_id).await;
    }
    assert_eq!(
        (&deal["round"], &deal["available_units"]),
        (&json!(2), &json!(10)),
        "{deal}"
    );
    let midnight = (now_ms() / 86_400_000) * 86_400_000;
    assert_eq!(deal["starts_at"], rfc3339(midnight));
    assert_eq!(
        deal["expires_at"],
        rfc3339(midnight + window_ms),
        "the window keeps its length"
    );
    let stock = app.stock(deal_id).await;
    assert_eq!(
        (stock.units_held, stock.available_units),
        (0, 10),
        "the new round's stock is whole"
    );
    let store = app.stop_keeping_store().await;

    let app = spawn_app_with(store, |_| {}).await;
    assert_eq!(
        app.deal(deal_id).await["round"],
        2,
        "no second re-arm on the same date"
    );
    let kept = app
        .store()
        .order_by_id(order["id"].as_i64().expect("id"))
        .await
        .expect("store")
        .expect("order");
    assert_eq!(
        (kept.round, kept.quantity),
        (1, 4),
        "the first round's order is kept"
    );
    app.finish().await;
}

crate::on_both_stores!(
    updating_a_deal,
    listing_deals,
    restart_recovers_from_the_store,
    daily_deals_rearm_once_per_date
);
