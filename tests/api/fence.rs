//! The fence (issue 10, DESIGN.md decision 8): a batch commits only while the store holds the
//! fencing epoch its deal's orders were sold under. When another node takes a deal over (here:
//! its epoch incremented in the store, as a new owner does), this node's next batch for it
//! stores nothing, its orders answer 503 `DEAL_UNAVAILABLE`, the node stops selling the deal at
//! once, and orders of other deals in the same batch are stored all the same; and a paused
//! owner woken after its deal moved is fenced out. Postgres only: cluster mode runs on Postgres.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use serde_json::json;
use sqlx::Connection;

use crate::cluster::{cluster_name, drop_keys, history_of, keep_buying, three_nodes};
use crate::engine_process::{EngineProcess, scenario};
use crate::helpers::{Backend, TestStore, assert_error, spawn, spawn_app};
use crate::history::{History, check};
use crate::ownership::{await_moved, order_retrying, owners};

#[actix_web::test]
async fn a_batch_under_a_stale_epoch_stores_nothing_and_the_deal_stops_selling() {
    let app = spawn_app(Backend::Postgres).await;
    let lost = app.create_deal(50, json!({})).await;
    let kept = app.create_deal(50, json!({})).await;
    let customers = app.customers(20).await;
    let (status, first) = app.order(&customers[0].token, lost).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");

    // Another node takes `lost` over: its epoch moves on in the store.
    let mut conn = sqlx::PgConnection::connect(&app.store_url())
        .await
        .expect("connect");
    sqlx::query("UPDATE deals SET owner_epoch = owner_epoch + 1 WHERE id = $1")
        .bind(lost)
        .execute(&mut conn)
        .await
        .expect("epoch taken");

    // A burst at both deals at once, so that their orders share batches.
    let mut requests = Vec::new();
    for (i, customer) in customers.iter().enumerate() {
        let deal_id = if i % 2 == 0 { lost } else { kept };
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/orders"),
            customer.token.clone(),
        );
        requests.push((
            deal_id,
            spawn(async move {
                let mut response = client
                    .post(url)
                    .insert_header(("Authorization", format!("Bearer {token}")))
                    .send_json(&json!({"deal_id": deal_id}))
                    .await
                    .expect("answered");
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                (response.status(), body)
            }),
        ));
    }
    for (deal_id, request) in requests {
        let (status, body) = request.await.expect("joined");
        if deal_id == lost {
            assert_error(
                &(status, body),
                StatusCode::SERVICE_UNAVAILABLE,
                "DEAL_UNAVAILABLE",
            );
        } else {
            assert_eq!(status, StatusCode::CREATED, "the kept deal sells: {body}");
        }
    }
    assert!(
        app.state
            .engine
            .writer_stats()
            .batches_fenced
            .load(Ordering::Relaxed)
            >= 1,
        "at least one batch met the fence"
    );
    // The node dropped the deal: refused before the store, however often asked.
    let fenced_before = app
        .state
        .engine
        .writer_stats()
        .batches_fenced
        .load(Ordering::Relaxed);
    assert_error(
        &app.order(&customers[2].token, lost).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "DEAL_UNAVAILABLE",
    );
    assert_eq!(
        app.state
            .engine
            .writer_stats()
            .batches_fenced
            .load(Ordering::Relaxed),
        fenced_before,
        "no further batch for the lost deal reached the store"
    );

    let lost_stock = app.stock(lost).await;
    assert_eq!(
        (
            lost_stock.orders_held,
            lost_stock.units_held,
            lost_stock.available_units
        ),
        (1, 1, 49),
        "only the order sold under the old epoch before the takeover is stored"
    );
    let kept_stock = app.stock(kept).await;
    assert_eq!(
        (kept_stock.orders_held, kept_stock.available_units),
        (10, 40)
    );
    assert!(lost_stock.conserved() && kept_stock.conserved());
    drop(conn);
    app.finish().await;
}

