//! The waitlist (issue 12), on both stores: customers join a sold-out deal's waitlist, units
//! that come free (a cancellation, units added, a lapsed claim) go to the waitlist first, first
//! come first served (first fit), each served entry an order of its own; entries are bounded,
//! left, and refused with clear codes; conservation holds after every step. The 1,000-buyer
//! burst with a 2-second payment window and 300 waitlisted customers is acceptance point 1.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actors::clock::now_ms;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Customer, TestApp, TestStore, assert_error, spawn_app, spawn_app_with,
};

async fn join(app: &TestApp, token: &str, deal_id: i64, quantity: i64) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/deals/{deal_id}/waitlist"),
        Some(token),
        json!({ "quantity": quantity }),
    )
    .await
}

async fn entry(app: &TestApp, token: &str, deal_id: i64) -> (StatusCode, Value) {
    app.get(&format!("/api/v1/deals/{deal_id}/waitlist/me"), Some(token))
        .await
}

async fn leave(app: &TestApp, token: &str, deal_id: i64) -> StatusCode {
    let path = format!("/api/v1/deals/{deal_id}/waitlist/me");
    app.call("DELETE", &path, Some(token), None).await.0
}

async fn cancel(app: &TestApp, token: &str, order_id: i64) {
    let (status, body) = app
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "cancelled: {body}");
}

