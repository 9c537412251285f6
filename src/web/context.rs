//! Per-request context: the client IP (from trusted proxies only), whether the request came
//! to system_url's host, and the session named by the cookie. Computed once by [`layer`] and
//! read by handlers as an extractor.

use crate::error::Code;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cookie::Cookie;

use super::AppState;
use super::render::ShownOnce;
use crate::accounts::{Membership, UserWithClients};
use crate::auth::sessions::cookie::{ADMIN_COOKIE_NAME, ADMIN_DEVICE_COOKIE_NAME, COOKIE_NAME, DEVICE_COOKIE_NAME};
use crate::auth::sessions::{Ended, Session};
use crate::net::encounters::Kind;
use crate::net::observations::{self, Observation};
use crate::secrets::tokens::{self, TokenKind};

/// What the middleware learned about a request.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub peer: IpAddr,
    pub ip: IpAddr,
    /// The request's Host is system_url's host: only then are sessions honoured or created.
    pub host_ok: bool,
    pub session: Option<Session>,
    /// The session's signed-in user with their clients, read with the session.
    pub user: Option<Arc<UserWithClients>>,
    /// Why the presented cookie did not give a session (expired, IP changed…).
    pub ended: Option<Ended>,
    /// The User-Agent header, cut to a length worth keeping.
    pub user_agent: String,
    /// The nonce of a visitor's form tokens (its cookie), on system_url's host only.
    pub form_nonce: Option<String>,
    /// The device token the browser holds for this area (`auth::devices`), on system_url's host.
    pub device: Option<String>,
    /// For a request on another host than system_url's: the host it came to, and its path and
    /// query, to send the visitor to the same page on system_url.
    pub off_host: Option<(String, String)>,
}

impl Ctx {
    pub fn ip_string(&self) -> String {
        self.ip.to_string()
    }

    /// Where a sign-in comes from, as the session and the device list keep it.
    pub fn visitor(&self) -> crate::auth::Visitor {
        crate::auth::Visitor { ip: self.ip_string(), user_agent: self.user_agent.clone(), device: self.device.clone() }
    }

    /// The signed-in user's memberships, by client id (none without a signed-in user).
    pub fn memberships(&self) -> &[Membership] {
        self.user.as_ref().map_or(&[], |u| &u.memberships)
    }

