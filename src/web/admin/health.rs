//! System Health: the doctor's report in the browser — problems first, the troubleshooting
//! rows they explain, evidence folded — with a "run now" button, and the fixes that are safe to
//! apply from the web as buttons behind `settings.manage`: each shows its change (for a
//! configuration edit, the diff) and asks to confirm, then writes it with a backup, is audited,
//! and runs the doctor again.

use axum::extract::{Path, State};
use serde_json::json;

use super::{Staff, StaffForm, done};
use crate::accounts::AdminPermission as P;
use crate::accounts::AuditAction;
use crate::accounts::Target;
use crate::doctor::CheckResult;
use crate::doctor::fix::Fix;
use crate::error::Error;
use crate::web::AppState;
use crate::web::render::{Answer, Page};

/// Which fixes the browser may apply is each check's own word (`Meta::fix_from_web`), carried
/// by its result.
fn web_fixable(r: &CheckResult) -> bool {
    r.fix.available && r.fix.from_web
}

pub async fn show(State(state): State<AppState>, staff: Staff) -> Answer {
    staff.require(&state, P::HealthView)?;
    let report = state.health(false).await;
    let (problems, rest) = crate::report::problems_first(&report);
    let can_fix = staff.can(P::SettingsManage);
    let entry = |r: &CheckResult| json!({"result": r, "evidence": crate::report::evidence_text(r), "fixable": can_fix && web_fixable(r)});
    let cloudflare = problems.iter().any(|r| r.id == "proxy.cloudflare" && r.fix.available);
    let page = Page::new("admin/health.html", "System Health")
        .with("summary", crate::report::summary_line(&report))
        .with("started_at", &report.started_at)
        .with("problems", problems.iter().map(|r| entry(r)).collect::<Vec<_>>())
        .with("rest", rest.iter().map(|r| entry(r)).collect::<Vec<_>>())
        .with("seen", crate::report::symptoms_seen(&report))
        .with("cloudflare_notice", cloudflare)
        .with("can_fix", can_fix);
    staff.page(&state, page)
}

pub async fn run_now(State(state): State<AppState>, StaffForm { staff, .. }: StaffForm) -> Answer {
    staff.require(&state, P::HealthView)?;
    let report = state.health(true).await;
    done(&state, staff, Ok(format!("The checks ran again: {}.", crate::report::summary_line(&report))), "admin/health")
        .await
}

/// The fix for `check` as the latest report finds it, when it may be applied from here.
async fn planned(state: &AppState, check: &str) -> crate::Result<(CheckResult, Fix)> {
    let report = state.health(false).await;
    let result = report.results.iter().find(|r| r.id == check && web_fixable(r)).cloned().ok_or_else(|| {
        Error::invalid(format!("{check} has no problem with a fix that can be applied from the admin area"))
    })?;
    let fix = result.fix.proposal.clone().expect("an available fix has its proposal");
    Ok((result, fix))
}

/// The change, shown before it is made.
pub async fn confirm(State(state): State<AppState>, staff: Staff, Path(check): Path<String>) -> Answer {
    staff.require(&state, P::SettingsManage)?;
    let (result, fix) = planned(&state, &check).await?;
    let ctx = state.doctor_context();
    let change = fix.describe(&ctx);
    ctx.close().await;
    let page =
        Page::new("admin/health.html", "Apply a fix").with("confirm", json!({"result": result, "change": change}));
    staff.page(&state, page)
}

pub async fn apply(
    State(state): State<AppState>,
    Path(check): Path<String>,
    StaffForm { staff, .. }: StaffForm,
) -> Answer {
    let actor = staff.require(&state, P::SettingsManage)?;
    let (_, fix) = planned(&state, &check).await?;
    let ctx = state.doctor_context();
    let applied = fix.apply(&ctx).await;
    ctx.close().await;
    let details = json!({"check": check, "outcome": applied.as_ref().map_or_else(|e| e.clone(), |d| d.clone())});
    let action = if applied.is_ok() { AuditAction::HealthFixApplied } else { AuditAction::HealthFixFailed };
    state.accounts.record_event(&actor, action, (Target::Check, None), details).await?;
    let text = match applied {
        Ok(what) => {
            // Who the visitor is changes with the next request; the rest of a configuration
            // edit takes effect at the next restart, and the report below judges the file.
            state.adopt_trusted_proxies(&state.current_config());
            let report = state.health(true).await;
            let now = report.results.iter().find(|r| r.id == check);
            let after = now.map_or_else(String::new, |r| format!(" {check} now: {} — {}", r.status, r.message));
            Ok(format!("Applied: {what}.{after}"))
        }
        Err(why) => Err(Error::invalid(format!("the fix was not applied: {why}"))),
    };
    done(&state, staff, text, "admin/health").await
}
