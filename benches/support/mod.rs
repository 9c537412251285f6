//! What the benchmarks share: the account they log in as, a PostgreSQL schema of their own, a
//! `gatehouse serve` process, a browser's login, and the page-view load (hyper connections with a
//! fixed session cookie, like `wrk -t1`). Each bench uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse::auth::sessions::cookie::{COOKIE_NAME, DEVICE_COOKIE_NAME};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

pub const PASSWORD: &str = "correct horse battery";
pub const EMAIL: &str = "bench@example.com";

/// Every benchmark client is 127.0.0.1 and logs in as one account: allow the burst (an account
/// allows at most 100 failures; the benches make none), and more connections from that one
/// address than the per-address limit.
pub const LOAD_SETTINGS: &str = "security:\n  lockout: { max_failures: 100, ip_max_failures: 1000000, window: 1m, lock: 1m }\n\
                                 sessions:\n  ip_check: false\nserver:\n  max_connections_per_ip: 0\n";

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A PostgreSQL schema of the benchmark's own, from `GATEHOUSE_BENCH_POSTGRES_URL`; dropped by
/// [`Schema::drop`].
pub struct Schema {
    admin: String,
    name: String,
    pub url: String,
}

impl Schema {
    pub async fn create(admin: String) -> Self {
        use sqlx::Connection;
        let name = format!("gh_bench_{}", std::process::id());
        let mut c = sqlx::PgConnection::connect(&admin).await.expect("GATEHOUSE_BENCH_POSTGRES_URL is reachable");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&mut c).await.unwrap();
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options[search_path]={name}");
        Self { admin, name, url }
    }

    pub async fn drop(self) {
        use sqlx::Connection;
        if let Ok(mut c) = sqlx::PgConnection::connect(&self.admin).await {
            let _ =
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.name))).execute(&mut c).await;
        }
    }
}

/// The release binary as an operator runs it: `gatehouse serve` in its own process, on a
/// deployment made with the CLI (`migrate`, `client add`) in `dir`. Killed when dropped.
pub struct ServeProcess {
    pub child: Child,
    pub base: String,
    pub addr: SocketAddr,
    pub dir: PathBuf,
}

impl ServeProcess {
    /// `settings` are appended to the configuration (YAML).
    pub fn start(dir: &Path, settings: &str) -> ServeProcess {
        let bin = env!("CARGO_BIN_EXE_gatehouse");
        let addr = free_address();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("gatehouse.yaml"),
            format!("system_url: \"http://{addr}/\"\nlisten: \"{addr}\"\n{settings}"),
        )
        .unwrap();
        // gatehouse reads `GATEHOUSE_*` as settings (and refuses one it does not know, such as
        // the benches' own `GATEHOUSE_BENCH_*`): it gets none of them.
        let command = || {
            let mut c = Command::new(bin);
            for (name, _) in std::env::vars_os() {
                if name.to_string_lossy().starts_with("GATEHOUSE_") {
                    c.env_remove(name);
                }
            }
            c
        };
        let run = |args: &[&str]| {
            let status = command()
                .args(args)
                .current_dir(dir)
                .env("GATEHOUSE_PASSWORD", PASSWORD)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "gatehouse {args:?} failed");
        };
        run(&["migrate"]);
        run(&["client", "add", "--email", EMAIL, "--first-name", "Bench", "--last-name", "Mark"]);
        let child = command()
            .arg("serve")
            .current_dir(dir)
            .stdout(Stdio::piped())
            // Request logs are written (`info`, the default), to nowhere: the terminal is not
            // what is measured.
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self::started(child, addr, dir)
    }

    /// Waits for a child that prints `listening on …` once it accepts connections.
    pub fn started(mut child: Child, addr: SocketAddr, dir: &Path) -> ServeProcess {
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("listening on"), "server said: {line:?}");
        ServeProcess { child, base: format!("http://{addr}/"), addr, dir: dir.to_path_buf() }
    }

    pub fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kb / 1024.0
    }

    /// CPU time (user + system) the process has used so far.
    pub fn cpu(&self) -> Duration {
        process_cpu(&format!("/proc/{}/stat", self.child.id()))
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn ticks(n: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(n * 1_000_000_000 / per_second)
}

/// utime + stime of a `/proc/…/stat` file.
pub fn process_cpu(stat: &str) -> Duration {
    let text = std::fs::read_to_string(stat).unwrap();
    // The command name may hold spaces and parentheses: fields are counted after its last ')'.
    let fields: Vec<&str> = text[text.rfind(')').unwrap() + 2..].split_whitespace().collect();
    let (utime, stime): (u64, u64) = (fields[11].parse().unwrap(), fields[12].parse().unwrap());
    ticks(utime + stime)
}

/// CPU time the whole machine has spent busy (user, nice, system, interrupts; not steal).
pub fn machine_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/stat").unwrap();
    let line = text.lines().next().unwrap();
    let v: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().unwrap()).collect();
    ticks(v[0] + v[1] + v[2] + v[5] + v[6])
}

/// One HTTP client for every simulated browser: each login carries its own session cookie by
/// hand, so no client (and no TLS root store) is built per login.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// `name=value` of the cookie `name` the response sets, if it sets one.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next())
        .find(|pair| pair.split('=').next() == Some(name))
        .map(str::to_string)
}

fn csrf(body: &str) -> String {
    body.split("name=\"csrf_token\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string()
}

/// A browser's login: the form (its CSRF token and the cookie that carries it), then the POST.
/// Returns the signed-in session's cookie (`name=value`).
pub async fn login(client: &reqwest::Client, base: &str) -> String {
    login_from(client, base, &mut None).await
}

/// A login from a browser that keeps what gatehouse gives it: the device cookie set at its
/// first sign-in goes with each later one, as a returning user's browser sends it (so it is
/// a known device: no "new sign-in" notice, its own failure budget).
pub async fn login_from(client: &reqwest::Client, base: &str, device: &mut Option<String>) -> String {
    let form = client.get(format!("{base}login")).send().await.unwrap();
    let mut cookies = vec![set_cookie(&form, "gatehouse_form").expect("the form's cookie")];
    cookies.extend(device.clone());
    let token = csrf(&form.text().await.unwrap());
    let r = client
        .post(format!("{base}login"))
        .header(reqwest::header::COOKIE, cookies.join("; "))
        .form(&[("csrf_token", token.as_str()), ("email", EMAIL), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "login failed");
    if let Some(new) = set_cookie(&r, DEVICE_COOKIE_NAME) {
        *device = Some(new);
    }
    set_cookie(&r, COOKIE_NAME).expect("a session cookie")
}

/// What one load of page views measured.
pub struct Views {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub count: usize,
}

/// Drives `GET {base}{path}` over one keep-alive HTTP/1.1 connection per cookie for `length`,
/// with hyper's bare connection API (no pool, no cookie jar), as an external load generator such
/// as `wrk -t1` would when run on a single-threaded runtime. Every answer must be 200.
pub async fn page_views(base: &str, path: &str, cookies: &[String], length: Duration) -> Views {
    let url: hyper::Uri = format!("{base}{path}").parse().unwrap();
    let deadline = Instant::now() + length;
    let mut handles = Vec::new();
    for cookie in cookies {
        let (url, cookie) = (url.clone(), cookie.clone());
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
                assert_eq!(response.status(), 200, "GET {url}");
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
    Views {
        per_second: all.len() as f64 / length.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        count: all.len(),
    }
}

/// The median of three or more figures.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
