//! Heartbeats: each process (`web` for serve, `cron`) records who and where it is, so the doctor
//! can compare the fleet: last cron run, time zones, configuration and install directory, its
//! clock, the account it runs as and what that account could not write. The doctor is often run
//! as root on one node; the heartbeats tell it what every process met as itself.

use serde::Serialize;

use crate::config::{Backend, Loaded};
use crate::error::Result;
use crate::store::Db;

/// Which kind of process beats: the same kinds that verify the license (only `web` and `cron`
/// beat), so the doctor can set each verification beside its process's heartbeat.
pub use crate::license::Context as Role;

#[derive(Debug, Clone, Default, Serialize, sqlx_macros::FromRow, PartialEq)]
pub struct Heartbeat {
    pub role: Role,
    pub host: String,
    pub install_dir: String,
    pub version: String,
    pub timezone: String,
    /// The process's `TZ` environment variable as it was, when set.
    pub tz_env: Option<String>,
    pub config_fingerprint: String,
    pub pid: i64,
    /// When the process beat, by its own clock.
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub at: i64,
    /// The process's clock minus the database server's, measured as the beat was written
    /// (PostgreSQL only; SQLite has no clock apart from the writer's).
    pub clock_offset_ms: Option<i64>,
    /// The account the process runs as (`www-data`), and its uid.
    pub run_as: String,
    pub uid: Option<i64>,
    /// What the process could not write, as it found when it beat.
    pub troubles: Troubles,
}

/// A folder the process needs to write and could not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Trouble {
    /// The configuration key naming the folder: `sessions.dir`, `data_dir`, `mail.spool_dir`.
    pub what: String,
    pub path: String,
    pub error: String,
}

/// Every [`Trouble`] of a beat, stored as a JSON list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Troubles(pub Vec<Trouble>);

impl From<String> for Troubles {
    fn from(stored: String) -> Self {
        Troubles(serde_json::from_str(&stored).unwrap_or_default())
    }
}

crate::stored_as!(Troubles, String);

/// The folders this process writes in, each tried with a file it creates and removes: the
/// sessions folder (files store), the data folder, and the mail spool once it exists (delivery
/// creates it). The file has a random name and is created exclusively, never through a link or
/// into a FIFO someone left there, and a probe that does not finish in 2 s is a trouble itself:
/// whoever can write the folder cannot make the process truncate a file or wait forever.
pub async fn what_cannot_be_written(config: &crate::config::Config) -> Troubles {
    use crate::config::{MailTransport, SessionStore};
    let mut folders = vec![("data_dir", std::path::PathBuf::from(&config.data_dir))];
    if config.sessions.store == SessionStore::Files {
        folders.push(("sessions.dir", config.sessions.dir.clone().into()));
    }
    if config.mail.transport == MailTransport::Spool && std::path::Path::new(&config.mail.spool_dir).exists() {
        folders.push(("mail.spool_dir", config.mail.spool_dir.clone().into()));
    }
    let mut troubles = Vec::new();
    for (what, folder) in folders {
        let path = folder.display().to_string();
        let probe = tokio::task::spawn_blocking(move || try_write(&folder));
        let error = match tokio::time::timeout(std::time::Duration::from_secs(2), probe).await {
            Ok(Ok(Ok(()))) => continue,
            Ok(Ok(Err(e))) => e.to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "a file could not be created within 2 s".into(),
        };
        troubles.push(Trouble { what: what.into(), path, error });
    }
    Troubles(troubles)
}

