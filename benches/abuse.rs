//! `cargo bench --bench abuse`: what abuse does to a running `gatehouse serve`, in figures.
//!
//! Runs the real binary (release build) on 127.0.0.1 with a SQLite deployment in a temporary
//! directory, and prints:
//! 1. session rows written by 1,000 anonymous `GET /login` (target 0: nothing is stored for
//!    a visitor until there is something to keep);
//! 2. the server's resident memory idle, at its peak under 15 s of logins and page views from
//!    64 clients, and 5 s after (targets: peak < 150 MB, after ≤ 2 × idle);
//! 3. `/healthz` and login latency while 5,000 half-open connections are held (from 20 loopback
//!    addresses, 250 each, under the per-address limit, so the server really holds them all).
//!
//! Loopback only; about a minute in all; everything it starts stops with it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

mod support;
use support::{EMAIL, PASSWORD, ServeProcess, cores};

const LOAD: Duration = Duration::from_secs(15);

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Thousands of sockets on this side too.
    gatehouse::web::server::raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!("gatehouse abuse benchmark — {} cores, SQLite, release build, loopback", cores());

    let idle = server.rss_mb();
    println!("RSS idle:                                   {idle:>8.1} MB");

    let rows_before = rt.block_on(server.session_rows());
    rt.block_on(anonymous_gets(&server.base, 1_000));
    let rows = rt.block_on(server.session_rows()) - rows_before;
    println!("session rows per 1,000 anonymous GET /login: {rows:>7}");

    let (peak, requests) = rt.block_on(load(&server));
    std::thread::sleep(Duration::from_secs(5));
    let after = server.rss_mb();
    println!("RSS under load (peak, {requests} requests):      {peak:>8.1} MB");
    println!("RSS 5 s after the load:                     {after:>8.1} MB  ({:.1} × idle)", after / idle);

    rt.block_on(half_open(&server, 5_000));
}

struct Server(ServeProcess);

impl Server {
    fn start(dir: &std::path::Path) -> Server {
        // Every load client is 127.0.0.1 and logs in as one account: allow the burst.
        let lockout = "security:\n  lockout: { max_failures: 100, ip_max_failures: 1000000, window: 1m, lock: 1m }\n";
        Server(ServeProcess::start(dir, lockout))
    }

    /// Rows in the session table, read as any other client of the database would.
    async fn session_rows(&self) -> i64 {
        let database = self.0.dir.join("gatehouse-data/gatehouse.db");
        let url: gatehouse::config::DatabaseUrl = format!("sqlite://{}", database.display()).parse().unwrap();
        let db = gatehouse::store::Db::connect(&url, "bench").await.unwrap();
        let rows = sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(db.pool()).await.unwrap();
        db.close().await;
        rows
    }
}

impl std::ops::Deref for Server {
    type Target = ServeProcess;
    fn deref(&self) -> &ServeProcess {
        &self.0
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Visitors without cookies: each GET is someone new.
async fn anonymous_gets(base: &str, n: usize) {
    let c = reqwest::Client::new();
    for _ in 0..n {
        let status = c.get(format!("{base}login")).send().await.unwrap().status();
        assert_eq!(status, 200);
    }
}

/// One full login in a fresh browser: the form, then the POST. Returns the signed-in client.
async fn login(base: &str) -> reqwest::Client {
    let c = client();
    let page = c.get(format!("{base}login")).send().await.unwrap().text().await.unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker).expect("a login form") + marker.len();
    let csrf = page[start..].split('"').next().unwrap().to_string();
    let resp = c
        .post(format!("{base}login"))
        .form(&[("csrf_token", csrf.as_str()), ("email", EMAIL), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers().get("location").and_then(|v| v.to_str().ok()), Some("/clientarea"));
    c
}

async fn half_open(server: &Server, n: usize) {
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let from: IpAddr = format!("127.0.0.{}", 2 + i / 250).parse().unwrap();
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        let mut stream = socket.connect(server.addr).await.unwrap();
        stream.write_all(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.unwrap();
        held.push(stream);
    }
    let mut latencies = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        // A new connection each time: what a load balancer's health check opens.
        let status = reqwest::Client::new().get(format!("{}healthz", server.base)).send().await.unwrap().status();
        latencies.push(started.elapsed());
        assert_eq!(status, 200, "/healthz under {n} half-open connections");
    }
    latencies.sort();
    let started = Instant::now();
    login(&server.base).await;
    let login_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "/healthz with {n} half-open connections held: p50 {:.1} ms, max {:.1} ms; a login {login_ms:.0} ms",
        latencies[latencies.len() / 2].as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
    println!("RSS with {n} half-open connections:        {:>8.1} MB", server.rss_mb());
}

/// 64 clients, each logging in and then viewing the client area 20 times, again and again.
/// Returns the peak RSS (sampled every 100 ms) and the number of requests made.
async fn load(server: &Server) -> (f64, u64) {
    let deadline = Instant::now() + LOAD;
    let base = server.base.clone();
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let base = base.clone();
            tokio::spawn(async move {
                let mut requests = 0u64;
                while Instant::now() < deadline {
                    let c = login(&base).await;
                    requests += 2;
                    for _ in 0..20 {
                        let status = c.get(format!("{base}clientarea")).send().await.unwrap().status();
                        assert_eq!(status, 200);
                        requests += 1;
                    }
                }
                requests
            })
        })
        .collect();
    let mut peak: f64 = 0.0;
    while Instant::now() < deadline {
        peak = peak.max(server.rss_mb());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut requests = 0;
    for w in workers {
        requests += w.await.unwrap();
    }
    (peak.max(server.rss_mb()), requests)
}
