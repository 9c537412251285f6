//! Heartbeats: each process (`web` for serve, `cron`) records who and where it is, so the doctor
//! can compare the fleet: last cron run, time zones, configuration and install directory.

use serde::Serialize;

use crate::config::Loaded;
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
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub at: i64,
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
        }
    }

    pub async fn write(&self, db: &Db) -> Result<()> {
        sqlx::query(
            "INSERT INTO heartbeats (role, host, install_dir, version, timezone, tz_env, config_fingerprint, pid, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (role, host, install_dir) DO UPDATE SET \
             version = excluded.version, timezone = excluded.timezone, tz_env = excluded.tz_env, \
             config_fingerprint = excluded.config_fingerprint, pid = excluded.pid, at = excluded.at",
        )
        .bind(self.role.as_str())
        .bind(&self.host)
        .bind(&self.install_dir)
        .bind(&self.version)
        .bind(&self.timezone)
        .bind(&self.tz_env)
        .bind(&self.config_fingerprint)
        .bind(self.pid)
        .bind(self.at)
        .execute(db.pool())
        .await?;
        Ok(())
    }
}

/// Every heartbeat, newest first.
pub async fn all(db: &Db) -> Result<Vec<Heartbeat>> {
    Ok(sqlx::query_as("SELECT * FROM heartbeats ORDER BY at DESC").fetch_all(db.pool()).await?)
}
