//! What checks can look at: the configuration, the database (opened lazily, never created or
//! migrated by looking), per-check thresholds from a profile, and the clock.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::accounts::Accounts;
use crate::config::{Backend, Config, Loaded};
use crate::cron::heartbeat::{self, Heartbeat};
use crate::net::resolve::Resolver;
use crate::services::Services;
use crate::store::{Clock, Db};

pub struct Context {
    pub loaded: Loaded,
    db: OnceCell<Result<Db, String>>,
    resolver: OnceCell<Result<Resolver, String>>,
    /// Built once per run: every check that reads data shares them (and one schema check).
    services: OnceCell<Result<Services, Unavailable>>,
    heartbeats: OnceCell<Result<Vec<Heartbeat>, Unavailable>>,
    thresholds: HashMap<String, Map<String, Value>>,
    deadline: Duration,
    clock: Clock,
}

/// Why there is nothing to look at, which a check reports instead of a finding: not yet (a
/// fresh deployment, pending migrations: skipped) or failed (unreachable, unreadable: error).
#[derive(Debug, Clone)]
pub enum Unavailable {
    NotYet(String),
    Failed(String),
}

impl Unavailable {
    pub fn message(self) -> String {
        match self {
            Unavailable::NotYet(m) | Unavailable::Failed(m) => m,
        }
    }
}

/// Why the database could not be opened for a check.
#[derive(Debug, Clone)]
pub enum DbUnavailable {
    /// A SQLite file that has not been created yet (a fresh embedded deployment).
    NotCreated(String),
    Unreachable(String),
}

impl Context {
    pub fn new(loaded: Loaded) -> Self {
        let deadline = loaded.config.doctor.timeout.as_std();
        Self {
            loaded,
            db: OnceCell::new(),
            resolver: OnceCell::new(),
            services: OnceCell::new(),
            heartbeats: OnceCell::new(),
            thresholds: HashMap::new(),
            deadline,
            clock: Clock::default(),
        }
    }

    /// Judges ages and expiries by `clock` (a running server's, in tests that advance it).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The time ages and expiries are judged by.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The per-check deadline the runner enforces. Network checks stop a little before it, so
    /// they can still say which phase was hanging.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// What network checks may spend: the deadline less a margin for reporting.
    pub fn network_budget(&self) -> Duration {
        self.deadline.mul_f64(0.9).saturating_sub(Duration::from_millis(20))
    }

    /// The resolver for DNS phases: the system one, or `doctor.dns_servers`.
    pub async fn resolver(&self) -> Result<&Resolver, String> {
        self.resolver
            .get_or_init(|| async { Resolver::new(&self.config().doctor.dns_servers) })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Threshold overrides for one check, by key, as a profile gives them.
    pub fn with_thresholds(mut self, thresholds: HashMap<String, Map<String, Value>>) -> Self {
        self.thresholds = thresholds;
        self
    }

    pub fn config(&self) -> &Config {
        &self.loaded.config
    }

    /// A numeric threshold for `check`, from the profile or else `default`.
    pub fn threshold(&self, check: &str, key: &str, default: f64) -> f64 {
        self.thresholds.get(check).and_then(|t| t.get(key)).and_then(Value::as_f64).unwrap_or(default)
    }

    /// The configured SQLite file, when the database is SQLite.
    pub fn sqlite_file(&self) -> Option<&Path> {
        let url = &self.config().database_url;
        (url.backend() == Backend::Sqlite).then(|| url.sqlite_path().map(Path::new)).flatten()
    }

    /// The database, connected on first use and shared by every check of the run.
    pub async fn db(&self) -> Result<&Db, DbUnavailable> {
        if let Some(file) = self.sqlite_file()
            && !file.exists()
        {
            return Err(DbUnavailable::NotCreated(file.display().to_string()));
        }
        let url = &self.config().database_url;
        let origin = self.loaded.origin("database_url");
        self.db
            .get_or_init(|| async {
                Db::connect(url, &origin).await.map(|db| db.with_clock(self.clock.clone())).map_err(|e| e.to_string())
            })
            .await
            .as_ref()
            .map_err(|e| DbUnavailable::Unreachable(e.clone()))
    }

    /// The services over a migrated database, or why there are none (a check reports it: see
    /// [`Unavailable`]). Built once per run.
    pub async fn services(&self) -> Result<&Services, Unavailable> {
        self.services
            .get_or_init(|| async {
                let db = match self.db().await {
                    Ok(db) => db,
                    Err(DbUnavailable::NotCreated(f)) => {
                        return Err(Unavailable::NotYet(format!("the database {f} has not been created yet")));
                    }
                    Err(DbUnavailable::Unreachable(e)) => return Err(Unavailable::Failed(e)),
                };
                match db.migration_status().await {
                    Ok(s) if s.is_current() => Ok(Services::over(db.clone(), &self.loaded)),
                    Ok(s) => Err(Unavailable::NotYet(format!(
                        "the database schema is not current (pending migrations {:?})",
                        s.pending
                    ))),
                    Err(e) => Err(Unavailable::Failed(format!("cannot read the schema version: {e}"))),
                }
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The accounts service (see [`Context::services`]).
    pub async fn accounts(&self) -> Result<Accounts, Unavailable> {
        self.services().await.map(|s| s.accounts.clone())
    }

    /// Every process's heartbeat, newest first, read once per run.
    pub async fn heartbeats(&self) -> Result<&[Heartbeat], Unavailable> {
        let services = self.services().await?;
        self.heartbeats
            .get_or_init(|| async {
                heartbeat::all(&services.db)
                    .await
                    .map_err(|e| Unavailable::Failed(format!("cannot read heartbeats: {e}")))
            })
            .await
            .as_ref()
            .map(Vec::as_slice)
            .map_err(Clone::clone)
    }

    /// The processes that beat recently enough to count as running (serve beats every 30 s,
    /// cron every run), judged by the database's clock so a node whose own clock is off is
    /// neither kept alive nor buried by it; and how many minutes "recently" is.
    pub async fn live_heartbeats(&self) -> Result<(Vec<&Heartbeat>, i64), Unavailable> {
        let freshness = (2 * self.config().cron.interval.as_secs()).max(600);
        let since = self.now() - freshness;
        let beats = self.heartbeats().await?;
        Ok((beats.iter().filter(|b| b.seen_at() >= since).collect(), freshness / 60))
    }

    pub async fn close(&self) {
        if let Some(Ok(db)) = self.db.get() {
            db.close().await;
        }
    }
}
