//! The doctor's report as Prometheus metrics (`--format prometheus`), through
//! `prometheus-client`: for node_exporter's textfile collector or a pushgateway, so the last
//! run's statuses, durations and time can be graphed and alerted on.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::doctor::{Report, Status};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    id: String,
    category: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IdLabel {
    id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

pub fn render(report: &Report) -> String {
    let mut registry = Registry::default();
    let status = Family::<StatusLabels, Gauge>::default();
    let durations = Family::<IdLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let totals = Family::<StatusLabel, Gauge>::default();
    registry.register(
        "gatehouse_check_status",
        "1 for the status each check ended in, 0 for the others",
        status.clone(),
    );
    registry.register("gatehouse_check_duration_seconds", "How long each check took", durations.clone());
    registry.register("gatehouse_checks", "Number of checks per status", totals.clone());
    for r in &report.results {
        for st in Status::ALL {
            let labels = StatusLabels { id: r.id.clone(), category: r.category().into(), status: st.to_string() };
            status.get_or_create(&labels).set(i64::from(r.status == st));
        }
        durations.get_or_create(&IdLabel { id: r.id.clone() }).set(r.duration_ms as f64 / 1000.0);
    }
    for st in Status::ALL {
        totals.get_or_create(&StatusLabel { status: st.to_string() }).set(report.summary.count(st) as i64);
    }
    let run: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
    run.set(report.duration_ms as f64 / 1000.0);
    registry.register("gatehouse_doctor_duration_seconds", "Wall time of the whole run", run);
    let started = chrono::DateTime::parse_from_rfc3339(&report.started_at).map(|t| t.timestamp()).unwrap_or_default();
    let last: Gauge = Gauge::default();
    last.set(started);
    registry.register("gatehouse_doctor_last_run_timestamp_seconds", "When this run started", last);
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        return format!("# cannot encode the report: {e}\n");
    }
    out
}
