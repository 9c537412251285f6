//! Device tokens (OWASP, "Slow down online guessing attacks with device cookies"). With an honest
//! per-account limit, anyone who knows an address could keep its owner locked out by sending a
//! few wrong passwords every window. So a browser that has signed in to an account is given a
//! token for that account, kept in a cookie of its own; its attempts count in the device's own
//! small budget and are never refused because *unknown* devices used up the account's. Unknown
//! devices share the account's budget, the address's, and a ceiling of consecutive failures.
//!
//! The cookie holds a random 256-bit token; the database keeps its SHA-256 with the account it
//! is for, so a token names one account and cannot be forged or moved to another. Tokens live
//! [`DEVICE_TTL_SECS`], are listed on the sessions page and can be revoked there.

use serde::Serialize;

use crate::accounts::Principal;
use crate::error::Result;
use crate::secrets::tokens;
use crate::store::{AnyConnection, Db};

/// How long a browser stays known without signing in again.
pub const DEVICE_TTL_SECS: i64 = 180 * 86_400;

/// The longest User-Agent kept with a device.
const USER_AGENT_CHARS: usize = 200;

/// Known devices kept per account: a new one beyond this forgets the least recently used.
pub const DEVICES_PER_ACCOUNT: i64 = 20;

/// A known device of an account, as the sessions page lists it (never its token).
#[derive(Debug, Clone, Serialize, sqlx_macros::FromRow)]
pub struct Device {
    pub id: i64,
    pub user_agent: String,
    pub ip: String,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub last_used_at: i64,
}

/// A browser just made a known device.
pub struct NewDevice {
    /// For its cookie.
    pub token: String,
    /// The account knew other devices: this one is news to its owner.
    pub account_knew_others: bool,
}

#[derive(Debug, Clone)]
pub struct Devices {
    db: Db,
}

impl Devices {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The device `raw` names, when it is a live token of this account.
    pub async fn recognise(&self, who: Principal, account_id: i64, raw: Option<&str>) -> Result<Option<i64>> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else { return Ok(None) };
        Ok(sqlx::query_scalar(
            "SELECT id FROM device_tokens WHERE token_hash = $1 AND principal = $2 AND account_id = $3 \
             AND last_used_at > $4",
        )
        .bind(tokens::digest(raw))
        .bind(who.target_type().as_str())
        .bind(account_id)
        .bind(self.db.now() - DEVICE_TTL_SECS)
        .fetch_optional(self.db.pool())
        .await?)
    }

    /// After a full sign-in from `known` (the device it was recognised as, if any): that device
    /// is used again, or the browser gets a new token for this account — returned, with whether
    /// the account knew other devices. In the sign-in's transaction.
    pub async fn signed_in(
        &self,
        conn: &mut AnyConnection,
        who: Principal,
        account_id: i64,
        known: Option<i64>,
        user_agent: &str,
        ip: &str,
    ) -> Result<Option<NewDevice>> {
        if let Some(id) = known {
            sqlx::query("UPDATE device_tokens SET last_used_at = $1, ip = $2 WHERE id = $3")
                .bind(self.db.now())
                .bind(ip)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            return Ok(None);
        }
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM device_tokens WHERE principal = $1 AND account_id = $2 AND last_used_at > $3",
        )
        .bind(who.target_type().as_str())
        .bind(account_id)
        .bind(self.db.now() - DEVICE_TTL_SECS)
        .fetch_one(&mut *conn)
        .await?;
        let token = tokens::mint(tokens::TokenKind::Device);
        let user_agent: String = user_agent.chars().take(USER_AGENT_CHARS).collect();
        sqlx::query(
            "INSERT INTO device_tokens (principal, account_id, token_hash, user_agent, ip, created_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(who.target_type().as_str())
        .bind(account_id)
        .bind(&token.hash)
        .bind(user_agent)
        .bind(ip)
        .bind(self.db.now())
        .execute(&mut *conn)
        .await?;
        // However many browsers sign in, the account keeps the most recent few.
        sqlx::query(
            "DELETE FROM device_tokens WHERE principal = $1 AND account_id = $2 AND id NOT IN \
             (SELECT id FROM device_tokens WHERE principal = $1 AND account_id = $2 \
              ORDER BY last_used_at DESC, id DESC LIMIT $3)",
        )
        .bind(who.target_type().as_str())
        .bind(account_id)
        .bind(DEVICES_PER_ACCOUNT)
        .execute(&mut *conn)
        .await?;
        Ok(Some(NewDevice { token: token.raw, account_knew_others: others > 0 }))
    }

    /// Forgets every device of the account but the one `keep` names (a password changed from it).
    pub async fn revoke_all_but(&self, who: Principal, account_id: i64, keep: Option<&str>) -> Result<u64> {
        let kept = self.recognise(who, account_id, keep).await?.unwrap_or(0);
        Ok(sqlx::query("DELETE FROM device_tokens WHERE principal = $1 AND account_id = $2 AND id <> $3")
            .bind(who.target_type().as_str())
            .bind(account_id)
            .bind(kept)
            .execute(self.db.pool())
            .await?
            .rows_affected())
    }

    /// Removes devices unused for [`DEVICE_TTL_SECS`] (cron).
    pub async fn purge(&self) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM device_tokens WHERE last_used_at <= $1")
            .bind(self.db.now() - DEVICE_TTL_SECS)
            .execute(self.db.pool())
            .await?
            .rows_affected())
    }

    /// The account's live devices, most recently used first.
    pub async fn list(&self, who: Principal, account_id: i64) -> Result<Vec<Device>> {
        Ok(sqlx::query_as(
            "SELECT id, user_agent, ip, created_at, last_used_at FROM device_tokens \
             WHERE principal = $1 AND account_id = $2 AND last_used_at > $3 ORDER BY last_used_at DESC, id DESC",
        )
        .bind(who.target_type().as_str())
        .bind(account_id)
        .bind(self.db.now() - DEVICE_TTL_SECS)
        .fetch_all(self.db.pool())
        .await?)
    }

    /// Forgets one device of the account (its next sign-in is an unknown device's). False when
    /// the account has no such device.
    pub async fn revoke(&self, who: Principal, account_id: i64, device_id: i64) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM device_tokens WHERE id = $1 AND principal = $2 AND account_id = $3")
            .bind(device_id)
            .bind(who.target_type().as_str())
            .bind(account_id)
            .execute(self.db.pool())
            .await?
            .rows_affected()
            == 1)
    }

    /// Forgets every device of the account. Returns how many.
    pub async fn revoke_all(&self, who: Principal, account_id: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM device_tokens WHERE principal = $1 AND account_id = $2")
            .bind(who.target_type().as_str())
            .bind(account_id)
            .execute(self.db.pool())
            .await?
            .rows_affected())
    }
}
