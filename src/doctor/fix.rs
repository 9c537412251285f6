//! Automatic fixes for `gatehouse doctor --fix`. Only changes that are safe to make unattended
//! are offered; each says exactly what it will change (a diff for configuration edits), and
//! anything rewritten is backed up first.

use std::path::{Path, PathBuf};

use super::context::Context;
use super::model::CheckResult;
use crate::store::Db;

/// A fix ready to describe or apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Create the database if needed and apply the pending migrations.
    Migrate,
    /// Delete the expired sessions now, in batches.
    CollectSessions,
    /// Put failed outgoing messages back in the queue.
    RequeueMail,
    /// Create the missing session directory (mode 0700).
    CreateSessionDir(PathBuf),
    /// Make these files 0600 and folders 0700.
    RestrictPermissions(Vec<PathBuf>),
    /// Rewrite one top-level scalar of the configuration file in place.
    SetConfig { file: PathBuf, line: usize, column: usize, key: String, value: String },
}

/// The fix for a result, when its check offers one and it can be applied here.
pub fn plan(result: &CheckResult, ctx: &Context) -> Option<Fix> {
    if !result.fix.available || result.status.severity() == 0 {
        return None;
    }
    super::checks::builtin().into_iter().find(|c| c.meta().id == result.id)?.fix(ctx)
}

impl Fix {
    /// What the fix changes, in full: for a configuration edit, the diff.
    pub fn describe(&self, ctx: &Context) -> String {
        match self {
            Fix::Migrate => format!(
                "create the database {} if it does not exist and apply the pending migrations",
                ctx.config().database_url.redacted()
            ),
            Fix::CollectSessions => "delete the expired sessions now, 1,000 per statement".into(),
            Fix::CreateSessionDir(dir) => format!("create the session directory {} with mode 0700", dir.display()),
            Fix::RequeueMail => "put the failed messages back in the outbox for the next `gatehouse cron`".into(),
            Fix::RestrictPermissions(paths) => format!(
                "chmod 0600 (files) / 0700 (folders): {}",
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
            Fix::SetConfig { file, line, key, value, .. } => match self.edited(file) {
                Ok((old, new)) => format!(
                    "set {key} to {value} in {} (a backup is kept)\n--- {file}:{line}\n-{old}\n+{new}",
                    file.display(),
                    file = file.display()
                ),
                Err(e) => format!("cannot plan the edit of {}: {e}", file.display()),
            },
        }
    }

    /// The changed line of a configuration edit: (old, new).
    fn edited(&self, file: &Path) -> Result<(String, String), String> {
        let Fix::SetConfig { line, column, value, .. } = self else { return Err("not a configuration edit".into()) };
        let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
        let old = text.lines().nth(line - 1).ok_or("the line is gone")?.to_string();
        let start = old.char_indices().nth(column - 1).map(|(i, _)| i).ok_or("the column is gone")?;
        let rest = &old[start..];
        let end = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].find(q).map(|i| i + 2).ok_or("unterminated quoted value")?,
            _ => rest.find(" #").unwrap_or(rest.len()),
        };
        let quoted = serde_json::to_string(value).expect("strings serialize");
        let new = format!("{}{quoted}{}", &old[..start], &rest[end..]);
        Ok((old, new))
    }

    /// Applies the fix and says what was done.
    pub async fn apply(&self, ctx: &Context) -> Result<String, String> {
        match self {
            Fix::Migrate => {
                let config = ctx.config();
                let db = Db::connect(&config.database_url, ctx.loaded.origin("database_url"))
                    .await
                    .map_err(|e| e.to_string())?;
                let applied = db.migrate().await.map_err(|e| e.to_string());
                db.close().await;
                Ok(format!("applied migrations {:?}", applied?))
            }
            Fix::CollectSessions => {
                let accounts = ctx.accounts().await.map_err(|o| o.message)?;
                let sessions = crate::auth::sessions::Sessions::from_config(ctx.config(), accounts.db());
                let removed = sessions.collect_all(crate::cron::GC_BATCH).await.map_err(|e| e.to_string())?;
                Ok(format!("removed {removed} expired session(s)"))
            }
            Fix::CreateSessionDir(dir) => {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                Ok(format!("created {}", dir.display()))
            }
            Fix::RequeueMail => {
                let accounts = ctx.accounts().await.map_err(|o| o.message)?;
                let n = crate::mail::requeue_failed(accounts.db()).await.map_err(|e| e.to_string())?;
                Ok(format!("requeued {n} message(s)"))
            }
            Fix::RestrictPermissions(paths) => {
                use std::os::unix::fs::PermissionsExt;
                for path in paths {
                    let dir = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.is_dir();
                    let mode = if dir { 0o700 } else { 0o600 };
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                        .map_err(|e| format!("cannot chmod {}: {e}", path.display()))?;
                }
                Ok(format!("made {} path(s) private to their owner", paths.len()))
            }
            Fix::SetConfig { file, line, key, value, .. } => {
                let (old, new) = self.edited(file)?;
                let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
                let mut lines: Vec<&str> = text.lines().collect();
                debug_assert_eq!(lines[line - 1], old);
                lines[line - 1] = &new;
                let mut rewritten = lines.join("\n");
                if text.ends_with('\n') {
                    rewritten.push('\n');
                }
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
                let backup = PathBuf::from(format!("{}.bak-{stamp}", file.display()));
                std::fs::copy(file, &backup).map_err(|e| format!("cannot back up {}: {e}", file.display()))?;
                // Write beside the file and rename, so a crash never leaves half a config.
                let tmp = PathBuf::from(format!("{}.tmp-{stamp}", file.display()));
                std::fs::write(&tmp, rewritten).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
                std::fs::rename(&tmp, file).map_err(|e| format!("cannot replace {}: {e}", file.display()))?;
                Ok(format!("set {key} to {value} in {}; the previous file is {}", file.display(), backup.display()))
            }
        }
    }
}
