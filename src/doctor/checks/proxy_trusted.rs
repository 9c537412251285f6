//! `proxy.trusted`: which peers may set the client IP. Too little trust makes every visitor
//! look like the proxy (sessions bound to the IP end early); too much lets anyone spoof it.

use crate::config::ForwardedHeader;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
use crate::doctor::model::Status;
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
    ..Meta::BASE
};

impl Check for Trusted {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let tp = &ctx.config().trusted_proxies;
            let max_public_prefix_v4 = ctx.threshold(META.id, "max_public_prefix_v4", 8.0) as u8;
            let max_public_prefix_v6 = ctx.threshold(META.id, "max_public_prefix_v6", 24.0) as u8;
            let (mut invalid, mut too_broad, mut broad_public, mut valid) = (vec![], vec![], vec![], vec![]);
            for entry in &tp.ranges {
                match parse_trusted(entry) {
                    Err(e) => invalid.push(e),
                    Ok(net) if net.prefix_len() == 0 => too_broad.push(entry.clone()),
                    Ok(net) => {
                        let limit = if net.addr().is_ipv4() { max_public_prefix_v4 } else { max_public_prefix_v6 };
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
            if !problems.is_empty() {
                let mut o = evidence(Outcome::fail(problems.join("; ")));
                o.status = status;
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
        })
    }
}