    /// The signed-in user's membership of `client_id`, if its client is open
    /// ([`Membership::usable_in`]).
    pub fn membership(&self, client_id: i64) -> Option<Membership> {
        Membership::usable_in(self.memberships(), client_id).cloned()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = StatusCode;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, StatusCode> {
        parts.extensions.get::<Ctx>().cloned().ok_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// 503 while the database cannot answer: JSON under `/api/`, a page elsewhere.
fn unavailable(state: &AppState, path: &str) -> Response {
    if path.starts_with("/api/") {
        let body = super::api::error_body(Code::DatabaseUnavailable, "the database is unavailable; try again later");
        let retry = [(header::RETRY_AFTER, "5")];
        return (StatusCode::SERVICE_UNAVAILABLE, retry, body).into_response();
    }
    super::render::unavailable(state, path == "/admin" || path.starts_with("/admin/"))
}

// Names looked up on every request, parsed once (a name given as a string is parsed per lookup).
static CF_RAY: HeaderName = HeaderName::from_static("cf-ray");
static CF_CONNECTING_IP: HeaderName = HeaderName::from_static("cf-connecting-ip");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Real User-Agent strings stay well below this; a longer one is not worth storing whole.
const MAX_USER_AGENT: usize = 400;

/// The cookies gatehouse reads from a request, for one area (the client area's or the admin
/// area's names), from one pass over its `Cookie` headers; the first of a name counts.
#[derive(Default)]
struct Presented {
    session: Option<String>,
    form_nonce: Option<String>,
    device: Option<String>,
}

impl Presented {
    fn from(headers: &HeaderMap, admin_area: bool) -> Self {
        let (session_name, device_name) =
            if admin_area { (ADMIN_COOKIE_NAME, ADMIN_DEVICE_COOKIE_NAME) } else { (COOKIE_NAME, DEVICE_COOKIE_NAME) };
        let mut presented = Presented::default();
        let cookies = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok());
        for cookie in cookies.flat_map(Cookie::split_parse).filter_map(Result::ok) {
            let slot = match cookie.name() {
                name if name == session_name => &mut presented.session,
                name if name == super::form_token::COOKIE_NAME => &mut presented.form_nonce,
                name if name == device_name => &mut presented.device,
                _ => continue,
            };
            slot.get_or_insert_with(|| cookie.value().to_string());
        }
        presented
    }
}

/// At most `max` characters of `s`, cut on a character boundary.
fn truncated(s: &str, max: usize) -> String {
    s.char_indices().nth(max).map_or(s, |(end, _)| &s[..end]).to_string()
}

/// Every line of a forwarded header as one comma-separated list, in order (RFC 9110 §5.3): a
/// proxy may add its own line after one the client wrote, and the client's must not win by
/// coming first. A line that is not visible ASCII is no address and is left out.
fn forwarded(headers: &HeaderMap, name: &str) -> Option<String> {
    let lines: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!lines.is_empty()).then(|| lines.join(","))
}

/// The scheme the client used, and whether a trusted proxy said so: the connection's (always
/// http here), or what a trusted proxy's X-Forwarded-Proto or CF-Visitor says.
fn scheme(trusted: &crate::net::client_ip::Trusted, peer: IpAddr, headers: &HeaderMap) -> (String, bool) {
    if trusted.contains(peer) {
        if let Some(proto) = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) {
            return (proto.split(',').next().unwrap_or("http").trim().to_ascii_lowercase(), true);
        }
        if let Some(visitor) = headers.get("cf-visitor").and_then(|v| v.to_str().ok()) {
            let https = visitor.contains("\"https\"");
            return ((if https { "https" } else { "http" }).into(), true);
        }
    }
    ("http".into(), false)
}

/// The page the visitor came from on this host, as much of its path as the comparison with
/// system_url's path needs ('' when the browser sent no same-host Referer).
fn page_path(state: &AppState, headers: &HeaderMap, host: &str) -> String {
    let Some(referer) =
        headers.get(header::REFERER).and_then(|v| v.to_str().ok()).and_then(|r| url::Url::parse(r).ok())
    else {
        return String::new();
    };
    let authority = match (referer.host_str(), referer.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return String::new(),
    };
    if authority.to_ascii_lowercase() != host {
        return String::new();
    }
    observations::page_prefix(referer.path(), &state.cookie.path)
}

