//! `gatehouse cron`: the periodic jobs, run once per call by the operator's scheduler (every
//! `cron.interval`). Each job is independent: one failing does not stop the others, and the
//! call's exit status says whether all of them succeeded.

pub mod heartbeat;

use serde::Serialize;

use crate::auth::{Auth, one_time};
use crate::config::Loaded;
use crate::error::{Error, Result};
use crate::mail::Transport;

/// Sessions deleted per statement: each batch is a short transaction, so logins never wait
/// long behind collection.
pub const GC_BATCH: i64 = 1000;
/// Messages delivered per run, so one run stays bounded however long the queue is.
const MAIL_BATCH: i64 = 200;

pub const JOBS: &[&str] = &["sessions-gc", "token-purge", "mail", "heartbeat"];

#[derive(Debug, Clone, Serialize)]
pub struct JobResult {
    pub job: &'static str,
    pub ok: bool,
    pub detail: serde_json::Value,
}

pub struct Cron<'a> {
    pub loaded: &'a Loaded,
    pub auth: &'a Auth,
}

impl Cron<'_> {
    /// Runs `only` (a job name) or every job.
    pub async fn run(&self, only: Option<&str>) -> Result<Vec<JobResult>> {
        let jobs: Vec<&'static str> =
            match only {
                Some(name) => vec![*JOBS.iter().find(|j| **j == name).ok_or_else(|| {
                    Error::Usage(format!("unknown job `{name}`; expected one of: {}", JOBS.join(", ")))
                })?],
                None => JOBS.to_vec(),
            };
        let mut results = Vec::new();
        for job in jobs {
            let outcome = self.run_job(job).await;
            if let Err(e) = &outcome {
                tracing::error!(job, error = %e, "cron job failed");
            }
            results.push(match outcome {
                Ok(detail) => JobResult { job, ok: true, detail },
                Err(e) => JobResult { job, ok: false, detail: serde_json::json!({"error": e.to_string()}) },
            });
        }
        Ok(results)
    }

    async fn run_job(&self, job: &str) -> Result<serde_json::Value> {
        let db = self.auth.accounts.db();
        match job {
            "sessions-gc" => {
                if !self.loaded.config.sessions.gc {
                    return Ok(serde_json::json!({"skipped": "sessions.gc is false"}));
                }
                let removed = self.auth.sessions.collect_all(GC_BATCH).await?;
                Ok(serde_json::json!({"removed": removed}))
            }
            "token-purge" => {
                let tokens = one_time::purge(db).await?;
                let counters = self.auth.throttle.purge().await?;
                Ok(serde_json::json!({"tokens_removed": tokens, "throttle_counters_removed": counters}))
            }
            "mail" => {
                let transport = Transport::from_config(&self.loaded.config.mail)?;
                let delivery = transport.deliver_due(db, MAIL_BATCH).await?;
                Ok(serde_json::to_value(delivery).unwrap_or_default())
            }
            "heartbeat" => {
                let beat = heartbeat::Heartbeat::of_this_process("cron", self.loaded);
                beat.write(db).await?;
                Ok(serde_json::to_value(beat).unwrap_or_default())
            }
            other => Err(Error::Internal(format!("job {other} has no implementation"))),
        }
    }
}
