//! Storage: one connection pool over SQLite (the default) or PostgreSQL.
//!
//! Every query is written once, in SQL both engines accept (`$N` placeholders, integers for
//! flags and Unix-second timestamps), and runs through sqlx's `Any` driver — so each service
//! behaves the same on both backends by construction. Schema differences live only in the
//! per-backend migrations embedded in the binary.

mod clock;
mod column;
mod local_postgres;
mod migrations;
pub mod settings;

use std::path::Path;
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection, Executor};

pub use clock::Clock;
pub use local_postgres::names_this_machine;
pub use migrations::MigrationStatus;
pub use sqlx::{Any, AnyConnection, Transaction};

use crate::config::{Backend, DatabaseUrl};
use crate::error::{Error, Result};

/// How long a SQLite connection waits for a lock held by another writer before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;
/// The size SQLite truncates its write-ahead log to after a checkpoint.
const SQLITE_WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;
/// How long to wait for the database server to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A pooled connection idle this long is pinged before it is handed out again (a database
/// restart or a proxy's idle cut leaves it dead); one used more recently is taken as alive.
const PING_AFTER_IDLE: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    clock: Clock,
    /// The Unix socket connections go through, when PostgreSQL on this machine is reached so.
    socket: Option<String>,
}

impl Db {
    /// Opens a database that must already exist: every command but `init`, `migrate` and
    /// `doctor --fix` uses this, so one run in the wrong folder never leaves a stray empty
    /// database behind. A missing SQLite file is refused naming it and how to point at the right
    /// deployment (a PostgreSQL database is never created by connecting anyway).
    pub async fn open_existing(loaded: &crate::config::Loaded) -> Result<Db> {
        let url = &loaded.config.database_url;
        if let Some(file) = url.sqlite_path().filter(|_| url.backend() == Backend::Sqlite)
            && !Path::new(file).exists()
        {
            let message = match &loaded.source {
                crate::config::ConfigSource::Embedded => format!(
                    "no deployment found here: no gatehouse.yaml in this directory and no --config or \
                     GATEHOUSE_CONFIG, and no database at {file}. Name the deployment with --config FILE or \
                     GATEHOUSE_CONFIG=FILE, or create one with `gatehouse init`"
                ),
                source => format!(
                    "the SQLite database {file} (database_url from {}) does not exist; create it with \
                     `gatehouse --config {source} migrate`, or fix database_url",
                    loaded.origin("database_url")
                ),
            };
            return Err(Error::Usage(message));
        }
        Self::connect(url, loaded.origin("database_url")).await
    }

