//! `fleet.drift`: the processes of one deployment — every `serve` node and the cron — should
//! run the same version with the same configuration. Their heartbeats say what each runs; the
//! odd ones out are named.

use std::collections::BTreeMap;

use crate::cron::heartbeat::{Heartbeat, Role};
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
    explains: &[
        "email.queue",
        "sessions.gc",
        "sessions.lifetime",
        "time.timezone",
        "license.validity",
        "cron.activity",
    ],
    ..Meta::BASE
};

impl Check for Drift {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let (live, fresh_min) = ctx.live_heartbeats().await?;
            Ok(judge(&live, fresh_min))
        })
    }
}

/// The verdict on the processes that reported in the last `fresh_min` minutes: a version or an
/// install directory apart warns, a configuration apart fails; the odd ones out are named.
fn judge(live: &[&Heartbeat], fresh_min: i64) -> Outcome {
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
        return evidence(Outcome::pass(format!(
            "{} process(es) reported in the last {fresh_min} min: nothing to compare",
            live.len()
        )));
    }
    let mut problems = Vec::new();
    let mut status = Status::Pass;
    for (what, value, severity) in [
        ("version", (|b: &Heartbeat| b.version.clone()) as fn(&Heartbeat) -> String, Status::Warn),
        ("configuration", |b: &Heartbeat| b.config_fingerprint.clone(), Status::Fail),
        ("install directory", |b: &Heartbeat| b.install_dir.clone(), Status::Warn),
    ] {
        let mut groups: BTreeMap<String, Vec<&Heartbeat>> = BTreeMap::new();
        for b in live {
            groups.entry(value(b)).or_default().push(b);
        }
        if groups.len() < 2 {
            continue;
        }
        // The largest group is the norm (ties: the web nodes' value); the rest are named.
        let norm = groups
            .iter()
            .max_by_key(|(_, g)| (g.len(), g.iter().filter(|b| b.role == Role::Web).count()))
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
        return evidence(Outcome::pass(format!(
            "{} processes run version {} with configuration {}",
            live.len(),
            live[0].version,
            live[0].config_fingerprint
        )));
    }
    let mut o = evidence(Outcome::fail(problems.join(". ")));
    o.status = status;
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(role: Role, host: &str, version: &str, config: &str) -> Heartbeat {
        Heartbeat {
            role,
            host: host.into(),
            version: version.into(),
            config_fingerprint: config.into(),
            install_dir: "/srv/gatehouse".into(),
            ..Heartbeat::default()
        }
    }

    #[test]
    fn one_process_has_nothing_to_compare_with() {
        let web = process(Role::Web, "web1", "1.2.0", "abc");
        assert_eq!(judge(&[&web], 10).message, "1 process(es) reported in the last 10 min: nothing to compare");
    }

    #[test]
    fn a_version_apart_warns_and_a_configuration_apart_fails_naming_the_odd_one() {
        let (a, b) = (process(Role::Web, "web1", "1.2.0", "abc"), process(Role::Web, "web2", "1.2.0", "abc"));
        let old = process(Role::Cron, "cron1", "1.1.0", "abc");
        let outcome = judge(&[&a, &b, &old], 10);
        assert_eq!(outcome.status, Status::Warn);
        assert!(
            outcome.message.starts_with("version differs from 1.2.0 (most processes): cron on cron1"),
            "{}",
            outcome.message
        );

        let own_config = process(Role::Web, "web3", "1.2.0", "def");
        let outcome = judge(&[&a, &b, &own_config], 10);
        assert_eq!(outcome.status, Status::Fail);
        assert!(
            outcome.message.contains("web on web3 in /srv/gatehouse (pid 0) has configuration def"),
            "{}",
            outcome.message
        );
    }

    #[test]
    fn on_a_tie_the_web_nodes_are_the_norm() {
        let (web, cron) = (process(Role::Web, "web1", "1.2.0", "abc"), process(Role::Cron, "cron1", "1.1.0", "abc"));
        let outcome = judge(&[&cron, &web], 10);
        assert!(outcome.message.contains("differs from 1.2.0"), "{}", outcome.message);
    }

    #[test]
    fn the_same_everything_passes() {
        let (a, b) = (process(Role::Web, "web1", "1.2.0", "abc"), process(Role::Cron, "web1", "1.2.0", "abc"));
        assert_eq!(judge(&[&a, &b], 10).status, Status::Pass);
    }
}
