//! Wallets and payments (issue 12, first part), on both stores: admins credit wallets; an
//! order of a deal with a payment window is a claim, paid from the wallet once (a retry with
//! its key answers again, never debits again), cancelled by the deal's actor at its deadline
//! with its units back; a paid order cancelled is refunded once; a cancellation racing a
//! payment ends refunded or unpaid, never both or neither; money adds up in the store.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, spawn, spawn_app};

/// Money as the API writes it, in minor units.
fn cents(value: &Value) -> i64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("money as text: {value}"));
    let (units, fraction) = text.split_once('.').expect("two decimals");
    units.parse::<i64>().expect("units") * 100 + fraction.parse::<i64>().expect("cents")
}

async fn credit(app: &TestApp, user_id: i64, amount: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/users/{user_id}/balance"),
        Some(&app.admin_token),
        json!({ "amount": amount }),
    )
    .await
}

async fn balance(app: &TestApp, token: &str) -> i64 {
    let (status, me) = app.get("/api/v1/users/me", Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    cents(&me["balance"])
}

async fn pay(app: &TestApp, token: &str, order_id: i64, key: Option<&str>) -> (StatusCode, Value) {
    let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    app.call_with(
        "POST",
        &format!("/api/v1/orders/{order_id}/pay"),
        Some(token),
        None,
        &headers,
    )
    .await
}

async fn order(app: &TestApp, token: &str, order_id: i64) -> Value {
    let (status, order) = app
        .get(&format!("/api/v1/orders/{order_id}"), Some(token))
        .await;
    assert_eq!(status, StatusCode::OK);
    order
}

/// Money adds up in the store: every wallet is its credits less its debits plus its refunds
/// (summed over all), and debits less refunds are exactly the totals of the PAID orders.
async fn assert_money_adds_up(app: &TestApp, tokens: &[&str]) {
    let (credits, debits, refunds) = app.store().wallet_totals().await.expect("totals");
    let mut balances = 0;
    for token in tokens {
        balances += balance(app, token).await;
    }
    assert_eq!(
        balances,
        credits - debits + refunds,
        "wallets against their entries"
    );
    let (_, orders) = app
        .get("/api/v1/orders?page_size=100", Some(&app.admin_token))
        .await;
    let paid: i64 = orders["results"]
        .as_array()
        .expect("orders")
        .iter()
        .filter(|o| o["payment_status"] == "PAID")
        .map(|o| cents(&o["total_price"]))
        .sum();
    assert_eq!(debits - refunds, paid, "money kept against the paid orders");
}

async fn wallets_are_credited_by_admins(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = app.customers(1).await.remove(0);
    assert_eq!(balance(&app, &customer.token).await, 0);
    let (status, user) = credit(&app, customer.id, "120.50").await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["balance"], "120.50");
    assert_eq!(balance(&app, &customer.token).await, 12_050);
    // Admins list users with their balances; customers may not.
    let (status, users) = app
        .get("/api/v1/users?user_type=customer", Some(&app.admin_token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users["count"], 1);
    assert_eq!(users["results"][0]["balance"], "120.50");
    let refused = app.get("/api/v1/users", Some(&customer.token)).await;
    assert_error(&refused, StatusCode::FORBIDDEN, "FORBIDDEN");
    let refused = app
        .post(
            &format!("/api/v1/users/{}/balance", customer.id),
            Some(&customer.token),
            json!({"amount": "10.00"}),
        )
        .await;
    assert_error(&refused, StatusCode::FORBIDDEN, "FORBIDDEN");
    // Bad amounts are named and change nothing.
    for amount in [
        json!("0.00"),
        json!("-5.00"),
        json!("1.234"),
        json!("ten"),
        json!("1000000000.01"),
    ] {
        let (status, body) = app
            .post(
                &format!("/api/v1/users/{}/balance", customer.id),
                Some(&app.admin_token),
                json!({ "amount": amount }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{amount}: {body}");
        assert!(body["errors"]["amount"].is_array(), "{amount}: {body}");
    }
    let (status, _) = credit(&app, 999_999, "1.00").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(balance(&app, &customer.token).await, 12_050);
    assert_money_adds_up(&app, &[&customer.token]).await;
    app.finish().await;
}

async fn an_order_is_paid_once_and_refunded_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app
        .create_deal(
            10,
            json!({"final_price": "30.00", "payment_window_secs": 600}),
        )
        .await;
    assert_eq!(app.deal(deal_id).await["payment_window_secs"], 600);
    let buyer = app.customers(1).await.remove(0);
    let (status, placed) = app
        .post(
            "/api/v1/orders",
            Some(&buyer.token),
            json!({"deal_id": deal_id, "quantity": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    assert_eq!(placed["payment_status"], "UNPAID");
    assert!(
        placed["pay_by"].is_string() && placed["paid_at"].is_null(),
        "{placed}"
    );
    let order_id = placed["id"].as_i64().expect("id");

    // No money: refused with the balance, nothing changed. Unpaid: not approvable.
    let refused = pay(&app, &buyer.token, order_id, None).await;
    assert_error(&refused, StatusCode::CONFLICT, "INSUFFICIENT_BALANCE");
    assert_eq!(refused.1["balance"], "0.00");
    assert_eq!(
        order(&app, &buyer.token, order_id).await["payment_status"],
        "UNPAID"
    );
    let refused = app
        .call(
            "PATCH",
            &format!("/api/v1/orders/{order_id}/status"),
            Some(&app.admin_token),
            Some(json!({"status": "APPROVED"})),
        )
        .await;
    assert_error(&refused, StatusCode::CONFLICT, "PAYMENT_REQUIRED");

    // Paid with a key; the retry with the key answers the same, and debits nothing more.
    credit(&app, buyer.id, "100.00").await;
    let (status, paid) = pay(&app, &buyer.token, order_id, Some("pay-1")).await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(paid["payment_status"], "PAID");
    assert!(paid["paid_at"].is_string());
    assert_eq!(balance(&app, &buyer.token).await, 4_000);
    let (status, again) = pay(&app, &buyer.token, order_id, Some("pay-1")).await;
    assert_eq!((status, &again["id"]), (StatusCode::OK, &json!(order_id)));
    let refused = pay(&app, &buyer.token, order_id, None).await;
    assert_error(&refused, StatusCode::CONFLICT, "INVALID_TRANSITION");
    let refused = pay(&app, &buyer.token, order_id, Some("another key")).await;
    assert_error(&refused, StatusCode::CONFLICT, "INVALID_TRANSITION");
    assert_eq!(balance(&app, &buyer.token).await, 4_000, "debited once");
    // Another customer's order is not theirs to pay (nor to see).
    let other = app.customers(1).await.remove(0);
    let (status, _) = pay(&app, &other.token, order_id, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Approved once paid; cancelled, it is refunded once.
    let (status, approved) = app
        .call(
            "PATCH",
            &format!("/api/v1/orders/{order_id}/status"),
            Some(&app.admin_token),
            Some(json!({"status": "APPROVED"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    let (status, cancelled) = app
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&buyer.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(
        (&cancelled["status"], &cancelled["payment_status"]),
        (&json!("CANCELLED"), &json!("REFUNDED"))
    );
    let (status, _) = app
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            Some(&buyer.token),
            json!({}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "cancelling twice is answered, and refunds nothing more"
    );
    assert_eq!(balance(&app, &buyer.token).await, 10_000, "refunded once");
    assert_eq!(app.deal(deal_id).await["available_units"], 10);
    assert!(app.stock(deal_id).await.conserved());
    // An order of a deal without a window needs no payment.
    let free = app.create_deal(5, json!({})).await;
    let (_, plain) = app.order(&buyer.token, free).await;
    assert_eq!(plain["payment_status"], "NOT_REQUIRED");
    let refused = pay(&app, &buyer.token, plain["id"].as_i64().expect("id"), None).await;
    assert_error(&refused, StatusCode::CONFLICT, "INVALID_TRANSITION");
    assert_money_adds_up(&app, &[&buyer.token, &other.token]).await;
    app.finish().await;
}

/// A 1-second window: the unpaid orders are cancelled by the deal's actor at their deadline
/// and their units come back; the paid one stays; paying after the deadline is refused.
async fn unpaid_claims_lapse_at_their_deadline(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app
        .create_deal(10, json!({"final_price": "5.00", "payment_window_secs": 1}))
        .await;
    let buyers = app.customers(3).await;
    let mut ids = Vec::new();
    for buyer in &buyers {
        let (status, placed) = app
            .post(
                "/api/v1/orders",
                Some(&buyer.token),
                json!({"deal_id": deal_id, "quantity": 2}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        ids.push(placed["id"].as_i64().expect("id"));
    }
    assert_eq!(app.deal(deal_id).await["available_units"], 4);
    credit(&app, buyers[0].id, "10.00").await;
    let (status, _) = pay(&app, &buyers[0].token, ids[0], None).await;
    assert_eq!(status, StatusCode::OK);
    // Polled, bounded: the deadline is 1 s after each order.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let available = app.deal(deal_id).await["available_units"]
            .as_i64()
            .expect("units");
        if available == 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the claims did not lapse: {available} available"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    for (buyer, id) in buyers.iter().zip(&ids).skip(1) {
        let lapsed = order(&app, &buyer.token, *id).await;
        assert_eq!(
            (&lapsed["status"], &lapsed["payment_status"]),
            (&json!("CANCELLED"), &json!("UNPAID"))
        );
        let refused = pay(&app, &buyer.token, *id, None).await;
        assert_eq!(refused.0, StatusCode::CONFLICT, "{}", refused.1);
    }
    assert_eq!(
        order(&app, &buyers[0].token, ids[0]).await["status"],
        "OPEN"
    );
    assert!(app.stock(deal_id).await.conserved());
    let tokens: Vec<&str> = buyers.iter().map(|b| b.token.as_str()).collect();
    assert_money_adds_up(&app, &tokens).await;
    app.finish().await;
}

/// Forty orders, each paid and cancelled at the same moment: each ends cancelled, and either
/// refunded (the payment came first) or unpaid (the cancellation did) — never paid and
/// cancelled without its refund, never refunded without its debit.
async fn a_cancellation_racing_a_payment_ends_refunded_or_unpaid(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app
        .create_deal(
            100,
            json!({"final_price": "2.50", "payment_window_secs": 600}),
        )
        .await;
    let buyers = app.customers(40).await;
    let mut races = Vec::new();
    for buyer in &buyers {
        credit(&app, buyer.id, "10.00").await;
        let (_, placed) = app.order(&buyer.token, deal_id).await;
        let order_id = placed["id"].as_i64().expect("id");
        let (client, base, token) = (app.client.clone(), app.base.clone(), buyer.token.clone());
        races.push(spawn(async move {
            let paying = client
                .post(format!("{base}/api/v1/orders/{order_id}/pay"))
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send();
            let cancelling = client
                .post(format!("{base}/api/v1/orders/{order_id}/cancel"))
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send();
            let (paid, cancelled) = futures_util::future::join(paying, cancelling).await;
            (
                order_id,
                paid.expect("answered").status(),
                cancelled.expect("answered").status(),
            )
        }));
    }
    let (mut refunded, mut unpaid) = (0, 0);
    for (race, buyer) in races.into_iter().zip(&buyers) {
        let (order_id, paid, cancelled) = race.await.expect("race");
        assert_eq!(cancelled, StatusCode::OK);
        let end = order(&app, &buyer.token, order_id).await;
        assert_eq!(end["status"], "CANCELLED");
        match end["payment_status"].as_str() {
            Some("REFUNDED") => {
                assert_eq!(paid, StatusCode::OK);
                refunded += 1;
            }
            Some("UNPAID") => {
                assert_ne!(paid, StatusCode::OK);
                unpaid += 1;
            }
            other => panic!("order {order_id} ended {other:?}"),
        }
        assert_eq!(
            balance(&app, &buyer.token).await,
            1_000,
            "every wallet whole again"
        );
    }
    println!("cancel vs pay: {refunded} refunded, {unpaid} cancelled unpaid");
    assert_eq!(app.deal(deal_id).await["available_units"], 100);
    assert!(app.stock(deal_id).await.conserved());
    let tokens: Vec<&str> = buyers.iter().map(|b| b.token.as_str()).collect();
    assert_money_adds_up(&app, &tokens).await;
    app.finish().await;
}

/// Payments aimed at their own deadline over HTTP: 30 claims with a 1-second window, each paid
/// at an instant between 60 ms before and 60 ms after its `pay_by`. Whatever the timing, each is
/// decided one way everywhere: a 200 and the order PAID and debited once, its unit kept; or a
/// 409 and the order cancelled, never debited, its unit back on the shelf.
async fn payments_at_their_deadline_are_decided_one_way(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app
        .create_deal(30, json!({"final_price": "1.00", "payment_window_secs": 1}))
        .await;
    let buyers = app.customers(30).await;
    let mut races = Vec::new();
    for (i, buyer) in buyers.iter().enumerate() {
        credit(&app, buyer.id, "1.00").await;
        let (status, placed) = app.order(&buyer.token, deal_id).await;
        assert_eq!(status, StatusCode::CREATED);
        let order_id = placed["id"].as_i64().expect("id");
        let pay_by =
            chrono::DateTime::parse_from_rfc3339(placed["pay_by"].as_str().expect("pay_by"))
                .expect("RFC 3339")
                .timestamp_millis();
        // Aimed at pay_by − 60 ms … pay_by + 56 ms, by the wall clock the engine reads too.
        let aim = pay_by - 60 + (i as i64 * 4);
        let (client, base, token) = (app.client.clone(), app.base.clone(), buyer.token.clone());
        races.push(spawn(async move {
            let wait = aim - actors::clock::now_ms();
            if wait > 0 {
                actix_web::rt::time::sleep(Duration::from_millis(wait as u64)).await;
            }
            let sent_at = actors::clock::now_ms();
            let answer = client
                .post(format!("{base}/api/v1/orders/{order_id}/pay"))
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send()
                .await
                .expect("answered")
                .status();
            (order_id, answer, sent_at - pay_by)
        }));
    }
    let mut outcomes = Vec::new();
    for race in races {
        outcomes.push(race.await.expect("race"));
    }
    // Every unpaid claim lapses (polled, bounded); then each order is looked at.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, open) = app
            .get(
                &format!("/api/v1/orders?deal_id={deal_id}&status=OPEN&page_size=100"),
                Some(&app.admin_token),
            )
            .await;
        let unpaid = open["results"]
            .as_array()
            .expect("orders")
            .iter()
            .filter(|o| o["payment_status"] == "UNPAID")
            .count();
        if unpaid == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{unpaid} claims never lapsed");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut paid, mut lapsed) = (0, 0);
    for ((order_id, answer, offset), buyer) in outcomes.iter().zip(&buyers) {
        let stored = order(&app, &buyer.token, *order_id).await;
        let wallet = balance(&app, &buyer.token).await;
        match (
            *answer,
            stored["status"].as_str(),
            stored["payment_status"].as_str(),
        ) {
            (StatusCode::OK, Some("OPEN"), Some("PAID")) if wallet == 0 => paid += 1,
            (StatusCode::CONFLICT, Some("CANCELLED"), Some("UNPAID")) if wallet == 100 => {
                lapsed += 1
            }
            other => panic!(
                "order {order_id} paid {offset} ms from its deadline ended {other:?}, wallet {wallet}"
            ),
        }
    }
    println!("payments at the deadline: {paid} paid, {lapsed} lapsed");
    assert_eq!(paid + lapsed, 30);
    assert_eq!(app.deal(deal_id).await["available_units"], lapsed);
    assert!(app.stock(deal_id).await.conserved());
    let tokens: Vec<&str> = buyers.iter().map(|b| b.token.as_str()).collect();
    assert_money_adds_up(&app, &tokens).await;
    app.finish().await;
}

crate::on_both_stores!(
    wallets_are_credited_by_admins,
    an_order_is_paid_once_and_refunded_once,
    unpaid_claims_lapse_at_their_deadline,
    a_cancellation_racing_a_payment_ends_refunded_or_unpaid,
    payments_at_their_deadline_are_decided_one_way,
);
