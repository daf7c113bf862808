//! The service layer: the sequences that span the engine and the store, and what to do when a
//! step of one fails. Routes (v1 and the compatibility paths) parse and answer; the work is here.
//!
//! The store is the truth. A change is made in the order that leaves the deal's actor and the
//! store in step if a step fails, undoing what was done; when an undo fails too, or the store
//! took a change that the actor did not, the deal is reloaded from the store
//! ([`reload_deal`]) and the event is logged with its cause, so memory and store never part
//! silently.

pub mod cluster;
pub mod deals;
pub mod feed;
pub mod orders;
pub mod payments;
pub mod waitlist;

use actors::deal::{DealRecord, Reload, Snapshot};
use actors::deal_handle::DealHandle;
use actors::journal::LoadedDeal;
use actors::registry::Location;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::telemetry::error_chain;

/// 503 `DEAL_UNAVAILABLE`: the deal's owner is unknown or moving (cluster mode).
pub fn deal_unavailable() -> ApiError {
    ApiError::deal_unavailable()
}

/// In cluster mode a deal is served only by the node that holds its lease, and only until the
/// lease's deadline minus a margin; any other node answers `DEAL_UNAVAILABLE` (forwarding to
/// the owner is the next step). A single node sells every deal.
pub fn require_owner(state: &AppState, deal_id: i64) -> Result<(), ApiError> {
    match &state.cluster.ownership {
        Some(ownership) if ownership.selling(deal_id).is_none() => Err(deal_unavailable()),
        _ => Ok(()),
    }
}

/// The deal's handle on this node, or 404.
pub fn handle_of(state: &AppState, deal_id: i64) -> Result<DealHandle, ApiError> {
    require_owner(state, deal_id)?;
    match state.engine.registry().locate(deal_id) {
        Some(Location::Local(handle)) => Ok(handle),
        // A single node knows only its own deals; cluster mode answers these.
        Some(Location::Remote(_) | Location::Unavailable) => Err(deal_unavailable()),
        None => Err(ApiError::not_found("deal")),
    }
}

pub fn engine_gone(_: actix::MailboxError) -> ApiError {
    ApiError::new(
        ErrorCode::Overloaded,
        "the deal's engine is busy or stopping; retry shortly",
    )
}

pub async fn snapshot(handle: &DealHandle) -> Result<DealRecord, ApiError> {
    handle.addr.send(Snapshot).await.map_err(engine_gone)
}

/// Starts the actor of a deal read from the store: selling it on a single node, following
/// it in cluster mode (the cluster rounds decide which node sells it).
pub fn start_deal(state: &AppState, loaded: LoadedDeal) {
    if state.cluster.is_cluster() {
        state.engine.follow(loaded.record);
    } else {
        state.engine.launch(loaded);
    }
}

/// Makes the deal's actor hold the deal as stored, after `what` left the two apart (an undo
/// that failed, or a change the store took and the actor did not). A live actor takes the
/// stored deal in (`Reload`); one that cannot be reached is replaced by a new one started from
/// the store. Returns the deal as it now stands, or `None` when the store could not be read
/// either (then the next start re-derives it; logged).
pub async fn reload_deal(state: &AppState, deal_id: i64, what: &str) -> Option<DealRecord> {
    reload(state, deal_id, what, false).await
}

/// Reloads the deal as [`reload_deal`] does; `take_over`: this node has just taken the deal's
/// epoch and sells it from now on (cluster mode).
pub async fn reload(
    state: &AppState,
    deal_id: i64,
    what: &str,
    take_over: bool,
) -> Option<DealRecord> {
    if !take_over {
        metrics::counter!("topkart_deal_reloads_total").increment(1);
    }
    let loaded = match state.store.load_deal(deal_id).await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => {
            tracing::error!(deal_id, what, "deal to reload is not in the store");
            return None;
        }
        Err(error) => {
            tracing::error!(
                deal_id,
                what,
                error = %error_chain(&error),
                "could not reload the deal from the store; memory may differ from the store until the next start"
            );
            return None;
        }
    };
    let record = loaded.record.clone();
    let reloaded = match state.engine.registry().get(deal_id) {
        Some(handle) => handle
            .addr
            .send(Reload {
                loaded: loaded.clone(),
                take_over,
            })
            .await
            .is_ok(),
        None => false,
    };
    if !reloaded {
        // The actor is gone: a new one takes the deal over from the store.
        if take_over {
            state.engine.launch(loaded);
        } else {
            start_deal(state, loaded);
        }
    }
    if take_over {
        tracing::debug!(
            deal_id,
            replaced_actor = !reloaded,
            "deal loaded for a takeover"
        );
    } else {
        tracing::warn!(
            deal_id,
            what,
            replaced_actor = !reloaded,
            "deal reloaded from the store"
        );
    }
    Some(record)
}
