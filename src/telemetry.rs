//! Logging and metrics set-up.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`). Safe to call more than once.
pub fn init_logging() {
    init_logging_or("info");
}

/// Logs to stderr, filtered by `RUST_LOG`, else by `default_filter`.
pub fn init_logging_or(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Colours only for a person at a terminal: a log file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// The process-wide Prometheus recorder (a process has one recorder; every app in it shares it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // `_seconds` histograms with buckets (rendered as Prometheus histograms, not
            // summaries), from half a millisecond to ten seconds.
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        10.0,
                    ],
                )
                .expect("the buckets are not empty")
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "topkart_writer_batch_orders".into(),
                    ),
                    &[
                        1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0,
                    ],
                )
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by a test harness): ours still renders.
            let _ = metrics::set_global_recorder(recorder);
            describe_metrics();
            // Series that must stay 0 (or that count rare refusals) are shown from the start:
            // an alert on "drift > 0" needs the series to exist while it is 0.
            metrics::counter!("topkart_stock_drift_units_total").absolute(0);
            for code in ["RATE_LIMITED", "OVERLOADED"] {
                metrics::counter!("topkart_refusals_total", "code" => code).absolute(0);
            }
            handle
        })
        .clone()
}

/// `# HELP` for every series the engine exports (Prometheus' conventions; `promtool check
/// metrics` in `tests/api/metrics.rs`).
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "topkart_http_requests_total",
        "HTTP requests answered, by route pattern, method and status"
    );
    describe_histogram!(
        "topkart_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from a request's arrival to its answer, by route pattern and method"
    );
    describe_counter!(
        "topkart_orders_entered_total",
        "Orders taken into the engine, by path (claimed from the lent counter, or decided by the deal's actor)"
    );
    describe_counter!(
        "topkart_mail_sent_total",
        "E-mail messages delivered to the SMTP server"
    );
    describe_counter!(
        "topkart_mail_failures_total",
        "E-mail deliveries that failed (tried again with back-off)"
    );
    describe_counter!(
        "topkart_waitlist_promotions_total",
        "Waitlist entries served with units that came free"
    );
    describe_counter!(
        "topkart_orders_placed_total",
        "Orders stored and acknowledged with a 201"
    );
    describe_counter!(
        "topkart_orders_refused_total",
        "Orders refused before the deal's actor (reason=mirror: sold out, closed, expired, not started)"
    );
    describe_counter!(
        "topkart_stock_drift_units_total",
        "Units by which a stored deal's available units disagreed with its orders at load (must stay 0)"
    );
    describe_counter!(
        "topkart_deal_reloads_total",
        "Deals reloaded from the store after a failed undo or a change the actor missed"
    );
    describe_counter!(
        "topkart_writer_batches_committed_total",
        "Order batches the writer committed"
    );
    describe_counter!(
        "topkart_writer_orders_committed_total",
        "Orders the writer committed"
    );
    describe_counter!(
        "topkart_writer_batches_failed_total",
        "Order batches whose commit failed (their orders answered 503, units returned)"
    );
    describe_counter!(
        "topkart_writer_orders_failed_total",
        "Orders whose commit failed"
    );
    describe_counter!(
        "topkart_writer_orders_refused_queue_full_total",
        "Orders refused because the writer's queue was full (503 OVERLOADED)"
    );
    describe_counter!(
        "topkart_writer_batches_fenced_total",
        "Order batches the store refused because another node holds the deal's epoch (cluster mode)"
    );
    describe_gauge!(
        "topkart_writer_largest_batch_orders",
        "The largest batch the writer committed so far, in orders"
    );
    describe_gauge!("topkart_live_deals", "Deals this node runs an actor for");
    describe_gauge!(
        "topkart_mail_outbox_rows",
        "E-mail rows owed and not yet sent (read every 5 s)"
    );
    describe_gauge!(
        "topkart_mail_outbox_oldest_age_seconds",
        "How long the oldest owed e-mail row has waited (0 when none is owed)"
    );
    describe_histogram!(
        "topkart_writer_commit_seconds",
        metrics::Unit::Seconds,
        "Time one group commit took (every order queued meanwhile waits for it)"
    );
    describe_histogram!("topkart_writer_batch_orders", "Orders in one group commit");
    describe_gauge!(
        "topkart_writer_queue_orders",
        "Orders waiting for the writer's next batch"
    );
    describe_gauge!(
        "topkart_writer_queue_capacity_orders",
        "Orders that may wait for the writer at most (then 503 OVERLOADED; TOPKART_WRITER_QUEUE_MAX)"
    );
    describe_gauge!(
        "topkart_deal_mailbox_orders",
        "Orders waiting in the deals' actors' mailboxes, all deals together"
    );
    describe_gauge!(
        "topkart_deal_mailbox_fullest_orders",
        "Orders waiting in the fullest deal's mailbox"
    );
    describe_gauge!(
        "topkart_deal_mailbox_capacity_orders",
        "Messages one deal's mailbox holds at most (then 503 OVERLOADED; TOPKART_DEAL_MAILBOX_CAPACITY)"
    );
    describe_counter!(
        "topkart_payments_total",
        "Orders paid from their customer's wallet"
    );
    describe_gauge!(
        "topkart_event_listeners",
        "Open live stock streams (GET /api/v1/deals/{id}/events)"
    );
    describe_counter!(
        "topkart_refusals_total",
        "Requests refused to protect the engine, by code (RATE_LIMITED: a rate limit; OVERLOADED: a full queue, mailbox or listener table)"
    );
    describe_gauge!(
        "process_resident_memory_bytes",
        metrics::Unit::Bytes,
        "Resident memory of the engine's process"
    );
    describe_gauge!(
        "topkart_cluster_leases_held",
        "Deal leases this node holds (cluster mode)"
    );
    describe_counter!(
        "topkart_cluster_leases_acquired_total",
        "Deals this node took over (lease, then epoch)"
    );
    describe_counter!(
        "topkart_cluster_leases_lost_total",
        "Deals this node stopped selling because a lease renewal failed"
    );
    describe_counter!(
        "topkart_cluster_lease_renewal_failures_total",
        "Lease renewals that failed, by reason (taken: no longer ours; failed: Redis did not answer)"
    );
    describe_counter!(
        "topkart_cluster_handoffs_total",
        "Deals this node handed over (placement moved them, or a clean shutdown)"
    );
    describe_counter!(
        "topkart_cluster_heartbeat_failures_total",
        "Heartbeats to Redis that failed"
    );
    describe_counter!(
        "topkart_cluster_forwards_total",
        "Requests forwarded to a deal's owner"
    );
    describe_counter!(
        "topkart_cluster_forwards_failed_total",
        "Forwards that got no answer from the owner (503 or 504)"
    );
    describe_counter!(
        "topkart_cluster_owner_lookups_total",
        "Forwards that asked Redis for the owner because the feed had not named one"
    );
    describe_counter!(
        "topkart_cluster_changes_fenced_total",
        "Deal changes the store refused because another node holds the deal's epoch"
    );
    describe_counter!(
        "topkart_cluster_feed_deals_published_total",
        "Deal states this node published on the mirror feed"
    );
    describe_counter!(
        "topkart_cluster_feed_deals_received_total",
        "Deal states this node received from the mirror feed"
    );
}

/// An error and its sources on one line, for the log.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
