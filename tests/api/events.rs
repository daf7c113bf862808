//! Live stock (`GET /api/v1/deals/{id}/events`): 1,000 listeners watch a burst sell a deal out;
//! each sees the sell-out promptly, in events that only ever fall, at most ten a second; the
//! listener cap, unknown deals, closing, and listeners going away.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, spawn, spawn_app, spawn_app_with};

const LISTENERS: usize = 1_000;

/// One listener's connection to the stream, read event by event.
struct Listener {
    response: awc::ClientResponse,
    buffer: String,
}

impl Listener {
    async fn open(client: &awc::Client, app: &TestApp, deal_id: i64) -> Self {
        let response = client
            .get(app.url(&format!("/api/v1/deals/{deal_id}/events")))
            .send()
            .await
            .expect("stream opened");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event's data (`None` when the stream ends); comments and `retry:` are skipped.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let data = event
                    .lines()
                    .find_map(|line| line.strip_prefix("data: "))
                    .map(|data| serde_json::from_str(data).expect("event data is JSON"));
                match data {
                    Some(data) => return Some(data),
                    None => continue,
                }
            }
            let chunk = self.response.next().await?.ok()?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

fn stream_client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .connector(awc::Connector::new().limit(LISTENERS + 10))
        .finish()
}

/// 1,000 listeners hold the stream while 1,000 orders sell 100 units: every listener sees
/// SOLD_OUT with 0 units within a second of the last 201, its units only ever fall, and it got
/// at most one event per 100 ms (coalesced, however fast the deal sold).
async fn a_thousand_listeners_see_the_sell_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let deal_id = app.create_deal(100, json!({})).await;
    let customers = app.customers(100).await;
    let client = stream_client();

    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(LISTENERS);
    let mut listeners = Vec::with_capacity(LISTENERS);
    for _ in 0..LISTENERS {
        let mut listener = Listener::open(&client, &app, deal_id).await;
        let ready = ready_tx.clone();
        listeners.push(spawn(async move {
            let first = listener.next().await.expect("a first event");
            assert_eq!(first["deal_id"], deal_id);
            assert_eq!(first["available_units"], 100, "{first}");
            let opened = Instant::now();
            ready.send(()).await.expect("test waits");
            let mut units = vec![100];
            let mut events = 1;
            while let Some(event) = listener.next().await {
                events += 1;
                units.push(event["available_units"].as_i64().expect("units"));
                if event["status"] == "SOLD_OUT" {
                    assert_eq!(event["claimed_percent"], 100.0, "{event}");
                    return (Instant::now(), opened, events, units);
                }
            }
            panic!("the stream ended before the sell-out: {units:?}");
        }));
    }
    for _ in 0..LISTENERS {
        actix_web::rt::time::timeout(Duration::from_secs(30), ready_rx.recv())
            .await
            .expect("every listener got its first event")
            .expect("listener alive");
    }
    assert_eq!(app.state.live.listeners(), LISTENERS);

    let mut orders = Vec::new();
    for i in 0..1_000 {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/orders"),
            customers[i % 100].token.clone(),
        );
        orders.push(spawn(async move {
            let response = client
                .post(url)
                .insert_header(("Authorization", format!("Bearer {token}")))
                .send_json(&json!({"deal_id": deal_id}))
                .await
                .expect("order sent");
            (response.status(), Instant::now())
        }));
    }
    let mut last_created = None;
    let mut created = 0;
    for order in orders {
        let (status, at) = order.await.expect("order task");
        if status == StatusCode::CREATED {
            created += 1;
            last_created = last_created.max(Some(at));
        }
    }
    assert_eq!(created, 100);
    let last_created = last_created.expect("orders were created");

    let mut slowest = Duration::ZERO;
    for listener in listeners {
        let (seen, opened, events, units) =
            actix_web::rt::time::timeout(Duration::from_secs(10), listener)
                .await
                .expect("every listener saw the sell-out")
                .expect("listener task");
        slowest = slowest.max(seen.saturating_duration_since(last_created));
        assert!(
            units.windows(2).all(|w| w[1] <= w[0]),
            "units only fall: {units:?}"
        );
        assert_eq!(units.last(), Some(&0));
        let allowed = seen.duration_since(opened).as_millis() / 100 + 2;
        assert!(
            events as u128 <= allowed,
            "{events} events in {:?}: more than ten a second",
            seen.duration_since(opened)
        );
    }
    println!("1,000 listeners: the last saw the sell-out {slowest:?} after the last 201");
    assert!(
        slowest < Duration::from_secs(1),
        "a listener saw the sell-out {slowest:?} after the last 201"
    );
    app.finish().await;
}

