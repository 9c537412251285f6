//! The result model and the JSON report contract (`schema: "gatehouse.report/v1"`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const SCHEMA: &str = "gatehouse.report/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// The check itself broke (it panicked, or could not examine what it looks at).
    Error,
    /// The check did not finish within its deadline.
    Timeout,
    /// Not applicable or not configured; the message says why.
    Skipped,
    /// A prerequisite did not pass; the message names it.
    Blocked,
    /// Waived by a profile, with a reason and an expiry.
    Waived,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Pass,
        Status::Warn,
        Status::Fail,
        Status::Error,
        Status::Timeout,
        Status::Skipped,
        Status::Blocked,
        Status::Waived,
    ];

    /// 0 = fine or not run, 1 = warning, 2 = failure (`error` and `timeout` count as `fail`).
    pub fn severity(self) -> u8 {
        match self {
            Status::Pass | Status::Skipped | Status::Blocked | Status::Waived => 0,
            Status::Warn => 1,
            Status::Fail | Status::Error | Status::Timeout => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::Timeout => "timeout",
            Status::Skipped => "skipped",
            Status::Blocked => "blocked",
            Status::Waived => "waived",
        }
    }

    /// A prerequisite in this state lets its dependants run.
    pub fn satisfies_prerequisite(self) -> bool {
        matches!(self, Status::Pass | Status::Warn | Status::Waived)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fix a result offers: decided once, by the check's judgement (what to change) and its
/// `Meta` (whether the change must be named, whether a browser may apply it), and read by every
/// face — `--fix`, System Health — from here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixInfo {
    /// A fix is offered and can be applied to this deployment.
    pub available: bool,
    /// What it changes; when a fix was proposed but cannot be applied here, why not.
    pub description: String,
    /// It changes who is trusted or where the site lives: applied only when its check is named.
    #[serde(default)]
    pub changes_trust: bool,
    /// An admin with `settings.manage` may apply it from System Health.
    #[serde(default)]
    pub from_web: bool,
    /// The change itself (not part of the JSON report).
    #[serde(skip)]
    pub proposal: Option<super::fix::Fix>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    pub id: String,
    pub title: String,
    pub tags: Vec<String>,
    pub status: Status,
    pub message: String,
    pub evidence: Map<String, Value>,
    pub remediation: String,
    pub doc: String,
    pub fix: FixInfo,
    pub duration_ms: u64,
    /// For a problem, the troubleshooting rows it can explain (`doctor --symptoms` lists them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symptoms: Vec<String>,
}

impl CheckResult {
    /// The category a result is grouped and classed under: its first tag.
    pub fn category(&self) -> &str {
        self.tags.first().map(String::as_str).unwrap_or("general")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub error: usize,
    pub timeout: usize,
    pub skipped: usize,
    pub blocked: usize,
    pub waived: usize,
}

impl Summary {
    pub fn of(results: &[CheckResult]) -> Self {
        let mut s = Summary::default();
        for r in results {
            *s.slot(r.status) += 1;
        }
        s
    }

    pub fn count(&self, status: Status) -> usize {
        match status {
            Status::Pass => self.pass,
            Status::Warn => self.warn,
            Status::Fail => self.fail,
            Status::Error => self.error,
            Status::Timeout => self.timeout,
            Status::Skipped => self.skipped,
            Status::Blocked => self.blocked,
            Status::Waived => self.waived,
        }
    }

    fn slot(&mut self, status: Status) -> &mut usize {
        match status {
            Status::Pass => &mut self.pass,
            Status::Warn => &mut self.warn,
            Status::Fail => &mut self.fail,
            Status::Error => &mut self.error,
            Status::Timeout => &mut self.timeout,
            Status::Skipped => &mut self.skipped,
            Status::Blocked => &mut self.blocked,
            Status::Waived => &mut self.waived,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    pub hostname: String,
    pub os: String,
}

impl Host {
    /// The machine this runs on.
    pub fn this() -> Self {
        Host {
            hostname: sysinfo::System::host_name().unwrap_or_default(),
            os: sysinfo::System::long_os_version().unwrap_or_else(|_| std::env::consts::OS.into()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub tool: Tool,
    pub host: Host,
    pub started_at: String,
    pub duration_ms: u64,
    pub summary: Summary,
    pub results: Vec<CheckResult>,
    /// With `--symptom`: the causes found for it, ranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triage: Option<Triage>,
}

impl Report {
    /// A report of a run that could not start (unreadable configuration, a bad profile): one
    /// `error` result, `doctor.run`, saying why — so a reader of JSON, JUnit or SARIF still
    /// gets a document it can parse.
    pub fn could_not_start(why: &str) -> Self {
        let result = CheckResult {
            id: "doctor.run".into(),
            title: "The doctor could run".into(),
            tags: vec!["doctor".into()],
            status: Status::Error,
            message: why.lines().next().unwrap_or_default().to_string(),
            evidence: Map::new(),
            remediation: "Fix what the message names (the configuration, a profile, an argument) and run again.".into(),
            doc: "The run stopped before any check: nothing about the deployment was examined.".into(),
            fix: FixInfo::default(),
            duration_ms: 0,
            symptoms: Vec::new(),
        };
        Report {
            schema: SCHEMA.into(),
            tool: Tool { name: "gatehouse".into(), version: env!("CARGO_PKG_VERSION").into() },
            host: Host::this(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            duration_ms: 0,
            summary: Summary::of(std::slice::from_ref(&result)),
            results: vec![result],
            triage: None,
        }
    }

    /// The worst severity among the results (0, 1 or 2).
    pub fn worst(&self) -> u8 {
        self.results.iter().map(|r| r.status.severity()).max().unwrap_or(0)
    }
}

/// A symptom's checks, judged: likely causes ranked — a cause above what it explains, then
/// fail, error and timeout before warn, then in the symptom's order of likelihood — those ruled
/// out (passed), and those that could not tell (skipped, blocked, waived).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Triage {
    pub symptom: String,
    pub reported: String,
    pub likely_causes: Vec<String>,
    /// For a likely cause that another one explains: those others (`sessions.gc` →
    /// `[cron.activity]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub follows_from: BTreeMap<String, Vec<String>>,
    pub ruled_out: Vec<String>,
    pub undecided: Vec<String>,
}
