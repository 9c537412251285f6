//! The check runner and the report formats, with stand-in checks whose behaviour is known.

use std::sync::Arc;
use std::time::Duration;

use gatehouse::config::{ConfigSource, load_from_str};
use gatehouse::doctor::check::CheckFuture;
use gatehouse::doctor::runner::RunOptions;
use gatehouse::doctor::{Check, Context, Meta, Outcome, Report, Selection, Status, diagnose, select};
use gatehouse::report::{self, FailOn, Format, RenderOptions};

enum Behaviour {
    Finish(Status, &'static str),
    After(u64, Status),
    Panic,
    Hang,
}

struct Fake {
    meta: &'static Meta,
    behaviour: Behaviour,
}

fn fake(
    id: &'static str,
    tags: &'static [&'static str],
    prerequisites: &'static [&'static str],
    behaviour: Behaviour,
) -> Arc<dyn Check> {
    let meta = Box::leak(Box::new(Meta {
        id,
        title: "a stand-in check",
        tags,
        symptom: "something users see",
        cause: "what causes it",
        next_steps: "what to do about it",
        prerequisites,
        ..Meta::BASE
    }));
    Arc::new(Fake { meta, behaviour })
}

impl Check for Fake {
    fn meta(&self) -> &'static Meta {
        self.meta
    }
    fn run<'a>(&'a self, _ctx: &'a Context) -> CheckFuture<'a> {
        Box::pin(async move {
            match self.behaviour {
                Behaviour::Finish(status, message) => outcome(status, message).with("observed", 42),
                Behaviour::After(ms, status) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    outcome(status, "finished late")
                }
                Behaviour::Panic => panic!("stand-in check exploded"),
                Behaviour::Hang => std::future::pending().await,
            }
        })
    }
}

fn outcome(status: Status, message: &str) -> Outcome {
    let o = match status {
        Status::Pass => Outcome::pass(message),
        Status::Warn => Outcome::warn(message),
        Status::Fail => Outcome::fail(message),
        Status::Error => Outcome::error(message),
        _ => Outcome::skipped(message),
    };
    if status == Status::Fail { o.fixable(gatehouse::doctor::fix::Fix::RequeueMail) } else { o }
}

fn context() -> Arc<Context> {
    Arc::new(Context::new(load_from_str(None, ConfigSource::Embedded, Vec::new()).unwrap()))
}

async fn run(checks: &[Arc<dyn Check>], per_check_ms: u64) -> Report {
    diagnose(checks, context(), &RunOptions::with_timeout(Duration::from_millis(per_check_ms))).await
}

fn statuses(report: &Report) -> Vec<(String, Status)> {
    report.results.iter().map(|r| (r.id.clone(), r.status)).collect()
}

#[tokio::test]
async fn every_status_comes_back_in_registry_order() {
    let checks = vec![
        fake("a.slow", &["a"], &[], Behaviour::After(150, Status::Pass)),
        fake("a.warn", &["a"], &[], Behaviour::Finish(Status::Warn, "careful")),
        fake("b.fail", &["b"], &[], Behaviour::Finish(Status::Fail, "broken <script>alert(1)</script> | pipe")),
        fake("b.error", &["b"], &[], Behaviour::Finish(Status::Error, "could not look")),
        fake("c.skipped", &["c"], &[], Behaviour::Finish(Status::Skipped, "not configured")),
    ];
    let report = run(&checks, 2000).await;
    let expected = [
        ("a.slow", Status::Pass),
        ("a.warn", Status::Warn),
        ("b.fail", Status::Fail),
        ("b.error", Status::Error),
        ("c.skipped", Status::Skipped),
    ];
    assert_eq!(statuses(&report), expected.map(|(i, s)| (i.to_string(), s)).to_vec());
    assert_eq!(
        (report.summary.pass, report.summary.warn, report.summary.fail, report.summary.error, report.summary.skipped),
        (1, 1, 1, 1, 1)
    );
    let fail = &report.results[2];
    assert_eq!(fail.remediation, "what to do about it", "problems get the check's next steps");
    assert!(fail.fix.available);
    assert_eq!(fail.evidence["observed"], 42);
    assert!(fail.doc.contains("something users see") && fail.doc.contains("what causes it"));
    assert_eq!(report.results[0].remediation, "", "a pass needs no remediation");
    // Another run gives the same results in the same order.
    let again = run(&checks, 2000).await;
    assert_eq!(statuses(&again), statuses(&report));
}

