//! `sessions.lifetime`: "frequent logouts" — an idle timeout so short that reading a page ends
//! the session, or `ip_check` ending sessions because the client IP seen by gatehouse changes
//! within a session (mobile networks, a CDN or proxy that is not trusted).

use super::{observed_requests_if_any, tally};
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;

pub struct Lifetime;

static META: Meta = Meta {
    id: "sessions.lifetime",
    title: "Sessions last as long as users expect",
    tags: &["sessions", "proxy"],
    symptom: "Users are logged out frequently, in the middle of their work.",
    cause: "sessions.idle_timeout is very short, or sessions.ip_check ends a session whenever the client IP \
            changes — and the IP gatehouse sees rotates (an untrusted CDN or proxy, mobile clients).",
    next_steps: "Trust the proxy or CDN in front (trusted_proxies) so the real visitor IP is seen; otherwise turn \
                 sessions.ip_check off. Keep idle_timeout at 15 minutes or more.",
    prerequisites: &["database.connectivity"],
    thresholds: &["min_idle_minutes", "max_ip_changes"],
    config: &["sessions"],
    ..Meta::BASE
};

impl Check for Lifetime {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let s = &ctx.config().sessions;
            let (idle, absolute) = (s.idle_timeout.as_secs(), s.absolute_timeout.as_secs());
            let seen = match observed_requests_if_any(ctx).await {
                Ok(seen) => seen,
                Err(outcome) => return outcome,
            };
            let ended: Vec<_> = seen.iter().filter(|o| o.session_ip_change.0).collect();
            let base = |o: Outcome| {
                o.with("idle_timeout", s.idle_timeout.to_string())
                    .with("absolute_timeout", s.absolute_timeout.to_string())
                    .with("ip_check", s.ip_check)
                    .with("observed_requests", seen.len())
                    .with("sessions_ended_by_ip_change", ended.len())
                    .with("ended_from_peers", tally(&ended, |o| o.peer_ip.clone()))
            };
            let max_changes = ctx.threshold(META.id, "max_ip_changes", 0.0);
            if s.ip_check && ended.len() as f64 > max_changes {
                return base(Outcome::fail(format!(
                    "{} of {} observed requests found their session ended by ip_check because the client IP \
                     changed",
                    ended.len(),
                    seen.len()
                )))
                .remediation(
                    "If a proxy or CDN is in front, add it to trusted_proxies (or enable trusted_proxies.cloudflare) \
                     so the visitor's own IP is used; if visitors' IPs really rotate, set sessions.ip_check: false.",
                );
            }
            let min_idle = ctx.threshold(META.id, "min_idle_minutes", 15.0) * 60.0;
            if (idle as f64) < min_idle {
                return base(Outcome::warn(format!(
                    "sessions.idle_timeout is {}: a user who reads a page for longer is logged out",
                    s.idle_timeout
                )))
                .remediation(format!("Set sessions.idle_timeout to at least {} minutes.", min_idle / 60.0));
            }
            if absolute < idle {
                return base(Outcome::warn(format!(
                    "sessions.absolute_timeout ({}) is shorter than idle_timeout ({}): every session ends at {}",
                    s.absolute_timeout, s.idle_timeout, s.absolute_timeout
                )))
                .remediation("Make absolute_timeout longer than idle_timeout (default 12h vs 30m).");
            }
            base(Outcome::pass(format!(
                "sessions last {} idle, {} at most{}",
                s.idle_timeout,
                s.absolute_timeout,
                match (s.ip_check, seen.is_empty()) {
                    (true, true) => "; no requests observed yet to see IP changes in",
                    (true, false) => "; no observed session was ended by an IP change",
                    (false, _) => "",
                }
            )))
        })
    }
}
