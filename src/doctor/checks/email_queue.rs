//! `email.queue`: messages that failed, or a queue nobody drains ("general emails unsent").

use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::doctor::fix::Fix;
use crate::doctor::model::CheckResult;
use crate::mail;
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
    ..Meta::BASE
};

impl Check for Queue {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn fix(&self, _ctx: &Context, _found: &CheckResult) -> Option<Fix> {
        Some(Fix::RequeueMail)
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
            if stats.failed > 0 {
                let error = mail::last_failure(db).await.ok().flatten().unwrap_or_default();
                return Err(base(Outcome::fail(format!(
                    "{} message(s) failed permanently; last error: {error}",
                    stats.failed
                )))
                .with("last_error", &error)
                .remediation("Fix the mail transport (see email.transport), then requeue the failed messages.")
                .fixable(format!("requeue the {} failed message(s) for the next cron run", stats.failed)));
            }
            Ok(match stats.oldest_queued_at {
                Some(oldest) if ctx.now() - oldest > 2 * interval + 60 => base(Outcome::warn(format!(
                    "{} message(s) waiting, the oldest since {}: the queue is not being drained",
                    stats.queued,
                    rfc3339(oldest)
                )))
                .remediation("Check that `gatehouse cron` runs (its `mail` job) and what it reports."),
                _ => base(Outcome::pass(format!("{} message(s) waiting, none failed", stats.queued))),
            })
        })
    }
}
