//! Counters for `/metrics` (Prometheus text format). Lock-free: one atomic add per request.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;

#[derive(Default)]
pub struct Metrics {
    /// Responses by status class: 1xx … 5xx.
    by_class: [AtomicU64; 5],
    logins_ok: AtomicU64,
    logins_failed: AtomicU64,
}

impl Metrics {
    pub fn record(&self, status: StatusCode) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Responses sent so far.
    pub fn responses(&self) -> u64 {
        self.by_class.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub fn login(&self, ok: bool) {
        let c = if ok { &self.logins_ok } else { &self.logins_failed };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text; `counters` and `gauges` are (name, help, value) kept elsewhere.
    pub fn render(&self, counters: &[(&str, &str, f64)], gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP gatehouse_http_responses_total HTTP responses by status class.\n");
        out.push_str("# TYPE gatehouse_http_responses_total counter\n");
        for (i, c) in self.by_class.iter().enumerate() {
            let _ =
                writeln!(out, "gatehouse_http_responses_total{{class=\"{}xx\"}} {}", i + 1, c.load(Ordering::Relaxed));
        }
        out.push_str("# HELP gatehouse_logins_total Password logins by outcome.\n");
        out.push_str("# TYPE gatehouse_logins_total counter\n");
        let _ = writeln!(out, "gatehouse_logins_total{{outcome=\"ok\"}} {}", self.logins_ok.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "gatehouse_logins_total{{outcome=\"failed\"}} {}",
            self.logins_failed.load(Ordering::Relaxed)
        );
        for (kind, samples) in [("counter", counters), ("gauge", gauges)] {
            for (name, help, value) in samples {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
            }
        }
        out
    }
}
