//! A reverse proxy in front of a test server, as nginx would be: it listens on 127.0.0.1,
//! reaches the backend from its own address (127.0.0.2), says who the visitor was in
//! X-Forwarded-For and how they came in X-Forwarded-Proto, passes Host through, and health-checks
//! the backend's `/healthz` directly.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;

/// The proxy's own address toward the backend: what `trusted_proxies.ranges` must name.
pub const PROXY_IP: &str = "127.0.0.2";

pub struct ReverseProxy {
    /// Where visitors connect: system_url's address.
    pub addr: SocketAddr,
    listener: Option<tokio::net::TcpListener>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for ReverseProxy {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

#[derive(Clone)]
struct Upstream {
    backend: SocketAddr,
    client: reqwest::Client,
}

impl ReverseProxy {
    /// Takes the address first, so the backend can be configured with it as system_url.
    pub async fn bind() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self { addr: listener.local_addr().unwrap(), listener: Some(listener), task: None }
    }

    /// Starts forwarding to `backend`.
    pub fn forward_to(&mut self, backend: SocketAddr) {
        let client = reqwest::Client::builder()
            .local_address(PROXY_IP.parse::<std::net::IpAddr>().unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let app = axum::Router::new().fallback(forward).with_state(Upstream { backend, client });
        let listener = self.listener.take().expect("started once");
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        }));
    }

    pub fn base(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The load balancer's health check, sent straight to the backend.
    pub async fn health_check(backend: SocketAddr) -> u16 {
        let client =
            reqwest::Client::builder().local_address(PROXY_IP.parse::<std::net::IpAddr>().unwrap()).build().unwrap();
        client.get(format!("http://{backend}/healthz")).send().await.unwrap().status().as_u16()
    }
}

const HOP_BY_HOP: &[&str] = &["connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"];

async fn forward(State(up): State<Upstream>, ConnectInfo(visitor): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut out = up.client.request(parts.method.clone(), format!("http://{}{path}", up.backend));
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out = out.header(name, value);
        }
    }
    out = out.header("x-forwarded-for", visitor.ip().to_string()).header("x-forwarded-proto", "http");
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let answer = out.body(bytes).send().await.unwrap();
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    response.body(Body::from(answer.bytes().await.unwrap())).unwrap()
}
