//! Embedded, per-backend schema migrations.

use sqlx::migrate::Migrator;

use super::Db;
use crate::config::Backend;
use crate::error::Result;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// Which embedded migrations a database has applied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationStatus {
    pub applied: Vec<i64>,
    pub pending: Vec<i64>,
    pub latest: i64,
}

impl MigrationStatus {
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

impl Db {
    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        }
    }

    /// Applies every pending migration and returns the versions it applied.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        let before = self.migration_status().await?;
        self.migrator().run(&self.pool).await.map_err(|e| crate::Error::Internal(format!("migration failed: {e}")))?;
        Ok(before.pending)
    }

    /// Which embedded migrations are applied. Read-only: a database that was never migrated
    /// reports every migration as pending.
    pub async fn migration_status(&self) -> Result<MigrationStatus> {
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&self.pool)
            .await
            .or_else(|e| match e {
                // No migrations table yet: nothing applied.
                sqlx::Error::Database(_) => Ok(Vec::new()),
                other => Err(other),
            })?;
        let all: Vec<i64> = self.migrator().iter().map(|m| m.version).collect();
        let pending = all.iter().copied().filter(|v| !applied.contains(v)).collect();
        Ok(MigrationStatus { applied, pending, latest: all.last().copied().unwrap_or(0) })
    }
}
