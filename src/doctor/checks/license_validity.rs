//! `license.validity`: is the license valid for this installation, as every process that
//! verifies it sees it? Key format, the signed cache, the server's status, the binding against
//! where the web server and cron really run, and the grace left.

use std::collections::BTreeMap;

use crate::cron::heartbeat::Heartbeat;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::license::records::{self, Record};
use crate::license::{Binding, Cached, Context as Process, Facts, License, Standing, Status};
use crate::store::rfc3339;

pub struct Validity;

static META: Meta = Meta {
    id: "license.validity",
    title: "License valid for this installation",
    tags: &["license"],
    symptom: "\"License Invalid\", or \"Your license key is invalid\" from cron or the API; admin functions locked.",
    cause: "A wrong or mistyped key; the installation moved (domain, IP or install directory) without a reissue; \
            a license check made from another context (cron or the CLI run from another directory or with another \
            configuration) than the web server's; the licensing server unreachable past the 3-day grace; or a \
            cached answer that is not genuine.",
    next_steps: "Fix what the message names: copy the key again; ask the vendor to reissue the license for this \
                 domain, IP and directory; run cron from the install directory with the web server's configuration; \
                 restore the connection to the licensing server (see license.connectivity); then run \
                 `gatehouse license verify`.",
    prerequisites: &["database.connectivity"],
    config: &["license"],
    ..Meta::BASE
};

impl Check for Validity {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let services = ctx.services().await?;
            let license = &services.license;
            // What the install remembers (the high-water mark, a first attempt, having been licensed).
            license.refresh().await.map_err(|e| Outcome::error(format!("cannot read the license memory: {e}")))?;
            if ctx.config().license.key.is_empty() {
                if let Standing::Locked { reason, .. } = license.standing() {
                    return Ok(Outcome::fail(format!("admin functions are locked: {reason}")).remediation(
                        "Set license.key to this install's key again, then run `gatehouse license verify`.",
                    ));
                }
                return Ok(Outcome::skipped("license.key is not set: unlicensed mode, nothing is verified or locked"));
            }
            let verify_again = "Then run `gatehouse license verify`.";
            let key = match license.key() {
                Some(Ok(key)) => key,
                Some(Err(why)) => {
                    return Ok(Outcome::fail(format!("license.key is malformed: {why}")).remediation(format!(
                        "Copy the key again from the vendor (it is checked locally before any network call). \
                         {verify_again}"
                    )));
                }
                None => unreachable!("the key is set"),
            };
            if let Err(why) = license.public_key() {
                return Ok(Outcome::fail(why).remediation(format!(
                    "Set license.public_key to the vendor's ed25519 public key. {verify_again}"
                )));
            }
            let db = &services.db;
            let error = |what: &str, e: crate::Error| Outcome::error(format!("cannot read {what}: {e}"));
            let recorded = records::all(db).await.map_err(|e| error("license verifications", e))?;
            let beats = ctx.heartbeats().await?;
            let cached = match license.cached() {
                Some(Ok(cached)) => cached,
                _ => unreachable!("the key and the public key were checked above"),
            };
            let base = |o: Outcome| {
                o.with("key_id", key.id())
                    .with("cache", license.cache_path())
                    .with("cache_state", cached.state())
                    .with("verifications", &recorded)
            };

            let answer = match &cached {
                Cached::Answer(answer) => answer,
                Cached::Missing => {
                    let last =
                        recorded.first().map(|r| format!(" (last attempt, {}: {} {})", r.context, r.outcome, r.reason));
                    if let Standing::FirstVerification { locks_at, hours_left, .. } = license.standing() {
                        return Ok(base(Outcome::warn(format!(
                            "the license has not been verified yet{}: admin functions lock at {locks_at} ({} days {} h \
                             left)",
                            last.unwrap_or_default(),
                            hours_left / 24,
                            hours_left % 24
                        )))
                        .with("locks_at", locks_at)
                        .with("hours_left", hours_left)
                        .remediation(
                            "Let the first verification through (license.connectivity names the network phase that \
                             fails), or run `gatehouse license verify`.",
                        ));
                    }
                    return Ok(base(Outcome::fail(format!(
                        "the license has never been verified on this host{}",
                        last.unwrap_or_default()
                    )))
                    .remediation(
                        "Run `gatehouse license verify` (serve and cron verify by themselves; if they \
                                  cannot, license.connectivity names the network phase that fails).",
                    ));
                }
                Cached::Tampered(why) | Cached::Unreadable(why) => {
                    return Ok(base(Outcome::fail(format!("the cached license answer is not genuine: {why}")))
                        .remediation(format!(
                            "The cache was edited, damaged, or license.public_key changed since it was written; it \
                             unlocks nothing. {verify_again}"
                        )));
                }
                Cached::OtherKey { key_id } => {
                    return Ok(base(Outcome::fail(format!(
                        "the cached answer is for another key (id {key_id}), not the configured one (id {})",
                        key.id()
                    )))
                    .remediation(format!("license.key changed since the last verification. {verify_again}")));
                }
            };
            let base = |o: Outcome| {
                base(o)
                    .with("status", answer.status)
                    .with("licensed", &answer.binding)
                    .with("checked_at", answer.checked_at.to_rfc3339())
                    .with("server_reason", &answer.reason)
            };

