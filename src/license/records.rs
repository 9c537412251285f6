//! The verifications made, one row per kind of process and host: what each sent and what it
//! got, so the doctor can compare the contexts.

use serde::Serialize;

use super::protocol::{Context, Facts, Status};
use crate::error::Result;
use crate::store::Db;

/// What a verification came to: the answer's status, or no answer at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered(Status),
    /// The licensing server could not be reached, or said nothing signed.
    NoAnswer,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered(status) => status.as_str(),
            Outcome::NoAnswer => "no_answer",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl TryFrom<String> for Outcome {
    type Error = crate::Error;
    fn try_from(stored: String) -> Result<Self> {
        [Status::Active, Status::Invalid, Status::Suspended, Status::Expired]
            .into_iter()
            .map(Outcome::Answered)
            .chain([Outcome::NoAnswer])
            .find(|o| o.as_str() == stored)
            .ok_or_else(|| crate::Error::Internal(format!("unknown verification outcome {stored:?}")))
    }
}

crate::stored_as!(Outcome, String);

#[derive(Debug, Clone, Serialize, sqlx_macros::FromRow)]
pub struct Record {
    pub context: Context,
    pub host: String,
    pub domain: Option<String>,
    pub ip: Option<String>,
    pub directory: String,
    pub config_fingerprint: String,
    pub outcome: Outcome,
    pub reason: String,
    /// Whether the answer replaced the cache (see `License::verify`).
    pub applied: i64,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub at: i64,
}

impl Record {
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
    .bind(r.context.as_str())
    .bind(&r.host)
    .bind(&r.domain)
    .bind(&r.ip)
    .bind(&r.directory)
    .bind(&r.config_fingerprint)
    .bind(r.outcome.as_str())
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
