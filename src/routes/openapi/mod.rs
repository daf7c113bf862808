//! `GET /api/v1/openapi.json`: the OpenAPI 3 document, generated with utoipa from the request
//! and response types the handlers use. The operations are declared here, one function per
//! route, so the whole contract reads in one place; `tests/api/openapi.rs` checks that every
//! route of API.md is in it.

// The operation functions exist only to carry their `#[utoipa::path]`; nothing calls them.
#![allow(dead_code)]

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

mod modify;
use modify::{BearerAuth, Described, OriginalBodies, StockEventData};

use crate::routes::auth::{LoginRequest, RefreshRequest, TokenPair};
use crate::routes::cluster::ClusterView;
use crate::routes::orders::{ChangeOrder, PlaceOrderRequest, StatusChange};
use crate::routes::statistics::Statistics;
use crate::routes::top_kart::{Approved, TopKartDeal, TopKartOrder, TopKartProduct, Tracked};
use crate::routes::tracking::{TrackingRequest, TrackingView};
use crate::routes::users::{CreateUser, CreditRequest};
use crate::routes::waitlist::{JoinWaitlist, WaitlistEntryView};
use crate::service::deals::{CreateDeal, UpdateDeal};
use crate::wire::{DealView, OrderView, Page, UserView};

/// The name of the live stock stream's events.
#[derive(Serialize, ToSchema)]
pub enum StockEventName {
    #[serde(rename = "stock")]
    Stock,
}

/// One event of `GET /api/v1/deals/{id}/events`, as an SSE client reads it: its name, its
/// `data` (one JSON object, a `StockEvent`), and on the first event the reconnection delay.
#[derive(Serialize, ToSchema)]
pub struct StockStreamEvent {
    pub event: StockEventName,
    /// A `StockEvent` as JSON text.
    #[schema(content_media_type = "application/json")]
    pub data: String,
    /// Milliseconds to wait before reconnecting (first event only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<i64>,
}

/// The error envelope every failure is reported in.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `error`.
    pub status: String,
    /// One of the API's error codes, e.g. `SOLD_OUT`.
    pub code: String,
    pub message: String,
    /// Field name → problems, for validation failures.
    pub errors: Option<std::collections::HashMap<String, Vec<String>>>,
}

#[derive(Serialize, ToSchema)]
pub struct OrderStatusView {
    pub order_id: i64,
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Topkart", version = "1", description = "Flash-sale (lightning deal) engine. Money is a two-decimal string; instants are RFC 3339 UTC."),
    modifiers(&BearerAuth, &Described, &OriginalBodies, &StockEventData),
    paths(
        create_user, me, list_users, credit_user, login, refresh,
        create_deal, list_deals, get_deal, put_deal, patch_deal, close_deal, open_deal,
        place_order, list_orders, get_order, change_order, cancel_order, pay_order, set_order_status,
        add_tracking, list_tracking, order_statistics, join_waitlist, my_waitlist_entry, leave_waitlist,
        deal_events, livez, readyz, metrics, openapi_json, cluster,
        compat_create_user, compat_create_deal, compat_update_deal, compat_update_order_status,
        compat_active_deals, compat_place_order, compat_check_order_status,
        top_kart_create_deal, top_kart_fetch_deals, top_kart_create_order, top_kart_update_order, top_kart_track_status,
    ),
    components(schemas(StockStreamEvent, crate::live::StockEvent, ErrorEnvelope, DealView, OrderView, UserView, TokenPair, OrderStatusView, Health, ClusterView))
)]
pub struct ApiDoc;

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

// ---- users and auth --------------------------------------------------------------------------

/// Register a customer (anyone) or an admin (admin token).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser, security((), ("bearer" = [])),
    responses((status = 201, body = UserView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 409, description = "username or email taken", body = ErrorEnvelope), (status = 429, description = "RATE_LIMITED, with Retry-After", body = ErrorEnvelope)))]
fn create_user() {}

/// The caller.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorEnvelope)))]
fn me() {}

/// Users with their balances, newest first (admins); `?user_type=customer` or `admin`.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    params(("user_type" = Option<String>, Query), ("page" = Option<i64>, Query, minimum = 1), ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, body = Page<UserView>), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
fn list_users() {}

/// Credit a user's wallet (admins).
#[utoipa::path(post, path = "/api/v1/users/{id}/balance", tag = "users", params(("id" = i64, Path, minimum = 1)), request_body = CreditRequest, security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
fn credit_user() {}

/// Log in with a username or email and a password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 400, body = ErrorEnvelope), (status = 401, description = "INVALID_CREDENTIALS", body = ErrorEnvelope), (status = 429, description = "RATE_LIMITED, with Retry-After", body = ErrorEnvelope)))]
fn login() {}

