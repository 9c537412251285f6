//! Reading `user import` files: CSV with a header row, or JSON lines. Errors name the file and
//! line, and say what was expected.

use std::path::Path;

use crate::accounts::ImportedUser;
use crate::error::{Error, Result};

fn format_of(file: &Path, format: Option<&str>) -> Result<&'static str> {
    match format {
        Some("csv") => Ok("csv"),
        Some(_) => Ok("jsonl"),
        None => match file.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => Ok("csv"),
            Some("jsonl" | "ndjson") => Ok("jsonl"),
            _ => Err(Error::Usage(format!(
                "{}: cannot tell the format from the extension; use .csv or .jsonl, or pass --format",
                file.display()
            ))),
        },
    }
}

/// The rows of the file, in order.
pub fn read(file: &Path, format: Option<&str>) -> Result<Vec<ImportedUser>> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?;
    let at = |line: u64, what: String| Error::Usage(format!("{}:{line}: {what}", file.display()));
    match format_of(file, format)? {
        "csv" => {
            let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
            let mut rows = Vec::new();
            for record in reader.deserialize::<ImportedUser>() {
                match record {
                    Ok(u) => rows.push(u),
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line());
                        return Err(at(line, format!("{e} (expected columns email,first_name,last_name[,language][,password_hash])")));
                    }
                }
            }
            Ok(rows)
        }
        _ => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str::<ImportedUser>(l)
                    .map_err(|e| at(i as u64 + 1, format!("{e} (expected an object with email, first_name, last_name, optional language and password_hash)")))
            })
            .collect(),
    }
}

/// The file line of the `row`-th record (0-based), for error messages.
pub fn line_of(file: &Path, format: Option<&str>, row: usize) -> u64 {
    let Ok(text) = std::fs::read_to_string(file) else { return 0 };
    match format_of(file, format) {
        // The header is line 1 and each record one line (quoted newlines are not expected here).
        Ok("csv") => row as u64 + 2,
        _ => text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).nth(row).map_or(0, |(i, _)| i as u64 + 1),
    }
}
