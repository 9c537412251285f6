//! Runs the selected checks concurrently, each under its deadline and all inside a global
//! budget. A panic becomes `error`; a prerequisite that did not pass makes its dependants
//! `blocked`; results come back in registry order, whatever order they finished in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::check::{Check, Meta, Outcome};
use super::context::Context;
use super::model::{CheckResult, FixInfo, Status};

/// How long past the per-check deadline the whole run may take before unfinished checks are
/// reported as timed out. Checks run concurrently, so a healthy run needs one deadline at most;
/// the slack covers a prerequisite chain.
const BUDGET_SLACK: Duration = Duration::from_millis(250);

pub struct RunOptions {
    pub per_check: Duration,
    /// The whole run; unfinished checks become `timeout` when it is spent.
    pub budget: Duration,
}

impl RunOptions {
    pub fn with_timeout(per_check: Duration) -> Self {
        Self { per_check, budget: per_check * 2 + BUDGET_SLACK }
    }
}

/// Runs `checks` (already in registry order, prerequisites included) and returns one result
/// per check in the same order.
pub async fn run(checks: &[Arc<dyn Check>], ctx: Arc<Context>, options: &RunOptions) -> Vec<CheckResult> {
    let mut senders = HashMap::new();
    let mut receivers = HashMap::new();
    for check in checks {
        let (tx, rx) = watch::channel::<Option<Status>>(None);
        senders.insert(check.meta().id, tx);
        receivers.insert(check.meta().id, rx);
    }

    let mut handles = Vec::with_capacity(checks.len());
    for check in checks {
        let meta = check.meta();
        let prerequisites: Vec<(&'static str, Option<watch::Receiver<Option<Status>>>)> =
            meta.prerequisites.iter().map(|p| (*p, receivers.get(p).cloned())).collect();
        let done = senders.remove(meta.id).expect("one sender per check");
        let (check, ctx, per_check) = (check.clone(), ctx.clone(), options.per_check);
        handles.push(tokio::spawn(async move {
            let result = run_one(check, ctx, prerequisites, per_check).await;
            let _ = done.send(Some(result.status));
            result
        }));
    }

    let started = Instant::now();
    let mut results = Vec::with_capacity(checks.len());
    for (check, handle) in checks.iter().zip(handles) {
        let left = options.budget.saturating_sub(started.elapsed());
        let result = match tokio::time::timeout(left, handle).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => finished(check.as_ref(), Outcome::error(format!("the check runner failed: {join}")), 0),
            Err(_) => finished(
                check.as_ref(),
                Outcome::new(
                    Status::Timeout,
                    format!("did not finish within the run's budget of {}", ms(options.budget)),
                ),
                options.budget.as_millis() as u64,
            ),
        };
        results.push(result);
    }
    results
}

async fn run_one(
    check: Arc<dyn Check>,
    ctx: Arc<Context>,
    prerequisites: Vec<(&'static str, Option<watch::Receiver<Option<Status>>>)>,
    per_check: Duration,
) -> CheckResult {
    for (id, rx) in prerequisites {
        let status = match rx {
            Some(mut rx) => rx.wait_for(Option::is_some).await.map(|s| s.expect("waited for Some")).ok(),
            None => None,
        };
        match status {
            Some(s) if s.satisfies_prerequisite() => {}
            Some(s) => {
                let outcome = Outcome::new(Status::Blocked, format!("prerequisite {id} did not pass ({s})"))
                    .with("prerequisite", id);
                return finished(check.as_ref(), outcome, 0);
            }
            None => {
                let outcome =
                    Outcome::new(Status::Blocked, format!("prerequisite {id} did not run")).with("prerequisite", id);
                return finished(check.as_ref(), outcome, 0);
            }
        }
    }

    let started = Instant::now();
    let origins = ctx.clone();
    // The check runs in a task of its own so a panic is caught as a JoinError, and so it can
    // be aborted when its deadline passes.
    let task = {
        let check = check.clone();
        tokio::spawn(async move { check.run(&ctx).await })
    };
    let abort = task.abort_handle();
    let outcome = match tokio::time::timeout(per_check, task).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) if e.is_panic() => Outcome::error(format!("the check panicked: {}", panic_message(e.into_panic())))
            .remediation("This is a bug in gatehouse; please report it with this output."),
        Ok(Err(e)) => Outcome::error(format!("the check was cancelled: {e}")),
        Err(_) => {
            abort.abort();
            Outcome::new(Status::Timeout, format!("did not finish within {}", ms(per_check)))
                .with("deadline_ms", per_check.as_millis() as u64)
        }
    };
    let mut outcome = point_at_config(check.meta(), outcome, &origins);
    let proposal = outcome.fix.take().filter(|_| outcome.status.severity() > 0);
    let mut result = finished(check.as_ref(), outcome, started.elapsed().as_millis() as u64);
    result.fix = fix_info(check.meta(), proposal, &origins);
    result
}

/// A problem about configured values says where they were written, unless the check already did.
fn point_at_config(meta: &Meta, outcome: Outcome, ctx: &Context) -> Outcome {
    if outcome.status.severity() == 0 || outcome.evidence.contains_key("configured_in") {
        return outcome;
    }
    let written =
        meta.config.iter().map(|key| ctx.loaded.origin(key)).find(|o| matches!(o, crate::config::Origin::File { .. }));
    match written {
        Some(origin) => outcome.with("configured_in", origin.to_string()),
        None => outcome,
    }
}

fn finished(check: &dyn Check, outcome: Outcome, duration_ms: u64) -> CheckResult {
    let meta = check.meta();
    let remediation = match outcome.remediation {
        Some(text) => text,
        None if outcome.status.severity() > 0 => meta.next_steps.to_string(),
        None => String::new(),
    };
    CheckResult {
        id: meta.id.into(),
        title: meta.title.into(),
        tags: meta.tags.iter().map(|t| t.to_string()).collect(),
        status: outcome.status,
        message: outcome.message,
        evidence: outcome.evidence,
        remediation,
        doc: meta.doc(),
        fix: FixInfo::default(),
        duration_ms,
        symptoms: if outcome.status.severity() > 0 {
            super::symptoms::explained_by(meta.id).into_iter().map(String::from).collect()
        } else {
            Vec::new()
        },
    }
}

/// The fix offered for a problem, with the check's word on who may apply it, and whether it can
/// be applied to this deployment at all.
fn fix_info(meta: &Meta, proposal: Option<super::fix::Fix>, ctx: &Context) -> FixInfo {
    let Some(fix) = proposal else { return FixInfo::default() };
    let (changes_trust, from_web) = (meta.explicit_fix, meta.fix_from_web);
    match fix.blocked_here(ctx) {
        Some(why) => FixInfo {
            available: false,
            description: format!("not here: {why}"),
            changes_trust,
            from_web,
            proposal: None,
        },
        None => {
            FixInfo { available: true, description: fix.summary(ctx), changes_trust, from_web, proposal: Some(fix) }
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}
