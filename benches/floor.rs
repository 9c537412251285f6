//! `cargo bench --bench floor`: gatehouse's client area against the floor of its own stack.
//!
//! The floor is a server of the same stack — hyper under axum, tokio with one worker per core,
//! gatehouse's own pool (`store::Db`, the same settings) — whose `GET /clientarea` makes one
//! indexed `SELECT` of the session its cookie names joined to that session's user, and answers
//! a line of HTML: what a signed-in page view cannot cost less than. Both servers run as
//! processes of their own on one database and read the same sessions (the floor looks up the
//! cookie gatehouse set at login): SQLite (WAL) and, with `GATEHOUSE_BENCH_POSTGRES_URL`,
//! PostgreSQL (a schema of its own, dropped afterwards). `gatehouse serve` runs as an operator
//! runs it, request log included (written to /dev/null).
//!
//! Three rounds of 5 s, floor then gatehouse, 64 keep-alive connections from a one-thread load
//! generator in this process (like `wrk -t1`). Printed per round: requests/s, p99, gatehouse ÷
//! floor, and the CPU time per page view — the server process's (utime + stime from
//! `/proc/PID/stat`) and the machine's less this load generator's (`/proc/stat`; with
//! PostgreSQL it includes the database's backends). CPU per page view holds on a machine whose
//! speed drifts; requests/s does not.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use gatehouse::auth::sessions::cookie::COOKIE_NAME;

mod support;
use support::{LOAD_SETTINGS, Schema, ServeProcess, Views, http_client, login, machine_cpu, median, process_cpu};

const MEASURE: Duration = Duration::from_secs(5);
const CONNECTIONS: usize = 64;
/// Set in the floor server's environment: the database URL it reads.
const FLOOR_DATABASE: &str = "GATEHOUSE_BENCH_FLOOR_DATABASE";
const FLOOR_LISTEN: &str = "GATEHOUSE_BENCH_FLOOR_LISTEN";

