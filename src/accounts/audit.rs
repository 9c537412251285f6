//! The append-only audit log (the database refuses UPDATE and DELETE on it).

use serde::Serialize;
use serde_json::Value;
use sqlx::AnyConnection;

use super::{Accounts, AuditAction};
use crate::error::Result;
use crate::secrets::passwords::Requester;

/// Who performed a write, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<i64>,
    pub label: String,
    pub ip: Option<String>,
}

/// The kinds of actor the log knows (its `actor_type` column allows exactly these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    Admin,
    User,
    /// The CLI run by an operator, cron, a migration, or a visitor no account is known for.
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Admin => "admin",
            ActorKind::User => "user",
            ActorKind::System => "system",
        }
    }
}

/// What an audit entry is about (its `target_type` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    User,
    Client,
    Admin,
    Role,
    Invite,
    Session,
    BannedEmail,
    SecurityQuestion,
    /// Lockout scopes an operator cleared.
    Lockout,
    /// A doctor check whose fix was applied.
    Check,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::User => "user",
            Target::Client => "client",
            Target::Admin => "admin",
            Target::Role => "role",
            Target::Invite => "invite",
            Target::Session => "session",
            Target::BannedEmail => "banned_email",
            Target::SecurityQuestion => "security_question",
            Target::Lockout => "lockout",
            Target::Check => "check",
        }
    }
}

impl Actor {
    /// The system itself: the CLI run by an operator, cron, or a migration.
    pub fn system(label: &str) -> Self {
        Self { kind: ActorKind::System, id: None, label: label.into(), ip: None }
    }
    pub fn admin(id: i64, username: &str) -> Self {
        Self { kind: ActorKind::Admin, id: Some(id), label: username.into(), ip: None }
    }
    pub fn user(id: i64, email: &str) -> Self {
        Self { kind: ActorKind::User, id: Some(id), label: email.into(), ip: None }
    }
    pub fn with_ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(ip.into());
        self
    }
    /// Whose share of the hashing threads this actor's hashes take: a visitor's address, or
    /// (no address: the command line, cron) the operator's.
    pub fn requester(&self) -> Requester<'_> {
        self.ip.as_deref().map_or(Requester::Operator, Requester::Visitor)
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
    action: AuditAction,
    target: (Target, Option<i64>),
    details: Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_type, actor_id, actor_label, action, target_type, target_id, ip, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(at)
    .bind(actor.kind.as_str())
    .bind(actor.id)
    .bind(&actor.label)
    .bind(action.as_str())
    .bind(target.0.as_str())
    .bind(target.1)
    .bind(actor.ip.as_deref())
    .bind(details.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

impl Accounts {
    /// The most recent entries, newest first; optionally only those about one record.
    pub async fn audit_log(&self, target: Option<(Target, i64)>, limit: i64) -> Result<Vec<AuditEntry>> {
        self.audit_search(target, None, limit).await
    }

    /// The most recent entries, newest first, about one record and/or of one action.
    pub async fn audit_search(
        &self,
        target: Option<(Target, i64)>,
        action: Option<AuditAction>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let mut conditions = Vec::new();
        if target.is_some() {
            conditions.push("target_type = $1 AND target_id = $2".to_string());
        }
        if action.is_some() {
            conditions.push(format!("action = ${}", 2 * conditions.len() + 1));
        }
        let filter = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        let limit_at = 1 + 2 * usize::from(target.is_some()) + usize::from(action.is_some());
        let sql = format!("SELECT * FROM audit_log {filter} ORDER BY id DESC LIMIT ${limit_at}");
        let mut query = sqlx::query_as(crate::store::composed(sql));
        if let Some((kind, id)) = target {
            query = query.bind(kind.as_str()).bind(id);
        }
        if let Some(action) = action {
            query = query.bind(action.as_str());
        }
        Ok(query.bind(limit).fetch_all(self.db.pool()).await?)
    }
}
