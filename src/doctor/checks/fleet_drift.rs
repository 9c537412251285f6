//! `fleet.drift`: the processes of one deployment — every `serve` node and the cron — should
//! run the same version with the same configuration. Their heartbeats say what each runs; the
//! odd ones out are named.

use std::collections::BTreeMap;

use crate::cron::heartbeat::Heartbeat;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::doctor::model::Status;
use crate::store::rfc3339;

pub struct Drift;

static META: Meta = Meta {
    id: "fleet.drift",
    title: "Every node runs the same version and configuration",
    tags: &["fleet", "sessions"],
    symptom: "Problems that come and go with the node a request lands on: logouts, \"login details incorrect\", \
              links that work from one node only.",
    cause: "Nodes (or the cron) run different versions, configurations or install directories: a node left out of \
            a deploy, or one started from another directory with its own gatehouse.yaml.",
    next_steps: "Deploy the same version and configuration file to every node and the cron, and restart the odd \
                 ones out.",
    prerequisites: &["database.connectivity"],
    ..Meta::BASE
};

/// A process counts while its heartbeat is this fresh (serve beats every 30 s; cron every run).
fn freshness(ctx: &Context) -> i64 {
    (2 * ctx.config().cron.interval.as_secs()).max(600)
}

impl Check for Drift {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let beats = ctx.heartbeats().await?;
            let since = ctx.now() - freshness(ctx);
            let live: Vec<&Heartbeat> = beats.iter().filter(|b| b.at >= since).collect();
            let name = |b: &Heartbeat| format!("{} on {} in {} (pid {})", b.role, b.host, b.install_dir, b.pid);
            let evidence = |o: Outcome| {
                o.with(
                    "processes",
                    live.iter()
                        .map(|b| {
                            serde_json::json!({"role": b.role, "host": b.host, "install_dir": b.install_dir,
                                "version": b.version, "config_fingerprint": b.config_fingerprint, "pid": b.pid,
                                "at": rfc3339(b.at)})
                        })
                        .collect::<Vec<_>>(),
                )
            };
            if live.len() < 2 {
                return Ok(evidence(Outcome::pass(format!(
                    "{} process(es) reported in the last {} min: nothing to compare",
                    live.len(),
                    freshness(ctx) / 60
                ))));
            }
            let mut problems = Vec::new();
            let mut status = Status::Pass;
            for (what, value, severity) in [
                ("version", (|b: &Heartbeat| b.version.clone()) as fn(&Heartbeat) -> String, Status::Warn),
                ("configuration", |b: &Heartbeat| b.config_fingerprint.clone(), Status::Fail),
                ("install directory", |b: &Heartbeat| b.install_dir.clone(), Status::Warn),
            ] {
                let mut groups: BTreeMap<String, Vec<&Heartbeat>> = BTreeMap::new();
                for b in &live {
                    groups.entry(value(b)).or_default().push(b);
                }
                if groups.len() < 2 {
                    continue;
                }
                // The largest group is the norm (ties: the web nodes' value); the rest are named.
                let norm = groups
                    .iter()
                    .max_by_key(|(_, g)| (g.len(), g.iter().filter(|b| b.role == "web").count()))
                    .map(|(v, _)| v.clone())
                    .unwrap_or_default();
                let odd: Vec<String> = groups
                    .iter()
                    .filter(|(v, _)| **v != norm)
                    .flat_map(|(v, g)| g.iter().map(move |b| format!("{} has {what} {v}", name(b))))
                    .collect();
                problems.push(format!("{what} differs from {norm} (most processes): {}", odd.join("; ")));
                status = status.max(severity);
            }
            if problems.is_empty() {
                return Ok(evidence(Outcome::pass(format!(
                    "{} processes run version {} with configuration {}",
                    live.len(),
                    live[0].version,
                    live[0].config_fingerprint
                ))));
            }
            let mut o = evidence(Outcome::fail(problems.join(". ")));
            o.status = status;
            Ok(o)
        })
    }
}
