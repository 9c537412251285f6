//! Profiles (`checks/*.yaml`), the pluggable part operators edit: which checks run, their
//! thresholds, waivers with a reason and an expiry, and declarative probes. A profile is linted
//! completely before anything runs; every mistake is reported with its file, line and column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::Selection;
use super::check::Check;
use super::probes::{self, ProbeSpec};
use crate::config::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    only: Vec<Spanned<String>>,
    #[serde(default)]
    skip: Vec<Spanned<String>>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    #[serde(default)]
    thresholds: HashMap<Spanned<String>, HashMap<Spanned<String>, Spanned<f64>>>,
    #[serde(default)]
    waivers: Vec<WaiverSpec>,
    #[serde(default)]
    probes: Vec<ProbeSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiverSpec {
    check: Spanned<String>,
    reason: Spanned<String>,
    expires: Spanned<String>,
}

/// A waiver: results of `check` are reported as `waived` until `expires` (inclusive).
#[derive(Debug, Clone)]
pub struct Waiver {
    pub check: String,
    pub reason: String,
    pub expires: NaiveDate,
    /// `FILE:LINE:COL` of the waiver, for the message when it has expired.
    pub location: String,
}

/// A linted profile, ready to use.
pub struct Profile {
    pub path: PathBuf,
    pub selection: Selection,
    pub thresholds: HashMap<String, Map<String, Value>>,
    pub waivers: Vec<Waiver>,
    pub probes: Vec<Arc<dyn Check>>,
}

/// Collects lint errors; the first is reported (in file order) so the message stays one line.
struct Lint<'a> {
    path: &'a str,
    errors: Vec<ConfigError>,
}

impl Lint<'_> {
    fn at<T>(&mut self, span: &Spanned<T>, message: String) {
        let at = span.referenced;
        self.errors.push(ConfigError::Invalid {
            path: self.path.into(),
            line: at.line(),
            column: at.column(),
            message,
        });
    }
}

/// Reads and lints a profile against the built-in checks.
pub fn load(path: &Path, builtin: &[Arc<dyn Check>]) -> Result<Profile, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Read { path: name.clone(), message: format!("cannot read profile: {e}") })?;
    let file: ProfileFile = if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        serde_saphyr::from_str("{}").expect("an empty mapping parses")
    } else {
        serde_saphyr::from_str(&text).map_err(|e| crate::config::yaml_error(&name, &e))?
    };
    let mut lint = Lint { path: &name, errors: Vec::new() };

    let mut probe_checks: Vec<Arc<dyn Check>> = Vec::new();
    for spec in file.probes {
        let id = spec.id().clone();
        if builtin.iter().chain(&probe_checks).any(|c| c.meta().id == id.value.trim()) {
            lint.at(&id, format!("check id `{}` is already taken", id.value.trim()));
            continue;
        }
        match probes::build(spec, &name) {
            Ok(check) => probe_checks.push(check),
            Err(e) => lint.errors.push(e),
        }
    }
    let all: Vec<&Arc<dyn Check>> = builtin.iter().chain(&probe_checks).collect();
    let find = |id: &str| all.iter().find(|c| c.meta().id == id).map(|c| c.meta());
    let known_ids = || all.iter().map(|c| c.meta().id).collect::<Vec<_>>().join(", ");

    for id in file.only.iter().chain(&file.skip) {
        if find(&id.value).is_none() {
            lint.at(id, format!("unknown check id `{}`; known: {}", id.value, known_ids()));
        }
    }
    for tag in &file.tags {
        if !all.iter().any(|c| c.meta().tags.contains(&tag.value.as_str())) {
            lint.at(tag, format!("no check has the tag `{}`", tag.value));
        }
    }
    let mut thresholds = HashMap::new();
    for (id, values) in &file.thresholds {
        let Some(meta) = find(&id.value) else {
            lint.at(id, format!("unknown check id `{}`; known: {}", id.value, known_ids()));
            continue;
        };
        let mut map = Map::new();
        for (key, value) in values {
            if !meta.thresholds.contains(&key.value.as_str()) {
                let accepted = if meta.thresholds.is_empty() { "none".to_string() } else { meta.thresholds.join(", ") };
                lint.at(key, format!("`{}` is not a threshold of {}; accepted: {accepted}", key.value, meta.id));
            } else if !value.value.is_finite() || value.value < 0.0 {
                lint.at(value, format!("threshold `{}` must be a non-negative number", key.value));
            } else {
                map.insert(key.value.clone(), Value::from(value.value));
            }
        }
        thresholds.insert(id.value.clone(), map);
    }
    let mut waivers = Vec::new();
    for w in &file.waivers {
        if find(&w.check.value).is_none() {
            lint.at(&w.check, format!("unknown check id `{}`; known: {}", w.check.value, known_ids()));
        }
        if w.reason.value.trim().is_empty() {
            lint.at(&w.reason, "a waiver needs a reason".into());
        }
        match NaiveDate::parse_from_str(w.expires.value.trim(), "%Y-%m-%d") {
            Ok(expires) => waivers.push(Waiver {
                check: w.check.value.clone(),
                reason: w.reason.value.trim().to_string(),
                expires,
                location: format!("{name}:{}:{}", w.check.referenced.line(), w.check.referenced.column()),
            }),
            Err(_) => lint.at(&w.expires, format!("expires `{}` is not a date such as 2027-01-31", w.expires.value)),
        }
    }
    if let Some(first) = lint.errors.into_iter().min_by_key(|e| match e {
        ConfigError::Invalid { line, column, .. } => (*line, *column),
        _ => (0, 0),
    }) {
        return Err(first);
    }
    let strings = |v: &[Spanned<String>]| v.iter().map(|s| s.value.clone()).collect();
    Ok(Profile {
        path: path.to_path_buf(),
        selection: Selection { only: strings(&file.only), skip: strings(&file.skip), tags: strings(&file.tags) },
        thresholds,
        waivers,
        probes: probe_checks,
    })
}
