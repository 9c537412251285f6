//! `proxy.cloudflare`: the site is behind CloudFlare — requests arrive from CloudFlare's ranges
//! or carry its headers, or system_url resolves into its edge — but CloudFlare is not trusted,
//! so every visitor appears as a rotating CloudFlare address.

use std::net::IpAddr;

use super::{observed_requests, tally};
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
use crate::doctor::fix::Fix;
use crate::doctor::model::Status;
use crate::net::client_ip::{bundled_cloudflare_date, is_cloudflare, read_cloudflare_ranges};
use crate::net::observations::Observation;

pub struct Trust;

static META: Meta = Meta {
    id: "proxy.cloudflare",
    title: "CloudFlare trusted when in front",
    tags: &["proxy", "sessions", "cloudflare"],
    symptom: "Behind CloudFlare, login sessions end prematurely and lockouts or audit entries show CloudFlare \
              addresses instead of visitors'.",
    cause: "system_url points at CloudFlare's edge, but trusted_proxies.cloudflare is off: gatehouse sees the \
            edge's rotating addresses as the client, and ip_check ends sessions when they change.",
    next_steps: "Set trusted_proxies.cloudflare: true and trusted_proxies.header: CF-Connecting-IP in gatehouse.yaml \
                 (`gatehouse doctor --fix` does it, with a backup, and checks again), then restart `serve`.",
    prerequisites: &["database.connectivity"],
    explains: &["sessions.lifetime", "proxy.lockouts"],
    thresholds: &["max_ranges_age_days"],
    config: &["trusted_proxies"],
    // Trusting CloudFlare lets CloudFlare's header name the visitor: only ever on request.
    explicit_fix: true,
    fix_from_web: true,
};

impl Check for Trust {
    fn meta(&self) -> &'static Meta {
        &META
    }

    /// The seed's "automatically reconfigure your CloudFlare proxy settings": trust CloudFlare's
    /// bundled ranges and take the visitor from the header CloudFlare sets.
    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let config = ctx.config();
            let trusted = config.trusted_proxies.cloudflare;
            if trusted && let Some(outcome) = stale_or_broken_ranges(ctx) {
                return outcome.with("cloudflare_trusted", true);
            }
            let ip_check = config.sessions.ip_check;
            // What real traffic shows (none yet is not an error: the DNS side may still tell).
            let seen = observed_requests(ctx).await.unwrap_or_default();
            let traffic = judge_traffic(&seen, trusted, ip_check);
            if traffic.status != Status::Pass {
                return traffic;
            }
            let with_traffic = |o: Outcome| o.after_evidence(traffic.evidence.clone());
            let Some(host) = config.system_url.url().and_then(|u| u.host_str().map(str::to_string)) else {
                return with_traffic(Outcome::skipped("system_url is not set"));
            };
            let resolver = match ctx.resolver().await {
                Ok(r) => r,
                Err(e) => return Outcome::error(e),
            };
            match tokio::time::timeout(ctx.network_budget(), resolver.lookup(&host)).await {
                Ok(Ok(addrs)) => with_traffic(judge_dns(&host, &addrs, trusted, ip_check)),
                Ok(Err(e)) => with_traffic(Outcome::skipped(format!("{host} does not resolve from here ({e})"))),
                Err(_) => with_traffic(Outcome::skipped(format!("{host} did not resolve in time"))),
            }
        })
    }
}

/// A finding that CloudFlare is in front but not trusted: with ip_check on, every change of
/// edge address ends the session.
fn untrusted(message: String, ip_check: bool) -> Outcome {
    let o = if ip_check { Outcome::fail(message) } else { Outcome::warn(message) };
    o.fixable(Fix::SetConfig(vec![
        ("trusted_proxies.cloudflare".into(), "true".into()),
        ("trusted_proxies.header".into(), "\"CF-Connecting-IP\"".into()),
    ]))
}

