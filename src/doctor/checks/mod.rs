//! Built-in checks, one file per family. Each maps a symptom from the troubleshooting table to
//! its causes and puts what it observed in `evidence`.

mod accounts;
mod cloudflare;
mod cron;
mod database;
mod disk;
mod email;
mod license;
mod mail_queue;
mod proxy;
mod session_store;
mod sessions;
mod system_url;
mod time;
mod twofa;

use std::sync::Arc;

use super::check::Check;

/// Every built-in check, in report order.
pub fn builtin() -> Vec<Arc<dyn Check>> {
    vec![
        Arc::new(database::Connectivity),
        Arc::new(disk::Space),
        Arc::new(time::TimeZone),
        Arc::new(system_url::Config),
        Arc::new(proxy::Trusted),
        Arc::new(cloudflare::Trust),
        Arc::new(accounts::Integrity),
        Arc::new(accounts::PasswordHashes),
        Arc::new(license::Connectivity),
        Arc::new(email::Transport),
        Arc::new(mail_queue::Queue),
        Arc::new(session_store::Storage),
        Arc::new(sessions::Gc),
        Arc::new(cron::Activity),
        Arc::new(twofa::DuoCheck),
    ]
}

/// Lists at most `limit` items for evidence, so a large deployment cannot bloat a report.
fn sample<T: Clone>(items: &[T], limit: usize) -> Vec<T> {
    items.iter().take(limit).cloned().collect()
}
