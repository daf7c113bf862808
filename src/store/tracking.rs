//! Tracking events: what happened to an order after it was placed, oldest first.

use actors::{Millis, OrderId};

use super::error::StoreError;
use super::pool::{Backend, Store, on_pool};

/// One tracking event as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TrackingEvent {
    pub id: i64,
    pub order_id: i64,
    pub status: String,
    pub location: Option<String>,
    pub description: Option<String>,
    pub created_at: i64,
}

/// An event to record, checked by the caller.
#[derive(Debug, Clone)]
pub struct NewTrackingEvent {
    pub status: String,
    pub location: Option<String>,
    pub description: Option<String>,
}

impl Store {
    pub async fn add_tracking_event(
        &self,
        order_id: OrderId,
        event: &NewTrackingEvent,
        now: Millis,
    ) -> Result<TrackingEvent, StoreError> {
        const SQL: &str = "INSERT INTO order_events (order_id, status, location, description, created_at) \
                           VALUES ($1, $2, $3, $4, $5) RETURNING *";
        let stored: TrackingEvent = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(order_id)
            .bind(&event.status)
            .bind(&event.location)
            .bind(&event.description)
            .bind(now)
            .fetch_one(pool)
            .await)?;
        Ok(stored)
    }

    /// A page of an order's events, oldest first, and how many it has.
    pub async fn tracking_events(
        &self,
        order_id: OrderId,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<TrackingEvent>), StoreError> {
        const COUNT: &str = "SELECT COUNT(*) FROM order_events WHERE order_id = $1";
        const PAGE: &str =
            "SELECT * FROM order_events WHERE order_id = $1 ORDER BY id LIMIT $2 OFFSET $3";
        let count: i64 =
            on_pool!(self, pool => sqlx::query_scalar(COUNT).bind(order_id).fetch_one(pool).await)?;
        let events: Vec<TrackingEvent> = on_pool!(self, pool => sqlx::query_as(PAGE).bind(order_id).bind(limit).bind(offset).fetch_all(pool).await)?;
        Ok((count, events))
    }
}
