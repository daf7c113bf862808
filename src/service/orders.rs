//! Orders as the engine and the store see them together: place one (idempotency key, the
//! deal's mirror, its actor or lent counter, the writer's commit), read one as its owner or an
//! admin, and move one through its statuses (a cancellation's units back to the deal at once).

use actors::clock::now_ms;
use actors::deal::{PlaceError, Release};
use actors::deal_handle::Intake;
use actors::journal::{OrderRecord, OrderStatus};

use super::reload_deal;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::idempotency::{Fingerprint, IDEMPOTENCY_TTL_MS, KeyClaim};
use crate::state::AppState;
use crate::store::{StoreError, Transition};

/// Units one order may ask for at most.
pub use actors::limits::ORDER_QUANTITY_MAX as QUANTITY_MAX;

/// Places an order for the caller, honouring the idempotency key.
pub async fn place_order(
    state: &AppState,
    caller: Caller,
    deal_id: i64,
    quantity: i64,
    key: Option<String>,
) -> Result<OrderRecord, ApiError> {
    if caller.is_admin() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "orders are placed by customers",
        ));
    }
    let customer_key = caller.user_id.to_string();
    state.limits.attempt(
        crate::rate_limit::Kind::OrderPerCustomer,
        &customer_key,
        now_ms(),
    )?;
    if !(1..=QUANTITY_MAX).contains(&quantity) {
        return Err(ApiError::field(
            "quantity",
            format!("must be from 1 to {QUANTITY_MAX}"),
        ));
    }
    let Some(key) = key else {
        return reserve_and_store(state, caller, deal_id, quantity, None).await;
    };
    let fingerprint = Fingerprint { deal_id, quantity };
    let now = now_ms();
    match state
        .idempotency
        .claim(caller.user_id, &key, fingerprint, now)
    {
        KeyClaim::Replay(outcome) => return outcome,
        KeyClaim::Mismatch => return Err(mismatch()),
        KeyClaim::InProgress => {
            return Err(ApiError::new(
                ErrorCode::IdempotencyInProgress,
                "a request with this Idempotency-Key is still being decided",
            ));
        }
        KeyClaim::Full => {
            return Err(ApiError::new(
                ErrorCode::Overloaded,
                "too many idempotency keys in flight; retry shortly",
            ));
        }
        KeyClaim::Fresh => {}
    }
    // After a restart the memory is empty, but a stored order still answers for its key.
    let outcome = match state
        .store
        .order_by_idempotency_key(caller.user_id, &key, now - IDEMPOTENCY_TTL_MS)
        .await
    {
        Ok(Some(order)) if order.deal_id == deal_id && order.quantity == quantity => Ok(order),
        Ok(Some(_)) => Err(mismatch()),
        Ok(None) => reserve_and_store(state, caller, deal_id, quantity, Some(key.clone())).await,
        Err(error) => Err(error.into()),
    };
    state
        .idempotency
        .settle(caller.user_id, &key, fingerprint, &outcome, now_ms());
    outcome
}

/// Cluster mode, on a node that does not sell the deal: refuses here what its owner would
/// refuse at once — an admin, a quantity out of range, and (unless the order carries an
/// `Idempotency-Key`, whose earlier outcome only the owner can replay) a deal that this
/// node's mirror shows sold out, closed, expired or not started. A refusal here counts
/// against the customer's rate limit as one at the owner would.
pub fn refuse_doomed(
    state: &AppState,
    caller: Caller,
    deal_id: i64,
    quantity: i64,
    keyed: bool,
) -> Result<(), ApiError> {
    if caller.is_admin() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "orders are placed by customers",
        ));
    }
    if !(1..=QUANTITY_MAX).contains(&quantity) {
        return Err(ApiError::field(
            "quantity",
            format!("must be from 1 to {QUANTITY_MAX}"),
        ));
    }
    if keyed {
        return Ok(());
    }
    let refusal = state
        .engine
        .registry()
        .with(deal_id, |handle| handle.mirror.refusal(quantity, now_ms()))
        .flatten();
    let Some(refusal) = refusal else {
        return Ok(());
    };
    state.limits.attempt(
        crate::rate_limit::Kind::OrderPerCustomer,
        &caller.user_id.to_string(),
        now_ms(),
    )?;
    metrics::counter!("topkart_orders_refused_total", "reason" => "mirror").increment(1);
    Err(PlaceError::from(refusal).into())
}

fn mismatch() -> ApiError {
    ApiError::new(
        ErrorCode::IdempotencyMismatch,
        "this Idempotency-Key was used with a different request",
    )
}

