//! Single-use tokens with an expiry: password-reset links and admin impersonation links. Only
//! the SHA-256 of a token is stored; consuming one is a single conditional UPDATE, so two
//! concurrent uses cannot both succeed.

use sqlx::AnyConnection;

use crate::error::Result;
use crate::secrets::tokens;
use crate::store::Db;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    Impersonation,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::PasswordReset => "password_reset",
            Purpose::Impersonation => "impersonation",
        }
    }

    fn kind(self) -> tokens::TokenKind {
        match self {
            Purpose::PasswordReset => tokens::TokenKind::PasswordReset,
            Purpose::Impersonation => tokens::TokenKind::Impersonation,
        }
    }
}

/// A live token's owner: the user, and for impersonation the admin who asked.
#[derive(Debug, Clone, sqlx_macros::FromRow)]
pub struct TokenOwner {
    pub user_id: i64,
    pub admin_id: Option<i64>,
    pub expires_at: i64,
}

/// Creates a token inside the caller's transaction at `now` (the clock its expiry is judged
/// by, `Db::now`); returns the raw token for the link.
pub async fn issue(
    conn: &mut AnyConnection,
    now: i64,
    purpose: Purpose,
    user_id: i64,
    admin_id: Option<i64>,
    ttl_secs: i64,
) -> Result<String> {
    let token = tokens::mint(purpose.kind());
    let ts = now;
    sqlx::query(
        "INSERT INTO one_time_tokens (token_hash, purpose, user_id, admin_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&token.hash)
    .bind(purpose.as_str())
    .bind(user_id)
    .bind(admin_id)
    .bind(ts)
    .bind(ts + ttl_secs)
    .execute(conn)
    .await?;
    Ok(token.raw)
}

/// The owner of a live (unused, unexpired) token, without using it.
pub async fn peek(db: &Db, purpose: Purpose, raw: &str) -> Result<Option<TokenOwner>> {
    Ok(sqlx::query_as(
        "SELECT user_id, admin_id, expires_at FROM one_time_tokens \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
    )
    .bind(tokens::digest(raw))
    .bind(purpose.as_str())
    .bind(db.now())
    .fetch_optional(db.pool())
    .await?)
}

/// Uses a live token inside the caller's transaction; `None` if it is unknown, used or expired
/// at `now` (the database's clock, [`Db::now`]).
pub async fn consume(conn: &mut AnyConnection, purpose: Purpose, raw: &str, now: i64) -> Result<Option<TokenOwner>> {
    Ok(sqlx::query_as(
        "UPDATE one_time_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
         RETURNING user_id, admin_id, expires_at",
    )
    .bind(now)
    .bind(tokens::digest(raw))
    .bind(purpose.as_str())
    .fetch_optional(conn)
    .await?)
}

/// Deletes expired and used tokens (cron). Returns how many.
pub async fn purge(db: &Db) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM one_time_tokens WHERE expires_at <= $1 OR used_at IS NOT NULL")
        .bind(db.now())
        .execute(db.pool())
        .await?
        .rows_affected())
}
