//! Orders: place (through the deal's actor and the writer: 201 only after commit), get, list,
//! cancel, and admin status changes.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use actors::journal::OrderStatus;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::json::{JsonBody, JsonBytes};
use crate::routes::forward;
use crate::routes::request::{PageQuery, PageRequest, path_id};
use crate::service::orders::{change_status, order_for, place_order, refuse_doomed};
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

impl crate::json::Checked for PlaceOrderRequest {
    fn problems(&self, _: &[String]) -> crate::error::FieldErrors {
        quantity_problems(self.quantity)
    }
}

/// An order's quantity out of its range, as the field's problem (every order path's body).
pub fn quantity_problems(quantity: i64) -> crate::error::FieldErrors {
    let mut errors = crate::error::FieldErrors::new();
    let quantity_max = crate::service::orders::QUANTITY_MAX;
    if !(1..=quantity_max).contains(&quantity) {
        errors.insert(
            "quantity".into(),
            vec![format!("must be from 1 to {quantity_max}")],
        );
    }
    errors
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
    let elsewhere = route_order(&state, &req, caller, &input, key.is_some(), || {
        let body = serde_json::json!({"deal_id": input.deal_id, "quantity": input.quantity});
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    })
    .await?;
    if let Some(answer) = elsewhere {
        return Ok(answer);
    }
    let order = place_order(&state, caller, input.deal_id, input.quantity, key).await?;
    Ok(HttpResponse::Created().json(OrderView::from(&order)))
}

/// Cluster mode, for an order about a deal this node does not sell: a doomed order is refused
/// here, from the deal's mirror (kept current by the feed), without a hop; any other goes to
/// the deal's owner (`body`: what to send), whose answer is returned. `None`: this node
/// decides.
pub async fn route_order(
    state: &State,
    req: &HttpRequest,
    caller: Caller,
    input: &PlaceOrderRequest,
    keyed: bool,
    body: impl FnOnce() -> Bytes,
) -> Result<Option<HttpResponse>, ApiError> {
    if !forward::decided_elsewhere(state, input.deal_id) {
        return Ok(None);
    }
    refuse_doomed(state, caller, input.deal_id, input.quantity, keyed)?;
    match forward::owner_elsewhere(state, req, input.deal_id).await? {
        Some(owner) => Ok(Some(forward::forward(&owner, req, body()).await)),
        None => Ok(None),
    }
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
    /// RFC 3339: orders placed at or after it.
    pub from: Option<String>,
    /// RFC 3339: orders placed before it.
    pub to: Option<String>,
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
    let instant = |field: &str, text: Option<&str>| -> Result<Option<i64>, ApiError> {
        text.map(|text| {
            chrono::DateTime::parse_from_rfc3339(text.trim())
                .map(|at| at.timestamp_millis())
                .map_err(|_| {
                    ApiError::field(
                        field,
                        "must be an RFC 3339 instant such as 2026-11-22T10:30:00Z",
                    )
                })
        })
        .transpose()
    };
    let created_from = instant("from", query.from.as_deref())?;
    let created_to = instant("to", query.to.as_deref())?;
    if let (Some(from), Some(to)) = (created_from, created_to) {
        if to <= from {
            return Err(ApiError::field("to", "must be after from"));
        }
    }
    let customer_id = (!caller.is_admin()).then_some(caller.user_id);
    let filter = OrderFilter {
        customer_id,
        deal_id,
        status,
        created_from,
        created_to,
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
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let order = order_for(&state, caller, path_id(&id, "order")?).await?;
    // The units go back to the deal: its owner's to do.
    if let Some(owner) = forward::owner_elsewhere(&state, &req, order.deal_id).await? {
        return Ok(forward::forward(&owner, &req, Bytes::new()).await);
    }
    let cancelled = change_status(&state, &order, OrderStatus::Cancelled).await?;
    Ok(HttpResponse::Ok().json(OrderView::from(&cancelled)))
}

/// Moves an order to `next` as an admin asked: a cancellation goes to the deal's owner
/// (`body`: what to send it) when another node sells the deal.
pub async fn set_status_of(
    state: &State,
    req: &HttpRequest,
    order_id: i64,
    next: OrderStatus,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let order = state
        .store
        .order_by_id(order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    if next == OrderStatus::Cancelled {
        if let Some(owner) = forward::owner_elsewhere(state, req, order.deal_id).await? {
            return Ok(forward::forward(&owner, req, body).await);
        }
    }
    let changed = change_status(state, &order, next).await?;
    Ok(HttpResponse::Ok().json(OrderView::from(&changed)))
}

/// `POST /orders/{id}/pay`: the caller pays their order from their wallet (at the deal's
/// owner, which decides the deadline).
pub async fn pay(
    state: State,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let order = order_for(&state, caller, path_id(&id, "order")?).await?;
    if let Some(owner) = forward::owner_elsewhere(&state, &req, order.deal_id).await? {
        return Ok(forward::forward(&owner, &req, Bytes::new()).await);
    }
    let paid = crate::service::payments::pay_order(&state, caller, order.id, key).await?;
    Ok(HttpResponse::Ok().json(OrderView::from(&paid)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangeOrder {
    /// The order's new quantity (1 to 10,000).
    #[schema(minimum = 1, maximum = 10_000)]
    pub quantity: i64,
}

/// `PATCH /orders/{id}`: the caller changes their open, unpaid order's quantity (at the deal's
/// owner, whose actor holds the stock).
pub async fn change(
    state: State,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let order = order_for(&state, caller, path_id(&id, "order")?).await?;
    if let Some(owner) = forward::owner_elsewhere(&state, &req, order.deal_id).await? {
        return Ok(forward::forward(&owner, &req, body).await);
    }
    let input: ChangeOrder = crate::json::parse(&body)?;
    let changed =
        crate::service::payments::change_quantity(&state, caller, order.id, input.quantity).await?;
    Ok(HttpResponse::Ok().json(OrderView::from(&changed)))
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
    req: HttpRequest,
    _: Admin,
    id: web::Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let input: StatusChange = crate::json::parse(&body)?;
    let next = parse_status(&input.status)?;
    set_status_of(&state, &req, path_id(&id, "order")?, next, body).await
}
