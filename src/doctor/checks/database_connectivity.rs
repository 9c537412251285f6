//! `database.connectivity`: everything depends on the database.

use std::time::Instant;

use crate::config::Backend;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::{Context, DbUnavailable};
use crate::doctor::fix::Fix;
use crate::store::MigrationStatus;

pub struct Connectivity;

static META: Meta = Meta {
    id: "database.connectivity",
    title: "Database reachable, schema current",
    tags: &["database"],
    symptom: "Every page errors or hangs; commands fail with database_unavailable.",
    cause: "The database server is down or unreachable, the URL or credentials are wrong, the SQLite file \
            is missing or unwritable, or migrations have not been applied.",
    next_steps: "Check database_url (gatehouse config show), that the server accepts connections from this \
                 host, and run `gatehouse migrate`.",
    thresholds: &["latency_warn_ms"],
    ..Meta::BASE
};

/// Round trips whose median is the reported query latency.
const LATENCY_SAMPLES: usize = 5;

impl Check for Connectivity {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let url = ctx.config().database_url.redacted();
            let origin = ctx.loaded.origin("database_url");
            let db = match ctx.db().await {
                Ok(db) => db,
                Err(DbUnavailable::NotCreated(file)) => {
                    return Outcome::warn(format!("the SQLite database {file} has not been created yet"))
                        .with("database_url", &url)
                        .with("configured_in", &origin)
                        .remediation("Run `gatehouse migrate` (or `gatehouse init`) to create it.")
                        .fixable(Fix::Migrate);
                }
                Err(DbUnavailable::Unreachable(e)) => {
                    return Outcome::fail(e).with("database_url", &url).with("configured_in", &origin);
                }
            };
            // Connecting and querying are measured apart: a slow connect (TLS, a cold pool, a
            // busy machine starting a backend) is not a slow database. The query latency is the
            // median of a few round trips on one established connection.
            let started = Instant::now();
            let mut conn = match db.pool().acquire().await {
                Ok(conn) => conn,
                Err(e) => return Outcome::fail(format!("cannot get a connection: {e}")).with("database_url", &url),
            };
            let connect_ms = started.elapsed().as_secs_f64() * 1000.0;
            let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
            for _ in 0..LATENCY_SAMPLES {
                let sent = Instant::now();
                if let Err(e) = sqlx::query("SELECT 1").execute(&mut *conn).await {
                    return Outcome::fail(format!("connected, but a query failed: {e}")).with("database_url", &url);
                }
                samples.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            drop(conn);
            samples.sort_by(f64::total_cmp);
            let latency_ms = samples[LATENCY_SAMPLES / 2];
            let version_sql = match db.backend() {
                Backend::Sqlite => "SELECT 'SQLite ' || sqlite_version()",
                Backend::Postgres => "SELECT version()",
            };
            let version: String = sqlx::query_scalar(version_sql).fetch_one(db.pool()).await.unwrap_or_default();
            let mut gathered = Outcome::pass("")
                .with("backend", db.backend())
                .with("database_url", &url)
                .with("configured_in", &origin)
                .with("latency_ms", (latency_ms * 100.0).round() / 100.0)
                .with("connect_ms", (connect_ms * 100.0).round() / 100.0)
                .with("server_version", &version);
            // TLS to a database on this machine protects nothing a Unix socket would not, and
            // costs every query its encryption (about a sixth of the page views here).
            let mut tls_here = false;
            let sqlite = match db.backend() {
                Backend::Postgres => {
                    let tls: bool = sqlx::query_scalar(
                        "SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), FALSE)",
                    )
                    .fetch_one(db.pool())
                    .await
                    .unwrap_or(false);
                    // The same notion of "this machine" that decides TLS and the socket.
                    let here = url::Url::parse(ctx.config().database_url.as_str())
                        .is_ok_and(|u| crate::store::names_this_machine(&u));
                    tls_here = tls && here;
                    gathered = gathered
                        .with("tls", tls)
                        .with("tls_to_this_machine", tls_here)
                        .with("unix_socket", db.unix_socket());
                    None
                }
                Backend::Sqlite => {
                    let pool = db.pool();
                    let settings = SqliteSettings {
                        journal_mode: sqlx::query_scalar("PRAGMA journal_mode")
                            .fetch_one(pool)
                            .await
                            .unwrap_or_default(),
                        busy_timeout_ms: sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(pool).await.unwrap_or(0),
                    };
                    let wal_limit: i64 =
                        sqlx::query_scalar("PRAGMA journal_size_limit").fetch_one(pool).await.unwrap_or(-1);
                    gathered = gathered
                        .with("journal_mode", &settings.journal_mode)
                        .with("busy_timeout_ms", settings.busy_timeout_ms)
                        .with("wal_size_limit_bytes", wal_limit);
                    Some(settings)
                }
            };
            let migrations = match db.migration_status().await {
                Ok(status) => status,
                Err(e) => {
                    return Outcome::error(format!("cannot read the migration level: {e}"))
                        .after_evidence(gathered.evidence);
                }
            };
            gathered =
                gathered.with("migrations_applied", &migrations.applied).with("migration_latest", migrations.latest);
            let seen = Observed { backend: db.backend(), latency_ms, sqlite, migrations, tls_here };
            judge(&seen, ctx.threshold(META.id, "latency_warn_ms", 100.0)).after_evidence(gathered.evidence)
        })
    }
}