#[tokio::test]
async fn a_panicking_check_becomes_an_error_and_the_run_goes_on() {
    let checks = vec![
        fake("x.panics", &["x"], &[], Behaviour::Panic),
        fake("x.fine", &["x"], &[], Behaviour::Finish(Status::Pass, "ok")),
    ];
    let report = run(&checks, 1000).await;
    assert_eq!(report.results[0].status, Status::Error);
    assert!(report.results[0].message.contains("stand-in check exploded"), "{}", report.results[0].message);
    assert_eq!(report.results[1].status, Status::Pass);
}

#[tokio::test]
async fn a_hanging_check_times_out_at_its_deadline() {
    let checks = vec![
        fake("y.hangs", &["y"], &[], Behaviour::Hang),
        fake("y.fine", &["y"], &[], Behaviour::Finish(Status::Pass, "ok")),
    ];
    let report = run(&checks, 300).await;
    let hung = &report.results[0];
    assert_eq!(hung.status, Status::Timeout);
    assert!(hung.message.contains("300 ms"), "{}", hung.message);
    assert_eq!(hung.evidence["deadline_ms"], 300);
    assert!(hung.duration_ms >= 300);
    assert_eq!(report.results[1].status, Status::Pass);
    assert_eq!(report::exit_code(Format::Human, &report, FailOn::Fail), 1, "timeout counts as fail");
}

#[tokio::test]
async fn dependants_of_a_failed_prerequisite_are_blocked() {
    let checks = vec![
        fake("p.base", &["p"], &[], Behaviour::After(50, Status::Fail)),
        fake("p.warned", &["p"], &[], Behaviour::Finish(Status::Warn, "degraded")),
        fake("p.needs_base", &["p"], &["p.base"], Behaviour::Finish(Status::Pass, "would pass")),
        fake("p.needs_warned", &["p"], &["p.warned"], Behaviour::Finish(Status::Pass, "ran")),
        fake("p.chain", &["p"], &["p.needs_base"], Behaviour::Finish(Status::Pass, "would pass")),
    ];
    let report = run(&checks, 1000).await;
    let blocked = &report.results[2];
    assert_eq!(blocked.status, Status::Blocked);
    assert!(blocked.message.contains("p.base"), "{}", blocked.message);
    assert_eq!(blocked.evidence["prerequisite"], "p.base");
    assert_eq!(report.results[3].status, Status::Pass, "a warning prerequisite lets dependants run");
    assert_eq!(report.results[4].status, Status::Blocked, "blocking propagates");
    assert_eq!(report.summary.blocked, 2);
}

#[tokio::test]
async fn selection_by_id_tag_and_skip_adds_prerequisites() {
    let all = vec![
        fake("s.base", &["base"], &[], Behaviour::Finish(Status::Pass, "ok")),
        fake("s.one", &["one", "shared"], &["s.base"], Behaviour::Finish(Status::Pass, "ok")),
        fake("s.two", &["two", "shared"], &[], Behaviour::Finish(Status::Pass, "ok")),
    ];
    let ids = |sel: Selection| select(&all, &sel).unwrap().iter().map(|c| c.meta().id).collect::<Vec<_>>();
    assert_eq!(ids(Selection { only: vec!["s.one".into()], ..Default::default() }), ["s.base", "s.one"]);
    assert_eq!(ids(Selection { tags: vec!["shared".into()], ..Default::default() }), ["s.base", "s.one", "s.two"]);
    assert_eq!(ids(Selection { skip: vec!["s.two".into()], ..Default::default() }), ["s.base", "s.one"]);
    for bad in [
        Selection { only: vec!["s.nope".into()], ..Default::default() },
        Selection { skip: vec!["s.nope".into()], ..Default::default() },
        Selection { tags: vec!["nope".into()], ..Default::default() },
    ] {
        let err = select(&all, &bad).err().expect("refused");
        assert_eq!(err.exit_code(), 2);
    }
}

