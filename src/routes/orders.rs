//! Orders: place (through the deal's actor and the writer: 201 only after commit), get, list,
//! cancel, and admin status changes.

use actix_web::{HttpRequest, HttpResponse, web};
use actors::clock::now_ms;
use actors::deal::{PlaceError, Release};
use actors::deal_handle::Intake;
use actors::journal::{OrderRecord, OrderStatus};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{Admin, Caller};
use crate::error::{ApiError, ErrorCode};
use crate::idempotency::{Fingerprint, IDEMPOTENCY_TTL_MS, KeyClaim};
use crate::json::JsonBody;
use crate::routes::page::{PageQuery, PageRequest};
use crate::routes::path_id;
use crate::state::State;
use crate::store::{OrderFilter, Transition};
use crate::wire::{OrderView, Page};

/// Units one order may ask for at most.
pub use actors::limits::ORDER_QUANTITY_MAX as QUANTITY_MAX;
/// Longest idempotency key accepted.
const IDEMPOTENCY_KEY_MAX_CHARS: usize = 255;

#[derive(Debug, Deserialize, ToSchema)]
pub struct PlaceOrderRequest {
    pub deal_id: i64,
    /// At least 1; default 1.
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 10_000)]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StatusChange {
    /// OPEN, APPROVED, CANCELLED or FULFILLED.
    pub status: String,
}

/// The `Idempotency-Key` header, checked.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    let key = value.to_str().map(str::trim).unwrap_or_default();
    if key.is_empty()
        || key.chars().count() > IDEMPOTENCY_KEY_MAX_CHARS
        || key.chars().any(char::is_control)
    {
        return Err(ApiError::field(
            "Idempotency-Key",
            format!("must be 1–{IDEMPOTENCY_KEY_MAX_CHARS} printable characters"),
        ));
    }
    Ok(Some(key.to_owned()))
}

/// Places an order for the caller, honouring the idempotency key.
pub async fn place_order(
    state: &State,
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

fn mismatch() -> ApiError {
    ApiError::new(
        ErrorCode::IdempotencyMismatch,
        "this Idempotency-Key was used with a different request",
    )
}

/// The order path: the mirror refuses doomed requests without queuing; the deal's actor decides
/// the rest; the answer arrives once the writer's batch holding the order has committed.
async fn reserve_and_store(
    state: &State,
    caller: Caller,
    deal_id: i64,
    quantity: i64,
    key: Option<String>,
) -> Result<OrderRecord, ApiError> {
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
    state: &State,
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

/// Moves an order to `next`; a cancellation's units go back to the deal's actor at once.
pub async fn change_status(
    state: &State,
    order_id: i64,
    next: OrderStatus,
) -> Result<OrderRecord, ApiError> {
    match state
        .store
        .transition_order(order_id, next, now_ms())
        .await?
    {
        Transition::NotFound => Err(ApiError::not_found("order")),
        Transition::Refused { current }
            if current.status == next && next == OrderStatus::Cancelled =>
        {
            Ok(current)
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
                    };
                    if handle.addr.send(release).await.is_err() {
                        tracing::error!(
                            order_id,
                            "cancelled order's units not returned to the running deal; a restart re-derives them"
                        );
                    }
                }
            }
            tracing::info!(order_id, status = next.as_str(), "order status changed");
            Ok(order)
        }
    }
}

pub async fn place(
    state: State,
    req: HttpRequest,
    caller: Caller,
    JsonBody(input): JsonBody<PlaceOrderRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let order = place_order(&state, caller, input.deal_id, input.quantity, key).await?;
    Ok(HttpResponse::Created().json(OrderView::from(&order)))
}

pub async fn get(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<OrderView>, ApiError> {
    let order = order_for(&state, caller, path_id(&id, "order")?).await?;
    Ok(web::Json(OrderView::from(&order)))
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub status: Option<String>,
    pub deal_id: Option<String>,
    #[serde(flatten)]
    pub page: PageQuery,
}

pub async fn list(
    state: State,
    req: HttpRequest,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<web::Json<Page<OrderView>>, ApiError> {
    let page = PageRequest::from_query(&query.page)?;
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(
            OrderStatus::parse(&text.to_ascii_uppercase()).ok_or_else(|| {
                ApiError::field(
                    "status",
                    "must be one of OPEN, APPROVED, CANCELLED, FULFILLED",
                )
            })?,
        ),
    };
    let deal_id = match query.deal_id.as_deref() {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| ApiError::field("deal_id", "must be an integer"))?,
        ),
    };
    let customer_id = (!caller.is_admin()).then_some(caller.user_id);
    let filter = OrderFilter {
        customer_id,
        deal_id,
        status,
    };
    let (count, orders) = state
        .store
        .list_orders(&filter, page.page_size, page.offset())
        .await?;
    let views = orders.iter().map(OrderView::from).collect();
    Ok(web::Json(page.wrap(&req, count, views)))
}

pub async fn cancel(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<OrderView>, ApiError> {
    let order = order_for(&state, caller, path_id(&id, "order")?).await?;
    let cancelled = change_status(&state, order.id, OrderStatus::Cancelled).await?;
    Ok(web::Json(OrderView::from(&cancelled)))
}

pub fn parse_status(text: &str) -> Result<OrderStatus, ApiError> {
    OrderStatus::parse(&text.trim().to_ascii_uppercase()).ok_or_else(|| {
        ApiError::field(
            "status",
            "must be one of OPEN, APPROVED, CANCELLED, FULFILLED",
        )
    })
}

pub async fn set_status(
    state: State,
    _: Admin,
    id: web::Path<String>,
    JsonBody(input): JsonBody<StatusChange>,
) -> Result<web::Json<OrderView>, ApiError> {
    let next = parse_status(&input.status)?;
    let order = change_status(&state, path_id(&id, "order")?, next).await?;
    Ok(web::Json(OrderView::from(&order)))
}
