//! Embedded, per-backend schema migrations.

use std::sync::LazyLock;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

use super::Db;
use crate::config::Backend;
use crate::error::Result;

/// Embeds each migration of both trees, named as in `migrations/sqlite` and
/// `migrations/postgres`: one entry per version, so neither tree can gain one the other lacks.
/// (sqlx's `migrate!` would read the folders itself, but its proc macro is built with both
/// database drivers for the host: see Cargo.toml.)
macro_rules! embedded {
    ($($file:literal),* $(,)?) => {
        [$(Embedded {
            file: $file,
            sqlite: include_str!(concat!("../../migrations/sqlite/", $file)),
            postgres: include_str!(concat!("../../migrations/postgres/", $file)),
        }),*]
    };
}

struct Embedded {
    /// `VERSION_DESCRIPTION.sql`, as sqlx names a migration.
    file: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Embedded] = &embedded![
    "0001_accounts.sql",
    "0002_auth.sql",
    "0003_observations.sql",
    "0004_user_timezone.sql",
    "0005_heartbeat_tz.sql",
    "0006_license_checks.sql",
    "0007_observed_proxies_and_pages.sql",
    "0008_admin_sign_in.sql",
    "0009_doctor_indexes.sql",
    "0010_nodes_and_encounters.sql",
    "0011_admin_second_factor.sql",
    "0012_device_tokens.sql",
    "0013_security_notices.sql",
    "0014_passkeys.sql",
    "0015_doctor_flat.sql",
    "0016_memberships_in_client_order.sql",
    "0017_owner_not_member.sql",
];

static SQLITE: LazyLock<Migrator> = LazyLock::new(|| migrator(|m| m.sqlite));
static POSTGRES: LazyLock<Migrator> = LazyLock::new(|| migrator(|m| m.postgres));

/// The migrator for one tree, each migration made as `migrate!` makes it from its file (the
/// same version, description and checksum), so databases it migrated stay valid.
fn migrator(sql_of: fn(&Embedded) -> &'static str) -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|m| {
                let (version, description) = m.file.trim_end_matches(".sql").split_once('_').expect("VERSION_NAME.sql");
                let sql = sql_of(m);
                Migration::new(
                    version.parse().expect("a numeric version"),
                    description.replace('_', " ").into(),
                    MigrationType::Simple,
                    AssertSqlSafe(sql).into_sql_str(),
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect(),
    )
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added to either tree and not to [`MIGRATIONS`] would never run: the list is the
    /// folders' contents, in order.
    #[test]
    fn every_migration_file_of_both_trees_is_embedded() {
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.file).collect();
        for tree in ["sqlite", "postgres"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(tree);
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .expect("the migrations folder")
                .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            assert_eq!(files, listed, "migrations/{tree}");
        }
    }

    /// What `migrate!` recorded in `_sqlx_migrations` for databases migrated before: the same
    /// description and SHA-384 of the file, or `migrate` refuses them as modified. The checksum
    /// is the one a database migrated by the `migrate!` build holds; it also fails if anyone
    /// edits an applied migration instead of adding one.
    #[test]
    fn migrations_are_described_and_checksummed_as_migrate_did() {
        let first = SQLITE.iter().next().expect("a migration");
        assert_eq!((first.version, first.description.as_ref()), (1, "accounts"));
        assert_eq!(
            hex::encode_upper(first.checksum.as_ref()),
            "B91C16BD2D61CCF6632A19A0F1BFEE4FB2B7ED9A52BEB029778535D2773AF966A3AA253512BB1B348C6537453E8112F7"
        );
        let last = POSTGRES.iter().last().expect("a migration");
        assert_eq!((last.version, last.description.as_ref()), (17, "owner not member"));
    }
}
