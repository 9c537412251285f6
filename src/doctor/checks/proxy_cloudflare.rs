//! `proxy.cloudflare`: the site is behind CloudFlare — requests arrive from CloudFlare's ranges
//! or carry its headers, or system_url resolves into its edge — but CloudFlare is not trusted,
//! so every visitor appears as a rotating CloudFlare address.

use super::{observed_requests, tally};
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
use crate::doctor::fix::Fix;
use crate::doctor::model::CheckResult;
use crate::net::client_ip::{bundled_cloudflare_date, is_cloudflare, read_cloudflare_ranges};

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
    thresholds: &["max_ranges_age_days"],
    config: &["trusted_proxies"],
    ..Meta::BASE
};

impl Check for Trust {
    fn meta(&self) -> &'static Meta {
        &META
    }

    /// The seed's "automatically reconfigure your CloudFlare proxy settings": trust CloudFlare's
    /// bundled ranges and take the visitor from the header CloudFlare sets.
    fn fix(&self, ctx: &Context, _found: &CheckResult) -> Option<Fix> {
        Fix::set_config(
            ctx,
            &[("trusted_proxies.cloudflare", "true".into()), ("trusted_proxies.header", "\"CF-Connecting-IP\"".into())],
        )
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let config = ctx.config();
            let tp = &config.trusted_proxies;
            if tp.cloudflare
                && let Some(outcome) = stale_or_broken_ranges(ctx)
            {
                return outcome.with("cloudflare_trusted", true);
            }
            // What real traffic shows (none yet is not an error: the DNS side may still tell).
            let seen = observed_requests(ctx).await.unwrap_or_default();
            let via_cloudflare: Vec<_> =
                seen.iter().filter(|o| o.cf_headers.0 || o.peer_ip.parse().is_ok_and(is_cloudflare)).collect();
            let observed = |o: Outcome| {
                o.with("cloudflare_trusted", tp.cloudflare)
                    .with("ip_check", config.sessions.ip_check)
                    .with("observed_requests", seen.len())
                    .with("observed_via_cloudflare", via_cloudflare.len())
                    .with("cloudflare_peers", tally(&via_cloudflare, |o| o.peer_ip.clone()))
            };
            // With ip_check on, every change of edge address ends the session.
            let untrusted = |message: String| {
                let o = if config.sessions.ip_check { Outcome::fail(message) } else { Outcome::warn(message) };
                o.fixable("trust CloudFlare's ranges and take the visitor's address from CF-Connecting-IP")
            };
            if !via_cloudflare.is_empty() && !tp.cloudflare {
                return observed(untrusted(format!(
                    "{} of {} observed requests came through CloudFlare, which is not trusted: visitors appear as CloudFlare's edge addresses",
                    via_cloudflare.len(),
                    seen.len()
                )));
            }
            let Some(host) = config.system_url.url().and_then(|u| u.host_str().map(str::to_string)) else {
                return observed(Outcome::skipped("system_url is not set"));
            };
            let resolver = match ctx.resolver().await {
                Ok(r) => r,
                Err(e) => return Outcome::error(e),
            };
            let addrs = match tokio::time::timeout(ctx.network_budget(), resolver.lookup(&host)).await {
                Ok(Ok(a)) => a,
                Ok(Err(e)) => return observed(Outcome::skipped(format!("{host} does not resolve from here ({e})"))),
                Err(_) => return observed(Outcome::skipped(format!("{host} did not resolve in time"))),
            };
            let edge: Vec<String> = addrs.iter().filter(|ip| is_cloudflare(**ip)).map(|ip| ip.to_string()).collect();
            let base = |o: Outcome| {
                observed(o)
                    .with("host", &host)
                    .with("addresses", addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>())
                    .with("cloudflare_addresses", &edge)
            };
            match (edge.is_empty(), tp.cloudflare) {
                (false, false) => base(untrusted(format!(
                    "{host} resolves to CloudFlare ({}) but CloudFlare is not trusted: visitors appear as edge addresses",
                    edge.join(", ")
                ))),
                (false, true) => {
                    base(Outcome::pass(format!("{host} is behind CloudFlare, and its ranges are trusted")))
                }
                (true, _) => base(Outcome::pass(format!("{host} does not resolve to CloudFlare"))),
            }
        })
    }
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
    let days = (ctx.now() - as_of) / 86_400;
    (days > max_days).then(|| {
        Outcome::warn(format!(
            "CloudFlare's ranges come from {source}, last refreshed {} ({days} days ago, more than {max_days}): \
             visitors through an edge added since appear as that edge",
            crate::store::rfc3339(as_of)
        ))
        .with("ranges_source", &source)
        .with("ranges_age_days", days)
        .remediation(refresh)
    })
}
