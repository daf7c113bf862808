//! The request span, the access log and the HTTP metrics: every request is counted by route
//! pattern, method and status, and its latency recorded (`/metrics`); it runs inside a `request`
//! span (method and route pattern) and ends with one `access` line (status, latency). Both are at `debug`,
//! so with the default filter they cost one cached level check per request (the order path is
//! measured at tens of thousands a second); `RUST_LOG=topkart=debug` turns them on.

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing::{Instrument, Level};

pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().clone();
    // The route's pattern (`/api/v1/orders/{id}`), never the raw path: ids and query strings
    // stay out of the log and the metrics, and lines group by route.
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "(no route)".to_owned());
    if !tracing::enabled!(target: "topkart::access", Level::DEBUG) {
        let response = next.call(req).await;
        count(&route, &method, &response, started);
        return response;
    }
    let span = tracing::debug_span!(target: "topkart::access", "request", %method, %route);
    let response = next.call(req).instrument(span.clone()).await;
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    count(&route, &method, &response, started);
    let _entered = span.enter();
    match &response {
        Ok(response) => tracing::debug!(
            target: "topkart::access",
            status = response.status().as_u16(),
            latency_us,
            "access"
        ),
        Err(error) => tracing::debug!(target: "topkart::access", %error, latency_us, "access"),
    }
    response
}

/// `topkart_http_requests_total` and `topkart_http_request_duration_seconds` for one request.
fn count<B>(
    route: &str,
    method: &actix_web::http::Method,
    response: &Result<ServiceResponse<B>, Error>,
    started: Instant,
) {
    let status = match response {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.as_response_error().status_code().as_u16(),
    };
    let (route, method) = (route.to_owned(), method.as_str().to_owned());
    metrics::histogram!("topkart_http_request_duration_seconds", "route" => route.clone(), "method" => method.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("topkart_http_requests_total", "route" => route, "method" => method, "status" => status.to_string())
        .increment(1);
}
