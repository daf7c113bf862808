//! `/livez`, `/readyz`, `/metrics`.

use std::sync::atomic::Ordering;

use actix_web::HttpResponse;

use crate::error::{ApiError, ErrorCode};
use crate::state::State;

pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready when not draining, the store answers and the order writer runs.
pub async fn readyz(state: State) -> Result<HttpResponse, ApiError> {
    if state.is_draining() {
        return Err(ApiError::new(ErrorCode::Overloaded, "shutting down"));
    }
    if !state.engine.writer_running() {
        return Err(ApiError::new(
            ErrorCode::StoreUnavailable,
            "the order writer is not running",
        ));
    }
    if let Some(membership) = &state.cluster.membership {
        if let Err(error) = membership.ping().await {
            tracing::warn!(%error, "readiness: Redis does not answer");
            return Err(ApiError::new(
                ErrorCode::StoreUnavailable,
                "Redis does not answer (cluster mode)",
            ));
        }
    }
    if let Err(error) = state.store.ping().await {
        tracing::warn!(error = %crate::telemetry::error_chain(&error), "readiness: store does not answer");
        return Err(ApiError::new(
            ErrorCode::StoreUnavailable,
            "the store does not answer",
        ));
    }
    // Malformed deals do not make the node unready (every other deal sells), but they are
    // named here for whoever looks, with the column and the problem.
    let status = if state.malformed_deals.is_empty() {
        "ready"
    } else {
        "degraded"
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": status,
        "store": state.store.backend_name(),
        "deals": state.engine.registry().len(),
        "malformed_deals": state.malformed_deals,
    })))
}

/// Prometheus text format (`promtool check metrics` clean: `_total` counters, `# HELP` on every
/// series, `_seconds` histograms). The writer's counters are copied in at scrape time.
pub async fn metrics(state: State) -> HttpResponse {
    let stats = state.engine.writer_stats();
    let counter = |name: &'static str, value: u64| metrics::counter!(name).absolute(value);
    counter(
        "topkart_writer_batches_committed_total",
        stats.batches_committed.load(Ordering::Relaxed),
    );
    counter(
        "topkart_writer_orders_committed_total",
        stats.orders_committed.load(Ordering::Relaxed),
    );
    counter(
        "topkart_writer_batches_failed_total",
        stats.batches_failed.load(Ordering::Relaxed),
    );
    counter(
        "topkart_writer_orders_failed_total",
        stats.orders_failed.load(Ordering::Relaxed),
    );
    counter(
        "topkart_writer_orders_refused_queue_full_total",
        stats.orders_refused_queue_full.load(Ordering::Relaxed),
    );
    counter(
        "topkart_writer_batches_fenced_total",
        stats.batches_fenced.load(Ordering::Relaxed),
    );
    let gauge = |name: &'static str, value: u64| metrics::gauge!(name).set(value as f64);
    gauge(
        "topkart_writer_largest_batch_orders",
        stats.largest_batch.load(Ordering::Relaxed),
    );
    gauge("topkart_live_deals", state.engine.registry().len() as u64);
    let (queued, queue_max) = state.engine.writer_queue_fill();
    gauge("topkart_writer_queue_orders", queued as u64);
    gauge("topkart_writer_queue_capacity_orders", queue_max as u64);
    let (mut fullest, mut in_mailboxes) = (0, 0);
    for (_, mirror) in state.engine.registry().mirrors() {
        let queued = mirror.queued_orders().max(0) as u64;
        fullest = fullest.max(queued);
        in_mailboxes += queued;
    }
    gauge("topkart_deal_mailbox_orders", in_mailboxes);
    gauge("topkart_deal_mailbox_fullest_orders", fullest);
    gauge(
        "topkart_deal_mailbox_capacity_orders",
        state.engine.deal_mailbox_capacity() as u64,
    );
    gauge("topkart_event_listeners", state.live.listeners() as u64);
    if let Some(resident) = resident_memory_bytes() {
        gauge("process_resident_memory_bytes", resident);
    }
    if let Some(ownership) = &state.cluster.ownership {
        gauge(
            "topkart_cluster_leases_held",
            ownership.held_ids().len() as u64,
        );
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// This process's resident memory (Linux: `/proc/self/statm`, in pages of 4 KiB), the
/// Prometheus convention's `process_resident_memory_bytes`.
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