/// The verdict on the observed requests. A request came through CloudFlare when a CloudFlare
/// address vouches for it: the peer itself, or the address a trusted proxy says connected to it.
/// A CloudFlare header from anyone else is the visitor's claim: it raises the question (a forged
/// header, or a proxy in front that is not trusted) but never justifies trusting CloudFlare.
fn judge_traffic(seen: &[Observation], trusted: bool, ip_check: bool) -> Outcome {
    let vouched =
        |o: &&Observation| o.peer_ip.parse().is_ok_and(is_cloudflare) || o.client_ip.parse().is_ok_and(is_cloudflare);
    let via_cloudflare: Vec<_> = seen.iter().filter(vouched).collect();
    // With CloudFlare trusted, a trusted proxy's requests resolve to the visitor and cannot be
    // vouched for this way; only those from a peer nobody trusted are still in question.
    let claims: Vec<_> =
        seen.iter().filter(|o| o.cf_headers.0 && !vouched(o) && (!trusted || o.forwarded_untrusted.0)).collect();
    let outcome = if !via_cloudflare.is_empty() && !trusted {
        untrusted(
            format!(
                "{} of {} observed requests came from CloudFlare's addresses, which are not trusted: visitors \
                 appear as CloudFlare's edge addresses",
                via_cloudflare.len(),
                seen.len()
            ),
            ip_check,
        )
    } else if !claims.is_empty() {
        let peers = tally(&claims, |o| o.peer_ip.clone());
        let peers = peers.iter().map(|(p, n)| format!("{p} ×{n}")).collect::<Vec<_>>().join(", ");
        // Trusting CloudFlare cannot help requests that reach gatehouse from another proxy:
        // every visitor is still that proxy's address.
        Outcome::warn(if trusted {
            format!(
                "CloudFlare is trusted, but {} of {} observed requests carry CloudFlare headers and came from \
                 {peers}, a proxy that is not trusted: gatehouse sees every such visitor as that proxy",
                claims.len(),
                seen.len()
            )
        } else {
            format!(
                "{} of {} observed requests carry CloudFlare headers but came from {peers}, not a CloudFlare \
                 address: a forged header, or a proxy in front of gatehouse that is not trusted",
                claims.len(),
                seen.len()
            )
        })
        .remediation(
            "If a proxy of yours (nginx, a load balancer) passes CloudFlare's traffic on, add it to \
             trusted_proxies.ranges first; the doctor then sees CloudFlare's addresses behind it. A header alone \
             is never a reason to trust anyone.",
        )
    } else {
        Outcome::pass(format!("{} of {} observed requests came through CloudFlare", via_cloudflare.len(), seen.len()))
    };
    outcome
        .with("cloudflare_trusted", trusted)
        .with("ip_check", ip_check)
        .with("observed_requests", seen.len())
        .with("observed_via_cloudflare", via_cloudflare.len())
        .with("cloudflare_peers", tally(&via_cloudflare, |o| o.peer_ip.clone()))
        .with("claimed_cloudflare", claims.len())
        .with("claiming_peers", tally(&claims, |o| o.peer_ip.clone()))
}

/// The verdict on where system_url's `host` resolves: into CloudFlare's edge while CloudFlare
/// is not trusted is the fault.
fn judge_dns(host: &str, addrs: &[IpAddr], trusted: bool, ip_check: bool) -> Outcome {
    let edge: Vec<String> = addrs.iter().filter(|ip| is_cloudflare(**ip)).map(|ip| ip.to_string()).collect();
    let outcome = match (edge.is_empty(), trusted) {
        (false, false) => untrusted(
            format!(
                "{host} resolves to CloudFlare ({}) but CloudFlare is not trusted: visitors appear as edge addresses",
                edge.join(", ")
            ),
            ip_check,
        ),
        (false, true) => Outcome::pass(format!("{host} is behind CloudFlare, and its ranges are trusted")),
        (true, _) => Outcome::pass(format!("{host} does not resolve to CloudFlare")),
    };
    outcome
        .with("host", host)
        .with("addresses", addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>())
        .with("cloudflare_addresses", &edge)
}

