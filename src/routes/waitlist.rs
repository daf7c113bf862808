//! `POST /deals/{id}/waitlist` (join a sold-out deal's waitlist), `GET /deals/{id}/waitlist/me`
//! (the caller's entry and place) and `DELETE /deals/{id}/waitlist/me` (leave). Joining and
//! leaving go to the deal's owner, whose actor holds the line; reading is the store's.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::JsonBytes;
use crate::routes::forward;
use crate::routes::request::path_id;
use crate::service::waitlist::{self, Entry};
use crate::state::State;
use crate::wire::rfc3339;

#[derive(Debug, Deserialize, ToSchema)]
pub struct JoinWaitlist {
    /// Units wanted (1 to 10,000; default 1).
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 10_000)]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WaitlistEntryView {
    pub deal_id: i64,
    pub quantity: i64,
    /// The entry's place in the line (1: served next) while it waits; otherwise null.
    pub position: Option<i64>,
    /// `WAITING`, `PROMOTED` (served: `order_id` is its order), `LEFT` or `EXPIRED`.
    pub status: String,
    pub order_id: Option<i64>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Entry> for WaitlistEntryView {
    fn from(entry: &Entry) -> Self {
        Self {
            deal_id: entry.row.deal_id,
            quantity: entry.row.quantity,
            position: (entry.status == "WAITING").then_some(entry.row.position),
            status: entry.status.to_owned(),
            order_id: entry.row.order_id,
            created_at: rfc3339(entry.row.created_at),
        }
    }
}

pub async fn join(
    state: State,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<HttpResponse, ApiError> {
    let deal_id = path_id(&id, "deal")?;
    if let Some(owner) = forward::owner_elsewhere(&state, &req, deal_id).await? {
        return Ok(forward::forward(&owner, &req, body).await);
    }
    // No body at all asks for one unit.
    let input: JoinWaitlist = if body.iter().all(u8::is_ascii_whitespace) {
        JoinWaitlist { quantity: 1 }
    } else {
        crate::json::parse(&body)?
    };
    let entry = waitlist::join(&state, caller, deal_id, input.quantity).await?;
    Ok(HttpResponse::Created().json(WaitlistEntryView::from(&entry)))
}

pub async fn mine(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let entry = waitlist::mine(&state, caller, path_id(&id, "deal")?).await?;
    Ok(HttpResponse::Ok().json(WaitlistEntryView::from(&entry)))
}

pub async fn leave(
    state: State,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let deal_id = path_id(&id, "deal")?;
    if let Some(owner) = forward::owner_elsewhere(&state, &req, deal_id).await? {
        return Ok(forward::forward(&owner, &req, Bytes::new()).await);
    }
    waitlist::leave(&state, caller, deal_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
