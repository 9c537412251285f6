//! Probe endpoints for load balancers, orchestrators, monitoring and the doctor.

use axum::Router;
use axum::extract::{Query, State};
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
async fn readiness(state: &AppState) -> (bool, serde_json::Value) {
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
            created_at: crate::store::now(),
            last_seen_at: crate::store::now(),
            data: SessionData::default(),
        };
        state.auth.sessions.probe(&probe).await
    })
    .await;
    let store = within("the session store")(store);
    let ok = db.is_ok() && store.is_ok();
    let detail = json!({
        "database": db.map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
        "session_store": store.map(|()| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
    });
    (ok, detail)
}

#[derive(serde::Deserialize)]
struct ReadyQuery {
    verbose: Option<String>,
}

async fn readyz(State(state): State<AppState>, Query(q): Query<ReadyQuery>) -> Response {
    let (ok, detail) = readiness(&state).await;
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    if q.verbose.is_some() {
        (status, Json(json!({"ready": ok, "checks": detail}))).into_response()
    } else {
        (status, if ok { "ready\n" } else { "not ready\n" }).into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let (expired, _) = state.auth.sessions.expired().await.unwrap_or((0, None));
    let queue = crate::mail::stats(state.db()).await.unwrap_or_default();
    let gauges = [
        ("gatehouse_sessions_expired", "Expired sessions not yet collected.", expired as f64),
        ("gatehouse_mail_queued", "Messages waiting in the outbox.", queue.queued as f64),
        ("gatehouse_mail_failed", "Messages that failed permanently.", queue.failed as f64),
        ("gatehouse_connections_open", "Open client connections.", state.connections.open() as f64),
    ];
    let counters = [(
        "gatehouse_connections_refused_total",
        "Connections answered 503 and closed for being over a server.max_connections* limit.",
        state.connections.refused() as f64,
    )];
    let text = state.metrics.render(&counters, &gauges);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn well_known(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "instance_id": state.instance_id,
        "version": env!("CARGO_PKG_VERSION"),
        "system_url": state.loaded.config.system_url.to_string(),
    }))
}
