//! `proxy.trusted`: which peers may set the client IP. Too little trust makes every visitor
//! look like the proxy (sessions bound to the IP end early); too much lets anyone spoof it.

use super::{observed_requests_if_any, tally};
use crate::config::{ForwardedHeader, TrustedProxies};
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
use crate::doctor::fix::Fix;
use crate::doctor::model::Status;
use crate::net::client_ip::is_cloudflare;
use crate::net::observations::Observation;
use crate::net::{is_public, parse_trusted};

pub struct Trusted;

static META: Meta = Meta {
    id: "proxy.trusted",
    title: "Trusted proxy settings sound",
    tags: &["proxy", "sessions"],
    symptom: "Sessions end early or users are logged out when their IP \"changes\"; lockouts hit everyone at once; \
              the audit log shows proxy addresses instead of visitors.",
    cause: "The reverse proxy or CDN in front of gatehouse is not trusted (every visitor appears as the proxy), \
            or trust is so broad that any client can forge its address.",
    next_steps: "List exactly your proxies' addresses in trusted_proxies.ranges (or set cloudflare: true behind \
                 CloudFlare) and the header they set in trusted_proxies.header.",
    thresholds: &["max_public_prefix_v4", "max_public_prefix_v6"],
    prerequisites: &["database.connectivity"],
    explains: &["sessions.lifetime", "proxy.lockouts"],
    // Trusting an address lets it name any visitor: only when asked for by name.
    explicit_fix: true,
    fix_from_web: false,
    config: &["trusted_proxies"],
};

impl Check for Trusted {
    fn meta(&self) -> &'static Meta {
        &META
    }

    /// Adds the peers that were seen forwarding without being trusted (named in the evidence)
    /// to trusted_proxies.ranges, each as a single address.
    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let limits = PublicPrefixLimits {
                v4: ctx.threshold(META.id, "max_public_prefix_v4", 8.0) as u8,
                v6: ctx.threshold(META.id, "max_public_prefix_v6", 24.0) as u8,
            };
            match observed_requests_if_any(ctx).await {
                Ok(seen) => judge(&ctx.config().trusted_proxies, limits, &seen, ctx.config().sessions.ip_check),
                Err(outcome) => outcome,
            }
        })
    }
}

/// `ranges` with each of `peers` added as a single address, unless it is there already.
fn with_peers(ranges: &[String], peers: &[(String, usize)]) -> Vec<String> {
    let mut ranges = ranges.to_vec();
    for (peer, _) in peers {
        let single = if peer.contains(':') { format!("{peer}/128") } else { format!("{peer}/32") };
        if !ranges.contains(&single) && !ranges.contains(peer) {
            ranges.push(single);
        }
    }
    ranges
}

/// The widest public ranges (shortest prefixes) trusted without a warning.
#[derive(Clone, Copy)]
struct PublicPrefixLimits {
    v4: u8,
    v6: u8,
}

