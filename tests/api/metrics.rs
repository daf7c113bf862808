//! `/metrics` by Prometheus' conventions (issue 11): `promtool check metrics` finds nothing to
//! say (every series has `# HELP`, counters end in `_total`, latencies are `_seconds`
//! histograms), and HTTP requests are counted by route pattern and status. `.ci/run`
//! installs promtool (Debian's `prometheus`).

use std::io::Write;
use std::process::{Command, Stdio};

use actix_web::http::StatusCode;

use crate::helpers::{Backend, spawn_app};

#[actix_web::test]
async fn metrics_pass_promtool_and_count_requests_by_route() {
    let app = spawn_app(Backend::Sqlite).await;
    let deal = app.create_deal(10, serde_json::json!({})).await;
    let customer = &app.customers(1).await[0];
    let (status, _) = app.order(&customer.token, deal).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app.call("GET", "/api/v1/deals/999999", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let mut response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    let text = String::from_utf8(response.body().await.expect("body").to_vec()).expect("text");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian's prometheus package; .ci/run installs it)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("written");
    let checked = promtool.wait_with_output().expect("promtool ends");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        checked.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n{text}"
    );
    // The recorder is the process's: other tests running beside this one count too, so the
    // series are looked for, not their exact values.
    for expected in [
        r#"topkart_http_requests_total{route="/api/v1/orders",method="POST",status="201"} "#,
        r#"topkart_http_requests_total{route="/api/v1/deals/{id}",method="GET",status="404"} "#,
        r#"topkart_http_request_duration_seconds_bucket{route="/api/v1/orders",method="POST",le="10"} "#,
        "topkart_writer_orders_committed_total ",
        "# HELP topkart_orders_placed_total ",
        // The writer's batch sizes and commit times, as histograms.
        r#"topkart_writer_batch_orders_bucket{le="1"} "#,
        r#"topkart_writer_commit_seconds_bucket{le="10"} "#,
        // Queue and mailbox fill, against their capacities.
        "topkart_writer_queue_orders ",
        "topkart_writer_queue_capacity_orders ",
        "topkart_deal_mailbox_orders ",
        "topkart_deal_mailbox_fullest_orders ",
        "topkart_deal_mailbox_capacity_orders ",
        "topkart_event_listeners ",
        // Refusals that protect the engine, shown at 0 before any happens.
        r#"topkart_refusals_total{code="RATE_LIMITED"} "#,
        r#"topkart_refusals_total{code="OVERLOADED"} "#,
        // Conservation drift: must stay 0, so it must be there at 0.
        "topkart_stock_drift_units_total 0",
        "process_resident_memory_bytes ",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
    app.finish().await;
}
