//! `email.queue`: messages that failed, or a queue nobody drains ("general emails unsent").

use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::doctor::fix::Fix;
use crate::mail::{self, QueueStats};
use crate::store::rfc3339;

pub struct Queue;

static META: Meta = Meta {
    id: "email.queue",
    title: "Outgoing mail is delivered",
    tags: &["email", "cron"],
    symptom: "General emails (password resets, invitations) are not received.",
    cause: "Delivery fails (transport misconfigured: see email.transport) so messages end up failed, or \
            `gatehouse cron` does not run so the queue is never drained.",
    next_steps: "Fix the transport (the recorded error says what the server answered), then requeue the failed \
                 messages (`gatehouse doctor --fix`) and let cron deliver them.",
    prerequisites: &["database.connectivity"],
    fix_from_web: true,
    ..Meta::BASE
};

impl Check for Queue {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let accounts = ctx.accounts().await?;
            let db = accounts.db();
            let stats = mail::stats(db).await.map_err(|e| Outcome::error(format!("cannot read the outbox: {e}")))?;
            let interval = ctx.config().cron.interval.as_secs();
            let base = |o: Outcome| {
                o.with("queued", stats.queued)
                    .with("failed", stats.failed)
                    .with("oldest_queued_at", stats.oldest_queued_at.map(rfc3339))
                    .with("transport", format!("{:?}", ctx.config().mail.transport).to_lowercase())
            };
            let last_error = match stats.failed {
                0 => None,
                _ => Some(mail::last_failure(db).await.ok().flatten().unwrap_or_default()),
            };
            let flowing = stats.failed > 0 && mail::delivered_since_last_failure(db).await.unwrap_or(false);
            let outcome = judge(&stats, last_error.as_deref(), flowing, ctx.now(), interval);
            Ok(base(match last_error {
                Some(error) => outcome.with("last_error", error),
                None => outcome,
            }))
        })
    }
}

/// The verdict on the outbox: a message that failed for good needs a person (and a requeue) —
/// unless mail queued after it was delivered (`flowing`): then the transport works and the
/// failures are their recipients' (an address that does not exist, which anyone signing up can
/// type), a warning with nothing to requeue. One waiting past two cron intervals (and a
/// minute's slack) means nobody drains the queue.
fn judge(stats: &QueueStats, last_error: Option<&str>, flowing: bool, now: i64, interval: i64) -> Outcome {
    if stats.failed > 0 && flowing {
        return Outcome::warn(format!(
            "{} message(s) were refused by their recipients' servers while later mail was delivered; last \
             answer: {}",
            stats.failed,
            last_error.unwrap_or_default()
        ))
        .remediation("Nothing is wrong with sending: check those addresses with the people they belong to.");
    }
    if stats.failed > 0 {
        return Outcome::fail(format!(
            "{} message(s) failed permanently; last error: {}",
            stats.failed,
            last_error.unwrap_or_default()
        ))
        .remediation("Fix the mail transport (see email.transport), then requeue the failed messages.")
        .fixable(Fix::RequeueMail);
    }
    match stats.oldest_queued_at {
        Some(oldest) if now - oldest > 2 * interval + 60 => Outcome::warn(format!(
            "{} message(s) waiting, the oldest since {}: the queue is not being drained",
            stats.queued,
            rfc3339(oldest)
        ))
        .remediation("Check that `gatehouse cron` runs (its `mail` job) and what it reports."),
        _ => Outcome::pass(format!("{} message(s) waiting, none failed", stats.queued)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::model::Status;

    fn stats(queued: i64, failed: i64, oldest_queued_at: Option<i64>) -> QueueStats {
        QueueStats { queued, failed, oldest_queued_at }
    }

    #[test]
    fn failures_fail_and_a_stale_queue_warns() {
        let now = 10_000;
        let judged = |s: QueueStats| judge(&s, Some("550 mailbox unavailable"), false, now, 300);
        assert_eq!(judged(stats(0, 0, None)).status, Status::Pass);
        assert_eq!(judged(stats(3, 0, Some(now - 660))).status, Status::Pass, "two intervals and a minute");
        assert_eq!(judged(stats(3, 0, Some(now - 661))).status, Status::Warn);
        let failed = judged(stats(0, 2, None));
        assert_eq!(failed.status, Status::Fail);
        assert!(failed.message.ends_with("last error: 550 mailbox unavailable"), "{}", failed.message);
        assert_eq!(failed.fix, Some(Fix::RequeueMail));
        let refused_by_recipients = judge(&stats(0, 2, None), Some("550 User unknown"), true, now, 300);
        assert_eq!(refused_by_recipients.status, Status::Warn, "a visitor's made-up address is not the site's fault");
        assert!(refused_by_recipients.fix.is_none());
    }
}
