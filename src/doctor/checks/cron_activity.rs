//! `cron.activity`: is `gatehouse cron` running?

use crate::cron::heartbeat::Role;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::store::rfc3339;

pub struct Activity;

static META: Meta = Meta {
    id: "cron.activity",
    title: "The cron runs",
    tags: &["cron", "sessions", "email"],
    symptom: "Automation stops: expired sessions pile up, emails stay unsent.",
    cause: "`gatehouse cron` is not scheduled, fails, or runs against another configuration or database.",
    next_steps: "Schedule `gatehouse cron` every cron.interval with the same configuration as the web server, and \
                 check its exit status and output.",
    prerequisites: &["database.connectivity"],
    config: &["cron"],
    explains: &["sessions.gc", "email.queue"],
    ..Meta::BASE
};

impl Check for Activity {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let beats = ctx.heartbeats().await?;
            let interval = ctx.config().cron.interval.as_secs();
            let Some(last) = beats.iter().find(|b| b.role == Role::Cron) else {
                return Err(Outcome::fail("`gatehouse cron` has never run against this database")
                    .with("cron_interval_secs", interval)
                    .remediation(format!(
                        "Schedule it, e.g. in crontab: `*/{} * * * * gatehouse --config FILE cron`.",
                        (interval / 60).max(1)
                    )));
            };
            let age = ctx.now() - last.at;
            Ok(judge(age, interval, &last.host)
                .with("last_run", rfc3339(last.at))
                .with("age_secs", age)
                .with("host", &last.host)
                .with("install_dir", &last.install_dir)
                .with("cron_interval_secs", interval))
        })
    }
}

/// The verdict on a cron whose last run was `age` seconds ago, scheduled every `interval`: a
/// run or two may be late; a day without one means it stopped.
fn judge(age: i64, interval: i64, host: &str) -> Outcome {
    if age > 86_400 {
        Outcome::fail(format!("the last cron run was {} h ago", age / 3600))
            .remediation("Cron stopped running: check the scheduler and the command's exit status.")
    } else if age > 2 * interval {
        Outcome::warn(format!("the last cron run was {age} s ago, more than twice cron.interval"))
            .remediation("Check that the schedule matches cron.interval and that runs succeed.")
    } else {
        Outcome::pass(format!("cron ran {age} s ago on {host}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::model::Status;

    #[test]
    fn a_late_run_warns_and_a_day_without_one_fails() {
        let status = |age| judge(age, 300, "web1").status;
        assert_eq!(status(0), Status::Pass);
        assert_eq!(status(600), Status::Pass, "two intervals: one run may be late");
        assert_eq!(status(601), Status::Warn);
        assert_eq!(status(86_400), Status::Warn);
        assert_eq!(status(86_401), Status::Fail);
        assert_eq!(judge(90_000, 300, "web1").message, "the last cron run was 25 h ago");
        assert_eq!(judge(42, 300, "web1").message, "cron ran 42 s ago on web1");
    }
}