/// The stream: 404 for an unknown deal, the listener cap (503 OVERLOADED, counted), a closed
/// deal shows CLOSED, and listeners that hang up are let go.
async fn the_stream_refuses_and_follows_what_it_should(backend: Backend) {
    let test_store = crate::helpers::TestStore::create(backend).await;
    let app = spawn_app_with(test_store, |settings| settings.event_listeners_max = 2).await;
    let deal_id = app.create_deal(10, json!({})).await;
    let (status, body) = app.get("/api/v1/deals/999999/events", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app.get("/api/v1/deals/x/events", None).await;
    assert!(status.is_client_error(), "{status} {body}");

    let client = stream_client();
    let mut first = Listener::open(&client, &app, deal_id).await;
    let second = Listener::open(&client, &app, deal_id).await;
    let refused = app
        .get(&format!("/api/v1/deals/{deal_id}/events"), None)
        .await;
    assert_error(&refused, StatusCode::SERVICE_UNAVAILABLE, "OVERLOADED");
    assert!(
        refused.1["message"]
            .as_str()
            .is_some_and(|m| m.contains("TOPKART_EVENT_LISTENERS_MAX")),
        "{}",
        refused.1
    );

    // An admin opens or closes the deal.
    let set = |action: &'static str| {
        let app = &app;
        async move {
            let (status, _) = app
                .post(
                    &format!("/api/v1/deals/{deal_id}/{action}"),
                    Some(&app.admin_token),
                    json!({}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{action}");
        }
    };
    assert_eq!(first.next().await.expect("first event")["status"], "ACTIVE");
    set("close").await;
    let closed = actix_web::rt::time::timeout(Duration::from_secs(5), first.next())
        .await
        .expect("the close arrives")
        .expect("an event");
    assert_eq!(closed["status"], "CLOSED", "{closed}");

    // Both hang up. A server learns that a peer left when it next writes to it, so the deal
    // is opened and closed again until their places are given back (polled, bounded); then a
    // new listener fits. (A quiet stream writes a keep-alive comment every 15 s, which finds
    // a departed listener the same way.)
    drop(first);
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut toggles = 0;
    while app.state.live.listeners() > 0 {
        assert!(
            Instant::now() < deadline,
            "listeners not let go: {}",
            app.state.live.listeners()
        );
        set(if toggles % 2 == 0 { "open" } else { "close" }).await;
        toggles += 1;
        actix_web::rt::time::sleep(Duration::from_millis(150)).await;
    }
    if toggles % 2 == 1 {
        set("close").await;
    }
    let mut again = Listener::open(&client, &app, deal_id).await;
    assert_eq!(again.next().await.expect("event")["status"], "CLOSED");
    app.finish().await;
}

/// The node's write budget: 50 listeners within 100 event writes a second are each sent an
/// event at most every half second, however fast the deal changes.
#[actix_web::test]
async fn many_listeners_share_the_nodes_write_budget() {
    let test_store = crate::helpers::TestStore::create(Backend::Sqlite).await;
    let app = spawn_app_with(test_store, |settings| {
        settings.event_writes_per_sec = 100;
        settings.rate_limits = "off".into();
    })
    .await;
    let deal_id = app.create_deal(100_000, json!({})).await;
    let customer = app.customers(1).await.remove(0);
    let client = stream_client();
    let mut listeners = Vec::new();
    for _ in 0..50 {
        let mut listener = Listener::open(&client, &app, deal_id).await;
        listener.next().await.expect("the first event");
        listeners.push(listener);
    }
    assert_eq!(app.state.live.spacing(), Duration::from_millis(500));
    // Orders for two seconds: the deal changes every few milliseconds.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let (status, _) = app.order(&customer.token, deal_id).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    drop(client);
    // Whatever arrived within the two seconds and a little after (one deadline for all).
    let deadline = tokio::time::Instant::now() + Duration::from_millis(700);
    let mut counts = Vec::new();
    for mut listener in listeners {
        let mut events = 0;
        while let Ok(Some(_)) = tokio::time::timeout_at(deadline, listener.next()).await {
            events += 1;
        }
        counts.push(events);
    }
    let most = counts.iter().copied().max().unwrap_or(0);
    assert!(
        counts.iter().all(|n| *n >= 1),
        "every listener heard of the sales: {counts:?}"
    );
    assert!(most <= 6, "at most one event per 500 ms: {counts:?}");
    app.finish().await;
}

crate::on_both_stores!(
    a_thousand_listeners_see_the_sell_out,
    the_stream_refuses_and_follows_what_it_should
);

/// Every event is as the OpenAPI document describes it — named `stock`, its `data` a JSON
/// object with exactly the properties of the `StockEvent` schema — and a stream ends once it
/// has lasted `TOPKART_EVENT_STREAM_MAX_SECS` (the client reconnects after its `retry` hint).
#[actix_web::test]
async fn events_are_as_documented_and_a_stream_ends_after_its_bound() {
    let test_store = crate::helpers::TestStore::create(Backend::Sqlite).await;
    let app = spawn_app_with(test_store, |settings| settings.event_stream_max_secs = 1).await;
    let deal_id = app.create_deal(10, json!({})).await;
    let (_, document) = app.get("/api/v1/openapi.json", None).await;
    let documented: std::collections::BTreeSet<String> =
        document["components"]["schemas"]["StockEvent"]["properties"]
            .as_object()
            .expect("StockEvent is documented")
            .keys()
            .cloned()
            .collect();
    let names = &document["components"]["schemas"]["StockEventName"]["enum"];
    assert_eq!(names, &json!(["stock"]), "the events' one name");

    let client = stream_client();
    let mut response = client
        .get(app.url(&format!("/api/v1/deals/{deal_id}/events")))
        .send()
        .await
        .expect("stream opened");
    let opened = Instant::now();
    let mut text = String::new();
    // Read to the end: the stream must end by itself, well within the client's bound.
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = response.next().await {
            text.push_str(std::str::from_utf8(&chunk.expect("chunk")).expect("UTF-8"));
        }
    })
    .await;
    assert!(read.is_ok(), "the stream ended by itself: {text}");
    assert!(
        opened.elapsed() >= Duration::from_millis(900),
        "it lasted its bound"
    );
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|event| event.contains("data: "))
        .collect();
    assert!(!events.is_empty(), "{text}");
    for event in events {
        let name = event.lines().find_map(|line| line.strip_prefix("event: "));
        assert_eq!(name, Some("stock"), "{event}");
        let data: Value = event
            .lines()
            .find_map(|line| line.strip_prefix("data: "))
            .map(|data| serde_json::from_str(data).expect("JSON"))
            .expect("data");
        let keys: std::collections::BTreeSet<String> = data
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, documented, "{event}");
    }
    app.finish().await;
}
