//! `ApiError`: every failure the HTTP layer reports, and the one envelope it is reported in:
//! `{"status": "error", "code": "...", "message": "...", "errors": {"field": ["..."]}}`.
//!
//! Each code is one row of [`ErrorCode::table`]: its name and its HTTP status. An unexpected
//! failure becomes an opaque 500 whose cause chain goes to the log, never into the body.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use actors::deal::{PlaceError, ReserveError, ResizeError};
use serde::Serialize;

use crate::store::StoreError;
use crate::telemetry::error_chain;

/// Declares the codes once: the enum, [`ErrorCode::ALL`] and [`ErrorCode::table`] come from
/// the same rows, so a new code cannot be left out of the list docs/API.md is checked against.
macro_rules! error_codes {
    ($($code:ident => ($name:literal, $status:ident),)+) => {
        /// Every error code of the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($code,)+
        }

        impl ErrorCode {
            /// Every code, in the order of the table (docs/API.md lists them;
            /// `tests/api/api_doc.rs`).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$code,)+];

            /// The table: code → (name in the envelope, HTTP status).
            pub const fn table(self) -> (&'static str, StatusCode) {
                match self {
                    $(ErrorCode::$code => ($name, StatusCode::$status),)+
                }
            }
        }
    };
}

error_codes! {
    ValidationError => ("VALIDATION_ERROR", BAD_REQUEST),
    MalformedJson => ("MALFORMED_JSON", BAD_REQUEST),
    Unauthorized => ("UNAUTHORIZED", UNAUTHORIZED),
    InvalidToken => ("INVALID_TOKEN", UNAUTHORIZED),
    InvalidCredentials => ("INVALID_CREDENTIALS", UNAUTHORIZED),
    Forbidden => ("FORBIDDEN", FORBIDDEN),
    NotFound => ("NOT_FOUND", NOT_FOUND),
    MethodNotAllowed => ("METHOD_NOT_ALLOWED", METHOD_NOT_ALLOWED),
    Conflict => ("CONFLICT", CONFLICT),
    SoldOut => ("SOLD_OUT", CONFLICT),
    DealNotStarted => ("DEAL_NOT_STARTED", CONFLICT),
    DealExpired => ("DEAL_EXPIRED", CONFLICT),
    DealClosed => ("DEAL_CLOSED", CONFLICT),
    LimitExceeded => ("LIMIT_EXCEEDED", CONFLICT),
    InvalidTransition => ("INVALID_TRANSITION", CONFLICT),
    IdempotencyInProgress => ("IDEMPOTENCY_IN_PROGRESS", CONFLICT),
    PayloadTooLarge => ("PAYLOAD_TOO_LARGE", PAYLOAD_TOO_LARGE),
    IdempotencyMismatch => ("IDEMPOTENCY_MISMATCH", UNPROCESSABLE_ENTITY),
    RateLimited => ("RATE_LIMITED", TOO_MANY_REQUESTS),
    Internal => ("INTERNAL_ERROR", INTERNAL_SERVER_ERROR),
    StoreUnavailable => ("STORE_UNAVAILABLE", SERVICE_UNAVAILABLE),
    Overloaded => ("OVERLOADED", SERVICE_UNAVAILABLE),
    DealUnavailable => ("DEAL_UNAVAILABLE", SERVICE_UNAVAILABLE),
    // A gateway's answer: the request reached the deal's owner, which stopped answering;
    // whether it was carried out is not known here.
    OutcomeUnknown => ("OUTCOME_UNKNOWN", GATEWAY_TIMEOUT),
    InsufficientBalance => ("INSUFFICIENT_BALANCE", CONFLICT),
    PaymentExpired => ("PAYMENT_EXPIRED", CONFLICT),
    PaymentRequired => ("PAYMENT_REQUIRED", CONFLICT),
    PriceChanged => ("PRICE_CHANGED", CONFLICT),
    NotSoldOut => ("NOT_SOLD_OUT", CONFLICT),
    WaitlistFull => ("WAITLIST_FULL", CONFLICT),
}

impl ErrorCode {
    pub const fn name(self) -> &'static str {
        self.table().0
    }

    pub const fn status(self) -> StatusCode {
        self.table().1
    }
}

/// Field name → what is wrong with it.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// An error on its way to becoming a response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub errors: Option<FieldErrors>,
    /// Extra top-level fields of the envelope (e.g. `available_units` on SOLD_OUT).
    pub extra: Option<(&'static str, serde_json::Value)>,
    /// Seconds for a `Retry-After` header.
    pub retry_after_secs: Option<u32>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    status: &'static str,
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a FieldErrors>,
    #[serde(flatten)]
    extra: BTreeMap<&'static str, serde_json::Value>,
}

