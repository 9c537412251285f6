//! `proxy.cloudflare`: the site is behind CloudFlare — requests arrive from CloudFlare's ranges
//! or carry its headers, or system_url resolves into its edge — but CloudFlare is not trusted,
//! so every visitor appears as a rotating CloudFlare address.

use super::{observed_requests, tally};
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
use crate::doctor::fix::Fix;
use crate::doctor::model::CheckResult;
use crate::net::client_ip::is_cloudflare;

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
