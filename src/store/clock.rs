//! The time every expiry is judged by: sessions, lockouts, reset and invitation links, mail
//! retries. Real time, plus an offset a test can move forward — so an expiry test advances the
//! clock instead of sleeping (and cannot lose a race with a slow machine).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Unix seconds. Clones share one offset: every service built on one [`super::Db`] sees the
/// same time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// Real time, never moved: only for what another party judges by its own clock (a Duo
    /// request's `iat`/`exp`). Everything gatehouse stamps and judges uses [`Clock::now`].
    pub fn wall() -> i64 {
        chrono::Utc::now().timestamp()
    }

    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.offset.load(Ordering::Relaxed)
    }

    /// [`Clock::now`] in milliseconds (a heartbeat's clock offset needs better than a second).
    pub fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis() + self.offset.load(Ordering::Relaxed) * 1000
    }

    /// Moves this clock back by `by`: what an operator who sets the system clock back does (the
    /// licensing tests turn it back to prove standing is not judged earlier than it was).
    pub fn turn_back(&self, by: std::time::Duration) {
        self.offset.fetch_sub(i64::try_from(by.as_secs()).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Moves this clock forward by `by` (whole seconds), for everything that shares it.
    pub fn advance(&self, by: std::time::Duration) {
        self.offset.fetch_add(i64::try_from(by.as_secs()).unwrap_or(i64::MAX), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::default();
        let shared = clock.clone();
        let before = clock.now();
        shared.advance(std::time::Duration::from_secs(3600));
        assert!(clock.now() - before >= 3600);
        assert!(clock.now() - before < 3605);
    }
}
