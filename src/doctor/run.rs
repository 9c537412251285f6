//! One doctor run, as every face makes it — `gatehouse doctor`, `gatehouse report`, System
//! Health and `/api/v1/health`: which checks, the thresholds and waivers a profile gives, the
//! per-check deadline, the clock; then the report, and which of its fixes may be applied.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::fix::{self, Planned};
use super::profile::{Profile, Waiver};
use super::runner::RunOptions;
use super::{Check, CheckResult, Context, Report, checks};
use crate::config::Loaded;
use crate::store::Clock;

pub struct Doctor {
    checks: Vec<Arc<dyn Check>>,
    /// How long one check may take (`--timeout`, else `doctor.timeout`).
    per_check: Duration,
    thresholds: HashMap<String, Map<String, Value>>,
    waivers: Vec<Waiver>,
    clock: Option<Clock>,
}

impl Doctor {
    /// Every built-in check, with the deployment's own deadline.
    pub fn new(loaded: &Loaded) -> Self {
        Self {
            checks: checks::builtin(),
            per_check: loaded.config.doctor.timeout.as_std(),
            thresholds: HashMap::new(),
            waivers: Vec::new(),
            clock: None,
        }
    }

    /// Runs these checks (selected, prerequisites included) instead of every built-in one.
    pub fn with_checks(mut self, checks: Vec<Arc<dyn Check>>) -> Self {
        self.checks = checks;
        self
    }

    /// Gives each check `per_check` instead of `doctor.timeout`.
    pub fn with_deadline(mut self, per_check: Duration) -> Self {
        self.per_check = per_check;
        self
    }

    /// The profile's thresholds and waivers (its selection and probes are the caller's choice).
    pub fn with_profile(mut self, profile: &Profile) -> Self {
        self.thresholds = profile.thresholds.clone();
        self.waivers = profile.waivers.clone();
        self
    }

    /// Judges ages and expiries by `clock` (a running server's own).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The context checks look through, over `loaded`.
    pub fn context(&self, loaded: Loaded) -> Context {
        // Network checks stop a little before the per-check deadline so they can name the
        // phase that hung: they must know this run's deadline, not the configured one.
        let ctx = Context::new(loaded).with_deadline(self.per_check).with_thresholds(self.thresholds.clone());
        match &self.clock {
            Some(clock) => ctx.with_clock(clock.clone()),
            None => ctx,
        }
    }

    /// Runs the checks over `loaded` and returns the report, waivers applied, with the context
    /// still open for its fixes (the caller closes it).
    pub async fn examine(&self, loaded: Loaded) -> (Report, Arc<Context>) {
        let ctx = Arc::new(self.context(loaded));
        let mut report = super::diagnose(&self.checks, ctx.clone(), &RunOptions::with_timeout(self.per_check)).await;
        let today = chrono::DateTime::from_timestamp(ctx.now(), 0).unwrap_or_default().date_naive();
        super::apply_waivers(&mut report, &self.waivers, today);
        (report, ctx)
    }

    /// Runs the checks over `loaded` and returns the report.
    pub async fn report(&self, loaded: Loaded) -> Report {
        let (report, ctx) = self.examine(loaded).await;
        ctx.close().await;
        report
    }
}

/// The fix `result` offers, when it can be applied here.
fn offered(result: &CheckResult) -> Option<Planned<'_>> {
    let fix = result.fix.proposal.as_ref().filter(|_| result.fix.available)?;
    Some(Planned { check: &result.id, explicit: result.fix.changes_trust, fix })
}

/// The fixes `--fix` applies from `report`: all offered, or only those of the `named` checks;
/// a fix that changes who is trusted only when its check is named; two that set one setting to
/// different values settled (see [`fix::settle`]). Also returns why each other fix is left.
pub fn chosen_fixes<'a>(report: &'a Report, named: &[String], ctx: &Context) -> (Vec<Planned<'a>>, Vec<String>) {
    let mut left = Vec::new();
    let mut plans = Vec::new();
    for planned in report.results.iter().filter_map(offered) {
        let is_named = named.iter().any(|n| n == planned.check);
        if !named.is_empty() && !is_named {
            continue;
        }
        if planned.explicit && !is_named {
            left.push(format!(
                "not fixing {id}: its fix changes who is trusted or where the site lives; run `gatehouse doctor --fix \
                 {id}` to apply it: {}",
                planned.fix.describe(ctx),
                id = planned.check,
            ));
            continue;
        }
        plans.push(planned);
    }
    let (plans, dropped) = fix::settle(plans);
    left.extend(dropped);
    (plans, left)
}