/// What an open connection showed about the database.
struct Observed {
    backend: Backend,
    /// The median of [`LATENCY_SAMPLES`] round trips.
    latency_ms: f64,
    /// `None` on PostgreSQL.
    sqlite: Option<SqliteSettings>,
    migrations: MigrationStatus,
    /// PostgreSQL over TLS to an address of this machine.
    tls_here: bool,
}

struct SqliteSettings {
    journal_mode: String,
    busy_timeout_ms: i64,
}

/// The verdict on a database that answered: every problem found warns (a slow round trip,
/// SQLite without WAL or a busy timeout, migrations not applied).
fn judge(seen: &Observed, warn_ms: f64) -> Outcome {
    let latency_ms = seen.latency_ms;
    let mut problems = Vec::new();
    if latency_ms > warn_ms {
        problems.push(format!(
            "query latency {latency_ms:.1} ms (median of {LATENCY_SAMPLES} on an open connection) exceeds {warn_ms} ms"
        ));
    }
    if let Some(sqlite) = &seen.sqlite {
        let mode = &sqlite.journal_mode;
        if !mode.eq_ignore_ascii_case("wal") {
            problems.push(format!("journal mode is {mode}, not WAL: readers block behind writers"));
        }
        if sqlite.busy_timeout_ms <= 0 {
            problems.push("busy timeout is 0: concurrent writers fail instead of waiting".into());
        }
    }
    let migrations = &seen.migrations;
    if !migrations.is_current() {
        problems.push(format!("migrations {:?} are not applied", migrations.pending));
    }
    if problems.is_empty() {
        // Not a problem (TLS is what Debian's PostgreSQL offers by default): said, not warned.
        let tls = if seen.tls_here {
            "; the connection to this machine is TLS (the sslmode database_url names, or a server that \
             accepts nothing else), which costs every query its encryption: with no `sslmode` in \
             database_url and no PGSSLMODE, gatehouse reaches 127.0.0.1, ::1 or localhost without TLS, \
             through the server's Unix socket when it accepts database_url's user"
        } else {
            ""
        };
        return Outcome::pass(format!(
            "{} answered in {latency_ms:.1} ms; schema at version {}{tls}",
            seen.backend, migrations.latest
        ));
    }
    let outcome = Outcome::warn(problems.join("; "));
    if migrations.is_current() {
        return outcome;
    }
    outcome
        .with("migrations_pending", &migrations.pending)
        .fixable(Fix::Migrate)
        .remediation("Run `gatehouse migrate`.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::model::Status;

    fn observed(latency_ms: f64, sqlite: Option<(&str, i64)>, pending: Vec<i64>) -> Observed {
        Observed {
            backend: if sqlite.is_some() { Backend::Sqlite } else { Backend::Postgres },
            latency_ms,
            sqlite: sqlite.map(|(mode, busy)| SqliteSettings { journal_mode: mode.into(), busy_timeout_ms: busy }),
            migrations: MigrationStatus { applied: vec![1, 2], pending, latest: 9 },
            tls_here: false,
        }
    }

    #[test]
    fn a_fast_current_database_passes() {
        let outcome = judge(&observed(0.42, Some(("wal", 5000)), vec![]), 100.0);
        assert_eq!(outcome.status, Status::Pass);
        assert_eq!(outcome.message, "sqlite answered in 0.4 ms; schema at version 9");
        assert_eq!(judge(&observed(99.0, None, vec![]), 100.0).status, Status::Pass);
    }

    #[test]
    fn each_problem_warns_and_is_named() {
        let outcome = judge(&observed(150.0, Some(("delete", 0)), vec![]), 100.0);
        assert_eq!(outcome.status, Status::Warn);
        assert_eq!(
            outcome.message,
            "query latency 150.0 ms (median of 5 on an open connection) exceeds 100 ms; journal mode is delete, not \
             WAL: readers block behind writers; busy timeout is 0: concurrent writers fail instead of waiting"
        );
        assert!(outcome.fix.is_none(), "nothing here is fixed by migrating");
    }

    #[test]
    fn pending_migrations_warn_and_are_fixable() {
        let outcome = judge(&observed(1.0, None, vec![8, 9]), 100.0);
        assert_eq!(outcome.status, Status::Warn);
        assert_eq!(outcome.message, "migrations [8, 9] are not applied");
        assert_eq!(outcome.evidence["migrations_pending"], serde_json::json!([8, 9]));
        assert!(outcome.fix.is_some());
    }

    #[test]
    fn evidence_gathered_before_the_verdict_is_kept_and_comes_first() {
        let merged = Outcome::warn("w").with("b", 2).after_evidence(Outcome::pass("").with("a", 1).evidence);
        assert_eq!(merged.status, Status::Warn);
        assert_eq!(merged.evidence.keys().collect::<Vec<_>>(), ["a", "b"]);
    }
}
