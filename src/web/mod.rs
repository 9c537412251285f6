//! `gatehouse serve`: the client area and the admin area under `/admin/` (server-rendered HTML
//! forms, no JavaScript), the admin JSON API under `/api/v1/`, and the probes `/healthz`, `/readyz`, `/metrics`,
//! `/.well-known/gatehouse`. A thin face over `accounts` and `auth`.

pub(crate) mod admin;
mod api;
mod breaker;
mod context;
mod csrf;
mod form_token;
mod headers;
mod health;

mod metrics;
// Handlers return early with the page to show instead (`Result<_, Response>`); boxing every
// such response would only add noise.
#[allow(clippy::result_large_err)]
mod pages;
pub(crate) mod passkeys;
mod probes;
mod render;
pub mod server;
pub mod vendor;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware;
use tokio::net::TcpListener;

use crate::auth::duo::Duo;
use crate::auth::sessions::cookie::CookieSettings;
use crate::config::Loaded;
use crate::cron::heartbeat::{Heartbeat, Role};
use crate::error::{Error, Result};
use crate::net::client_ip::Trusted;
use crate::net::{encounters, observations};
use crate::services::Services;
use crate::store::Db;

pub use context::Ctx;

/// Everything a request handler may need; cloned per request (all fields are cheap handles).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

pub struct Inner {
    pub loaded: Loaded,
    /// Reached by name through `Deref`: `state.accounts`, `state.sessions`, `state.auth`.
    pub services: Services,
    /// The trusted proxies, replaced when the admin area applies a fix to them.
    trusted: std::sync::RwLock<Arc<Trusted>>,
    pub duo: Option<Duo>,
    pub instance_id: String,
    /// What `store::settings::storage_id` hashes with.
    storage_key: String,
    pub cookie: CookieSettings,
    pub metrics: metrics::Metrics,
    pub form_key: form_token::FormKey,
    pub observations: observations::Sample,
    /// What visitors met (unknown sessions, refusals), counted for the doctor.
    pub encounters: encounters::Tally,
    pub connections: Arc<server::Connections>,
    pub health: health::HealthCache,
    pub security_headers: headers::SecurityHeaders,
    pub breaker: breaker::Breaker,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl std::ops::Deref for Inner {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    pub async fn new(loaded: Loaded) -> Result<Self> {
        let config = &loaded.config;
        let system_url = config.system_url.url().cloned().ok_or_else(|| {
            Error::Usage(format!(
                "system_url is empty ({}): serve builds links and cookies from it; set it to the address users open",
                loaded.origin("system_url")
            ))
        })?;
        let services = Services::open(&loaded).await?;
        let db = &services.db;
        let instance_id = crate::store::settings::instance_id(db).await?;
        let storage_key = crate::store::settings::storage_key(db).await?;
        let form_key = form_token::FormKey::new(&crate::store::settings::form_key(db).await?);
        let duo = Duo::from_config(&config.twofa.duo, &system_url)?;
        let form_targets: Vec<&str> = duo.iter().map(Duo::origin).collect();
        let security_headers = headers::SecurityHeaders::new(system_url.scheme() == "https", &form_targets);
        Ok(Self {
            inner: Arc::new(Inner {
                trusted: std::sync::RwLock::new(Arc::new(Trusted::from_config(&config.trusted_proxies))),
                cookie: CookieSettings::from_system_url(&system_url),
                duo,
                instance_id,
                storage_key,
                metrics: metrics::Metrics::default(),
                form_key,
                observations: observations::Sample::new(loaded.fingerprint()),
                encounters: encounters::Tally::default(),
                connections: Arc::default(),
                health: health::HealthCache::default(),
                security_headers,
                breaker: breaker::Breaker::default(),
                services,
                loaded,
            }),
        })
    }

    pub fn db(&self) -> &Db {
        &self.services.db
    }

    /// The trusted proxies requests are judged by now.
    pub fn trusted(&self) -> Arc<Trusted> {
        self.trusted.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Takes the trusted proxies of `loaded` (a configuration just edited by a fix): who the
    /// visitor is changes with the next request, without a restart. The per-IP connection
    /// limit's exemption for proxies keeps the list serve started with until it restarts.
    pub fn adopt_trusted_proxies(&self, loaded: &Loaded) {
        let fresh = Arc::new(Trusted::from_config(&loaded.config.trusted_proxies));
        *self.trusted.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
    }
}

/// The whole application; `serve` runs it, tests run it on an ephemeral port.
pub fn router(state: AppState) -> Router {
    let body_timeout = state.loaded.config.server.body_timeout.0;
    Router::new()
        .merge(pages::routes())
        .merge(passkeys::routes())
        .merge(admin::routes())
        .nest("/api/v1", api::routes())
        .merge(probes::routes())
        .fallback(pages::not_found)
        .method_not_allowed_fallback(pages::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), context::layer))
        // A body that stops arriving ends in 408 instead of holding the handler (and its
        // connection) open; the headers are bounded by the accept loop (`server`).
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(body_timeout))
        // Outermost: a handler that panics still answers, with the 500 page, and is logged.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(render::panicked))
        // Around everything, so that no answer (a panic's 500, a timeout) leaves without them.
        .layer(middleware::from_fn_with_state(state.clone(), headers::layer))
        .with_state(state)
}