fn main() {
    if let Ok(url) = std::env::var(FLOOR_DATABASE) {
        return floor_server(&url, &std::env::var(FLOOR_LISTEN).unwrap());
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let load = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    println!(
        "gatehouse ÷ floor — {} cores, {CONNECTIONS} connections, {} s per measurement, release build",
        support::cores(),
        MEASURE.as_secs()
    );
    let sqlite = dir.path().join("sqlite");
    let database = format!("sqlite://{}", sqlite.join("gatehouse-data/gatehouse.db").display());
    compare(&load, "SQLite (WAL)", &sqlite, "", &database);
    if let Ok(admin) = std::env::var("GATEHOUSE_BENCH_POSTGRES_URL") {
        let schema = load.block_on(Schema::create(admin));
        let setting = format!("database_url: \"{}\"\n", schema.url);
        compare(&load, "PostgreSQL (on the same cores)", &dir.path().join("postgres"), &setting, &schema.url);
        load.block_on(schema.drop());
    }
}

/// Starts gatehouse and the floor on one database, and measures them in turn.
fn compare(load: &tokio::runtime::Runtime, store: &str, dir: &std::path::Path, setting: &str, database: &str) {
    let gatehouse = ServeProcess::start(dir, &format!("{LOAD_SETTINGS}{setting}"));
    let floor = start_floor(dir, database);
    let client = http_client();
    let cookies = load.block_on(sessions(&client, &gatehouse.base, CONNECTIONS));
    println!("{store}:");
    // Caches, the pools' connections and the allocators' arenas warm before anything counts.
    for server in [&floor, &gatehouse] {
        measure(load, server, &cookies, Duration::from_secs(1));
    }
    let (mut fractions, mut floor_cpu, mut gatehouse_cpu) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=3 {
        let f = measure(load, &floor, &cookies, MEASURE);
        let g = measure(load, &gatehouse, &cookies, MEASURE);
        let fraction = g.views.per_second / f.views.per_second;
        println!(
            "  round {round}: floor {:>6.0} req/s p99 {:.2} ms, {:>3.0} µs CPU/view ({:.0} on the machine);  \
             gatehouse {:>6.0} req/s p99 {:.2} ms, {:>3.0} µs CPU/view ({:.0});  {:.0} % of the floor",
            f.views.per_second,
            f.views.p99_ms,
            f.process_us,
            f.machine_us,
            g.views.per_second,
            g.views.p99_ms,
            g.process_us,
            g.machine_us,
            100.0 * fraction
        );
        fractions.push(fraction);
        floor_cpu.push(f.machine_us);
        gatehouse_cpu.push(g.machine_us);
    }
    let (floor_cpu, gatehouse_cpu) = (median(floor_cpu), median(gatehouse_cpu));
    println!(
        "  gatehouse ÷ floor: min {:.0} %, median {:.0} %;  CPU per view on the machine (median): floor {floor_cpu:.0} µs, \
         gatehouse {gatehouse_cpu:.0} µs ({:.0} % of the floor's throughput at equal CPU)",
        100.0 * fractions.iter().copied().fold(f64::INFINITY, f64::min),
        100.0 * median(fractions),
        100.0 * floor_cpu / gatehouse_cpu
    );
}

/// Logs in `n` times (one session per connection); returns the cookies.
async fn sessions(client: &reqwest::Client, base: &str, n: usize) -> Vec<String> {
    let mut cookies = Vec::with_capacity(n);
    for _ in 0..n {
        cookies.push(login(client, base).await);
    }
    cookies
}

struct Measured {
    views: Views,
    /// CPU time of the server's process per page view.
    process_us: f64,
    /// CPU time of the whole machine per page view, less this process's (the load generator).
    machine_us: f64,
}

fn measure(load: &tokio::runtime::Runtime, server: &ServeProcess, cookies: &[String], length: Duration) -> Measured {
    let own = || process_cpu("/proc/self/stat");
    let (process, machine, generator) = (server.cpu(), machine_cpu(), own());
    let views = load.block_on(support::page_views(&server.base, "clientarea", cookies, length));
    let process = server.cpu() - process;
    let machine = (machine_cpu() - machine).saturating_sub(own() - generator);
    let per_view = |d: Duration| d.as_secs_f64() * 1e6 / views.count as f64;
    Measured { process_us: per_view(process), machine_us: per_view(machine), views }
}

/// This bench's own executable, started again as the floor server.
fn start_floor(dir: &std::path::Path, database: &str) -> ServeProcess {
    let addr = support::free_address();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(FLOOR_DATABASE, database)
        .env(FLOOR_LISTEN, addr.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    ServeProcess::started(child, addr, dir)
}

/// The floor server: tokio with one worker per core, gatehouse's pool, axum's router and
/// server, and one handler.
fn floor_server(database: &str, listen: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let url: gatehouse::config::DatabaseUrl = database.parse().unwrap();
        let db = gatehouse::store::Db::connect(&url, "floor").await.unwrap();
        let app = axum::Router::new().route("/clientarea", axum::routing::get(client_area)).with_state(db);
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        println!("listening on http://{listen}");
        axum::serve(listener, app).await.unwrap();
    });
}

async fn client_area(State(db): State<gatehouse::store::Db>, headers: HeaderMap) -> Response {
    const SESSION: &str =
        "SELECT u.first_name, u.last_name FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.key = $1";
    let cookie = headers.get(axum::http::header::COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(raw) = cookie.split("; ").find_map(|c| c.strip_prefix(COOKIE_NAME)?.strip_prefix('=')) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let key = gatehouse::secrets::tokens::digest(raw);
    match sqlx::query_as::<_, (String, String)>(SESSION).bind(key).fetch_optional(db.pool()).await {
        Ok(Some((first, last))) => {
            Html(format!("<!doctype html><title>Client area</title><p>{first} {last}</p>\n")).into_response()
        }
        Ok(None) => StatusCode::UNAUTHORIZED.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
