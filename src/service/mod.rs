//! The service layer: the sequences that span the engine and the store, and what to do when a
//! step of one fails. Routes (v1 and the compatibility paths) parse and answer; the work is here.
//!
//! The store is the truth. A change is made in the order that leaves the deal's actor and the
//! store in step if a step fails, undoing what was done; when an undo fails too, or the store
//! took a change that the actor did not, the deal is reloaded from the store
//! ([`reload_deal`]) and the event is logged with its cause, so memory and store never part
//! silently.

pub mod cluster;
mod deal_input;
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

/// How often a write whose commit's answer was lost reads its row back.
const READ_BACK_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// After a write to an order whose commit's answer was lost: reads the order back until the
/// store answers, at most the engine's outcome wait. `Some(Some(order))`: the write was made
/// (`made` says so of the stored order); `Some(None)`: it was not (or the order is gone);
/// `None`: the store did not answer in time. A write whose transaction is still under way on
/// the server when it is read back is not made yet and is reported so; each such write is
/// conditional on the order's previous state, so it lands at most once either way, and the
/// writes read back here (a status, a quantity) leave the deal's memory short of units, never
/// long, when they land after all.
pub async fn read_back_order(
    state: &AppState,
    order_id: i64,
    made: impl Fn(&actors::journal::OrderRecord) -> bool,
) -> Option<Option<actors::journal::OrderRecord>> {
    let deadline = std::time::Instant::now() + state.engine.outcome_wait();
    loop {
        match state.store.order_by_id(order_id).await {
            Ok(stored) => return Some(stored.filter(|stored| made(stored))),
            Err(error) if std::time::Instant::now() >= deadline => {
                tracing::error!(order_id, error = %error_chain(&error), "a write's outcome stays unknown: the store does not answer");
                return None;
            }
            Err(_) => actix_web::rt::time::sleep(READ_BACK_EVERY).await,
        }
    }
}

/// 503: a write whose answer was lost turned out not to have been made.
pub fn write_lost() -> ApiError {
    ApiError::new(
        ErrorCode::StoreUnavailable,
        "the store lost the change; nothing was changed, retry shortly",
    )
}

/// 504: the store did not say in time whether a write was made.
pub fn outcome_unknown() -> ApiError {
    ApiError::new(
        ErrorCode::OutcomeUnknown,
        "the store did not say whether the change was made; read it back before retrying",
    )
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