            let mut problems = mismatches(&answer.binding, license, &recorded, beats);
            problems.extend(context_differences(&recorded, beats));
            let reissue = "Ask the vendor to reissue the license for where it runs now (domain, IP and install \
                           directory), or move the installation back; run cron and the CLI from the install \
                           directory with the web server's configuration.";

            if answer.status != Status::Active {
                let reason = if answer.reason.is_empty() { String::new() } else { format!(": {}", answer.reason) };
                let also = if problems.is_empty() { String::new() } else { format!(" — {}", problems.join("; ")) };
                return Ok(base(Outcome::fail(format!("the license is {}{reason}{also}", answer.status))).remediation(
                    format!("Admin functions are locked; the client area stays up. {reissue} {verify_again}"),
                ));
            }
            if !problems.is_empty() {
                return Ok(base(Outcome::fail(format!(
                    "the license is active, but {}: that process's checks are refused",
                    problems.join("; ")
                )))
                .remediation(reissue));
            }
            let last_attempt =
                recorded.iter().find(|r| r.outcome == records::Outcome::NoAnswer).map(|r| r.reason.clone());
            Ok(match license.standing() {
                Standing::Grace { locks_at, hours_left, due_at, .. } => base(Outcome::warn(format!(
                    "the license was due for its check at {due_at} and the licensing server has not answered since{}: \
                     admin functions lock at {locks_at} ({} days {} h left)",
                    last_attempt.map(|r| format!(" ({r})")).unwrap_or_default(),
                    hours_left / 24,
                    hours_left % 24
                )))
                .with("locks_at", locks_at)
                .remediation("Restore the connection to the licensing server (license.connectivity names the phase).")
                .with("hours_left", hours_left),
                Standing::Locked { reason, .. } => base(Outcome::fail(format!("admin functions are locked: {reason}")))
                    .remediation(format!(
                        "Restore the connection to the licensing server (license.connectivity names the phase). \
                         {verify_again}"
                    )),
                Standing::Active { due_at, .. } => base(Outcome::pass(format!(
                    "active (licensed for {}), verified {}; next check due {due_at}",
                    answer.binding,
                    answer.checked_at.to_rfc3339()
                ))),
                Standing::Unlicensed | Standing::FirstVerification { .. } => unreachable!("a key with an answer"),
            })
        })
    }
}

/// The latest heartbeat of each role (`web`, `cron`): where those processes run now.
fn latest_beats(beats: &[Heartbeat]) -> BTreeMap<Process, &Heartbeat> {
    let mut latest = BTreeMap::new();
    for beat in beats {
        latest.entry(beat.role).or_insert(beat);
    }
    latest
}

/// A verification describes its process as it runs now when nothing newer says otherwise: its
/// role's latest heartbeat (if any) has the same directory and configuration.
fn is_current(record: &Record, beats: &BTreeMap<Process, &Heartbeat>) -> bool {
    beats
        .get(&record.context)
        .is_none_or(|b| b.install_dir == record.directory && b.config_fingerprint == record.config_fingerprint)
}

