//! `disk.space`: a full disk silently stops sessions, mail spools and SQLite writes.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Backend, SessionStore};
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
use crate::doctor::model::Status;

pub struct Space;

static META: Meta = Meta {
    id: "disk.space",
    title: "Free disk space and inodes",
    tags: &["disk", "sessions"],
    symptom: "Users are logged out frequently, logins loop back to the login page, sessions or mail are not saved.",
    cause: "The filesystem holding the data directory, the session files or the database is out of space or inodes.",
    next_steps: "Free space on the filesystem named in the evidence (old logs, backups, expired sessions: \
                 `gatehouse session gc`), or move data_dir to a larger volume.",
    thresholds: &["min_free_bytes", "min_free_percent", "min_free_inodes_percent"],
    explains: &["sessions.storage", "email.queue", "database.connectivity"],
    ..Meta::BASE
};

#[derive(Debug, Serialize)]
struct Mount {
    path: String,
    used_for: Vec<&'static str>,
    free_bytes: u64,
    total_bytes: u64,
    free_percent: f64,
    free_inodes: u64,
    total_inodes: u64,
    #[serde(skip)]
    fsid: u64,
}

/// The nearest existing directory at or above `p`: what a file there will be written to.
fn existing_ancestor(p: &Path) -> PathBuf {
    let absolute = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(p) };
    absolute.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/")).to_path_buf()
}

fn measure(places: Vec<(&'static str, PathBuf)>) -> Result<Vec<Mount>, String> {
    let mut mounts: Vec<Mount> = Vec::new();
    for (used_for, path) in places {
        let at = existing_ancestor(&path);
        let st = nix::sys::statvfs::statvfs(&at).map_err(|e| format!("statvfs {}: {e}", at.display()))?;
        let fsid = st.filesystem_id() as u64;
        if let Some(m) = mounts.iter_mut().find(|m| m.fsid == fsid) {
            m.used_for.push(used_for);
            continue;
        }
        let block = st.fragment_size() as u64;
        let (free, total) = (st.blocks_available() as u64 * block, st.blocks() as u64 * block);
        mounts.push(Mount {
            path: at.display().to_string(),
            used_for: vec![used_for],
            free_bytes: free,
            total_bytes: total,
            free_percent: if total == 0 { 100.0 } else { (free as f64 * 10000.0 / total as f64).round() / 100.0 },
            free_inodes: st.files_available() as u64,
            total_inodes: st.files() as u64,
            fsid,
        });
    }
    Ok(mounts)
}

fn human(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().iec_short().to_string()
}

impl Check for Space {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let c = ctx.config();
            let mut places = vec![("data_dir", PathBuf::from(&c.data_dir))];
            if c.sessions.store == SessionStore::Files {
                places.push(("sessions.dir", PathBuf::from(&c.sessions.dir)));
            }
            if c.database_url.backend() == Backend::Sqlite
                && let Some(file) = ctx.sqlite_file()
            {
                places.push(("database", file.to_path_buf()));
            }
            places.push(("mail.spool_dir", PathBuf::from(&c.mail.spool_dir)));

            let mounts = match tokio::task::spawn_blocking(move || measure(places)).await {
                Ok(Ok(m)) => m,
                Ok(Err(e)) => return Outcome::error(e),
                Err(e) => return Outcome::error(format!("disk measurement failed: {e}")),
            };
            let limits = Limits {
                min_free: ctx.threshold(META.id, "min_free_bytes", c.doctor.disk_min_free.0 as f64) as u64,
                min_percent: ctx.threshold(META.id, "min_free_percent", c.doctor.disk_min_free_percent),
                min_inode_percent: ctx.threshold(META.id, "min_free_inodes_percent", 5.0),
            };
            judge(&mounts, &limits)
                .with("filesystems", &mounts)
                .with("min_free_bytes", limits.min_free)
                .with("min_free_percent", limits.min_percent)
                .with("min_free_inodes_percent", limits.min_inode_percent)
        })
    }
}

