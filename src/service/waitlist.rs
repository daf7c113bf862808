//! The waitlist (issue 12; DESIGN.md decision 11): joining a sold-out deal's waitlist, reading
//! one's entry, leaving it. The entry is stored first and then taken in by the deal's actor,
//! which decides (sold out, selling, within the limit, room left); a refused entry is removed
//! again, so the customer is never told of an entry the store does not hold, and a crash
//! between the two leaves an entry the actor loads at its next start.

use actors::clock::now_ms;
use actors::deal::{JoinRefusal, JoinWaitlist, LeaveWaitlist, Leaving};

use super::{engine_gone, handle_of, snapshot};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::store::{EntryRow, StoreError};

/// A customer's entry as the API shows it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub row: EntryRow,
    /// `WAITING`, `PROMOTED`, `LEFT` or `EXPIRED` (a waiting entry of a round that is over).
    pub status: &'static str,
}

fn customers_only(caller: Caller) -> Result<(), ApiError> {
    if caller.is_admin() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "waitlists are for customers",
        ));
    }
    Ok(())
}

/// Joins the deal's waitlist for `quantity` units.
pub async fn join(
    state: &AppState,
    caller: Caller,
    deal_id: i64,
    quantity: i64,
) -> Result<Entry, ApiError> {
    customers_only(caller)?;
    if !(1..=super::orders::QUANTITY_MAX).contains(&quantity) {
        return Err(ApiError::field(
            "quantity",
            format!("must be from 1 to {}", super::orders::QUANTITY_MAX),
        ));
    }
    let handle = handle_of(state, deal_id)?;
    let round = snapshot(&handle).await?.round;
    let now = now_ms();
    let entry = match state
        .store
        .insert_waitlist_entry(deal_id, round, caller.user_id, quantity, now)
        .await
    {
        Ok(entry) => entry,
        Err(StoreError::Conflict { .. }) => return Err(already_waiting()),
        Err(error) => return Err(error.into()),
    };
    let joined = handle
        .addr
        .send(JoinWaitlist {
            entry,
            max: state.waitlist_max,
        })
        .await;
    let refusal = match joined {
        Ok(Ok(_)) => None,
        Ok(Err(refusal)) => Some(refused(refusal)),
        Err(mailbox) => Some(engine_gone(mailbox)),
    };
    if let Some(refusal) = refusal {
        // Never waited: gone from the store too. Should this fail, the actor takes the entry
        // in at its next start (a join the customer was told failed): logged.
        if let Err(error) = state.store.remove_waitlist_entry(entry.id).await {
            tracing::error!(deal_id, entry_id = entry.id, %error, "a refused waitlist entry could not be removed");
        }
        return Err(refusal);
    }
    tracing::info!(deal_id, entry_id = entry.id, quantity, "waitlist joined");
    mine(state, caller, deal_id).await
}

/// The caller's newest entry for the deal.
pub async fn mine(state: &AppState, caller: Caller, deal_id: i64) -> Result<Entry, ApiError> {
    customers_only(caller)?;
    let row = state
        .store
        .waitlist_entry_of(deal_id, caller.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("waitlist entry"))?;
    let over = row.deal_round != Some(row.round)
        || row
            .deal_expires_at
            .is_none_or(|expires_at| now_ms() >= expires_at);
    let status = match row.status.as_str() {
        "WAITING" if over => "EXPIRED",
        "WAITING" => "WAITING",
        "PROMOTED" => "PROMOTED",
        "LEFT" => "LEFT",
        _ => "EXPIRED",
    };
    Ok(Entry { row, status })
}

/// Leaves the deal's waitlist. An entry being served cannot be left: its order is on the way
/// (and can be cancelled).
pub async fn leave(state: &AppState, caller: Caller, deal_id: i64) -> Result<(), ApiError> {
    customers_only(caller)?;
    let handle = handle_of(state, deal_id)?;
    let leaving = handle
        .addr
        .send(LeaveWaitlist {
            customer_id: caller.user_id,
        })
        .await
        .map_err(engine_gone)?;
    let entry_id = match leaving {
        Leaving::Left(entry_id) => entry_id,
        Leaving::Serving(_) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "your entry is being served: its order is on the way (cancel the order instead)",
            ));
        }
        Leaving::NotWaiting => {
            // The store may still hold an entry the deal no longer waits on (an earlier
            // round's): it is left all the same.
            match state
                .store
                .waitlist_entry_of(deal_id, caller.user_id)
                .await?
            {
                Some(row) if row.status == "WAITING" => row.id,
                _ => return Err(ApiError::not_found("waitlist entry")),
            }
        }
    };
    state.store.leave_waitlist(entry_id, now_ms()).await?;
    tracing::info!(deal_id, entry_id, "waitlist left");
    Ok(())
}

fn already_waiting() -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        "you are on this deal's waitlist already",
    )
}

fn refused(refusal: JoinRefusal) -> ApiError {
    match refusal {
        JoinRefusal::NotSoldOut { available_units } => ApiError::new(
            ErrorCode::NotSoldOut,
            format!("{available_units} units are on the shelf: order them instead"),
        )
        .with_extra("available_units", serde_json::json!(available_units)),
        JoinRefusal::NotSelling(reason) => reason.into(),
        JoinRefusal::LimitExceeded { limit, already } => {
            actors::model::ReserveError::LimitExceeded { limit, already }.into()
        }
        JoinRefusal::AlreadyWaiting => already_waiting(),
        JoinRefusal::Full { max } => ApiError::new(
            ErrorCode::WaitlistFull,
            format!("the deal's waitlist is full ({max} customers are waiting)"),
        ),
        JoinRefusal::NotOwner => ApiError::deal_unavailable(),
    }
}
