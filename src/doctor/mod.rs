//! The diagnostic toolkit: a registry of checks, a context to examine the deployment through,
//! and a runner that turns each known failure into a result with evidence and a remediation.
//! The doctor depends on the domain modules; nothing in the domain depends on it.

pub mod check;
pub mod checks;
pub mod context;
pub mod fix;
pub mod model;
pub mod probes;
pub mod profile;
pub mod run;
pub mod runner;
pub mod symptoms;

use std::sync::Arc;
use std::time::Instant;

pub use check::{Check, Meta, Outcome};
pub use context::Context;
pub use model::{CheckResult, Report, Status, Summary};
pub use run::Doctor;

use crate::error::{Error, Result};

/// Which checks to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub skip: Vec<String>,
    pub tags: Vec<String>,
}

/// The checks `selection` picks from `all`, in registry order, with the prerequisites of every
/// picked check added. Unknown ids and tags are refused.
pub fn select(all: &[Arc<dyn Check>], selection: &Selection) -> Result<Vec<Arc<dyn Check>>> {
    let known = |id: &str| all.iter().any(|c| c.meta().id == id);
    for id in selection.only.iter().chain(&selection.skip) {
        if !known(id) {
            return Err(Error::Usage(format!("unknown check id `{id}`; `gatehouse doctor --list` shows them")));
        }
    }
    for tag in &selection.tags {
        if !all.iter().any(|c| c.meta().tags.contains(&tag.as_str())) {
            return Err(Error::Usage(format!("no check has the tag `{tag}`; `gatehouse doctor --list` shows them")));
        }
    }
    let wanted = |c: &Arc<dyn Check>| {
        let m = c.meta();
        (selection.only.is_empty() || selection.only.iter().any(|id| id == m.id))
            && (selection.tags.is_empty() || selection.tags.iter().any(|t| m.tags.contains(&t.as_str())))
            && !selection.skip.iter().any(|id| id == m.id)
    };
    let mut ids: Vec<&'static str> = all.iter().filter(|c| wanted(c)).map(|c| c.meta().id).collect();
    // Close over prerequisites (they are few and shallow).
    let mut i = 0;
    while i < ids.len() {
        let meta = all.iter().find(|c| c.meta().id == ids[i]).expect("selected from all").meta();
        for p in meta.prerequisites {
            if !ids.contains(p) && known(p) {
                ids.push(p);
            }
        }
        i += 1;
    }
    Ok(all.iter().filter(|c| ids.contains(&c.meta().id)).cloned().collect())
}

/// Reports the results of waived checks as `waived` while their waiver holds, and adds a
/// warning for every waiver that has expired (the problem it hid is reported again).
pub fn apply_waivers(report: &mut Report, waivers: &[profile::Waiver], today: chrono::NaiveDate) {
    let mut expired = Vec::new();
    for w in waivers {
        if w.expires < today {
            expired.push(w);
            continue;
        }
        for r in report.results.iter_mut().filter(|r| r.id == w.check) {
            if r.status.severity() > 0 || r.status == Status::Blocked {
                r.evidence.insert("waived_status".into(), r.status.as_str().into());
                r.evidence.insert("waived_message".into(), r.message.clone().into());
                r.evidence.insert("waiver_expires".into(), w.expires.to_string().into());
                r.evidence.insert("waiver_defined_at".into(), w.location.clone().into());
                r.message = format!("waived until {}: {} (was {}: {})", w.expires, w.reason, r.status, r.message);
                r.status = Status::Waived;
            }
        }
    }
    if !expired.is_empty() {
        let list: Vec<String> =
            expired.iter().map(|w| format!("{} (expired {}, {})", w.check, w.expires, w.location)).collect();
        let mut evidence = serde_json::Map::new();
        evidence.insert("expired".into(), serde_json::json!(list));
        report.results.push(CheckResult {
            id: "profile.waivers".into(),
            title: "Profile waivers current".into(),
            tags: vec!["profile".into()],
            status: Status::Warn,
            message: format!("{} waiver(s) have expired and no longer apply: {}", expired.len(), list.join("; ")),
            evidence,
            remediation: "Fix what each waiver hid, or renew the waiver with a new reason and expiry.".into(),
            doc: "A waiver hides a known problem until its expiry date; after that the problem is reported again and \
                  the stale waiver is flagged."
                .into(),
            fix: Default::default(),
            duration_ms: 0,
            symptoms: Vec::new(),
        });
    }
    report.summary = Summary::of(&report.results);
}

