//! The append-only audit log (the database refuses UPDATE and DELETE on it).

use serde::Serialize;
use serde_json::Value;
use sqlx::AnyConnection;

use super::Accounts;
use crate::error::Result;

/// Who performed a write, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: &'static str,
    pub id: Option<i64>,
    pub label: String,
    pub ip: Option<String>,
}

impl Actor {
    /// The system itself: the CLI run by an operator, cron, or a migration.
    pub fn system(label: &str) -> Self {
        Self { kind: "system", id: None, label: label.into(), ip: None }
    }
    pub fn admin(id: i64, username: &str) -> Self {
        Self { kind: "admin", id: Some(id), label: username.into(), ip: None }
    }
    pub fn user(id: i64, email: &str) -> Self {
        Self { kind: "user", id: Some(id), label: email.into(), ip: None }
    }
    pub fn with_ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(ip.into());
        self
    }
}

#[derive(Debug, Clone, Serialize, sqlx_macros::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub at: i64,
    pub actor_type: String,
    pub actor_id: Option<i64>,
    pub actor_label: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<i64>,
    pub ip: Option<String>,
    pub details: String,
}

/// Appends one entry inside the caller's transaction, so the entry exists iff the write does,
/// stamped `at` (`Db::now`, the clock everything else is stamped and judged by).
pub(crate) async fn record(
    conn: &mut AnyConnection,
    at: i64,
    actor: &Actor,
    action: &str,
    target: (&str, Option<i64>),
    details: Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_type, actor_id, actor_label, action, target_type, target_id, ip, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(at)
    .bind(actor.kind)
    .bind(actor.id)
    .bind(&actor.label)
    .bind(action)
    .bind(target.0)
    .bind(target.1)
    .bind(actor.ip.as_deref())
    .bind(details.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

impl Accounts {
    /// The most recent entries, newest first; optionally only those about one record.
    pub async fn audit_log(&self, target: Option<(&str, i64)>, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = match target {
            Some((kind, id)) => {
                sqlx::query_as(
                    "SELECT * FROM audit_log WHERE target_type = $1 AND target_id = $2 ORDER BY id DESC LIMIT $3",
                )
                .bind(kind)
                .bind(id)
                .bind(limit)
                .fetch_all(self.db.pool())
                .await?
            }
            None => {
                sqlx::query_as("SELECT * FROM audit_log ORDER BY id DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(self.db.pool())
                    .await?
            }
        };
        Ok(rows)
    }
}
