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

use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode, FieldErrors};

pub struct JsonBody<T>(pub T);

/// A request body's own checks, beyond reading it: ranges, lengths, fields that must agree.
/// The extractor runs them on every body it reads, even one with fields it could not read, so
/// that one 400 names every wrong field at once.
pub trait Checked {
    /// Every problem, by field; none means the body is acceptable. `stood_in` names the fields
    /// whose values are stand-ins (they were wrong already, and are named so): a check that
    /// reads one of them must say nothing, lest it blame a field that is right.
    fn problems(&self, stood_in: &[String]) -> FieldErrors {
        let _ = stood_in;
        FieldErrors::new()
    }
}

impl<T: DeserializeOwned + Checked + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = JsonBytes::from_request(req, payload);
        Box::pin(async move {
            let JsonBytes(bytes) = body.await?;
            parse_checked(&bytes).map(JsonBody)
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

/// Parses a JSON body into `T` and runs its checks: one 400 names every field that could not be
/// read and every field its checks refuse.
pub fn parse_checked<T: DeserializeOwned + Checked>(bytes: &[u8]) -> Result<T, ApiError> {
    let unreadable = match parse::<T>(bytes) {
        Ok(body) => {
            let problems = body.problems(&[]);
            return if problems.is_empty() {
                Ok(body)
            } else {
                Err(ApiError::validation(problems))
            };
        }
        Err(error) => error,
    };
    let Some(mut errors) = unreadable.errors.clone() else {
        return Err(unreadable);
    };
    // The fields read with stand-ins in the wrong ones' places: the rest are checked too.
    let stood_in: Vec<String> = errors.keys().cloned().collect();
    let document: Option<Value> = serde_json::from_slice(bytes).ok();
    let read = document.and_then(|document| with_stand_ins::<T>(document, &stood_in));
    if let Some(body) = read {
        for (field, problems) in body.problems(&stood_in) {
            errors.entry(field).or_insert(problems);
        }
    }
    Err(ApiError::validation(errors))
}

/// `document` read as a `T` with each of `fields` replaced by the first stand-in it accepts;
/// `None` when no combination reads (a nested problem, say).
fn with_stand_ins<T: DeserializeOwned>(mut document: Value, fields: &[String]) -> Option<T> {
    let object = document.as_object_mut()?;
    for field in fields {
        if !stand_in_for::<T>(object, field) {
            return None;
        }
    }
    serde_json::from_value(document).ok()
}

/// Parses a JSON document into `T`, naming every offending field on a data error.
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
    let first_try = serde_path_to_error::deserialize(&mut deserializer);
    let value = match first_try {
        Ok(value) => value,
        // serde_json also reports a number where an enum's name belongs as a syntax error:
        // only a body that is not JSON at all is malformed.
        Err(error)
            if (error.inner().is_syntax() || error.inner().is_eof())
                && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() =>
        {
            let inner = error.into_inner();
            return Err(ApiError::new(
                ErrorCode::MalformedJson,
                format!("malformed JSON: {}", strip_position(&inner.to_string())),
            ));
        }
        // A data error (a field missing or of the wrong kind): the body is JSON, so it is read
        // again as a document and every wrong field is named, not just the first.
        Err(_) => {
            let document: Value = serde_json::from_slice(bytes)
                .map_err(|_| ApiError::new(ErrorCode::MalformedJson, "malformed JSON"))?;
            return Err(ApiError::validation(every_problem::<T>(document)));
        }
    };
    deserializer.end().map_err(|_| {
        ApiError::new(
            ErrorCode::MalformedJson,
            "malformed JSON: trailing characters after the document",
        )
    })?;
    Ok(value)
}

/// Stand-ins tried in a wrong or missing field's place, so that reading can go on past it to
/// the next wrong field: one of them fits every field shape this API reads.
const STAND_INS: [&str; 9] = [
    "1",
    "\"x\"",
    "\"1.00\"",
    "\"2000-01-01T00:00:00Z\"",
    "\"none\"",
    "true",
    "null",
    "[]",
    "{}",
];

/// Every field of `document` that keeps it from being a `T`, each with its problem in words a
/// client understands. Reads the document again and again (bounded), each time with the last
/// wrong field replaced by a stand-in of a shape it accepts.
fn every_problem<T: DeserializeOwned>(mut document: Value) -> FieldErrors {
    let mut errors = FieldErrors::new();
    let mut next = first_problem::<T>(&document);
    while let Some((field, problem)) = next.take() {
        if errors.contains_key(&field) || errors.len() >= 32 {
            break;
        }
        errors.insert(field.clone(), vec![problem]);
        // Only top-level fields are stood in for; a nested problem ends the search.
        let Some(object) = document.as_object_mut().filter(|_| !field.contains('.')) else {
            break;
        };
        if !stand_in_for::<T>(object, &field) {
            break;
        }
        next = first_problem::<T>(&Value::Object(object.clone()));
    }
    if errors.is_empty() {
        errors.insert(
            "body".into(),
            vec!["does not have the expected fields".into()],
        );
    }
    errors
}

/// Puts a stand-in in `field`'s place in `object` so that reading gets past it: the first of
/// the field's own choices (an enum's variants, from serde's message), `STAND_INS`, or no value
/// at all (a field with a default). False when none gets past it.
fn stand_in_for<T: DeserializeOwned>(object: &mut Map<String, Value>, field: &str) -> bool {
    let raw = serde_path_to_error::deserialize::<_, T>(&Value::Object(object.clone()))
        .err()
        .map(|error| error.into_inner().to_string())
        .unwrap_or_default();
    let variants = raw
        .split_once("expected ")
        .map(|(_, expected)| {
            expected
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|v| Value::String(v.to_owned()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let stand_ins = STAND_INS
        .iter()
        .filter_map(|text| serde_json::from_str::<Value>(text).ok());
    let past = |object: &Map<String, Value>| {
        first_problem::<T>(&Value::Object(object.clone())).is_none_or(|(other, _)| other != field)
    };
    for value in variants.into_iter().chain(stand_ins) {
        let mut tried = object.clone();
        tried.insert(field.to_owned(), value);
        if past(&tried) {
            *object = tried;
            return true;
        }
    }
    let mut without = object.clone();
    without.remove(field);
    if past(&without) {
        *object = without;
        return true;
    }
    false
}

/// The first field that keeps `document` from being a `T`, and its problem.
fn first_problem<T: DeserializeOwned>(document: &Value) -> Option<(String, String)> {
    let error = serde_path_to_error::deserialize::<_, T>(document).err()?;
    let path = error.path().to_string();
    let message = strip_position(&error.into_inner().to_string());
    Some(match path.as_str() {
        "." | "" => match missing_field_name(&message) {
            Some(field) => (field, "is required".to_owned()),
            None => ("body".to_owned(), in_words(&message)),
        },
        path => (path.to_owned(), in_words(&message)),
    })
}

/// serde's messages in a client's words: no Rust type names, no backticks.
pub fn in_words(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.split_once(", expected ") {
            return format!(
                "must be {}, not {}",
                expected_words(expected),
                found_words(found)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        if let Some((found, expected)) = rest.split_once(", expected ") {
            return format!(
                "must be {}, not {}",
                expected_words(expected),
                found_words(found)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        if let Some((_, expected)) = rest.split_once(", expected ") {
            let choices = expected.trim_start_matches("one of ").replace('`', "");
            return format!("must be one of {}", choices.replace(" or ", ", "));
        }
    }
    if message == "expected value" {
        // serde_json's words for a number or a list where a name belongs.
        return "is of the wrong kind: give one of the names it takes".into();
    }
    if message.starts_with("duplicate field") {
        return "is given more than once".into();
    }
    if let Some(field) = missing_field_name(message) {
        return format!("needs its field {field}");
    }
    message.replace('`', "")
}

fn expected_words(expected: &str) -> String {
    let expected = expected.replace('`', "");
    match expected.as_str() {
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a sequence" => "a list".into(),
        "a map" => "an object".into(),
        other if other.starts_with("struct ") => "an object".into(),
        other => other.to_owned(),
    }
}

fn found_words(found: &str) -> String {
    let found = found.replace('`', "");
    if let Some(text) = found.strip_prefix("string ") {
        return format!("the text {text}");
    }
    for prefix in ["integer ", "floating point "] {
        if let Some(number) = found.strip_prefix(prefix) {
            return number.to_owned();
        }
    }
    match found.as_str() {
        "boolean true" => "true".into(),
        "boolean false" => "false".into(),
        "map" => "an object".into(),
        "sequence" => "a list".into(),
        "unit value" => "null".into(),
        other => other.to_owned(),
    }
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
