//! `cargo bench --bench serve`: the service's throughput on this machine.
//!
//! 1. Bare argon2id verifies per second with one blocking thread per core — the ceiling.
//! 2. Password logins per second through HTTP (GET /login for the CSRF token, POST /login),
//!    from 4 concurrent clients per core, so the bounded hashing pool (one hash per core) always
//!    has work waiting — should be ≥ 90 % of (1): hashing runs on that pool, never on the async
//!    workers.
//! 3. Session-authenticated `GET /clientarea` requests per second with p50/p99 latency, from
//!    64 keep-alive connections (the load generator shares the machine's cores).
//!
//! SQLite in WAL mode in a temporary directory; release build; request logging off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse::accounts::{Actor, ClientUpdate, NewClient, OwnerSpec};
use gatehouse::auth::passwords;
use gatehouse::web::AppState;

const PASSWORD: &str = "correct horse battery";
const MEASURE: Duration = Duration::from_secs(5);

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run());
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let config = dir.path().join("gatehouse.yaml");
    // Lockout is per IP and every benchmark client is 127.0.0.1: allow the burst.
    std::fs::write(
        &config,
        format!(
            "system_url: \"{base}\"\nsecurity:\n  lockout: {{ max_failures: 1000000, window: 1m, lock: 1m }}\n\
             sessions:\n  ip_check: false\n"
        ),
    )
    .unwrap();
    let loaded = gatehouse::config::load(Some(&config), Vec::<(String, String)>::new()).unwrap();
    let state = AppState::new(loaded).await.unwrap();
    let fields = ClientUpdate {
        email: Some("bench@example.com".into()),
        first_name: Some("Bench".into()),
        last_name: Some("Mark".into()),
        ..Default::default()
    };
    state
        .auth
        .accounts
        .create_client(
            &Actor::system("bench"),
            NewClient { fields, owner: OwnerSpec::NewUser { password: Some(PASSWORD.into()) } },
        )
        .await
        .unwrap();
    let server_state = state.clone();
    tokio::spawn(async move { gatehouse::web::run(server_state, listener, std::future::pending()).await });

    println!("gatehouse serve benchmark — {} cores, SQLite (WAL), {} s per measurement", cores(), MEASURE.as_secs());
    let verifies = bare_verifies().await;
    println!("bare argon2id verifies/s ({} threads):      {verifies:>9.1}", cores());
    let logins = logins(&base, 4 * cores()).await;
    println!(
        "HTTP logins/s ({} clients):                 {logins:>9.1}  ({:.0} % of bare verifies)",
        4 * cores(),
        100.0 * logins / verifies
    );
    let (rps, p50, p99) = clientarea(&base, 64).await;
    println!("GET /clientarea req/s (64 connections):    {rps:>9.0}  p50 {p50:.2} ms  p99 {p99:.2} ms");
}

async fn bare_verifies() -> f64 {
    let hash = Arc::new(passwords::hash(PASSWORD).unwrap());
    let deadline = Instant::now() + MEASURE;
    let mut handles = Vec::new();
    for _ in 0..cores() {
        let hash = hash.clone();
        handles.push(tokio::task::spawn_blocking(move || {
            let mut n = 0u64;
            while Instant::now() < deadline {
                assert!(passwords::verify(PASSWORD, &hash));
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    total as f64 / MEASURE.as_secs_f64()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn csrf(body: &str) -> String {
    body.split("name=\"csrf_token\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string()
}

async fn login(client: &reqwest::Client, base: &str) {
    let page = client.get(format!("{base}login")).send().await.unwrap().text().await.unwrap();
    let token = csrf(&page);
    let r = client
        .post(format!("{base}login"))
        .form(&[("csrf_token", token.as_str()), ("email", "bench@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "login failed");
}

async fn logins(base: &str, clients: usize) -> f64 {
    let deadline = Instant::now() + MEASURE;
    let mut handles = Vec::new();
    for _ in 0..clients {
        let base = base.to_string();
        handles.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                login(&browser(), &base).await;
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    total as f64 / MEASURE.as_secs_f64()
}

async fn clientarea(base: &str, connections: usize) -> (f64, f64, f64) {
    let deadline = Instant::now() + MEASURE;
    let mut handles = Vec::new();
    for _ in 0..connections {
        let base = base.to_string();
        handles.push(tokio::spawn(async move {
            let client = browser();
            login(&client, &base).await;
            let url = format!("{base}clientarea");
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                let r = client.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (all.len() as f64 / MEASURE.as_secs_f64(), pct(0.50), pct(0.99))
}
