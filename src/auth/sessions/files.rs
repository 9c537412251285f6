//! The `files` store: one JSON file per session under `sessions.dir`, named by the key, mode
//! 0600, written to a temporary file and renamed so a reader never sees half a session.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Session, SessionData};
use crate::error::{Error, Result};

#[derive(Serialize, Deserialize)]
struct OnDisk {
    created_at: i64,
    last_seen_at: i64,
    data: SessionData,
}

fn path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("sess_{key}"))
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::SessionStore(format!("session store: cannot {what} {}: {e}", path.display()))
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::Internal(e.to_string()))?
}

fn parse(key: String, bytes: &[u8]) -> Option<Session> {
    let d: OnDisk = serde_json::from_slice(bytes).ok()?;
    Some(Session { key, created_at: d.created_at, last_seen_at: d.last_seen_at, data: d.data })
}

pub(super) async fn read(dir: &Path, key: &str) -> Result<Option<Session>> {
    let p = path(dir, key);
    match tokio::fs::read(&p).await {
        Ok(bytes) => Ok(parse(key.to_string(), &bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", &p, e)),
    }
}

/// Updates a session whose file still exists; false when it was ended meanwhile (never
/// re-created). A deletion between the check and the rename can still bring one back: the
/// files store has no transactions (the database store has no such window).
pub(super) async fn update(dir: &Path, s: &Session) -> Result<bool> {
    if !tokio::fs::try_exists(path(dir, &s.key)).await.unwrap_or(false) {
        return Ok(false);
    }
    write(dir, s).await?;
    Ok(true)
}

pub(super) async fn write(dir: &Path, s: &Session) -> Result<()> {
    let (dir, key) = (dir.to_path_buf(), s.key.clone());
    let body =
        serde_json::to_vec(&OnDisk { created_at: s.created_at, last_seen_at: s.last_seen_at, data: s.data.clone() })
            .map_err(|e| Error::Internal(e.to_string()))?;
    blocking(move || {
        let target = path(&dir, &key);
        let tmp = dir.join(format!(".tmp_{key}"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_error("write", &tmp, e))?;
        f.write_all(&body).map_err(|e| io_error("write", &tmp, e))?;
        std::fs::rename(&tmp, &target).map_err(|e| io_error("rename into", &target, e))
    })
    .await
}

pub(super) async fn delete(dir: &Path, key: &str) -> Result<()> {
    let p = path(dir, key);
    match tokio::fs::remove_file(&p).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("delete", &p, e)),
    }
}

/// Every readable session in the directory (unreadable files are skipped: they are not ours
/// or were half-written by a crashed process).
pub(super) async fn all(dir: &Path) -> Result<Vec<Session>> {
    let dir = dir.to_path_buf();
    blocking(move || {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("list", &dir, e)),
        };
        Ok(entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let key = name.strip_prefix("sess_")?.to_string();
                parse(key, &std::fs::read(e.path()).ok()?)
            })
            .collect())
    })
    .await
}

pub(super) async fn collect(dir: &Path, idle_before: i64, absolute_before: i64, batch: i64) -> Result<u64> {
    let mut removed = 0;
    for s in all(dir).await? {
        if removed >= batch as u64 {
            break;
        }
        if s.last_seen_at < idle_before || s.created_at < absolute_before {
            delete(dir, &s.key).await?;
            removed += 1;
        }
    }
    Ok(removed)
}