/// Trade a refresh token for a new pair; the old refresh token stops working.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 400, body = ErrorEnvelope), (status = 401, description = "INVALID_TOKEN", body = ErrorEnvelope)))]
fn refresh() {}

// ---- deals -----------------------------------------------------------------------------------

/// Create a deal (admin).
#[utoipa::path(post, path = "/api/v1/deals", tag = "deals", request_body = CreateDeal, security(("bearer" = [])),
    responses((status = 201, body = DealView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
fn create_deal() {}

/// Active, unexpired deals (ACTIVE or SOLD_OUT; `status=ACTIVE` or `SOLD_OUT` narrows them for
/// anyone); admins may ask for any `status`, or `all` — anyone else asking for those is told
/// so (401 without a token, 403 with a customer's).
#[utoipa::path(get, path = "/api/v1/deals", tag = "deals", security((), ("bearer" = [])),
    params(("status" = Option<String>, Query, description = "ACTIVE or SOLD_OUT for anyone; admins also SCHEDULED, EXPIRED, CLOSED or all"),
        ("page" = Option<i64>, Query, minimum = 1), ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, body = Page<DealView>), (status = 400, body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
fn list_deals() {}

/// One deal, in any status.
#[utoipa::path(get, path = "/api/v1/deals/{id}", tag = "deals", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = DealView), (status = 404, body = ErrorEnvelope)))]
fn get_deal() {}

/// Change any field of a deal (admin); units may not drop below what is sold.
#[utoipa::path(put, path = "/api/v1/deals/{id}", tag = "deals", params(("id" = i64, Path, minimum = 1)), request_body = UpdateDeal, security(("bearer" = [])),
    responses((status = 200, body = DealView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
fn put_deal() {}

/// Change some fields of a deal (admin); same rules as PUT.
#[utoipa::path(patch, path = "/api/v1/deals/{id}", tag = "deals", params(("id" = i64, Path, minimum = 1)), request_body = UpdateDeal, security(("bearer" = [])),
    responses((status = 200, body = DealView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
fn patch_deal() {}

/// Close a deal now (admin).
#[utoipa::path(post, path = "/api/v1/deals/{id}/close", tag = "deals", params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, body = DealView), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
fn close_deal() {}

/// Reopen a closed deal inside its window (admin).
#[utoipa::path(post, path = "/api/v1/deals/{id}/open", tag = "deals", params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, body = DealView), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, description = "DEAL_EXPIRED", body = ErrorEnvelope)))]
fn open_deal() {}

// ---- orders ----------------------------------------------------------------------------------

/// Place an order (customer); answered only once the order is durably stored.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = PlaceOrderRequest, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "same key + same body within 24 h → the first answer")),
    responses((status = 201, body = OrderView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "SOLD_OUT, DEAL_NOT_STARTED, DEAL_EXPIRED, DEAL_CLOSED, LIMIT_EXCEEDED, IDEMPOTENCY_IN_PROGRESS", body = ErrorEnvelope),
        (status = 422, description = "IDEMPOTENCY_MISMATCH", body = ErrorEnvelope),
        (status = 503, description = "OVERLOADED or STORE_UNAVAILABLE, with Retry-After", body = ErrorEnvelope), (status = 429, description = "RATE_LIMITED, with Retry-After", body = ErrorEnvelope)))]
fn place_order() {}

/// Orders, newest first: a customer's own, or all for admins.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    params(("status" = Option<String>, Query), ("deal_id" = Option<i64>, Query),
        ("from" = Option<String>, Query, format = DateTime, description = "placed at or after (RFC 3339)"),
        ("to" = Option<String>, Query, format = DateTime, description = "placed before (RFC 3339)"),
        ("page" = Option<i64>, Query, minimum = 1), ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, body = Page<OrderView>), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope)))]
fn list_orders() {}

/// One order (owner or admin; 404 for anyone else).
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
fn get_order() {}

/// Cancel an order; its units go back to the deal at once, once.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "INVALID_TRANSITION", body = ErrorEnvelope)))]
fn cancel_order() {}

/// Pay an order of a deal with a payment window from the caller's wallet, before its `pay_by`.
/// With an `Idempotency-Key`, a retry of a payment that went through answers 200 again; an
/// order is debited once in any case.
#[utoipa::path(post, path = "/api/v1/orders/{id}/pay", tag = "orders", params(("id" = i64, Path, minimum = 1), ("Idempotency-Key" = Option<String>, Header)), security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 400, description = "A malformed Idempotency-Key", body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "INSUFFICIENT_BALANCE (with balance), PAYMENT_EXPIRED, or INVALID_TRANSITION (paid, cancelled, or no payment required)", body = ErrorEnvelope),
        (status = 503, body = ErrorEnvelope)))]
