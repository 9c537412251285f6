//! JUnit XML (quick-junit): one testcase per check, named by id and classed by category;
//! failures carry the message and evidence; skipped, blocked and waived are `skipped`.

use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};

use super::{RenderOptions, evidence_text};
use crate::doctor::{Report, Status};

pub fn render(report: &Report, options: RenderOptions) -> String {
    let mut suite = TestSuite::new("gatehouse doctor");
    for r in &report.results {
        let body = format!("{}\n\n{}\n\nremediation: {}", r.message, evidence_text(r), r.remediation);
        let status = match r.status {
            Status::Skipped | Status::Blocked | Status::Waived => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!("{}: {}", r.status, r.message));
                s
            }
            st if options.fail_on.fails(st) => {
                let kind = if matches!(st, Status::Error | Status::Timeout) {
                    NonSuccessKind::Error
                } else {
                    NonSuccessKind::Failure
                };
                let mut s = TestCaseStatus::non_success(kind);
                s.set_message(format!("{st}: {}", r.message));
                s.set_type(st.as_str());
                s.set_description(body.clone());
                s
            }
            _ => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(r.id.clone(), status);
        case.set_classname(format!("gatehouse.{}", r.category()));
        case.set_time(std::time::Duration::from_millis(r.duration_ms));
        if r.status == Status::Warn && !options.fail_on.fails(r.status) {
            case.set_system_out(format!("warn: {body}"));
        }
        suite.add_test_case(case);
    }
    let mut junit = JReport::new("gatehouse");
    junit.add_test_suite(suite);
    junit.to_string().unwrap_or_else(|e| format!("<!-- cannot render JUnit: {e} -->\n"))
}
