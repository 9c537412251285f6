//! `disk.permissions`: the deployment's secrets readable by other users of the machine.
//!
//! The configuration holds the database password, SMTP and Duo secrets; the database holds
//! TOTP secrets and password hashes; session files and spooled mail hold session and reset
//! tokens. `gatehouse init` makes them 0600 in 0700 folders; a copy, an unpack or an editor
//! with another umask quietly makes them 0644 again.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{ConfigSource, SessionStore};
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
use crate::doctor::fix::Fix;

use super::service_account::{AccountWrites, service_accounts};

pub struct Permissions;

pub(crate) static META: Meta = Meta {
    id: "disk.permissions",
    title: "Secrets on disk readable by others",
    tags: &["disk", "security"],
    symptom: "None visible: any account on the machine can read TOTP secrets, password hashes, session \
              tokens and the database password.",
    cause: "The configuration, the database, session files or spooled mail were created or copied with a \
            permissive umask (0644 files, 0755 folders).",
    next_steps: "Make files 0600 and folders 0700, owned by the account that runs gatehouse \
                 (`gatehouse doctor --fix disk.permissions` does the chmod).",
    explains: &["sessions.storage", "email.queue"],
    ..Meta::BASE
};

/// Files looked at in each folder of many (session files, spooled mail): enough to see the
/// pattern without reading a million directory entries.
const PER_FOLDER: usize = 200;

#[derive(Debug, Clone, Serialize)]
pub struct Exposed {
    pub path: PathBuf,
    /// What it is: `configuration`, `database`, `sessions.dir`…
    pub holds: &'static str,
    /// The mode as `ls` shows it in octal, e.g. `0644`.
    pub mode: String,
}

/// Every file and folder of the deployment that group or others can read, write or enter.
pub fn exposed(ctx: &Context) -> Vec<Exposed> {
    let c = ctx.config();
    let mut places: Vec<(&'static str, PathBuf, bool)> = vec![("data_dir", PathBuf::from(&c.data_dir), false)];
    if let ConfigSource::File(file) = &ctx.loaded.source {
        places.push(("configuration", file.clone(), false));
    }
    if let Some(db) = ctx.sqlite_file() {
        for suffix in ["", "-wal", "-shm"] {
            places.push(("database", PathBuf::from(format!("{}{suffix}", db.display())), false));
        }
    }
    if c.sessions.store == SessionStore::Files {
        places.push(("sessions.dir", PathBuf::from(&c.sessions.dir), true));
    }
    places.push(("mail.spool_dir", PathBuf::from(&c.mail.spool_dir), true));

    let mut found = Vec::new();
    for (holds, path, with_files) in places {
        look(&path, holds, &mut found);
        if with_files && let Ok(entries) = std::fs::read_dir(&path) {
            for entry in entries.flatten().take(PER_FOLDER) {
                look(&entry.path(), holds, &mut found);
            }
        }
    }
    found.dedup_by(|a, b| a.path == b.path);
    found
}

fn look(path: &Path, holds: &'static str, found: &mut Vec<Exposed>) {
    // Not following links: a link's own mode means nothing, and its target is looked at
    // where it is configured.
    let Ok(meta) = std::fs::symlink_metadata(path) else { return };
    let mode = meta.permissions().mode() & 0o7777;
    if (meta.is_file() || meta.is_dir()) && mode & 0o077 != 0 {
        found.push(Exposed { path: path.to_path_buf(), holds, mode: format!("{mode:04o}") });
    }
}

impl Check for Permissions {
    fn meta(&self) -> &'static Meta {
        &META
    }

    /// Offered (see `judge`) only when no service account relies on the access it removes.
    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let data_dir = Path::new(&ctx.config().data_dir);
            let writes = service_accounts(ctx, "data_dir", data_dir).await;
            let services = running_as(ctx).await;
            // After the heartbeats were read: SQLite's -wal and -shm files, which take the
            // database's mode, exist from then on and are looked at too.
            let found = exposed(ctx);
            let relied_on = relied_on(&found, &services);
            judge(&found, &writes, &relied_on, data_dir)
        })
    }
}

/// The accounts (name, uid) the deployment's processes ran as, other than root — every
/// heartbeat however old: `--fix` is run most often while the service is stopped, and a chmod
/// then must not lock it out for when it starts again.
async fn running_as(ctx: &Context) -> Vec<(String, u32)> {
    let Ok(beats) = ctx.heartbeats().await else { return Vec::new() };
    let mut accounts: Vec<(String, u32)> = beats
        .iter()
        .filter_map(|b| Some((b.run_as.clone(), u32::try_from(b.uid?).ok()?)))
        .filter(|(_, uid)| *uid != 0)
        .collect();
    accounts.sort();
    accounts.dedup();
    accounts
}

