//! Heartbeats: each process (`web` for serve, `cron`) records who and where it is, so the doctor
//! can compare the fleet: last cron run, time zones, configuration and install directory.

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
            clock_offset_ms: None,
        }
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
                    "INSERT INTO heartbeats \
                     (role, host, install_dir, version, timezone, tz_env, config_fingerprint, pid, at, clock_offset_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, ",
                    $offset,
                    ") ON CONFLICT (role, host, install_dir) DO UPDATE SET \
                     version = excluded.version, timezone = excluded.timezone, tz_env = excluded.tz_env, \
                     config_fingerprint = excluded.config_fingerprint, pid = excluded.pid, at = excluded.at, \
                     clock_offset_ms = excluded.clock_offset_ms"
                )
            };
        }
        let sql = match db.backend() {
            Backend::Postgres => upsert!("$10 - CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"),
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
            .bind(self.at);
        if db.backend() == Backend::Postgres {
            query = query.bind(db.clock().now_ms());
        }
        query.execute(db.pool()).await?;
        Ok(())
    }
}

/// Every heartbeat, newest first.
pub async fn all(db: &Db) -> Result<Vec<Heartbeat>> {
    Ok(sqlx::query_as("SELECT * FROM heartbeats ORDER BY at DESC").fetch_all(db.pool()).await?)
}