impl ApiError {
    /// 503 `DEAL_UNAVAILABLE`: the deal's owner is unknown or moving (cluster mode).
    pub fn deal_unavailable() -> Self {
        Self::new(
            ErrorCode::DealUnavailable,
            "the deal has no owner right now; retry shortly",
        )
    }

    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let retry_after_secs = matches!(
            code,
            ErrorCode::Overloaded
                | ErrorCode::StoreUnavailable
                | ErrorCode::RateLimited
                | ErrorCode::DealUnavailable
                | ErrorCode::OutcomeUnknown
        )
        .then_some(1);
        Self {
            code,
            message: message.into(),
            errors: None,
            extra: None,
            retry_after_secs,
        }
    }

    /// A 400 naming the fields that are wrong.
    pub fn validation(errors: FieldErrors) -> Self {
        let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
        let message = format!("invalid input: {}", fields.join(", "));
        Self {
            errors: Some(errors),
            ..Self::new(ErrorCode::ValidationError, message)
        }
    }

    /// A 400 for one field.
    pub fn field(field: &str, problem: impl Into<String>) -> Self {
        Self::validation(FieldErrors::from([(
            field.to_owned(),
            vec![problem.into()],
        )]))
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn forbidden() -> Self {
        Self::new(ErrorCode::Forbidden, "this action needs an admin")
    }

    /// An unexpected failure: logged with its cause chain, reported as an opaque 500.
    pub fn internal(error: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error_chain(error), "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }

    pub fn with_extra(mut self, key: &'static str, value: serde_json::Value) -> Self {
        self.extra = Some((key, value));
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let envelope = Envelope {
            status: "error",
            code: self.code.name(),
            message: &self.message,
            errors: self.errors.as_ref(),
            extra: self.extra.iter().cloned().collect(),
        };
        let mut response = HttpResponse::build(self.status_code());
        // Every 401 names the scheme to use (RFC 9110 section 15.5.2; RFC 6750 section 3).
        match self.code {
            ErrorCode::InvalidToken => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                ));
            }
            code if code.status() == StatusCode::UNAUTHORIZED => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            _ => {}
        }
        // Refusals an operator watches for: throttling and overload (by code).
        if matches!(self.code, ErrorCode::RateLimited | ErrorCode::Overloaded) {
            metrics::counter!("topkart_refusals_total", "code" => self.code.name()).increment(1);
        }
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        response.json(envelope)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { fields } => {
                let message = format!("{} already taken", fields.join(" and "));
                let errors = fields
                    .iter()
                    .map(|field| {
                        (
                            field.to_string(),
                            vec![format!("this {field} is already taken")],
                        )
                    })
                    .collect();
                Self {
                    errors: Some(errors),
                    ..Self::new(ErrorCode::Conflict, message)
                }
            }
            StoreError::OwnershipLost { deal_ids } => {
                metrics::counter!("topkart_cluster_changes_fenced_total").increment(1);
                tracing::warn!(
                    ?deal_ids,
                    "a deal change was fenced: another node owns the deal now"
                );
                Self::deal_unavailable()
            }
            StoreError::OutOfRange { .. } => {
                let mut conflict = Self::field("total_units", error.to_string());
                conflict.code = ErrorCode::Conflict;
                conflict.message = error.to_string();
                conflict
            }
            StoreError::OutcomeUnknown { .. } => {
                tracing::error!(error = %error_chain(&error), "a write's outcome is unknown");
                Self::new(
                    ErrorCode::OutcomeUnknown,
                    "the store took the change and its answer was lost: it may or may not have been made; read it back before retrying",
                )
            }
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            ) => {
                tracing::error!(error = %error_chain(&error), "store unavailable");
                Self::new(
                    ErrorCode::StoreUnavailable,
                    "the store is unavailable; retry shortly",
                )
            }
            other => Self::internal(&other),
        }
    }
}

impl From<ReserveError> for ApiError {
    fn from(error: ReserveError) -> Self {
        let message = error.to_string();
        match error {
            ReserveError::InvalidQuantity => Self::field("quantity", message),
            ReserveError::NotStarted => Self::new(ErrorCode::DealNotStarted, message),
            ReserveError::Expired => Self::new(ErrorCode::DealExpired, message),
            ReserveError::Closed => Self::new(ErrorCode::DealClosed, message),
            ReserveError::SoldOut { available_units } => Self::new(ErrorCode::SoldOut, message)
                .with_extra("available_units", available_units.into()),
            ReserveError::LimitExceeded { limit, .. } => {
                Self::new(ErrorCode::LimitExceeded, message)
                    .with_extra("per_customer_limit", limit.into())
            }
        }
    }
}

impl From<PlaceError> for ApiError {
    fn from(error: PlaceError) -> Self {
        match error {
            PlaceError::Refused(refusal) => refusal.into(),
            PlaceError::Overloaded => Self::new(ErrorCode::Overloaded, error.to_string()),
            PlaceError::OwnerChanged => Self::new(ErrorCode::DealUnavailable, error.to_string()),
            PlaceError::StoreFailed | PlaceError::ShuttingDown => Self::new(
                ErrorCode::StoreUnavailable,
                format!("{error}; nothing was charged or reserved"),
            ),
            // Neither stored nor failed: the client looks the order up, or retries with the
            // same Idempotency-Key, which answers from the store (docs/RELIABILITY.md).
            PlaceError::OutcomeUnknown => Self::new(
                ErrorCode::OutcomeUnknown,
                format!(
                    "{error}; look for it with GET /api/v1/orders, or retry with the same Idempotency-Key"
                ),
            ),
        }
    }
}

impl From<ResizeError> for ApiError {
    fn from(error: ResizeError) -> Self {
        match error {
            ResizeError::OutOfRange => Self::field("total_units", error.to_string()),
            ResizeError::BelowSold { .. } => {
                let mut conflict = Self::field("total_units", error.to_string());
                conflict.code = ErrorCode::Conflict;
                conflict.message = error.to_string();
                conflict
            }
        }
    }
}
