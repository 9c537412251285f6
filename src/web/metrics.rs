//! `/metrics`, in the OpenMetrics text format through `prometheus-client`: what the server
//! counts as it goes (responses, latency by route pattern, login outcomes) and what it reads at
//! scrape time (sessions awaiting collection, the mail queue, lockouts, connections, the last
//! cron run). Routes are patterns (`/password/reset/{token}`), never raw paths: a label per
//! token would leak secrets and grow without end.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The content type of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

/// The method's name, for a label: the standard ones, and `OTHER` for the rest (so a client
/// inventing methods cannot grow the label set).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The route pattern as a `&'static str`: there are as many as the router has routes, each
/// kept once, so recording a request allocates nothing.
fn interned(route: &str) -> &'static str {
    static ROUTES: std::sync::RwLock<Vec<&'static str>> = std::sync::RwLock::new(Vec::new());
    if let Some(known) = ROUTES.read().unwrap_or_else(|p| p.into_inner()).iter().find(|r| **r == route) {
        return known;
    }
    let mut routes = ROUTES.write().unwrap_or_else(|p| p.into_inner());
    if let Some(known) = routes.iter().find(|r| **r == route) {
        return known;
    }
    let leaked: &'static str = Box::leak(route.to_string().into_boxed_str());
    routes.push(leaked);
    leaked
}

/// How a password login ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum LoginOutcome {
    /// Password accepted (a second factor may still be owed).
    ok,
    /// Wrong email or password, or locked out: one answer for all.
    refused,
    /// Every client of the user is closed.
    closed,
    /// Refused unseen: the address's share of the password-hashing threads was full (429).
    busy,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: LoginOutcome,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_buckets() -> Histogram {
    // 0.5 ms … 4 s, doubling.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

pub struct Metrics {
    registry: Registry,
    responses: Family<ClassLabel, Counter>,
    latency: Latency,
    logins: Family<OutcomeLabel, Counter>,
    /// Responses sent, for the idle detection that returns memory (cheaper than summing families).
    sent: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let build = Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]);
        registry.register("gatehouse_build", "The running version", build);
        let responses = Family::<ClassLabel, Counter>::default();
        registry.register("gatehouse_http_responses", "HTTP responses by status class", responses.clone());
        let latency: Latency = Family::new_with_constructor(latency_buckets);
        registry.register(
            "gatehouse_http_request_duration_seconds",
            "Time to answer a request, by route pattern and method",
            latency.clone(),
        );
        let logins = Family::<OutcomeLabel, Counter>::default();
        registry.register("gatehouse_logins", "Password logins by outcome", logins.clone());
        Self { registry, responses, latency, logins, sent: AtomicU64::new(0) }
    }
}

/// What `/metrics` reads at scrape time.
#[derive(Debug, Default)]
pub struct Scraped {
    pub sessions_expired: i64,
    pub mail_queued: i64,
    pub mail_failed: i64,
    /// Age of the oldest message waiting, in seconds (0 with none).
    pub mail_oldest_age_seconds: i64,
    pub lockouts_active: i64,
    pub connections_open: i64,
    pub connections_refused: u64,
    /// When cron last ran (Unix seconds), if ever.
    pub cron_last_run: Option<i64>,
}

impl Metrics {
    /// One answered request: its status, route pattern (one of the router's: callers pass
    /// `MatchedPath` or a fixed name, never a raw path), method and time taken.
    pub fn record(&self, status: axum::http::StatusCode, method: &axum::http::Method, route: &str, seconds: f64) {
        let class = ["1xx", "2xx", "3xx", "4xx", "5xx"][(status.as_u16() / 100).clamp(1, 5) as usize - 1];
        self.responses.get_or_create(&ClassLabel { class }).inc();
        let labels = RouteLabels { method: method_label(method), route: interned(route) };
        self.latency.get_or_create(&labels).observe(seconds);
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Responses sent so far.
    pub fn responses(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn login(&self, outcome: LoginOutcome) {
        self.logins.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// The exposition: the running counters, then `scraped`.
    pub fn render(&self, scraped: &Scraped) -> String {
        let mut now = Registry::default();
        let gauges = [
            ("gatehouse_sessions_expired", "Expired sessions not yet collected", scraped.sessions_expired),
            ("gatehouse_mail_queued", "Messages waiting in the outbox", scraped.mail_queued),
            ("gatehouse_mail_failed", "Messages that failed for good", scraped.mail_failed),
            ("gatehouse_mail_oldest_age_seconds", "Age of the oldest message waiting", scraped.mail_oldest_age_seconds),
            (
                "gatehouse_lockouts_active",
                "Accounts, addresses and second factors locked out now",
                scraped.lockouts_active,
            ),
            ("gatehouse_connections_open", "Open client connections", scraped.connections_open),
        ];
        for (name, help, value) in gauges {
            now.register(name, help, ConstGauge::new(value));
        }
        now.register(
            "gatehouse_connections_refused",
            "Connections answered 503 and closed for being over a server.max_connections limit",
            ConstCounter::new(scraped.connections_refused),
        );
        if let Some(at) = scraped.cron_last_run {
            now.register(
                "gatehouse_cron_last_run_timestamp_seconds",
                "When gatehouse cron last ran",
                ConstGauge::new(at),
            );
        }
        let mut out = String::new();
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let written = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &now))
            .and_then(|()| encode_eof(&mut out));
        if let Err(e) = written {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}
