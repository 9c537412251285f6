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
        Box::pin(async move {
            let found = exposed(ctx);
            if found.is_empty() {
                return Outcome::pass(
                    "configuration, database, session files and spooled mail are private (no group or other access)",
                );
            }
            let listed: Vec<String> =
                found.iter().take(5).map(|e| format!("{} {} ({})", e.mode, e.path.display(), e.holds)).collect();
            let more = if found.len() > 5 { format!(" and {} more", found.len() - 5) } else { String::new() };
            Outcome::warn(format!("readable by other users of this machine: {}{more}", listed.join(", ")))
                .with("exposed", &found)
                .fixable(format!("chmod {} file(s) to 0600 and folder(s) to 0700", found.len()))
        })
    }
}
