//! The other Topkart API ("Top-Kart"), which named deals by product name: `/create-deal/`,
//! `/create-order/`, `/update-order/`, `/track-status/` (each with and without its trailing
//! slash; `/fetch-deals/` is the original paths' listing, `compat::active_deals`). Same auth, same envelope, same rules as v1: each names *the active deal*
//! with that product name (409 `CONFLICT` when two share it) and calls the code v1 calls. The
//! price a client sends is checked against the deal's, never charged (409 `PRICE_CHANGED`).

use actix_web::{HttpRequest, HttpResponse, web};
use actors::clock::now_ms;
use actors::deal::DealStatus;
use actors::journal::{OrderStatus, PaymentStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Admin, Caller};
use crate::error::{ApiError, ErrorCode};
use crate::json::JsonBytes;
use crate::routes::orders;
use crate::service::deals::{CreateDeal, RecurrenceInput};
use crate::state::{AppState, State};
use crate::store::OrderFilter;
use crate::wire::{DealView, Instant, Money, OrderView};

/// A Top-Kart deal runs 12 hours from its creation unless it says otherwise.
const DEFAULT_WINDOW_MS: i64 = actors::limits::WINDOW_MAX_MS;

/// The one deal on sale (ACTIVE or SOLD_OUT) named `product_name`, from this node's mirrors.
fn active_deal(state: &AppState, product_name: &str) -> Result<i64, ApiError> {
    let name = product_name.trim();
    let now = now_ms();
    let mut found: Vec<i64> = state
        .engine
        .registry()
        .mirrors()
        .into_iter()
        .filter(|(_, mirror)| {
            matches!(mirror.status(now), DealStatus::Active | DealStatus::SoldOut)
        })
        .filter(|(_, mirror)| mirror.snapshot().product_name == name)
        .map(|(deal_id, _)| deal_id)
        .collect();
    found.sort_unstable();
    match found.as_slice() {
        [] => Err(ApiError::not_found("active deal with that product_name")),
        [deal_id] => Ok(*deal_id),
        _ => Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "{} active deals are named {name:?}: use the v1 API with a deal id",
                found.len()
            ),
        )),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TopKartDeal {
    pub product_name: String,
    #[schema(value_type = crate::wire::MoneyInput, inline)]
    pub actual_price: Money,
    #[schema(value_type = crate::wire::MoneyInput, inline)]
    pub discounted_price: Money,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub units: i64,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Instant>,
}

/// This API's names for v1's fields of a deal.
const RENAMED: [(&str, &str); 2] = [
    ("discounted_price", "final_price"),
    ("units", "total_units"),
];

impl TopKartDeal {
    /// The v1 deal this asks for at `now`: daily, from now, 12 hours unless `expires_at`.
    fn as_created(&self, now: actors::Millis) -> CreateDeal {
        CreateDeal {
            product_name: self.product_name.clone(),
            actual_price: self.actual_price,
            final_price: self.discounted_price,
            total_units: self.units,
            available_units: None,
            starts_at: Some(Instant(now)),
            expires_at: self.expires_at.unwrap_or(Instant(now + DEFAULT_WINDOW_MS)),
            per_customer_limit: None,
            payment_window_secs: None,
            recurrence: Some(RecurrenceInput::Daily),
        }
    }
}

/// v1's checks of the deal, each problem under this API's name for its field.
impl crate::json::Checked for TopKartDeal {
    fn problems(&self, stood_in: &[String]) -> crate::error::FieldErrors {
        // `(ours, v1's)`: from one name to the other.
        let to_v1 = |field: &String| {
            RENAMED
                .iter()
                .find(|(ours, _)| ours == field)
                .map_or(field.clone(), |(_, v1)| (*v1).to_owned())
        };
        let to_ours = |field: String| {
            RENAMED
                .iter()
                .find(|(_, v1)| *v1 == field)
                .map_or(field.clone(), |(ours, _)| (*ours).to_owned())
        };
        let stood_in: Vec<String> = stood_in.iter().map(to_v1).collect();
        self.as_created(now_ms())
            .problems(&stood_in)
            .into_iter()
            .map(|(field, problems)| (to_ours(field), problems))
            .collect()
    }
}

impl crate::json::Checked for TopKartOrder {
    fn problems(&self, _: &[String]) -> crate::error::FieldErrors {
        crate::routes::orders::quantity_problems(self.quantity)
    }
}

