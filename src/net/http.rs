//! A phased HTTP(S) GET for diagnostics: DNS → TCP → TLS → HTTP, each timed, so a failure can
//! be pinned on the phase that broke. TLS is rustls with the ring provider and the Mozilla
//! roots; HTTP/1.1 is hyper's.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::resolve::Resolver;

/// Where in a request something happened: the phases a trace times, then what a caller makes
/// of the answer (the licensing protocol and its signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Dns,
    Tcp,
    Tls,
    Http,
    Protocol,
    Signature,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Http => "http",
            Self::Protocol => "protocol",
            Self::Signature => "signature",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub name: Stage,
    pub ok: bool,
    pub ms: f64,
    pub detail: String,
}

/// What happened, phase by phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Trace {
    pub phases: Vec<Phase>,
    /// The phase that failed or ran out of time.
    pub failed_phase: Option<Stage>,
    pub timed_out: bool,
    /// This host's end of the connection (the address the server sees, unless NATed).
    pub local_addr: Option<SocketAddr>,
    pub status: Option<u16>,
    pub location: Option<String>,
    pub date: Option<String>,
    /// Days until the server certificate expires (negative once expired), and when.
    pub tls_days_left: Option<i64>,
    pub tls_not_after: Option<String>,
    /// Response headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The start of the body (at most `BODY_LIMIT` bytes, lossily decoded).
    pub body: Option<String>,
}

/// How much of a response body a trace keeps.
const BODY_LIMIT: usize = 64 * 1024;

impl Trace {
    fn record(&mut self, name: Stage, started: Instant, result: Result<String, String>) -> bool {
        let ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
        let ok = result.is_ok();
        let detail = result.unwrap_or_else(|e| e);
        self.phases.push(Phase { name, ok, ms, detail });
        if !ok {
            self.failed_phase = Some(name);
        }
        ok
    }

    /// The failure in one line, naming the phase — and, when the phase ran out of time, what
    /// usually makes that phase hang.
    pub fn failure(&self) -> Option<String> {
        let p = self.phases.iter().find(|p| !p.ok)?;
        let hint = if self.timed_out { stall_hint(p.name) } else { "" };
        Some(format!("{} phase: {}{hint}", p.name, p.detail))
    }

    /// The `Content-Type` of the answer, when there was one.
    pub fn content_type(&self) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.as_str())
    }
}

/// What usually makes `phase` wait without an answer.
fn stall_hint(phase: Stage) -> &'static str {
    match phase {
        Stage::Dns => " — the resolver does not answer (resolv.conf, doctor.dns_servers, a firewall on port 53?)",
        Stage::Tcp => " — a firewall dropping packets?",
        Stage::Tls => " — something on the path holds the handshake (an intercepting proxy?)",
        Stage::Http | Stage::Protocol | Stage::Signature => " — the server accepted the connection but does not answer",
    }
}

/// How long one phase may take before the trace stops and names it.
async fn phase<T>(budget: Duration, f: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    match tokio::time::timeout(budget, f).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", budget.as_millis())),
    }
}

