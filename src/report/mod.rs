//! Renderers for a doctor report: human, json, junit, markdown, html, prometheus, nagios and
//! sarif. Each is a pure function of the report.

pub mod bundle;
pub mod diff;
mod html;
mod human;
mod junit;
mod markdown;
mod nagios;
mod prometheus;
mod redact;
mod sarif;

use std::str::FromStr;

use crate::doctor::{Report, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Junit,
    Markdown,
    Html,
    Prometheus,
    Nagios,
    Sarif,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(s, true).map_err(|_| {
            format!("unknown format `{s}`; expected human, json, junit, markdown, html, prometheus, nagios or sarif")
        })
    }
}

/// What a failure is for this run (`--fail-on`): at `warn`, warnings count as failures too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Warn,
    Fail,
}

impl FailOn {
    pub fn threshold(self) -> u8 {
        match self {
            FailOn::Warn => 1,
            FailOn::Fail => 2,
        }
    }
    /// True when `status` is at or above the level that fails the run.
    pub fn fails(self, status: Status) -> bool {
        status.severity() >= self.threshold()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    pub fail_on: FailOn,
    pub color: bool,
}

pub fn render(format: Format, report: &Report, options: RenderOptions) -> String {
    match format {
        Format::Human => human::render(report, options),
        Format::Json => serde_json::to_string_pretty(report).expect("reports serialize") + "\n",
        Format::Junit => junit::render(report, options),
        Format::Markdown => markdown::render(report),
        Format::Html => html::render(report),
        Format::Prometheus => prometheus::render(report),
        Format::Nagios => nagios::render(report).0,
        Format::Sarif => sarif::render(report),
    }
}

/// The process exit code for a report: 0 nothing at or above `fail_on`, 1 otherwise. With
/// `--format nagios` the plugin convention applies instead (0 OK, 1 WARNING, 2 CRITICAL).
pub fn exit_code(format: Format, report: &Report, fail_on: FailOn) -> i32 {
    if format == Format::Nagios {
        return nagios::render(report).1;
    }
    i32::from(report.results.iter().any(|r| fail_on.fails(r.status)))
}

/// Results that fail the run and are worse than in `baseline` (a check absent from the
/// baseline counts as having passed there). With a baseline, only these fail the run.
pub fn regressions<'a>(report: &'a Report, baseline: &Report, fail_on: FailOn) -> Vec<&'a crate::doctor::CheckResult> {
    report
        .results
        .iter()
        .filter(|r| fail_on.fails(r.status))
        .filter(|r| {
            let before = baseline.results.iter().find(|b| b.id == r.id).map(|b| b.status.severity()).unwrap_or(0);
            r.status.severity() > before
        })
        .collect()
}

/// The one-line summary every human-facing format ends with.
pub fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    let mut parts: Vec<String> =
        Status::ALL.iter().filter(|st| s.count(**st) > 0).map(|st| format!("{} {}", s.count(*st), st)).collect();
    if parts.is_empty() {
        parts.push("no checks ran".into());
    }
    format!("{} checks: {} ({} ms)", report.results.len(), parts.join(", "), report.duration_ms)
}

/// Evidence as compact `key=value` pairs, for formats without structure.
pub fn evidence_text(r: &crate::doctor::CheckResult) -> String {
    r.evidence
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The problems (fail, error and timeout, then warn; each in report order) and the rest, for
/// the formats a person reads: problems first, the rest folded.
pub fn problems_first(report: &Report) -> (Vec<&crate::doctor::CheckResult>, Vec<&crate::doctor::CheckResult>) {
    let (mut problems, rest): (Vec<_>, Vec<_>) = report.results.iter().partition(|r| r.status.severity() > 0);
    problems.sort_by_key(|r| std::cmp::Reverse(r.status.severity()));
    (problems, rest)
}

/// What the templates of the formats a person reads are given: the report, its problems first
/// and the rest, the symptoms they explain, the summary line.
fn reading_context(report: &Report) -> minijinja::Value {
    use minijinja::value::{Serde, Value};
    let (problems, rest) = problems_first(report);
    minijinja::context! {
        report => Value::from(Serde(report)),
        problems => Value::from(Serde(&problems)),
        rest => Value::from(Serde(&rest)),
        seen => Value::from(Serde(&symptoms_seen(report))),
        summary => summary_line(report),
    }
}

/// The troubleshooting rows this report's problems explain, with how many problems explain
/// each: "what your users are probably seeing".
#[derive(Debug, serde::Serialize)]
pub struct SymptomSeen {
    pub name: &'static str,
    pub reported: &'static str,
    pub problems: usize,
}

pub fn symptoms_seen(report: &Report) -> Vec<SymptomSeen> {
    crate::doctor::symptoms::ALL
        .iter()
        .map(|s| SymptomSeen {
            name: s.name,
            reported: s.reported,
            problems: report.results.iter().filter(|r| r.symptoms.iter().any(|n| n == s.name)).count(),
        })
        .filter(|s| s.problems > 0)
        .collect()
}