fn pay_order() {}

/// Change the quantity of an open, unpaid order (its customer): more units need free units
/// (409 SOLD_OUT, the order unchanged), fewer go back to the deal.
#[utoipa::path(patch, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = i64, Path, minimum = 1)), request_body = ChangeOrder, security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "SOLD_OUT, LIMIT_EXCEEDED, DEAL_CLOSED, DEAL_EXPIRED, PAYMENT_EXPIRED, or INVALID_TRANSITION (not open and unpaid)", body = ErrorEnvelope),
        (status = 503, body = ErrorEnvelope)))]
fn change_order() {}

/// Record what happened to an order after it was placed (admins).
#[utoipa::path(post, path = "/api/v1/orders/{id}/tracking", tag = "orders", params(("id" = i64, Path, minimum = 1)), request_body = TrackingRequest, security(("bearer" = [])),
    responses((status = 201, body = TrackingView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
fn add_tracking() {}

/// An order's tracking events, oldest first (its customer or an admin).
#[utoipa::path(get, path = "/api/v1/orders/{id}/tracking", tag = "orders", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1), ("page" = Option<i64>, Query, minimum = 1), ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, body = Page<TrackingView>), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
fn list_tracking() {}

/// Order statistics: a customer's own; an admin's over every order, with each deal's sale, the
/// last 30 days by day and the ten newest orders. Exact: an admin's figures are kept in the
/// same transactions that change the orders.
#[utoipa::path(get, path = "/api/v1/orders/statistics", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = Statistics), (status = 401, body = ErrorEnvelope)))]
fn order_statistics() {}

/// Change an order's status (admin): OPEN→APPROVED, OPEN→CANCELLED, APPROVED→FULFILLED, APPROVED→CANCELLED.
#[utoipa::path(patch, path = "/api/v1/orders/{id}/status", tag = "orders", params(("id" = i64, Path, minimum = 1)), request_body = StatusChange, security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, description = "INVALID_TRANSITION", body = ErrorEnvelope)))]
fn set_order_status() {}

/// The deal's live stock as server-sent events (`text/event-stream`): the current state at once,
/// then each change, at most 10 a second. Each event's `data` is one JSON object:
/// `{deal_id, status, available_units, total_units, claimed_percent, round, at}`. A comment line
/// every 15 s keeps a quiet stream open; the stream ends when the deal is gone or the node
/// shuts down (reconnect: `retry` is 2 s).
#[utoipa::path(get, path = "/api/v1/deals/{id}/events", tag = "deals", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, content_type = "text/event-stream", body = StockStreamEvent, description = "The events, named `stock`; each `data` a StockEvent"), (status = 404, body = ErrorEnvelope),
        (status = 503, description = "OVERLOADED: the node holds as many listeners as it may, or is shutting down", body = ErrorEnvelope)))]
fn deal_events() {}

/// Join a sold-out deal's waitlist (customers): units that come free go to the waitlist first,
/// in the order customers joined, skipping an entry larger than the free units; a served entry
/// becomes an order (with the deal's payment window). Entries end with the deal's round.
#[utoipa::path(post, path = "/api/v1/deals/{id}/waitlist", tag = "deals", params(("id" = i64, Path, minimum = 1)), request_body = JoinWaitlist, security(("bearer" = [])),
    responses((status = 201, body = WaitlistEntryView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "NOT_SOLD_OUT (units are on the shelf), CONFLICT (waiting already), WAITLIST_FULL, LIMIT_EXCEEDED, DEAL_CLOSED, DEAL_EXPIRED or DEAL_NOT_STARTED", body = ErrorEnvelope),
        (status = 503, body = ErrorEnvelope)))]
fn join_waitlist() {}

/// The caller's newest entry on the deal's waitlist: its place while it waits, its order once
/// served.
#[utoipa::path(get, path = "/api/v1/deals/{id}/waitlist/me", tag = "deals", params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, body = WaitlistEntryView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
fn my_waitlist_entry() {}

/// Leave the deal's waitlist.
#[utoipa::path(delete, path = "/api/v1/deals/{id}/waitlist/me", tag = "deals", params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 204, description = "Left"), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "CONFLICT: the entry is being served (its order is on the way)", body = ErrorEnvelope), (status = 503, body = ErrorEnvelope)))]
fn leave_waitlist() {}

// ---- operations ------------------------------------------------------------------------------

/// 200 while the process lives.
#[utoipa::path(get, path = "/livez", tag = "operations", responses((status = 200, body = Health)))]
fn livez() {}

