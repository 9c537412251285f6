//! A fake licensing server on 127.0.0.1 that speaks the protocol (README, "Licensing") with a
//! key pair made for the test. It can answer any status, bind the license to given facts
//! (answering `invalid` with the vendor's kind of reason when a request falls outside them),
//! answer with an HTML page, sign with the wrong key, or accept and never answer. A
//! [`stalled_port`] is a port whose connections never complete, like a firewall dropping packets.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use ed25519_dalek::SigningKey;
use gatehouse::license::key::key_id;
use gatehouse::license::protocol::{Request, encode_public_key};
use gatehouse::license::{Answer, Binding, LicenseKey, Signed, Status};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Answers signed answers, as a real server does.
    Answer,
    /// Answers `200 text/html`: a proxy's or captive portal's page.
    Html,
    /// Signs with a key that is not the configured public key's.
    WrongKey,
    /// Reads the request and never answers.
    Stall,
}

pub struct Behaviour {
    pub mode: Mode,
    /// The status of the license itself (before the binding is compared).
    pub status: Status,
    pub reason: String,
    pub binding: Binding,
    /// Every request received, in order.
    pub requests: Vec<Request>,
    /// The time answers are dated by: a test server's clock, so both sides agree when a test
    /// advances it.
    pub clock: gatehouse::store::Clock,
}

#[derive(Clone)]
struct Shared {
    behaviour: Arc<Mutex<Behaviour>>,
    signing: SigningKey,
    wrong: SigningKey,
    key: LicenseKey,
}

pub struct LicenseServer {
    pub url: String,
    pub key: LicenseKey,
    pub public_key: String,
    shared: Shared,
    _task: tokio::task::JoinHandle<()>,
}

impl LicenseServer {
    /// An active license for a fresh key, bound to nothing until [`LicenseServer::bind`].
    pub async fn start() -> Self {
        let signing = SigningKey::from_bytes(&rand::random());
        let key = LicenseKey::issue(rand::random());
        let shared = Shared {
            behaviour: Arc::new(Mutex::new(Behaviour {
                mode: Mode::Answer,
                status: Status::Active,
                reason: String::new(),
                binding: Binding::default(),
                requests: Vec::new(),
                clock: gatehouse::store::Clock::default(),
            })),
            wrong: SigningKey::from_bytes(&rand::random()),
            signing,
            key: key.clone(),
        };
        let app = axum::Router::new().route("/v1/verify", axum::routing::post(verify)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let public_key = encode_public_key(&shared.signing.verifying_key());
        Self { url, key, public_key, shared, _task: task }
    }

    /// The `license:` section that points a deployment at this server.
    pub fn yaml(&self) -> String {
        format!(
            "license: {{ key: \"{}\", server: \"{}\", public_key: \"{}\" }}\n",
            self.key.as_str(),
            self.url,
            self.public_key
        )
    }

    pub fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.shared.behaviour.lock().unwrap());
    }

    pub fn bind(&self, binding: Binding) {
        self.set(|b| b.binding = binding);
    }

    /// Dates answers by `clock` (the deployment's, which tests advance).
    pub fn follow(&self, clock: &gatehouse::store::Clock) {
        let clock = clock.clone();
        self.set(|b| b.clock = clock);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.behaviour.lock().unwrap().requests.clone()
    }
}

async fn verify(State(shared): State<Shared>, Json(request): Json<Request>) -> Response {
    let (mode, answer) = {
        let mut b = shared.behaviour.lock().unwrap();
        b.requests.push(request.clone());
        let outside = b.binding.mismatches(&request.facts, request.context.as_str());
        let (status, reason) = if request.key != shared.key.as_str() {
            (Status::Invalid, "this key was never issued".to_string())
        } else if b.status == Status::Active && !outside.is_empty() {
            (Status::Invalid, format!("not licensed for this installation: {}", outside.join("; ")))
        } else {
            (b.status, b.reason.clone())
        };
        let now = chrono::DateTime::<Utc>::from_timestamp(b.clock.now(), 0).unwrap();
        let answer = Answer {
            key_id: key_id(&request.key),
            status,
            binding: b.binding.clone(),
            reason,
            checked_at: now,
            next_check_at: now + chrono::Duration::days(7),
        };
        (b.mode, answer)
    };
    match mode {
        Mode::Answer => Json(Signed::sign(&answer, &shared.signing)).into_response(),
        Mode::WrongKey => Json(Signed::sign(&answer, &shared.wrong)).into_response(),
        Mode::Html => (
            [(axum::http::header::CONTENT_TYPE, "text/html")],
            "<html><body><h1>Welcome to Hotel WiFi</h1>Please sign in to continue.</body></html>",
        )
            .into_response(),
        Mode::Stall => std::future::pending().await,
    }
}

/// A port on 127.0.0.1 whose new connections never complete: its accept queue (backlog 0) is
/// held full by one connection nobody accepts, so Linux drops further SYNs — what a firewall
/// that drops packets looks like from here. The port stalls while this lives.
pub struct StalledPort {
    pub port: u16,
    _listener: tokio::net::TcpListener,
    _filler: std::net::TcpStream,
}

pub fn stalled_port() -> StalledPort {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    let listener = socket.listen(0).unwrap();
    let filler = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    StalledPort { port, _listener: listener, _filler: filler }
}
