//! `gatehouse licensing serve`: the vendor's licensing server. `POST /v1/verify` takes a
//! verification request and answers with the registry's verdict signed by the vendor's key;
//! `GET /healthz` says it is up. Put it behind TLS (README, "Licensing").

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use ed25519_dalek::SigningKey;
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::license::protocol::{Request, Signed};
use crate::license::vendor::Registry;

struct Vendor {
    registry: Registry,
    signing: SigningKey,
}

/// Serves until `shutdown` completes.
pub async fn serve(
    registry: Registry,
    signing: SigningKey,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let vendor = Arc::new(Vendor { registry, signing });
    let app =
        Router::new().route("/v1/verify", post(verify)).route("/healthz", get(|| async { "ok\n" })).with_state(vendor);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Internal(format!("the licensing server stopped: {e}")))
}

async fn verify(State(vendor): State<Arc<Vendor>>, Json(request): Json<Request>) -> Response {
    match vendor.registry.answer(&request).await {
        Ok(answer) => {
            tracing::info!(key_id = %answer.key_id, context = %request.context, status = %answer.status, "verification answered");
            Json(Signed::sign(&answer, &vendor.signing)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "verification failed");
            (StatusCode::SERVICE_UNAVAILABLE, "the licensing server cannot answer now\n").into_response()
        }
    }
}
