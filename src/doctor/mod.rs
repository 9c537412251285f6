//! The diagnostic toolkit: a registry of checks, a context to examine the deployment through,
//! and a runner that turns each known failure into a result with evidence and a remediation.
//! The doctor depends on the domain modules; nothing in the domain depends on it.

pub mod check;
pub mod checks;
pub mod context;
pub mod fix;
pub mod model;
pub mod probes;
pub mod profile;
pub mod runner;
pub mod symptoms;

use std::sync::Arc;
use std::time::Instant;

pub use check::{Check, Meta, Outcome};
pub use context::Context;
pub use model::{CheckResult, Report, Status, Summary};

use crate::error::{Error, Result};

/// Which checks to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub skip: Vec<String>,
    pub tags: Vec<String>,
}

/// The checks `selection` picks from `all`, in registry order, with the prerequisites of every
/// picked check added. Unknown ids and tags are refused.
pub fn select(all: &[Arc<dyn Check>], selection: &Selection) -> Result<Vec<Arc<dyn Check>>> {
    let known = |id: &str| all.iter().any(|c| c.meta().id == id);
    for id in selection.only.iter().chain(&selection.skip) {
        if !known(id) {
            return Err(Error::Usage(format!("unknown check id `{id}`; `gatehouse doctor --list` shows them")));
        }
    }
    for tag in &selection.tags {
        if !all.iter().any(|c| c.meta().tags.contains(&tag.as_str())) {
            return Err(Error::Usage(format!("no check has the tag `{tag}`; `gatehouse doctor --list` shows them")));
        }
    }
    let wanted = |c: &Arc<dyn Check>| {
        let m = c.meta();
        (selection.only.is_empty() || selection.only.iter().any(|id| id == m.id))
            && (selection.tags.is_empty() || selection.tags.iter().any(|t| m.tags.contains(&t.as_str())))
            && !selection.skip.iter().any(|id| id == m.id)
    };
    let mut ids: Vec<&'static str> = all.iter().filter(|c| wanted(c)).map(|c| c.meta().id).collect();
    // Close over prerequisites (they are few and shallow).
    let mut i = 0;
    while i < ids.len() {
        let meta = all.iter().find(|c| c.meta().id == ids[i]).expect("selected from all").meta();
        for p in meta.prerequisites {
            if !ids.contains(p) && known(p) {
                ids.push(p);
            }
        }
        i += 1;
    }
    Ok(all.iter().filter(|c| ids.contains(&c.meta().id)).cloned().collect())
}

/// Reports the results of waived checks as `waived` while their waiver holds, and adds a
/// warning for every waiver that has expired (the problem it hid is reported again).
pub fn apply_waivers(report: &mut Report, waivers: &[profile::Waiver], today: chrono::NaiveDate) {
    let mut expired = Vec::new();
    for w in waivers {
        if w.expires < today {
            expired.push(w);
            continue;
        }
        for r in report.results.iter_mut().filter(|r| r.id == w.check) {
            if r.status.severity() > 0 || r.status == Status::Blocked {
                r.evidence.insert("waived_status".into(), r.status.as_str().into());
                r.evidence.insert("waived_message".into(), r.message.clone().into());
                r.evidence.insert("waiver_expires".into(), w.expires.to_string().into());
                r.evidence.insert("waiver_defined_at".into(), w.location.clone().into());
                r.message = format!("waived until {}: {} (was {}: {})", w.expires, w.reason, r.status, r.message);
                r.status = Status::Waived;
            }
        }
    }
    if !expired.is_empty() {
        let list: Vec<String> =
            expired.iter().map(|w| format!("{} (expired {}, {})", w.check, w.expires, w.location)).collect();
        let mut evidence = serde_json::Map::new();
        evidence.insert("expired".into(), serde_json::json!(list));
        report.results.push(CheckResult {
            id: "profile.waivers".into(),
            title: "Profile waivers current".into(),
            tags: vec!["profile".into()],
            status: Status::Warn,
            message: format!("{} waiver(s) have expired and no longer apply: {}", expired.len(), list.join("; ")),
            evidence,
            remediation: "Fix what each waiver hid, or renew the waiver with a new reason and expiry.".into(),
            doc: "A waiver hides a known problem until its expiry date; after that the problem is reported again and \
                  the stale waiver is flagged."
                .into(),
            fix: Default::default(),
            duration_ms: 0,
            symptoms: Vec::new(),
        });
    }
    report.summary = Summary::of(&report.results);
}

/// Runs `checks` and assembles the report.
pub async fn diagnose(checks: &[Arc<dyn Check>], ctx: Arc<Context>, options: &runner::RunOptions) -> Report {
    let started_at = chrono::Utc::now();
    let clock = Instant::now();
    let results = runner::run(checks, ctx, options).await;
    Report {
        schema: model::SCHEMA.into(),
        tool: model::Tool { name: "gatehouse".into(), version: env!("CARGO_PKG_VERSION").into() },
        host: model::Host::this(),
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        duration_ms: clock.elapsed().as_millis() as u64,
        summary: Summary::of(&results),
        results,
        triage: None,
    }
}
