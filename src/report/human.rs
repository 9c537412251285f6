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
    if let Some(triage) = &report.triage {
        out += &paint(format!("Symptom: \"{}\" ({})\n", triage.reported, triage.symptom), Style::new().bold());
        if triage.likely_causes.is_empty() {
            out += "No check found a cause of it here.\n";
        } else {
            out += "Likely causes, most likely first:\n";
        }
        for (n, id) in triage.likely_causes.iter().enumerate() {
            let Some(r) = report.results.iter().find(|r| &r.id == id) else { continue };
            out += &paint(format!("  {}. {} {:<26} {}", n + 1, symbol(r.status), r.id, r.message), style(r.status));
            out += "\n";
            if let Some(causes) = triage.follows_from.get(id) {
                out += &format!("       follows from: {} (above)\n", causes.join(", "));
            }
            for (key, value) in r.evidence.iter().take(6) {
                let value = value.to_string();
                let value: String = value.chars().take(160).collect();
                out += &format!("       {key}: {value}\n");
            }
            if !r.remediation.is_empty() {
                out += &format!("       → {}\n", r.remediation);
            }
            if r.fix.available {
                out += &format!("       fix available (--fix {}): {}\n", r.id, r.fix.description);
            }
        }
        let named = |ids: &[String]| ids.join(", ");
        if !triage.ruled_out.is_empty() {
            out += &paint(format!("Ruled out: {}\n", named(&triage.ruled_out)), style(Status::Pass));
        }
        if !triage.undecided.is_empty() {
            out += &paint(format!("Could not tell: {}\n", named(&triage.undecided)), style(Status::Skipped));
        }
        out += "\n";
        out += &paint(summary_line(report), Style::new().bold());
        out += "\n";
        return out;
    }
    // Problems first, in full; then everything else, one line each, by category.
    let (problems, rest) = super::problems_first(report);
    if !problems.is_empty() {
        out += &paint("problems\n".to_string(), Style::new().bold());
        for r in &problems {
            out += &paint(format!("  {} {:<26} {}", symbol(r.status), r.id, r.message), style(r.status));
            out += "\n";
            if !r.remediation.is_empty() {
                out += &format!("      → {}\n", r.remediation);
            }
            if r.fix.available {
                out += &format!("      fix available (--fix): {}\n", r.fix.description);
            }
        }
        let seen = super::symptoms_seen(report);
        if !seen.is_empty() {
            let names: Vec<&str> = seen.iter().map(|s| s.name).collect();
            out += &format!(
                "  these can explain: {} (`doctor --symptom NAME` ranks the causes of one)\n",
                names.join(", ")
            );
        }
        out += "\n";
    }
    let mut categories: Vec<&str> = Vec::new();
    for r in &rest {
        if !categories.contains(&r.category()) {
            categories.push(r.category());
        }
    }
    for category in categories {
        out += &paint(format!("{category}\n"), Style::new().bold());
        for r in rest.iter().filter(|r| r.category() == category) {
            out += &paint(format!("  {} {:<26} {}", symbol(r.status), r.id, r.message), style(r.status));
            out += "\n";
        }
    }
    let line = summary_line(report);
    let worst = report.results.iter().map(|r| r.status).max_by_key(|s| s.severity()).unwrap_or(Status::Pass);
    out += "\n";
    out += &paint(line, style(if worst.severity() == 0 { Status::Pass } else { worst }));
    out += "\n";
    out
}