    /// Opens the database; a SQLite file and its directory are created on first use.
    /// `origin` says where the URL was configured, for the error message.
    pub async fn connect(url: &DatabaseUrl, origin: impl std::fmt::Display) -> Result<Db> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let backend = url.backend();
        let mut raw = url.as_str().to_string();
        if backend == Backend::Postgres {
            let (for_driver, ignored) = url.for_postgres_driver();
            for parameter in ignored {
                tracing::warn!(%parameter, "database_url parameter not supported by the PostgreSQL driver; ignored (its value is not logged)");
            }
            raw = for_driver;
        }
        if backend == Backend::Sqlite {
            if let Some(parent) = url.sqlite_path().and_then(|p| Path::new(p).parent())
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Error::Unavailable(format!(
                        "cannot create database directory {} (database_url from {origin}): {e}",
                        parent.display()
                    ))
                })?;
            }
            if !raw.contains("mode=") {
                raw.push_str(if raw.contains('?') { "&mode=rwc" } else { "?mode=rwc" });
            }
        }
        let unavailable = |e: sqlx::Error| {
            Error::Unavailable(format!(
                "cannot open database {} (database_url from {origin}): {}",
                url.redacted(),
                one_line(&e)
            ))
        };
        // One direct connection first: the pool would retry a refused connection until its
        // acquire timeout and then report only "timed out", hiding the cause.
        let probe = |options: AnyConnectOptions| async move {
            let connection = tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect_with(&options))
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
            connection.close().await?;
            Ok::<_, sqlx::Error>(options)
        };
        let options = AnyConnectOptions::from_str(&raw).map_err(unavailable)?;
        let plain = match backend {
            // The driver also reads `PGSSLMODE`: an operator who set it chose too.
            Backend::Postgres => local_postgres::plain_on_loopback(&raw, std::env::var_os("PGSSLMODE").is_some()),
            Backend::Sqlite => None,
        };
        let mut socket = None;
        let options = match plain {
            // A server that accepts only TLS says so; then TLS it is (what `sslmode=allow`
            // means, which sqlx reads as `disable`).
            Some(plain) => {
                let tcp = match probe(AnyConnectOptions::from_str(&plain).map_err(unavailable)?).await {
                    // 28000: no pg_hba.conf line lets this connection in (here: not without
                    // TLS); the message itself is in the server's language.
                    Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("28000") => {
                        probe(options).await
                    }
                    answered => answered,
                }
                .map_err(unavailable)?;
                let (options, chosen) = local_postgres::prefer_socket(&plain, tcp).await;
                socket = chosen;
                options
            }
            None => probe(options).await.map_err(unavailable)?,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                // PostgreSQL works a query per connection: more connections than it has cores to
                // run them only queue inside the server. Measured on 2 cores with the database on
                // them (`cargo bench --bench serve`): 16 connections 4,890 page views/s (p99
                // 19.8 ms), 6 → 5,401 (16.1 ms), 4 → 5,553 (17.0 ms). 2 × cores + 1, at least 4.
                Backend::Postgres => (2 * cores() + 1).max(4),
            })
            .acquire_timeout(CONNECT_TIMEOUT)
            // A connection still inside a transaction is never handed out again. SQLite rolls a
            // transaction back by itself on some errors (SQLITE_FULL, SQLITE_IOERR); sqlx's
            // ROLLBACK then fails and its depth counter stays at 1, so every later `begin` on
            // that connection failed ("non-zero transaction depth") until a restart. By the
            // time a connection is acquired again sqlx has flushed any pending rollback, so one
            // still "in a transaction" here is stuck: close it and open a fresh one.
            //
            // sqlx's own liveness test pings every connection on every acquire: one more round
            // trip to the database (or SQLite's worker thread) per query, a third of a page
            // view's cost. A connection in use moments ago is alive; only one that sat idle is
            // pinged, and a dead one is dropped for a fresh one.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if conn.is_in_transaction() {
                        return Ok(false);
                    }
                    Ok(meta.idle_for < PING_AFTER_IDLE || conn.ping().await.is_ok())
                })
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed during a write; foreign keys are off by
                        // default in SQLite and the ownership rule depends on them. Without a
                        // journal size limit a write burst leaves the WAL file at its largest
                        // forever (526 MB after 10 s of load); with it, each checkpoint
                        // truncates the file back to the limit.
                        let pragmas = format!(
                            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                             PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA synchronous = NORMAL; \
                             PRAGMA journal_size_limit = {SQLITE_WAL_LIMIT_BYTES};"
                        );
                        conn.execute(composed(pragmas)).await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        Ok(Db { pool, backend, clock: Clock::default(), socket })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The Unix socket connections go through, when PostgreSQL on this machine is reached so
    /// (database_url names it over TCP; see `local_postgres`).
    pub fn unix_socket(&self) -> Option<&str> {
        self.socket.as_deref()
    }

    /// The time expiries are judged by (see [`Clock`]).
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// This database with another clock (the doctor judging a running server's data by the
    /// server's time).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front (`BEGIN
    /// IMMEDIATE`) so two concurrent writers queue on the busy timeout instead of one failing
    /// when it upgrades a read lock.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Renders a Unix-second timestamp as RFC 3339 (UTC) for output.
pub fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Serializes a Unix-second timestamp column as RFC 3339, the form every output uses.
pub fn serialize_ts<S: serde::Serializer>(ts: &i64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ts))
}

/// As [`serialize_ts`], for a nullable column.
pub fn serialize_opt_ts<S: serde::Serializer>(ts: &Option<i64>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match ts {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// `$from, …, $to`: the placeholders of an `IN (…)` list.
pub fn placeholders(range: std::ops::RangeInclusive<usize>) -> String {
    range.map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Marks SQL assembled at run time from this crate's own constants (column lists, `$N`
/// placeholders) as safe; values are always bound, never formatted in.
pub fn composed(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

/// True when `e` is a unique-constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// True when `e` is a foreign-key violation (reported at commit for deferred keys).
pub fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

/// The first line of an error's message; driver errors can span several.
fn one_line(e: &sqlx::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// The cores this process may run on.
fn cores() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| n.get() as u32)
}
