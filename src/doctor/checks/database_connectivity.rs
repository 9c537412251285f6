//! `database.connectivity`: everything depends on the database.

use std::time::Instant;

use crate::config::Backend;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::{Context, DbUnavailable};
use crate::doctor::fix::Fix;
use crate::doctor::model::CheckResult;

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

    fn fix(&self, _ctx: &Context, _found: &CheckResult) -> Option<Fix> {
        Some(Fix::Migrate)
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
                        .fixable("create the SQLite database and apply the migrations");
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
            let mut outcome = Outcome::pass("");
            let mut problems = Vec::new();
            outcome = outcome
                .with("backend", db.backend())
                .with("database_url", &url)
                .with("configured_in", &origin)
                .with("latency_ms", (latency_ms * 100.0).round() / 100.0)
                .with("connect_ms", (connect_ms * 100.0).round() / 100.0)
                .with("server_version", &version);

            let warn_ms = ctx.threshold(META.id, "latency_warn_ms", 100.0);
            if latency_ms > warn_ms {
                problems.push(format!(
                    "query latency {latency_ms:.1} ms (median of {LATENCY_SAMPLES} on an open connection) exceeds {warn_ms} ms"
                ));
            }
            if db.backend() == Backend::Sqlite {
                let mode: String =
                    sqlx::query_scalar("PRAGMA journal_mode").fetch_one(db.pool()).await.unwrap_or_default();
                let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(db.pool()).await.unwrap_or(0);
                let wal_limit: i64 =
                    sqlx::query_scalar("PRAGMA journal_size_limit").fetch_one(db.pool()).await.unwrap_or(-1);
                outcome = outcome
                    .with("journal_mode", &mode)
                    .with("busy_timeout_ms", busy)
                    .with("wal_size_limit_bytes", wal_limit);
                if !mode.eq_ignore_ascii_case("wal") {
                    problems.push(format!("journal mode is {mode}, not WAL: readers block behind writers"));
                }
                if busy <= 0 {
                    problems.push("busy timeout is 0: concurrent writers fail instead of waiting".into());
                }
            }
            let status = match db.migration_status().await {
                Ok(s) => s,
                Err(e) => {
                    return outcome_as(outcome, Outcome::error(format!("cannot read the migration level: {e}")));
                }
            };
            outcome = outcome.with("migrations_applied", &status.applied).with("migration_latest", status.latest);
            if !status.is_current() {
                problems.push(format!("migrations {:?} are not applied", status.pending));
                outcome = outcome
                    .with("migrations_pending", &status.pending)
                    .fixable("apply the pending migrations (as `gatehouse migrate` does)")
                    .remediation("Run `gatehouse migrate`.");
            }
            if problems.is_empty() {
                outcome.message =
                    format!("{} answered in {latency_ms:.1} ms; schema at version {}", db.backend(), status.latest);
                outcome
            } else {
                outcome.status = crate::doctor::model::Status::Warn;
                outcome.message = problems.join("; ");
                outcome
            }
        })
    }
}

/// Keeps the evidence gathered so far on a new outcome.
fn outcome_as(gathered: Outcome, mut next: Outcome) -> Outcome {
    next.evidence = gathered.evidence;
    next
}
