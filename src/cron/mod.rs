//! `gatehouse cron`: the periodic jobs, run once per call by the operator's scheduler (every
//! `cron.interval`). Each job is independent: one failing does not stop the others, and the
//! call's exit status says whether all of them succeeded.

pub mod heartbeat;

use serde::Serialize;

use crate::auth::one_time;
use crate::config::Loaded;
use crate::error::{Code, Error, Result};
use crate::license::{self, Reply, Standing};
use crate::mail::Transport;
use crate::services::Services;

/// Sessions deleted per statement: each batch is a short transaction, so logins never wait
/// long behind collection.
pub const GC_BATCH: i64 = 1000;
/// Messages delivered per run, so one run stays bounded however long the queue is.
const MAIL_BATCH: i64 = 200;

/// The jobs of `gatehouse cron`, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Job {
    /// Expired sessions, deleted in batches.
    SessionsGc,
    /// Used or expired reset and impersonation links, old lockout counters.
    TokenPurge,
    /// Deliver the outbox, with retries.
    Mail,
    /// Verify the license with the licensing server when it is due (every 7 days; during the
    /// grace after an unreachable server, every run).
    License,
    /// Tell `gatehouse doctor` that cron runs, and with which time zone and configuration.
    Heartbeat,
}

impl Job {
    pub const ALL: [Job; 5] = [Job::SessionsGc, Job::TokenPurge, Job::Mail, Job::License, Job::Heartbeat];

    pub fn name(self) -> &'static str {
        match self {
            Job::SessionsGc => "sessions-gc",
            Job::TokenPurge => "token-purge",
            Job::Mail => "mail",
            Job::License => "license",
            Job::Heartbeat => "heartbeat",
        }
    }
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct JobResult {
    pub job: Job,
    pub ok: bool,
    pub detail: serde_json::Value,
}

pub struct Cron<'a> {
    pub loaded: &'a Loaded,
    pub services: &'a Services,
}

impl Cron<'_> {
    /// Runs `only` that job, or every job.
    pub async fn run(&self, only: Option<Job>) -> Result<Vec<JobResult>> {
        let jobs = match only {
            Some(job) => vec![job],
            None => Job::ALL.to_vec(),
        };
        let mut results = Vec::new();
        for job in jobs {
            let outcome = self.run_job(job).await;
            if let Err(e) = &outcome {
                tracing::error!(job = job.name(), error = %e, "cron job failed");
            }
            results.push(match outcome {
                Ok(detail) => JobResult { job, ok: true, detail },
                Err(e) => JobResult { job, ok: false, detail: serde_json::json!({"error": e.to_string()}) },
            });
        }
        Ok(results)
    }

    async fn run_job(&self, job: Job) -> Result<serde_json::Value> {
        let db = &self.services.db;
        match job {
            Job::SessionsGc => {
                if !self.loaded.config.sessions.gc {
                    return Ok(serde_json::json!({"skipped": "sessions.gc is false"}));
                }
                let removed = self.services.sessions.collect_all(GC_BATCH).await?;
                Ok(serde_json::json!({"removed": removed}))
            }
            Job::TokenPurge => {
                let tokens = one_time::purge(db).await?;
                let counters = self.services.auth.purge_lockouts().await?;
                let devices = self.services.auth.purge_devices().await?;
                let not_me = self.services.auth.purge_not_me_links().await?;
                let ceremonies = self.services.auth.purge_passkey_ceremonies().await?;
                Ok(serde_json::json!({
                    "tokens_removed": tokens, "throttle_counters_removed": counters, "devices_removed": devices,
                    "not_me_links_removed": not_me, "passkey_ceremonies_removed": ceremonies
                }))
            }
            Job::Mail => {
                let transport = Transport::from_config(&self.loaded.config.mail)?;
                let delivery = transport.deliver_due(db, MAIL_BATCH).await?;
                Ok(serde_json::to_value(delivery).unwrap_or_default())
            }
            Job::License => self.verify_license().await,
            Job::Heartbeat => {
                let troubles = heartbeat::what_cannot_be_written(&self.loaded.config).await;
                let beat = heartbeat::Heartbeat::of_this_process(heartbeat::Role::Cron, self.loaded, db.now())
                    .with_troubles(troubles);
                beat.write(db).await?;
                Ok(serde_json::to_value(beat).unwrap_or_default())
            }
        }
    }
}

impl Cron<'_> {
    /// The `license` job: verifies when due. It fails — so the run exits 1 and says why — when
    /// the server gave no answer, when the answer is not `active`, and when it was not applied
    /// because this cron runs with other facts than the web server.
    async fn verify_license(&self) -> Result<serde_json::Value> {
        let license = &self.services.license;
        if !license.is_configured() {
            return Ok(serde_json::json!({"skipped": "license.key is not set (unlicensed mode)"}));
        }
        license.refresh().await?;
        if let Standing::Active { due_at, .. } = license.standing() {
            return Ok(serde_json::json!({"skipped": format!("verified; next check due {due_at}")}));
        }
        let verification = license.verify(license::Context::Cron).await?;
        match (&verification.reply, &verification.not_applied) {
            (Reply::Answered { .. }, Some(why)) => Err(Error::refused(Code::LicenseInvalid, why.clone())),
            (Reply::Answered { answer, .. }, None) if answer.status == license::Status::Active => {
                Ok(serde_json::to_value(&verification).unwrap_or_default())
            }
            (Reply::Answered { answer, .. }, None) => Err(Error::refused(
                Code::LicenseInvalid,
                format!("the licensing server says the license is {}: {}", answer.status, answer.reason),
            )),
            (Reply::NoAnswer { phase, why }, _) => {
                Err(Error::Unavailable(format!("the licensing server gave no answer ({phase}): {why}")))
            }
        }
    }
}
