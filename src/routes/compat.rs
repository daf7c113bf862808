//! The original Topkart API's paths, for clients written against it. Same auth, same envelope,
//! same rules: each calls the code the v1 route calls.

use actix_web::{HttpRequest, HttpResponse, web};
use actors::clock::now_ms;
use serde::{Deserialize, Serialize};

use crate::auth::{Admin, Caller, MaybeCaller};
use crate::error::ApiError;
use crate::json::{Checked, JsonBytes};
use crate::routes::deals;
use crate::routes::forward;
use crate::routes::orders;
use crate::routes::users;
use crate::state::State;
use crate::wire::{DealView, OrderView, Page, UserView};

/// The original API required `user_type` ("User Type is required"); v1 defaults it to
/// `customer`. Its clients get the original's answer.
/// The original API's words for a user without a type.
const USER_TYPE_REQUIRED: &str = "User Type is required";

pub async fn create_user(
    state: State,
    req: HttpRequest,
    caller: MaybeCaller,
    JsonBytes(body): JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let fields: serde_json::Map<String, serde_json::Value> = crate::json::parse(&body)?;
    let untyped = fields
        .get("user_type")
        .is_none_or(serde_json::Value::is_null);
    let input = match (
        crate::json::parse_checked::<users::CreateUser>(&body),
        untyped,
    ) {
        (Ok(input), false) => input,
        (Ok(_), true) => return Err(ApiError::field("user_type", USER_TYPE_REQUIRED)),
        // Named beside every other wrong field.
        (Err(mut refused), true) => {
            if let Some(errors) = refused.errors.as_mut() {
                errors.insert("user_type".into(), vec![USER_TYPE_REQUIRED.into()]);
            }
            return Err(refused);
        }
        (Err(refused), false) => return Err(refused),
    };
    let address = crate::routes::request::client_address(&req);
    let user: UserView = users::create_user(&state, caller.0, input, &address).await?;
    Ok(HttpResponse::Created().json(user))
}

/// The longest window a deal may have, and the original API's window for a deal created
/// without an expiry.
const ORIGINAL_WINDOW_MS: i64 = 12 * 3_600_000;

/// The original API gave a deal created without an expiry a window of 12 hours from its start
/// (now, unless `starts_at` says otherwise); v1 requires `expires_at`.
pub async fn create_deal(
    state: State,
    _: Admin,
    JsonBytes(body): JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let mut fields: serde_json::Map<String, serde_json::Value> = crate::json::parse(&body)?;
    let no_expiry = ["expires_at", "expiry_time"]
        .iter()
        .all(|name| fields.get(*name).is_none_or(serde_json::Value::is_null));
    if no_expiry {
        let starts_at = match fields.get("starts_at") {
            Some(value) if !value.is_null() => {
                serde_json::from_value::<crate::wire::Instant>(value.clone())
                    .map_err(|error| ApiError::field("starts_at", error.to_string()))?
                    .0
            }
            _ => now_ms(),
        };
        let expires_at = chrono::DateTime::from_timestamp_millis(starts_at + ORIGINAL_WINDOW_MS)
            .ok_or_else(|| ApiError::field("starts_at", "is out of range"))?;
        fields.remove("expiry_time");
        fields.insert(
            "expires_at".into(),
            expires_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
    }
    let input: crate::service::deals::CreateDeal =
        crate::json::parse_checked(&serde_json::to_vec(&fields).unwrap_or_default())?;
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
    let input: CompatUpdateDeal = crate::json::parse_checked(&body)?;
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

impl Checked for CompatUpdateDeal {
    fn problems(&self, stood_in: &[String]) -> crate::error::FieldErrors {
        self.update.problems(stood_in)
    }
}

impl Checked for CompatPlaceOrder {
    fn problems(&self, stood_in: &[String]) -> crate::error::FieldErrors {
        let _ = stood_in;
        orders::quantity_problems(self.quantity)
    }
}

pub async fn place_order(
    state: State,
    req: HttpRequest,
    caller: Caller,
    JsonBytes(body): JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let input: CompatPlaceOrder = crate::json::parse_checked(&body)?;
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
