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
use crate::doctor::model::CheckResult;

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

    fn fix(&self, ctx: &Context, _found: &CheckResult) -> Option<Fix> {
        let paths: Vec<PathBuf> = exposed(ctx).into_iter().map(|e| e.path).collect();
        (!paths.is_empty()).then_some(Fix::RestrictPermissions(paths))
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move { judge(&exposed(ctx)) })
    }
}

/// The verdict on what others can read: nothing passes; anything warns, naming the first few.
fn judge(found: &[Exposed]) -> Outcome {
    if found.is_empty() {
        return Outcome::pass(
            "configuration, database, session files and spooled mail are private (no group or other access)",
        );
    }
    let listed: Vec<String> =
        found.iter().take(5).map(|e| format!("{} {} ({})", e.mode, e.path.display(), e.holds)).collect();
    let more = if found.len() > 5 { format!(" and {} more", found.len() - 5) } else { String::new() };
    Outcome::warn(format!("readable by other users of this machine: {}{more}", listed.join(", ")))
        .with("exposed", found)
        .fixable(format!("chmod {} file(s) to 0600 and folder(s) to 0700", found.len()))
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
        assert_eq!(judge(&[]).status, Status::Pass);
        let found: Vec<Exposed> = (0..7)
            .map(|i| Exposed { path: format!("/srv/sessions/{i}").into(), holds: "sessions.dir", mode: "0644".into() })
            .collect();
        let outcome = judge(&found);
        assert_eq!(outcome.status, Status::Warn);
        assert!(outcome.message.ends_with("0644 /srv/sessions/4 (sessions.dir) and 2 more"), "{}", outcome.message);
        assert_eq!(outcome.fix.as_deref(), Some("chmod 7 file(s) to 0600 and folder(s) to 0700"));
    }
}
