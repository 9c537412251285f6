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
            let limits = Limits {
                max_ip_changes: ctx.threshold(META.id, "max_ip_changes", 0.0),
                min_idle_secs: ctx.threshold(META.id, "min_idle_minutes", 15.0) * 60.0,
            };
            base(judge(s, seen.len(), ended.len(), &limits))
        })
    }
}

/// The profile's thresholds: sessions ended by an IP change tolerated, the shortest idle timeout.
struct Limits {
    max_ip_changes: f64,
    min_idle_secs: f64,
}

/// The verdict on the session lifetimes, given `observed` requests of which `ended` found their
/// session ended by ip_check: such endings mean a proxy changes the address; a short idle timeout
/// logs out readers; an absolute timeout below the idle one ends every session early.
fn judge(s: &crate::config::Sessions, observed: usize, ended: usize, limits: &Limits) -> Outcome {
    let (idle, absolute) = (s.idle_timeout.as_secs(), s.absolute_timeout.as_secs());
    if s.ip_check && ended as f64 > limits.max_ip_changes {
        return Outcome::fail(format!(
            "{ended} of {observed} observed requests found their session ended by ip_check because the client IP \
             changed"
        ))
        .remediation(
            "If a proxy or CDN is in front, add it to trusted_proxies (or enable trusted_proxies.cloudflare) \
             so the visitor's own IP is used; if visitors' IPs really rotate, set sessions.ip_check: false.",
        );
    }
    if (idle as f64) < limits.min_idle_secs {
        return Outcome::warn(format!(
            "sessions.idle_timeout is {}: a user who reads a page for longer is logged out",
            s.idle_timeout
        ))
        .remediation(format!("Set sessions.idle_timeout to at least {} minutes.", limits.min_idle_secs / 60.0));
    }
    if absolute < idle {
        return Outcome::warn(format!(
            "sessions.absolute_timeout ({}) is shorter than idle_timeout ({}): every session ends at {}",
            s.absolute_timeout, s.idle_timeout, s.absolute_timeout
        ))
        .remediation("Make absolute_timeout longer than idle_timeout (default 12h vs 30m).");
    }
    Outcome::pass(format!(
        "sessions last {} idle, {} at most{}",
        s.idle_timeout,
        s.absolute_timeout,
        match (s.ip_check, observed == 0) {
            (true, true) => "; no requests observed yet to see IP changes in",
            (true, false) => "; no observed session was ended by an IP change",
            (false, _) => "",
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Duration;
    use crate::doctor::model::Status;

    const DEFAULTS: Limits = Limits { max_ip_changes: 0.0, min_idle_secs: 900.0 };

    fn sessions(idle_mins: u64, absolute_mins: u64, ip_check: bool) -> crate::config::Sessions {
        crate::config::Sessions {
            idle_timeout: Duration::from_secs(idle_mins * 60),
            absolute_timeout: Duration::from_secs(absolute_mins * 60),
            ip_check,
            ..Default::default()
        }
    }

    #[test]
    fn sessions_ended_by_ip_changes_fail_only_under_ip_check() {
        assert_eq!(judge(&sessions(30, 720, true), 10, 1, &DEFAULTS).status, Status::Fail);
        assert_eq!(judge(&sessions(30, 720, false), 10, 1, &DEFAULTS).status, Status::Pass);
        let tolerant = Limits { max_ip_changes: 1.0, ..DEFAULTS };
        assert_eq!(judge(&sessions(30, 720, true), 10, 1, &tolerant).status, Status::Pass);
    }

    #[test]
    fn short_or_inverted_timeouts_warn() {
        assert_eq!(judge(&sessions(14, 720, false), 0, 0, &DEFAULTS).status, Status::Warn);
        assert_eq!(judge(&sessions(15, 720, false), 0, 0, &DEFAULTS).status, Status::Pass);
        let inverted = judge(&sessions(60, 30, false), 0, 0, &DEFAULTS);
        assert_eq!(inverted.status, Status::Warn);
        assert!(inverted.message.contains("is shorter than idle_timeout"), "{}", inverted.message);
    }
}
