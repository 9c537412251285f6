//! The bounded sample of request observations the doctor reasons about (`system_url.requests`,
//! `sessions.cookie`, `sessions.lifetime`, `proxy.cloudflare`): which host and scheme requests
//! arrive on, from which peer, which client IP was resolved, whether CloudFlare headers were
//! present, and whether a session ended because its IP changed. `serve` records them in memory
//! on the request path (a mutex held for a push) and stores them from its background task,
//! stamped with its configuration's fingerprint; the table keeps the newest `CAPACITY` rows.
//! Readers look at one configuration's recent requests, so a fix shows as soon as traffic does.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::error::Result;
use crate::store::Db;

/// Observations kept in memory between flushes, and rows kept in the database.
pub const CAPACITY: usize = 1000;

/// What one request looked like from the server.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx_macros::FromRow)]
pub struct Observation {
    pub at: i64,
    /// The `Host` header, lower-case.
    pub host: String,
    /// The scheme the client used, as far as gatehouse can tell.
    pub scheme: String,
    /// The scheme came from a trusted proxy's header, not from the connection itself.
    pub scheme_from_proxy: Flag,
    pub peer_ip: String,
    pub client_ip: String,
    pub cf_headers: Flag,
    /// The request presented a session that `ip_check` ended because the client IP changed.
    pub session_ip_change: Flag,
    /// The request carried a forwarding header from a peer that is not trusted: a proxy in
    /// front whose visitors all appear as the proxy.
    pub forwarded_untrusted: Flag,
    /// Where the visitor was: see [`page_prefix`].
    pub page_path: String,
}

/// A boolean stored as 0/1 (portable across SQLite and PostgreSQL through the `Any` driver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Flag(pub bool);

impl From<i64> for Flag {
    fn from(v: i64) -> Self {
        Flag(v != 0)
    }
}

crate::stored_as!(Flag, i64);

impl Observation {
    pub fn new(
        at: i64,
        host: String,
        scheme: (String, bool),
        peer: IpAddr,
        client: IpAddr,
        flags: Flags,
        page_path: String,
    ) -> Self {
        let Flags { cf_headers: cf, session_ip_change: ip_change, forwarded_untrusted } = flags;
        let client_ip = client.to_string();
        // Without a proxy in front the two are one address: written out once.
        let peer_ip = if peer == client { client_ip.clone() } else { peer.to_string() };
        Self {
            at,
            host,
            scheme: scheme.0,
            scheme_from_proxy: Flag(scheme.1),
            peer_ip,
            client_ip,
            cf_headers: Flag(cf),
            session_ip_change: Flag(ip_change),
            forwarded_untrusted: Flag(forwarded_untrusted),
            page_path,
        }
    }
}

/// The path of the page a visitor was on (a same-host `Referer`, which the visitor writes),
/// kept only as far as it is made of words that are not the visitor's: segments of system_url's
/// path (`base_path`) and the literal segments of gatehouse's routes, at most as many as
/// system_url's path has (at least one). It stops at the first other segment — a token
/// (`/invite/TOKEN` is kept as `/invite/`), an id, or anything a visitor made up.
pub fn page_prefix(referer_path: &str, base_path: &str) -> String {
    let base: Vec<&str> = base_path.split('/').filter(|s| !s.is_empty()).collect();
    let segments: Vec<&str> = referer_path.trim_start_matches('/').split('/').collect();
    let mut out = String::from("/");
    for (i, segment) in segments.iter().take(base.len().max(1)).enumerate() {
        if !(base.contains(segment) || ROUTE_WORDS.contains(segment)) {
            break;
        }
        out.push_str(segment);
        if i + 1 < segments.len() {
            out.push('/');
        }
    }
    out
}

/// Every literal segment of gatehouse's routes (a test keeps the list complete).
const ROUTE_WORDS: &[&str] = &[
    ".well-known",
    "2fa",
    "account",
    "add",
    "admin",
    "admins",
    "as",
    "associate",
    "banned-emails",
    "callback",
    "cancel",
    "client",
    "clientarea",
    "clients",
    "close",
    "confirm",
    "create",
    "devices",
    "disable",
    "duo",
    "edit",
    "enable",
    "end",
    "fix",
    "forget",
    "forgot",
    "gatehouse",
    "health",
    "healthz",
    "impersonate",
    "invite",
    "invites",
    "livez",
    "login",
    "logout",
    "match",
    "metrics",
    "new",
    "not-me",
    "notifications",
    "owner",
    "password",
    "password-reset",
    "permissions",
    "profile",
    "question",
    "readyz",
    "register",
    "remove",
    "reset",
    "revoke",
    "role",
    "roles",
    "run",
    "save",
    "security",
    "security-questions",
    "sessions",
    "settings",
    "setup",
    "switch",
    "tokens",
    "unlock",
    "users",
];

