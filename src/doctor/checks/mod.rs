//! Built-in checks, one file per family. Each maps a symptom from the troubleshooting table to
//! its causes and puts what it observed in `evidence`.

mod accounts;
mod admin_roles;
mod clock;
mod cloudflare;
mod cron;
mod database;
mod disk;
mod disk_permissions;
mod email;
mod license;
mod lockouts;
mod mail_queue;
mod observed_requests;
mod proxy;
mod session_cookie;
mod session_lifetime;
mod session_store;
mod sessions;
mod system_url;
mod system_url_reachable;
mod time;
mod twofa;

use std::sync::Arc;

use super::check::{Check, Outcome};
use super::context::Context;
use super::model::Status;
use crate::net::observations::{self, Observation};

/// Every built-in check, in report order.
pub fn builtin() -> Vec<Arc<dyn Check>> {
    vec![
        Arc::new(database::Connectivity),
        Arc::new(disk::Space),
        Arc::new(disk_permissions::Permissions),
        Arc::new(time::TimeZone),
        Arc::new(clock::Clock),
        Arc::new(system_url::Config),
        Arc::new(system_url_reachable::Reachable),
        Arc::new(observed_requests::Requests),
        Arc::new(proxy::Trusted),
        Arc::new(cloudflare::Trust),
        Arc::new(lockouts::ProxyLockouts),
        Arc::new(accounts::Integrity),
        Arc::new(accounts::PasswordHashes),
        Arc::new(admin_roles::Roles),
        Arc::new(license::Connectivity),
        Arc::new(email::Transport),
        Arc::new(mail_queue::Queue),
        Arc::new(session_store::Storage),
        Arc::new(session_cookie::Cookie),
        Arc::new(session_lifetime::Lifetime),
        Arc::new(sessions::Gc),
        Arc::new(cron::Activity),
        Arc::new(twofa::DuoCheck),
    ]
}

/// The requests `serve` recorded in the last day while running with this configuration, or the
/// outcome to report when there are none to reason about (no database yet, or no such traffic).
async fn observed_requests(ctx: &Context) -> Result<Vec<Observation>, Outcome> {
    let accounts = ctx.accounts().await?;
    let fingerprint = crate::cron::heartbeat::fingerprint(&ctx.loaded);
    match observations::recent(accounts.db(), &fingerprint).await {
        Ok(seen) if seen.is_empty() => Err(Outcome::skipped(format!(
            "no requests observed in the last day under this configuration (fingerprint {fingerprint}): `gatehouse \
             serve` stores a sample of the requests it receives every 30 s"
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
