//! The request span and the access log: every request runs inside a `request` span (method
//! and route pattern) and ends with one `access` line (status, latency). Both are at `debug`,
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
    if !tracing::enabled!(target: "topkart::access", Level::DEBUG) {
        return next.call(req).await;
    }
    let started = Instant::now();
    let method = req.method().clone();
    // The route's pattern (`/api/v1/orders/{id}`), never the raw path: ids and query strings
    // stay out of the log, and lines group by route.
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "(no route)".to_owned());
    let span = tracing::debug_span!(target: "topkart::access", "request", %method, %route);
    let response = next.call(req).instrument(span.clone()).await;
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
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
