//! `time.timezone`: the configured zone, the zone this process really runs in, and the zones
//! the web server and cron reported in their heartbeats: they must agree.

use crate::cron::heartbeat::Heartbeat;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::system::{EffectiveZone, effective_zone};

/// Heartbeats older than this describe processes that may no longer exist.
const RECENT_SECS: i64 = 7 * 86_400;

pub struct TimeZone;

static META: Meta = Meta {
    id: "time.timezone",
    title: "Time zone configured and consistent",
    tags: &["time", "cron"],
    symptom: "Times in the client area or in automation (invoices, reminders, session expiry) are off by hours.",
    cause: "The web server and the cron run with different time zones (different TZ, different /etc/localtime \
            in containers), or the configured zone is empty and the host's zone is not what was intended.",
    next_steps: "Set `timezone:` in gatehouse.yaml to an IANA name so every process agrees, or give the web \
                 server and cron the same TZ.",
    prerequisites: &["database.connectivity"],
    config: &["timezone"],
    ..Meta::BASE
};

impl Check for TimeZone {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let configured = ctx.config().timezone.zone().map(|z| z.name().to_string());
            let effective = effective_zone();
            let offset = chrono::Local::now().format("%:z").to_string();
            // The fleet's zones, when there is a database with heartbeats in it.
            let beats = ctx.heartbeats().await.unwrap_or_default();
            let recent: Vec<_> = beats.iter().filter(|b| ctx.now() - b.at < RECENT_SECS).collect();
            let processes: Vec<_> = recent
                .iter()
                .map(|b| serde_json::json!({"role": b.role, "host": b.host, "timezone": b.timezone}))
                .collect();
            let base = |o: Outcome| {
                o.with("configured", configured.as_deref().unwrap_or(""))
                    .with("process_zone", &effective.zone)
                    .with("process_zone_source", &effective.source)
                    .with("process_utc_offset", &offset)
                    .with("processes", &processes)
            };
            Ok(base(judge(configured.as_deref(), &effective, &recent)))
        })
    }
}

/// The verdict on the zones of this deployment's processes (their recent heartbeats) and of this
/// one: a TZ naming no zone is the most specific cause, so it is named first; then processes in
/// different zones; then this process's own zone when none is configured.
fn judge(configured: Option<&str>, effective: &EffectiveZone, recent: &[&Heartbeat]) -> Outcome {
    let bad_tz: Vec<String> = recent
        .iter()
        .filter_map(|b| {
            let tz = b.tz_env.as_deref()?.trim_start_matches(':');
            (!tz.is_empty() && tz.parse::<chrono_tz::Tz>().is_err())
                .then(|| format!("{} on {} runs with TZ={tz}", b.role, b.host))
        })
        .collect();
    if !bad_tz.is_empty() {
        let found = format!("{}, which names no time zone: the C library silently uses UTC there", bad_tz.join("; "));
        // With `timezone:` set gatehouse's own times are right; other local times are not.
        let outcome = if configured.is_some() { Outcome::warn(found) } else { Outcome::fail(found) };
        return outcome.remediation(
            "Correct TZ in that process's environment (crontab, service unit) to an IANA name such as \
             Europe/Berlin, and set `timezone:` in gatehouse.yaml.",
        );
    }
    let mut zones: Vec<&str> = recent.iter().map(|b| b.timezone.as_str()).collect();
    zones.sort_unstable();
    zones.dedup();
    if zones.len() > 1 {
        let each: Vec<String> = recent.iter().map(|b| format!("{} on {}: {}", b.role, b.host, b.timezone)).collect();
        return Outcome::fail(format!(
            "processes of this deployment run in different time zones ({})",
            each.join("; ")
        ))
        .remediation(
            "Set `timezone:` in gatehouse.yaml (an IANA name such as Europe/Berlin) and use the same file for the \
                 web server and cron; or give both the same TZ environment.",
        );
    }
    if let Some(problem) = &effective.problem {
        return Outcome::warn(problem.clone());
    }
    match (configured, &effective.zone) {
        (Some(zone), _) => Outcome::pass(format!("configured zone {zone} is used by every process")),
        (None, Some(zone)) => Outcome::warn(format!(
            "no zone configured: this process uses {zone} from {}, and a cron or web server started differently \
             may not",
            effective.source
        ))
        .remediation(format!("Set `timezone: {zone}` in gatehouse.yaml so the web server and cron agree.")),
        (None, None) => Outcome::warn(format!("the local zone cannot be named ({})", effective.source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::heartbeat::Role;
    use crate::doctor::model::Status;

    fn beat(role: Role, timezone: &str, tz_env: Option<&str>) -> Heartbeat {
        Heartbeat {
            role,
            host: "web1".into(),
            timezone: timezone.into(),
            tz_env: tz_env.map(Into::into),
            ..Default::default()
        }
    }

    fn zone(name: &str) -> EffectiveZone {
        EffectiveZone { zone: Some(name.into()), source: "/etc/localtime".into(), problem: None }
    }

    #[test]
    fn a_tz_naming_no_zone_is_named_first() {
        let (web, cron) = (beat(Role::Web, "UTC", Some("Europe/Berln")), beat(Role::Cron, "Europe/Berlin", None));
        let found = judge(None, &zone("UTC"), &[&web, &cron]);
        assert_eq!(found.status, Status::Fail);
        assert!(found.message.starts_with("web on web1 runs with TZ=Europe/Berln"), "{}", found.message);
        assert_eq!(
            judge(Some("Europe/Berlin"), &zone("UTC"), &[&web]).status,
            Status::Warn,
            "gatehouse's own times are right"
        );
    }

    #[test]
    fn processes_in_different_zones_fail_and_one_zone_configured_passes() {
        let (web, cron) = (beat(Role::Web, "Europe/Berlin", None), beat(Role::Cron, "UTC", None));
        assert_eq!(judge(Some("Europe/Berlin"), &zone("UTC"), &[&web, &cron]).status, Status::Fail);
        assert_eq!(judge(Some("Europe/Berlin"), &zone("UTC"), &[&web, &web]).status, Status::Pass);
        let unset = judge(None, &zone("Europe/Berlin"), &[&web]);
        assert_eq!(unset.status, Status::Warn);
        assert_eq!(
            unset.remediation.as_deref(),
            Some("Set `timezone: Europe/Berlin` in gatehouse.yaml so the web server and cron agree.")
        );
    }
}
