//! Embedded, per-backend schema migrations.

use sqlx::migrate::{Migrate, Migrator};

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
        self.migrator()
            .run(&self.pool)
            .await
            .map_err(|e| crate::Error::Internal(format!("migration failed: {e}")))?;
        Ok(before.pending)
    }

    pub async fn migration_status(&self) -> Result<MigrationStatus> {
        let mut conn = self.pool.acquire().await?;
        conn.ensure_migrations_table("_sqlx_migrations")
            .await
            .map_err(|e| crate::Error::Internal(format!("cannot read migrations: {e}")))?;
        let applied: Vec<i64> = conn
            .list_applied_migrations("_sqlx_migrations")
            .await
            .map_err(|e| crate::Error::Internal(format!("cannot read migrations: {e}")))?
            .into_iter()
            .map(|m| m.version)
            .collect();
        let all: Vec<i64> = self.migrator().iter().map(|m| m.version).collect();
        let pending = all
            .iter()
            .copied()
            .filter(|v| !applied.contains(v))
            .collect();
        Ok(MigrationStatus {
            applied,
            pending,
            latest: all.last().copied().unwrap_or(0),
        })
    }
}
