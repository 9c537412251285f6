//! Built-in checks, one file per check named after its id (`sessions.gc` is `sessions_gc.rs`),
//! with its own fix where it offers one. Each maps a symptom from the troubleshooting table to
//! its causes and puts what it observed in `evidence`.

mod accounts_integrity;
mod accounts_password_hashes;
mod admin_roles;
mod cron_activity;
mod database_connectivity;
mod disk_permissions;
mod disk_space;
mod email_queue;
mod email_transport;
mod fleet_drift;
mod license_connectivity;
mod license_validity;
mod proxy_cloudflare;
mod proxy_lockouts;
mod proxy_trusted;
mod service_account;
mod sessions_cookie;
mod sessions_gc;
mod sessions_lifetime;
mod sessions_storage;
mod system_url_config;
mod system_url_reachable;
mod system_url_requests;
mod time_clock;
mod time_timezone;
mod twofa_duo;

use std::sync::Arc;

use super::check::{Check, Outcome};
use super::context::Context;
use super::model::Status;
use crate::net::observations::{self, Observation};

/// Every built-in check, in report order.
pub fn builtin() -> Vec<Arc<dyn Check>> {
    vec![
        Arc::new(database_connectivity::Connectivity),
        Arc::new(disk_space::Space),
        Arc::new(disk_permissions::Permissions),
        Arc::new(time_timezone::TimeZone),
        Arc::new(time_clock::Clock),
        Arc::new(system_url_config::Config),
        Arc::new(system_url_reachable::Reachable),
        Arc::new(system_url_requests::Requests),
        Arc::new(proxy_trusted::Trusted),
        Arc::new(proxy_cloudflare::Trust),
        Arc::new(proxy_lockouts::ProxyLockouts),
        Arc::new(accounts_integrity::Integrity),
        Arc::new(accounts_password_hashes::PasswordHashes),
        Arc::new(admin_roles::Roles),
        Arc::new(license_validity::Validity),
        Arc::new(license_connectivity::Connectivity),
        Arc::new(email_transport::Transport),
        Arc::new(email_queue::Queue),
        Arc::new(sessions_storage::Storage),
        Arc::new(sessions_cookie::Cookie),
        Arc::new(sessions_lifetime::Lifetime),
        Arc::new(sessions_gc::Gc),
        Arc::new(cron_activity::Activity),
        Arc::new(fleet_drift::Drift),
        Arc::new(twofa_duo::DuoCheck),
    ]
}

/// The requests `serve` recorded in the last day while running with this configuration, or the
/// outcome to report when there are none to reason about (no database yet, or no such traffic).
async fn observed_requests(ctx: &Context) -> Result<Vec<Observation>, Outcome> {
    let accounts = ctx.accounts().await?;
    let fingerprint = ctx.loaded.fingerprint();
    match observations::recent(accounts.db(), &fingerprint).await {
        Ok(seen) if seen.is_empty() => Err(Outcome::skipped(format!(
            "no requests observed in the last day under this configuration (fingerprint {fingerprint}): `gatehouse \
             serve` stores a sample of the requests it receives every 5 s, and when it stops"
        ))),
        Ok(seen) => Ok(seen),
        Err(e) => Err(Outcome::error(format!("cannot read the request observations: {e}"))),
    }
}

/// Like [`observed_requests`], with no traffic (or no database yet) as an empty list, for checks
/// that can still judge the configuration alone.
async fn observed_requests_if_any(ctx: &Context) -> Result<Vec<Observation>, Outcome> {
    match observed_requests(ctx).await {
        Err(outcome) if outcome.status == Status::Skipped => Ok(Vec::new()),
        other => other,
    }
}

/// True for names and addresses that only this machine reaches.
fn is_local(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost") || host == "127.0.0.1" || host == "[::1]"
}

/// Counts of `key` over `items`, most frequent first, for evidence.
fn tally<T>(items: &[T], key: impl Fn(&T) -> String) -> Vec<(String, usize)> {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for item in items {
        *counts.entry(key(item)).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    counts.truncate(10);
    counts
}

/// Lists at most `limit` items for evidence, so a large deployment cannot bloat a report.
fn sample<T: Clone>(items: &[T], limit: usize) -> Vec<T> {
    items.iter().take(limit).cloned().collect()
}

/// A request as `serve` records it — on `host` over `scheme` from `peer`, with no flag set —
/// for the checks' unit tests to adjust.
#[cfg(test)]
fn request(host: &str, scheme: &str, peer: &str) -> Observation {
    let peer: std::net::IpAddr = peer.parse().expect("an IP address");
    let flags = observations::Flags::default();
    Observation::new(0, host.into(), (scheme.into(), false), peer, peer, flags, String::new())
}

#[cfg(test)]
mod tests {
    /// The file that holds a check is named after its id, so `sessions.gc` is found at once.
    #[test]
    fn every_check_lives_in_the_file_named_after_its_id() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/doctor/checks");
        for check in super::builtin() {
            let id = check.meta().id;
            let file = dir.join(format!("{}.rs", id.replace('.', "_")));
            let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{id}: {}: {e}", file.display()));
            assert!(text.contains(&format!("id: \"{id}\"")), "{id} is not defined in {}", file.display());
        }
    }

    /// Which fixes a browser may apply is the checks' own word, and it is these three: trusting
    /// CloudFlare (the seed's "Apply settings now"), collecting sessions, requeueing mail.
    #[test]
    fn the_fixes_allowed_from_the_web() {
        let mut web: Vec<&str> =
            super::builtin().iter().filter(|c| c.meta().fix_from_web).map(|c| c.meta().id).collect();
        web.sort_unstable();
        assert_eq!(web, ["email.queue", "proxy.cloudflare", "sessions.gc"]);
    }

    /// A threshold a check reads is one its Meta lists (what profiles may override): a key
    /// written differently in the two places would read the default whatever a profile says.
    #[test]
    fn every_threshold_a_check_reads_is_one_it_declares() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/doctor/checks");
        let mut read = 0;
        for check in super::builtin() {
            let meta = check.meta();
            let file = dir.join(format!("{}.rs", meta.id.replace('.', "_")));
            let text = std::fs::read_to_string(&file).expect("the check's file");
            for key in text.split("threshold(META.id, \"").skip(1).filter_map(|rest| rest.split('"').next()) {
                assert!(
                    meta.thresholds.contains(&key),
                    "{} reads threshold `{key}`, which its Meta does not list",
                    meta.id
                );
                read += 1;
            }
            for declared in meta.thresholds {
                assert!(
                    text.contains(&format!("threshold(META.id, \"{declared}\"")),
                    "{} declares threshold `{declared}` but never reads it",
                    meta.id
                );
            }
        }
        assert!(read >= 10, "the thresholds were found ({read})");
    }
}