/// Trusts the Mozilla roots, plus the certificates of `ca_file` (PEM) for an internal CA.
fn tls_connector(ca_file: Option<&Path>) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(file) = ca_file {
        let certs = CertificateDer::pem_file_iter(file).map_err(|e| format!("CA file {}: {e}", file.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("CA file {}: {e}", file.display()))?;
            roots.add(cert).map_err(|e| format!("CA file {}: {e}", file.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The expiry of a DER certificate: (days left, RFC 3339 time).
fn expiry(cert: &CertificateDer<'_>) -> Option<(i64, String)> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let not_after = parsed.validity().not_after.timestamp();
    let days = (not_after - chrono::Utc::now().timestamp()).div_euclid(86_400);
    Some((days, crate::store::rfc3339(not_after)))
}

/// What to do once connected.
enum Exchange {
    /// Nothing: the handshake was the point.
    None,
    Get,
    /// POST a JSON body, built once the local address is known (it can be part of the body).
    PostJson(Box<dyn FnOnce(Option<SocketAddr>) -> Vec<u8> + Send>),
}

/// GETs `url`, within `deadline` overall; `ca_file` adds trusted roots for `https://`.
pub async fn get(url: &url::Url, resolver: &Resolver, deadline: Duration, ca_file: Option<&Path>) -> Trace {
    run(url, resolver, deadline, ca_file, Exchange::Get).await
}

/// POSTs the JSON that `body` builds from this host's end of the connection.
pub async fn post_json(
    url: &url::Url,
    resolver: &Resolver,
    deadline: Duration,
    body: impl FnOnce(Option<SocketAddr>) -> Vec<u8> + Send + 'static,
) -> Trace {
    run(url, resolver, deadline, None, Exchange::PostJson(Box::new(body))).await
}

/// Resolves, connects and completes the TLS handshake of an `https://` URL, without a request.
pub async fn handshake(url: &url::Url, resolver: &Resolver, deadline: Duration, ca_file: Option<&Path>) -> Trace {
    run(url, resolver, deadline, ca_file, Exchange::None).await
}

async fn run(url: &url::Url, resolver: &Resolver, deadline: Duration, ca_file: Option<&Path>, ask: Exchange) -> Trace {
    let until = Instant::now() + deadline;
    let left = || until.saturating_duration_since(Instant::now());
    let mut trace = Trace::default();
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(80);

    let t = Instant::now();
    let addrs = phase(left(), resolver.lookup(&host)).await;
    let detail =
        addrs.as_ref().map(|a| a.iter().map(|ip| ip.to_string()).collect::<Vec<_>>().join(", ")).map_err(|e| e.clone());
    if !trace.record(Stage::Dns, t, detail.map(|d| format!("{host} → {d} ({})", resolver.describe()))) {
        return finish(trace);
    }
    let addrs = addrs.expect("checked above");

    let t = Instant::now();
    let connected = phase(left(), async {
        let mut last = String::new();
        for ip in &addrs {
            match TcpStream::connect((*ip, port)).await {
                Ok(s) => return Ok(s),
                Err(e) => last = format!("{ip}:{port}: {e}"),
            }
        }
        Err(last)
    })
    .await;
    let peer = connected.as_ref().ok().and_then(|s| s.peer_addr().ok()).map(|a| a.to_string()).unwrap_or_default();
    if !trace.record(Stage::Tcp, t, connected.as_ref().map(|_| format!("connected to {peer}")).map_err(|e| e.clone())) {
        return finish(trace);
    }
    let stream = connected.expect("checked above");
    trace.local_addr = stream.local_addr().ok();

    if url.scheme() == "https" {
        let t = Instant::now();
        let name = match rustls::pki_types::ServerName::try_from(host.clone()) {
            Ok(n) => n,
            Err(e) => {
                trace.record(Stage::Tls, t, Err(format!("`{host}` is not a valid TLS server name: {e}")));
                return finish(trace);
            }
        };
        let connector = match tls_connector(ca_file) {
            Ok(c) => c,
            Err(e) => {
                trace.record(Stage::Tls, t, Err(e));
                return finish(trace);
            }
        };
        let tls = phase(left(), async { connector.connect(name, stream).await.map_err(|e| e.to_string()) }).await;
        if let Ok(s) = &tls
            && let Some((days, when)) = s.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(expiry)
        {
            trace.tls_days_left = Some(days);
            trace.tls_not_after = Some(when);
        }
        let detail = tls.as_ref().map(|s| {
            let (_, conn) = s.get_ref();
            format!(
                "{:?}, {:?}",
                conn.protocol_version().unwrap_or(rustls::ProtocolVersion::Unknown(0)),
                conn.negotiated_cipher_suite().map(|c| c.suite())
            )
        });
        if !trace.record(Stage::Tls, t, detail.map_err(|e| e.clone())) || matches!(ask, Exchange::None) {
            return finish(trace);
        }
        exchange(tls.expect("checked above"), url, &host, ask, left(), &mut trace).await;
    } else if !matches!(ask, Exchange::None) {
        exchange(stream, url, &host, ask, left(), &mut trace).await;
    }
    finish(trace)
}

fn finish(mut trace: Trace) -> Trace {
    trace.timed_out = trace.phases.iter().any(|p| !p.ok && p.detail.starts_with("no answer within"));
    trace
}

async fn exchange<S>(stream: S, url: &url::Url, host: &str, ask: Exchange, budget: Duration, trace: &mut Trace)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let t = Instant::now();
    let local = trace.local_addr;
    let result = phase(budget, async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(conn);
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let request = hyper::Request::builder()
            .uri(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::USER_AGENT, concat!("gatehouse/", env!("CARGO_PKG_VERSION")));
        let request = match ask {
            Exchange::PostJson(body) => request
                .method(hyper::Method::POST)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body(local)))),
            Exchange::Get | Exchange::None => request.body(Full::new(Bytes::new())),
        }
        .map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = http_body_util::Limited::new(body, BODY_LIMIT).collect().await.ok().map(|b| b.to_bytes());
        driver.abort();
        Ok((parts, body))
    })
    .await;
    match result {
        Ok((parts, body)) => {
            let header = |name: hyper::header::HeaderName| {
                parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
            };
            trace.status = Some(parts.status.as_u16());
            trace.location = header(hyper::header::LOCATION);
            trace.date = header(hyper::header::DATE);
            trace.headers = parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            trace.body = body.map(|b| String::from_utf8_lossy(&b).into_owned());
            trace.record(Stage::Http, t, Ok(format!("HTTP {}", parts.status)));
        }
        Err(e) => {
            trace.record(Stage::Http, t, Err(e));
        }
    }
}
