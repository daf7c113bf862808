//! The request span and the access log (issue 9): at `debug`, every request ends with one line
//! naming the method, the route's pattern (never the raw path), the status and the latency.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::engine_process::EngineProcess;
use crate::helpers::{Backend, TestStore};

/// Two requests, two access lines: the route pattern instead of the id, the status, a latency.
#[actix_web::test]
async fn each_request_is_logged_at_debug_with_route_status_and_latency() {
    let store = TestStore::create(Backend::Sqlite).await;
    std::fs::create_dir_all(store.data_dir()).expect("data dir");
    let log_path = store.data_dir().join("engine.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let engine = EngineProcess::start_with(&store, Stdio::from(log), Some("topkart=debug"));
    engine.call("GET", "/livez", None, None).await;
    engine
        .call("GET", "/api/v1/deals/424242?page=2", None, None)
        .await;

    let deadline = Instant::now() + Duration::from_secs(10);
    let access: Vec<String> = loop {
        let text = std::fs::read_to_string(&log_path).expect("read the log");
        let lines: Vec<String> = text
            .lines()
            .filter(|line| line.contains(" access"))
            .map(str::to_owned)
            .collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(access.len(), 2, "{access:?}");
    let livez = &access[0];
    assert!(
        livez.contains("method=GET")
            && livez.contains("route=/livez")
            && livez.contains("status=200"),
        "{livez}"
    );
    let deal = &access[1];
    assert!(
        deal.contains("route=/api/v1/deals/{id}") && deal.contains("status=404"),
        "{deal}"
    );
    assert!(
        !deal.contains("424242"),
        "the id stays out of the log: {deal}"
    );
    for line in &access {
        let latency = line
            .split("latency_us=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok());
        assert!(latency.is_some(), "a latency in microseconds: {line}");
    }
    drop(engine);
    store.remove().await;
}
