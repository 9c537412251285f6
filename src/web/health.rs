//! The doctor's report as the running server gives it — `/api/v1/health` and the admin area's
//! System Health — judged against the configuration file as it is now (so a fix applied from
//! the admin area shows at once) and computed at most once per 10 seconds however many ask:
//! concurrent requests wait for the one run in flight (single flight) and share its result.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::AppState;
use crate::config::Loaded;
use crate::doctor::context::Context;
use crate::doctor::{Doctor, Report};

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

    /// The doctor as this server runs it: over the current configuration, on its clock.
    fn doctor(&self) -> (Doctor, Loaded) {
        let loaded = self.current_config();
        (Doctor::new(&loaded).with_clock(self.db().clock().clone()), loaded)
    }

    /// A doctor context over the current configuration, on the server's clock.
    pub fn doctor_context(&self) -> Context {
        let (doctor, loaded) = self.doctor();
        doctor.context(loaded)
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
        let (doctor, loaded) = self.doctor();
        let report = Arc::new(doctor.report(loaded).await);
        *cached = Some((Instant::now(), report.clone()));
        report
    }
}
