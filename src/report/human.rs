//! Terminal output: grouped by category, a symbol per result, the remediation under each
//! problem, and a summary line. Colour only when asked (a terminal without NO_COLOR).

use owo_colors::{OwoColorize, Style};

use super::{RenderOptions, summary_line};
use crate::doctor::{Report, Status};

fn symbol(status: Status) -> &'static str {
    match status {
        Status::Pass => "✔",
        Status::Warn => "⚠",
        Status::Fail | Status::Error => "✖",
        Status::Timeout => "⏱",
        Status::Skipped => "–",
        Status::Blocked => "⊘",
        Status::Waived => "≈",
    }
}

fn style(status: Status) -> Style {
    match status {
        Status::Pass => Style::new().green(),
        Status::Warn => Style::new().yellow(),
        Status::Fail | Status::Error | Status::Timeout => Style::new().red().bold(),
        Status::Skipped | Status::Blocked | Status::Waived => Style::new().dimmed(),
    }
}

pub fn render(report: &Report, options: RenderOptions) -> String {
    let paint = |text: String, s: Style| {
        if options.color { text.style(s).to_string() } else { text }
    };
    let mut out = String::new();
    let mut categories: Vec<&str> = Vec::new();
    for r in &report.results {
        if !categories.contains(&r.category()) {
            categories.push(r.category());
        }
    }
    for category in categories {
        out += &paint(format!("{category}\n"), Style::new().bold());
        for r in report.results.iter().filter(|r| r.category() == category) {
            let head = format!("  {} {:<26} {}", symbol(r.status), r.id, r.message);
            out += &paint(head, style(r.status));
            out += "\n";
            if r.status.severity() > 0 || r.status == Status::Blocked {
                if !r.remediation.is_empty() {
                    out += &format!("      → {}\n", r.remediation);
                }
                if r.fix.available {
                    out += &format!("      fix available (--fix): {}\n", r.fix.description);
                }
            }
        }
    }
    let line = summary_line(report);
    let worst = report.results.iter().map(|r| r.status).max_by_key(|s| s.severity()).unwrap_or(Status::Pass);
    out += "\n";
    out += &paint(line, style(if worst.severity() == 0 { Status::Pass } else { worst }));
    out += "\n";
    out
}
