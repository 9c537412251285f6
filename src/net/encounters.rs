//! What visitors met that the doctor reasons about, counted by day and cause: session cookies
//! this deployment never issued, "Access Denied" by role and permission, forms refused and why.
//! (Logins refused by a lock are in the audit log already.) `serve` counts in memory on the request path (a mutex held for an
//! increment) and adds its counts to the `encounters` table from its background task; the table
//! holds one row per day, kind and detail, never one per request, and keeps a week.
//!
//! A visitor can make most of these happen (a script posting without a cookie, a made-up
//! session token): a count is a claim that raises a question, never evidence for a fix.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::Result;
use crate::store::Db;

/// Distinct (kind, detail) pairs held between flushes; past it, details fold into `(other)`.
pub const MAX_PENDING: usize = 256;
/// Days of counts kept.
pub const KEEP_DAYS: i64 = 7;
/// The longest detail kept (role names are the longest: at most 200 characters).
const MAX_DETAIL: usize = 240;

/// What a visitor met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A session cookie shaped like ours that names no session here: expired and collected,
    /// or issued by a node that does not share this one's session store.
    UnknownSession,
    /// An admin refused a page or action; detail `ROLE: PERMISSION`.
    AccessDenied,
    /// A form refused before it was read; detail the cause (see `web::csrf::Refusal`).
    FormRefused,
    /// A form accepted by the same checks, to weigh the refusals against.
    FormAccepted,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UnknownSession => "unknown_session",
            Kind::AccessDenied => "access_denied",
            Kind::FormRefused => "form_refused",
            Kind::FormAccepted => "form_accepted",
        }
    }
}

/// Counts waiting in memory for the next flush.
#[derive(Default)]
pub struct Tally {
    pending: Mutex<HashMap<(Kind, String), i64>>,
}

impl Tally {
    /// Counts one `kind` with `detail`. Bounded whatever visitors send: details are cut, and
    /// once `MAX_PENDING` pairs wait, new ones count as `(other)`.
    pub fn count(&self, kind: Kind, detail: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = (kind, detail.chars().take(MAX_DETAIL).collect::<String>());
        if pending.len() >= MAX_PENDING && !pending.contains_key(&key) {
            key.1 = "(other)".into();
        }
        *pending.entry(key).or_default() += 1;
    }

    /// Adds the pending counts to today's rows (by `db`'s clock) and drops days past `KEEP_DAYS`.
    pub async fn flush(&self, db: &Db) -> Result<()> {
        let batch: Vec<((Kind, String), i64)> =
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
        if batch.is_empty() {
            return Ok(());
        }
        let now = db.now();
        let today = now.div_euclid(86_400);
        let mut tx = db.begin().await?;
        for ((kind, detail), n) in &batch {
            sqlx::query(
                "INSERT INTO encounters (day, kind, detail, count, last_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (day, kind, detail) DO UPDATE SET count = encounters.count + excluded.count, \
                 last_at = excluded.last_at",
            )
            .bind(today)
            .bind(kind.as_str())
            .bind(detail)
            .bind(n)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM encounters WHERE day < $1").bind(today - KEEP_DAYS).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// One kind and detail's count over the days asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx_macros::FromRow)]
pub struct Count {
    pub kind: String,
    pub detail: String,
    pub count: i64,
    pub last_at: i64,
}

/// The counts of `kind` from the day `since` falls in to now, by detail, largest first.
pub async fn since(db: &Db, kind: Kind, since: i64) -> Result<Vec<Count>> {
    Ok(sqlx::query_as(
        "SELECT kind, detail, CAST(SUM(count) AS BIGINT) AS count, MAX(last_at) AS last_at FROM encounters \
         WHERE kind = $1 AND day >= $2 GROUP BY kind, detail ORDER BY 3 DESC, detail",
    )
    .bind(kind.as_str())
    .bind(since.div_euclid(86_400))
    .fetch_all(db.pool())
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_past_the_bound_fold_into_other() {
        let tally = Tally::default();
        for n in 0..MAX_PENDING + 50 {
            tally.count(Kind::AccessDenied, &format!("role {n}: users.view"));
        }
        tally.count(Kind::AccessDenied, "role 3: users.view");
        let pending = tally.pending.lock().unwrap();
        assert_eq!(pending.len(), MAX_PENDING + 1, "the bound, and one `(other)`");
        assert_eq!(pending[&(Kind::AccessDenied, "(other)".to_string())], 50);
        assert_eq!(pending[&(Kind::AccessDenied, "role 3: users.view".to_string())], 2, "a known pair still counts");
    }
}
