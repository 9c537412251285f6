//! Failing fast while the database is down. The first request that finds the database
//! unavailable waits for the pool's connect timeout; for a few seconds after that, requests
//! are answered 503 at once instead of each waiting as long — a login, a page, an API call
//! would otherwise hold its connection (and the visitor) for the whole timeout. After the pause
//! the next request tries the database again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long requests are turned away after the database was found unavailable.
const PAUSE: Duration = Duration::from_secs(5);

/// Marks a response that found the database unavailable (the API's errors), so the request
/// layer trips the breaker.
#[derive(Clone, Copy)]
pub struct DatabaseDown;

pub struct Breaker {
    started: Instant,
    /// Milliseconds after `started` until which the database counts as down (0: not down).
    down_until_ms: AtomicU64,
}

impl Default for Breaker {
    fn default() -> Self {
        Self { started: Instant::now(), down_until_ms: AtomicU64::new(0) }
    }
}

impl Breaker {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The database was just found unavailable.
    pub fn trip(&self) {
        let until = self.now_ms().saturating_add(u64::try_from(PAUSE.as_millis()).unwrap_or(u64::MAX));
        self.down_until_ms.store(until, Ordering::Relaxed);
    }

    /// True while requests should be answered 503 without trying the database.
    pub fn is_open(&self) -> bool {
        self.now_ms() < self.down_until_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trip_opens_it_for_the_pause_only() {
        let breaker = Breaker::default();
        assert!(!breaker.is_open());
        breaker.trip();
        assert!(breaker.is_open());
        breaker.down_until_ms.store(breaker.now_ms().saturating_sub(1), Ordering::Relaxed);
        assert!(!breaker.is_open(), "after the pause the database is tried again");
    }
}
