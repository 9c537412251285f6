//! `time.clock`: this machine's clock against an independent one — the PostgreSQL server (which
//! every node of a fleet shares) and the licensing server's `Date` header. TOTP codes live 30 s
//! with one step of tolerance, so a clock off by half a minute refuses correct codes; token and
//! session expiry drift with it too.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Backend;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::Context;
use crate::net::http;

pub struct Clock;

static META: Meta = Meta {
    id: "time.clock",
    title: "Clock in step",
    tags: &["time", "twofa"],
    symptom: "Correct two-factor codes are refused; sessions and reset links expire early or late; timezone issues.",
    cause: "This machine's clock drifts from real time (no NTP, a paused VM), so TOTP steps, expiry times and the \
            license check disagree with everyone else.",
    next_steps: "Run time synchronisation (chrony or systemd-timesyncd) on every machine of the deployment.",
    prerequisites: &[],
    thresholds: &["warn_secs", "fail_secs"],
};

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64()
}

/// Our clock minus the reference, with the reference read at the middle of the round trip.
fn skew(before: SystemTime, reference: f64, after: SystemTime) -> f64 {
    (unix_secs(before) + unix_secs(after)) / 2.0 - reference
}

impl Check for Clock {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            let mut references = serde_json::Map::new();
            let mut errors = Vec::new();
            if ctx.config().database_url.backend() == Backend::Postgres {
                match ctx.db().await {
                    Ok(db) => {
                        let before = SystemTime::now();
                        let now = sqlx::query_scalar::<_, f64>(
                            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)",
                        )
                        .fetch_one(db.pool())
                        .await;
                        match now {
                            Ok(now) => {
                                references
                                    .insert("database_server".into(), skew(before, now, SystemTime::now()).into());
                            }
                            Err(e) => errors.push(format!("database server: {e}")),
                        }
                    }
                    Err(e) => errors.push(format!("database server: {e:?}")),
                }
            }
            if let Some(server) = ctx.config().license.server.url() {
                match ctx.resolver().await {
                    Ok(resolver) => {
                        let before = SystemTime::now();
                        let trace = http::get(server, resolver, ctx.network_budget(), None).await;
                        let date = trace.date.as_deref().and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok());
                        match date {
                            // A Date header has whole seconds: up to one second of the skew is its rounding.
                            Some(d) => {
                                let reference = d.timestamp() as f64 + 0.5;
                                references.insert(
                                    "licensing_server".into(),
                                    skew(before, reference, SystemTime::now()).into(),
                                );
                            }
                            None => errors.push(format!(
                                "licensing server: no usable Date header ({})",
                                trace.failure().unwrap_or_else(|| "none sent".into())
                            )),
                        }
                    }
                    Err(e) => errors.push(format!("licensing server: {e}")),
                }
            }
            let worst = references.values().filter_map(serde_json::Value::as_f64).map(f64::abs).fold(0.0, f64::max);
            let rounded: serde_json::Map<_, _> = references
                .iter()
                .map(|(k, v)| (k.clone(), ((v.as_f64().unwrap_or(0.0) * 100.0).round() / 100.0).into()))
                .collect();
            let base = |o: Outcome| o.with("skew_secs", &rounded).with("unavailable", &errors);
            if references.is_empty() {
                return base(Outcome::skipped(if errors.is_empty() {
                    "no independent clock to compare with: the database is SQLite (this machine's clock) and \
                     license.server is not configured"
                        .to_string()
                } else {
                    format!("no independent clock could be read: {}", errors.join("; "))
                }));
            }
            let (warn, fail) = (ctx.threshold(META.id, "warn_secs", 10.0), ctx.threshold(META.id, "fail_secs", 30.0));
            let message = format!("this clock is {worst:.1} s off");
            if worst >= fail {
                base(Outcome::fail(format!("{message}: two-factor codes are refused and expiry times are wrong")))
            } else if worst >= warn {
                base(Outcome::warn(format!("{message}: approaching the 30 s two-factor tolerance")))
            } else {
                base(Outcome::pass(format!(
                    "{message} (compared with {})",
                    rounded.keys().cloned().collect::<Vec<_>>().join(", ")
                )))
            }
        })
    }
}