async fn sample_report() -> Report {
    let checks = vec![
        fake("f.pass", &["alpha"], &[], Behaviour::Finish(Status::Pass, "fine")),
        fake("f.warn", &["alpha"], &[], Behaviour::Finish(Status::Warn, "careful")),
        fake("f.fail", &["beta"], &[], Behaviour::Finish(Status::Fail, "broken <script>alert(1)</script> | pipe")),
        fake("f.skip", &["beta"], &[], Behaviour::Finish(Status::Skipped, "not configured")),
        fake("f.blocked", &["beta"], &["f.fail"], Behaviour::Finish(Status::Pass, "never")),
    ];
    run(&checks, 1000).await
}

const PLAIN: RenderOptions = RenderOptions { fail_on: FailOn::Fail, color: false };

#[tokio::test]
async fn exit_codes_follow_fail_on_and_nagios_has_its_own() {
    let report = sample_report().await;
    assert_eq!(report::exit_code(Format::Human, &report, FailOn::Fail), 1);
    assert_eq!(report::exit_code(Format::Json, &report, FailOn::Warn), 1);
    assert_eq!(report::exit_code(Format::Nagios, &report, FailOn::Fail), 2);

    let warn_only = run(&[fake("w.warn", &["w"], &[], Behaviour::Finish(Status::Warn, "careful"))], 1000).await;
    assert_eq!(report::exit_code(Format::Human, &warn_only, FailOn::Fail), 0);
    assert_eq!(report::exit_code(Format::Human, &warn_only, FailOn::Warn), 1);
    assert_eq!(report::exit_code(Format::Nagios, &warn_only, FailOn::Fail), 1);
    let clean = run(&[fake("c.pass", &["c"], &[], Behaviour::Finish(Status::Pass, "ok"))], 1000).await;
    assert_eq!(report::exit_code(Format::Human, &clean, FailOn::Warn), 0);
    assert!(report::render(Format::Nagios, &clean, PLAIN).starts_with("GATEHOUSE OK - 1 checks passed | pass=1 "));
    assert_eq!(report::exit_code(Format::Nagios, &run(&[], 1000).await, FailOn::Fail), 3, "nothing ran: UNKNOWN");
}

#[tokio::test]
async fn json_matches_the_contract() {
    let report = sample_report().await;
    let v: serde_json::Value = serde_json::from_str(&report::render(Format::Json, &report, PLAIN)).unwrap();
    assert_eq!(v["schema"], "gatehouse.report/v1");
    assert_eq!(v["tool"]["name"], "gatehouse");
    for key in ["hostname", "os"] {
        assert!(v["host"][key].is_string());
    }
    assert!(chrono::DateTime::parse_from_rfc3339(v["started_at"].as_str().unwrap()).is_ok());
    assert!(v["duration_ms"].is_u64());
    let summary: Vec<&String> = v["summary"].as_object().unwrap().keys().collect();
    assert_eq!(summary, ["pass", "warn", "fail", "error", "timeout", "skipped", "blocked", "waived"]);
    let r = &v["results"][2];
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["id", "title", "tags", "status", "message", "evidence", "remediation", "doc", "fix", "duration_ms"]
    );
    assert_eq!(r["status"], "fail");
    assert_eq!(r["fix"]["available"], true);
    let fix: Vec<&String> = r["fix"].as_object().unwrap().keys().collect();
    assert_eq!(
        fix,
        ["available", "description", "changes_trust", "from_web"],
        "the change itself stays in the process"
    );
    // It reads back, for baselines and report diffs.
    let back: Report = serde_json::from_value(v).unwrap();
    assert_eq!(back.results.len(), 5);
}

