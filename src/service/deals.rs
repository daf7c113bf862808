//! Deals as admins change them: create, update, close, open. Each change is a sequence over
//! the deal's actor and the store, in the order that keeps them in step when a step fails; a
//! failed undo (or a change the store took and the actor did not) reloads the deal from the
//! store (`service::reload_deal`), so the two never part silently.

use actors::Millis;
use actors::clock::now_ms;
use actors::deal::{Amend, DealRecord, DealTerms, Recurrence, Resize, SetClosed};
use actors::deal_handle::DealHandle;
use actors::journal::LoadedDeal;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::{engine_gone, handle_of, reload_deal, snapshot};
use crate::error::{ApiError, ErrorCode, FieldErrors};
use crate::state::AppState;
use crate::store::NewDeal;
use crate::wire::{Instant, Money, MoneyInput};

pub use actors::limits::{
    PAYMENT_WINDOW_SECS_MAX, PRODUCT_NAME_MAX_CHARS, UNITS_MAX, WINDOW_MAX_MS,
};

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
    #[schema(value_type = MoneyInput, inline)]
    pub actual_price: Money,
    #[schema(value_type = MoneyInput, inline)]
    pub final_price: Money,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub total_units: i64,
    /// A new deal has sold nothing: when given, it must equal `total_units` (the default).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
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
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub per_customer_limit: Option<i64>,
    /// Seconds an order has to be paid in (then the engine cancels it); absent or null: no
    /// payment step.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86_400)]
    pub payment_window_secs: Option<i64>,
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
    #[schema(value_type = Option<MoneyInput>, inline)]
    pub actual_price: Option<Money>,
    #[serde(default)]
    #[schema(value_type = Option<MoneyInput>, inline)]
    pub final_price: Option<Money>,
    /// 0 to 1,000,000,000, and not below the units sold (409). The schema leaves the whole
    /// int64 range open on purpose: the fuzzer in `.ci/schemathesis.sh` then sends the extremes
    /// (issue 8's `-9223372036854775808`) to live deals, and each must be a 400.
    #[serde(default)]
    pub total_units: Option<i64>,
    /// 0 to 1,000,000,000 minus the units sold; the total moves with it.
    #[serde(default)]
    pub available_units: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<Instant>,
    #[serde(default, alias = "expiry_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Instant>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000_000)]
    pub per_customer_limit: Option<Option<i64>>,
    /// Applies to orders placed from now on; `null` removes the payment step.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 86_400)]
    pub payment_window_secs: Option<Option<i64>>,
    #[serde(default)]
    pub recurrence: Option<RecurrenceInput>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

fn fail(errors: &mut FieldErrors, field: &str, problem: String) {
    errors.entry(field.to_owned()).or_default().push(problem);
}

/// Collects the problems of a deal's terms (everything but its units).
fn check_terms(terms: &DealTerms, errors: &mut FieldErrors) {
    let name = terms.product_name.trim();
    if name.is_empty() || name.chars().count() > PRODUCT_NAME_MAX_CHARS {
        fail(
            errors,
            "product_name",
            format!("must be 1–{PRODUCT_NAME_MAX_CHARS} characters"),
        );
    }
    if terms.actual_price <= 0 {
        fail(errors, "actual_price", "must be greater than 0".into());
    }
    if terms.final_price <= 0 {
        fail(errors, "final_price", "must be greater than 0".into());
    }
    if terms.final_price > terms.actual_price {
        fail(
            errors,
            "final_price",
            "must not be greater than actual_price".into(),
        );
    }
    // Instants come from RFC 3339 text (years 0–9999 at most), but the difference is taken
    // with a checked operation all the same: nothing here may wrap.
    match terms.expires_at.checked_sub(terms.starts_at) {
        Some(window) if window <= 0 => fail(errors, "expires_at", "must be after starts_at".into()),
        Some(window) if window <= WINDOW_MAX_MS => {}
        _ => fail(
            errors,
            "expires_at",
            "the window may be at most 12 hours long".into(),
        ),
    }
    if terms
        .per_customer_limit
        .is_some_and(|limit| !(1..=UNITS_MAX).contains(&limit))
    {
        fail(
            errors,
            "per_customer_limit",
            "must be at least 1 (or null for no limit)".into(),
        );
    }
    if terms
        .payment_window_secs
        .is_some_and(|secs| !(1..=PAYMENT_WINDOW_SECS_MAX).contains(&secs))
    {
        fail(
            errors,
            "payment_window_secs",
            format!(
                "must be from 1 to {PAYMENT_WINDOW_SECS_MAX} seconds (or null for no payment step)"
            ),
        );
    }
}

/// Checks a unit count from a request against its range, before any arithmetic touches it.
fn check_units_field(field: &str, value: Option<i64>, errors: &mut FieldErrors) {
    if value.is_some_and(|units| !(0..=UNITS_MAX).contains(&units)) {
        fail(errors, field, format!("must be from 0 to {UNITS_MAX}"));
    }
}

pub async fn create_deal(state: &AppState, input: CreateDeal) -> Result<DealRecord, ApiError> {
    let now = now_ms();
    let terms = DealTerms {
        product_name: input.product_name.trim().to_owned(),
        actual_price: input.actual_price.0,
        final_price: input.final_price.0,
        starts_at: input.starts_at.map_or(now, |at| at.0),
        expires_at: input.expires_at.0,
        per_customer_limit: input.per_customer_limit,
        payment_window_secs: input.payment_window_secs,
        recurrence: input.recurrence.map_or(Recurrence::None, Recurrence::from),
    };
    let available_units = input.available_units.unwrap_or(input.total_units);
    let mut errors = FieldErrors::new();
    check_terms(&terms, &mut errors);
    check_units_field("total_units", Some(input.total_units), &mut errors);
    check_units_field("available_units", input.available_units, &mut errors);
    // A new deal has sold nothing, so conservation (available + units in orders == total)
    // leaves one value: a smaller one would be units neither on the shelf nor in any order
    // (the engine, deriving stock from the orders, would show the full total).
    if !errors.contains_key("total_units")
        && !errors.contains_key("available_units")
        && available_units != input.total_units
    {
        fail(
            &mut errors,
            "available_units",
            "a new deal has sold nothing, so available_units must equal total_units (or be left out)".into(),
        );
    }
    if terms.expires_at <= now {
        // Without a starts_at (now, by default) "after starts_at" would name a field the
        // client never sent: the past is the whole problem.
        if input.starts_at.is_none() || !errors.contains_key("expires_at") {
            errors.insert("expires_at".into(), vec!["must be in the future".into()]);
        }
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
    check_terms(&terms, &mut errors);
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