/// Polls the customer's entry until it is PROMOTED (bounded), and returns it.
async fn promoted(app: &TestApp, token: &str, deal_id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = entry(app, token, deal_id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["status"] == "PROMOTED" {
            return body;
        }
        assert!(Instant::now() < deadline, "never served: {body}");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn assert_conserved(app: &TestApp, deal_id: i64) {
    let stock = app.stock(deal_id).await;
    assert!(stock.conserved(), "units conserved: {stock:?}");
}

async fn sold_out_deal(app: &TestApp, units: i64, extra: Value) -> (i64, Vec<(Customer, i64)>) {
    let deal_id = app.create_deal(units, extra).await;
    let mut holders = Vec::new();
    for buyer in app.customers(units as usize).await {
        let (status, order) = app.order(&buyer.token, deal_id).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        let order_id = order["id"].as_i64().expect("id");
        holders.push((buyer, order_id));
    }
    assert_eq!(app.deal(deal_id).await["available_units"], 0);
    (deal_id, holders)
}

async fn freed_units_go_to_the_waitlist_first_come_first_served(backend: Backend) {
    let app = spawn_app(backend).await;
    let (deal_id, holders) = sold_out_deal(&app, 3, json!({})).await;
    let waiters = app.customers(4).await;

    // Joining: a line, with positions; the second join and admins refused; bad input named.
    let (status, first) = join(&app, &waiters[0].token, deal_id, 2).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        (&first["status"], &first["position"], &first["quantity"]),
        (&json!("WAITING"), &json!(1), &json!(2))
    );
    for (waiter, position) in waiters[1..3].iter().zip([2, 3]) {
        let (status, body) = join(&app, &waiter.token, deal_id, 1).await;
        assert_eq!(
            (status, &body["position"]),
            (StatusCode::CREATED, &json!(position))
        );
    }
    let again = join(&app, &waiters[0].token, deal_id, 1).await;
    assert_error(&again, StatusCode::CONFLICT, "CONFLICT");
    let admin = join(&app, &app.admin_token, deal_id, 1).await;
    assert_error(&admin, StatusCode::FORBIDDEN, "FORBIDDEN");
    let (status, bad) = join(&app, &waiters[3].token, deal_id, 0).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(bad["errors"]["quantity"].is_array(), "{bad}");
    let (status, _) = join(&app, &waiters[3].token, 999_999, 1).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, none) = entry(&app, &waiters[3].token, deal_id).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{none}");
    let (_, second) = entry(&app, &waiters[1].token, deal_id).await;
    assert_eq!(second["position"], 2, "{second}");

    // One unit comes free: the first entry (2 units) does not fit, the second does (first fit).
    cancel(&app, &holders[0].0.token, holders[0].1).await;
    let served = promoted(&app, &waiters[1].token, deal_id).await;
    let order_id = served["order_id"]
        .as_i64()
        .expect("the served entry's order");
    assert!(served["position"].is_null(), "{served}");
    let (status, order) = app
        .get(
            &format!("/api/v1/orders/{order_id}"),
            Some(&waiters[1].token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&order["status"], &order["quantity"], &order["total_price"]),
        (&json!("OPEN"), &json!(1), &json!("99.00"))
    );
    assert_eq!(
        app.deal(deal_id).await["available_units"],
        0,
        "none on the shelf"
    );
    assert_conserved(&app, deal_id).await;
    let (_, first) = entry(&app, &waiters[0].token, deal_id).await;
    let (_, third) = entry(&app, &waiters[2].token, deal_id).await;
    assert_eq!(
        (&first["position"], &third["position"]),
        (&json!(1), &json!(2))
    );

    // Leaving: 204, then LEFT; leaving twice is 404.
    let status = leave(&app, &waiters[2].token, deal_id).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        entry(&app, &waiters[2].token, deal_id).await.1["status"],
        "LEFT"
    );
    let status = leave(&app, &waiters[2].token, deal_id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Units an admin adds go to the waitlist first: the 2-unit entry is served.
    let (status, body) = app
        .call(
            "PATCH",
            &format!("/api/v1/deals/{deal_id}"),
            Some(&app.admin_token),
            Some(json!({"total_units": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let served = promoted(&app, &waiters[0].token, deal_id).await;
    assert_eq!(served["quantity"], 2);
    assert_eq!(app.deal(deal_id).await["available_units"], 0);
    assert_conserved(&app, deal_id).await;

    // Nobody waits: a freed unit goes to the shelf, and joining is refused while it is there.
    cancel(&app, &holders[1].0.token, holders[1].1).await;
    assert_eq!(app.deal(deal_id).await["available_units"], 1);
    let refused = join(&app, &waiters[3].token, deal_id, 1).await;
    assert_error(&refused, StatusCode::CONFLICT, "NOT_SOLD_OUT");
    assert_eq!(refused.1["available_units"], 1);
    let (status, _) = entry(&app, &waiters[3].token, deal_id).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused join leaves no entry"
    );
    assert_conserved(&app, deal_id).await;

    // The store holds what the API said.
    let rows = app
        .store()
        .waitlist_entries(deal_id)
        .await
        .expect("entries");
    let statuses: Vec<&str> = rows.iter().map(|row| row.status.as_str()).collect();
    assert_eq!(statuses, ["PROMOTED", "PROMOTED", "LEFT"]);
    app.finish().await;
}

/// A deal's waitlist is bounded; an entry that would pass the per-customer limit is refused;
/// a closed deal takes no entry; entries of a limited deal are served within the limit.
async fn the_waitlist_is_bounded_and_keeps_the_limit(backend: Backend) {
    let test_store = TestStore::create(backend).await;
    let app = spawn_app_with(test_store, |settings| settings.waitlist_max = 2).await;
    let (deal_id, holders) = sold_out_deal(&app, 2, json!({"per_customer_limit": 2})).await;
    let waiters = app.customers(3).await;
    for waiter in &waiters[..2] {
        let (status, body) = join(&app, &waiter.token, deal_id, 1).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let full = join(&app, &waiters[2].token, deal_id, 1).await;
    assert_error(&full, StatusCode::CONFLICT, "WAITLIST_FULL");
    // A holder of 1 unit may wait for 1 more, not for 2.
    let over = join(&app, &holders[0].0.token, deal_id, 2).await;
    assert_error(&over, StatusCode::CONFLICT, "LIMIT_EXCEEDED");
    // Closed: no entry.
    let (status, _) = app
        .post(
            &format!("/api/v1/deals/{deal_id}/close"),
            Some(&app.admin_token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let closed = join(&app, &waiters[2].token, deal_id, 1).await;
    assert_error(&closed, StatusCode::CONFLICT, "DEAL_CLOSED");
    // Freed while closed: the units wait on the shelf; reopened, they go to the line.
    cancel(&app, &holders[0].0.token, holders[0].1).await;
    assert_eq!(
        entry(&app, &waiters[0].token, deal_id).await.1["status"],
        "WAITING"
    );
    let (status, _) = app
        .post(
            &format!("/api/v1/deals/{deal_id}/open"),
            Some(&app.admin_token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    promoted(&app, &waiters[0].token, deal_id).await;
    assert_eq!(
        entry(&app, &waiters[1].token, deal_id).await.1["position"],
        1
    );
    assert_conserved(&app, deal_id).await;
    app.finish().await;
}

/// Acceptance 1: 1,000 buyers at a 100-unit deal with a 2-second payment window; half of the
/// 100 who got units pay. 300 customers wait. At the deadline the 50 unpaid orders are
/// cancelled and their units go to the first 50 waiting customers (the 50 oldest entries),
/// whose orders are claims of their own; they pay. Exactly the paid orders stay, money adds up
/// to the cent, and units are conserved after every step.
async fn a_burst_with_payments_and_a_waitlist_sells_exactly_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app
        .create_deal(
            100,
            json!({"final_price": "12.34", "payment_window_secs": 2}),
        )
        .await;
    let buyers = app.customers(1_000).await;
    let waiters = app.customers(300).await;
    for waiter in &waiters {
        let credited = app
            .store()
            .credit(waiter.id, 1_234, i64::MAX / 4, now_ms())
            .await;
        credited.expect("credited").expect("the waiter exists");
    }
    let orders = join_all(buyers.iter().map(|buyer| {
        app.post_on_task(
            "/api/v1/orders".into(),
            buyer.token.clone(),
            json!({"deal_id": deal_id}),
        )
    }))
    .await;
    let placed: Vec<(usize, i64)> = orders
        .iter()
        .enumerate()
        .filter_map(|(i, (status, body))| {
            (*status == StatusCode::CREATED).then(|| (i, body["id"].as_i64().expect("id")))
        })
        .collect();
    assert_eq!(placed.len(), 100, "exactly the units are sold");
    assert_conserved(&app, deal_id).await;

    // 300 join and 50 buyers (every other one) pay, all at once, while the claims run. The
    // waiting customers had their money before.
    let payers: Vec<(usize, i64)> = placed.iter().step_by(2).copied().collect();
    let joins = waiters.iter().map(|waiter| {
        let path = format!("/api/v1/deals/{deal_id}/waitlist");
        app.post_on_task(path, waiter.token.clone(), json!({"quantity": 1}))
    });
    let payments = payers.iter().map(|(i, order_id)| {
        let (buyer, order_id) = (&buyers[*i], *order_id);
        let (store, path) = (
            app.store().clone(),
            format!("/api/v1/orders/{order_id}/pay"),
        );
        let paying = app.post_on_task(path, buyer.token.clone(), json!({}));
        async move {
            store
                .credit(buyer.id, 1_234, i64::MAX / 4, now_ms())
                .await
                .expect("credited");
            paying.await
        }
    });
    let (joins, payments) = futures_util::future::join(join_all(joins), join_all(payments)).await;
    assert!(
        joins
            .iter()
            .all(|(status, _)| *status == StatusCode::CREATED),
        "every customer joined while the deal was sold out (the joins must beat the 2 s window)"
    );
    for (status, body) in &payments {
        assert_eq!(*status, StatusCode::OK, "paid in time: {body}");
    }
    assert_conserved(&app, deal_id).await;

    // The entries in the order they joined; the first 50 are served at the deadline.
    let line = app
        .store()
        .waitlist_entries(deal_id)
        .await
        .expect("entries");
    assert_eq!(line.len(), 300);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rows = app
            .store()
            .waitlist_entries(deal_id)
            .await
            .expect("entries");
        if rows.iter().filter(|row| row.status == "PROMOTED").count() == 50 {
            break;
        }
        assert!(Instant::now() < deadline, "50 entries were never served");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let rows = app
        .store()
        .waitlist_entries(deal_id)
        .await
        .expect("entries");
    assert!(
        rows[..50].iter().all(|row| row.status == "PROMOTED")
            && rows[50..].iter().all(|row| row.status == "WAITING"),
        "first come, first served"
    );
    assert_eq!(rows[50].position, 1, "the 51st is next");
    assert_conserved(&app, deal_id).await;
    assert_eq!(app.deal(deal_id).await["available_units"], 0);

    // The served customers pay their own claims in time.
    for row in &rows[..50] {
        let waiter = waiters
            .iter()
            .find(|w| w.id == row.customer_id)
            .expect("a waiter");
        let order_id = row.order_id.expect("order");
        let (status, body) = app
            .post(
                &format!("/api/v1/orders/{order_id}/pay"),
                Some(&waiter.token),
                json!({}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a served entry's claim is paid: {body}"
        );
    }

    // Exactly the paid orders hold units; the unpaid were cancelled at their deadline.
    let paid_buyers: std::collections::HashSet<i64> = payers.iter().map(|(_, id)| *id).collect();
    for (_, order_id) in &placed {
        let order = app
            .store()
            .order_by_id(*order_id)
            .await
            .expect("store")
            .expect("order");
        let expected = if paid_buyers.contains(order_id) {
            "PAID"
        } else {
            "UNPAID"
        };
        assert_eq!(order.payment_status.as_str(), expected);
        let status = if paid_buyers.contains(order_id) {
            "OPEN"
        } else {
            "CANCELLED"
        };
        assert_eq!(order.status.as_str(), status);
    }
    let stock = app.stock(deal_id).await;
    assert_eq!(
        (stock.available_units, stock.units_held),
        (0, 100),
        "{stock:?}"
    );
    assert!(stock.conserved());
    let (credits, debits, refunds) = app.store().wallet_totals().await.expect("totals");
    assert_eq!(credits, 350 * 1_234);
    assert_eq!(debits, 100 * 1_234, "sum of debits = sum of paid orders");
    assert_eq!(refunds, 0);
    app.finish().await;
}

crate::on_both_stores!(
    freed_units_go_to_the_waitlist_first_come_first_served,
    the_waitlist_is_bounded_and_keeps_the_limit,
    a_burst_with_payments_and_a_waitlist_sells_exactly_once,
);
