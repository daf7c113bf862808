//! Forwarding (cluster mode): a request that only a deal's owner may decide — an order the
//! node cannot refuse from its mirror, an admin's change to the deal, a cancellation that
//! gives units back — is sent on to the owner, and the owner's answer (status, body,
//! `X-Topkart-Node`, `Retry-After`) goes back as it is. The owner is found in the mirror
//! feed's directory, Redis asked only when the feed has not named one. The caller's identity
//! travels as it came: the owner verifies the same token against the same secret (every node
//! has it), so no internal path and no trust in the forwarding node is needed. One hop at
//! most: a forwarded request carries `X-Topkart-Forwarded`, and a node that is not the owner
//! either answers 503 `DEAL_UNAVAILABLE` instead of forwarding again. An owner that cannot be
//! reached is a 503 too (nothing was sent); one that stops answering after it was asked is a
//! 504 `OUTCOME_UNKNOWN`, since it may have carried the request out (an `Idempotency-Key`
//! makes the retry safe).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};

use crate::error::{ApiError, ErrorCode};
use crate::service::deal_unavailable;
use crate::state::AppState;

/// Marks a request that was forwarded once already.
pub const FORWARDED: &str = "X-Topkart-Forwarded";
/// How long the owner gets to answer a forwarded request.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// Headers of the owner's answer that the caller must see.
const ANSWER_HEADERS: [&str; 3] = ["X-Topkart-Node", "Retry-After", "Content-Type"];

thread_local! {
    /// awc's client is not `Send`: one per HTTP worker, its connections kept alive.
    static CLIENT: awc::Client = awc::Client::builder()
        .timeout(FORWARD_TIMEOUT)
        .connector(awc::Connector::new().limit(256))
        .finish();
}

/// Whether another node decides about `deal_id` (cluster mode, and this node does not sell it
/// right now). A single node decides everything itself.
pub fn decided_elsewhere(state: &AppState, deal_id: i64) -> bool {
    state
        .cluster
        .ownership
        .as_ref()
        .is_some_and(|ownership| ownership.selling(deal_id).is_none())
}

/// Where to send a request about `deal_id`: the owner's base URL when another node owns it and
/// this request has not been forwarded already; `None` when this node decides (it owns the
/// deal, or it is a single node). `Err`: nobody can take it now. The owner is read from the
/// mirror feed's directory (no Redis round trip); Redis is asked only when the feed has not
/// named one yet.
pub async fn owner_elsewhere(
    state: &AppState,
    req: &HttpRequest,
    deal_id: i64,
) -> Result<Option<String>, ApiError> {
    if !decided_elsewhere(state, deal_id) {
        return Ok(None);
    }
    let (Some(ownership), Some(membership)) = (&state.cluster.ownership, &state.cluster.membership)
    else {
        return Ok(None);
    };
    if req.headers().contains_key(FORWARDED) {
        return Err(deal_unavailable());
    }
    let known = state
        .cluster
        .feed
        .as_ref()
        .and_then(|feed| feed.seller_of(deal_id))
        .filter(|(owner, _)| *owner != state.cluster.node_id);
    if let Some((_, url)) = known {
        return Ok(Some(url));
    }
    metrics::counter!("topkart_cluster_owner_lookups_total").increment(1);
    tracing::debug!(deal_id, known = ?state.cluster.feed.as_ref().map(|feed| feed.seller_of(deal_id)), "forward: the feed names no seller; asking Redis");
    let owner = ownership
        .owners(&[deal_id])
        .await
        .ok()
        .and_then(|mut owners| owners.pop())
        .and_then(|(owner, _)| owner);
    let Some(owner) = owner.filter(|owner| *owner != state.cluster.node_id) else {
        return Err(deal_unavailable());
    };
    match membership.url_of(&owner).await {
        Ok(Some(url)) => Ok(Some(url)),
        _ => Err(deal_unavailable()),
    }
}

/// Sends `req` (with `body`, JSON or empty) to the same path at `owner_url` and answers with
/// the owner's answer.
pub async fn forward(owner_url: &str, req: &HttpRequest, body: Bytes) -> HttpResponse {
    metrics::counter!("topkart_cluster_forwards_total").increment(1);
    let url = format!(
        "{owner_url}{}",
        req.uri().path_and_query().map_or("", |p| p.as_str())
    );
    let request = CLIENT.with(|client| {
        let mut request = client
            .request(req.method().clone(), url)
            .insert_header((FORWARDED, "1"));
        for name in ["Authorization", "Idempotency-Key"] {
            if let Some(value) = req.headers().get(name) {
                request = request.insert_header((name, value.clone()));
            }
        }
        if !body.is_empty() {
            request = request.insert_header(("Content-Type", "application/json"));
        }
        request
    });
    let mut answer = match request.send_body(body).await {
        Ok(answer) => answer,
        Err(error) => {
            metrics::counter!("topkart_cluster_forwards_failed_total").increment(1);
            tracing::warn!(%error, owner = owner_url, "forward to the deal's owner failed");
            return actix_web::ResponseError::error_response(&failed(&error));
        }
    };
    let bytes = match answer.body().limit(1 << 20).await {
        Ok(bytes) => bytes,
        Err(error) => {
            metrics::counter!("topkart_cluster_forwards_failed_total").increment(1);
            tracing::warn!(%error, owner = owner_url, "the owner's answer could not be read");
            return actix_web::ResponseError::error_response(&outcome_unknown());
        }
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = HttpResponse::build(status);
    for name in ANSWER_HEADERS {
        if let Some(value) = answer.headers().get(name) {
            response.insert_header((name, value.clone()));
        }
    }
    response.body(bytes)
}

/// What a failed forward tells the caller. Refused before anything was sent (no connection
/// to the owner): nothing was done, 503 `DEAL_UNAVAILABLE`. Anything later — sent, then no
/// answer — may have been carried out by the owner before it stopped answering: 504
/// `OUTCOME_UNKNOWN`, never an answer that claims it was not (a client retries safely with an
/// `Idempotency-Key`).
fn failed(error: &awc::error::SendRequestError) -> ApiError {
    use awc::error::{ConnectError, SendRequestError};
    match error {
        // awc reports a connection closed after the request went out, before the answer's
        // head came back, as `Disconnected`: the owner may have acted on it.
        SendRequestError::Connect(ConnectError::Disconnected) => outcome_unknown(),
        SendRequestError::Connect(_) | SendRequestError::Url(_) => deal_unavailable(),
        _ => outcome_unknown(),
    }
}

fn outcome_unknown() -> ApiError {
    ApiError::new(
        ErrorCode::OutcomeUnknown,
        "the deal's owner stopped answering after it was asked; the request may have been carried out: retry with an Idempotency-Key, or check your orders",
    )
}
