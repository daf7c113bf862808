//! Deals over HTTP: create, update, close, open (admins, through `service::deals`; in cluster
//! mode a change goes to the deal's owner); list and get (anyone), served from the deals'
//! mirrors in memory on every node.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use actors::clock::now_ms;
use actors::deal::DealStatus;
use serde::Deserialize;

use crate::auth::{Admin, Caller, MaybeCaller};
use crate::error::{ApiError, ErrorCode};
use crate::json::{JsonBody, JsonBytes};
use crate::routes::forward;
use crate::routes::request::{PageQuery, PageRequest, path_id};
use crate::service::deals::{self, CreateDeal, UpdateDeal};
use crate::state::State;
use crate::wire::{DealView, Page};

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub status: Option<String>,
    #[serde(flatten)]
    pub page: PageQuery,
}

/// Deals from memory: ACTIVE and SOLD_OUT for everyone (`?status=ACTIVE` or `SOLD_OUT` narrows
/// that); admins may ask for any status, or `all`. Anyone else asking for more is told so
/// (401 without a token, 403 with a customer's), never silently shown less.
pub fn list_deals(
    state: &State,
    req: &HttpRequest,
    caller: Option<Caller>,
    query: &ListQuery,
) -> Result<Page<DealView>, ApiError> {
    let page = PageRequest::from_query(&query.page)?;
    let is_admin = caller.is_some_and(|caller| caller.is_admin());
    let wanted: Option<Vec<DealStatus>> = match query.status.as_deref() {
        None => Some(vec![DealStatus::Active, DealStatus::SoldOut]),
        Some(text) if text.eq_ignore_ascii_case("all") => None,
        Some(text) => Some(vec![
            DealStatus::parse(&text.to_ascii_uppercase()).ok_or_else(|| {
                ApiError::field(
                    "status",
                    "must be one of SCHEDULED, ACTIVE, SOLD_OUT, EXPIRED, CLOSED, all",
                )
            })?,
        ]),
    };
    let public = wanted.as_ref().is_some_and(|statuses| {
        statuses
            .iter()
            .all(|status| matches!(status, DealStatus::Active | DealStatus::SoldOut))
    });
    if !public && !is_admin {
        return Err(match caller {
            None => ApiError::new(
                ErrorCode::Unauthorized,
                "only admins may list deals by any status (or all): sign in as an admin",
            ),
            Some(_) => ApiError::new(
                ErrorCode::Forbidden,
                "only admins may list deals by any status (or all); customers see ACTIVE and SOLD_OUT",
            ),
        });
    }
    let now = now_ms();
    // Filter on the mirrors' atomics, and render only the requested page: rendering every
    // matching deal (four instants each) made the list cost grow with the number of deals.
    let matching: Vec<_> = state
        .engine
        .registry()
        .mirrors()
        .into_iter()
        .filter(|(_, mirror)| {
            wanted
                .as_ref()
                .is_none_or(|statuses| statuses.contains(&mirror.status(now)))
        })
        .collect();
    let count = matching.len() as i64;
    let results = matching
        .iter()
        .skip(page.offset() as usize)
        .take(page.page_size as usize)
        .map(|(_, mirror)| DealView::new(&mirror.snapshot(), now))
        .collect();
    Ok(page.wrap(req, count, results))
}

pub async fn create(
    state: State,
    _: Admin,
    JsonBody(input): JsonBody<CreateDeal>,
) -> Result<HttpResponse, ApiError> {
    let record = deals::create_deal(&state, input).await?;
    Ok(HttpResponse::Created().json(DealView::new(&record, now_ms())))
}

pub async fn list(
    state: State,
    req: HttpRequest,
    caller: MaybeCaller,
    query: web::Query<ListQuery>,
) -> Result<web::Json<Page<DealView>>, ApiError> {
    Ok(web::Json(list_deals(&state, &req, caller.0, &query)?))
}

pub async fn get(state: State, id: web::Path<String>) -> Result<web::Json<DealView>, ApiError> {
    // Served from memory on every node (the owner is not asked).
    let handle = state
        .engine
        .registry()
        .get(path_id(&id, "deal")?)
        .ok_or_else(|| ApiError::not_found("deal"))?;
    Ok(web::Json(DealView::new(
        &handle.mirror.snapshot(),
        now_ms(),
    )))
}

pub async fn update(
    state: State,
    req: HttpRequest,
    _: Admin,
    id: web::Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let deal_id = path_id(&id, "deal")?;
    if let Some(owner) = forward::owner_elsewhere(&state, &req, deal_id).await? {
        return Ok(forward::forward(&owner, &req, body).await);
    }
    let input: UpdateDeal = crate::json::parse(&body)?;
    let record = deals::update_deal(&state, deal_id, input).await?;
    Ok(HttpResponse::Ok().json(DealView::new(&record, now_ms())))
}

pub async fn close(
    state: State,
    req: HttpRequest,
    _: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_closed(&state, &req, &id, true).await
}

pub async fn open(
    state: State,
    req: HttpRequest,
    _: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_closed(&state, &req, &id, false).await
}

/// Closes or reopens the deal here, or at its owner when another node sells it.
async fn set_closed(
    state: &State,
    req: &HttpRequest,
    id: &str,
    closed: bool,
) -> Result<HttpResponse, ApiError> {
    let deal_id = path_id(id, "deal")?;
    if let Some(owner) = forward::owner_elsewhere(state, req, deal_id).await? {
        return Ok(forward::forward(&owner, req, Bytes::new()).await);
    }
    let record = deals::set_closed(state, deal_id, closed).await?;
    Ok(HttpResponse::Ok().json(DealView::new(&record, now_ms())))
}
