//! One self-contained HTML file (inline styles, no scripts, nothing fetched), auto-escaped.

use minijinja::{AutoEscape, Environment};

use crate::doctor::Report;

const TEMPLATE: &str = include_str!("templates/report.html.j2");

pub fn render(report: &Report) -> String {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.render_str(TEMPLATE, super::reading_context(report))
        .unwrap_or_else(|e| format!("<!doctype html><p>cannot render the report: {e}</p>\n"))
}
