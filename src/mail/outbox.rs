//! The `outbox` table and its delivery loop.

use serde::Serialize;
use sqlx::AnyConnection;

use super::Transport;
use crate::error::Result;
use crate::store::Db;

/// Attempts before a message is marked failed: with the backoff below that spans about 4 hours.
const MAX_ATTEMPTS: i64 = 8;

#[derive(Debug, Clone, Serialize, sqlx_macros::FromRow)]
pub struct OutboxMessage {
    pub id: i64,
    pub to_addr: String,
    pub subject: String,
    #[serde(skip)]
    pub body: String,
    pub status: String,
    pub attempts: i64,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub next_attempt_at: i64,
    #[serde(serialize_with = "crate::store::serialize_opt_ts")]
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

/// Queues a message inside the caller's transaction, due at `now` (`Db::now`: the clock
/// delivery judges "due" by).
pub async fn enqueue(conn: &mut AnyConnection, now: i64, to: &str, subject: &str, body: &str) -> Result<i64> {
    let ts = now;
    Ok(sqlx::query_scalar(
        "INSERT INTO outbox (to_addr, subject, body, status, attempts, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, 'queued', 0, $4, $4) RETURNING id",
    )
    .bind(to)
    .bind(subject)
    .bind(body)
    .bind(ts)
    .fetch_one(conn)
    .await?)
}

/// What one delivery run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Delivery {
    pub sent: u64,
    pub retrying: u64,
    pub failed: u64,
}

/// The queue at a glance, for the doctor and `cron`.
#[derive(Debug, Clone, Default, Serialize, sqlx_macros::FromRow)]
pub struct QueueStats {
    pub queued: i64,
    pub failed: i64,
    pub oldest_queued_at: Option<i64>,
}

/// Seconds to wait before attempt `n + 1` after `n` failed attempts: 1, 2, 4 … minutes, at most 2 h.
fn backoff_secs(attempts: i64) -> i64 {
    60 * (1i64 << (attempts - 1).clamp(0, 7))
}

impl Transport {
    /// Delivers every queued message that is due, oldest first, at most `limit`.
    pub async fn deliver_due(&self, db: &Db, limit: i64) -> Result<Delivery> {
        let due: Vec<OutboxMessage> = sqlx::query_as(
            "SELECT * FROM outbox WHERE status = 'queued' AND next_attempt_at <= $1 ORDER BY id LIMIT $2",
        )
        .bind(db.now())
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
        let mut report = Delivery::default();
        for msg in due {
            match self.send(&msg).await {
                Ok(()) => {
                    sqlx::query(
                        "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, last_error = NULL \
                         WHERE id = $2",
                    )
                    .bind(db.now())
                    .bind(msg.id)
                    .execute(db.pool())
                    .await?;
                    report.sent += 1;
                }
                Err(error) => {
                    let attempts = msg.attempts + 1;
                    // A permanent refusal is final at once: retrying it for hours only hides it.
                    let status = if error.permanent || attempts >= MAX_ATTEMPTS { "failed" } else { "queued" };
                    tracing::warn!(message_id = msg.id, attempts, permanent = error.permanent, %error, "mail delivery failed");
                    sqlx::query(
                        "UPDATE outbox SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $5",
                    )
                    .bind(status)
                    .bind(attempts)
                    .bind(db.now() + backoff_secs(attempts))
                    .bind(error.to_string())
                    .bind(msg.id)
                    .execute(db.pool())
                    .await?;
                    if status == "failed" { report.failed += 1 } else { report.retrying += 1 }
                }
            }
        }
        Ok(report)
    }
}

pub async fn stats(db: &Db) -> Result<QueueStats> {
    Ok(sqlx::query_as(
        "SELECT SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END) AS queued, \
         SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed, \
         MIN(CASE WHEN status = 'queued' THEN created_at END) AS oldest_queued_at FROM outbox",
    )
    .fetch_one(db.pool())
    .await
    .map(|s: (Option<i64>, Option<i64>, Option<i64>)| QueueStats {
        queued: s.0.unwrap_or(0),
        failed: s.1.unwrap_or(0),
        oldest_queued_at: s.2,
    })?)
}

/// The most recent delivery error of a failed message, if any.
pub async fn last_failure(db: &Db) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT last_error FROM outbox WHERE status = 'failed' ORDER BY id DESC LIMIT 1")
        .fetch_optional(db.pool())
        .await?
        .flatten())
}

/// Whether a message queued after the newest failed one was delivered: the transport works,
/// and the failures are those recipients' (an address that does not exist), not the site's.
pub async fn delivered_since_last_failure(db: &Db) -> Result<bool> {
    let later: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND id > (SELECT MAX(id) FROM outbox WHERE status = 'failed')",
    )
    .fetch_one(db.pool())
    .await?;
    Ok(later > 0)
}

/// Puts every failed message back in the queue for the next delivery run. Returns how many.
pub async fn requeue_failed(db: &Db) -> Result<u64> {
    Ok(sqlx::query("UPDATE outbox SET status = 'queued', attempts = 0, next_attempt_at = $1 WHERE status = 'failed'")
        .bind(db.now())
        .execute(db.pool())
        .await?
        .rows_affected())
}

/// Messages for a recipient, newest first (tests and support).
pub async fn for_recipient(db: &Db, to: &str) -> Result<Vec<OutboxMessage>> {
    Ok(sqlx::query_as("SELECT * FROM outbox WHERE to_addr = $1 ORDER BY id DESC").bind(to).fetch_all(db.pool()).await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_up_to_two_hours() {
        let waits: Vec<i64> = (1..=9).map(super::backoff_secs).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3840, 7680, 7680]);
    }
}
