//! `JsonBody<T>`: the JSON request extractor, with every failure in the API's envelope.
//!
//! A wrong content type or unparsable JSON is a 400 `MALFORMED_JSON`; a missing or mistyped
//! field is a 400 `VALIDATION_ERROR` whose `errors` names the field (via serde_path_to_error);
//! a body over the configured limit is a 413.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, dev::Payload, error::PayloadError};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = JsonBytes::from_request(req, payload);
        Box::pin(async move {
            let JsonBytes(bytes) = body.await?;
            parse(&bytes).map(JsonBody)
        })
    }
}

/// A JSON request body as it came, unparsed (the content type and size checked as for
/// [`JsonBody`]): for a request that may be forwarded as it is to another node (cluster mode)
/// and parsed with [`parse`] otherwise.
pub struct JsonBytes(pub Bytes);

impl FromRequest for JsonBytes {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        let body = Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::new(
                    ErrorCode::MalformedJson,
                    "the body must be JSON, sent with Content-Type: application/json",
                ));
            }
            body.await
                .map(JsonBytes)
                .map_err(|error| match error.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => {
                        ApiError::new(ErrorCode::PayloadTooLarge, "the request body is too large")
                    }
                    _ => ApiError::new(
                        ErrorCode::MalformedJson,
                        "the request body could not be read",
                    ),
                })
        })
    }
}

/// Parses a JSON document into `T`, naming the offending field on a data error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body of this API is an object; serde would also build a struct from an array.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
            return Err(ApiError::field("body", "must be a JSON object"));
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::MalformedJson,
                "malformed JSON: the body is not a JSON document",
            ));
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::new(ErrorCode::MalformedJson, format!("malformed JSON: {inner}"));
        }
        let message = strip_position(&inner.to_string());
        let field = match path.as_str() {
            "." | "" => missing_field_name(&message).unwrap_or_else(|| "body".to_owned()),
            path => path.to_owned(),
        };
        ApiError::field(&field, message)
    })?;
    deserializer.end().map_err(|_| {
        ApiError::new(
            ErrorCode::MalformedJson,
            "malformed JSON: trailing characters after the document",
        )
    })?;
    Ok(value)
}

/// serde_json appends " at line L column C"; the field name says more to an API client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// "missing field `deal_id`" → "deal_id".
fn missing_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next().map(str::to_owned)
}
