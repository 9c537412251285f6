//! SARIF 2.1.0: one rule per check, one result per run of it. Passes are `kind: pass`, waived
//! results carry a suppression with its justification. Rules carry the check's help (symptom,
//! cause, next steps); a finding about a configured value points at it in the config file.

use serde_json::{Value, json};

use crate::doctor::{Report, Status};

pub fn render(report: &Report) -> String {
    let rules: Vec<Value> = report
        .results
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.title,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": r.doc},
                "help": {"text": r.doc},
                "properties": {"tags": r.tags},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (kind, level) = match r.status {
                Status::Pass => ("pass", "none"),
                Status::Warn => ("fail", "warning"),
                Status::Fail | Status::Error | Status::Timeout => ("fail", "error"),
                Status::Skipped | Status::Blocked => ("notApplicable", "none"),
                Status::Waived => ("fail", "warning"),
            };
            let mut result = json!({
                "ruleId": r.id,
                "ruleIndex": i,
                "kind": kind,
                "level": level,
                "message": {"text": format!("{}: {}", r.status, r.message)},
                "properties": {"status": r.status, "evidence": r.evidence, "remediation": r.remediation, "duration_ms": r.duration_ms},
            });
            if let Some((file, line, column)) = config_location(r) {
                result["locations"] = json!([{"physicalLocation": {
                    "artifactLocation": {"uri": file},
                    "region": {"startLine": line, "startColumn": column},
                }}]);
            }
            if r.status == Status::Waived {
                result["suppressions"] = json!([{"kind": "external", "justification": r.message}]);
            }
            result
        })
        .collect();
    let sarif = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": report.tool.name, "version": report.tool.version, "rules": rules}},
            "invocations": [{"executionSuccessful": true, "startTimeUtc": report.started_at}],
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&sarif).expect("SARIF serializes") + "\n"
}

/// Where a finding's configured value was written (`configured_in` evidence: `path:line:col`),
/// when it came from a file.
fn config_location(r: &crate::doctor::CheckResult) -> Option<(String, u64, u64)> {
    let at = r.evidence.get("configured_in")?.as_str()?;
    let mut parts = at.rsplitn(3, ':');
    let column = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    let file = parts.next()?;
    Some((file.to_string(), line, column))
}