/// Every change to a deal is fenced like the writer's batches: once the store holds another
/// epoch for the deal (another node took it over), an admin's change and a cancellation's
/// units going back answer 503 `DEAL_UNAVAILABLE` and change nothing, in the store or in
/// memory. On both stores (a single node keeps its epoch, so the fence never bites it).
async fn changes_to_a_deal_taken_over_elsewhere_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal = app.create_deal(10, json!({})).await;
    let customers = app.customers(1).await;
    let (status, order) = app.order(&customers[0].token, deal).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let before = app
        .store()
        .load_deal(deal)
        .await
        .expect("store")
        .expect("deal");
    app.store().take_deal(deal).await.expect("epoch taken");

    let path = format!("/api/v1/deals/{deal}");
    let admin = Some(app.admin_token.as_str());
    for (method, path, body) in [
        (
            "PATCH",
            path.clone(),
            Some(json!({"product_name": "Renamed"})),
        ),
        ("PATCH", path.clone(), Some(json!({"total_units": 20}))),
        ("PATCH", path.clone(), Some(json!({"total_units": 5}))),
        ("POST", format!("{path}/close"), None),
    ] {
        assert_error(
            &app.call(method, &path, admin, body).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "DEAL_UNAVAILABLE",
        );
    }
    assert_error(
        &app.call(
            "POST",
            &format!("/api/v1/orders/{}/cancel", order["id"]),
            Some(&customers[0].token),
            None,
        )
        .await,
        StatusCode::SERVICE_UNAVAILABLE,
        "DEAL_UNAVAILABLE",
    );
    let after = app
        .store()
        .load_deal(deal)
        .await
        .expect("store")
        .expect("deal");
    assert_eq!(
        after.record,
        actors::deal::DealRecord {
            owner_epoch: before.record.owner_epoch + 1,
            ..before.record.clone()
        },
        "only the epoch moved"
    );
    let stored_order = app
        .store()
        .order_by_id(order["id"].as_i64().expect("id"))
        .await
        .expect("store")
        .expect("order");
    assert_eq!(stored_order.status.as_str(), "OPEN");
    let (status, shown) = app.call("GET", &path, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            &shown["status"],
            &shown["product_name"],
            &shown["total_units"]
        ),
        (
            &json!("ACTIVE"),
            &json!(before.record.product_name),
            &json!(10)
        ),
        "memory as before: {shown}"
    );
    assert!(app.stock(deal).await.conserved());
    app.finish().await;
}

crate::on_both_stores!(changes_to_a_deal_taken_over_elsewhere_change_nothing);

/// The sum of a metric's series (every label set) in a node's `/metrics`.
pub async fn metric_sum(node: &EngineProcess, name: &str) -> f64 {
    let mut response = node
        .client
        .get(format!("{}/metrics", node.base))
        .send()
        .await
        .expect("metrics");
    let text = String::from_utf8(response.body().await.expect("body").to_vec()).expect("text");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once('}')?.1,
                None => rest,
            };
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

/// The value of an unlabelled metric in a node's `/metrics` (the sum of its one series).
pub async fn metric(node: &EngineProcess, name: &str) -> f64 {
    metric_sum(node, name).await
}

