//! `time.clock`: this machine's clock against an independent one — the PostgreSQL server (which
//! every node of a fleet shares) and the licensing server's `Date` header. TOTP codes live 30 s
//! with one step of tolerance, so a clock off by half a minute refuses correct codes; token and
//! session expiry drift with it too.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Backend;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome};
use crate::doctor::context::{Context, DbUnavailable};
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
    prerequisites: &["database.connectivity"],
    explains: &["twofa.duo", "license.validity"],
    thresholds: &["warn_secs", "fail_secs"],
    ..Meta::BASE
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
            // Our clock minus each reference, in seconds.
            let mut skews = BTreeMap::<&str, f64>::new();
            let mut errors = Vec::new();
            if ctx.config().database_url.backend() == Backend::Postgres {
                match database_skew(ctx).await {
                    Ok(skew) => {
                        skews.insert("database_server", skew);
                    }
                    Err(e) => errors.push(format!("database server: {e}")),
                }
            }
            if let Some(server) = ctx.config().license.server.url() {
                match date_header_skew(ctx, server).await {
                    Ok(skew) => {
                        skews.insert("licensing_server", skew);
                    }
                    Err(e) => errors.push(format!("licensing server: {e}")),
                }
            }
            // Every other process's clock, as its last heartbeat measured it against the database
            // server: the doctor on one node names a node whose clock is off.
            let nodes: Vec<(String, f64)> = match ctx.live_heartbeats().await {
                Ok((live, _)) => live
                    .iter()
                    .filter_map(|b| {
                        let offset = b.clock_offset_ms? as f64 / 1000.0;
                        Some((format!("{} on {} (pid {})", b.role, b.host, b.pid), offset))
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
            let limits = (ctx.threshold(META.id, "warn_secs", 10.0), ctx.threshold(META.id, "fail_secs", 30.0));
            judge(&skews, &nodes, &errors, limits)
        })
    }
}

/// The verdict on this clock's skew against each independent clock that could be read (our
/// clock minus theirs, in seconds) and on every running process's clock against the database
/// server's (`nodes`, from their heartbeats): the worst decides, against `(warn, fail)` seconds,
/// and every clock past `warn` is named.
fn judge(
    skews: &BTreeMap<&str, f64>,
    nodes: &[(String, f64)],
    unavailable: &[String],
    (warn, fail): (f64, f64),
) -> Outcome {
    let round = |v: f64| (v * 100.0).round() / 100.0;
    let rounded: BTreeMap<_, _> = skews.iter().map(|(k, v)| (*k, round(*v))).collect();
    let processes: BTreeMap<_, _> = nodes.iter().map(|(name, v)| (name.as_str(), round(*v))).collect();
    let base = |o: Outcome| {
        o.with("skew_secs", &rounded).with("process_offsets_secs", &processes).with("unavailable", unavailable)
    };
    if skews.is_empty() && nodes.is_empty() {
        return base(Outcome::skipped(if unavailable.is_empty() {
            "no independent clock to compare with: the database is SQLite (this machine's clock) and \
             license.server is not configured"
                .to_string()
        } else {
            format!("no independent clock could be read: {}", unavailable.join("; "))
        }));
    }
    let direction = |v: f64| if v > 0.0 { "ahead of" } else { "behind" };
    let mut off: Vec<(f64, String)> = skews
        .iter()
        .map(|(reference, v)| {
            (
                v.abs(),
                format!(
                    "this machine's clock is {:.1} s {} the {}",
                    v.abs(),
                    direction(*v),
                    reference.replace('_', " ")
                ),
            )
        })
        .chain(nodes.iter().map(|(name, v)| {
            (v.abs(), format!("{name} runs with a clock {:.1} s {} the database server's", v.abs(), direction(*v)))
        }))
        .collect();
    off.sort_by(|a, b| b.0.total_cmp(&a.0));
    let worst = off.first().map_or(0.0, |(v, _)| *v);
    let named: Vec<&str> = off.iter().filter(|(v, _)| *v >= warn).map(|(_, m)| m.as_str()).collect();
    if worst >= fail {
        base(Outcome::fail(format!(
            "{}: two-factor codes are refused and expiry times are wrong on the process(es) named",
            named.join("; ")
        )))
    } else if worst >= warn {
        base(Outcome::warn(format!("{}: approaching the 30 s two-factor tolerance", named.join("; "))))
    } else {
        let compared: Vec<String> = rounded
            .keys()
            .map(|k| k.replace('_', " "))
            .chain((!nodes.is_empty()).then(|| format!("{} running process(es)", nodes.len())))
            .collect();
        base(Outcome::pass(format!("every clock is within {worst:.1} s (compared: {})", compared.join(", "))))
    }
}

