//! A deal as a request gives it: the bodies that create and change one, read and checked
//! (every problem named at once), before the service acts on them (`service::deals`).

use actors::Millis;
use actors::clock::now_ms;
use actors::deal::{DealTerms, Recurrence};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use crate::error::FieldErrors;
use crate::json::Checked;
use crate::wire::{Instant, Money, MoneyInput};

use actors::limits::{PAYMENT_WINDOW_SECS_MAX, PRODUCT_NAME_MAX_CHARS, UNITS_MAX, WINDOW_MAX_MS};

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
    /// (`-9223372036854775808` once wrapped the update's arithmetic) to live deals, and each
    /// must be a 400.
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

pub(super) fn fail(errors: &mut FieldErrors, field: &str, problem: String) {
    errors.entry(field.to_owned()).or_default().push(problem);
}

/// Collects the problems of a deal's terms (everything but its units). `read(field)`: whether
/// the field's value is the client's (not a stand-in for a value already named as wrong); a
/// rule that compares two fields says nothing unless both are.
pub(super) fn check_terms(
    terms: &DealTerms,
    errors: &mut FieldErrors,
    read: impl Fn(&str) -> bool,
) {
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
    if terms.final_price > terms.actual_price && read("final_price") && read("actual_price") {
        fail(
            errors,
            "final_price",
            "must not be greater than actual_price".into(),
        );
    }
    // Instants come from RFC 3339 text (years 0–9999 at most), but the difference is taken
    // with a checked operation all the same: nothing here may wrap.
    match terms.expires_at.checked_sub(terms.starts_at) {
        _ if !read("expires_at") || !read("starts_at") => {}
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
pub(super) fn check_units_field(field: &str, value: Option<i64>, errors: &mut FieldErrors) {
    if value.is_some_and(|units| !(0..=UNITS_MAX).contains(&units)) {
        fail(errors, field, format!("must be from 0 to {UNITS_MAX}"));
    }
}

impl CreateDeal {
    /// The deal's terms, starting now unless `starts_at` says otherwise.
    pub(super) fn terms(&self, now: Millis) -> DealTerms {
        DealTerms {
            product_name: self.product_name.trim().to_owned(),
            actual_price: self.actual_price.0,
            final_price: self.final_price.0,
            starts_at: self.starts_at.map_or(now, |at| at.0),
            expires_at: self.expires_at.0,
            per_customer_limit: self.per_customer_limit,
            payment_window_secs: self.payment_window_secs,
            recurrence: self.recurrence.map_or(Recurrence::None, Recurrence::from),
        }
    }

    /// Every problem of a new deal, at `now`; `stood_in` as in [`Checked::problems`].
    pub(super) fn problems_at(&self, now: Millis, stood_in: &[String]) -> FieldErrors {
        let read = |field: &str| !stood_in.iter().any(|wrong| wrong == field);
        let terms = self.terms(now);
        let available_units = self.available_units.unwrap_or(self.total_units);
        let mut errors = FieldErrors::new();
        check_terms(&terms, &mut errors, read);
        check_units_field("total_units", Some(self.total_units), &mut errors);
        check_units_field("available_units", self.available_units, &mut errors);
        // A new deal has sold nothing, so conservation (available + units in orders == total)
        // leaves one value: a smaller one would be units neither on the shelf nor in any order
        // (the engine, deriving stock from the orders, would show the full total).
        if !errors.contains_key("total_units")
            && !errors.contains_key("available_units")
            && read("total_units")
            && read("available_units")
            && available_units != self.total_units
        {
            fail(
                &mut errors,
                "available_units",
                "a new deal has sold nothing, so available_units must equal total_units (or be left out)".into(),
            );
        }
        if terms.expires_at <= now && read("expires_at") {
            // Without a starts_at (now, by default) "after starts_at" would name a field the
            // client never sent: the past is the whole problem.
            if self.starts_at.is_none() || !errors.contains_key("expires_at") {
                errors.insert("expires_at".into(), vec!["must be in the future".into()]);
            }
        }
        errors
    }
}

impl Checked for CreateDeal {
    fn problems(&self, stood_in: &[String]) -> FieldErrors {
        self.problems_at(now_ms(), stood_in)
    }
}

/// Checked where the deal's current state is known (`update_deal`); here what each field says
/// alone.
impl Checked for UpdateDeal {
    fn problems(&self, _: &[String]) -> FieldErrors {
        let mut errors = FieldErrors::new();
        check_units_field("total_units", self.total_units, &mut errors);
        check_units_field("available_units", self.available_units, &mut errors);
        errors
    }
}
