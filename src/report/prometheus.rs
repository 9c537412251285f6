//! Prometheus text exposition format: one gauge per check and status, durations, totals.

use std::fmt::Write;

use crate::doctor::{Report, Status};

fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out += "# HELP gatehouse_check_status 1 for the status each check ended in, 0 for the others.\n";
    out += "# TYPE gatehouse_check_status gauge\n";
    for r in &report.results {
        for st in Status::ALL {
            let _ = writeln!(
                out,
                "gatehouse_check_status{{id=\"{}\",category=\"{}\",status=\"{st}\"}} {}",
                label(&r.id),
                label(r.category()),
                u8::from(r.status == st)
            );
        }
    }
    out += "# HELP gatehouse_check_duration_seconds How long each check took.\n";
    out += "# TYPE gatehouse_check_duration_seconds gauge\n";
    for r in &report.results {
        let _ = writeln!(
            out,
            "gatehouse_check_duration_seconds{{id=\"{}\"}} {}",
            label(&r.id),
            r.duration_ms as f64 / 1000.0
        );
    }
    out += "# HELP gatehouse_checks Number of checks per status.\n";
    out += "# TYPE gatehouse_checks gauge\n";
    for st in Status::ALL {
        let _ = writeln!(out, "gatehouse_checks{{status=\"{st}\"}} {}", report.summary.count(st));
    }
    out += "# HELP gatehouse_doctor_duration_seconds Wall time of the whole run.\n";
    out += "# TYPE gatehouse_doctor_duration_seconds gauge\n";
    let _ = writeln!(out, "gatehouse_doctor_duration_seconds {}", report.duration_ms as f64 / 1000.0);
    out
}
