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

/// The users whose hash is not of the current policy, as the `users_off_policy` index
/// (migration 0015) selects them.
fn off_policy_sql() -> String {
    format!(
        "SELECT id, password_hash FROM users WHERE password_hash IS NOT NULL AND password_hash NOT LIKE '{}%' \
         ORDER BY id",
        crate::secrets::passwords::POLICY_PREFIX
    )
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
        // The predicate of the `users_off_policy` index, word for word, so that both databases read
        // the few off-policy users from it (a bound parameter would not match the index).
        let off_policy = sqlx::query_as(crate::store::composed(off_policy_sql())).fetch_all(pool).await?;
        Ok(HashCensus { with_password, off_policy })
    }
}

#[cfg(test)]
mod tests {
    /// The query and the index it is read from say the same: a policy changed in one place only
    /// would make the query scan every user again (or the index hold the wrong ones).
    #[test]
    fn the_off_policy_query_is_the_index_predicate() {
        let prefix = crate::secrets::passwords::POLICY_PREFIX;
        let predicate = format!("password_hash IS NOT NULL AND password_hash NOT LIKE '{prefix}%'");
        assert!(super::off_policy_sql().contains(&predicate));
        for tree in ["sqlite", "postgres"] {
            let path = format!("{}/migrations/{tree}/0015_doctor_flat.sql", env!("CARGO_MANIFEST_DIR"));
            let sql = std::fs::read_to_string(&path).unwrap();
            assert!(sql.contains(&format!("WHERE {predicate};")), "{path}");
        }
        assert!(!prefix.contains(['\'', '%', '_']), "the prefix is a plain SQL literal");
    }
}
