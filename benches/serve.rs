//! `cargo bench --bench serve`: the service's throughput on this machine.
//!
//! 1. Bare argon2id verifies per second with one blocking thread per core — the ceiling.
//! 2. Password logins per second through HTTP (GET /login for the CSRF token, POST /login),
//!    from 4 concurrent clients per core, so the bounded hashing pool (one hash per core) always
//!    has work waiting — should be ≥ 90 % of (1): hashing runs on that pool, never on the async
//!    workers.
//! 3. Session-authenticated `GET /clientarea` requests per second with p50/p99 latency, from
//!    16, 64 and 256 keep-alive connections (the budget is read at 64).
//!
//! The server runs on its own multi-threaded runtime (one worker per core, as `gatehouse serve`
//! does); the load generator runs on one separate thread, like `wrk -t1` would — it shares the
//! machine's cores with the server, so the figures are a floor. SQLite in WAL mode in a temporary
//! directory — or, with `GATEHOUSE_BENCH_POSTGRES_URL=postgres://…`, PostgreSQL (a schema of its
//! own, dropped afterwards); release build; request logging off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use gatehouse::accounts::{Actor, ClientUpdate, NewClient, OwnerSpec};
use gatehouse::secrets::passwords;
use gatehouse::web::AppState;

const PASSWORD: &str = "correct horse battery";
const MEASURE: Duration = Duration::from_secs(5);

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let load = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = server.block_on(start_server(&dir.path().join("sqlite"), None));
    let postgres = std::env::var("GATEHOUSE_BENCH_POSTGRES_URL").ok().map(|url| {
        let schema = server.block_on(Schema::create(url));
        let base = server.block_on(start_server(&dir.path().join("postgres"), Some(&schema.url)));
        (schema, base)
    });

    println!("gatehouse serve benchmark — {} cores, SQLite (WAL), {} s per measurement", cores(), MEASURE.as_secs());
    let verifies = server.block_on(bare_verifies());
    println!("bare argon2id verifies/s ({} threads):      {verifies:>9.1}", cores());
    let logins = load.block_on(logins(&sqlite, 4 * cores()));
    println!(
        "HTTP logins/s ({} clients):                 {logins:>9.1}  ({:.0} % of bare verifies)",
        4 * cores(),
        100.0 * logins / verifies
    );
    // 64 is the budget's figure; the others show whether throughput holds as connections grow.
    for connections in [16, 64, 256] {
        let (rps, p50, p99) = load.block_on(clientarea(&sqlite, connections));
        println!(
            "GET /clientarea req/s ({connections:>3} connections):   {rps:>9.0}  p50 {p50:.2} ms  p99 {p99:.2} ms"
        );
    }
    if let Some((schema, pg)) = postgres {
        // The same page on each store in turn, so a busy moment on this machine hurts both.
        println!("PostgreSQL (the database on the same cores), interleaved with SQLite, 64 connections:");
        let mut ratios = Vec::new();
        for round in 1..=3 {
            let (lite, ..) = load.block_on(clientarea(&sqlite, 64));
            let (rps, p50, p99) = load.block_on(clientarea(&pg, 64));
            ratios.push(rps / lite);
            println!(
                "  round {round}: PostgreSQL {rps:>6.0} req/s  p50 {p50:.2} ms  p99 {p99:.2} ms;  SQLite {lite:>6.0}  ({:.0} %)",
                100.0 * rps / lite
            );
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "PostgreSQL ÷ SQLite: min {:.0} %, median {:.0} %, max {:.0} %",
            100.0 * ratios[0],
            100.0 * ratios[1],
            100.0 * ratios[2]
        );
        server.block_on(schema.drop());
    }
}

/// A PostgreSQL schema of the benchmark's own.
struct Schema {
    admin: String,
    name: String,
    url: String,
}