/// SIGSTOP the owner of a deal under load for 3× the TTL: another node takes the deal over
/// within the TTL and a second, under a higher epoch, and sells it; SIGCONT: the old owner's
/// pending batch is refused by the fence (counted on its /metrics), its orders answer 503, and
/// every 201 anyone got is a stored order; the store conserves the units.
#[actix_web::test]
async fn a_paused_owner_is_fenced_out_when_it_wakes() {
    let store = TestStore::create(Backend::Postgres).await;
    let cluster = cluster_name();
    let (nodes, admin) = three_nodes(&store, &cluster).await;
    let (deal_id, tokens) = scenario(&nodes[0], 100_000, 64).await;
    let owned = owners(&nodes[0], &admin, 1, Duration::from_secs(5)).await;
    let (owner, old_epoch) = (owned[0].1.clone(), owned[0].2);
    let index = ["n1", "n2", "n3"]
        .iter()
        .position(|n| *n == owner)
        .expect("a node");
    let paused = &nodes[index];
    let other = &nodes[(index + 1) % 3];
    let (status, first, _) = order_retrying(paused, &tokens[0], deal_id).await;
    let mut before_and_after = History::default();
    before_and_after.record_answer(status, &first);

    // 64 buyers order from the owner, each again as soon as answered, until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let buyers = keep_buying(paused, &tokens, deal_id, &stop);
    // Hold the deal's row so that the owner's commit waits in the store while its buyers keep
    // ordering: at the pause its writer has a batch queued, not yet sent.
    let mut lock = sqlx::PgConnection::connect(&store.url)
        .await
        .expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut lock)
        .await
        .expect("begin");
    sqlx::query("SELECT 1 FROM deals WHERE id = $1 FOR UPDATE")
        .bind(deal_id)
        .execute(&mut lock)
        .await
        .expect("row held");
    let mut watch = sqlx::PgConnection::connect(&store.url)
        .await
        .expect("connect");
    let waiting_since = Instant::now();
    loop {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watch)
        .await
        .expect("activity");
        if waiting >= 1 {
            break;
        }
        assert!(
            waiting_since.elapsed() < Duration::from_secs(5),
            "the owner's commit never waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    paused.signal("-STOP");
    let stopped_at = Instant::now();
    // Another node takes the lease within the TTL and a second; its epoch increment waits for
    // the row like the old owner's commit did, until the row is let go.
    loop {
        let now = owners(other, &admin, 1, Duration::from_secs(3)).await;
        if now[0].1 != owner {
            break;
        }
        assert!(
            stopped_at.elapsed() < Duration::from_millis(1_000 + 1_000),
            "the lease did not move: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("row let go");
    let (new_owner, _) = await_moved(
        other,
        &admin,
        &owner,
        old_epoch,
        stopped_at,
        Duration::from_millis(1_000 + 1_500),
    )
    .await;
    eprintln!("moved to {new_owner} after {:?}", stopped_at.elapsed());
    let (status, body, answered_by) = order_retrying(other, &tokens[1], deal_id).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(answered_by.as_deref(), Some(new_owner.as_str()));
    before_and_after.record_answer(status, &body);
    // The fault lasts 3× the TTL in all.
    tokio::time::sleep(Duration::from_millis(3_000).saturating_sub(stopped_at.elapsed())).await;
    paused.signal("-CONT");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut history, answers) = history_of(buyers).await;
    let mut refused_after_wake = 0;
    for (status, _, body) in &answers {
        match *status {
            StatusCode::CREATED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["code"], "DEAL_UNAVAILABLE", "{body}");
                refused_after_wake += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // The old owner's queued batch went to the store on waking, under the old epoch.
    let woke = Instant::now();
    let fenced = loop {
        let fenced = metric(paused, "topkart_writer_batches_fenced_total").await;
        if fenced >= 1.0 || woke.elapsed() > Duration::from_secs(5) {
            break fenced;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "old owner: {} acknowledged, {refused_after_wake} refused, {fenced} fenced batch(es)",
        history.ok.len()
    );
    assert!(fenced >= 1.0, "the old owner's pending batch met the fence");
    history.absorb(before_and_after);
    check(
        "SIGSTOP the owner 3x the TTL",
        &store,
        deal_id,
        100_000,
        &history,
    )
    .await;
    drop(nodes);
    drop_keys(&cluster).await;
    store.remove().await;
}

/// Redis loses the cluster's state mid-burst (every key of the cluster deleted, as FLUSHALL or
/// a restart without persistence would; only this cluster's keys, so tests running beside it
/// keep theirs): ownership is re-established within the TTL and a second under a higher epoch,
/// nothing is oversold, every 201 is a stored order, and the store conserves the units.
#[actix_web::test]
async fn ownership_comes_back_after_redis_loses_everything() {
    let store = TestStore::create(Backend::Postgres).await;
    let cluster = cluster_name();
    let (nodes, admin) = three_nodes(&store, &cluster).await;
    let (deal_id, tokens) = scenario(&nodes[0], 200, 48).await;
    let before = owners(&nodes[0], &admin, 1, Duration::from_secs(5)).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut buyers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        buyers.extend(keep_buying(
            node,
            &tokens[i * 16..(i + 1) * 16],
            deal_id,
            &stop,
        ));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop_keys(&cluster).await;
    let lost_at = Instant::now();
    let after = loop {
        let now = owners(&nodes[0], &admin, 1, Duration::from_secs(3)).await;
        if now[0].2 > before[0].2 {
            break now;
        }
        assert!(
            lost_at.elapsed() < Duration::from_millis(1_000 + 1_000),
            "ownership not back: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    eprintln!(
        "ownership back at {} (epoch {} -> {}) after {:?}",
        after[0].1,
        before[0].2,
        after[0].2,
        lost_at.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (history, answers) = history_of(buyers).await;
    for (status, retry_after, body) in &answers {
        match *status {
            StatusCode::CREATED => {}
            StatusCode::CONFLICT => assert_eq!(body["code"], "SOLD_OUT", "{body}"),
            StatusCode::SERVICE_UNAVAILABLE => assert!(retry_after, "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let stock = check(
        "Redis loses the cluster's keys",
        &store,
        deal_id,
        200,
        &history,
    )
    .await;
    assert_eq!(
        stock.orders_held as usize,
        history.ok.len(),
        "every stored order was acknowledged and every acknowledged one stored: {stock:?}"
    );
    // How the old owner stopped, counted: its renewal found the lease gone, or its round saw
    // another winner and handed the deal over; and any batch it still sent under the old
    // epoch met the fence.
    let (mut stopped, mut fenced) = (0.0, 0.0);
    for node in &nodes {
        stopped += metric_sum(node, "topkart_cluster_lease_renewal_failures_total").await
            + metric(node, "topkart_cluster_handoffs_total").await;
        fenced += metric(node, "topkart_writer_batches_fenced_total").await;
    }
    eprintln!("renewals refused and hand-offs: {stopped}; batches fenced: {fenced}");
    assert!(stopped >= 1.0, "the old owner stopped, counted");
    drop(nodes);
    drop_keys(&cluster).await;
    store.remove().await;
}
