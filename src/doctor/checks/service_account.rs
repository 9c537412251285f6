//! What the accounts the running processes use can do, seen from the doctor: the doctor is
//! often run as root on one node, while `serve` and `cron` run as a service account; their
//! heartbeats name it, and a check asks whether that account can write what it needs.

use std::path::Path;

use crate::doctor::context::Context;

/// Whether an account a running process uses (named by its heartbeat) can write a folder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountWrites {
    /// The processes running as it: `web on node-a (pid 812)`.
    pub processes: Vec<String>,
    pub run_as: String,
    pub uid: i64,
    pub error: Option<String>,
    /// `tested as www-data just now` (the doctor is root), or `reported by web at …`.
    pub how: String,
}

/// For every account other than the doctor's own that a live process runs as: can it write
/// `folder` (the one configured as `what`)? Tried as that account when the doctor may (it is
/// root); otherwise as the process reported in its last heartbeat.
pub async fn service_accounts(ctx: &Context, what: &str, folder: &Path) -> Vec<AccountWrites> {
    let Ok((live, _)) = ctx.live_heartbeats().await else { return Vec::new() };
    let me = i64::from(nix::unistd::geteuid().as_raw());
    let mut found: Vec<AccountWrites> = Vec::new();
    for beat in live {
        let Some(uid) = beat.uid.filter(|uid| *uid != me) else { continue };
        let process = format!("{} on {} (pid {})", beat.role, beat.host, beat.pid);
        if let Some(known) = found.iter_mut().find(|a| a.uid == uid) {
            known.processes.push(process);
            continue;
        }
        let tested = match u32::try_from(uid) {
            Ok(raw) => crate::system::can_write_as(raw, folder).await,
            Err(_) => None,
        };
        let (error, how) = match tested {
            Some(result) => (result.err(), format!("tested as {} just now", beat.run_as)),
            None => (
                beat.troubles.0.iter().find(|t| t.what == what).map(|t| t.error.clone()),
                format!("reported by {} at {}", beat.role, crate::store::rfc3339(beat.at)),
            ),
        };
        found.push(AccountWrites { processes: vec![process], run_as: beat.run_as.clone(), uid, error, how });
    }
    found
}