/// What a request showed besides its addresses.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    pub cf_headers: bool,
    pub session_ip_change: bool,
    pub forwarded_untrusted: bool,
}

/// How far back readers look.
pub const WINDOW_SECS: i64 = 24 * 3600;

/// Observations waiting in memory for the next flush.
pub struct Sample {
    /// The fingerprint of the configuration the server runs with (`Loaded::fingerprint`).
    fingerprint: String,
    pending: Mutex<VecDeque<Observation>>,
}

impl Sample {
    pub fn new(fingerprint: String) -> Self {
        Self { fingerprint, pending: Mutex::default() }
    }

    pub fn record(&self, o: Observation) {
        let mut q = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() == CAPACITY {
            q.pop_front();
        }
        q.push_back(o);
    }

    /// Moves the pending observations to the database and trims it to the newest `CAPACITY`.
    pub async fn flush(&self, db: &Db) -> Result<()> {
        let batch: Vec<Observation> = self.pending.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect();
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = db.begin().await?;
        for o in &batch {
            sqlx::query(
                "INSERT INTO request_observations \
                 (at, host, scheme, scheme_from_proxy, peer_ip, client_ip, cf_headers, session_ip_change, \
                 forwarded_untrusted, page_path, config_fingerprint) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(o.at)
            .bind(&o.host)
            .bind(&o.scheme)
            .bind(i64::from(o.scheme_from_proxy.0))
            .bind(&o.peer_ip)
            .bind(&o.client_ip)
            .bind(i64::from(o.cf_headers.0))
            .bind(i64::from(o.session_ip_change.0))
            .bind(i64::from(o.forwarded_untrusted.0))
            .bind(&o.page_path)
            .bind(&self.fingerprint)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM request_observations WHERE id <= (SELECT MAX(id) FROM request_observations) - $1")
            .bind(CAPACITY as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The stored observations of the last `WINDOW_SECS` made under the configuration with
/// `fingerprint`, oldest first.
pub async fn recent(db: &Db, fingerprint: &str) -> Result<Vec<Observation>> {
    Ok(sqlx::query_as(
        "SELECT at, host, scheme, scheme_from_proxy, peer_ip, client_ip, cf_headers, session_ip_change, \
         forwarded_untrusted, page_path FROM request_observations WHERE config_fingerprint = $1 AND at >= $2 ORDER BY id",
    )
    .bind(fingerprint)
    .bind(db.now() - WINDOW_SECS)
    .fetch_all(db.pool())
    .await?)
}

#[cfg(test)]
mod tests {
    use super::page_prefix;

    #[test]
    fn a_page_path_keeps_what_system_urls_path_needs_and_no_token() {
        assert_eq!(page_prefix("/login", "/"), "/login");
        assert_eq!(page_prefix("/password/reset/s3cr3t", "/"), "/password/");
        assert_eq!(page_prefix("/clients/login", "/"), "/clients/");
        assert_eq!(page_prefix("/portal/billing/clientarea", "/portal/billing/"), "/portal/billing/");
        assert_eq!(page_prefix("/", "/"), "/");
        // A deeper system_url keeps more segments, but never a token or a visitor's words.
        assert_eq!(page_prefix("/invite/inv_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "/a/b/"), "/invite/");
        assert_eq!(page_prefix("/password/reset/pr_x/", "/a/b/c/"), "/password/reset/");
        assert_eq!(page_prefix("/x](javascript:alert(1))", "/"), "/");
        assert_eq!(page_prefix("/login/%5Bx%5D(javascript:1)", "/a/b/"), "/login/");
    }

    #[test]
    fn every_literal_segment_of_a_route_is_a_route_word() {
        let sources = [
            include_str!("../web/pages/mod.rs"),
            include_str!("../web/admin/mod.rs"),
            include_str!("../web/probes.rs"),
        ];
        for source in sources {
            for route in source.split(".route(\"").skip(1).filter_map(|r| r.split('"').next()) {
                for segment in route.split('/').filter(|s| !s.is_empty() && !s.starts_with('{')) {
                    assert!(
                        super::ROUTE_WORDS.contains(&segment),
                        "`{segment}` of {route} is missing from ROUTE_WORDS"
                    );
                }
            }
        }
    }
}
