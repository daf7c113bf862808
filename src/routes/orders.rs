//! Orders: place (through the deal's actor and the writer: 201 only after commit), get, list,
//! cancel, and admin status changes.

use actix_web::{HttpRequest, HttpResponse, web};
use actors::journal::OrderStatus;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::routes::forward;
use crate::routes::request::{PageQuery, PageRequest, path_id};
use crate::service::orders::{change_status, order_for, place_order};
use crate::state::State;
use crate::store::OrderFilter;
use crate::wire::{OrderView, Page};

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

pub async fn place(
    state: State,
    req: HttpRequest,
    caller: Caller,
    JsonBody(input): JsonBody<PlaceOrderRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    if let Some(owner) = forward::owner_elsewhere(&state, &req, input.deal_id).await? {
        let body = serde_json::json!({"deal_id": input.deal_id, "quantity": input.quantity});
        return Ok(forward::forward(&owner, &req, body).await);
    }
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
