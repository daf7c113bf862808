//! One story, told to both stores: the same calls must leave the same facts in SQLite and in
//! Postgres (users, deals, a large group commit, transitions, the daily re-arm keyed by date).

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use actors::clock::{DAY_MS, day_of, now_ms};
use actors::deal::{DealTerms, Recurrence};
use actors::journal::{Journal, NewOrder, OrderStatus};
use helpers::{Backend, TestStore};
use std::sync::Arc;
use topkart::store::{NewDeal, NewUser, OrderFilter, Store, StoreError, StoreJournal, Transition};

async fn story(backend: Backend) {
    let test_store = TestStore::create(backend).await;
    let store = Arc::new(Store::connect(&test_store.url, 4).await.expect("connect"));
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrations are idempotent");
    let now = now_ms();

    let user = NewUser {
        username: "u1".into(),
        email: "u1@example.com".into(),
        phone_number: None,
        password_hash: "h".into(),
        user_type: "customer".into(),
    };
    let customer = store.create_user(&user, now).await.expect("user");
    let taken = store
        .create_user(
            &NewUser {
                email: "other@example.com".into(),
                ..user.clone()
            },
            now,
        )
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict { ref fields }) if fields == &["username"]),
        "{taken:?}"
    );

    let terms = DealTerms {
        product_name: "Drill".into(),
        actual_price: 10_000,
        final_price: 7_500,
        starts_at: now,
        expires_at: now + 3_600_000,
        per_customer_limit: None,
        payment_window_secs: None,
        recurrence: Recurrence::Daily,
    };
    let deal = store
        .insert_deal(
            &NewDeal {
                terms,
                total_units: 2_000,
                available_units: 2_000,
            },
            now,
        )
        .await
        .expect("deal");
    assert_eq!(
        (deal.round, deal.rearmed_day, deal.available_units),
        (1, day_of(now), 2_000)
    );

    // A batch larger than one INSERT statement: ids come back in the batch's order.
    let orders: Vec<NewOrder> = (0..1_500)
        .map(|i| NewOrder {
            deal_id: deal.id,
            round: 1,
            customer_id: customer.id,
            quantity: 1,
            unit_price: 7_500,
            total_price: 7_500,
            idempotency_key: (i == 7).then(|| "key-7".to_owned()),
            created_at: now + i,
            owner_epoch: 0,
            pay_by: None,
        })
        .collect();
    let journal = StoreJournal(store.clone());
    let stored = journal.commit_orders(orders.clone()).await.expect("commit");
    assert_eq!(stored.len(), 1_500);
    assert!(stored.windows(2).all(|pair| pair[0].id < pair[1].id));
    assert!(
        stored
            .iter()
            .zip(&orders)
            .all(|(row, order)| row.created_at == order.created_at)
    );
    let stock = store
        .stock_check(deal.id)
        .await
        .expect("check")
        .expect("deal");
    assert_eq!(
        (stock.available_units, stock.units_held, stock.orders_held),
        (500, 1_500, 1_500)
    );
    let keyed = store
        .order_by_idempotency_key(customer.id, "key-7", now - 1)
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(keyed.id, stored[7].id);

    // A cancellation under an epoch the store does not hold is fenced: nothing changes.
    assert!(matches!(
        store
            .transition_order(stored[0].id, OrderStatus::Cancelled, 7, now)
            .await,
        Err(topkart::store::StoreError::OwnershipLost { .. })
    ));
    assert_eq!(
        store
            .order_by_id(stored[0].id)
            .await
            .expect("read")
            .expect("order")
            .status,
        OrderStatus::Open
    );
    match store
        .transition_order(stored[0].id, OrderStatus::Cancelled, 0, now)
        .await
        .expect("cancel")
    {
        Transition::Changed { restocked, .. } => assert!(restocked),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store
            .transition_order(stored[0].id, OrderStatus::Cancelled, 0, now)
            .await
            .expect("again"),
        Transition::Refused { .. }
    ));
    assert!(matches!(
        store
            .transition_order(999_999, OrderStatus::Approved, 0, now)
            .await
            .expect("none"),
        Transition::NotFound
    ));
    assert!(
        store
            .stock_check(deal.id)
            .await
            .expect("check")
            .expect("deal")
            .conserved()
    );
    let (count, page) = store
        .list_orders(
            &OrderFilter {
                status: Some(OrderStatus::Cancelled),
                ..Default::default()
            },
            10,
            0,
        )
        .await
        .expect("list");
    assert_eq!((count, page.len()), (1, 1));

    // The re-arm happens once per date, whoever asks how often.
    let tomorrow = day_of(now) + 1;
    let rearmed = journal.rearm_deal(deal.id, tomorrow).await.expect("rearm");
    let again = journal
        .rearm_deal(deal.id, tomorrow)
        .await
        .expect("rearm again");
    assert_eq!((rearmed.record.round, again.record.round), (2, 2));
    assert_eq!(again.record.available_units, 2_000);
    assert_eq!(again.record.starts_at, tomorrow * DAY_MS);
    assert_eq!(again.record.expires_at - again.record.starts_at, 3_600_000);
    assert!(
        again.units_by_customer.is_empty(),
        "the new round starts with nothing held"
    );
    assert!(
        store
            .stock_check(deal.id)
            .await
            .expect("check")
            .expect("deal")
            .conserved()
    );

    store.close().await;
    test_store.remove().await;
}

#[actix_web::test]
async fn sqlite_story() {
    story(Backend::Sqlite).await;
}

#[actix_web::test]
async fn postgres_story() {
    story(Backend::Postgres).await;
}