/// The floor under which a filesystem fails; under twice it, space (not inodes) warns.
struct Limits {
    min_free: u64,
    min_percent: f64,
    min_inode_percent: f64,
}

/// The verdict on the filesystems this deployment writes to: the worst of them decides, and
/// every filesystem below a limit is named with what it holds.
fn judge(mounts: &[Mount], limits: &Limits) -> Outcome {
    let Limits { min_free, min_percent, min_inode_percent } = *limits;
    let mut worst = Status::Pass;
    let mut problems = Vec::new();
    for m in mounts {
        let inode_percent =
            if m.total_inodes == 0 { 100.0 } else { m.free_inodes as f64 * 100.0 / m.total_inodes as f64 };
        let mut flag = |status: Status, text: String| {
            worst = worst.max(status);
            problems.push(format!("{} ({}): {text}", m.path, m.used_for.join(", ")));
        };
        if m.free_bytes < min_free || m.free_percent < min_percent {
            flag(
                Status::Fail,
                format!(
                    "{} free ({}%), below {} / {min_percent}%",
                    human(m.free_bytes),
                    m.free_percent,
                    human(min_free)
                ),
            );
        } else if m.free_bytes < min_free.saturating_mul(2) || m.free_percent < min_percent * 2.0 {
            flag(Status::Warn, format!("{} free ({}%), approaching the minimum", human(m.free_bytes), m.free_percent));
        }
        if inode_percent < min_inode_percent {
            flag(Status::Fail, format!("{} inodes free ({inode_percent:.1}%)", m.free_inodes));
        }
    }
    match worst {
        Status::Pass => Outcome::pass(
            mounts
                .iter()
                .map(|m| format!("{} free on {} ({}%)", human(m.free_bytes), m.path, m.free_percent))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Status::Warn => Outcome::warn(problems.join("; ")),
        _ => Outcome::fail(problems.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;
    const LIMITS: Limits = Limits { min_free: GIB, min_percent: 5.0, min_inode_percent: 5.0 };

    fn mount(path: &str, free_bytes: u64, free_inodes: u64) -> Mount {
        let total_bytes = 100 * GIB;
        Mount {
            path: path.into(),
            used_for: vec!["data_dir"],
            free_bytes,
            total_bytes,
            free_percent: (free_bytes as f64 * 10000.0 / total_bytes as f64).round() / 100.0,
            free_inodes,
            total_inodes: 1000,
            fsid: 0,
        }
    }

    #[test]
    fn space_under_the_floor_fails_and_under_twice_it_warns() {
        let status = |free| judge(&[mount("/srv", free, 500)], &LIMITS).status;
        assert_eq!(status(50 * GIB), Status::Pass);
        assert_eq!(status(9 * GIB), Status::Warn, "9 % free is under twice the 5 % floor");
        assert_eq!(status(4 * GIB), Status::Fail, "4 % free is under the 5 % floor");
        let tiny = Limits { min_percent: 0.0, ..LIMITS };
        assert_eq!(judge(&[mount("/srv", GIB - 1, 500)], &tiny).status, Status::Fail, "under the byte floor");
    }

    #[test]
    fn running_out_of_inodes_fails_even_with_space_free() {
        let outcome = judge(&[mount("/srv", 50 * GIB, 40)], &LIMITS);
        assert_eq!(outcome.status, Status::Fail);
        assert_eq!(outcome.message, "/srv (data_dir): 40 inodes free (4.0%)");
    }

    #[test]
    fn the_worst_filesystem_decides_and_only_the_problems_are_named() {
        let outcome = judge(&[mount("/", 50 * GIB, 500), mount("/var", 9 * GIB, 500)], &LIMITS);
        assert_eq!(outcome.status, Status::Warn);
        assert!(outcome.message.starts_with("/var (data_dir): "), "{}", outcome.message);
        assert!(!outcome.message.contains("/ ("), "{}", outcome.message);
    }
}