/// Exposed paths a service account reads through the group or other bits (it does not own
/// them): making them private would lock the service out of its own files.
fn relied_on(found: &[Exposed], services: &[(String, u32)]) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for e in found {
        let Ok(meta) = std::fs::symlink_metadata(&e.path) else { continue };
        for (name, uid) in services {
            if meta.uid() != *uid {
                out.push(format!("{} (owner uid {}) is used by {name} (uid {uid})", e.path.display(), meta.uid()));
            }
        }
    }
    out
}

/// The verdict on what others can read and what the service accounts can write: a data folder
/// a service account cannot write fails; anything others can read warns, naming the first few —
/// with the chmod offered only when no service account reads those files as "other"
/// (`relied_on`), or the fix would lock the service out; then the chown comes first.
fn judge(found: &[Exposed], writes: &[AccountWrites], relied_on: &[String], data_dir: &Path) -> Outcome {
    if let Some(account) = writes.iter().find(|a| a.error.is_some()) {
        return Outcome::fail(format!(
            "{} run(s) as {} (uid {}), which cannot write the data folder {}: {} ({})",
            account.processes.join(", "),
            account.run_as,
            account.uid,
            data_dir.display(),
            account.error.as_deref().unwrap_or_default(),
            account.how
        ))
        .with("service_accounts", writes)
        .remediation(format!(
            "Give the folder to the account the service runs as: `chown -R {}: {}` (and keep it 0700).",
            account.run_as,
            data_dir.display()
        ));
    }
    if found.is_empty() {
        return Outcome::pass(
            "configuration, database, session files and spooled mail are private (no group or other access)",
        );
    }
    let listed: Vec<String> =
        found.iter().take(5).map(|e| format!("{} {} ({})", e.mode, e.path.display(), e.holds)).collect();
    let more = if found.len() > 5 { format!(" and {} more", found.len() - 5) } else { String::new() };
    let paths: Vec<PathBuf> = found.iter().map(|e| e.path.clone()).collect();
    let outcome = Outcome::warn(format!("readable by other users of this machine: {}{more}", listed.join(", ")))
        .with("exposed", found);
    if !relied_on.is_empty() {
        return outcome.with("relied_on_by_service", relied_on).remediation(format!(
            "The service reads these through their open modes, not as their owner ({}): `chown` them to the \
             account the service runs as first, then `gatehouse doctor --fix disk.permissions`.",
            relied_on.join("; ")
        ));
    }
    outcome.fixable(Fix::RestrictPermissions(paths))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::doctor::model::Status;

    #[test]
    fn a_file_others_can_read_is_found_and_a_private_one_is_not() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (open, private) = (dir.path().join("open.yaml"), dir.path().join("private.yaml"));
        for (file, mode) in [(&open, 0o644), (&private, 0o600)] {
            std::fs::write(file, "x").expect("written");
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        let mut found = Vec::new();
        look(&open, "configuration", &mut found);
        look(&private, "configuration", &mut found);
        look(&dir.path().join("missing"), "configuration", &mut found);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].mode, "0644");
    }

    #[test]
    fn the_first_five_are_named_and_the_rest_counted() {
        let data = Path::new("/srv/gatehouse-data");
        assert_eq!(judge(&[], &[], &[], data).status, Status::Pass);
        let found: Vec<Exposed> = (0..7)
            .map(|i| Exposed { path: format!("/srv/sessions/{i}").into(), holds: "sessions.dir", mode: "0644".into() })
            .collect();
        let outcome = judge(&found, &[], &[], data);
        assert_eq!(outcome.status, Status::Warn);
        assert!(outcome.message.ends_with("0644 /srv/sessions/4 (sessions.dir) and 2 more"), "{}", outcome.message);
        let all_seven = found.iter().map(|e| e.path.clone()).collect();
        assert_eq!(outcome.fix, Some(Fix::RestrictPermissions(all_seven)), "every one is fixed, not only those named");
    }

    #[test]
    fn a_chmod_that_would_lock_the_service_out_is_not_offered() {
        let data = Path::new("/srv/gatehouse-data");
        let config = Exposed { path: "/srv/gatehouse.yaml".into(), holds: "configuration", mode: "0644".into() };
        let relied = vec!["/srv/gatehouse.yaml (owner uid 0) is used by www-data (uid 33)".to_string()];
        let outcome = judge(std::slice::from_ref(&config), &[], &relied, data);
        assert_eq!(outcome.status, Status::Warn);
        assert!(outcome.fix.is_none(), "chmod 0600 would leave www-data unable to read its configuration");
        assert!(
            outcome.remediation.as_deref().unwrap_or_default().contains("`chown` them"),
            "{:?}",
            outcome.remediation
        );

        let cannot = AccountWrites {
            processes: vec!["cron on node-a (pid 9)".into()],
            run_as: "www-data".into(),
            uid: 33,
            error: Some("Permission denied".into()),
            how: "tested as www-data just now".into(),
        };
        let outcome = judge(&[], &[cannot], &[], data);
        assert_eq!(outcome.status, Status::Fail);
        assert!(outcome.message.contains("cannot write the data folder /srv/gatehouse-data"), "{}", outcome.message);
    }
}
