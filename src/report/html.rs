//! One self-contained HTML file (inline styles, no scripts, nothing fetched), auto-escaped.

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Value, context};

use super::summary_line;
use crate::doctor::Report;

const TEMPLATE: &str = include_str!("templates/report.html.j2");

pub fn render(report: &Report) -> String {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
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
    .unwrap_or_else(|e| format!("<!doctype html><p>cannot render the report: {e}</p>\n"))
}
