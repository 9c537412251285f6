//! Shared test harness: a fresh, migrated database on SQLite (always) or PostgreSQL (when
//! `GATEHOUSE_TEST_POSTGRES_URL` is set), each test in its own file or schema.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use gatehouse::accounts::{Accounts, Actor, Policy};
use gatehouse::config::DatabaseUrl;
use gatehouse::store::Db;

pub mod chrome;
pub mod doctor;
pub mod duo;
pub mod license_server;
pub mod nginx;
pub mod node;
pub mod proxy;
pub mod smtp;
#[macro_use]
pub mod web;

/// The built `gatehouse` binary, run in `dir`, with no GATEHOUSE_* configuration leaking in
/// from the test's own environment.
pub fn gatehouse(dir: &std::path::Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("gatehouse").unwrap();
    cmd.current_dir(dir);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("GATEHOUSE_")) {
        cmd.env_remove(key);
    }
    cmd
}

/// A loopback port that refuses every connection for the whole test run. Its socket is bound but
/// never listens, so no other test's server can be given the port while a test expects "refused"
/// there (a port bound and released at once can be handed out again in the meantime).
pub fn closed_port() -> u16 {
    static CLOSED: std::sync::LazyLock<tokio::net::TcpSocket> = std::sync::LazyLock::new(|| {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        socket
    });
    CLOSED.local_addr().unwrap().port()
}

/// Whether the tools the suite drives (Chromium, libfaketime) must be present: on CI, or when
/// `GATEHOUSE_TEST_REQUIRE_TOOLS` is set; elsewhere a test without its tool says so and returns.
pub fn tools_required() -> bool {
    ["CI", "GATEHOUSE_TEST_REQUIRE_TOOLS"].iter().any(|v| std::env::var_os(v).is_some())
}

/// A free loopback port for a server that must be told its port before it starts (nginx, a
/// `serve` whose system_url names it). Taken below the kernel's ephemeral range (32768–60999 by
/// default), from which every `bind(…:0)` of the other tests is served: a port bound and freed
/// there could be handed to another test before its server binds it.
pub fn port_for_a_server() -> u16 {
    let (low, _) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| {
            let mut parts = r.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((32768, 60999));
    let (from, to) = (low.saturating_sub(12_000).max(1024), low);
    for _ in 0..200 {
        let port = from + rand::random::<u16>() % (to - from);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {from} and {to}");
}

pub const POSTGRES_ENV: &str = "GATEHOUSE_TEST_POSTGRES_URL";

pub fn policy() -> Policy {
    Policy { password_min_length: 12, invite_ttl_secs: 7 * 86400, banned_email_subdomains: true }
}

pub struct Harness {
    pub accounts: Accounts,
    pub actor: Actor,
    _storage: Storage,
}

/// What holds a test database; dropping it removes the database.
enum Storage {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema(#[allow(dead_code)] PgSchema),
}

/// An empty PostgreSQL schema for one test, dropped with this guard.
pub struct PgSchema {
    /// A database URL whose search_path is the schema.
    pub url: String,
    admin_url: String,
    schema: String,
}

impl PgSchema {
    /// Creates a schema, or returns `None` (with a note) when no server is configured.
    pub async fn create() -> Option<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
            eprintln!("note: {POSTGRES_ENV} is not set; PostgreSQL variant not run");
            return None;
        };
        let schema = format!(
            "gh_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
        );
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is set but PostgreSQL is unreachable: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut c).await.unwrap();
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options[search_path]={schema}");
        Some(Self { url, admin_url, schema })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, sql) = (self.admin_url.clone(), format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        // Drop may run inside or outside a runtime, so the cleanup gets a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&url).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                }
            });
        })
        .join();
    }
}

impl Harness {
    pub async fn sqlite() -> Self {
        Self::sqlite_with(policy()).await
    }

    pub async fn sqlite_with(policy: Policy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url: DatabaseUrl = format!("sqlite://{}/gatehouse.db", dir.path().display()).parse().unwrap();
        let db = Db::connect(&url, "test").await.unwrap();
        db.migrate().await.unwrap();
        Self { accounts: Accounts::new(db, policy), actor: Actor::system("test"), _storage: Storage::Dir(dir) }
    }

    /// A harness on a fresh PostgreSQL schema, or `None` when no server is configured.
    pub async fn postgres() -> Option<Self> {
        Self::postgres_with(policy()).await
    }

    pub async fn postgres_with(policy: Policy) -> Option<Self> {
        let schema = PgSchema::create().await?;
        let db = Db::connect(&schema.url.parse().unwrap(), "test").await.unwrap();
        db.migrate().await.unwrap();
        Some(Self {
            accounts: Accounts::new(db, policy),
            actor: Actor::system("test"),
            _storage: Storage::Schema(schema),
        })
    }

    pub fn pool(&self) -> &sqlx::AnyPool {
        self.accounts.db().pool()
    }
}

/// Runs each named `async fn(&Harness)` against SQLite and, when configured, PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let h = $crate::support::Harness::sqlite().await;
                    super::$name(&h).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(h) = $crate::support::Harness::postgres().await else { return };
                    super::$name(&h).await;
                }
            )*
        }
    };
}

/// The versions of the migrations this build carries, oldest first (from `migrations/sqlite`).
pub fn migration_versions() -> Vec<i64> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut versions: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().split('_').next().unwrap().parse().unwrap())
        .collect();
    versions.sort_unstable();
    versions
}
