//! The `sessions` table. `data` is the JSON of [`SessionData`]; `user_id` — the user the session
//! belongs to, signed in or half-way through a sign-in — is a column of its
//! own (and `admin_id`, for admin-area sessions) so listing and ending them is an indexed query.

use sqlx::Row as _;

use super::{Holder, Session, SessionData};
use crate::accounts::{MEMBERSHIPS_OF_U, USER_WITH_CLIENTS_COLUMNS, UserWithClients};
use crate::error::{Error, Result};
use crate::store::{Any, Db};

#[derive(sqlx_macros::FromRow)]
struct Row {
    key: String,
    created_at: i64,
    last_seen_at: i64,
    data: String,
}

impl Row {
    fn into_session(self) -> Result<Session> {
        let data: SessionData = serde_json::from_str(&self.data)
            .map_err(|e| Error::Internal(format!("session {}: stored data unreadable: {e}", &self.key[..16])))?;
        Ok(Session { key: self.key, created_at: self.created_at, last_seen_at: self.last_seen_at, data })
    }
}

pub(super) async fn read(db: &Db, key: &str) -> Result<Option<Session>> {
    let row: Option<Row> = sqlx::query_as("SELECT key, created_at, last_seen_at, data FROM sessions WHERE key = $1")
        .bind(key)
        .fetch_optional(db.pool())
        .await?;
    row.map(Row::into_session).transpose()
}

/// The session and, when it is signed in, its user with their clients: one query, so a page
/// view costs one round trip to the database.
pub(super) async fn read_with_user(db: &Db, key: &str) -> Result<Option<(Session, Option<UserWithClients>)>> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT s.key AS session_key, s.created_at AS session_created_at, \
             s.last_seen_at AS session_last_seen_at, s.data AS session_data, {} \
             FROM sessions s LEFT JOIN users u ON u.id = s.user_id {MEMBERSHIPS_OF_U} \
             WHERE s.key = $1",
            *USER_WITH_CLIENTS_COLUMNS
        )
    });
    let rows = sqlx::query(SQL.as_str()).bind(key).fetch_all(db.pool()).await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let session = Row {
        key: first.try_get("session_key")?,
        created_at: first.try_get("session_created_at")?,
        last_seen_at: first.try_get("session_last_seen_at")?,
        data: first.try_get("session_data")?,
    }
    .into_session()?;
    Ok(Some((session, UserWithClients::from_rows(&rows)?)))
}

pub(super) async fn insert(db: impl sqlx::Executor<'_, Database = Any>, s: &Session) -> Result<()> {
    let data = serde_json::to_string(&s.data).map_err(|e| Error::Internal(e.to_string()))?;
    sqlx::query(
        "INSERT INTO sessions (key, user_id, admin_id, created_at, last_seen_at, data) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&s.key)
    .bind(s.data.holder_user())
    .bind(s.data.holder_admin())
    .bind(s.created_at)
    .bind(s.last_seen_at)
    .bind(data)
    .execute(db)
    .await?;
    Ok(())
}

/// Updates a session that still exists; false when it was ended meanwhile (never re-created).
pub(super) async fn update(db: &Db, s: &Session) -> Result<bool> {
    let data = serde_json::to_string(&s.data).map_err(|e| Error::Internal(e.to_string()))?;
    let done =
        sqlx::query("UPDATE sessions SET user_id = $1, admin_id = $2, last_seen_at = $3, data = $4 WHERE key = $5")
            .bind(s.data.holder_user())
            .bind(s.data.holder_admin())
            .bind(s.last_seen_at)
            .bind(data)
            .bind(&s.key)
            .execute(db.pool())
            .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn touch(db: &Db, key: &str, at: i64) -> Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE key = $2").bind(at).bind(key).execute(db.pool()).await?;
    Ok(())
}

pub(super) async fn delete(db: impl sqlx::Executor<'_, Database = Any>, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE key = $1").bind(key).execute(db).await?;
    Ok(())
}

/// The sessions of a user or an admin, by their indexed column.
pub(super) async fn of(db: &Db, holder: Holder) -> Result<Vec<Session>> {
    let (column, id) = match holder {
        Holder::User(id) => ("user_id", id),
        Holder::Admin(id) => ("admin_id", id),
    };
    let sql = format!("SELECT key, created_at, last_seen_at, data FROM sessions WHERE {column} = $1");
    let rows: Vec<Row> = sqlx::query_as(crate::store::composed(sql)).bind(id).fetch_all(db.pool()).await?;
    rows.into_iter().map(Row::into_session).collect()
}

/// Deletes up to `batch` sessions begun by `begun_by` that are not the admin area's (`admins`:
/// every one).
pub(super) async fn end_batch(db: &Db, admins: bool, begun_by: i64, batch: i64) -> Result<u64> {
    let sql = match admins {
        true => "DELETE FROM sessions WHERE key IN (SELECT key FROM sessions WHERE created_at <= $1 LIMIT $2)",
        false => {
            "DELETE FROM sessions WHERE key IN \
             (SELECT key FROM sessions WHERE admin_id IS NULL AND created_at <= $1 LIMIT $2)"
        }
    };
    Ok(sqlx::query(sql).bind(begun_by).bind(batch).execute(db.pool()).await?.rows_affected())
}

pub(super) async fn collect(db: &Db, idle_before: i64, absolute_before: i64, batch: i64) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM sessions WHERE key IN (SELECT key FROM sessions WHERE last_seen_at < $1 OR created_at < $2 LIMIT $3)",
    )
    .bind(idle_before)
    .bind(absolute_before)
    .bind(batch)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

pub(super) async fn expired(db: &Db, idle_before: i64, absolute_before: i64) -> Result<(i64, Option<i64>)> {
    Ok(sqlx::query_as("SELECT COUNT(*), MIN(last_seen_at) FROM sessions WHERE last_seen_at < $1 OR created_at < $2")
        .bind(idle_before)
        .bind(absolute_before)
        .fetch_one(db.pool())
        .await?)
}