/// When CloudFlare is trusted, its ranges must be the current ones: a list file that cannot
/// be read (serve falls back to the bundled list), or a list older than `max_ranges_age_days`
/// (CloudFlare adds ranges now and then: visitors through a new edge would appear as it).
fn stale_or_broken_ranges(ctx: &Context) -> Option<Outcome> {
    let tp = &ctx.config().trusted_proxies;
    let max_days = ctx.threshold(META.id, "max_ranges_age_days", 180.0) as i64;
    let refresh = "Download https://www.cloudflare.com/ips-v4 and https://www.cloudflare.com/ips-v6 into one file \
                   and set trusted_proxies.cloudflare_ranges_file to it (refresh it every few months), then \
                   restart `serve`.";
    let (source, as_of) = if tp.cloudflare_ranges_file.is_empty() {
        let date = bundled_cloudflare_date();
        ("the bundled list".to_string(), date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
    } else {
        let path = std::path::Path::new(&tp.cloudflare_ranges_file);
        if let Err(e) = read_cloudflare_ranges(path) {
            return Some(
                Outcome::fail(format!(
                    "trusted_proxies.cloudflare_ranges_file cannot be used — {e}: serve trusts the bundled list instead"
                ))
                .with("cloudflare_ranges_file", &tp.cloudflare_ranges_file)
                .remediation(refresh),
            );
        }
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
        let secs = modified.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
        (tp.cloudflare_ranges_file.clone(), secs)
    };
    ranges_verdict(&source, as_of, ctx.now(), max_days).map(|o| o.remediation(refresh))
}

/// A warning when CloudFlare's ranges, from `source` as of `as_of`, are more than `max_days`
/// old at `now` (CloudFlare adds ranges now and then: visitors through a new edge would appear
/// as it).
fn ranges_verdict(source: &str, as_of: i64, now: i64, max_days: i64) -> Option<Outcome> {
    let days = (now - as_of) / 86_400;
    (days > max_days).then(|| {
        Outcome::warn(format!(
            "CloudFlare's ranges come from {source}, last refreshed {} ({days} days ago, more than {max_days}): \
             visitors through an edge added since appear as that edge",
            crate::store::rfc3339(as_of)
        ))
        .with("ranges_source", source)
        .with("ranges_age_days", days)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::checks::request;
    use crate::net::observations::Flag;

    /// An address in CloudFlare's published ranges (173.245.48.0/20).
    const EDGE: &str = "173.245.48.1";

    #[test]
    fn traffic_through_an_untrusted_cloudflare_is_the_fault() {
        let seen = [request("clients.example.com", "https", EDGE), request("clients.example.com", "https", "10.0.0.2")];
        let outcome = judge_traffic(&seen, false, true);
        assert_eq!(outcome.status, Status::Fail);
        assert!(outcome.message.starts_with("1 of 2 observed requests came from CloudFlare"), "{}", outcome.message);
        assert!(outcome.fix.is_some());
        assert_eq!(judge_traffic(&seen, false, false).status, Status::Warn, "without ip_check no session ends");
        assert_eq!(judge_traffic(&seen, true, true).status, Status::Pass);
    }

    #[test]
    fn a_cloudflare_header_from_another_address_is_a_claim_that_fixes_nothing() {
        // A visitor (or an untrusted proxy) at 10.0.0.2 sends CF-Ray: a question, not a fix.
        let claimed = Observation { cf_headers: Flag(true), ..request("clients.example.com", "https", "10.0.0.2") };
        let outcome = judge_traffic(&[claimed.clone(), claimed], false, true);
        assert_eq!(outcome.status, Status::Warn);
        assert!(outcome.fix.is_none(), "a header alone never justifies trusting CloudFlare");
        assert!(outcome.message.contains("not a CloudFlare address"), "{}", outcome.message);
    }

    #[test]
    fn trusting_cloudflare_does_not_quiet_a_proxy_in_between_that_is_not_trusted() {
        // CloudFlare → nginx on this machine (not trusted) → gatehouse: every visitor is 127.0.0.1.
        let relayed = Observation {
            cf_headers: Flag(true),
            forwarded_untrusted: Flag(true),
            ..request("clients.example.com", "https", "127.0.0.1")
        };
        let outcome = judge_traffic(&[relayed.clone(), relayed.clone()], true, true);
        assert_eq!(outcome.status, Status::Warn, "{}", outcome.message);
        assert!(outcome.message.starts_with("CloudFlare is trusted, but 2 of 2"), "{}", outcome.message);
        assert!(outcome.remediation.as_deref().unwrap_or_default().contains("trusted_proxies.ranges first"));
        assert!(outcome.fix.is_none());
        // The same through a trusted nginx: the visitor's address is known, nothing to ask.
        let trusted_hop = Observation { forwarded_untrusted: Flag(false), client_ip: "203.0.113.50".into(), ..relayed };
        assert_eq!(judge_traffic(&[trusted_hop], true, true).status, Status::Pass);
    }

    #[test]
    fn a_trusted_proxy_vouches_for_cloudflare_behind_it() {
        // nginx at 127.0.0.1 is trusted and says CloudFlare's edge connected to it.
        let peer: IpAddr = "127.0.0.1".parse().expect("an address");
        let edge: IpAddr = EDGE.parse().expect("an address");
        let flags = crate::net::observations::Flags { cf_headers: true, ..Default::default() };
        let relayed =
            Observation::new(0, "clients.example.com".into(), ("https".into(), true), peer, edge, flags, "/".into());
        let outcome = judge_traffic(&[relayed], false, true);
        assert_eq!(outcome.status, Status::Fail);
        assert!(outcome.fix.is_some());
    }

    #[test]
    fn a_name_resolving_into_the_edge_must_be_trusted() {
        let edge: IpAddr = EDGE.parse().expect("an address");
        let own: IpAddr = "203.0.113.10".parse().expect("an address");
        assert_eq!(judge_dns("clients.example.com", &[edge], false, true).status, Status::Fail);
        assert_eq!(judge_dns("clients.example.com", &[edge], true, true).status, Status::Pass);
        let direct = judge_dns("clients.example.com", &[own], false, true);
        assert_eq!(direct.message, "clients.example.com does not resolve to CloudFlare");
    }

    #[test]
    fn ranges_older_than_the_limit_warn() {
        let day = 86_400;
        assert!(ranges_verdict("the bundled list", 0, 180 * day, 180).is_none());
        let stale = ranges_verdict("the bundled list", 0, 181 * day, 180).expect("a warning");
        assert_eq!(stale.status, Status::Warn);
        assert_eq!(stale.evidence["ranges_age_days"], 181);
    }

    #[test]
    fn the_traffic_seen_stays_in_the_dns_verdicts_evidence() {
        let merged = judge_dns("h", &[], false, true).after_evidence(judge_traffic(&[], false, true).evidence);
        assert_eq!(merged.evidence["observed_requests"], 0);
        assert_eq!(merged.evidence["host"], "h");
    }
}
