//! The original Topkart API's paths, for clients written against it. Same auth, same envelope,
//! same rules: each calls the code the v1 route calls.

use actix_web::{HttpRequest, HttpResponse, web};
use actors::clock::now_ms;
use serde::{Deserialize, Serialize};

use crate::auth::{Admin, Caller, MaybeCaller};
use crate::error::ApiError;
use crate::json::{JsonBody, JsonBytes};
use crate::routes::deals;
use crate::routes::forward;
use crate::routes::orders;
use crate::routes::users;
use crate::state::State;
use crate::wire::{DealView, OrderView, Page, UserView};

pub async fn create_user(
    state: State,
    req: HttpRequest,
    caller: MaybeCaller,
    JsonBody(input): JsonBody<users::CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let address = crate::routes::request::client_address(&req);
    let user: UserView = users::create_user(&state, caller.0, input, &address).await?;
    Ok(HttpResponse::Created().json(user))
}

pub async fn create_deal(
    state: State,
    _: Admin,
    JsonBody(input): JsonBody<crate::service::deals::CreateDeal>,
) -> Result<HttpResponse, ApiError> {
    let record = crate::service::deals::create_deal(&state, input).await?;
    Ok(HttpResponse::Created().json(DealView::new(&record, now_ms())))
}

#[derive(Debug, Deserialize)]
pub struct CompatUpdateDeal {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    deal_id: Option<i64>,
    #[serde(flatten)]
    update: crate::service::deals::UpdateDeal,
}

pub async fn update_deal(
    state: State,
    req: HttpRequest,
    _: Admin,
    JsonBytes(body): JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let input: CompatUpdateDeal = crate::json::parse(&body)?;
    let deal_id = input
        .id
        .or(input.deal_id)
        .ok_or_else(|| ApiError::field("id", "name the deal with id (or deal_id)"))?;
    if let Some(owner) = forward::owner_elsewhere(&state, &req, deal_id).await? {
        return Ok(forward::forward(&owner, &req, body).await);
    }
    let record = crate::service::deals::update_deal(&state, deal_id, input.update).await?;
    Ok(HttpResponse::Ok().json(DealView::new(&record, now_ms())))
}

#[derive(Debug, Deserialize)]
pub struct CompatOrderStatus {
    order_id: i64,
    status: String,
}

pub async fn update_order_status(
    state: State,
    req: HttpRequest,
    _: Admin,
    JsonBytes(body): JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let input: CompatOrderStatus = crate::json::parse(&body)?;
    let next = orders::parse_status(&input.status)?;
    orders::set_status_of(&state, &req, input.order_id, next, body).await
}

pub async fn active_deals(
    state: State,
    req: HttpRequest,
    caller: MaybeCaller,
    query: web::Query<deals::ListQuery>,
) -> Result<web::Json<Page<DealView>>, ApiError> {
    Ok(web::Json(deals::list_deals(
        &state, &req, caller.0, &query,
    )?))
}

#[derive(Debug, Deserialize)]
pub struct CompatPlaceOrder {
    deal_id: i64,
    #[serde(default = "one")]
    quantity: i64,
    /// Accepted for old clients; it must be the caller's own id.
    #[serde(default)]
    customer_id: Option<i64>,
}

fn one() -> i64 {
    1
}

pub async fn place_order(
    state: State,
    req: HttpRequest,
    caller: Caller,
    JsonBytes(body): JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let input: CompatPlaceOrder = crate::json::parse(&body)?;
    if input
        .customer_id
        .is_some_and(|customer_id| customer_id != caller.user_id)
    {
        return Err(ApiError::new(
            crate::error::ErrorCode::Forbidden,
            "customer_id must be your own id",
        ));
    }
    let key = orders::idempotency_key(&req)?;
    let order = orders::PlaceOrderRequest {
        deal_id: input.deal_id,
        quantity: input.quantity,
    };
    if let Some(answer) =
        orders::route_order(&state, &req, caller, &order, key.is_some(), || body).await?
    {
        return Ok(answer);
    }
    let order =
        crate::service::orders::place_order(&state, caller, input.deal_id, input.quantity, key)
            .await?;
    Ok(HttpResponse::Created().json(OrderView::from(&order)))
}

#[derive(Debug, Deserialize)]
pub struct OrderIdQuery {
    order_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct OrderStatusView {
    order_id: i64,
    status: &'static str,
}

pub async fn check_order_status(
    state: State,
    caller: Caller,
    query: web::Query<OrderIdQuery>,
) -> Result<web::Json<OrderStatusView>, ApiError> {
    let raw = query
        .order_id
        .as_deref()
        .ok_or_else(|| ApiError::field("order_id", "required"))?;
    let order_id = raw
        .parse::<i64>()
        .map_err(|_| ApiError::field("order_id", "must be an integer"))?;
    let order = crate::service::orders::order_for(&state, caller, order_id).await?;
    Ok(web::Json(OrderStatusView {
        order_id: order.id,
        status: order.status.as_str(),
    }))
}