pub async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
        .to_canonical();
    let headers = req.headers();
    let trusted = state.trusted();
    let ip = trusted.client_ip(peer, forwarded(headers, trusted.header_name()).as_deref());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let host_ok = host == state.cookie.authority;
    let cf_headers = headers.contains_key(&CF_RAY) || headers.contains_key(&CF_CONNECTING_IP);
    // A proxy nobody trusted: it says who the visitor is, and nobody listens.
    let forwarded_untrusted = !trusted.contains(peer)
        && [&X_FORWARDED_FOR, &X_REAL_IP, &header::FORWARDED, &CF_CONNECTING_IP]
            .iter()
            .any(|h| headers.contains_key(*h));
    let scheme = scheme(&trusted, peer, headers);
    let page_path = page_path(&state, headers, &host);
    // CloudFlare's request id, logged so a request can be followed through CloudFlare's logs.
    let cf_ray = headers.get(&CF_RAY).and_then(|v| v.to_str().ok()).map(str::to_string);

    let (mut session, mut user, mut ended) = (None, None, None);
    // The admin area has its own session (and cookie); a client-area session never opens it.
    let admin_area = req.uri().path() == "/admin" || req.uri().path().starts_with("/admin/");
    let presented = Presented::from(headers, admin_area);
    let ip_text = ip.to_string();
    // Probes never read a session: a liveness probe that sends a cookie must not find the
    // process dead because the database is.
    let probe = super::probes::PATHS.contains(&req.uri().path());
    if !probe && state.breaker.is_open() {
        return unavailable(&state, req.uri().path());
    }
    if host_ok
        && !probe
        && let Some(token) = &presented.session
    {
        match state.sessions.resolve(token, &ip_text, &state.accounts).await {
            Ok(Ok((s, u))) => (session, user) = (Some(s), u.map(Arc::new)),
            Ok(Err(reason)) => {
                // Shaped like a session we issue, yet unknown here: collected after it expired,
                // or issued by a node that does not share this session store.
                if reason == Ended::Unknown && tokens::has_shape(TokenKind::Session, token) {
                    state.encounters.count(Kind::UnknownSession, "");
                }
                ended = Some(reason)
            }
            Err(e) => {
                // The visitor may well be signed in: say the site is unavailable rather than
                // send them to the login page, and keep their cookie for when it is back.
                tracing::error!(error = %e, "session store unavailable");
                state.breaker.trip();
                return unavailable(&state, req.uri().path());
            }
        }
    }
    let ip_changed = ended == Some(Ended::IpChanged);
    let user_agent =
        truncated(headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""), MAX_USER_AGENT);
    let form_nonce = presented.form_nonce.filter(|_| host_ok);
    let device = presented.device.filter(|_| host_ok);
    let off_host = (!host_ok).then(|| {
        // Only an origin-form path is joined to system_url's origin ("/…", never "@host…").
        let path = req.uri().path_and_query().map(|p| p.as_str()).filter(|p| p.starts_with('/')).unwrap_or("/");
        (truncated(&host, 200), truncated(path, 2000))
    });
    req.extensions_mut().insert(Ctx {
        peer,
        ip,
        host_ok,
        session,
        user,
        ended,
        user_agent,
        form_nonce,
        device,
        off_host,
    });

    // The route's pattern (`/password/reset/{token}`), never the path itself: reset, invite and
    // impersonation links carry their secret in it. A path no route matched holds no live secret.
    // `MatchedPath` is shared (an `Arc`): keeping it costs no copy of the pattern.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let path: std::borrow::Cow<str> = match &route {
        Some(r) => r.as_str().into(),
        None => {
            let path = truncated(req.uri().path(), 200);
            crate::secrets::tokens::masked(&path).into_owned().into()
        }
    };
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let mut response = next.run(req).await;
    if let Some(shown) = response.extensions_mut().remove::<ShownOnce>() {
        shown.forget(&state).await;
    }
    if let Some(failed) = response.extensions_mut().remove::<super::render::Failed>() {
        if failed.is_unavailability() {
            state.breaker.trip();
        }
        response = failed.page(&state, admin_area);
    }
    if response.extensions_mut().remove::<super::breaker::DatabaseDown>().is_some() {
        state.breaker.trip();
    }
    tracing::info!(
        %method, %path, status = response.status().as_u16(), ms = started.elapsed().as_secs_f64() * 1000.0,
        client_ip = %ip_text, peer = %peer, cf_ray = cf_ray.as_deref().unwrap_or("-"), "request"
    );
    // Paths no route matched (scanners' guesses) share one label, or they would grow without end.
    let route = route.as_ref().map_or("(no route)", MatchedPath::as_str);
    state.metrics.record(response.status(), &method, route, started.elapsed().as_secs_f64());
    // A load balancer's health check sent straight to the backend is not a visitor arriving on
    // the wrong host.
    if !super::probes::PATHS.contains(&path.as_ref()) {
        let flags = observations::Flags { cf_headers, session_ip_change: ip_changed, forwarded_untrusted };
        state.observations.record(Observation::new(state.db().now(), host, scheme, peer, ip, flags, page_path));
    }
    response
}
