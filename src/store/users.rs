//! Users: create (naming every unique field already taken), and look up by login or id.

use actors::Millis;

use super::error::StoreError;
use super::pool::{Backend, Store, on_pool};
use super::rows::{User, UserRow};

/// A user to create; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub phone_number: Option<String>,
    pub password_hash: String,
    pub user_type: String,
}

impl Store {
    pub async fn create_user(&self, user: &NewUser, now: Millis) -> Result<User, StoreError> {
        const SQL: &str = "INSERT INTO users (username, email, phone_number, password_hash, user_type, created_at) \
                           VALUES ($1, $2, $3, $4, $5, $6) RETURNING *";
        let row: Result<UserRow, sqlx::Error> = on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(&user.username)
            .bind(&user.email)
            .bind(&user.phone_number)
            .bind(&user.password_hash)
            .bind(&user.user_type)
            .bind(now)
            .fetch_one(pool)
            .await);
        match row {
            Ok(row) => Ok(row.into()),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(self.taken_user_fields(user).await)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Which of the user's unique fields are taken (both backends name only one in the error).
    async fn taken_user_fields(&self, user: &NewUser) -> StoreError {
        const SQL: &str = "SELECT COALESCE(SUM(CASE WHEN username = $1 THEN 1 ELSE 0 END), 0), \
                           COALESCE(SUM(CASE WHEN email = $2 THEN 1 ELSE 0 END), 0) FROM users WHERE username = $1 OR email = $2";
        let counts: Result<(i64, i64), sqlx::Error> = on_pool!(self, pool => sqlx::query_as(SQL).bind(&user.username).bind(&user.email).fetch_one(pool).await);
        let fields = match counts {
            Ok((username, email)) => [("username", username), ("email", email)]
                .into_iter()
                .filter(|(_, taken)| *taken > 0)
                .map(|(field, _)| field)
                .collect(),
            Err(_) => Vec::new(),
        };
        StoreError::Conflict {
            fields: if fields.is_empty() {
                vec!["username"]
            } else {
                fields
            },
        }
    }

    /// The user whose username or email is `login`, with the password hash.
    pub async fn user_by_login(&self, login: &str) -> Result<Option<(User, String)>, StoreError> {
        const SQL: &str =
            "SELECT * FROM users WHERE username = $1 OR email = $1 ORDER BY id LIMIT 1";
        let row: Option<UserRow> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(login).fetch_optional(pool).await)?;
        Ok(row.map(|row| {
            let hash = row.password_hash.clone();
            (row.into(), hash)
        }))
    }

    /// How many admins the store holds (start-up says how to create one when there is none).
    pub async fn admin_count(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM users WHERE user_type = 'admin'";
        let count: i64 = on_pool!(self, pool => sqlx::query_scalar(SQL).fetch_one(pool).await)?;
        Ok(count)
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        const SQL: &str = "SELECT * FROM users WHERE id = $1";
        let row: Option<UserRow> =
            on_pool!(self, pool => sqlx::query_as(SQL).bind(id).fetch_optional(pool).await)?;
        Ok(row.map(User::from))
    }
}
