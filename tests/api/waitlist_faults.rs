//! The waitlist and payments under SIGKILL (issue 12, acceptance 7): a scarce deal with a
//! 1-second payment window sells out; customers wait; buyers and served customers pay or let
//! their claims lapse, so units keep moving from lapsed claims to the waiting line — and the
//! engine is killed in the middle of it. Restarted, it goes on from the store: no debit without
//! its paid order, no paid order without its debit, every entry served once (its order
//! stored with it), no unit lost or doubled, and no unit left free while a waiting entry fits.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::{Value, json};

use crate::engine_process::{EngineProcess, admin_token, register_buyer};
use crate::helpers::{Backend, TestStore, rfc3339, spawn};

const UNITS: i64 = 12;
const WAITERS: usize = 30;

/// Every other customer pays what they are given; the others let it lapse.
fn pays(i: usize) -> bool {
    i % 2 == 0
}

async fn a_waitlist_with_payments_survives_a_sigkill(backend: Backend) {
    let store = TestStore::create(backend).await;
    let mut engine = EngineProcess::start(&store);
    let admin = admin_token(&engine).await;
    let deal = json!({"product_name": "Scarce", "actual_price": "2.00", "final_price": "1.00", "total_units": UNITS,
        "expires_at": rfc3339(actors::clock::now_ms() + 3_600_000), "payment_window_secs": 1});
    let (status, deal) = engine
        .call("POST", "/api/v1/deals", Some(&admin), Some(deal))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let deal_id = deal["id"].as_i64().expect("id");
    let mut customers = Vec::new();
    for i in 0..(UNITS as usize + WAITERS) {
        let (id, token) =
            register_buyer(&engine, &format!("w{i}_{}", topkart::auth::random_hex(3))).await;
        engine.credit(&admin, id, "5.00").await;
        customers.push((id, token));
    }
    // The first UNITS customers buy; the payers pay at once. The rest wait.
    let mut told_paid = Vec::new();
    for (i, (_, token)) in customers.iter().enumerate().take(UNITS as usize) {
        let (status, order) = engine
            .call(
                "POST",
                "/api/v1/orders",
                Some(token),
                Some(json!({"deal_id": deal_id})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        if pays(i) {
            let order_id = order["id"].as_i64().expect("id");
            let (status, _) = engine
                .call(
                    "POST",
                    &format!("/api/v1/orders/{order_id}/pay"),
                    Some(token),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK);
            told_paid.push(order_id);
        }
    }
    for (_, token) in &customers[UNITS as usize..] {
        let (status, entry) = engine
            .call(
                "POST",
                &format!("/api/v1/deals/{deal_id}/waitlist"),
                Some(token),
                Some(json!({"quantity": 1})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{entry}");
    }

    // Each waiting customer watches their entry and, once served, pays or not (bounded loops).
    let loops: Vec<_> = customers
        .iter()
        .enumerate()
        .skip(UNITS as usize)
        .map(|(i, (_, token))| spawn(watch(&engine, deal_id, token.clone(), pays(i))))
        .collect();
    // Killed once units have moved through the line twice over (lapses, promotions, payments).
    let db = topkart::store::Store::connect(&store.url, 2)
        .await
        .expect("store");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let served = db
            .waitlist_entries(deal_id)
            .await
            .expect("entries")
            .iter()
            .filter(|e| e.status == "PROMOTED")
            .count();
        if served >= 8 {
            break;
        }
        assert!(Instant::now() < deadline, "the line did not move");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    engine.child.kill().expect("SIGKILL");
    let _ = engine.child.wait();
    for handle in loops {
        told_paid.extend(handle.await.expect("customer loop"));
    }
    println!("SIGKILL with {} payments acknowledged", told_paid.len());

    // Restarted, the engine goes on from the store; settled when no claim is unpaid and
    // nothing is free while someone waits (polled, bounded).
    // The customers come back, and now all pay what they are given.
    let engine = EngineProcess::start(&store);
    let loops: Vec<_> = customers[UNITS as usize..]
        .iter()
        .map(|(_, token)| spawn(watch(&engine, deal_id, token.clone(), true)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = sqlx_rows(&db, deal_id).await;
        let unpaid = rows.unpaid_open;
        let waiting = db
            .waitlist_entries(deal_id)
            .await
            .expect("entries")
            .iter()
            .filter(|e| e.status == "WAITING")
            .count();
        let stock = db.stock_check(deal_id).await.expect("store").expect("deal");
        if unpaid == 0 && (waiting == 0 || stock.available_units == 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {unpaid} unpaid, {waiting} waiting, {stock:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // Those still waiting would wait on: their loops end here.
    loops.iter().for_each(|handle| handle.abort());
    let entries = db.waitlist_entries(deal_id).await.expect("entries");
    let waiting = entries.iter().filter(|e| e.status == "WAITING").count();
    let stock = db.stock_check(deal_id).await.expect("store").expect("deal");
    assert!(stock.conserved(), "no unit lost or doubled: {stock:?}");
    assert!(
        waiting == 0 || stock.available_units == 0,
        "a unit is free while {waiting} wait: {stock:?}"
    );
    // Every served entry has its order, of its customer, stored with it.
    for entry in entries.iter().filter(|e| e.status == "PROMOTED") {
        let order_id = entry.order_id.expect("a served entry names its order");
        let order = db
            .order_by_id(order_id)
            .await
            .expect("store")
            .expect("the served entry's order");
        assert_eq!(
            (order.customer_id, order.deal_id, order.quantity),
            (entry.customer_id, deal_id, 1)
        );
    }
    // Money: every acknowledged payment's order is PAID; debits are exactly the paid orders;
    // each wallet is its credit less its paid orders.
    let rows = sqlx_rows(&db, deal_id).await;
    for order_id in &told_paid {
        assert!(
            rows.paid.iter().any(|(id, _, _)| id == order_id),
            "order {order_id} was acknowledged paid"
        );
    }
    let (credits, debits, refunds) = db.wallet_totals().await.expect("totals");
    let paid_total: i64 = rows.paid.iter().map(|(_, _, total)| total).sum();
    assert_eq!(
        (credits, debits, refunds),
        (500 * customers.len() as i64, paid_total, 0)
    );
    for (id, _) in &customers {
        let user = db.user_by_id(*id).await.expect("store").expect("user");
        let paid: i64 = rows
            .paid
            .iter()
            .filter(|(_, c, _)| c == id)
            .map(|(_, _, t)| t)
            .sum();
        assert_eq!(
            user.balance + paid,
            500,
            "user {id}: wallet and paid orders"
        );
    }
    // The admin's statistics, kept in the orders' own transactions, equal a recount of the rows
    // across the crash (this store holds this deal's orders only).
    let totals = db.order_totals(None).await.expect("statistics");
    assert_eq!(
        totals.by_status, rows.by_status,
        "statistics against the rows"
    );
    println!(
        "settled: {} paid, {} served, {waiting} waiting, {} free",
        rows.paid.len(),
        entries.iter().filter(|e| e.status == "PROMOTED").count(),
        stock.available_units
    );
    db.close().await;
    drop(engine);
    store.remove().await;
}

/// A waiting customer: polls their entry until it is served (bounded), then pays its order if
/// `pay`. Returns the order when a payment was acknowledged.
fn watch(
    engine: &EngineProcess,
    deal_id: i64,
    token: String,
    pay: bool,
) -> impl std::future::Future<Output = Option<i64>> + 'static {
    let (client, base) = (engine.client.clone(), engine.base.clone());
    async move {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let mut answer = client
                .get(format!("{base}/api/v1/deals/{deal_id}/waitlist/me"))
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send()
                .await
                .ok()?;
            let entry: Value = answer.json().await.unwrap_or(Value::Null);
            if entry["status"] != "WAITING" {
                let order_id = entry["order_id"].as_i64().filter(|_| pay)?;
                let paid = client
                    .post(format!("{base}/api/v1/orders/{order_id}/pay"))
                    .insert_header(("Authorization", format!("Bearer {token}")))
                    .send()
                    .await;
                return matches!(paid, Ok(answer) if answer.status() == StatusCode::OK)
                    .then_some(order_id);
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

struct Rows {
    unpaid_open: usize,
    /// Orders by status, counted from the rows.
    by_status: std::collections::BTreeMap<String, i64>,
    /// (order, customer, total) of the PAID orders.
    paid: Vec<(i64, i64, i64)>,
}

async fn sqlx_rows(db: &topkart::store::Store, deal_id: i64) -> Rows {
    let filter = topkart::store::OrderFilter {
        deal_id: Some(deal_id),
        ..Default::default()
    };
    let (_, orders) = db.list_orders(&filter, 10_000, 0).await.expect("orders");
    use actors::journal::{OrderStatus, PaymentStatus};
    let mut by_status = std::collections::BTreeMap::new();
    for order in &orders {
        *by_status
            .entry(order.status.as_str().to_owned())
            .or_insert(0) += 1;
    }
    Rows {
        by_status,
        unpaid_open: orders
            .iter()
            .filter(|o| o.status == OrderStatus::Open && o.payment_status == PaymentStatus::Unpaid)
            .count(),
        paid: orders
            .iter()
            .filter(|o| o.payment_status == PaymentStatus::Paid)
            .map(|o| (o.id, o.customer_id, o.total_price))
            .collect(),
    }
}

crate::on_both_stores!(a_waitlist_with_payments_survives_a_sigkill);
