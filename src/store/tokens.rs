//! Refresh tokens: issued, used once (rotation), and revoked by family when one is reused.

use actors::Millis;

use super::error::StoreError;
use super::pool::{Backend, Store, on_pool};

impl Store {
    pub async fn insert_refresh_token(
        &self,
        jti: &str,
        user_id: i64,
        family: &str,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO refresh_tokens (jti, user_id, family, used, expires_at) VALUES ($1, $2, $3, FALSE, $4)";
        on_pool!(self, pool => sqlx::query(SQL).bind(jti).bind(user_id).bind(family).bind(expires_at).execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Marks the refresh token used, once: true for the first caller only, false for a token
    /// that was already used, revoked, expired or never issued.
    pub async fn consume_refresh_token(&self, jti: &str, now: Millis) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE refresh_tokens SET used = TRUE WHERE jti = $1 AND used = FALSE AND expires_at > $2";
        let changed = on_pool!(self, pool => sqlx::query(SQL).bind(jti).bind(now).execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Revokes every refresh token of a family (a reused token means the family leaked).
    pub async fn revoke_refresh_family(&self, family: &str) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE refresh_tokens SET used = TRUE WHERE family = $1";
        on_pool!(self, pool => sqlx::query(SQL).bind(family).execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(())
    }
}
