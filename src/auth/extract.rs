//! Extractors: `Caller` (any signed-in user), `Admin` (403 for customers), `MaybeCaller`.

use std::future::{Ready, ready};

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use super::jwt::{JwtKeys, Role, TokenKind};
use crate::error::{ApiError, ErrorCode};

/// The user a request's access token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: i64,
    pub role: Role,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A caller who must be an admin.
#[derive(Debug, Clone, Copy)]
pub struct Admin(pub Caller);

/// A caller if the request carries a token (which must then be valid), else `None`.
#[derive(Debug, Clone, Copy)]
pub struct MaybeCaller(pub Option<Caller>);

/// Verified access tokens per HTTP worker thread, so a buyer who sends the same token a hundred
/// times in a burst pays for its HMAC and JSON decoding once. Only tokens that verified are
/// kept, with their expiry, which is checked again on every use; the map is cleared when full.
const VERIFIED_TOKENS_MAX: usize = 8_192;

thread_local! {
    static VERIFIED: std::cell::RefCell<std::collections::HashMap<Box<str>, (Caller, i64)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn verified(keys: &JwtKeys, token: &str) -> Option<Caller> {
    let now_secs = actors::clock::now_ms() / 1000;
    let cached = VERIFIED.with(|cache| cache.borrow().get(token).copied());
    if let Some((caller, exp)) = cached {
        if now_secs < exp {
            return Some(caller);
        }
    }
    let claims = keys.verify(token, TokenKind::Access)?;
    let caller = Caller {
        user_id: claims.user_id()?,
        role: claims.role,
    };
    VERIFIED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= VERIFIED_TOKENS_MAX {
            cache.clear();
        }
        cache.insert(token.into(), (caller, claims.exp));
    });
    Some(caller)
}

fn caller_of(req: &HttpRequest) -> Result<Option<Caller>, ApiError> {
    let Some(header) = req.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidToken,
            "the access token is invalid or expired",
        )
    };
    let value = header.to_str().unwrap_or_default().trim();
    // The scheme is case-insensitive (RFC 9110, section 11.1).
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidToken,
                "the Authorization header must read \"Bearer <access token>\"",
            ));
        }
    };
    let keys = req
        .app_data::<web::Data<JwtKeys>>()
        .expect("JwtKeys are registered as app data at startup");
    verified(keys, token).map(Some).ok_or_else(invalid)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller_of(req).and_then(|caller| {
            caller.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "authentication required: send Authorization: Bearer <token>",
                )
            })
        }))
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(
            Caller::from_request(req, payload)
                .into_inner()
                .and_then(|caller| {
                    if caller.is_admin() {
                        Ok(Admin(caller))
                    } else {
                        Err(ApiError::forbidden())
                    }
                }),
        )
    }
}

impl FromRequest for MaybeCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller_of(req).map(MaybeCaller))
    }
}
