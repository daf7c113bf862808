//! `POST /users`, `GET /users/me`; for admins `GET /users` and `POST /users/{id}/balance`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Admin;
use crate::auth::{Caller, MaybeCaller, Role};
use crate::error::{ApiError, ErrorCode, FieldErrors};
use crate::json::JsonBody;
use crate::rate_limit::Kind;
use crate::routes::request::{PageQuery, PageRequest, path_id};
use crate::state::State;
use crate::store::NewUser;
use crate::wire::{Money, Page, UserView};

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUser {
    /// 3–150 characters: letters, digits and `_ . @ + -`.
    pub username: String,
    pub email: String,
    /// 8–128 characters. Never returned, never logged.
    pub password: String,
    #[serde(default)]
    pub phone_number: Option<String>,
    /// `customer` (anyone may register) or `admin` (needs an admin's token). Default: customer.
    #[serde(default = "customer")]
    #[schema(value_type = String, example = "customer")]
    pub user_type: UserType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserType {
    Customer,
    Admin,
}

fn customer() -> UserType {
    UserType::Customer
}

impl crate::json::Checked for CreateUser {
    fn problems(&self, _: &[String]) -> FieldErrors {
        let mut errors = FieldErrors::new();
        let mut fail = |field: &str, problem: &str| {
            errors
                .entry(field.to_owned())
                .or_default()
                .push(problem.to_owned())
        };
        let username_ok = (3..=150).contains(&self.username.chars().count())
            && self
                .username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.@+-".contains(c));
        if !username_ok {
            fail(
                "username",
                "must be 3–150 characters: letters, digits and _ . @ + -",
            );
        }
        let email = self.email.trim();
        let email_ok = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !email.contains(char::is_whitespace);
        if !email_ok {
            fail("email", "must be an email address");
        }
        let length = self.password.chars().count();
        if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&length) {
            fail(
                "password",
                &format!("must be {PASSWORD_MIN_CHARS}–{PASSWORD_MAX_CHARS} characters"),
            );
        }
        if let Some(phone) = &self.phone_number {
            let digits = phone.chars().filter(char::is_ascii_digit).count();
            if !(6..=20).contains(&digits)
                || !phone
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-()".contains(c))
            {
                fail("phone_number", "must be a phone number (6–20 digits)");
            }
        }
        errors
    }
}

impl CreateUser {
    fn validate(&self) -> Result<(), ApiError> {
        use crate::json::Checked;
        let errors = self.problems(&[]);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

/// Creates a user; an admin only for an admin caller.
pub async fn create_user(
    state: &State,
    caller: Option<Caller>,
    input: CreateUser,
    address: &str,
) -> Result<UserView, ApiError> {
    state.limits.attempt(
        Kind::RegistrationPerAddress,
        address,
        actors::clock::now_ms(),
    )?;
    if input.user_type == UserType::Admin {
        match caller {
            None => {
                return Err(ApiError::new(
                    ErrorCode::Unauthorized,
                    "creating an admin needs an admin's token",
                ));
            }
            Some(caller) if !caller.is_admin() => return Err(ApiError::forbidden()),
            Some(_) => {}
        }
    }
    input.validate()?;
    let role = match input.user_type {
        UserType::Customer => Role::Customer,
        UserType::Admin => Role::Admin,
    };
    let password_hash = state.hash_password(input.password).await?;
    let user = NewUser {
        username: input.username,
        email: input.email.trim().to_lowercase(),
        phone_number: input.phone_number,
        password_hash,
        user_type: role.as_str().to_owned(),
    };
    let created = state
        .store
        .create_user(&user, actors::clock::now_ms())
        .await?;
    tracing::info!(user_id = created.id, user_type = %created.user_type, "user created");
    Ok(UserView::from(&created))
}

pub async fn create(
    state: State,
    req: actix_web::HttpRequest,
    caller: MaybeCaller,
    JsonBody(input): JsonBody<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let user = create_user(
        &state,
        caller.0,
        input,
        &crate::routes::request::client_address(&req),
    )
    .await?;
    Ok(HttpResponse::Created().json(user))
}

pub async fn me(state: State, caller: Caller) -> Result<web::Json<UserView>, ApiError> {
    let user = state
        .store
        .user_by_id(caller.user_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidToken, "the token's user no longer exists")
        })?;
    Ok(web::Json(UserView::from(&user)))
}

/// `POST /users/{id}/balance`: an admin credits a wallet with `amount`, more than 0.00 (a
/// two-decimal string or a number).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreditRequest {
    #[schema(value_type = crate::wire::MoneyInput, inline)]
    pub amount: Money,
}

/// The amount's range is the wallet's to check (`service::payments::credit`): one field.
impl crate::json::Checked for CreditRequest {}

pub async fn credit(
    state: State,
    _: Admin,
    id: web::Path<String>,
    JsonBody(input): JsonBody<CreditRequest>,
) -> Result<web::Json<UserView>, ApiError> {
    let user =
        crate::service::payments::credit(&state, path_id(&id, "user")?, input.amount.0).await?;
    Ok(web::Json(UserView::from(&user)))
}

#[derive(Debug, Default, Deserialize)]
pub struct UsersQuery {
    pub user_type: Option<String>,
    #[serde(flatten)]
    pub page: PageQuery,
}

/// `GET /users`: users with their balances, newest first (admins).
pub async fn list(
    state: State,
    req: actix_web::HttpRequest,
    _: Admin,
    query: web::Query<UsersQuery>,
) -> Result<web::Json<Page<UserView>>, ApiError> {
    let page = PageRequest::from_query(&query.page)?;
    let user_type = match query.user_type.as_deref().map(str::trim) {
        None => None,
        Some(kind @ ("customer" | "admin")) => Some(kind.to_owned()),
        Some(_) => return Err(ApiError::field("user_type", "must be customer or admin")),
    };
    let (users, count) = state
        .store
        .list_users(
            &crate::store::UserFilter { user_type },
            page.page_size,
            page.offset(),
        )
        .await?;
    let views = users.iter().map(UserView::from).collect();
    Ok(web::Json(page.wrap(&req, count, views)))
}
