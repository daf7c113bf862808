//! Payments under SIGKILL (issue 12, acceptance 7): 40 buyers place and pay orders of a deal
//! with a payment window while the engine is killed mid-way. After a restart the store holds no
//! debit without its paid order and no paid order without its debit (each wallet is exactly its
//! credit less its paid orders), every payment a buyer was told of is there, the units are
//! conserved, and the restarted engine lapses the unpaid claims left behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actors::journal::PaymentStatus;
use serde_json::json;
use topkart::store::{OrderFilter, Store, UserFilter};

use crate::engine_process::{EngineProcess, admin_token, register_buyer};
use crate::helpers::{Backend, TestStore, rfc3339, spawn};

const BUYERS: usize = 40;

async fn payments_survive_a_sigkill(backend: Backend) {
    let store = TestStore::create(backend).await;
    let mut engine = EngineProcess::start(&store);
    let admin = admin_token(&engine).await;
    let deal = json!({"product_name": "Paid", "actual_price": "2.00", "final_price": "1.00", "total_units": 10_000,
        "expires_at": rfc3339(actors::clock::now_ms() + 3_600_000), "payment_window_secs": 2});
    let (status, deal) = engine
        .call("POST", "/api/v1/deals", Some(&admin), Some(deal))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deal}");
    let deal_id = deal["id"].as_i64().expect("id");
    let mut buyers = Vec::new();
    for i in 0..BUYERS {
        let (id, token) = register_buyer(
            &engine,
            &format!("payer{i}_{}", topkart::auth::random_hex(3)),
        )
        .await;
        engine.credit(&admin, id, "100.00").await;
        buyers.push((id, token));
    }

    // Each buyer orders and pays, again and again, until the engine dies (bounded).
    let paid_count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::new();
    for (_, token) in &buyers {
        let (client, base, token) = (engine.client.clone(), engine.base.clone(), token.clone());
        let (paid_count, stop) = (paid_count.clone(), stop.clone());
        loops.push(spawn(async move {
            let mut told_paid = Vec::new();
            for _ in 0..200 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let placed = client
                    .post(format!("{base}/api/v1/orders"))
                    .insert_header(("Authorization", format!("Bearer {token}")))
                    .send_json(&json!({"deal_id": deal_id}))
                    .await;
                let Ok(mut placed) = placed else { break };
                let Ok(order) = placed.json::<serde_json::Value>().await else {
                    break;
                };
                let Some(order_id) = order["id"].as_i64() else {
                    continue;
                };
                let paid = client
                    .post(format!("{base}/api/v1/orders/{order_id}/pay"))
                    .insert_header(("Authorization", format!("Bearer {token}")))
                    .send()
                    .await;
                match paid {
                    Ok(answer) if answer.status() == StatusCode::OK => {
                        told_paid.push(order_id);
                        paid_count.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            told_paid
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while paid_count.load(Ordering::Relaxed) < 150 {
        assert!(Instant::now() < deadline, "the buyers did not pay");
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    engine.child.kill().expect("SIGKILL");
    let _ = engine.child.wait();
    stop.store(true, Ordering::Relaxed);
    let mut told_paid = Vec::new();
    for handle in loops {
        told_paid.extend(handle.await.expect("buyer loop"));
    }
    println!("SIGKILL after {} payments acknowledged", told_paid.len());

    // Restarted: the unpaid claims lapse (polled, bounded), then the store is checked.
    let engine = EngineProcess::start(&store);
    let db = Store::connect(&store.url, 2).await.expect("store");
    let unpaid_filter = OrderFilter {
        deal_id: Some(deal_id),
        status: Some(actors::journal::OrderStatus::Open),
        ..OrderFilter::default()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, open) = db
            .list_orders(&unpaid_filter, 10_000, 0)
            .await
            .expect("orders");
        let unpaid = open
            .iter()
            .filter(|o| o.payment_status == PaymentStatus::Unpaid)
            .count();
        if unpaid == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unpaid} claims left unpaid after the restart"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, orders) = db
        .list_orders(
            &OrderFilter {
                deal_id: Some(deal_id),
                ..OrderFilter::default()
            },
            100_000,
            0,
        )
        .await
        .expect("orders");
    for order_id in &told_paid {
        let order = orders
            .iter()
            .find(|o| o.id == *order_id)
            .expect("an acknowledged payment's order is stored");
        assert_eq!(
            order.payment_status,
            PaymentStatus::Paid,
            "order {order_id} was acknowledged paid"
        );
    }
    let (users, _) = db
        .list_users(
            &UserFilter {
                user_type: Some("customer".into()),
            },
            100,
            0,
        )
        .await
        .expect("users");
    for user in &users {
        let paid: i64 = orders
            .iter()
            .filter(|o| o.customer_id == user.id && o.payment_status == PaymentStatus::Paid)
            .map(|o| o.total_price)
            .sum();
        assert_eq!(
            user.balance + paid,
            10_000,
            "user {}: wallet and paid orders",
            user.id
        );
        assert!(
            orders
                .iter()
                .all(|o| o.customer_id != user.id || o.payment_status != PaymentStatus::Refunded)
        );
    }
    let (credits, debits, refunds) = db.wallet_totals().await.expect("totals");
    let paid_total: i64 = orders
        .iter()
        .filter(|o| o.payment_status == PaymentStatus::Paid)
        .map(|o| o.total_price)
        .sum();
    assert_eq!(
        (credits, debits, refunds),
        (10_000 * BUYERS as i64, paid_total, 0)
    );
    let stock = db.stock_check(deal_id).await.expect("store").expect("deal");
    assert!(stock.conserved(), "{stock:?}");
    db.close().await;
    drop(engine);
    store.remove().await;
}

crate::on_both_stores!(payments_survive_a_sigkill);
