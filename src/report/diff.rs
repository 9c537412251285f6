//! `gatehouse report diff OLD NEW`: the results that changed between two reports. Each side
//! may be a bundle folder, a bundle `.tar.gz`, or a JSON report.

use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::doctor::{Report, Status};
use crate::error::{Error, Result};

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Change {
    pub id: String,
    pub before: Option<Status>,
    pub after: Option<Status>,
    pub message: String,
}

impl Change {
    /// Better, worse, or neither (a check that appeared or vanished).
    pub fn direction(&self) -> &'static str {
        match (self.before, self.after) {
            (Some(b), Some(a)) if a.severity() > b.severity() => "worse",
            (Some(b), Some(a)) if a.severity() < b.severity() => "better",
            (None, _) => "added",
            (_, None) => "removed",
            _ => "changed",
        }
    }
}

/// Reads the doctor report held by a bundle folder, bundle archive or JSON file.
pub fn load(path: &Path) -> Result<Report> {
    let unusable = |why: String| Error::Usage(format!("{}: {why}", path.display()));
    let text = if path.is_dir() {
        std::fs::read_to_string(path.join("report.json"))
            .map_err(|e| unusable(format!("no report.json in the bundle: {e}")))?
    } else if path.to_string_lossy().ends_with(".tar.gz") {
        let file = std::fs::File::open(path).map_err(|e| unusable(e.to_string()))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut found = None;
        for entry in archive.entries().map_err(|e| unusable(e.to_string()))? {
            let mut entry = entry.map_err(|e| unusable(e.to_string()))?;
            if entry.path().is_ok_and(|p| p.file_name().is_some_and(|n| n == "report.json")) {
                let mut text = String::new();
                entry.read_to_string(&mut text).map_err(|e| unusable(e.to_string()))?;
                found = Some(text);
                break;
            }
        }
        found.ok_or_else(|| unusable("no report.json in the archive".into()))?
    } else {
        std::fs::read_to_string(path).map_err(|e| unusable(e.to_string()))?
    };
    serde_json::from_str(&text).map_err(|e| unusable(format!("not a gatehouse JSON report: {e}")))
}

/// The checks whose status differs, in the newer report's order, then those only in the older.
pub fn diff(old: &Report, new: &Report) -> Vec<Change> {
    let mut changes: Vec<Change> = new
        .results
        .iter()
        .filter_map(|n| {
            let before = old.results.iter().find(|o| o.id == n.id).map(|o| o.status);
            (before != Some(n.status)).then(|| Change {
                id: n.id.clone(),
                before,
                after: Some(n.status),
                message: n.message.clone(),
            })
        })
        .collect();
    changes.extend(old.results.iter().filter(|o| !new.results.iter().any(|n| n.id == o.id)).map(|o| Change {
        id: o.id.clone(),
        before: Some(o.status),
        after: None,
        message: String::new(),
    }));
    changes
}