/// Skew against the PostgreSQL server's `clock_timestamp()`.
async fn database_skew(ctx: &Context) -> Result<f64, String> {
    let db = ctx.db().await.map_err(|e| match e {
        DbUnavailable::NotCreated(what) | DbUnavailable::Unreachable(what) => what,
    })?;
    let before = SystemTime::now();
    let now: f64 = sqlx::query_scalar("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)")
        .fetch_one(db.pool())
        .await
        .map_err(|e| e.to_string())?;
    Ok(skew(before, now, SystemTime::now()))
}

/// Skew against the `Date` header of `server`'s answer.
async fn date_header_skew(ctx: &Context, server: &url::Url) -> Result<f64, String> {
    let resolver = ctx.resolver().await?;
    let before = SystemTime::now();
    let trace = http::get(server, resolver, ctx.network_budget(), None).await;
    let after = SystemTime::now();
    let date =
        trace.date.as_deref().and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok()).ok_or_else(|| {
            format!("no usable Date header ({})", trace.failure().unwrap_or_else(|| "none sent".into()))
        })?;
    // A Date header has whole seconds: up to one second of the skew is its rounding.
    Ok(skew(before, date.timestamp() as f64 + 0.5, after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::model::Status;

    const LIMITS: (f64, f64) = (10.0, 30.0);

    #[test]
    fn the_worst_clock_decides_in_either_direction() {
        let status = |db: f64, license: f64| {
            judge(&BTreeMap::from([("database_server", db), ("licensing_server", license)]), &[], &[], LIMITS).status
        };
        assert_eq!(status(0.4, -9.9), Status::Pass);
        assert_eq!(status(0.4, -10.0), Status::Warn, "behind counts as much as ahead");
        assert_eq!(status(30.0, 0.0), Status::Fail, "30 s is past the one-step TOTP tolerance");
    }

    #[test]
    fn no_clock_to_compare_with_is_skipped_and_says_why() {
        let nothing = judge(&BTreeMap::new(), &[], &[], LIMITS);
        assert_eq!(nothing.status, Status::Skipped);
        assert!(nothing.message.contains("SQLite"), "{}", nothing.message);
        let down = judge(&BTreeMap::new(), &[], &["licensing server: timed out".into()], LIMITS);
        assert_eq!(down.message, "no independent clock could be read: licensing server: timed out");
    }

    #[test]
    fn one_clock_read_is_enough_to_judge() {
        let outcome =
            judge(&BTreeMap::from([("database_server", 0.123)]), &[], &["licensing server: refused".into()], LIMITS);
        assert_eq!(outcome.status, Status::Pass);
        assert_eq!(outcome.message, "every clock is within 0.1 s (compared: database server)");
        assert_eq!(outcome.evidence["skew_secs"]["database_server"], 0.12);
    }

    #[test]
    fn another_process_off_is_named_while_this_machine_is_right() {
        let nodes = [("web on node-a (pid 7)".to_string(), 0.2), ("web on node-b (pid 9)".to_string(), -95.04)];
        let outcome = judge(&BTreeMap::from([("database_server", 0.01)]), &nodes, &[], LIMITS);
        assert_eq!(outcome.status, Status::Fail);
        assert!(
            outcome.message.starts_with("web on node-b (pid 9) runs with a clock 95.0 s behind the database server's"),
            "{}",
            outcome.message
        );
        assert!(!outcome.message.contains("node-a"), "a process in step is not named: {}", outcome.message);
        assert_eq!(outcome.evidence["process_offsets_secs"]["web on node-b (pid 9)"], -95.04);
        let in_step = judge(&BTreeMap::from([("database_server", 0.01)]), &nodes[..1], &[], LIMITS);
        assert_eq!(in_step.message, "every clock is within 0.2 s (compared: database server, 1 running process(es))");
    }
}
