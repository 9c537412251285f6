//! An in-process `gatehouse serve` on 127.0.0.1 (real HTTP, real database), and a
//! cookie-keeping browser for it.

use std::net::SocketAddr;

use gatehouse::accounts::{Accounts, Actor, AdminPermission, ClientUpdate, NewClient, OwnerSpec};
use gatehouse::auth::Auth;
use gatehouse::web::AppState;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::PgSchema;

pub const PASSWORD: &str = "correct horse battery";

pub struct Server {
    /// system_url: `http://127.0.0.1:PORT/`.
    pub base: String,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub state: AppState,
    database_url: String,
    shutdown: Option<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    _schema: Option<PgSchema>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A client as a browser keeps its connections: never idle longer than the server keeps them
/// (`server.header_timeout`, 10 s). A request written on a connection the server is closing at
/// that instant fails (`IncompleteMessage`): what made tests that idle a browser for seconds
/// under load fail now and then.
fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().pool_idle_timeout(std::time::Duration::from_secs(5))
}

impl Server {
    /// Starts a server with `extra` YAML appended to a minimal configuration (`{addr}` in it
    /// stands for the listening address, `{port}` for its port; a `system_url:` in it replaces
    /// the default). `None` when
    /// the backend is PostgreSQL and no server is configured.
    pub async fn start(backend: Backend, extra: &str) -> Option<Server> {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, schema) = match backend {
            Backend::Sqlite => (format!("sqlite://{}/gatehouse.db", dir.path().display()), None),
            Backend::Postgres => {
                let s = PgSchema::create().await?;
                (s.url.clone(), Some(s))
            }
        };
        Some(Self::start_on(dir, database_url, schema, extra).await)
    }

    /// Starts a server on a given database URL (`schema` keeps a PostgreSQL schema alive).
    pub async fn start_on(
        dir: tempfile::TempDir,
        database_url: String,
        schema: Option<PgSchema>,
        extra: &str,
    ) -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // What `main` does for the binary: whatever gatehouse creates is private to its user.
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
        std::fs::create_dir_all(dir.path().join("gatehouse-data/sessions")).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Self::configure(dir.path(), &database_url, addr, extra).await;
        let mut server =
            Server { base: format!("http://{addr}/"), addr, dir, state, database_url, shutdown: None, _schema: schema };
        server.run(listener);
        server
    }

    /// Restarts the server on the same address and database with another `extra` configuration:
    /// what an operator does after editing gatehouse.yaml.
    pub async fn reconfigure(&mut self, extra: &str) {
        if let Some((tx, task)) = self.shutdown.take() {
            let _ = tx.send(());
            task.await.unwrap();
        }
        self.state = Self::configure(self.dir.path(), &self.database_url, self.addr, extra).await;
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.run(listener);
    }

    /// Restarts on the configuration file as it is on disk now: after `doctor --fix` edited it.
    pub async fn restart_from_file(&mut self) {
        let text = std::fs::read_to_string(self.dir.path().join("gatehouse.yaml")).unwrap();
        let extra: String =
            text.lines().filter(|l| !l.starts_with("database_url:")).map(|l| format!("{l}\n")).collect();
        self.reconfigure(&extra).await;
    }

    async fn configure(dir: &std::path::Path, database_url: &str, addr: SocketAddr, extra: &str) -> AppState {
        let extra = extra.replace("{addr}", &addr.to_string()).replace("{port}", &addr.port().to_string());
        let system_url = if extra.lines().any(|l| l.starts_with("system_url:")) {
            String::new()
        } else {
            format!("system_url: \"http://{addr}/\"\n")
        };
        let yaml = format!("{system_url}database_url: \"{database_url}\"\n{extra}");
        let path = dir.join("gatehouse.yaml");
        std::fs::write(&path, yaml).unwrap();
        let loaded = gatehouse::config::load(Some(&path), Vec::<(String, String)>::new()).unwrap();
        // What `gatehouse init` / `migrate` do before `serve`, which never creates a database.
        let db = gatehouse::store::Db::connect(&loaded.config.database_url, "test").await.unwrap();
        db.migrate().await.unwrap();
        db.close().await;
        AppState::new(loaded).await.unwrap()
    }

    fn run(&mut self, listener: tokio::net::TcpListener) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let run_state = self.state.clone();
        let task = tokio::spawn(async move {
            gatehouse::web::run(run_state, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        self.shutdown = Some((tx, task));
    }

    /// Another `serve` node on the same database, as behind a load balancer: the same
    /// system_url (requests to it carry that Host), its own process state.
    pub async fn second_node(&self) -> Server {
        let system_url = format!("system_url: \"{}\"\n", self.base);
        Server::start_on(tempfile::tempdir().unwrap(), self.database_url.clone(), None, &system_url).await
    }

    pub fn auth(&self) -> &Auth {
        &self.state.auth
    }

    pub fn accounts(&self) -> &Accounts {
        &self.state.accounts
    }

    pub fn sessions(&self) -> &gatehouse::auth::sessions::Sessions {
        &self.state.sessions
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    pub fn browser(&self) -> Browser {
        Browser::new(self)
    }

    /// A browser at a loopback address no other test uses (127.200.0.1, 127.200.0.2, …): for a
    /// burst that fills its own address's share of the hashing threads without touching that of
    /// the tests running beside it, whose browsers come from 127.0.0.1.
    pub fn browser_of_its_own(&self) -> Browser {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let local = std::net::Ipv4Addr::new(127, 200, (n / 250) as u8, (n % 250) as u8 + 1);
        self.browser_via(local.into(), std::sync::Arc::default())
    }

    /// A browser whose connections leave from `local` (127.0.0.2, …: one node of a proxy pool),
    /// keeping its cookies in `jar`: browsers sharing a jar are one visitor taking turns
    /// through the pool.
    pub fn browser_via(&self, local: std::net::IpAddr, jar: std::sync::Arc<reqwest::cookie::Jar>) -> Browser {
        let client = client_builder()
            .cookie_provider(jar)
            .local_address(local)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser { client, base: self.base.clone(), extra: Vec::new() }
    }

    /// A browser that reaches this server under the host name `name` (resolved to 127.0.0.1 by
    /// the client itself), for behaviour browsers reserve for loopback addresses.
    /// A visitor at `local` (any loopback address: 127.0.0.0/8) that keeps no connection open
    /// between requests, so a test can be a thousand visitors without a thousand sockets.
    pub fn visitor_from(&self, local: std::net::IpAddr) -> Browser {
        let client = client_builder()
            .cookie_store(true)
            .local_address(local)
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser { client, base: self.base.clone(), extra: Vec::new() }
    }

    pub fn browser_as(&self, name: &str) -> Browser {
        let client = client_builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(name, self.addr)
            .build()
            .unwrap();
        Browser { client, base: format!("http://{name}:{}/", self.addr.port()), extra: Vec::new() }
    }

    /// A client (account) owned by a new user with [`PASSWORD`]: returns (user id, client id).
    pub async fn client_with_owner(&self, email: &str, company: &str) -> (i64, i64) {
        let fields = ClientUpdate {
            email: Some(email.into()),
            first_name: Some("Ann".into()),
            last_name: Some("Owner".into()),
            company: Some(company.into()),
            ..Default::default()
        };
        let client = self
            .accounts()
            .create_client(
                &Actor::system("test"),
                NewClient { fields, owner: OwnerSpec::NewUser { password: Some(PASSWORD.into()) } },
            )
            .await
            .unwrap();
        (client.owner_user_id, client.id)
    }

    /// An admin whose own role (`{username} role`) holds every permission, with [`PASSWORD`]:
    /// returns their id.
    pub async fn full_admin(&self, username: &str) -> i64 {
        let (actor, grantor) = (Actor::system("test"), gatehouse::accounts::Grantor::Operator);
        let (role, email) = (format!("{username} role"), format!("{username}@example.com"));
        self.accounts()
            .create_role(&actor, &grantor, &role, &AdminPermission::ALL.iter().copied().collect())
            .await
            .unwrap();
        let admin = self.accounts().create_admin(&actor, &grantor, username, &email, &role, Some(PASSWORD)).await;
        admin.unwrap().id
    }

    /// Refuses (`on`) or allows again every session a user holds that the server writes, signed
    /// in or half-way: the database failing the one write a step depends on.
    pub async fn refuse_user_sessions(&self, backend: Backend, on: bool) {
        let sql: &[&str] = match (backend, on) {
            (Backend::Sqlite, true) => &["CREATE TRIGGER refuse_session BEFORE INSERT ON sessions WHEN NEW.user_id \
                 IS NOT NULL BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
            (Backend::Postgres, true) => &[
                "CREATE OR REPLACE FUNCTION refuse_session() RETURNS trigger AS $$ BEGIN \
                 IF NEW.user_id IS NOT NULL THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$ \
                 LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_session BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION refuse_session()",
            ],
            (Backend::Sqlite, false) => &["DROP TRIGGER refuse_session"],
            (Backend::Postgres, false) => &["DROP TRIGGER refuse_session ON sessions"],
        };
        for &sql in sql {
            sqlx::query(sql).execute(self.state.db().pool()).await.unwrap();
        }
    }

    /// Audit actions recorded about a user, oldest first.
    pub async fn audit_actions(&self, user_id: i64) -> Vec<(String, Option<String>)> {
        let mut log = self.accounts().audit_log(Some((gatehouse::accounts::Target::User, user_id)), 500).await.unwrap();
        log.reverse();
        log.into_iter().map(|e| (e.action, e.ip)).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((tx, _)) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The value of the first hidden `csrf_token` input.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start =
            self.body.find(marker).unwrap_or_else(|| panic!("no csrf_token in page:\n{}", self.body)) + marker.len();
        self.body[start..].split('"').next().unwrap().to_string()
    }

    pub fn set_cookie(&self) -> Option<String> {
        self.headers.get("set-cookie").and_then(|v| v.to_str().ok()).map(str::to_string)
    }
}

/// A cookie-keeping HTTP client that does not follow redirects (tests assert them).
pub struct Browser {
    client: reqwest::Client,
    base: String,
    extra: Vec<(HeaderName, HeaderValue)>,
}

impl Browser {
    /// A browser for the site at `base` (a proxy in front of the server, say).
    pub fn at(base: &str) -> Self {
        let client = client_builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { client, base: base.to_string(), extra: Vec::new() }
    }

    pub fn new(server: &Server) -> Self {
        let client = client_builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { client, base: server.base.clone(), extra: Vec::new() }
    }

    /// Sends `name: value` on every following request (X-Forwarded-For, Host…).
    pub fn header(&mut self, name: &'static str, value: &str) {
        self.extra.retain(|(n, _)| n.as_str() != name);
        self.header_line(name, value);
    }

    /// Adds one more `name: value` line, keeping the lines already set for `name`.
    pub fn header_line(&mut self, name: &'static str, value: &str) {
        self.extra.push((HeaderName::from_static(name), HeaderValue::from_str(value).unwrap()));
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path.trim_start_matches('/'))
        }
    }

    async fn read(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        Page { status, headers, body: resp.text().await.unwrap() }
    }

    pub async fn get(&self, path: &str) -> Page {
        let mut req = self.client.get(self.url(path));
        for (n, v) in &self.extra {
            req = req.header(n, v);
        }
        Self::read(req.send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut req = self.client.post(self.url(path)).form(form);
        for (n, v) in &self.extra {
            req = req.header(n, v);
        }
        Self::read(req.send().await.unwrap()).await
    }

    /// GETs the page holding the form, then posts the form with that page's CSRF token.
    pub async fn submit(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.get(form_page).await;
        let csrf = page.csrf();
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", &csrf)];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    /// [`Browser::login`] for a client that may find the server too busy: the status, or the
    /// transport's error (an attacker does not care).
    pub async fn try_login(&self, email: &str, password: &str) -> Result<u16, reqwest::Error> {
        let page = self.client.get(self.url("login")).send().await?.text().await?;
        let marker = "name=\"csrf_token\" value=\"";
        let csrf = page.split(marker).nth(1).and_then(|r| r.split('"').next()).unwrap_or("").to_string();
        let form = [("csrf_token", csrf.as_str()), ("email", email), ("password", password)];
        Ok(self.client.post(self.url("login")).form(&form).send().await?.status().as_u16())
    }

    /// Email + password login; returns the answer to the POST.
    pub async fn login(&self, email: &str, password: &str) -> Page {
        self.submit("login", "login", &[("email", email), ("password", password)]).await
    }
}

/// An API token of a new admin whose role holds exactly `permissions`.
pub async fn admin_token(server: &Server, permissions: &[AdminPermission]) -> String {
    let actor = Actor::system("test");
    let accounts = server.accounts();
    // Unique, so a test can ask for several tokens of the same permissions.
    let keys = permissions.iter().map(|p| p.key()).collect::<Vec<_>>().join("+");
    let name = format!("{keys}-{}", rand::random::<u32>());
    let set: std::collections::BTreeSet<AdminPermission> = permissions.iter().copied().collect();
    accounts.create_role(&actor, &gatehouse::accounts::Grantor::Operator, &name, &set).await.unwrap();
    let admin = accounts
        .create_admin(
            &actor,
            &gatehouse::accounts::Grantor::Operator,
            &format!("admin-{name}"),
            "ops@example.com",
            &name,
            None,
        )
        .await
        .unwrap();
    accounts.create_api_token(&actor, &gatehouse::accounts::Grantor::Operator, admin.id, "test").await.unwrap().token
}

/// Calls the admin API; the status and the JSON body (null when there is none).
pub async fn api(
    server: &Server,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, server.url(&format!("api/v1/{path}"))).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs each named `async fn(Backend)` on SQLite and, when configured, PostgreSQL.
#[macro_export]
macro_rules! web_on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::support::web::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if std::env::var($crate::support::POSTGRES_ENV).is_err() {
                        eprintln!("note: {} is not set; PostgreSQL variant not run", $crate::support::POSTGRES_ENV);
                        return;
                    }
                    super::$name($crate::support::web::Backend::Postgres).await;
                }
            )*
        }
    };
}