/// Where the processes run now, outside the licensed binding: each current verification's
/// facts, each role's latest heartbeat directory, and this configuration's domain.
fn mismatches(binding: &Binding, license: &License, recorded: &[Record], beats: &[Heartbeat]) -> Vec<String> {
    let latest = latest_beats(beats);
    let mut out = std::collections::BTreeSet::new();
    for record in recorded.iter().filter(|r| is_current(r, &latest)) {
        out.extend(binding.mismatches(&record.facts(), record.context.as_str()));
    }
    // A heartbeat knows the directory, the configuration the domain: each is judged alone.
    let directories = Binding { directories: binding.directories.clone(), ..Binding::default() };
    for (role, beat) in &latest {
        let facts = Facts { domain: None, ip: None, directory: beat.install_dir.clone() };
        out.extend(directories.mismatches(&facts, role.as_str()));
    }
    let domains = Binding { domains: binding.domains.clone(), ..Binding::default() };
    out.extend(domains.mismatches(&license.facts(None), "system_url"));
    out.into_iter().collect()
}

/// How a current cron or CLI verification's facts differ from the web server's.
fn context_differences(recorded: &[Record], beats: &[Heartbeat]) -> Vec<String> {
    let latest = latest_beats(beats);
    let current: Vec<&Record> = recorded.iter().filter(|r| is_current(r, &latest)).collect();
    let (web, others): (Vec<&Record>, Vec<&Record>) = current.into_iter().partition(|r| r.context == Process::Web);
    let Some(web) = web.first() else { return Vec::new() };
    let mut out = Vec::new();
    for other in others {
        let mut named: Vec<String> = other
            .facts()
            .differences(&web.facts())
            .into_iter()
            .map(|(what, theirs, webs)| format!("{what} {theirs} vs {webs}"))
            .collect();
        if !named.is_empty() && other.config_fingerprint != web.config_fingerprint {
            named.push(format!("configuration {} vs {}", other.config_fingerprint, web.config_fingerprint));
        }
        if !named.is_empty() {
            out.push(format!(
                "the {} license check on {} ({}) sent other facts than the web server: {}",
                other.context,
                other.host,
                rfc3339(other.at),
                named.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::heartbeat::Role;

    fn verification(context: Process, directory: &str, config: &str) -> Record {
        Record {
            context,
            host: "web1".into(),
            domain: Some("clients.example.com".into()),
            ip: Some("203.0.113.10".into()),
            directory: directory.into(),
            config_fingerprint: config.into(),
            outcome: records::Outcome::Answered(Status::Active),
            reason: String::new(),
            applied: 1,
            at: 0,
        }
    }

    fn beat(role: Role, install_dir: &str, config: &str) -> Heartbeat {
        Heartbeat { role, install_dir: install_dir.into(), config_fingerprint: config.into(), ..Heartbeat::default() }
    }

    #[test]
    fn a_cron_check_from_another_directory_is_named_against_the_web_server() {
        let recorded =
            [verification(Process::Web, "/srv/gatehouse", "abc"), verification(Process::Cron, "/root", "def")];
        let found = context_differences(&recorded, &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("the cron license check on web1 (")
                && found[0].ends_with(
                    "sent other facts than the web server: directory /root vs /srv/gatehouse, configuration def vs abc"
                ),
            "{}",
            found[0]
        );
    }

    #[test]
    fn the_same_facts_with_another_configuration_are_no_difference() {
        let recorded =
            [verification(Process::Web, "/srv/gatehouse", "abc"), verification(Process::Cron, "/srv/gatehouse", "def")];
        assert!(context_differences(&recorded, &[]).is_empty(), "the licensing server sees the same installation");
    }

    #[test]
    fn a_verification_that_a_newer_heartbeat_contradicts_is_history() {
        let recorded =
            [verification(Process::Web, "/srv/gatehouse", "abc"), verification(Process::Cron, "/root", "def")];
        // The cron has run from the install directory since its last license check from /root.
        let beats = [beat(Role::Cron, "/srv/gatehouse", "abc"), beat(Role::Cron, "/root", "def")];
        assert!(!is_current(&recorded[1], &latest_beats(&beats)));
        assert!(context_differences(&recorded, &beats).is_empty());
        assert!(is_current(&recorded[0], &latest_beats(&beats)), "no web heartbeat: nothing says otherwise");
    }

    #[test]
    fn without_a_web_verification_there_is_nothing_to_compare_with() {
        assert!(context_differences(&[verification(Process::Cron, "/root", "def")], &[]).is_empty());
    }
}
