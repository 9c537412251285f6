//! The two migration trees (`migrations/sqlite`, `migrations/postgres`) must build the same
//! schema: every query is written once for both, so a column on one engine only is a bug that
//! shows up on the other engine in production.

use std::collections::BTreeSet;

use gatehouse::store::Db;

use crate::support::PgSchema;

/// (table, column, nullable) for every column of every table but the migrator's own; a
/// primary key counts as not nullable whatever the engine says.
type Schema = BTreeSet<(String, String, bool)>;

async fn sqlite_schema(db: &Db) -> Schema {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    let mut schema = Schema::new();
    for table in tables {
        let columns: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT name, \"notnull\", pk FROM pragma_table_info('{table}')"
        )))
        .fetch_all(db.pool())
        .await
        .unwrap();
        for (column, not_null, pk) in columns {
            schema.insert((table.clone(), column, not_null == 0 && pk == 0));
        }
    }
    schema
}

async fn postgres_schema(db: &Db) -> Schema {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, is_nullable::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    rows.into_iter().map(|(t, c, nullable)| (t, c, nullable == "YES")).collect()
}

#[tokio::test]
async fn sqlite_and_postgresql_migrations_build_the_same_tables_and_columns() {
    let Some(schema) = PgSchema::create().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}/parity.db", dir.path().display()).parse().unwrap();
    let sqlite = Db::connect(&sqlite_url, "test").await.unwrap();
    let postgres = Db::connect(&schema.url.parse().unwrap(), "test").await.unwrap();
    assert_eq!(sqlite.migrate().await.unwrap(), postgres.migrate().await.unwrap(), "the same migration versions");

    let (lite, pg) = (sqlite_schema(&sqlite).await, postgres_schema(&postgres).await);
    assert!(lite.len() > 50, "the schema was read: {lite:?}");
    let only_sqlite: Vec<_> = lite.difference(&pg).collect();
    let only_postgres: Vec<_> = pg.difference(&lite).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "(table, column, nullable) on one engine only:\nSQLite: {only_sqlite:?}\nPostgreSQL: {only_postgres:?}"
    );
}
