//! `proxy.cloudflare`: the site is behind CloudFlare (system_url resolves into its edge) but
//! CloudFlare is not trusted, so every visitor appears as a rotating CloudFlare address.
//! (Observed traffic from CloudFlare ranges is added once the service records requests.)

use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
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
    next_steps: "Set trusted_proxies.cloudflare: true and trusted_proxies.header: CF-Connecting-IP in gatehouse.yaml.",
    prerequisites: &[],
    thresholds: &[],
};

impl Check for Trust {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let config = ctx.config();
            let Some(host) = config.system_url.url().and_then(|u| u.host_str().map(str::to_string)) else {
                return Outcome::skipped("system_url is not set");
            };
            let resolver = match ctx.resolver().await {
                Ok(r) => r,
                Err(e) => return Outcome::error(e),
            };
            let addrs = match tokio::time::timeout(ctx.network_budget(), resolver.lookup(&host)).await {
                Ok(Ok(a)) => a,
                Ok(Err(e)) => return Outcome::skipped(format!("{host} does not resolve from here ({e})")),
                Err(_) => return Outcome::skipped(format!("{host} did not resolve in time")),
            };
            let edge: Vec<String> = addrs.iter().filter(|ip| is_cloudflare(**ip)).map(|ip| ip.to_string()).collect();
            let tp = &config.trusted_proxies;
            let base = |o: Outcome| {
                o.with("host", &host)
                    .with("addresses", addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>())
                    .with("cloudflare_addresses", &edge)
                    .with("cloudflare_trusted", tp.cloudflare)
                    .with("ip_check", config.sessions.ip_check)
            };
            match (edge.is_empty(), tp.cloudflare) {
                (false, false) => {
                    let message = format!(
                        "{host} resolves to CloudFlare ({}) but CloudFlare is not trusted: visitors appear as edge addresses",
                        edge.join(", ")
                    );
                    // With ip_check on, every change of edge address ends the session.
                    base(if config.sessions.ip_check { Outcome::fail(message) } else { Outcome::warn(message) })
                }
                (false, true) => {
                    base(Outcome::pass(format!("{host} is behind CloudFlare, and its ranges are trusted")))
                }
                (true, _) => base(Outcome::pass(format!("{host} does not resolve to CloudFlare"))),
            }
        })
    }
}