/// Serves until SIGINT/SIGTERM, then stops accepting and lets in-flight requests finish.
pub async fn serve(loaded: Loaded, listen: Option<String>) -> Result<()> {
    let addr = listen.unwrap_or_else(|| loaded.config.listen.clone());
    let state = AppState::new(loaded).await?;
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot listen on {addr}: {e} (set `listen:` or --listen)")))?;
    let local = listener.local_addr().map_err(|e| Error::Internal(e.to_string()))?;
    tracing::info!(%local, system_url = %state.loaded.config.system_url, "gatehouse serving");
    // Printed for operators and for scripts that started us on port 0.
    println!("listening on http://{local}");

    run(state, listener, shutdown_signal()).await
}

/// Serves on `listener` until `shutdown` completes, with the background tasks running.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let background = tokio::spawn(background(state.clone()));
    let memory = tokio::spawn(return_memory_when_quiet(state.clone()));
    let (limits, trusted, connections) =
        (state.loaded.config.server.clone(), (*state.trusted()).clone(), state.connections.clone());
    server::serve(listener, router(state.clone()), &limits, trusted, connections, shutdown).await;
    background.abort();
    memory.abort();
    // What was observed since the last flush would otherwise be lost with the process.
    state.flush_observations().await;
    Ok(())
}

/// The request observations stored every 5 seconds (the doctor reads them, so right after a
/// restart it still has evidence), the web heartbeat every 30, the license verified at start
/// and then whenever it is due (looked at hourly; cron does the same every run).
async fn background(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    for n in 0u64.. {
        tick.tick().await;
        if n % 6 == 0 {
            state.heartbeat().await;
            if let Err(e) = state.license.refresh().await {
                tracing::warn!(error = %e, "could not read the license memory");
            }
        }
        if n % 720 == 0 && state.license.is_configured() && (n == 0 || state.license.is_due()) {
            tokio::spawn(verify_license(state.clone()));
        }
        state.flush_observations().await;
    }
}

/// Verifies the license as the web server; the outcome is logged (and recorded for the doctor).
async fn verify_license(state: AppState) {
    if let Err(e) = state.license.verify(crate::license::Context::Web).await {
        tracing::warn!(error = %e, "cannot verify the license");
    }
}

/// Once a burst of requests is over — a 2-second tick with none — hands the memory it freed
/// back to the system, once per burst.
async fn return_memory_when_quiet(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let (mut seen, mut returned) = (0, true);
    loop {
        tick.tick().await;
        let now = state.metrics.responses();
        if now != seen {
            returned = false;
        } else if !returned {
            tokio::task::spawn_blocking(crate::system::return_free_memory);
            returned = true;
        }
        seen = now;
    }
}

impl AppState {
    /// Where this process keeps accounts and sessions now (`store::settings::storage_id`).
    pub fn storage_id(&self) -> String {
        crate::store::settings::storage_id(&self.storage_key, &self.instance_id, &self.loaded.config.storage_files())
    }

    /// Writes the web heartbeat and stores the pending request observations.
    pub async fn flush(&self) {
        self.heartbeat().await;
        self.flush_observations().await;
    }

    async fn heartbeat(&self) {
        let troubles = crate::cron::heartbeat::what_cannot_be_written(&self.loaded.config).await;
        let beat = Heartbeat::of_this_process(Role::Web, &self.loaded, self.db().now()).with_troubles(troubles);
        if let Err(e) = beat.write(self.db()).await {
            tracing::warn!(error = %e, "could not write the web heartbeat");
        }
    }

    /// Stores the pending request observations and encounter counts.
    async fn flush_observations(&self) {
        if let Err(e) = self.observations.flush(self.db()).await {
            tracing::warn!(error = %e, "could not store request observations");
        }
        if let Err(e) = self.encounters.flush(self.db()).await {
            tracing::warn!(error = %e, "could not store encounter counts");
        }
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}
