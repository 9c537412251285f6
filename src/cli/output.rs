//! Printing results: one JSON document with `--json`, readable text otherwise.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::rfc3339;

pub struct Output {
    pub json: bool,
    pub color: ColorChoice,
    /// No progress bars.
    pub quiet: bool,
}

/// `--color`: when output is coloured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR or TERM=dumb says otherwise (CLICOLOR_FORCE forces it)
    #[default]
    Auto,
    Always,
    Never,
}

impl Output {
    /// Prints `value` as JSON, or the text `human` builds.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) -> Result<()> {
        if self.json {
            let text = serde_json::to_string_pretty(value).map_err(|e| Error::Internal(e.to_string()))?;
            println!("{text}");
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
        Ok(())
    }
}

/// Prints a refusal or failure on stderr: `error[code]: message`, or with `--json` the API's
/// shape, `{"error":{"code":…,"message":…}}`, for scripts that parse what they run.
pub fn error(e: &Error, json: bool) {
    if json {
        eprintln!("{}", serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}}));
    } else {
        eprintln!("error[{}]: {e}", e.code());
    }
}

/// Renders rows as left-aligned columns under a header.
/// A stored value as a terminal may show it: control characters (a terminal's escape
/// sequences among them, from data stored before they were refused) as visible escapes.
pub fn printable(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.chars().any(char::is_control) {
        return value.into();
    }
    value.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        return "(none)".into();
    }
    let rows: Vec<Vec<String>> =
        rows.into_iter().map(|row| row.into_iter().map(|c| printable(&c).into_owned()).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in &rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

/// Renders `label: value` lines with the values aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    pairs.iter().map(|(k, v)| format!("{:<width$} {}\n", format!("{k}:"), printable(v))).collect()
}

pub fn time(ts: i64) -> String {
    rfc3339(ts)
}

pub fn opt_time(ts: Option<i64>) -> String {
    ts.map(rfc3339).unwrap_or_else(|| "-".into())
}

/// Whether to colour what goes to a stream: `--color always|never` decides; with `auto`, by the
/// conventions terminals and their users share: `CLICOLOR_FORCE` (set, not `0`) forces it,
/// `NO_COLOR` (set, not empty) or `TERM=dumb` turns it off, and otherwise only a terminal gets
/// colour — never a file or a pipe (`serve > serve.log`).
pub fn colour(choice: ColorChoice, stream_is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => return true,
        ColorChoice::Never => return false,
        ColorChoice::Auto => {}
    }
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
        return true;
    }
    if set("NO_COLOR").is_some() || std::env::var_os("TERM").is_some_and(|t| t == "dumb") {
        return false;
    }
    stream_is_terminal
}

#[cfg(test)]
mod tests {
    #[test]
    fn terminal_escapes_in_stored_values_are_shown_not_obeyed() {
        let row = vec![vec!["Ann\u{1b}]0;pwned\u{7}\u{1b}[2J".to_string()]];
        let shown = super::table(&["name"], row);
        assert!(!shown.contains('\u{1b}') && !shown.contains('\u{7}'), "{shown:?}");
        assert!(shown.contains("Ann\\u{1b}]0;pwned"), "{shown:?}");
        assert_eq!(super::printable("plain"), "plain");
    }
}
