//! What a check is: metadata (id, title, tags, the symptom it explains, its cause and next
//! steps, its prerequisites) and an async `run` that observes and reports.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde_json::{Map, Value};

use super::context::Context;
use super::fix::Fix;
use super::model::Status;

pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// A check's answer where `?` may end it early: `Err` carries the outcome to report then (the
/// database is not there yet, a query failed), `Ok` the finding. Both are reported alike.
pub type Judged = Result<Outcome, Outcome>;

/// The future of a `run` written with `?` (see [`Judged`]).
pub fn judged<'a>(judging: impl Future<Output = Judged> + Send + 'a) -> CheckFuture<'a> {
    Box::pin(async move { judging.await.unwrap_or_else(|early| early) })
}

/// Static description of a check, shown by `--list`, in `doc` and in remediations.
#[derive(Debug)]
pub struct Meta {
    pub id: &'static str,
    pub title: &'static str,
    /// The first tag is the check's category.
    pub tags: &'static [&'static str],
    /// What a user or operator sees when this goes wrong.
    pub symptom: &'static str,
    pub cause: &'static str,
    pub next_steps: &'static str,
    /// Checks that must pass (or warn) before this one can say anything useful.
    pub prerequisites: &'static [&'static str],
    /// Checks whose finding this one's can cause (cron never running explains sessions piling
    /// up): triage ranks a cause above what it explains, and a symptom's checks bring their
    /// causes along.
    pub explains: &'static [&'static str],
    /// Threshold keys a profile may override for this check (`thresholds: {ID: {KEY: N}}`).
    pub thresholds: &'static [&'static str],
    /// The fix changes who or what is trusted: `--fix` applies it only when the check is named
    /// (`--fix proxy.trusted`), never as part of "fix everything".
    pub explicit_fix: bool,
    /// The fix may be applied from the admin area's System Health, by an admin with
    /// `settings.manage`; the others are for an operator at a shell (migrations, permissions on
    /// disk, where the site lives).
    pub fix_from_web: bool,
    /// The top-level configuration keys whose values this check judges: a problem points at
    /// where the first of them was written (evidence `configured_in`, a SARIF location).
    pub config: &'static [&'static str],
}

impl Meta {
    /// What most checks leave as it is — no prerequisites, no thresholds — for a check to
    /// finish its description with (`..Meta::BASE`), so it states only what is its own.
    pub const BASE: Meta = Meta {
        id: "",
        title: "",
        tags: &[],
        symptom: "",
        cause: "",
        next_steps: "",
        prerequisites: &[],
        explains: &[],
        thresholds: &[],
        explicit_fix: false,
        fix_from_web: false,
        config: &[],
    };
}

impl Meta {
    pub fn doc(&self) -> String {
        format!("Symptom: {} Cause: {} Next steps: {}", self.symptom, self.cause, self.next_steps)
    }
}

pub trait Check: Send + Sync + 'static {
    fn meta(&self) -> &'static Meta;
    /// Examines the deployment. Must not block the thread: blocking work goes through
    /// `tokio::task::spawn_blocking`. The runner enforces the deadline and turns a panic into
    /// an `error` result.
    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a>;
}

/// What one run of a check found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    pub message: String,
    pub evidence: Map<String, Value>,
    /// What to do; defaults to the check's next steps for a problem.
    pub remediation: Option<String>,
    /// The automatic fix `--fix` would apply, when one is safe.
    pub fix: Option<Fix>,
}

impl From<super::context::Unavailable> for Outcome {
    fn from(why: super::context::Unavailable) -> Self {
        match why {
            super::context::Unavailable::NotYet(m) => Outcome::skipped(m),
            super::context::Unavailable::Failed(m) => Outcome::error(m),
        }
    }
}

impl Outcome {
    pub(crate) fn new(status: Status, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), evidence: Map::new(), remediation: None, fix: None }
    }
    pub fn pass(message: impl Into<String>) -> Self {
        Self::new(Status::Pass, message)
    }
    pub fn warn(message: impl Into<String>) -> Self {
        Self::new(Status::Warn, message)
    }
    pub fn fail(message: impl Into<String>) -> Self {
        Self::new(Status::Fail, message)
    }
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Status::Error, message)
    }
    pub fn skipped(reason: impl Into<String>) -> Self {
        Self::new(Status::Skipped, reason)
    }
    /// Adds one observation to the evidence.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.evidence.insert(key.into(), serde_json::to_value(value).unwrap_or(Value::Null));
        self
    }
    /// Puts `earlier` evidence — gathered before the verdict was reached — ahead of this
    /// outcome's own.
    pub fn after_evidence(mut self, earlier: Map<String, Value>) -> Self {
        let own = std::mem::replace(&mut self.evidence, earlier);
        self.evidence.extend(own);
        self
    }
    pub fn remediation(mut self, text: impl Into<String>) -> Self {
        self.remediation = Some(text.into());
        self
    }
    /// Offers `fix` for what was found (the runner says whether it can be applied here).
    pub fn fixable(mut self, fix: Fix) -> Self {
        self.fix = Some(fix);
        self
    }
}
