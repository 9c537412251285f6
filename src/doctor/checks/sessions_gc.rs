//! `sessions.gc`: expired sessions that nobody removes ("sessions are not removed").

use crate::cron::heartbeat::Role;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::doctor::fix::Fix;
use crate::store::rfc3339;

pub struct Gc;

static META: Meta = Meta {
    id: "sessions.gc",
    title: "Expired sessions are collected",
    tags: &["sessions", "cron"],
    symptom: "Sessions are never removed: the session table or directory only grows.",
    cause: "Session garbage collection is disabled (`sessions.gc: false`) or its job does not run because \
            `gatehouse cron` is not scheduled.",
    next_steps: "Schedule `gatehouse cron` every cron.interval and keep `sessions.gc: true`. `gatehouse doctor --fix` \
                 (or `gatehouse session gc`) removes the backlog now, in batches.",
    prerequisites: &["database.connectivity"],
    config: &["sessions"],
    fix_from_web: true,
    ..Meta::BASE
};

impl Check for Gc {
    fn meta(&self) -> &'static Meta {
        &META
    }

    /// Collect now — and when collection was turned off, turn it back on first, or the
    /// backlog would simply grow again.
    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let config = ctx.config();
            let sessions = &ctx.services().await?.sessions;
            let (expired, oldest) =
                sessions.expired().await.map_err(|e| Outcome::error(format!("cannot read the session store: {e}")))?;
            let cron = ctx.heartbeats().await.unwrap_or_default().iter().find(|b| b.role == Role::Cron);
            let interval = config.cron.interval.as_secs();
            // Expired longer ago than two cron intervals means no collection has run since.
            let overdue_since = ctx.now() - config.sessions.idle_timeout.as_secs() - 2 * interval;
            let base = |o: Outcome| {
                o.with("expired_sessions", expired)
                    .with("oldest_last_seen", oldest.map(rfc3339))
                    .with("gc_enabled", config.sessions.gc)
                    .with("store", format!("{:?}", config.sessions.store).to_lowercase())
                    .with("last_cron_heartbeat", cron.as_ref().map(|b| rfc3339(b.at)))
            };
            Ok(base(judge(expired, oldest, config.sessions.gc, cron.is_some(), overdue_since)))
        })
    }
}

/// The verdict on `expired` sessions waiting, the oldest idle since `oldest`: none is fine, and so
/// are a few that the next collection takes; not when collection is off, cron never ran, or the
/// oldest has waited past `overdue_since` (two cron intervals after it expired).
fn judge(expired: i64, oldest: Option<i64>, gc_enabled: bool, cron_ran: bool, overdue_since: i64) -> Outcome {
    if expired == 0 {
        Outcome::pass("no expired sessions are waiting")
    } else if !gc_enabled {
        Outcome::fail(format!("{expired} expired session(s) and sessions.gc is false"))
            .remediation("Set `sessions.gc: true` and schedule `gatehouse cron`.")
            .fixable(Fix::All(vec![Fix::set("sessions.gc", true), Fix::CollectSessions]))
    } else if !cron_ran {
        Outcome::fail(format!("{expired} expired session(s) and `gatehouse cron` has never run"))
            .remediation("Schedule `gatehouse cron` every cron.interval (e.g. `*/5 * * * *` in crontab).")
            .fixable(Fix::CollectSessions)
    } else if let Some(oldest) = oldest.filter(|&o| o < overdue_since) {
        Outcome::fail(format!(
            "{expired} expired session(s), the oldest idle since {}: collection is not keeping up",
            rfc3339(oldest)
        ))
        .remediation("Check that `gatehouse cron` runs and succeeds (its `sessions-gc` job).")
        .fixable(Fix::CollectSessions)
    } else {
        Outcome::pass(format!("{expired} recently expired session(s); the next cron run collects them"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::model::Status;

    #[test]
    fn a_backlog_fails_only_when_nothing_will_collect_it() {
        let overdue_since = 1_000;
        let status = |expired, oldest, gc, cron| judge(expired, oldest, gc, cron, overdue_since).status;
        assert_eq!(status(0, None, false, false), Status::Pass, "nothing waiting, whatever the settings");
        assert_eq!(status(5, Some(1_000), true, true), Status::Pass, "the next run collects them");
        assert_eq!(status(5, Some(999), true, true), Status::Fail, "waited past two intervals");
        assert_eq!(status(5, Some(2_000), false, true), Status::Fail, "collection is off");
        assert_eq!(status(5, Some(2_000), true, false), Status::Fail, "cron never ran");
    }

    #[test]
    fn the_fix_turns_collection_back_on_when_it_is_off() {
        let off = judge(3, Some(0), false, true, 1_000);
        assert_eq!(off.fix, Some(Fix::All(vec![Fix::set("sessions.gc", true), Fix::CollectSessions])));
        let on = judge(3, Some(0), true, true, 1_000);
        assert_eq!(on.fix, Some(Fix::CollectSessions));
    }
}
