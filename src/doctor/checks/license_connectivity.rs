//! `license.connectivity`: can this host reach the licensing server? DNS → TCP → TLS → HTTP,
//! each phase timed, the failing one named.

use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
use crate::doctor::model::Status;
use crate::net::http;

pub struct Connectivity;

static META: Meta = Meta {
    id: "license.connectivity",
    title: "Licensing server reachable",
    tags: &["license", "network"],
    symptom: "\"No connection\" on license checks; admin functions lock after the grace period.",
    cause: "The licensing server cannot be reached from this host: its name does not resolve, a firewall drops \
            or refuses the connection, TLS fails (intercepting proxy, missing CA roots, wrong clock), or it \
            answers with an error.",
    next_steps: "Fix the phase named in the message: DNS (resolv.conf, doctor.dns_servers), TCP (outbound firewall \
                 to the server's port), TLS (proxy interception, CA bundle, system clock) or HTTP (the server's \
                 status; retry later).",
    thresholds: &["slow_ms"],
    ..Meta::BASE
};

impl Check for Connectivity {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let Some(server) = ctx.config().license.server.url() else {
                return Outcome::skipped("license.server is not configured");
            };
            let resolver = match ctx.resolver().await {
                Ok(r) => r,
                Err(e) => return Outcome::error(e),
            };
            let trace = http::get(server, resolver, ctx.network_budget(), None).await;
            let total: f64 = trace.phases.iter().map(|p| p.ms).sum();
            let base = |o: Outcome| {
                o.with("server", server.as_str())
                    .with("phases", &trace.phases)
                    .with("failed_phase", trace.failed_phase)
                    .with("http_status", trace.status)
                    .with("server_date", &trace.date)
                    .with("total_ms", (total * 100.0).round() / 100.0)
            };
            if let Some(failure) = trace.failure() {
                let mut o = base(Outcome::fail(format!("cannot reach the licensing server {server}: {failure}")));
                if trace.timed_out {
                    o.status = Status::Timeout;
                }
                return o;
            }
            let status = trace.status.unwrap_or(0);
            if status >= 500 {
                return base(Outcome::warn(format!(
                    "the licensing server answered HTTP {status}: it is up but failing"
                )));
            }
            let slow_ms = ctx.threshold(META.id, "slow_ms", 2000.0);
            if total > slow_ms {
                return base(Outcome::warn(format!(
                    "the licensing server answered in {total:.0} ms, slower than {slow_ms} ms"
                )));
            }
            base(Outcome::pass(format!("{server} answered HTTP {status} in {total:.0} ms")))
        })
    }
}
