//! The order lifecycle's smaller parts (issue 12): order listings narrowed by when the orders
//! were placed (`?from=&to=`), tracking events, and statistics that equal a recount of the
//! orders.

use actix_web::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};

fn millis(rfc3339: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().expect("an instant"))
        .expect("RFC 3339")
        .timestamp_millis()
}

/// `from` is inclusive, `to` exclusive; the customer sees only their own; a bad instant or
/// an empty range is a 400 naming the field.
async fn orders_are_listed_by_when_they_were_placed(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(10, json!({})).await;
    let buyer = app.customers(1).await.remove(0);
    let mut placed = Vec::new();
    for _ in 0..4 {
        let (status, order) = app.order(&buyer.token, deal_id).await;
        assert_eq!(status, StatusCode::CREATED);
        placed.push((
            order["id"].as_i64().expect("id"),
            order["created_at"].clone(),
        ));
    }
    let at = |i: usize| placed[i].1.as_str().expect("instant").to_owned();
    let expected = |from: Option<i64>, to: Option<i64>| -> Vec<i64> {
        let mut ids: Vec<i64> = placed
            .iter()
            .filter(|(_, created)| {
                let t = millis(created);
                from.is_none_or(|from| t >= from) && to.is_none_or(|to| t < to)
            })
            .map(|(id, _)| *id)
            .collect();
        ids.reverse();
        ids
    };
    for (from, to) in [(Some(1), None), (None, Some(2)), (Some(1), Some(3))] {
        let mut query = String::from("/api/v1/orders?page_size=100");
        if let Some(i) = from {
            query += &format!("&from={}", at(i));
        }
        if let Some(i) = to {
            query += &format!("&to={}", at(i));
        }
        let (status, page) = app.get(&query, Some(&buyer.token)).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        let ids: Vec<i64> = page["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|o| o["id"].as_i64().expect("id"))
            .collect();
        let want = expected(
            from.map(|i| millis(&placed[i].1)),
            to.map(|i| millis(&placed[i].1)),
        );
        assert_eq!(ids, want, "{query}");
        assert_eq!(page["count"], want.len(), "{query}");
    }
    // Another customer sees none of them in any range.
    let other = app.customers(1).await.remove(0);
    let (_, page) = app
        .get(
            &format!("/api/v1/orders?from={}", at(0)),
            Some(&other.token),
        )
        .await;
    assert_eq!(page["count"], 0);
    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-11-28T10:00:00Z&to=2026-11-28T10:00:00Z", "to"),
    ] {
        let (status, body) = app
            .get(&format!("/api/v1/orders?{query}"), Some(&buyer.token))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["errors"][field].is_array(), "{query}: {body}");
    }
    app.finish().await;
}

/// Admins record tracking events; the order's customer and admins read them oldest first;
/// anyone else gets 404, a customer may not record, bad fields are named.
async fn tracking_events_are_recorded_and_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(10, json!({})).await;
    let buyer = app.customers(1).await.remove(0);
    let (_, order) = app.order(&buyer.token, deal_id).await;
    let path = format!("/api/v1/orders/{}/tracking", order["id"]);
    for (status, location) in [
        ("SHIPPED", "Pune"),
        ("AT_DEPOT", "Mumbai"),
        ("DELIVERED", ""),
    ] {
        let (code, event) = app
            .post(
                &path,
                Some(&app.admin_token),
                json!({"status": status, "location": location, "description": "on its way"}),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{event}");
        assert_eq!(event["status"], status);
        assert!(event["created_at"].is_string());
    }
    let (code, page) = app.get(&path, Some(&buyer.token)).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    let statuses: Vec<&str> = page["results"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, ["SHIPPED", "AT_DEPOT", "DELIVERED"]);
    assert_eq!(
        page["results"][2]["location"],
        Value::Null,
        "empty text is absent"
    );
    let (code, _) = app.get(&path, Some(&app.admin_token)).await;
    assert_eq!(code, StatusCode::OK);
    let other = app.customers(1).await.remove(0);
    let (code, _) = app.get(&path, Some(&other.token)).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = app
        .post(&path, Some(&buyer.token), json!({"status": "LOST"}))
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, body) = app
        .post(
            &path,
            Some(&app.admin_token),
            json!({"status": " ", "location": "x".repeat(201)}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["errors"]["status"].is_array() && body["errors"]["location"].is_array(),
        "{body}"
    );
    let (code, _) = app
        .post(
            "/api/v1/orders/999999/tracking",
            Some(&app.admin_token),
            json!({"status": "SHIPPED"}),
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (_, page) = app.get(&path, Some(&buyer.token)).await;
    assert_eq!(page["count"], 3, "refused events were not recorded");
    app.finish().await;
}

fn cents(value: &Value) -> i64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("money as text: {value}"));
    let (units, fraction) = text.split_once('.').expect("two decimals");
    units.parse::<i64>().expect("units") * 100 + fraction.parse::<i64>().expect("cents")
}

