//! Deals: create, update, close, open (admins); list and get (anyone), served from memory.

use actix_web::{HttpRequest, HttpResponse, web};
use actors::Millis;
use actors::clock::now_ms;
use actors::deal::{
    Amend, DealRecord, DealStatus, DealTerms, Recurrence, Resize, SetClosed, Snapshot,
};
use actors::journal::LoadedDeal;
use actors::registry::DealHandle;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use crate::auth::{Admin, MaybeCaller};
use crate::error::{ApiError, ErrorCode, FieldErrors};
use crate::json::JsonBody;
use crate::routes::page::{PageQuery, PageRequest};
use crate::routes::path_id;
use crate::state::State;
use crate::store::NewDeal;
use crate::wire::{DealView, Instant, Money, Page};

/// A deal's window may not be longer than this.
pub const WINDOW_MAX_MS: Millis = 12 * 3_600_000;
/// Units a deal may have at most; keeps every sum far from overflow.
pub const UNITS_MAX: i64 = 1_000_000_000;
const PRODUCT_NAME_MAX_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecurrenceInput {
    None,
    Daily,
}

impl From<RecurrenceInput> for Recurrence {
    fn from(input: RecurrenceInput) -> Self {
        match input {
            RecurrenceInput::None => Recurrence::None,
            RecurrenceInput::Daily => Recurrence::Daily,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateDeal {
    pub product_name: String,
    #[schema(value_type = String, example = "99.00")]
    pub actual_price: Money,
    #[schema(value_type = String, example = "49.00")]
    pub final_price: Money,
    pub total_units: i64,
    /// Defaults to `total_units`.
    #[serde(default)]
    pub available_units: Option<i64>,
    /// Defaults to now.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<Instant>,
    /// At most 12 hours after `starts_at`.
    #[serde(alias = "expiry_time")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Instant,
    #[serde(default)]
    pub per_customer_limit: Option<i64>,
    /// `daily`: re-armed at 00:00 UTC every day with full stock.
    #[serde(default)]
    pub recurrence: Option<RecurrenceInput>,
}

/// Every field optional; `per_customer_limit: null` removes the limit.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateDeal {
    #[serde(default)]
    pub product_name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub actual_price: Option<Money>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub final_price: Option<Money>,
    #[serde(default)]
    pub total_units: Option<i64>,
    #[serde(default)]
    pub available_units: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<Instant>,
    #[serde(default, alias = "expiry_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Instant>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub per_customer_limit: Option<Option<i64>>,
    #[serde(default)]
    pub recurrence: Option<RecurrenceInput>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Collects the problems of a deal's terms and units.
fn check_terms(
    terms: &DealTerms,
    total_units: i64,
    available_units: i64,
    errors: &mut FieldErrors,
) {
    let mut fail =
        |field: &str, problem: String| errors.entry(field.to_owned()).or_default().push(problem);
    let name = terms.product_name.trim();
    if name.is_empty() || name.chars().count() > PRODUCT_NAME_MAX_CHARS {
        fail(
            "product_name",
            format!("must be 1–{PRODUCT_NAME_MAX_CHARS} characters"),
        );
    }
    if terms.actual_price <= 0 {
        fail("actual_price", "must be greater than 0".into());
    }
    if terms.final_price <= 0 {
        fail("final_price", "must be greater than 0".into());
    }
    if terms.final_price > terms.actual_price {
        fail(
            "final_price",
            "must not be greater than actual_price".into(),
        );
    }
    if !(0..=UNITS_MAX).contains(&total_units) {
        fail("total_units", format!("must be from 0 to {UNITS_MAX}"));
    }
    if available_units < 0 || available_units > total_units {
        fail("available_units", "must be from 0 to total_units".into());
    }
    if terms.expires_at <= terms.starts_at {
        fail("expires_at", "must be after starts_at".into());
    } else if terms.expires_at - terms.starts_at > WINDOW_MAX_MS {
        fail(
            "expires_at",
            "the window may be at most 12 hours long".into(),
        );
    }
    if terms
        .per_customer_limit
        .is_some_and(|limit| !(1..=UNITS_MAX).contains(&limit))
    {
        fail(
            "per_customer_limit",
            "must be at least 1 (or null for no limit)".into(),
        );
    }
}

pub async fn create_deal(state: &State, input: CreateDeal) -> Result<DealRecord, ApiError> {
    let now = now_ms();
    let terms = DealTerms {
        product_name: input.product_name.trim().to_owned(),
        actual_price: input.actual_price.0,
        final_price: input.final_price.0,
        starts_at: input.starts_at.map_or(now, |at| at.0),
        expires_at: input.expires_at.0,
        per_customer_limit: input.per_customer_limit,
        recurrence: input.recurrence.map_or(Recurrence::None, Recurrence::from),
    };
    let available_units = input.available_units.unwrap_or(input.total_units);
    let mut errors = FieldErrors::new();
    check_terms(&terms, input.total_units, available_units, &mut errors);
    if terms.expires_at <= now && !errors.contains_key("expires_at") {
        errors.insert("expires_at".into(), vec!["must be in the future".into()]);
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let deal = NewDeal {
        terms,
        total_units: input.total_units,
        available_units,
    };
    let record = state.store.insert_deal(&deal, now).await?;
    state.engine.launch(LoadedDeal {
        record: record.clone(),
        units_by_customer: Default::default(),
    });
    tracing::info!(
        deal_id = record.id,
        units = record.total_units,
        "deal created"
    );
    Ok(record)
}

fn handle_of(state: &State, deal_id: i64) -> Result<DealHandle, ApiError> {
    state
        .engine
        .registry()
        .get(deal_id)
        .ok_or_else(|| ApiError::not_found("deal"))
}

fn engine_gone(_: actix::MailboxError) -> ApiError {
    ApiError::new(
        ErrorCode::Overloaded,
        "the deal's engine is busy or stopping; retry shortly",
    )
}

async fn snapshot(handle: &DealHandle) -> Result<DealRecord, ApiError> {
    Ok(handle.addr.send(Snapshot).await.map_err(engine_gone)??)
}

/// Applies a partial update: terms are persisted then given to the actor; units move through
/// the actor's `Resize` (the actor knows what is sold) with the store in step.
pub async fn update_deal(
    state: &State,
    deal_id: i64,
    input: UpdateDeal,
) -> Result<DealRecord, ApiError> {
    let handle = handle_of(state, deal_id)?;
    let current = snapshot(&handle).await?;
    let old = current.terms();
    let terms = DealTerms {
        product_name: input
            .product_name
            .map_or(old.product_name.clone(), |name| name.trim().to_owned()),
        actual_price: input.actual_price.map_or(old.actual_price, |price| price.0),
        final_price: input.final_price.map_or(old.final_price, |price| price.0),
        starts_at: input.starts_at.map_or(old.starts_at, |at| at.0),
        expires_at: input.expires_at.map_or(old.expires_at, |at| at.0),
        per_customer_limit: input.per_customer_limit.unwrap_or(old.per_customer_limit),
        recurrence: input.recurrence.map_or(old.recurrence, Recurrence::from),
    };
    let sold_units = current.total_units - current.available_units;
    let delta_units = match (input.total_units, input.available_units) {
        (None, None) => 0,
        (Some(total), None) => total - current.total_units,
        (None, Some(available)) => available - current.available_units,
        (Some(total), Some(available)) if total - available == sold_units => {
            total - current.total_units
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "available_units",
                format!(
                    "{sold_units} units are sold, so available_units must be total_units - {sold_units}"
                ),
            ));
        }
    };
    let mut errors = FieldErrors::new();
    let new_total = current.total_units + delta_units;
    check_terms(
        &terms,
        new_total.max(0),
        (current.available_units + delta_units).clamp(0, new_total.max(0)),
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let now = now_ms();
    if terms != old {
        state.store.update_deal_terms(deal_id, &terms, now).await?;
        handle
            .addr
            .send(Amend {
                terms,
                updated_at: now,
            })
            .await
            .map_err(engine_gone)??;
    }
    if delta_units != 0 {
        resize(state, &handle, deal_id, delta_units, now).await?;
    }
    snapshot(&handle).await
}

/// Shrinking: the actor first (it refuses to go below what is sold), then the store. Growing:
/// the store first, then the actor. Either way a failure leaves the two in step.
async fn resize(
    state: &State,
    handle: &DealHandle,
    deal_id: i64,
    delta_units: i64,
    now: Millis,
) -> Result<(), ApiError> {
    if delta_units < 0 {
        handle
            .addr
            .send(Resize { delta_units })
            .await
            .map_err(engine_gone)??;
        if let Err(error) = state.store.resize_deal(deal_id, delta_units, now).await {
            let _ = handle
                .addr
                .send(Resize {
                    delta_units: -delta_units,
                })
                .await;
            return Err(error.into());
        }
    } else {
        state.store.resize_deal(deal_id, delta_units, now).await?;
        let grown = handle.addr.send(Resize { delta_units }).await;
        if !matches!(grown, Ok(Ok(_))) {
            tracing::error!(
                deal_id,
                delta_units,
                "store grew but the actor did not; the next start re-derives the stock"
            );
            return Err(ApiError::new(ErrorCode::Internal, "internal error"));
        }
    }
    Ok(())
}

/// Closes (`closed`) or reopens a deal: the actor first, so no order slips in after a close;
/// the store after, reverting the actor if the store fails.
pub async fn set_closed(state: &State, deal_id: i64, closed: bool) -> Result<DealRecord, ApiError> {
    let handle = handle_of(state, deal_id)?;
    let before = snapshot(&handle).await?;
    let now = now_ms();
    let record = handle
        .addr
        .send(SetClosed {
            closed,
            updated_at: now,
        })
        .await
        .map_err(engine_gone)??;
    if let Err(error) = state.store.set_deal_closed(deal_id, closed, now).await {
        let _ = handle
            .addr
            .send(SetClosed {
                closed: before.closed,
                updated_at: before.updated_at,
            })
            .await;
        return Err(error.into());
    }
    tracing::info!(deal_id, closed, "deal closed flag changed");
    Ok(record)
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub status: Option<String>,
    #[serde(flatten)]
    pub page: PageQuery,
}

/// Deals from memory: ACTIVE and SOLD_OUT for everyone; admins may filter by `?status=` (or `all`).
pub fn list_deals(
    state: &State,
    req: &HttpRequest,
    is_admin: bool,
    query: &ListQuery,
) -> Result<Page<DealView>, ApiError> {
    let page = PageRequest::from_query(&query.page)?;
    let wanted: Option<Vec<DealStatus>> = match query.status.as_deref().filter(|_| is_admin) {
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
    let record = create_deal(&state, input).await?;
    Ok(HttpResponse::Created().json(DealView::new(&record, now_ms())))
}

pub async fn list(
    state: State,
    req: HttpRequest,
    caller: MaybeCaller,
    query: web::Query<ListQuery>,
) -> Result<web::Json<Page<DealView>>, ApiError> {
    let is_admin = caller.0.is_some_and(|caller| caller.is_admin());
    Ok(web::Json(list_deals(&state, &req, is_admin, &query)?))
}

pub async fn get(state: State, id: web::Path<String>) -> Result<web::Json<DealView>, ApiError> {
    let handle = handle_of(&state, path_id(&id, "deal")?)?;
    Ok(web::Json(DealView::new(
        &handle.mirror.snapshot(),
        now_ms(),
    )))
}

pub async fn update(
    state: State,
    _: Admin,
    id: web::Path<String>,
    JsonBody(input): JsonBody<UpdateDeal>,
) -> Result<web::Json<DealView>, ApiError> {
    let record = update_deal(&state, path_id(&id, "deal")?, input).await?;
    Ok(web::Json(DealView::new(&record, now_ms())))
}

pub async fn close(
    state: State,
    _: Admin,
    id: web::Path<String>,
) -> Result<web::Json<DealView>, ApiError> {
    let record = set_closed(&state, path_id(&id, "deal")?, true).await?;
    Ok(web::Json(DealView::new(&record, now_ms())))
}

pub async fn open(
    state: State,
    _: Admin,
    id: web::Path<String>,
) -> Result<web::Json<DealView>, ApiError> {
    let record = set_closed(&state, path_id(&id, "deal")?, false).await?;
    Ok(web::Json(DealView::new(&record, now_ms())))
}