/// `POST /create-deal/` (admins): a daily deal from now, for 12 hours unless `expires_at`.
pub async fn create_deal(
    state: State,
    _: Admin,
    JsonBytes(body): JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let input: TopKartDeal = crate::json::parse_checked(&body)?;
    let deal = input.as_created(now_ms());
    let record = crate::service::deals::create_deal(&state, deal).await?;
    Ok(HttpResponse::Created().json(DealView::new(&record, now_ms())))
}

/// An order by product name. `price` is the unit price the client saw: it must be the deal's
/// final price, and what is charged is always the deal's.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TopKartOrder {
    pub product_name: String,
    #[schema(value_type = crate::wire::MoneyInput, inline)]
    pub price: Money,
    /// Must be the caller's username.
    pub buyer_name: String,
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 10_000)]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

/// `POST /create-order/` (customers): an order of the named deal.
pub async fn create_order(
    state: State,
    req: HttpRequest,
    caller: Caller,
    JsonBytes(body): JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let input: TopKartOrder = crate::json::parse_checked(&body)?;
    let buyer = state
        .store
        .user_by_id(caller.user_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidToken, "the token's user no longer exists")
        })?;
    if input.buyer_name.trim() != buyer.username {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "buyer_name must be your own username",
        ));
    }
    let deal_id = active_deal(&state, &input.product_name)?;
    let price = state
        .engine
        .registry()
        .with(deal_id, |handle| handle.mirror.snapshot().final_price)
        .ok_or_else(|| ApiError::not_found("deal"))?;
    if input.price.0 != price {
        return Err(ApiError::new(
            ErrorCode::PriceChanged,
            format!("the price is {}, not {}", Money(price), input.price),
        )
        .with_extra("price", serde_json::json!(Money(price))));
    }
    let key = orders::idempotency_key(&req)?;
    let order = orders::PlaceOrderRequest {
        deal_id,
        quantity: input.quantity,
    };
    let v1_body = || {
        let body = serde_json::json!({"deal_id": deal_id, "quantity": input.quantity});
        actix_web::web::Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    };
    if let Some(answer) =
        orders::route_order(&state, &req, caller, &order, key.is_some(), v1_body).await?
    {
        return Ok(answer);
    }
    let placed =
        crate::service::orders::place_order(&state, caller, deal_id, input.quantity, key).await?;
    Ok(HttpResponse::Created().json(OrderView::from(&placed)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TopKartProduct {
    pub product_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Approved {
    /// Orders approved now.
    pub approved: i64,
}

/// `POST /update-order/` (admins): approves the named deal's open orders (those that must be
/// paid, once paid).
pub async fn update_order(
    state: State,
    _: Admin,
    JsonBytes(body): JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let input: TopKartProduct = crate::json::parse(&body)?;
    // Approving is a store change any node makes (only cancellations go to a deal's owner).
    let deal_id = active_deal(&state, &input.product_name)?;
    let filter = OrderFilter {
        deal_id: Some(deal_id),
        status: Some(OrderStatus::Open),
        ..OrderFilter::default()
    };
    // The open orders as they are now, page by page, then each approved (one that was paid,
    // cancelled or lapsed meanwhile is passed over, as the store decides).
    let mut open = Vec::new();
    loop {
        let (count, page) = state
            .store
            .list_orders(&filter, 100, open.len() as i64)
            .await?;
        let last = page.is_empty() || open.len() + page.len() >= count as usize;
        open.extend(page);
        if last {
            break;
        }
    }
    let mut approved = 0;
    for order in open
        .iter()
        .filter(|order| order.payment_status != PaymentStatus::Unpaid)
    {
        if crate::service::orders::change_status(&state, order, OrderStatus::Approved)
            .await
            .is_ok()
        {
            approved += 1;
        }
    }
    Ok(HttpResponse::Ok().json(Approved { approved }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Tracked {
    pub product_name: String,
    /// The caller's orders of that deal, newest first.
    pub orders: Vec<OrderView>,
}

/// `POST /track-status/`: the caller's orders of the named deal, with their statuses.
pub async fn track_status(
    state: State,
    caller: Caller,
    JsonBytes(body): JsonBytes,
) -> Result<web::Json<Tracked>, ApiError> {
    let input: TopKartProduct = crate::json::parse(&body)?;
    let deal_id = active_deal(&state, &input.product_name)?;
    let filter = OrderFilter {
        deal_id: Some(deal_id),
        customer_id: Some(caller.user_id),
        ..OrderFilter::default()
    };
    let (_, found) = state.store.list_orders(&filter, 100, 0).await?;
    Ok(web::Json(Tracked {
        product_name: input.product_name.trim().to_owned(),
        orders: found.iter().map(OrderView::from).collect(),
    }))
}