/// 200 when the store answers and the writer runs; 503 otherwise and while draining.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Health), (status = 503, body = ErrorEnvelope)))]
fn readyz() {}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
fn metrics() {}

/// The mode, this node, the live nodes and who owns each deal (admins).
#[utoipa::path(get, path = "/api/v1/cluster", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = ClusterView), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 503, body = ErrorEnvelope)))]
fn cluster() {}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3 document")))]
fn openapi_json() {}

// ---- the original Topkart paths --------------------------------------------------------------

/// = POST /api/v1/users.
#[utoipa::path(post, path = "/topkart/create/users/", tag = "compat", request_body = CreateUser, security((), ("bearer" = [])),
    responses((status = 201, body = UserView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 429, description = "RATE_LIMITED, with Retry-After", body = ErrorEnvelope)))]
fn compat_create_user() {}

/// Create a deal (admin).
#[utoipa::path(post, path = "/topkart/create/update/deals/", tag = "compat", request_body = CreateDeal, security(("bearer" = [])),
    responses((status = 201, body = DealView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
fn compat_create_deal() {}

/// Update the deal named by `id` (or `deal_id`) in the body (admin).
#[utoipa::path(put, path = "/topkart/create/update/deals/", tag = "compat", request_body = UpdateDeal, security(("bearer" = [])),
    responses((status = 200, body = DealView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
fn compat_update_deal() {}

/// `{order_id, status}` → change an order's status (admin).
#[utoipa::path(put, path = "/topkart/update/order_status/", tag = "compat", request_body = StatusChange, security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
fn compat_update_order_status() {}

/// = GET /api/v1/deals.
#[utoipa::path(get, path = "/topkart/get/active/deals/", tag = "compat",
    params(("page" = Option<i64>, Query, minimum = 1), ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, body = Page<DealView>), (status = 400, body = ErrorEnvelope)))]
fn compat_active_deals() {}

/// `{deal_id, quantity, customer_id?}`; a `customer_id` other than the caller's is 403.
#[utoipa::path(post, path = "/topkart/place/order/", tag = "compat", request_body = PlaceOrderRequest, security(("bearer" = [])),
    responses((status = 201, body = OrderView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope), (status = 503, body = ErrorEnvelope), (status = 429, description = "RATE_LIMITED, with Retry-After", body = ErrorEnvelope)))]
fn compat_place_order() {}

/// `?order_id=` → `{order_id, status}` (owner or admin).
#[utoipa::path(get, path = "/topkart/check/order_status/", tag = "compat", security(("bearer" = [])), params(("order_id" = i64, Query)),
    responses((status = 200, body = OrderStatusView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
fn compat_check_order_status() {}

// ---- the "Top-Kart" paths (deals named by product name; 409 CONFLICT when two active deals share it) ----

/// Admins: a daily deal from now, 12 hours unless `expires_at`.
#[utoipa::path(post, path = "/create-deal/", tag = "top-kart", request_body = TopKartDeal, security(("bearer" = [])),
    responses((status = 201, body = DealView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
fn top_kart_create_deal() {}

/// = GET /api/v1/deals.
#[utoipa::path(get, path = "/fetch-deals/", tag = "top-kart",
    params(("page" = Option<i64>, Query, minimum = 1), ("page_size" = Option<i64>, Query, minimum = 1, maximum = 100)),
    responses((status = 200, body = Page<DealView>), (status = 400, body = ErrorEnvelope)))]
fn top_kart_fetch_deals() {}

/// Customers: an order of the active deal named `product_name`; `buyer_name` must be the
/// caller's username (else 403) and `price` the deal's final price (else 409 PRICE_CHANGED).
#[utoipa::path(post, path = "/create-order/", tag = "top-kart", request_body = TopKartOrder, security(("bearer" = [])),
    responses((status = 201, body = OrderView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "PRICE_CHANGED (with price), CONFLICT (two active deals of that name), SOLD_OUT, …", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope), (status = 429, description = "RATE_LIMITED, with Retry-After", body = ErrorEnvelope), (status = 503, body = ErrorEnvelope)))]
fn top_kart_create_order() {}

/// Admins: approves the named deal's open orders (those that must be paid, once paid).
#[utoipa::path(post, path = "/update-order/", tag = "top-kart", request_body = TopKartProduct, security(("bearer" = [])),
    responses((status = 200, body = Approved), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
fn top_kart_update_order() {}

/// The caller's orders of the named deal, with their statuses.
#[utoipa::path(post, path = "/track-status/", tag = "top-kart", request_body = TopKartProduct, security(("bearer" = [])),
    responses((status = 200, body = Tracked), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
fn top_kart_track_status() {}
