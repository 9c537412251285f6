//! What an install remembers about its licensing beyond the cache file, so that neither a
//! clock turned back nor a key blanked out re-opens what the license closed:
//!
//! - the **high-water mark**: the latest trustworthy time seen — the newest heartbeat and
//!   verification record, the database server's clock on PostgreSQL, and the mark itself as last
//!   stored (heartbeat rows are overwritten in place, so a clock turned back would lower their
//!   maximum; the stored mark only ever rises). Standing is never judged earlier than it.
//! - when the **first verification** was attempted: a fresh install whose first attempt gets no
//!   answer has the same grace as one whose server went away.
//! - whether the install **was ever licensed** (a genuine answer applied): removing the key then
//!   locks instead of returning to unlicensed mode.
//!
//! Kept in the `settings` table (shared by every node) and mirrored in memory, because standing
//! is judged on paths that cannot wait for the database; [`super::License::refresh`] reads it.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::config::Backend;
use crate::error::Result;
use crate::store::Db;

const HIGH_WATER: &str = "license_high_water";
const FIRST_ATTEMPT: &str = "license_first_attempt_at";
const LICENSED: &str = "license_licensed_at";

#[derive(Debug, Default)]
pub struct Memory {
    high_water: AtomicI64,
    first_attempt_at: AtomicI64,
    /// The date (the vendor's) of the newest genuine answer applied here; 0 for none.
    last_applied_at: AtomicI64,
}

impl Memory {
    pub fn high_water(&self) -> i64 {
        self.high_water.load(Ordering::Relaxed)
    }

    /// When the first verification was attempted, if one was.
    pub fn first_attempt_at(&self) -> Option<i64> {
        Some(self.first_attempt_at.load(Ordering::Relaxed)).filter(|t| *t > 0)
    }

    pub fn was_licensed(&self) -> bool {
        self.last_applied_at().is_some()
    }

    /// The date of the newest genuine answer applied here: an older one (a cache restored from
    /// a backup, an answer replayed) is not believed.
    pub fn last_applied_at(&self) -> Option<i64> {
        Some(self.last_applied_at.load(Ordering::Relaxed)).filter(|t| *t > 0)
    }

    /// Reads what the database remembers, raises the stored mark to the latest trustworthy
    /// time seen, and mirrors it all here.
    pub async fn refresh(&self, db: &Db) -> Result<()> {
        let heartbeat: Option<i64> = sqlx::query_scalar("SELECT MAX(at) FROM heartbeats").fetch_one(db.pool()).await?;
        let checked: Option<i64> =
            sqlx::query_scalar("SELECT MAX(at) FROM license_checks").fetch_one(db.pool()).await?;
        let server_clock: Option<i64> = match db.backend() {
            Backend::Postgres => {
                Some(sqlx::query_scalar("SELECT CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)").fetch_one(db.pool()).await?)
            }
            Backend::Sqlite => None,
        };
        let stored = read(db, HIGH_WATER).await?;
        let mark = [heartbeat, checked, server_clock, stored].into_iter().flatten().max().unwrap_or(0);
        if stored.is_none_or(|s| mark > s) {
            write(db, HIGH_WATER, mark).await?;
        }
        self.high_water.fetch_max(mark, Ordering::Relaxed);
        if let Some(first) = read(db, FIRST_ATTEMPT).await? {
            self.first_attempt_at.store(first, Ordering::Relaxed);
        }
        if let Some(applied) = read(db, LICENSED).await? {
            self.last_applied_at.fetch_max(applied, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A verification was attempted at `at` (the first one starts the first grace).
    pub async fn attempted(&self, db: &Db, at: i64) -> Result<()> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(FIRST_ATTEMPT)
            .bind(at.to_string())
            .execute(db.pool())
            .await?;
        if self.first_attempt_at().is_none() {
            self.first_attempt_at.store(read(db, FIRST_ATTEMPT).await?.unwrap_or(at), Ordering::Relaxed);
        }
        self.high_water.fetch_max(at, Ordering::Relaxed);
        Ok(())
    }

    /// A genuine answer dated `at` (by the vendor's clock) was applied: the install is licensed,
    /// and no answer older than this one counts any more.
    pub async fn licensed(&self, db: &Db, at: i64) -> Result<()> {
        let newest = read(db, LICENSED).await?.unwrap_or(0).max(at);
        write(db, LICENSED, newest).await?;
        self.last_applied_at.fetch_max(newest, Ordering::Relaxed);
        Ok(())
    }
}

async fn read(db: &Db, key: &str) -> Result<Option<i64>> {
    let value: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(db.pool()).await?;
    Ok(value.and_then(|v| v.parse().ok()))
}

async fn write(db: &Db, key: &str, value: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value.to_string())
    .execute(db.pool())
    .await?;
    Ok(())
}
