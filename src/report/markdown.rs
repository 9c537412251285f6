//! Markdown, for tickets and pull requests.

use minijinja::value::Serde;
use minijinja::{Environment, Value, context};

use super::summary_line;
use crate::doctor::Report;

const TEMPLATE: &str = include_str!("templates/report.md.j2");

/// Keeps a table cell on one line and its pipes literal.
fn cell(text: String) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

pub fn render(report: &Report) -> String {
    let mut env = Environment::new();
    env.add_filter("cell", cell);
    let (problems, rest) = super::problems_first(report);
    let seen = super::symptoms_seen(report);
    env.render_str(
        TEMPLATE,
        context! {
            report => Value::from(Serde(report)),
            problems => Value::from(Serde(&problems)),
            rest => Value::from(Serde(&rest)),
            seen => Value::from(Serde(&seen)),
            summary => summary_line(report),
        },
    )
    .unwrap_or_else(|e| format!("cannot render the markdown report: {e}\n"))
}
