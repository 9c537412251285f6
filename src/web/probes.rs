//! Probe endpoints for load balancers, orchestrators, monitoring and the doctor.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;
use crate::auth::sessions::{Session, SessionData};

/// How long each readiness probe may take; `/readyz` answers within about twice this.
const PROBE_DEADLINE: std::time::Duration = std::time::Duration::from_millis(900);

/// The routes machines call (load balancers, monitors, the doctor): not visitor traffic, so they
/// are left out of the request observations the doctor reasons about.
pub const PATHS: [&str; 5] = ["/healthz", "/livez", "/readyz", "/metrics", "/.well-known/gatehouse"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        // The name Kubernetes' liveness probes use: alive, whatever the database does.
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/.well-known/gatehouse", get(well_known))
}

/// Ready when the database answers and the session store can write, read back and delete a
/// probe session: a store that cannot persist sessions is the "login loops back" failure.
async fn readiness(state: &AppState) -> [(&'static str, Result<(), String>); 2] {
    // Each probe within its own deadline: a database that is down must make the answer "not
    // ready" at once, not after the pool's connect timeout (an orchestrator's probe gives up
    // long before, and a probe that hangs reads as a hung process).
    let within = |what: &'static str| {
        move |r: Result<crate::Result<()>, tokio::time::error::Elapsed>| {
            r.unwrap_or_else(|_| {
                Err(crate::Error::Unavailable(format!("{what} did not answer within {PROBE_DEADLINE:?}")))
            })
        }
    };
    let db = tokio::time::timeout(PROBE_DEADLINE, async {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(state.db().pool())
            .await
            .map(|_| ())
            .map_err(crate::Error::from)
    })
    .await;
    let db = within("the database")(db);
    let store = tokio::time::timeout(PROBE_DEADLINE, async {
        let probe = Session {
            key: format!("readyz-{}", crate::secrets::tokens::random().hash),
            created_at: state.db().now(),
            last_seen_at: state.db().now(),
            data: SessionData::default(),
        };
        state.sessions.probe(&probe).await
    })
    .await;
    let store = within("the session store")(store);
    [("database", db.map_err(|e| e.to_string())), ("session_store", store.map_err(|e| e.to_string()))]
}

/// `/readyz`, as Kubernetes' own probes answer: `ready`; with `?verbose` one `[+]name ok` /
/// `[-]name failed: why` line per check and a verdict line; `?exclude=NAME` (repeatable)
/// leaves a check out of the verdict; `?format=json` the same as JSON.
async fn readyz(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let has = |key: &str| params.iter().any(|(k, _)| k == key);
    let excluded: Vec<&str> = params.iter().filter(|(k, _)| k == "exclude").map(|(_, v)| v.as_str()).collect();
    let checks = readiness(&state).await;
    let ok = checks.iter().all(|(name, r)| r.is_ok() || excluded.contains(name));
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    if params.iter().any(|(k, v)| k == "format" && v == "json") {
        let detail: serde_json::Map<String, serde_json::Value> = checks
            .iter()
            .map(|(name, r)| {
                (name.to_string(), json!(r.as_ref().map(|()| "ok".to_string()).unwrap_or_else(Clone::clone)))
            })
            .collect();
        return (status, Json(json!({"ready": ok, "checks": detail, "excluded": excluded}))).into_response();
    }
    if !has("verbose") {
        return (status, if ok { "ready\n" } else { "not ready\n" }).into_response();
    }
    let mut text = String::new();
    for (name, result) in &checks {
        let skipped = if excluded.contains(name) { " excluded:" } else { "" };
        match result {
            Ok(()) => text += &format!("[+]{name}{skipped} ok\n"),
            Err(why) => text += &format!("[-]{name}{skipped} failed: {why}\n"),
        }
    }
    let unknown: Vec<&&str> = excluded.iter().filter(|e| !checks.iter().any(|(n, _)| n == *e)).collect();
    if !unknown.is_empty() {
        text += &format!("warn: some checks cannot be excluded: no matches for {unknown:?}\n");
    }
    text += if ok { "readyz check passed\n" } else { "readyz check failed\n" };
    (status, text).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let db = state.db();
    let (expired, _) = state.sessions.expired().await.unwrap_or((0, None));
    let queue = crate::mail::stats(db).await.unwrap_or_default();
    let now = db.now();
    let lockouts = state.auth.lockouts().await.map(|c| c.iter().filter(|c| c.locked).count()).unwrap_or(0);
    let cron = crate::cron::heartbeat::all(db)
        .await
        .ok()
        .and_then(|b| b.into_iter().find(|b| b.role == crate::cron::heartbeat::Role::Cron));
    let scraped = super::metrics::Scraped {
        sessions_expired: expired,
        mail_queued: queue.queued,
        mail_failed: queue.failed,
        mail_oldest_age_seconds: queue.oldest_queued_at.map_or(0, |at| (now - at).max(0)),
        lockouts_active: lockouts as i64,
        connections_open: state.connections.open() as i64,
        connections_refused: state.connections.refused(),
        cron_last_run: cron.map(|b| b.at),
    };
    ([(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)], state.metrics.render(&scraped)).into_response()
}

async fn well_known(State(state): State<AppState>) -> impl IntoResponse {
    // Never from a cache: the doctor compares what each node says now.
    let answer = json!({
        "instance_id": state.instance_id,
        "storage_id": state.storage_id(),
        "version": env!("CARGO_PKG_VERSION"),
        "system_url": state.loaded.config.system_url.to_string(),
    });
    ([(header::CACHE_CONTROL, "no-store")], Json(answer))
}