impl Schema {
    async fn create(admin: String) -> Self {
        use sqlx::Connection;
        let name = format!("gh_bench_{}", std::process::id());
        let mut c = sqlx::PgConnection::connect(&admin).await.expect("GATEHOUSE_BENCH_POSTGRES_URL is reachable");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&mut c).await.unwrap();
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options[search_path]={name}");
        Self { admin, name, url }
    }

    async fn drop(self) {
        use sqlx::Connection;
        if let Ok(mut c) = sqlx::PgConnection::connect(&self.admin).await {
            let _ =
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.name))).execute(&mut c).await;
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Starts the service on 127.0.0.1 with one client whose owner can log in; returns system_url.
async fn start_server(dir: &std::path::Path, database_url: Option<&str>) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let config = dir.join("gatehouse.yaml");
    // Every benchmark client is 127.0.0.1 and logs in as one account: allow the burst (an
    // account allows at most 100 failures; the bench makes none), and
    // more connections from that one address than the per-address limit.
    std::fs::write(
        &config,
        format!(
            "system_url: \"{base}\"\nsecurity:\n  lockout: {{ max_failures: 100, ip_max_failures: 1000000, window: 1m, lock: 1m }}\n\
             sessions:\n  ip_check: false\nserver:\n  max_connections_per_ip: 0\n{}",
            database_url.map(|u| format!("database_url: \"{u}\"\n")).unwrap_or_default()
        ),
    )
    .unwrap();
    let loaded = gatehouse::config::load(Some(&config), Vec::<(String, String)>::new()).unwrap();
    // As `gatehouse migrate` before `serve`, which never creates a database.
    gatehouse::store::Db::connect(&loaded.config.database_url, "bench").await.unwrap().migrate().await.unwrap();
    let state = AppState::new(loaded).await.unwrap();
    let fields = ClientUpdate {
        email: Some("bench@example.com".into()),
        first_name: Some("Bench".into()),
        last_name: Some("Mark".into()),
        ..Default::default()
    };
    state
        .accounts
        .create_client(
            &Actor::system("bench"),
            NewClient { fields, owner: OwnerSpec::NewUser { password: Some(PASSWORD.into()) } },
        )
        .await
        .unwrap();
    let server_state = state.clone();
    tokio::spawn(async move { gatehouse::web::run(server_state, listener, std::future::pending()).await });

    base
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

/// One HTTP client for every simulated browser: each login carries its own session cookie by
/// hand, so no client (and no TLS root store) is built per login.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// `name=value` of the response's session cookie.
fn session_cookie(r: &reqwest::Response) -> String {
    let header = r.headers().get(reqwest::header::SET_COOKIE).expect("a session cookie").to_str().unwrap();
    header.split(';').next().unwrap().to_string()
}

fn csrf(body: &str) -> String {
    body.split("name=\"csrf_token\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string()
}

/// A browser's login: the form (a pre-login session and its CSRF token), then the POST. Returns
/// the signed-in session's cookie.
async fn login(client: &reqwest::Client, base: &str) -> String {
    let form = client.get(format!("{base}login")).send().await.unwrap();
    let pre_login = session_cookie(&form);
    let token = csrf(&form.text().await.unwrap());
    let r = client
        .post(format!("{base}login"))
        .header(reqwest::header::COOKIE, pre_login)
        .form(&[("csrf_token", token.as_str()), ("email", "bench@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "login failed");
    session_cookie(&r)
}

async fn logins(base: &str, clients: usize) -> f64 {
    let client = http_client();
    let deadline = Instant::now() + MEASURE;
    let mut handles = Vec::new();
    for _ in 0..clients {
        let (base, client) = (base.to_string(), client.clone());
        handles.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                login(&client, &base).await;
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

/// Logs in once per connection, then drives `GET /clientarea` over one keep-alive HTTP/1.1
/// connection per client with hyper's bare connection API (no pool, no cookie jar), on a runtime
/// with a single thread, as an external load generator such as `wrk -t1` would.
async fn clientarea(base: &str, connections: usize) -> (f64, f64, f64) {
    let client = http_client();
    let mut cookies = Vec::new();
    for _ in 0..connections {
        cookies.push(login(&client, base).await);
    }
    let url: hyper::Uri = format!("{base}clientarea").parse().unwrap();
    let deadline = Instant::now() + MEASURE;
    let mut handles = Vec::new();
    for cookie in cookies {
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            let authority = url.authority().unwrap().clone();
            let stream = tokio::net::TcpStream::connect(authority.as_str()).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await.unwrap();
            tokio::spawn(conn);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let request = hyper::Request::get(url.path())
                    .header(hyper::header::HOST, authority.as_str())
                    .header(hyper::header::COOKIE, &cookie)
                    .body(Empty::new())
                    .unwrap();
                let started = Instant::now();
                let response = sender.send_request(request).await.unwrap();
                assert_eq!(response.status(), 200);
                response.into_body().collect().await.unwrap();
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
