//! Markdown, for tickets and pull requests.

use minijinja::Environment;

use crate::doctor::Report;

const TEMPLATE: &str = include_str!("templates/report.md.j2");

/// Keeps a table cell on one line and its pipes literal.
fn cell(text: String) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn render(report: &Report) -> String {
    let mut env = Environment::new();
    env.add_filter("cell", cell);
    env.render_str(TEMPLATE, super::reading_context(report))
        .unwrap_or_else(|e| format!("cannot render the markdown report: {e}\n"))
}
