//! `cargo bench --bench serve`: the service's throughput on this machine.
//!
//! 1. Bare argon2id verifies per second with one blocking thread per core, each reusing its
//!    working memory as the hashing threads do — the ceiling.
//! 2. Password logins per second through HTTP (GET /login for the CSRF token, POST /login),
//!    from 4 concurrent clients per core, so the bounded hashing pool (one hash per core) always
//!    has work waiting — should be ≥ 95 % of (1): hashing runs on that pool, never on the async
//!    workers. (1) and (2) are measured in turn, three rounds, a ratio per round; and the
//!    server's CPU time per verify against per login (every thread but the load generator's,
//!    from `/proc/self/task`): the share of a login's CPU that is the hash, which holds on a
//!    machine whose speed drifts.
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

use gatehouse::accounts::{Actor, ClientUpdate, NewClient, OwnerSpec};
use gatehouse::secrets::passwords;
use gatehouse::web::AppState;

mod support;
use support::{
    EMAIL, LOAD_SETTINGS, PASSWORD, Schema, cores, http_client, login, login_from, median, page_views, process_cpu,
};

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
    // Hashing alone, then logins through HTTP, in turn: the machine's speed drifts from minute
    // to minute, so each ratio is of two measurements taken one after the other.
    let (mut ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
    for round in 1..=3 {
        let before = server_cpu();
        let verifies = server.block_on(bare_verifies());
        let hashed = server_cpu();
        let logins = load.block_on(logins(&sqlite, 4 * cores()));
        let logged_in = server_cpu();
        ratios.push(logins / verifies);
        // CPU per operation holds on a machine whose speed drifts; operations per second do not.
        let per_verify = (hashed - before).as_secs_f64() / (verifies * MEASURE.as_secs_f64());
        let per_login = (logged_in - hashed).as_secs_f64() / (logins * MEASURE.as_secs_f64());
        cpu_ratios.push(per_verify / per_login);
        println!(
            "  round {round}: bare argon2id verifies/s ({} threads) {verifies:>6.1};  HTTP logins/s ({} clients) {logins:>6.1}  ({:.0} %);  \
             server CPU per verify {:.1} ms, per login {:.1} ms ({:.0} %)",
            cores(),
            4 * cores(),
            100.0 * logins / verifies,
            per_verify * 1000.0,
            per_login * 1000.0,
            100.0 * per_verify / per_login
        );
    }
    println!(
        "HTTP logins ÷ bare verifies: min {:.0} %, median {:.0} %;  at equal server CPU: min {:.0} %, median {:.0} %",
        100.0 * ratios.iter().copied().fold(f64::INFINITY, f64::min),
        100.0 * median(ratios),
        100.0 * cpu_ratios.iter().copied().fold(f64::INFINITY, f64::min),
        100.0 * median(cpu_ratios)
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

/// Starts the service on 127.0.0.1 with one client whose owner can log in; returns system_url.
async fn start_server(dir: &std::path::Path, database_url: Option<&str>) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let config = dir.join("gatehouse.yaml");
    std::fs::write(
        &config,
        format!(
            "system_url: \"{base}\"\n{LOAD_SETTINGS}{}",
            database_url.map(|u| format!("database_url: \"{u}\"\n")).unwrap_or_default()
        ),
    )
    .unwrap();
    let loaded = gatehouse::config::load(Some(&config), Vec::<(String, String)>::new()).unwrap();
    // As `gatehouse migrate` before `serve`, which never creates a database.
    gatehouse::store::Db::connect(&loaded.config.database_url, "bench").await.unwrap().migrate().await.unwrap();
    let state = AppState::new(loaded).await.unwrap();
    let fields = ClientUpdate {
        email: Some(EMAIL.into()),
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

/// CPU time of every thread of this process but the main one, which runs the load generator:
/// the server's workers, its hashing and SQLite threads, and the bare verifies' threads.
fn server_cpu() -> Duration {
    let main = std::process::id().to_string();
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| task.ok())
        .filter(|task| task.file_name().to_string_lossy() != main)
        .map(|task| process_cpu(&task.path().join("stat").to_string_lossy()))
        .sum()
}

async fn bare_verifies() -> f64 {
    let hash = Arc::new(passwords::hash(PASSWORD).unwrap());
    let deadline = Instant::now() + MEASURE;
    let mut handles = Vec::new();
    for _ in 0..cores() {
        let hash = hash.clone();
        handles.push(tokio::task::spawn_blocking(move || {
            // Each thread keeps its working memory from one hash to the next, as gatehouse's
            // hashing threads do: the hash alone is the ceiling.
            let (mut n, mut memory) = (0u64, passwords::Memory::default());
            while Instant::now() < deadline {
                assert!(passwords::verify_in(&mut memory, PASSWORD, &hash));
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

async fn logins(base: &str, clients: usize) -> f64 {
    let client = http_client();
    let deadline = Instant::now() + MEASURE;
    let mut handles = Vec::new();
    for _ in 0..clients {
        let (base, client) = (base.to_string(), client.clone());
        handles.push(tokio::spawn(async move {
            // Each client is one browser signing in again and again, as a returning user's does.
            let (mut n, mut device) = (0u64, None);
            while Instant::now() < deadline {
                login_from(&client, &base, &mut device).await;
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

/// Logs in once per connection, then drives `GET /clientarea` from each for [`MEASURE`].
async fn clientarea(base: &str, connections: usize) -> (f64, f64, f64) {
    let client = http_client();
    let mut cookies = Vec::new();
    for _ in 0..connections {
        cookies.push(login(&client, base).await);
    }
    let views = page_views(base, "clientarea", &cookies, MEASURE).await;
    (views.per_second, views.p50_ms, views.p99_ms)
}
