//! `POST /orders/{id}/tracking` (admins record what happened to an order after it was placed)
//! and `GET /orders/{id}/tracking` (its customer or an admin reads it, oldest first).

use actix_web::{HttpRequest, HttpResponse, web};
use actors::clock::now_ms;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Admin, Caller};
use crate::error::{ApiError, FieldErrors};
use crate::json::JsonBody;
use crate::routes::request::{PageQuery, PageRequest, path_id};
use crate::service::orders::order_for;
use crate::state::State;
use crate::store::{NewTrackingEvent, TrackingEvent};
use crate::wire::{Page, rfc3339};

const STATUS_MAX_CHARS: usize = 50;
const LOCATION_MAX_CHARS: usize = 200;
const DESCRIPTION_MAX_CHARS: usize = 1_000;

#[derive(Debug, Deserialize, ToSchema)]
pub struct TrackingRequest {
    /// What happened, in a word or a few: `SHIPPED`, `AT_DEPOT`, `DELIVERED` … (1–50
    /// characters).
    pub status: String,
    /// Where (up to 200 characters).
    #[serde(default)]
    pub location: Option<String>,
    /// More words (up to 1,000 characters).
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrackingView {
    pub id: i64,
    pub status: String,
    pub location: Option<String>,
    pub description: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&TrackingEvent> for TrackingView {
    fn from(event: &TrackingEvent) -> Self {
        Self {
            id: event.id,
            status: event.status.clone(),
            location: event.location.clone(),
            description: event.description.clone(),
            created_at: rfc3339(event.created_at),
        }
    }
}

/// Trimmed text within its bounds, or the problem with it; empty optional text is absent.
fn text(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<&str>,
    max: usize,
    required: bool,
) -> Option<String> {
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    match value {
        None if required => {
            errors
                .entry(field.to_owned())
                .or_default()
                .push(format!("must be 1–{max} characters"));
            None
        }
        Some(v) if v.chars().count() > max || v.chars().any(char::is_control) => {
            errors
                .entry(field.to_owned())
                .or_default()
                .push(format!("must be at most {max} printable characters"));
            None
        }
        other => other.map(str::to_owned),
    }
}

impl TrackingRequest {
    /// The event this asks for, and every problem with it.
    fn checked(&self) -> (Option<NewTrackingEvent>, FieldErrors) {
        let mut errors = FieldErrors::new();
        let status = text(
            &mut errors,
            "status",
            Some(&self.status),
            STATUS_MAX_CHARS,
            true,
        );
        let location = text(
            &mut errors,
            "location",
            self.location.as_deref(),
            LOCATION_MAX_CHARS,
            false,
        );
        let description = text(
            &mut errors,
            "description",
            self.description.as_deref(),
            DESCRIPTION_MAX_CHARS,
            false,
        );
        let event = status.map(|status| NewTrackingEvent {
            status,
            location,
            description,
        });
        (event, errors)
    }
}

impl crate::json::Checked for TrackingRequest {
    fn problems(&self, _: &[String]) -> FieldErrors {
        self.checked().1
    }
}

pub async fn add(
    state: State,
    admin: Admin,
    id: web::Path<String>,
    JsonBody(input): JsonBody<TrackingRequest>,
) -> Result<HttpResponse, ApiError> {
    let order = order_for(&state, admin.0, path_id(&id, "order")?).await?;
    let (event, errors) = input.checked();
    let Some(event) = event.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let stored = state
        .store
        .add_tracking_event(order.id, &event, now_ms())
        .await?;
    Ok(HttpResponse::Created().json(TrackingView::from(&stored)))
}

pub async fn list(
    state: State,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<TrackingView>>, ApiError> {
    let order = order_for(&state, caller, path_id(&id, "order")?).await?;
    let page = PageRequest::from_query(&query)?;
    let (count, events) = state
        .store
        .tracking_events(order.id, page.page_size, page.offset())
        .await?;
    let views = events.iter().map(TrackingView::from).collect();
    Ok(web::Json(page.wrap(&req, count, views)))
}
