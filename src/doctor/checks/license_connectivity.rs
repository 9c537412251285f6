//! `license.connectivity`: can this host reach the licensing server? DNS → TCP → TLS → HTTP,
//! each phase timed, the failing one named — and the answer must be the licensing protocol (a
//! signed answer), not whatever a proxy or captive portal sends back with HTTP 200.

use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::license::{Reply, Status};
use crate::net::http::Stage;

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
    prerequisites: &["database.connectivity"],
    explains: &["license.validity"],
    thresholds: &["slow_ms"],
    config: &["license"],
    ..Meta::BASE
};

impl Check for Connectivity {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let config = &ctx.config().license;
            if config.key.is_empty() {
                return Ok(Outcome::skipped("license.key is not set: unlicensed mode, nothing is verified"));
            }
            let Some(server) = config.server.url() else {
                return Ok(Outcome::fail(
                    "license.key is set but license.server is empty: the key can never be verified",
                )
                .remediation("Set license.server to the licensing service's base URL from the vendor."));
            };
            let license = &ctx.services().await?.license;
            let resolver = ctx.resolver().await.map_err(Outcome::error)?;
            // A real verification request (answered and signed like any other), whose answer
            // is judged and then dropped: the doctor changes no cache.
            let (trace, _, reply) = license
                .ask(crate::license::Context::Cli, resolver, ctx.network_budget())
                .await
                .map_err(|e| Outcome::skipped(format!("no request can be made: {e} (license.validity says why)")))?;
            let total: f64 = trace.phases.iter().map(|p| p.ms).sum();
            let base = |o: Outcome| {
                o.with("server", server.as_str())
                    .with("phases", &trace.phases)
                    .with("failed_phase", trace.failed_phase)
                    .with("http_status", trace.status)
                    .with("content_type", trace.content_type())
                    .with("server_date", &trace.date)
                    .with("total_ms", (total * 100.0).round() / 100.0)
            };
            let answered = match &reply {
                Reply::Answered { answer, .. } => Ok(answer.status),
                Reply::NoAnswer { phase, why } => Err((*phase, why.as_str())),
            };
            Ok(base(judge(server.as_str(), answered, total, ctx.threshold(META.id, "slow_ms", 2000.0))))
        })
    }
}

/// The verdict on the licensing server's reply — a signed answer with its status, or the phase
/// that failed and why — and on the `total_ms` it took, slow past `slow_ms`.
fn judge(server: &str, answered: Result<Status, (Stage, &str)>, total_ms: f64, slow_ms: f64) -> Outcome {
    match answered {
        Err((phase, why)) => Outcome::fail(format!("no licensing answer from {server}: {why}"))
            .with("phase", phase)
            .remediation(remedy(phase)),
        Ok(_) if total_ms > slow_ms => {
            Outcome::warn(format!("the licensing server answered in {total_ms:.0} ms, slower than {slow_ms} ms"))
        }
        Ok(status) => Outcome::pass(format!("{server} gave a signed answer (status {status}) in {total_ms:.0} ms")),
    }
}

/// What to do about the phase that failed.
fn remedy(phase: Stage) -> &'static str {
    match phase {
        Stage::Dns => {
            "The server's name does not resolve: check resolv.conf (or doctor.dns_servers) and license.server."
        }
        Stage::Tcp => {
            "Nothing answers on the server's port: allow outbound connections to it in the firewall (a \
             connection that hangs means packets are dropped; a refusal, that nothing listens)."
        }
        Stage::Tls => "The TLS handshake failed: an intercepting proxy, missing CA roots, or a wrong system clock.",
        Stage::Protocol => {
            "Something other than the licensing server answered — a proxy's or captive portal's page, or \
             license.server points at the wrong address: let the host reach the server directly."
        }
        Stage::Signature => {
            "The answer is not signed by the key in license.public_key: copy the vendor's public key \
             again, or find what alters the answers on the way."
        }
        Stage::Http => {
            "The server accepted the connection but did not answer properly: retry later, or ask the vendor."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::model::Status as Verdict;

    const SERVER: &str = "https://licensing.example.com/";

    #[test]
    fn a_signed_answer_passes_whatever_it_says_and_a_slow_one_warns() {
        let expired = judge(SERVER, Ok(Status::Expired), 120.0, 2000.0);
        assert_eq!(expired.status, Verdict::Pass, "the answer's status is license.validity's to judge");
        assert_eq!(expired.message, "https://licensing.example.com/ gave a signed answer (status expired) in 120 ms");
        assert_eq!(judge(SERVER, Ok(Status::Active), 2500.0, 2000.0).status, Verdict::Warn);
    }

    #[test]
    fn no_answer_names_the_phase_and_what_to_do_about_it() {
        let outcome = judge(SERVER, Err((Stage::Signature, "not signed by license.public_key")), 80.0, 2000.0);
        assert_eq!(outcome.status, Verdict::Fail);
        assert_eq!(outcome.evidence["phase"], "signature");
        assert!(outcome.remediation.as_deref().is_some_and(|r| r.contains("copy the vendor's public key")));
        for phase in [Stage::Dns, Stage::Tcp, Stage::Tls, Stage::Protocol, Stage::Signature] {
            assert_ne!(remedy(phase), remedy(Stage::Http), "{phase} has its own advice");
        }
    }
}
