//! Markdown, for tickets and pull requests.

use minijinja::Environment;

use crate::doctor::Report;

const TEMPLATE: &str = include_str!("templates/report.md.j2");

/// A message as literal text: results quote what requests carried (paths, hosts, headers),
/// which a visitor writes, so nothing in it may become a link, an image, markup or code in the
/// ticket system that renders the report.
fn text(value: String) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '!' | '|' | '#' | '(' | ')') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A table cell: literal text, on one line.
fn cell(value: String) -> String {
    text(value).replace('\n', " ")
}

/// JSON inside a code fence: a backquote (valid JSON as `\u0060`) cannot close the fence.
fn fenced(json: String) -> String {
    json.replace('`', "\\u0060")
}

pub fn render(report: &Report) -> String {
    let mut env = Environment::new();
    env.add_filter("cell", cell);
    env.add_filter("text", text);
    env.add_filter("fenced", fenced);
    env.render_str(TEMPLATE, super::reading_context(report))
        .unwrap_or_else(|e| format!("cannot render the markdown report: {e}\n"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_a_visitor_wrote_stays_text() {
        let link = super::text("visitors on [x](javascript:alert(1)) and <img src=x>".into());
        assert_eq!(link, "visitors on \\[x\\]\\(javascript:alert\\(1\\)\\) and \\<img src=x\\>");
        assert_eq!(super::fenced(r#"{"host": "```\n[x](y)"}"#.into()), r#"{"host": "\u0060\u0060\u0060\n[x](y)"}"#);
    }
}
