//! `GET /api/v1/deals/{id}/events`: the deal's live stock as server-sent events (`crate::live`).
//! Public, like the deal itself; served from the mirror on every node.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::error::{ApiError, ErrorCode};
use crate::routes::request::path_id;
use crate::state::State;

pub async fn stream(state: State, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let deal_id = path_id(&id, "deal")?;
    let handle = state
        .engine
        .registry()
        .get(deal_id)
        .ok_or_else(|| ApiError::not_found("deal"))?;
    if state.is_draining() {
        return Err(ApiError::new(
            ErrorCode::Overloaded,
            "this node is shutting down: connect to another",
        ));
    }
    let listener = state.live.subscribe(deal_id, &handle.mirror).map_err(|_| {
        ApiError::new(
            ErrorCode::Overloaded,
            "this node holds as many live stock listeners as it may (TOPKART_EVENT_LISTENERS_MAX)",
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Proxies that buffer (nginx) would hold the events back.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(crate::live::stream(listener, state.live.stream_max())))
}
