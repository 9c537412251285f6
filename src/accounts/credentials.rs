//! Writing to the audit log from outside `accounts`, and the census of password hashes the
//! doctor reads. The credential columns themselves are written in `principal.rs`, for users
//! and admins alike.

use serde_json::Value;
use sqlx::AnyConnection;

use super::{Accounts, Actor, AuditAction, Target, audit};
use crate::error::Result;

/// Appends an audit entry inside the caller's transaction (for services outside `accounts`).
pub async fn record_in(
    conn: &mut AnyConnection,
    now: i64,
    actor: &Actor,
    action: AuditAction,
    target: (Target, Option<i64>),
    details: Value,
) -> Result<()> {
    audit::record(conn, now, actor, action, target, details).await
}

impl Accounts {
    /// Appends one audit entry on its own (security events that change nothing else).
    pub async fn record_event(
        &self,
        actor: &Actor,
        action: AuditAction,
        target: (Target, Option<i64>),
        details: Value,
    ) -> Result<()> {
        let mut conn = self.db.pool().acquire().await?;
        audit::record(&mut conn, self.db.now(), actor, action, target, details).await
    }
}

/// The password hashes as the policy sees them, read so that a large user table costs one
/// index count and the few hashes not made at the policy.
#[derive(Debug, Default)]
pub struct HashCensus {
    /// Users with a password.
    pub with_password: i64,
    /// `(user id, hash)` for each hash that does not begin with the policy's parameters, by id.
    pub off_policy: Vec<(i64, String)>,
}

impl Accounts {
    pub async fn password_hash_census(&self) -> Result<HashCensus> {
        let pool = self.db.pool();
        // All users less those without a password: both counted from indexes.
        let with_password: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM users) - (SELECT COUNT(*) FROM users WHERE password_hash IS NULL)",
        )
        .fetch_one(pool)
        .await?;
        let off_policy = sqlx::query_as(
            "SELECT id, password_hash FROM users WHERE password_hash IS NOT NULL AND password_hash NOT LIKE $1 \
             ORDER BY id",
        )
        .bind(format!("{}%", crate::secrets::passwords::POLICY_PREFIX))
        .fetch_all(pool)
        .await?;
        Ok(HashCensus { with_password, off_policy })
    }
}
