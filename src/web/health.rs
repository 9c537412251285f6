//! The doctor's report as the running server gives it — `/api/v1/health` and the admin area's
//! System Health — judged against the configuration file as it is now (so a fix applied from
//! the admin area shows at once) and computed at most once per 10 seconds however many ask:
//! concurrent requests wait for the one run in flight (single flight) and share its result.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::AppState;
use crate::config::Loaded;
use crate::doctor::Report;
use crate::doctor::context::Context;

/// How long a report is served before the next request runs the doctor again.
const FRESH_FOR: Duration = Duration::from_secs(10);

/// The last report and when it was made; one per server (a `static` would hand one
/// deployment's report to another served from the same process).
#[derive(Default)]
pub struct HealthCache(Mutex<Option<(Instant, Arc<Report>)>>);

impl AppState {
    /// The configuration as its file says now; the one serve started with when the file can no
    /// longer be read (the doctor's config.valid check says why).
    pub fn current_config(&self) -> Loaded {
        self.loaded.reread().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot re-read the configuration; judging the one serve started with");
            self.loaded.clone()
        })
    }

    /// A doctor context over the current configuration, on the server's clock.
    pub fn doctor_context(&self) -> Context {
        let loaded = self.current_config();
        let timeout = loaded.config.doctor.timeout.as_std();
        Context::new(loaded).with_deadline(timeout).with_clock(self.db().clock().clone())
    }

    /// The doctor's report: the cached one while fresh, unless `rerun`.
    pub async fn health(&self, rerun: bool) -> Arc<Report> {
        let mut cached = self.health.0.lock().await;
        if !rerun
            && let Some((at, report)) = cached.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return report.clone();
        }
        let ctx = Arc::new(self.doctor_context());
        let options = crate::doctor::runner::RunOptions::with_timeout(ctx.deadline());
        let report = Arc::new(crate::doctor::diagnose(&crate::doctor::checks::builtin(), ctx.clone(), &options).await);
        ctx.close().await;
        *cached = Some((Instant::now(), report.clone()));
        report
    }
}
