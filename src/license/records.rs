//! The verifications made, one row per kind of process and host: what each sent and what it
//! got, so the doctor can compare the contexts.

use serde::Serialize;

use super::protocol::{Context, Facts};
use crate::error::Result;
use crate::store::Db;

#[derive(Debug, Clone, Serialize, sqlx_macros::FromRow)]
pub struct Record {
    pub context: String,
    pub host: String,
    pub domain: Option<String>,
    pub ip: Option<String>,
    pub directory: String,
    pub config_fingerprint: String,
    /// The answer's status, or `no_answer`.
    pub outcome: String,
    pub reason: String,
    /// Whether the answer replaced the cache (see `License::verify`).
    pub applied: i64,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub at: i64,
}

impl Record {
    pub fn context(&self) -> Option<Context> {
        Context::parse(&self.context)
    }

    pub fn facts(&self) -> Facts {
        Facts { domain: self.domain.clone(), ip: self.ip.clone(), directory: self.directory.clone() }
    }
}

pub async fn save(db: &Db, r: &Record) -> Result<()> {
    sqlx::query(
        "INSERT INTO license_checks (context, host, domain, ip, directory, config_fingerprint, outcome, reason, \
         applied, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (context, host) DO UPDATE SET \
         domain = excluded.domain, ip = excluded.ip, directory = excluded.directory, \
         config_fingerprint = excluded.config_fingerprint, outcome = excluded.outcome, reason = excluded.reason, \
         applied = excluded.applied, at = excluded.at",
    )
    .bind(&r.context)
    .bind(&r.host)
    .bind(&r.domain)
    .bind(&r.ip)
    .bind(&r.directory)
    .bind(&r.config_fingerprint)
    .bind(&r.outcome)
    .bind(&r.reason)
    .bind(r.applied)
    .bind(r.at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Every record, newest first.
pub async fn all(db: &Db) -> Result<Vec<Record>> {
    Ok(sqlx::query_as("SELECT * FROM license_checks ORDER BY at DESC").fetch_all(db.pool()).await?)
}
