//! Lockout counters (`security.lockout`) per account and per client IP, kept in the database so
//! that every `serve` node sees the same counts.

use crate::config::Lockout;
use crate::error::Result;
use crate::store::{Db, now};

#[derive(Debug, Clone)]
pub struct Throttle {
    db: Db,
    max_failures: i64,
    window_secs: i64,
    lock_secs: i64,
}

/// The throttling scope of an account (by normalized email) or a client IP.
pub fn account_scope(email: &str) -> String {
    format!("account:{}", email.trim().to_lowercase())
}

pub fn ip_scope(ip: &str) -> String {
    format!("ip:{ip}")
}

/// Second-factor failures of an account. Unlike the account scope, a correct password does not
/// clear it — only a second factor that succeeds does — so knowing the password buys no
/// further guesses at the code.
pub fn second_factor_scope(email: &str) -> String {
    format!("2fa:{}", email.trim().to_lowercase())
}

/// Sign-up attempts from one client IP.
pub fn register_scope(ip: &str) -> String {
    format!("register:{ip}")
}

impl Throttle {
    pub fn new(db: Db, policy: &Lockout) -> Self {
        Self {
            db,
            max_failures: i64::from(policy.max_failures.max(1)),
            window_secs: policy.window.as_secs(),
            lock_secs: policy.lock.as_secs(),
        }
    }

    /// True if any of the scopes is locked now.
    pub async fn is_locked(&self, scopes: &[&str]) -> Result<bool> {
        for scope in scopes {
            let until: Option<i64> = sqlx::query_scalar("SELECT locked_until FROM throttle WHERE scope = $1")
                .bind(*scope)
                .fetch_optional(self.db.pool())
                .await?;
            if until.is_some_and(|u| u > now()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Counts one failure against each scope; returns the scopes that became locked.
    pub async fn record_failure(&self, scopes: &[&str]) -> Result<Vec<String>> {
        let ts = now();
        let mut locked = Vec::new();
        for scope in scopes {
            // A window that has passed starts again at one failure.
            let failures: i64 = sqlx::query_scalar(
                "INSERT INTO throttle (scope, failures, window_start, locked_until) VALUES ($1, 1, $2, 0) \
                 ON CONFLICT (scope) DO UPDATE SET \
                 failures = CASE WHEN throttle.window_start < $3 THEN 1 ELSE throttle.failures + 1 END, \
                 window_start = CASE WHEN throttle.window_start < $3 THEN $2 ELSE throttle.window_start END \
                 RETURNING failures",
            )
            .bind(*scope)
            .bind(ts)
            .bind(ts - self.window_secs)
            .fetch_one(self.db.pool())
            .await?;
            if failures >= self.max_failures {
                sqlx::query("UPDATE throttle SET locked_until = $1, failures = 0, window_start = $2 WHERE scope = $3")
                    .bind(ts + self.lock_secs)
                    .bind(ts)
                    .bind(*scope)
                    .execute(self.db.pool())
                    .await?;
                locked.push(scope.to_string());
            }
        }
        Ok(locked)
    }

    /// Forgets the failures of a scope (after a successful login to that account).
    pub async fn clear(&self, scope: &str) -> Result<()> {
        sqlx::query("DELETE FROM throttle WHERE scope = $1 AND locked_until <= $2")
            .bind(scope)
            .bind(now())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Removes counters whose window and lock have both passed (cron).
    pub async fn purge(&self) -> Result<u64> {
        let ts = now();
        Ok(sqlx::query("DELETE FROM throttle WHERE locked_until <= $1 AND window_start < $2")
            .bind(ts)
            .bind(ts - self.window_secs)
            .execute(self.db.pool())
            .await?
            .rows_affected())
    }
}