/// The statistics equal a recount from the orders the API lists: per customer and for
/// admins, after orders of three deals, some cancelled, approved, fulfilled, made smaller, a
/// claim lapsed at its deadline and a waitlist entry served in its place (every path that
/// changes the orders the admin's kept figures count).
async fn statistics_equal_a_recount_of_the_orders(backend: Backend) {
    let app = spawn_app(backend).await;
    let kettle = app.create_deal(20, json!({"final_price": "30.00"})).await;
    let lamp = app.create_deal(10, json!({"final_price": "12.50"})).await;
    let buyers = app.customers(3).await;
    let mut ids = Vec::new();
    for (i, buyer) in buyers.iter().enumerate() {
        for (deal, quantity) in [(kettle, 1 + i as i64), (lamp, 2)] {
            let (status, order) = app
                .post(
                    "/api/v1/orders",
                    Some(&buyer.token),
                    json!({"deal_id": deal, "quantity": quantity}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED);
            ids.push(order["id"].as_i64().expect("id"));
        }
    }
    let (status, _) = app
        .post(
            &format!("/api/v1/orders/{}/cancel", ids[0]),
            Some(&buyers[0].token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for next in ["APPROVED", "FULFILLED"] {
        let path = format!("/api/v1/orders/{}/status", ids[3]);
        let body = Some(json!({ "status": next }));
        let (status, _) = app.call("PATCH", &path, Some(&app.admin_token), body).await;
        assert_eq!(status, StatusCode::OK, "{next}");
    }
    let (status, _) = app
        .call(
            "PATCH",
            &format!("/api/v1/orders/{}", ids[5]),
            Some(&buyers[2].token),
            Some(json!({"quantity": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A one-unit deal with a 1-second window: the claim lapses, the waiting customer is served.
    let claimed = app
        .create_deal(1, json!({"final_price": "7.00", "payment_window_secs": 1}))
        .await;
    let (status, _) = app.order(&buyers[0].token, claimed).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .post(
            &format!("/api/v1/deals/{claimed}/waitlist"),
            Some(&buyers[1].token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, entry) = app
            .get(
                &format!("/api/v1/deals/{claimed}/waitlist/me"),
                Some(&buyers[1].token),
            )
            .await;
        if entry["status"] == "PROMOTED" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never served: {entry}"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // The recount, from the listings.
    let recount = |orders: &[Value]| {
        let mut by_status = std::collections::BTreeMap::new();
        for status in ["OPEN", "APPROVED", "CANCELLED", "FULFILLED"] {
            by_status.insert(status.to_owned(), 0i64);
        }
        let mut spent = 0;
        for order in orders {
            *by_status
                .get_mut(order["status"].as_str().expect("status"))
                .expect("known") += 1;
            if order["status"] != "CANCELLED" {
                spent += cents(&order["total_price"]);
            }
        }
        (orders.len() as i64, by_status, spent)
    };
    for buyer in &buyers {
        let (_, page) = app
            .get("/api/v1/orders?page_size=100", Some(&buyer.token))
            .await;
        let (total, by_status, spent) = recount(page["results"].as_array().expect("orders"));
        let (status, stats) = app
            .get("/api/v1/orders/statistics", Some(&buyer.token))
            .await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        assert_eq!(stats["total_orders"], total);
        assert_eq!(stats["by_status"], json!(by_status));
        assert_eq!(cents(&stats["total_spent"]), spent);
        assert!(
            stats.get("revenue").is_none() && stats.get("deals").is_none(),
            "{stats}"
        );
    }
    let (_, page) = app
        .get("/api/v1/orders?page_size=100", Some(&app.admin_token))
        .await;
    let all = page["results"].as_array().expect("orders").clone();
    let (total, by_status, spent) = recount(&all);
    let (status, stats) = app
        .get("/api/v1/orders/statistics", Some(&app.admin_token))
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(
        (stats["total_orders"].clone(), stats["by_status"].clone()),
        (json!(total), json!(by_status))
    );
    assert_eq!(cents(&stats["revenue"]), spent);
    for deal in stats["deals"].as_array().expect("deals") {
        let shown = app.deal(deal["deal_id"].as_i64().expect("id")).await;
        let sold =
            shown["total_units"].as_i64().unwrap() - shown["available_units"].as_i64().unwrap();
        assert_eq!(deal["sold_units"], sold, "{deal}");
        let percent =
            (sold as f64 * 1000.0 / shown["total_units"].as_f64().unwrap()).round() / 10.0;
        assert_eq!(deal["percent_sold"].as_f64(), Some(percent));
    }
    let days = stats["sales_by_day"].as_array().expect("days");
    assert_eq!(days.len(), 30);
    let today = &days[29];
    assert_eq!(
        today["date"].as_str(),
        Some(&crate::helpers::rfc3339(actors::clock::now_ms())[..10])
    );
    assert_eq!(
        today["orders"],
        by_status["OPEN"] + by_status["APPROVED"] + by_status["FULFILLED"]
    );
    assert_eq!(cents(&today["revenue"]), spent);
    let recent: Vec<i64> = stats["recent_orders"]
        .as_array()
        .expect("recent")
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    let newest: Vec<i64> = all
        .iter()
        .take(10)
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    assert_eq!(recent, newest);
    let (status, _) = app.get("/api/v1/orders/statistics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.finish().await;
}

crate::on_both_stores!(
    orders_are_listed_by_when_they_were_placed,
    tracking_events_are_recorded_and_read,
    statistics_equal_a_recount_of_the_orders
);