#[tokio::test]
async fn junit_parses_and_carries_the_ids() {
    let report = sample_report().await;
    let xml = report::render(Format::Junit, &report, PLAIN);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    let names: Vec<&str> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(names, ["f.pass", "f.warn", "f.fail", "f.skip", "f.blocked"]);
    assert_eq!(cases[2].attribute("classname"), Some("gatehouse.beta"));
    let failure = cases[2].children().find(|n| n.has_tag_name("failure")).expect("failure element");
    assert!(failure.text().unwrap_or_default().contains("observed=42"));
    assert!(failure.attribute("message").unwrap().contains("broken"));
    for skipped in [3, 4] {
        assert!(cases[skipped].children().any(|n| n.has_tag_name("skipped")), "case {skipped}");
    }
    assert!(!cases[1].children().any(|n| n.has_tag_name("failure")), "a warning passes at --fail-on fail");
    let strict = report::render(Format::Junit, &report, RenderOptions { fail_on: FailOn::Warn, color: false });
    let doc = roxmltree::Document::parse(&strict).unwrap();
    let failures = doc.descendants().filter(|n| n.has_tag_name("failure")).count();
    assert_eq!(failures, 2, "at --fail-on warn the warning fails too");
}

#[tokio::test]
async fn sarif_parses_with_passes_and_failures() {
    let report = sample_report().await;
    let v: serde_json::Value = serde_json::from_str(&report::render(Format::Sarif, &report, PLAIN)).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "gatehouse");
    let rules: Vec<&str> =
        run["tool"]["driver"]["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(rules, ["f.pass", "f.warn", "f.fail", "f.skip", "f.blocked"]);
    let results = run["results"].as_array().unwrap();
    assert_eq!((results[0]["kind"].as_str(), results[0]["level"].as_str()), (Some("pass"), Some("none")));
    assert_eq!((results[2]["kind"].as_str(), results[2]["level"].as_str()), (Some("fail"), Some("error")));
    assert_eq!(results[1]["level"], "warning");
    assert_eq!(results[2]["ruleId"], "f.fail");
}

#[tokio::test]
async fn text_formats_carry_findings_and_escape_them() {
    let report = sample_report().await;
    let human = report::render(Format::Human, &report, PLAIN);
    assert!(human.contains("alpha\n") && human.contains("beta\n"), "grouped by category:\n{human}");
    assert!(human.contains("✖ f.fail") && human.contains("→ what to do about it"), "{human}");
    assert!(human.contains("fix available (--fix): put the failed messages back in the outbox"));
    assert!(
        human
            .trim_end()
            .ends_with(&format!("5 checks: 1 pass, 1 warn, 1 fail, 1 skipped, 1 blocked ({} ms)", report.duration_ms))
    );
    assert!(!human.contains('\u{1b}'), "no colour when not asked");
    let coloured = report::render(Format::Human, &report, RenderOptions { fail_on: FailOn::Fail, color: true });
    assert!(coloured.contains('\u{1b}'));

    let md = report::render(Format::Markdown, &report, PLAIN);
    assert!(md.contains("| fail | `f.fail` | broken \\<script\\>alert\\(1\\)\\</script\\> \\| pipe |"), "{md}");
    assert!(md.contains("## FAIL: a stand-in check (`f.fail`)"));

    let html = report::render(Format::Html, &report, PLAIN);
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"), "escaped, and no scripts of our own");
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "self-contained");

    let prom = report::render(Format::Prometheus, &report, PLAIN);
    assert!(prom.contains("gatehouse_check_status{id=\"f.fail\",category=\"beta\",status=\"fail\"} 1"));
    assert!(prom.contains("gatehouse_check_status{id=\"f.fail\",category=\"beta\",status=\"pass\"} 0"));
    assert!(prom.contains("gatehouse_checks{status=\"blocked\"} 1"));
    assert!(prom.contains("# TYPE gatehouse_doctor_duration_seconds gauge"));

    let nagios = report::render(Format::Nagios, &report, PLAIN);
    assert!(nagios.starts_with("GATEHOUSE CRITICAL - "), "{nagios}");
    assert_eq!(nagios.lines().count(), 1);
    assert_eq!(nagios.matches('|').count(), 1, "only the perfdata separator: {nagios}");
}
