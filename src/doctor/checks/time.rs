//! `time.timezone`: the configured zone, and the zone this process really runs in.

use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
use crate::system::effective_zone;

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
    prerequisites: &[],
    thresholds: &[],
};

impl Check for TimeZone {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let configured = ctx.config().timezone.zone().map(|z| z.name().to_string());
            let effective = effective_zone();
            let offset = chrono::Local::now().format("%:z").to_string();
            let base = |o: Outcome| {
                o.with("configured", configured.as_deref().unwrap_or(""))
                    .with("process_zone", &effective.zone)
                    .with("process_zone_source", &effective.source)
                    .with("process_utc_offset", &offset)
            };
            if let Some(problem) = &effective.problem {
                return base(Outcome::warn(problem.clone()));
            }
            match (&configured, &effective.zone) {
                (Some(zone), _) => base(Outcome::pass(format!("configured zone {zone} is used by every process"))),
                (None, Some(zone)) => base(
                    Outcome::warn(format!(
                        "no zone configured: this process uses {zone} from {}, and a cron or web server started \
                         differently may not",
                        effective.source
                    ))
                    .remediation(format!("Set `timezone: {zone}` in gatehouse.yaml so the web server and cron agree.")),
                ),
                (None, None) => base(Outcome::warn(format!("the local zone cannot be named ({})", effective.source))),
            }
        })
    }
}