/// The verdict on the trusted proxies as configured and as traffic (`seen`) shows them.
fn judge(tp: &TrustedProxies, limits: PublicPrefixLimits, seen: &[Observation], ip_check: bool) -> Outcome {
    let (mut invalid, mut too_broad, mut broad_public, mut valid) = (vec![], vec![], vec![], vec![]);
    for entry in &tp.ranges {
        match parse_trusted(entry) {
            Err(e) => invalid.push(e),
            Ok(net) if net.prefix_len() == 0 => too_broad.push(entry.clone()),
            Ok(net) => {
                let limit = if net.addr().is_ipv4() { limits.v4 } else { limits.v6 };
                if is_public(net.network()) && net.prefix_len() <= limit {
                    broad_public.push(entry.clone());
                }
                valid.push(net.to_string());
            }
        }
    }
    let header = serde_json::to_value(tp.header).unwrap_or_default();
    let evidence = |o: Outcome| {
        o.with("ranges", &tp.ranges)
            .with("cloudflare", tp.cloudflare)
            .with("header", &header)
            .with("invalid", &invalid)
            .with("trust_everyone", &too_broad)
            .with("broad_public_ranges", &broad_public)
    };
    let mut problems = Vec::new();
    let mut status = Status::Pass;
    if !invalid.is_empty() {
        status = Status::Fail;
        problems.push(format!("invalid entries are ignored: {}", invalid.join("; ")));
    }
    if !too_broad.is_empty() {
        status = Status::Fail;
        problems.push(format!(
            "{} trusts every address: any client can forge its IP (lockouts and audit become meaningless)",
            too_broad.join(", ")
        ));
    }
    if !broad_public.is_empty() {
        status = status.max(Status::Warn);
        problems.push(format!("very broad public ranges are trusted: {}", broad_public.join(", ")));
    }
    if tp.header == ForwardedHeader::CfConnectingIp && !tp.cloudflare {
        status = status.max(Status::Warn);
        problems.push(
            "header CF-Connecting-IP is only set by CloudFlare, but cloudflare is false: it is believed \
             from the listed ranges only"
                .into(),
        );
    }
    // What traffic shows: peers that say who the visitor is, without being trusted to.
    // (Behind CloudFlare that is proxy.cloudflare's finding.)
    let forwarding: Vec<_> = seen
        .iter()
        .filter(|o| o.forwarded_untrusted.0 && !o.cf_headers.0)
        .filter(|o| !o.peer_ip.parse().is_ok_and(is_cloudflare))
        .collect();
    // A proxy forwards every request it passes on; a client that tries a header now and
    // then is not one (and is not worth trusting).
    let forwarders: Vec<(String, usize)> = tally(&forwarding, |o| o.peer_ip.clone())
        .into_iter()
        .filter(|(peer, n)| {
            let all = seen.iter().filter(|o| &o.peer_ip == peer).count();
            *n >= 3 && *n * 10 >= all * 8
        })
        .collect();
    let evidence = |o: Outcome| evidence(o).with("untrusted_forwarders", &forwarders);
    if !forwarders.is_empty() {
        status = status.max(if ip_check { Status::Fail } else { Status::Warn });
        let named: Vec<String> = forwarders.iter().map(|(ip, n)| format!("{ip} ({n} requests)")).collect();
        problems.push(format!(
            "{} peer(s) send forwarding headers but are not trusted — {}: every visitor behind them appears as \
             the proxy{}",
            forwarders.len(),
            named.join(", "),
            if ip_check { ", and sessions bound to the IP end whenever the pool's node changes" } else { "" }
        ));
    }
    if !problems.is_empty() {
        let mut o = evidence(Outcome::fail(problems.join("; ")));
        o.status = status;
        if !forwarders.is_empty() {
            o = o
                .remediation(format!(
                    "If these are your proxies or load balancers, add them to trusted_proxies.ranges \
                     (`gatehouse doctor --fix {}` adds exactly these addresses, with a backup) and restart \
                     `serve`; if they are not, find out who is sending forwarding headers.",
                    META.id
                ))
                .fixable(Fix::set("trusted_proxies.ranges", with_peers(&tp.ranges, &forwarders)));
        }
        return o;
    }
    let message = match (valid.len(), tp.cloudflare) {
        (0, false) => "no proxies are trusted: the client IP is the connecting peer".to_string(),
        (n, cf) => format!(
            "{n} range(s){} trusted for {}",
            if cf { " and CloudFlare's" } else { "" },
            header.as_str().unwrap_or_default()
        ),
    };
    evidence(Outcome::pass(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::checks::request as observed;
    use crate::net::observations::Flag;

    const LIMITS: PublicPrefixLimits = PublicPrefixLimits { v4: 8, v6: 24 };

    fn trusting(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies { ranges: ranges.iter().map(|r| r.to_string()).collect(), ..TrustedProxies::default() }
    }

    fn request(peer: &str, forwarded_untrusted: bool) -> Observation {
        Observation { forwarded_untrusted: Flag(forwarded_untrusted), ..observed("example.com", "https", peer) }
    }

    #[test]
    fn exact_proxies_pass_and_trusting_everyone_fails() {
        assert_eq!(judge(&trusting(&["10.0.0.5/32"]), LIMITS, &[], true).status, Status::Pass);
        assert_eq!(
            judge(&trusting(&[]), LIMITS, &[], true).message,
            "no proxies are trusted: the client IP is the connecting peer"
        );
        let everyone = judge(&trusting(&["0.0.0.0/0"]), LIMITS, &[], true);
        assert_eq!(everyone.status, Status::Fail);
        assert!(everyone.message.starts_with("0.0.0.0/0 trusts every address"), "{}", everyone.message);
        assert_eq!(judge(&trusting(&["not-an-ip"]), LIMITS, &[], true).status, Status::Fail);
    }

    #[test]
    fn a_broad_public_range_warns_but_a_broad_private_one_does_not() {
        assert_eq!(judge(&trusting(&["8.0.0.0/8"]), LIMITS, &[], true).status, Status::Warn);
        assert_eq!(judge(&trusting(&["8.8.0.0/16"]), LIMITS, &[], true).status, Status::Pass);
        assert_eq!(judge(&trusting(&["10.0.0.0/8"]), LIMITS, &[], true).status, Status::Pass);
    }

    #[test]
    fn an_untrusted_peer_that_always_forwards_is_named_and_fixable() {
        let seen: Vec<_> = (0..5).map(|_| request("10.0.0.9", true)).collect();
        let outcome = judge(&trusting(&[]), LIMITS, &seen, true);
        assert_eq!(outcome.status, Status::Fail, "with ip_check, sessions end: fail");
        assert!(outcome.message.contains("10.0.0.9 (5 requests)"), "{}", outcome.message);
        assert!(outcome.fix.is_some());
        assert_eq!(outcome.evidence["untrusted_forwarders"][0][0], "10.0.0.9");
        assert_eq!(judge(&trusting(&[]), LIMITS, &seen, false).status, Status::Warn);
    }

    #[test]
    fn a_client_that_tries_a_header_now_and_then_is_not_a_proxy() {
        let mut seen: Vec<_> = (0..3).map(|_| request("203.0.113.7", true)).collect();
        seen.extend((0..7).map(|_| request("203.0.113.7", false)));
        seen.extend((0..2).map(|_| request("10.0.0.9", true)));
        assert_eq!(judge(&trusting(&[]), LIMITS, &seen, true).status, Status::Pass, "3 of 10, and 2 requests");
    }
}
