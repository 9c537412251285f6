//! The bounded sample of request observations the doctor reasons about (`system_url.requests`,
//! `proxy.cloudflare`, `sessions.lifetime`): which host and scheme requests arrive on, from which
//! peer, which client IP was resolved, whether CloudFlare headers were present, and whether a
//! session ended because its IP changed. Recorded in memory on the request path (a mutex held
//! for a push), stored by the background task, and capped in the database.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::error::Result;
use crate::store::{Db, now};

/// Observations kept in memory between flushes, and rows kept in the database.
pub const CAPACITY: usize = 1000;

#[derive(Debug, Clone)]
pub struct Observation {
    at: i64,
    host: String,
    scheme: String,
    peer: IpAddr,
    client: IpAddr,
    cf_headers: bool,
    session_ip_change: bool,
}

impl Observation {
    pub fn new(host: String, scheme: String, peer: IpAddr, client: IpAddr, cf_headers: bool, ip_change: bool) -> Self {
        Self { at: now(), host, scheme, peer, client, cf_headers, session_ip_change: ip_change }
    }
}

#[derive(Default)]
pub struct Sample {
    pending: Mutex<VecDeque<Observation>>,
}

impl Sample {
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
                "INSERT INTO request_observations (at, host, scheme, peer_ip, client_ip, cf_headers, session_ip_change) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(o.at)
            .bind(&o.host)
            .bind(&o.scheme)
            .bind(o.peer.to_string())
            .bind(o.client.to_string())
            .bind(i64::from(o.cf_headers))
            .bind(i64::from(o.session_ip_change))
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
