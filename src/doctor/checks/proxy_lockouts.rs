//! `proxy.lockouts`: client IPs locked out that are not visitors at all but a proxy or CDN in
//! front of gatehouse. When that proxy is not trusted, every visitor arrives with its address,
//! so the IP lockout counts everyone's failures together and locks everyone out at once.

use std::net::IpAddr;

use crate::auth::throttle::{Scope, Throttle};
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::net::client_ip::is_cloudflare;

pub struct ProxyLockouts;

static META: Meta = Meta {
    id: "proxy.lockouts",
    title: "No lockouts of proxy or CDN addresses",
    tags: &["proxy", "lockout"],
    symptom: "Everybody is locked out at once (\"Login details incorrect\" for every user) until the lock \
              expires; the lockout list shows one internal or CloudFlare address.",
    cause: "A reverse proxy or CDN in front of gatehouse is not trusted, so every visitor appears with its \
            address: the per-IP lockout adds up everyone's failed logins and locks them all out together.",
    next_steps: "Trust the proxy (trusted_proxies.ranges, or cloudflare: true behind CloudFlare) with the header it \
                 sets, restart serve, then end the lock with `gatehouse lockout clear --ip ADDRESS`.",
    prerequisites: &["database.connectivity"],
    config: &["trusted_proxies"],
    ..Meta::BASE
};

/// Addresses a visitor on the internet never has: a proxy, load balancer or NAT in between.
fn is_internal(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Why an address looks like a proxy's rather than a visitor's, if it does.
fn proxy_kind(ip: IpAddr, cloudflare_trusted: bool) -> Option<&'static str> {
    if is_internal(ip) {
        Some("internal address: a reverse proxy, load balancer or NAT")
    } else if is_cloudflare(ip) && !cloudflare_trusted {
        Some("CloudFlare edge, not trusted")
    } else {
        None
    }
}

impl Check for ProxyLockouts {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let accounts = ctx.accounts().await?;
            let config = ctx.config();
            let counters = Throttle::new(accounts.db().clone(), &config.security.lockout)
                .counters()
                .await
                .map_err(|e| Outcome::error(format!("cannot read the lockout counters: {e}")))?;
            let locked_ips: Vec<(IpAddr, &crate::auth::throttle::Counter)> = counters
                .iter()
                .filter(|c| c.locked)
                .filter_map(|c| match Scope::parse(&c.scope)? {
                    // An IPv6 client is counted as its /64.
                    Scope::Ip(ip) => {
                        let addr = ip.parse().ok().or_else(|| ip.parse::<ipnet::IpNet>().ok().map(|n| n.addr()));
                        Some((addr?, c))
                    }
                    _ => None,
                })
                .collect();
            let proxies: Vec<serde_json::Value> = locked_ips
                .iter()
                .filter_map(|(ip, c)| {
                    let kind = proxy_kind(*ip, config.trusted_proxies.cloudflare)?;
                    Some(serde_json::json!({"ip": ip.to_string(), "kind": kind, "locked_until": crate::store::rfc3339(c.locked_until)}))
                })
                .collect();
            let evidence = |o: Outcome| {
                o.with("locked_ips", locked_ips.len())
                    .with("ip_max_failures", config.security.lockout.ip_max_failures)
                    .with("trusted_ranges", &config.trusted_proxies.ranges)
                    .with("cloudflare_trusted", config.trusted_proxies.cloudflare)
                    .with("proxy_addresses_locked", &proxies)
            };
            if proxies.is_empty() {
                return Err(evidence(Outcome::pass(match locked_ips.len() {
                    0 => "no client IP is locked out".to_string(),
                    n => format!("{n} client IP(s) locked out, none of them a proxy or CDN address"),
                })));
            }
            let names: Vec<String> = proxies
                .iter()
                .map(|p| format!("{} ({})", p["ip"].as_str().unwrap_or(""), p["kind"].as_str().unwrap_or("")))
                .collect();
            Ok(evidence(Outcome::fail(format!(
                "{} proxy or CDN address(es) locked out: {}. Every visitor behind them shares that IP, so one \
                 lockout locks everyone out; trust the proxy, then `gatehouse lockout clear --ip ADDRESS`",
                proxies.len(),
                names.join(", ")
            ))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_are_told_from_visitors() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(proxy_kind(ip("10.0.0.2"), false).is_some());
        assert!(proxy_kind(ip("127.0.0.1"), false).is_some());
        assert!(proxy_kind(ip("fd00::1"), false).is_some());
        assert!(proxy_kind(ip("::ffff:192.168.1.1"), false).is_some());
        assert!(proxy_kind(ip("104.16.0.1"), false).is_some(), "CloudFlare, untrusted");
        assert!(proxy_kind(ip("104.16.0.1"), true).is_none(), "CloudFlare, trusted: its address cannot be a client");
        assert!(proxy_kind(ip("198.51.100.7"), false).is_none(), "a visitor");
        assert!(proxy_kind(ip("2001:db8::7"), false).is_none());
    }
}
