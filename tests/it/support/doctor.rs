//! Running one built-in check the way `gatehouse doctor --only ID` would.

use std::sync::Arc;
use std::time::Duration;

use gatehouse::config::Loaded;
use gatehouse::doctor::model::CheckResult;
use gatehouse::doctor::{checks, context::Context, diagnose, runner::RunOptions};

/// Runs check `id` with its prerequisites (and database.connectivity) against `loaded`.
pub async fn check(loaded: &Loaded, id: &str) -> (CheckResult, Arc<Context>) {
    check_at(loaded, id, &gatehouse::store::Clock::default()).await
}

/// [`check`], judging ages and expiries by `clock` (a server's, after a test advanced it).
pub async fn check_at(loaded: &Loaded, id: &str, clock: &gatehouse::store::Clock) -> (CheckResult, Arc<Context>) {
    let ctx = Arc::new(Context::new(loaded.clone()).with_deadline(Duration::from_secs(3)).with_clock(clock.clone()));
    let all = checks::builtin();
    let wanted = all.iter().find(|c| c.meta().id == id).expect("a built-in check").meta();
    let selected: Vec<_> = all
        .into_iter()
        .filter(|c| {
            let other = c.meta().id;
            other == id || other == "database.connectivity" || wanted.prerequisites.contains(&other)
        })
        .collect();
    let report = diagnose(&selected, ctx.clone(), &RunOptions::with_timeout(Duration::from_secs(3))).await;
    (report.results.into_iter().find(|r| r.id == id).unwrap(), ctx)
}

/// What `gatehouse doctor --symptom NAME` finds against `loaded`, judged by `clock`: the
/// symptom's checks with their causes, run, and ranked.
pub async fn triage_at(
    loaded: &Loaded,
    symptom: &str,
    clock: &gatehouse::store::Clock,
) -> gatehouse::doctor::model::Triage {
    let symptom = gatehouse::doctor::symptoms::find(symptom).expect("a known symptom");
    let wanted = symptom.checks_with_causes();
    let selected: Vec<_> = checks::builtin()
        .into_iter()
        .filter(|c| wanted.contains(&c.meta().id) || c.meta().id == "database.connectivity")
        .collect();
    let ctx = Arc::new(Context::new(loaded.clone()).with_deadline(Duration::from_secs(3)).with_clock(clock.clone()));
    let report = diagnose(&selected, ctx.clone(), &RunOptions::with_timeout(Duration::from_secs(3))).await;
    ctx.close().await;
    gatehouse::doctor::symptoms::triage(symptom, &report)
}
