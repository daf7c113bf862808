//! Deals as admins change them: create, update, close, open. Each change is a sequence over
//! the deal's actor and the store, in the order that keeps them in step when a step fails; a
//! failed undo (or a change the store took and the actor did not) reloads the deal from the
//! store (`service::reload_deal`), so the two never part silently.

use actors::Millis;
use actors::clock::now_ms;
use actors::deal::{Amend, DealRecord, DealTerms, Recurrence, Resize, SetClosed};
use actors::deal_handle::DealHandle;
use actors::journal::LoadedDeal;

use super::{engine_gone, handle_of, reload_deal, snapshot};
use crate::error::{ApiError, ErrorCode, FieldErrors};
use crate::state::AppState;
use crate::store::NewDeal;

pub use super::deal_input::{CreateDeal, RecurrenceInput, UpdateDeal};
use super::deal_input::{check_terms, check_units_field};
pub use actors::limits::{
    PAYMENT_WINDOW_SECS_MAX, PRODUCT_NAME_MAX_CHARS, UNITS_MAX, WINDOW_MAX_MS,
};
pub async fn create_deal(state: &AppState, input: CreateDeal) -> Result<DealRecord, ApiError> {
    let now = now_ms();
    let errors = input.problems_at(now, &[]);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let terms = input.terms(now);
    let available_units = input.available_units.unwrap_or(input.total_units);
    let deal = NewDeal {
        terms,
        total_units: input.total_units,
        available_units,
    };
    let record = state.store.insert_deal(&deal, now).await?;
    super::start_deal(
        state,
        LoadedDeal {
            record: record.clone(),
            units_by_customer: Default::default(),
            claims: Vec::new(),
            waitlist: Vec::new(),
        },
    );
    tracing::info!(
        deal_id = record.id,
        units = record.total_units,
        "deal created"
    );
    Ok(record)
}

/// Applies a partial update: terms are persisted then given to the actor; units move through
/// the actor's `Resize` (the actor knows what is sold) with the store in step.
pub async fn update_deal(
    state: &AppState,
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
        payment_window_secs: input.payment_window_secs.unwrap_or(old.payment_window_secs),
        recurrence: input.recurrence.map_or(old.recurrence, Recurrence::from),
    };
    let mut errors = FieldErrors::new();
    check_terms(&terms, &mut errors, |_| true);
    check_units_field("total_units", input.total_units, &mut errors);
    check_units_field("available_units", input.available_units, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let delta_units = units_change(&current, input.total_units, input.available_units)?;
    let now = now_ms();
    // Units first: a change below what is sold is refused (409) before anything else moved,
    // so a refused update changes nothing.
    if delta_units != 0 {
        resize(state, &handle, &current, delta_units, now).await?;
    }
    if terms != old {
        state
            .store
            .update_deal_terms(deal_id, current.owner_epoch, &terms, now)
            .await?;
        let amended = handle
            .addr
            .send(Amend {
                terms,
                updated_at: now,
            })
            .await;
        if let Err(mailbox) = amended {
            // The store holds the new terms: the actor takes the deal in as stored.
            tracing::error!(deal_id, %mailbox, "the store took new terms that the deal's actor did not");
            return reload_deal(state, deal_id, "a change of terms")
                .await
                .ok_or_else(|| ApiError::new(ErrorCode::Internal, "internal error"));
        }
    }
    snapshot(&handle).await
}

/// How far an update moves the deal's units: both inputs already lie in `0..=UNITS_MAX` and the
/// current record is sound, so every sum and difference here is far inside `i64`. The actor
/// checks the new total again (against what is sold by then, and against `UNITS_MAX`).
fn units_change(
    current: &DealRecord,
    total_units: Option<i64>,
    available_units: Option<i64>,
) -> Result<i64, ApiError> {
    let sold_units = current.total_units - current.available_units;
    let new_total = match (total_units, available_units) {
        (None, None) => return Ok(0),
        (Some(total), None) => total,
        (None, Some(available)) => available + sold_units,
        (Some(total), Some(available)) if total - available == sold_units => total,
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "available_units",
                format!(
                    "{sold_units} units are sold, so available_units must be total_units - {sold_units}"
                ),
            ));
        }
    };
    if new_total > UNITS_MAX {
        return Err(ApiError::field(
            "available_units",
            format!(
                "{sold_units} units are sold, so at most {} can be available",
                UNITS_MAX - sold_units
            ),
        ));
    }
    Ok(new_total - current.total_units)
}