/// Runs `checks` and assembles the report.
pub async fn diagnose(checks: &[Arc<dyn Check>], ctx: Arc<Context>, options: &runner::RunOptions) -> Report {
    let started_at = chrono::Utc::now();
    let clock = Instant::now();
    let results = runner::run(checks, ctx, options).await;
    Report {
        schema: model::SCHEMA.into(),
        tool: model::Tool { name: "gatehouse".into(), version: env!("CARGO_PKG_VERSION").into() },
        host: model::Host::this(),
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        duration_ms: clock.elapsed().as_millis() as u64,
        summary: Summary::of(&results),
        results,
        triage: None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// The doctor's modules use one another in one direction only — a newcomer can read them
    /// bottom up (model, context, fix, check, the checks, the runner, the run) and a change to
    /// one never has to be made in a module that uses it. Found from the `use` lines of the
    /// code (tests aside), so a new import that closes a circle fails here.
    #[test]
    fn no_circle_in_the_doctor() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/doctor");
        // The items mod.rs re-exports, by the module that defines them.
        let items = [
            ("Check", "check"),
            ("Meta", "check"),
            ("Outcome", "check"),
            ("Context", "context"),
            ("CheckResult", "model"),
            ("Report", "model"),
            ("Status", "model"),
            ("Summary", "model"),
            ("Doctor", "run"),
        ];
        let production = |path: &Path| {
            let text = std::fs::read_to_string(path).unwrap();
            text.split("#[cfg(test)]").next().unwrap_or_default().to_string()
        };
        // Each module's code, as seen from the doctor: a folder's files other than its mod.rs
        // name the doctor as `super::super::` (or `crate::doctor::`).
        let mut code: BTreeMap<String, String> = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                let mut all = String::new();
                for file in std::fs::read_dir(&path).unwrap() {
                    let file = file.unwrap().path();
                    let text = production(&file);
                    all += &if file.ends_with("mod.rs") {
                        text.replace("super::", "crate::doctor::")
                    } else {
                        text.replace("super::super::", "crate::doctor::").replace("super::", "self::")
                    };
                }
                code.insert(name, all);
            } else if name != "mod" {
                code.insert(name, production(&path).replace("super::", "crate::doctor::"));
            }
        }
        let modules: BTreeSet<String> = code.keys().cloned().collect();
        let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (module, text) in &code {
            let mut used = BTreeSet::new();
            for (i, _) in text.match_indices("crate::doctor::") {
                let rest = &text[i + "crate::doctor::".len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(list) => list.split('}').next().unwrap_or_default().split(',').collect(),
                    None => vec![rest],
                };
                for name in names {
                    let name = name.trim();
                    let head: String = name.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if modules.contains(&head) {
                        used.insert(head);
                    } else if let Some((_, m)) = items.iter().find(|(item, _)| *item == head) {
                        used.insert(m.to_string());
                    }
                }
            }
            used.remove(module);
            uses.insert(module.clone(), used);
        }
        // A depth-first walk that meets a module still on its path has found a circle.
        fn walk(
            m: &str,
            uses: &BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) {
            if let Some(at) = path.iter().position(|p| p == m) {
                panic!("a circle in doctor/: {} → {m}", path[at..].join(" → "));
            }
            if done.contains(m) {
                return;
            }
            path.push(m.to_string());
            for next in &uses[m] {
                walk(next, uses, path, done);
            }
            path.pop();
            done.insert(m.to_string());
        }
        let mut done = BTreeSet::new();
        for m in &modules {
            walk(m, &uses, &mut Vec::new(), &mut done);
        }
        assert!(uses["checks"].contains("fix") && uses["run"].contains("checks"), "the scan sees the uses: {uses:?}");
    }
}
