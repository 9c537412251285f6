//! Nagios plugin output: one status line with perfdata; exit 0 OK, 1 WARNING, 2 CRITICAL,
//! 3 UNKNOWN.

use crate::doctor::{Report, Status};

/// The plugin output and its exit code.
pub fn render(report: &Report) -> (String, i32) {
    let worst = report.worst();
    let (label, code) = match (report.results.is_empty(), worst) {
        (true, _) => ("UNKNOWN", 3),
        (_, 2) => ("CRITICAL", 2),
        (_, 1) => ("WARNING", 1),
        _ => ("OK", 0),
    };
    let problems: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.status.severity() > 0)
        .map(|r| format!("{} {}: {}", r.id, r.status, r.message))
        .collect();
    let text = if problems.is_empty() {
        format!("{} checks passed", report.summary.pass)
    } else {
        problems.join("; ").replace('|', "/")
    };
    let perf: Vec<String> = Status::ALL.iter().map(|s| format!("{s}={}", report.summary.count(*s))).collect();
    (format!("GATEHOUSE {label} - {text} | {} duration={}ms\n", perf.join(" "), report.duration_ms), code)
}
