//! The accept loop: hyper's HTTP/1 under limits that `axum::serve` does not have.
//!
//! Without them a client that opens connections and never finishes a request holds each one
//! forever: 21,000 half-open connections from one address exhausted the file descriptors and
//! `/healthz` stopped answering. So:
//! - `server.header_timeout` bounds reading a request's headers, and with it how long an idle
//!   keep-alive connection is kept (hyper starts the timer whenever it waits for a request head);
//! - `server.body_timeout` bounds reading a body (408, in [`super::router`]);
//! - `server.max_connections` bounds open connections, and `server.max_connections_per_ip` those
//!   of one peer address — trusted proxies excepted, since every visitor arrives through them.
//!   A connection over a limit gets a short 503 with `Retry-After` and is closed, so a client
//!   learns why instead of hanging in the listen queue.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::config::Server as Limits;
use crate::net::client_ip::Trusted;

/// File descriptors kept free for the database, the session and mail files, and logs.
const RESERVED_FDS: u64 = 256;

/// Connections being refused at once (each for at most 3 s); beyond that they are just closed.
const MAX_REFUSING: usize = 256;

/// What a connection over a limit is told before it is closed.
const REFUSAL_TEXT: &str = "Too many connections; try again shortly.\n";

fn refusal() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Retry-After: 5\r\nConnection: close\r\n\r\n{REFUSAL_TEXT}",
        REFUSAL_TEXT.len()
    )
}

/// Open and refused connections, for `/metrics`.
#[derive(Default)]
pub struct Connections {
    open: AtomicU64,
    refused: AtomicU64,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
}

impl Connections {
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes a slot for a connection from `peer`, or says which limit it is over.
    fn admit(self: &Arc<Self>, peer: IpAddr, limits: &Admission) -> Result<Slot, &'static str> {
        if self.open.load(Ordering::Relaxed) >= limits.max_connections {
            return Err("max_connections");
        }
        let per_ip = limits.per_ip.filter(|_| !limits.trusted.contains(peer));
        if let Some(max) = per_ip {
            let mut counts = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let count = counts.entry(peer).or_default();
            if *count >= max {
                return Err("max_connections_per_ip");
            }
            *count += 1;
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(Slot { connections: self.clone(), peer: per_ip.map(|_| peer) })
    }
}

/// A held connection slot; dropping it (the connection ended) frees it.
struct Slot {
    connections: Arc<Connections>,
    /// Set when the peer counts against the per-address limit.
    peer: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(peer) = self.peer {
            let mut counts = self.connections.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(count) = counts.get_mut(&peer) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&peer);
                }
            }
        }
    }
}

/// The limits as the accept loop applies them.
struct Admission {
    max_connections: u64,
    per_ip: Option<u32>,
    trusted: Trusted,
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and waits for
/// the requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    trusted: Trusted,
    connections: Arc<Connections>,
    shutdown: impl Future<Output = ()>,
) {
    let budget = fd_budget();
    if u64::from(limits.max_connections) > budget {
        tracing::warn!(
            configured = limits.max_connections,
            allowed = budget,
            "server.max_connections is above what the file descriptor limit allows; raise `ulimit -n` (LimitNOFILE=)"
        );
    }
    let admission = Admission {
        max_connections: u64::from(limits.max_connections).min(budget),
        per_ip: (limits.max_connections_per_ip > 0).then_some(limits.max_connections_per_ip),
        trusted,
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout.0);
    let graceful = GracefulShutdown::new();
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: not fatal. Pause
                    // so that a persistent error does not spin the loop.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match connections.admit(peer.ip().to_canonical(), &admission) {
            Ok(slot) => slot,
            Err(limit) => {
                connections.refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, limit, "connection refused: over server.{limit}");
                tokio::spawn(refuse(stream, refusing.clone()));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are the client's (a reset, a header timeout); nothing to act on.
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Says why, then closes. The request head is read first (briefly), because an HTTP client
/// that gets an answer before it has sent its request takes it for a broken connection. All of
/// it is bounded, and so is the number of connections being refused at once: a flood beyond
/// that is closed without a word rather than holding descriptors.
async fn refuse(mut stream: TcpStream, refusing: Arc<Semaphore>) {
    let Ok(_permit) = refusing.try_acquire_owned() else { return };
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while head.len() < 8192 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        stream.write_all(refusal().as_bytes()).await?;
        stream.shutdown().await?;
        // A lingering close: closing with unread input would send a reset, and a reset can
        // discard the answer before the client reads it.
        while stream.read(&mut buf).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// How many connections the process's descriptor limit allows, after [`raise_fd_limit`].
fn fd_budget() -> u64 {
    // Each connection is one descriptor; the rest of the process needs a few hundred.
    raise_fd_limit().saturating_sub(RESERVED_FDS).max(1)
}

/// Raises the soft limit on open files to the hard one (the soft default, often 1,024, is far
/// below what a server — or a load generator — needs) and returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return u64::MAX };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() { hard } else { soft }
}
