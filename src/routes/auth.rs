//! `POST /auth/login`, `POST /auth/refresh`: access + refresh tokens, with refresh rotation.

use actix_web::web;
use actors::clock::now_ms;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Role, TokenKind};
use crate::error::{ApiError, ErrorCode};
use crate::json::JsonBody;
use crate::rate_limit::Kind;
use crate::state::State;
use crate::store::User;
use crate::wire::UserView;

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The username or the email (either field may carry either).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub user: UserView,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidCredentials,
        "wrong username, email or password",
    )
}

fn invalid_token() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidToken,
        "the refresh token is invalid, expired or already used",
    )
}

/// Issues an access token and a refresh token of `family` (a new family for a login).
async fn issue_pair(
    state: &State,
    user: &User,
    family: Option<String>,
) -> Result<TokenPair, ApiError> {
    let role = Role::parse(&user.user_type).ok_or_else(|| {
        ApiError::internal(&std::io::Error::other("stored user_type is not a role"))
    })?;
    let now = now_ms();
    let family = family.unwrap_or_else(|| crate::auth::random_hex(16));
    let (access_token, _) = state
        .keys
        .issue(user.id, role, TokenKind::Access, None, now);
    let (refresh_token, refresh) =
        state
            .keys
            .issue(user.id, role, TokenKind::Refresh, Some(family.clone()), now);
    state
        .store
        .insert_refresh_token(&refresh.jti, user.id, &family, refresh.exp * 1000)
        .await?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: state.keys.access_ttl_secs,
        user: UserView::from(user),
    })
}

/// Log in. Failed attempts count per account and per address; when either is over its limit,
/// even the right password is refused until the window ends (a guesser learns nothing).
pub async fn login(
    state: State,
    req: actix_web::HttpRequest,
    JsonBody(input): JsonBody<LoginRequest>,
) -> Result<web::Json<TokenPair>, ApiError> {
    let address = crate::routes::request::client_address(&req);
    let login = input
        .username
        .or(input.email)
        .filter(|login| !login.trim().is_empty());
    let Some(login) = login else {
        return Err(ApiError::field("username", "give a username or an email"));
    };
    let account = login.trim().to_lowercase();
    let now = now_ms();
    state
        .limits
        .check(Kind::FailedLoginPerAccount, &account, now)?;
    state
        .limits
        .check(Kind::FailedLoginPerAddress, &address, now)?;
    let failed = || {
        state
            .limits
            .record(Kind::FailedLoginPerAccount, &account, now);
        state
            .limits
            .record(Kind::FailedLoginPerAddress, &address, now);
        invalid_credentials()
    };
    let found = state.store.user_by_login(login.trim()).await?;
    let Some((user, phc)) = found else {
        // Spend the same work as a real check, so timing does not reveal which users exist.
        let _ = state.hash_password(input.password).await?;
        return Err(failed());
    };
    if !state.verify_password(input.password, phc).await? {
        return Err(failed());
    }
    state.limits.attempt(Kind::LoginPerAddress, &address, now)?;
    Ok(web::Json(issue_pair(&state, &user, None).await?))
}

pub async fn refresh(
    state: State,
    JsonBody(input): JsonBody<RefreshRequest>,
) -> Result<web::Json<TokenPair>, ApiError> {
    let claims = state
        .keys
        .verify(&input.refresh_token, TokenKind::Refresh)
        .ok_or_else(invalid_token)?;
    let family = claims.fam.clone().ok_or_else(invalid_token)?;
    if !state
        .store
        .consume_refresh_token(&claims.jti, now_ms())
        .await?
    {
        // A used token coming back means someone else holds the family: revoke all of it.
        state.store.revoke_refresh_family(&family).await?;
        tracing::warn!(
            user_id = claims.sub,
            "refresh token reused; its family is revoked"
        );
        return Err(invalid_token());
    }
    let user_id = claims.user_id().ok_or_else(invalid_token)?;
    let user = state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or_else(invalid_token)?;
    Ok(web::Json(issue_pair(&state, &user, Some(family)).await?))
}

/// Reading them is their whole check (a login's "username or email" is decided with the store).
impl crate::json::Checked for LoginRequest {}
impl crate::json::Checked for RefreshRequest {}