/// Shrinking: the actor first (it refuses to go below what is sold), then the store. Growing:
/// the store first, then the actor. Either way a failure leaves the two in step.
async fn resize(
    state: &AppState,
    handle: &DealHandle,
    current: &DealRecord,
    delta_units: i64,
    now: Millis,
) -> Result<(), ApiError> {
    let deal_id = current.id;
    if delta_units < 0 {
        handle
            .addr
            .send(Resize {
                delta_units,
                updated_at: now,
            })
            .await
            .map_err(engine_gone)??;
        if let Err(error) = state
            .store
            .resize_deal(deal_id, current.owner_epoch, delta_units, now)
            .await
        {
            let undone = handle
                .addr
                .send(Resize {
                    delta_units: -delta_units,
                    updated_at: current.updated_at,
                })
                .await;
            if let Some(cause) = failure(undone) {
                undo_failed(state, deal_id, "a units change", &cause, &error).await;
            }
            return Err(error.into());
        }
    } else {
        state
            .store
            .resize_deal(deal_id, current.owner_epoch, delta_units, now)
            .await?;
        let grown = handle
            .addr
            .send(Resize {
                delta_units,
                updated_at: now,
            })
            .await;
        if let Some(cause) = failure(grown) {
            // The store holds the change: the actor takes the deal in as stored.
            tracing::error!(deal_id, delta_units, %cause, "the store took a units change that the deal's actor did not");
            reload_deal(state, deal_id, "a units change")
                .await
                .ok_or_else(|| ApiError::new(ErrorCode::Internal, "internal error"))?;
        }
    }
    Ok(())
}

/// Why a step sent to the deal's actor did not happen, if it did not.
fn failure<T, E: std::fmt::Display>(
    outcome: Result<Result<T, E>, actix::MailboxError>,
) -> Option<String> {
    match outcome {
        Ok(Ok(_)) => None,
        Ok(Err(refusal)) => Some(refusal.to_string()),
        Err(mailbox) => Some(format!("the deal's actor could not be reached: {mailbox}")),
    }
}

/// The store refused a change the actor had already made, and the actor would not take the
/// change back: logged with both causes, and the deal reloaded from the store.
async fn undo_failed(
    state: &AppState,
    deal_id: i64,
    what: &str,
    cause: &str,
    store_error: &crate::store::StoreError,
) {
    tracing::error!(
        deal_id,
        what,
        undo_error = %cause,
        store_error = %crate::telemetry::error_chain(store_error),
        "the store refused a deal change and its undo failed; reloading the deal from the store"
    );
    reload_deal(state, deal_id, what).await;
}

/// Closes (`closed`) or reopens a deal: the actor first, so no order slips in after a close;
/// the store after, reverting the actor if the store fails.
pub async fn set_closed(
    state: &AppState,
    deal_id: i64,
    closed: bool,
) -> Result<DealRecord, ApiError> {
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
    if let Err(error) = state
        .store
        .set_deal_closed(deal_id, before.owner_epoch, closed, now)
        .await
    {
        let undone = handle
            .addr
            .send(SetClosed {
                closed: before.closed,
                updated_at: before.updated_at,
            })
            .await;
        if let Some(cause) = failure(undone) {
            let what = if closed { "a close" } else { "a reopening" };
            undo_failed(state, deal_id, what, &cause, &error).await;
        }
        return Err(error.into());
    }
    tracing::info!(deal_id, closed, "deal closed flag changed");
    Ok(record)
}