/// The order path: the mirror refuses doomed requests without queuing; the deal's actor decides
/// the rest; the answer arrives once the writer's batch holding the order has committed.
async fn reserve_and_store(
    state: &AppState,
    caller: Caller,
    deal_id: i64,
    quantity: i64,
    key: Option<String>,
) -> Result<OrderRecord, ApiError> {
    super::require_owner(state, deal_id)?;
    // Synchronous under the registry's shard lock: refused from the mirror, claimed, or handed
    // to the deal's actor; only the wait for the commit happens outside.
    let entered = state.engine.registry().with(deal_id, |handle| {
        if let Some(refusal) = handle.mirror.refusal(quantity, now_ms()) {
            metrics::counter!("topkart_orders_refused_total", "reason" => "mirror").increment(1);
            return Err(PlaceError::from(refusal));
        }
        handle.place(caller.user_id, quantity, key)
    });
    let (path, outcome) = entered.ok_or_else(|| ApiError::not_found("deal"))??;
    let path = match path {
        Intake::Claimed => "claimed",
        Intake::Actor => "actor",
    };
    metrics::counter!("topkart_orders_entered_total", "path" => path).increment(1);
    let order = outcome.await.map_err(|_| PlaceError::ShuttingDown)??;
    metrics::counter!("topkart_orders_placed_total").increment(1);
    Ok(order)
}

fn visible_to(order: OrderRecord, caller: Caller) -> Result<OrderRecord, ApiError> {
    // Another customer's order answers exactly like a missing one.
    if caller.is_admin() || order.customer_id == caller.user_id {
        Ok(order)
    } else {
        Err(ApiError::not_found("order"))
    }
}

pub async fn order_for(
    state: &AppState,
    caller: Caller,
    order_id: i64,
) -> Result<OrderRecord, ApiError> {
    let order = state
        .store
        .order_by_id(order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    visible_to(order, caller)
}

/// Moves an order to `next`; a cancellation's units go back to the deal's actor at once. In
/// cluster mode a cancellation is the deal owner's to make (the route forwards it there): the
/// store takes the units back only under the owner's fencing epoch, and the owner's actor
/// takes them back in memory.
pub async fn change_status(
    state: &AppState,
    order: &OrderRecord,
    next: OrderStatus,
) -> Result<OrderRecord, ApiError> {
    let order_id = order.id;
    let epoch = if next == OrderStatus::Cancelled {
        super::require_owner(state, order.deal_id)?;
        match state.engine.registry().get(order.deal_id) {
            Some(handle) => handle.mirror.owner_epoch(),
            // A deal set aside at start (malformed) has no actor: the store's epoch stands.
            None => state.store.deal_epoch(order.deal_id).await?.unwrap_or(0),
        }
    } else {
        0
    };
    let now = now_ms();
    let transition = match state
        .store
        .transition_order(order_id, next, epoch, now)
        .await
    {
        Err(StoreError::OutcomeUnknown { cause, .. }) => {
            settle_transition(state, order, next, now, &cause).await?
        }
        other => other?,
    };
    match transition {
        Transition::NotFound => Err(ApiError::not_found("order")),
        Transition::Refused { current }
            if current.status == next && next == OrderStatus::Cancelled =>
        {
            Ok(current)
        }
        Transition::Refused { current }
            if next == OrderStatus::Approved
                && current.status == OrderStatus::Open
                && current.payment_status == actors::journal::PaymentStatus::Unpaid =>
        {
            Err(ApiError::new(
                ErrorCode::PaymentRequired,
                "the order must be paid before it is approved",
            ))
        }
        Transition::Refused { current } => Err(ApiError::new(
            ErrorCode::InvalidTransition,
            format!(
                "an order that is {} cannot become {}",
                current.status.as_str(),
                next.as_str()
            ),
        )),
        Transition::Changed { order, restocked } => {
            if restocked {
                if let Some(handle) = state.engine.registry().get(order.deal_id) {
                    let release = Release {
                        customer_id: order.customer_id,
                        quantity: order.quantity,
                        round: order.round,
                        order_id: Some(order.id),
                    };
                    if let Err(mailbox) = handle.addr.send(release).await {
                        tracing::error!(
                            order_id,
                            %mailbox,
                            "a cancelled order's units did not reach the deal's actor"
                        );
                        reload_deal(state, order.deal_id, "a cancellation").await;
                    }
                }
            }
            tracing::info!(order_id, status = next.as_str(), "order status changed");
            Ok(order)
        }
    }
}

/// A status change whose commit's answer was lost: the order read back says whether it was
/// made (in `next`, with `now` — the instant this change wrote — as its last update); then it
/// stands as `Changed` (a cancellation's units come back to the actor as usual). Not made:
/// 503, nothing changed. No answer in time: 504, and the deal's memory may lack the units of a
/// cancellation that was made until the deal is next loaded (never the other way round: never
/// units the store does not have).
async fn settle_transition(
    state: &AppState,
    order: &OrderRecord,
    next: OrderStatus,
    now: actors::Millis,
    cause: &str,
) -> Result<Transition, ApiError> {
    tracing::warn!(
        order_id = order.id,
        status = next.as_str(),
        cause,
        "a status change's commit outcome is unknown; reading the order back"
    );
    let made = |stored: &OrderRecord| stored.status == next && stored.updated_at == now;
    match super::read_back_order(state, order.id, made).await {
        Some(Some(stored)) => Ok(Transition::Changed {
            order: stored,
            restocked: next == OrderStatus::Cancelled && order.status.holds_units(),
        }),
        Some(None) => Err(super::write_lost()),
        None => Err(super::outcome_unknown()),
    }
}
