//! Lockout counters (`security.lockout`), kept in the database so that every `serve` node sees
//! the same counts. Each failure counts in several [`Scope`]s at once, each with its limit:
//!
//! - the account, and the account at one client IP, lock at `max_failures`: guessing one
//!   user's password stops there, wherever it comes from;
//! - the client IP alone locks at the much higher `ip_max_failures`: it stops password spraying
//!   (a few guesses on each of many accounts) without letting one user's typos lock out everyone
//!   else behind the same office NAT or an untrusted proxy;
//! - the account's second factor locks at `max_failures` and only a second factor that succeeds
//!   clears it, so knowing the password buys no more guesses at the code;
//! - sign-ups from one IP lock at `max_failures` per window.
//!
//! A successful login clears the account's scopes, never the IP's: one valid account must not
//! reset a sprayer's count.

use crate::config::Lockout;
use crate::error::Result;
use crate::store::Db;

/// What one failure counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Account(String),
    AccountAtIp(String, String),
    Ip(String),
    SecondFactor(String),
    SignUp(String),
}

fn normalized(email: &str) -> String {
    email.trim().to_lowercase()
}

impl Scope {
    pub fn account(email: &str) -> Self {
        Scope::Account(normalized(email))
    }
    pub fn account_at_ip(email: &str, ip: &str) -> Self {
        Scope::AccountAtIp(normalized(email), ip.to_string())
    }
    pub fn ip(ip: &str) -> Self {
        Scope::Ip(ip.to_string())
    }
    pub fn second_factor(email: &str) -> Self {
        Scope::SecondFactor(normalized(email))
    }
    pub fn sign_up(ip: &str) -> Self {
        Scope::SignUp(ip.to_string())
    }

    /// A password check on `email` from `ip` (login, password change, reset answer).
    pub fn password(email: &str, ip: &str) -> [Scope; 3] {
        [Scope::account(email), Scope::account_at_ip(email, ip), Scope::ip(ip)]
    }

    /// The key stored in the `throttle` table.
    pub fn key(&self) -> String {
        match self {
            Scope::Account(email) => format!("account:{email}"),
            Scope::AccountAtIp(email, ip) => format!("account-ip:{email} {ip}"),
            Scope::Ip(ip) => format!("ip:{ip}"),
            Scope::SecondFactor(email) => format!("2fa:{email}"),
            Scope::SignUp(ip) => format!("register:{ip}"),
        }
    }

    /// Reads a stored key back.
    pub fn parse(key: &str) -> Option<Self> {
        let (kind, rest) = key.split_once(':')?;
        Some(match kind {
            "account" => Scope::Account(rest.into()),
            "account-ip" => {
                let (email, ip) = rest.rsplit_once(' ')?;
                Scope::AccountAtIp(email.into(), ip.into())
            }
            "ip" => Scope::Ip(rest.into()),
            "2fa" => Scope::SecondFactor(rest.into()),
            "register" => Scope::SignUp(rest.into()),
            _ => return None,
        })
    }

    /// The client IP the scope counts, if it counts one.
    pub fn client_ip(&self) -> Option<&str> {
        match self {
            Scope::AccountAtIp(_, ip) | Scope::Ip(ip) | Scope::SignUp(ip) => Some(ip),
            _ => None,
        }
    }

    /// The account (normalized email) the scope counts, if it counts one.
    pub fn email(&self) -> Option<&str> {
        match self {
            Scope::Account(e) | Scope::AccountAtIp(e, _) | Scope::SecondFactor(e) => Some(e),
            _ => None,
        }
    }
}

/// One stored counter, for `gatehouse lockout list` and the doctor.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Counter {
    pub scope: String,
    pub failures: i64,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub window_start: i64,
    /// Unix time the lock ends; 0 or past when not locked.
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub locked_until: i64,
    pub locked: bool,
}

#[derive(Debug, Clone)]
pub struct Throttle {
    db: Db,
    max_failures: i64,
    ip_max_failures: i64,
    window_secs: i64,
    lock_secs: i64,
}