/// Creates and removes a file of a random name in `folder`: exclusively (`O_EXCL`), not
/// following a link (`O_NOFOLLOW`) and without waiting on a FIFO (`O_NONBLOCK`).
fn try_write(folder: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = format!(".gatehouse-write-test-{}", crate::secrets::tokens::random().raw);
    let probe = folder.join(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// The account this process runs as, and its uid.
fn account() -> (String, i64) {
    let uid = nix::unistd::geteuid();
    let name = nix::unistd::User::from_uid(uid).ok().flatten().map(|u| u.name).unwrap_or_else(|| uid.to_string());
    (name, i64::from(uid.as_raw()))
}

impl Heartbeat {
    /// This process's heartbeat in `role`, at `at` (the database clock's now, so tests that
    /// advance it see the order of events they made).
    pub fn of_this_process(role: Role, loaded: &Loaded, at: i64) -> Self {
        let config = &loaded.config;
        let timezone = config
            .timezone
            .zone()
            .map(|z| z.name().to_string())
            .or_else(|| crate::system::effective_zone().zone)
            .unwrap_or_else(|| "unknown".into());
        let (run_as, uid) = account();
        Heartbeat {
            role,
            host: sysinfo::System::host_name().unwrap_or_else(|_| "unknown".into()),
            install_dir: loaded.install_dir(),
            version: env!("CARGO_PKG_VERSION").into(),
            timezone,
            tz_env: std::env::var("TZ").ok(),
            config_fingerprint: loaded.fingerprint(),
            pid: i64::from(std::process::id()),
            at,
            clock_offset_ms: None,
            run_as,
            uid: Some(uid),
            troubles: Troubles::default(),
        }
    }

    /// This beat with what the process could not write (see [`what_cannot_be_written`]).
    pub fn with_troubles(mut self, troubles: Troubles) -> Self {
        self.troubles = troubles;
        self
    }

    /// When the process beat by the database's clock where it is known: a node whose own clock
    /// is off is still judged live or gone by the clock every node shares.
    pub fn seen_at(&self) -> i64 {
        self.at - self.clock_offset_ms.unwrap_or(0) / 1000
    }

    /// Stores the beat. On PostgreSQL the same statement reads the server's clock and keeps this
    /// process's offset from it.
    pub async fn write(&self, db: &Db) -> Result<()> {
        // One statement per backend, the same but for how the offset is read.
        macro_rules! upsert {
            ($offset:literal) => {
                concat!(
                    "INSERT INTO heartbeats (role, host, install_dir, version, timezone, tz_env, config_fingerprint, \
                     pid, at, run_as, uid, troubles, clock_offset_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, ",
                    $offset,
                    ") ON CONFLICT (role, host, install_dir) DO UPDATE SET \
                     version = excluded.version, timezone = excluded.timezone, tz_env = excluded.tz_env, \
                     config_fingerprint = excluded.config_fingerprint, pid = excluded.pid, at = excluded.at, \
                     run_as = excluded.run_as, uid = excluded.uid, troubles = excluded.troubles, \
                     clock_offset_ms = excluded.clock_offset_ms"
                )
            };
        }
        let sql = match db.backend() {
            Backend::Postgres => upsert!("$13 - CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"),
            Backend::Sqlite => upsert!("NULL"),
        };
        let mut query = sqlx::query(sql)
            .bind(self.role.as_str())
            .bind(&self.host)
            .bind(&self.install_dir)
            .bind(&self.version)
            .bind(&self.timezone)
            .bind(&self.tz_env)
            .bind(&self.config_fingerprint)
            .bind(self.pid)
            .bind(self.at)
            .bind(&self.run_as)
            .bind(self.uid)
            .bind(serde_json::to_string(&self.troubles).unwrap_or_else(|_| "[]".into()));
        // The connection first, then this clock: the offset must not include the wait for it.
        let mut conn = db.pool().acquire().await?;
        if db.backend() == Backend::Postgres {
            query = query.bind(db.clock().now_ms());
        }
        query.execute(&mut *conn).await?;
        Ok(())
    }
}

/// Every heartbeat, newest first.
pub async fn all(db: &Db) -> Result<Vec<Heartbeat>> {
    Ok(sqlx::query_as("SELECT * FROM heartbeats ORDER BY at DESC").fetch_all(db.pool()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_probe_leaves_nothing_and_never_writes_through_what_is_there() {
        let dir = tempfile::tempdir().expect("a folder");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me").expect("written");
        try_write(dir.path()).expect("a writable folder");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("listed").flatten().map(|e| e.file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from("victim")], "the probe removes its file");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep me");
    }

    #[tokio::test]
    async fn a_spool_not_created_yet_is_not_probed_in_the_folder_above() {
        let dir = tempfile::tempdir().expect("a folder");
        let mut config = crate::config::Config { data_dir: dir.path().display().to_string(), ..Default::default() };
        config.mail.spool_dir = dir.path().join("not-yet/mail").display().to_string();
        assert_eq!(what_cannot_be_written(&config).await, Troubles::default());
        assert!(!dir.path().join("not-yet").exists());
    }
}