impl Throttle {
    pub fn new(db: Db, policy: &Lockout) -> Self {
        Self {
            db,
            max_failures: i64::from(policy.max_failures.max(1)),
            ip_max_failures: i64::from(policy.ip_max_failures.max(1)),
            window_secs: policy.window.as_secs(),
            lock_secs: policy.lock.as_secs(),
        }
    }

    fn limit(&self, scope: &Scope) -> i64 {
        match scope {
            Scope::Ip(_) => self.ip_max_failures,
            _ => self.max_failures,
        }
    }

    /// True if any of the scopes is locked now.
    pub async fn is_locked(&self, scopes: &[Scope]) -> Result<bool> {
        for scope in scopes {
            let until: Option<i64> = sqlx::query_scalar("SELECT locked_until FROM throttle WHERE scope = $1")
                .bind(scope.key())
                .fetch_optional(self.db.pool())
                .await?;
            if until.is_some_and(|u| u > self.db.now()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Counts one failure against each scope; returns the scopes that became locked.
    pub async fn record_failure(&self, scopes: &[Scope]) -> Result<Vec<Scope>> {
        let ts = self.db.now();
        let mut locked = Vec::new();
        for scope in scopes {
            let key = scope.key();
            // A window that has passed starts again at one failure.
            let failures: i64 = sqlx::query_scalar(
                "INSERT INTO throttle (scope, failures, window_start, locked_until) VALUES ($1, 1, $2, 0) \
                 ON CONFLICT (scope) DO UPDATE SET \
                 failures = CASE WHEN throttle.window_start < $3 THEN 1 ELSE throttle.failures + 1 END, \
                 window_start = CASE WHEN throttle.window_start < $3 THEN $2 ELSE throttle.window_start END \
                 RETURNING failures",
            )
            .bind(&key)
            .bind(ts)
            .bind(ts - self.window_secs)
            .fetch_one(self.db.pool())
            .await?;
            if failures >= self.limit(scope) {
                sqlx::query("UPDATE throttle SET locked_until = $1, failures = 0, window_start = $2 WHERE scope = $3")
                    .bind(ts + self.lock_secs)
                    .bind(ts)
                    .bind(&key)
                    .execute(self.db.pool())
                    .await?;
                locked.push(scope.clone());
            }
        }
        Ok(locked)
    }

    /// Forgets the failures of a scope that is not locked (after a success on that account).
    pub async fn clear(&self, scope: &Scope) -> Result<()> {
        sqlx::query("DELETE FROM throttle WHERE scope = $1 AND locked_until <= $2")
            .bind(scope.key())
            .bind(self.db.now())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Every counter, locked or not, locked ones first.
    pub async fn counters(&self) -> Result<Vec<Counter>> {
        let ts = self.db.now();
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT scope, failures, window_start, locked_until FROM throttle ORDER BY locked_until DESC, scope",
        )
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(scope, failures, window_start, locked_until)| Counter {
                scope,
                failures,
                window_start,
                locked_until,
                locked: locked_until > ts,
            })
            .collect())
    }

    /// Removes the counters whose scope `matching` accepts, locks included. Returns the
    /// scopes removed (an operator's `lockout clear`, `user unlock`).
    pub async fn release(&self, matching: impl Fn(&Scope) -> bool) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for counter in self.counters().await? {
            if Scope::parse(&counter.scope).is_some_and(|s| matching(&s)) {
                sqlx::query("DELETE FROM throttle WHERE scope = $1")
                    .bind(&counter.scope)
                    .execute(self.db.pool())
                    .await?;
                removed.push(counter.scope);
            }
        }
        Ok(removed)
    }

    /// Removes counters whose window and lock have both passed (cron).
    pub async fn purge(&self) -> Result<u64> {
        let ts = self.db.now();
        Ok(sqlx::query("DELETE FROM throttle WHERE locked_until <= $1 AND window_start < $2")
            .bind(ts)
            .bind(ts - self.window_secs)
            .execute(self.db.pool())
            .await?
            .rows_affected())
    }
}
