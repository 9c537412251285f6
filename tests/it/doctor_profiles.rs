//! Profiles: linting with locations, thresholds, waivers and their expiry, probes, baselines.

use std::path::Path;

use crate::support::gatehouse;
use gatehouse::config::ConfigError;
use gatehouse::doctor::{checks, profile};
use serde_json::Value;

fn lint(text: &str) -> (u64, u64, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.yaml");
    std::fs::write(&path, text).unwrap();
    match profile::load(&path, &checks::builtin()) {
        Err(ConfigError::Invalid { path: p, line, column, message }) => {
            assert!(p.ends_with("profile.yaml"));
            (line, column, message)
        }
        Err(other) => panic!("expected a located error, got {other}"),
        Ok(_) => panic!("expected {text:?} to be refused"),
    }
}

#[test]
fn every_profile_mistake_is_located() {
    let cases = [
        ("only: [database.connectivity, disk.spaec]\n", 1, 31, "unknown check id `disk.spaec`"),
        ("skip:\n  - nope\n", 2, 5, "unknown check id `nope`"),
        ("tags: [nonsense]\n", 1, 8, "no check has the tag `nonsense`"),
        ("thresholds:\n  disk.spce: { min_free_percent: 3 }\n", 2, 3, "unknown check id `disk.spce`"),
        ("thresholds:\n  disk.space: { min_free_pct: 3 }\n", 2, 17, "`min_free_pct` is not a threshold of disk.space"),
        ("thresholds:\n  disk.space: { min_free_percent: -3 }\n", 2, 35, "non-negative"),
        ("thresholds:\n  disk.space: { min_free_percent: lots }\n", 2, 35, ""),
        ("waivers:\n  - { check: time.timezone, reason: \"\", expires: 2030-01-01 }\n", 2, 37, "needs a reason"),
        ("waivers:\n  - { check: time.timezone, reason: r, expires: soon }\n", 2, 49, "not a date"),
        ("waivers:\n  - { check: time.tz, reason: r, expires: 2030-01-01 }\n", 2, 14, "unknown check id `time.tz`"),
        ("descripton: typo\n", 1, 1, "unknown field `descripton`"),
        ("only: [disk.space]\nonly: [time.timezone]\n", 2, 1, "duplicate mapping key: only"),
        ("probes:\n  - id: probe.x\n", 2, 9, "needs one kind"),
        ("probes:\n  - id: probe.x\n    tcp: { address: \"a:1\" }\n    file: { path: x }\n", 2, 9, "several kinds"),
        ("probes:\n  - id: probe.x\n    tcp: { address: \"nohost\" }\n", 2, 9, "not HOST:PORT"),
        ("probes:\n  - id: disk.space\n    tcp: { address: \"a:1\" }\n", 2, 9, "already taken"),
        ("probes:\n  - id: probe.x\n    ldap: { url: \"x\" }\n", 3, 5, "unknown field `ldap`"),
        ("probes:\n  - id: probe.x\n    http: { url: \"x\" }\n", 2, 9, "http url `x`"),
        ("probes:\n  - id: probe.x\n    dns: { name: a.example, expect: [nope] }\n", 2, 9, "not an IP address"),
        ("probes:\n  - id: probe.x\n    sql: { query: \"SELECT 1\" }\n", 2, 9, "needs equals, min or max"),
        ("probes:\n  - id: probe.x\n    file: { path: a, max_mode: \"rwx\" }\n", 2, 9, "not octal"),
        ("only: [\n", 1, 7, "unclosed bracket"),
    ];
    for (text, line, column, says) in cases {
        let (l, c, message) = lint(text);
        assert_eq!((l, c), (line, column), "{text:?}: {message}");
        assert!(message.contains(says), "{text:?}: {message}");
        assert!(
            !message.contains('\n') && !message.contains("DuplicateKeyPolicy"),
            "one line, for operators: {message:?}"
        );
    }
}

#[test]
fn the_shipped_profiles_are_valid() {
    for name in ["default", "ci", "examples"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("checks/{name}.yaml"));
        profile::load(&path, &checks::builtin()).unwrap_or_else(|e| panic!("checks/{name}.yaml: {e}"));
    }
}

// ---- through the CLI, as an operator runs it ----

fn doctor(dir: &Path, profile_text: &str, extra: &[&str]) -> (i32, Value, String) {
    std::fs::write(dir.join("profile.yaml"), profile_text).unwrap();
    let out =
        gatehouse(dir).args(["doctor", "--format", "json", "--profile", "profile.yaml"]).args(extra).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap(), json, stderr)
}

fn result<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no result {id}: {report}"))
}

#[test]
fn a_bad_profile_stops_the_run_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, json, stderr) = doctor(tmp.path(), "only: [nope]\n", &[]);
    assert_eq!(code, 2);
    // Nothing ran; the reader of the JSON still gets a report, whose one result says why.
    assert_eq!(json["results"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(
        (json["results"][0]["id"].as_str(), json["results"][0]["status"].as_str()),
        (Some("doctor.run"), Some("error"))
    );
    assert!(json["results"][0]["message"].as_str().unwrap().contains("unknown check id `nope`"), "{json}");
    assert!(stderr.starts_with("error[invalid_config]: profile.yaml:1:8: unknown check id `nope`"), "{stderr}");
}

#[test]
fn thresholds_from_the_profile_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, report, _) =
        doctor(tmp.path(), "only: [disk.space]\nthresholds:\n  disk.space: { min_free_bytes: 1e18 }\n", &[]);
    assert_eq!(code, 1);
    assert_eq!(result(&report, "disk.space")["status"], "fail");
    assert_eq!(result(&report, "disk.space")["evidence"]["min_free_bytes"].as_f64(), Some(1e18));
}

#[test]
fn waivers_hold_until_they_expire() {
    let tmp = tempfile::tempdir().unwrap();
    let base = "only: [system_url.config]\n";
    std::fs::write(tmp.path().join("gatehouse.yaml"), "system_url: \"https://billing.example.com/portal\"\n").unwrap();
    let (code, report, _) = doctor(tmp.path(), base, &["--fail-on", "warn"]);
    assert_eq!((code, result(&report, "system_url.config")["status"].as_str()), (1, Some("warn")));

    let active = format!(
        "{base}waivers:\n  - check: system_url.config\n    reason: moving to the new domain\n    expires: 2999-01-01\n"
    );
    let (code, report, _) = doctor(tmp.path(), &active, &["--fail-on", "warn"]);
    let r = result(&report, "system_url.config");
    assert_eq!((code, r["status"].as_str()), (0, Some("waived")), "{report}");
    assert!(
        r["message"].as_str().unwrap().starts_with("waived until 2999-01-01: moving to the new domain (was warn: ")
    );
    assert_eq!(r["evidence"]["waived_status"], "warn");
    assert_eq!(report["summary"]["waived"], 1);

    let expired = active.replace("2999-01-01", "2020-01-01");
    let (code, report, _) = doctor(tmp.path(), &expired, &["--fail-on", "warn"]);
    assert_eq!(code, 1);
    assert_eq!(result(&report, "system_url.config")["status"], "warn", "the problem is back");
    let stale = result(&report, "profile.waivers");
    assert_eq!(stale["status"], "warn");
    assert!(
        stale["message"].as_str().unwrap().contains("system_url.config (expired 2020-01-01, profile.yaml:3:12)"),
        "{stale}"
    );
}

#[test]
fn probes_run_as_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().to_string();
    let closed = format!("127.0.0.1:{}", crate::support::closed_port());
    std::fs::write(tmp.path().join("secret.conf"), "key = value\n").unwrap();
    std::fs::set_permissions(tmp.path().join("secret.conf"), std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .unwrap();
    let text = format!(
        r#"only: [probe.open, probe.closed, probe.refused, probe.mode, probe.content, probe.cmd_ok, probe.cmd_bad, probe.warn_only]
probes:
  - {{ id: probe.open, tcp: {{ address: "{open}" }} }}
  - {{ id: probe.closed, tcp: {{ address: "{closed}", expect: closed }} }}
  - {{ id: probe.refused, tcp: {{ address: "{closed}" }} }}
  - {{ id: probe.mode, file: {{ path: secret.conf, max_mode: "0600" }} }}
  - {{ id: probe.content, file: {{ path: secret.conf, contains: "key = value" }} }}
  - {{ id: probe.cmd_ok, command: {{ run: [sh, -c, "echo ready"], output_contains: ready }} }}
  - {{ id: probe.cmd_bad, command: {{ run: [sh, -c, "exit 3"] }} }}
  - {{ id: probe.warn_only, severity: warn, remediation: "do the thing", file: {{ path: missing.txt }} }}
"#
    );
    let (code, report, stderr) = doctor(tmp.path(), &text, &[]);
    assert_eq!(code, 1, "{stderr}");
    let status = |id: &str| result(&report, id)["status"].as_str().unwrap().to_string();
    assert_eq!(status("probe.open"), "pass");
    assert_eq!(status("probe.closed"), "pass");
    assert_eq!(status("probe.refused"), "fail");
    assert_eq!(status("probe.mode"), "fail");
    assert_eq!(result(&report, "probe.mode")["evidence"]["mode"], "0644");
    assert_eq!(status("probe.content"), "pass");
    assert_eq!(status("probe.cmd_ok"), "pass");
    assert_eq!(status("probe.cmd_bad"), "fail");
    assert_eq!(result(&report, "probe.cmd_bad")["evidence"]["exit_code"], 3);
    assert_eq!(status("probe.warn_only"), "warn");
    assert_eq!(result(&report, "probe.warn_only")["remediation"], "do the thing");
    assert!(result(&report, "probe.open")["tags"].as_array().unwrap().contains(&Value::from("tcp")));
    drop(listener);
}

#[test]
fn a_hanging_command_probe_is_killed_at_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("finished");
    let text = format!(
        "probes:\n  - {{ id: probe.slow, command: {{ run: [sh, -c, \"sleep 2; touch {}\"] }} }}\nonly: [probe.slow]\n",
        marker.display()
    );
    let (code, report, _) = doctor(tmp.path(), &text, &["--timeout", "300ms"]);
    assert_eq!(code, 1);
    assert_eq!(result(&report, "probe.slow")["status"], "timeout");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(!marker.exists(), "the command was killed, not left running");
}

#[test]
fn sql_probes_query_the_configured_database() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(gatehouse(tmp.path()).args(["init", "--dir", "."]).output().unwrap().status.success());
    let text = "only: [probe.admins, probe.none]\nprobes:\n  - { id: probe.admins, sql: { query: \"SELECT COUNT(*) FROM admins\", equals: 1 } }\n  - { id: probe.none, sql: { query: \"SELECT COUNT(*) FROM clients\", min: 1 } }\n";
    let (code, report, stderr) = doctor(tmp.path(), text, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(result(&report, "probe.admins")["status"], "pass");
    assert_eq!(result(&report, "probe.none")["status"], "fail");
    assert_eq!(result(&report, "probe.none")["evidence"]["value"], 0);
    assert_eq!(result(&report, "database.connectivity")["status"], "pass", "prerequisite ran");
}

#[test]
fn a_baseline_fails_only_on_what_got_worse() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("gatehouse.yaml"), "trusted_proxies: { ranges: [\"0.0.0.0/0\"] }\n").unwrap();
    let run = |extra: &[&str]| {
        let out = gatehouse(tmp.path())
            .args(["doctor", "--only", "proxy.trusted,system_url.config", "--format", "json"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, saved, _) = run(&[]);
    assert_eq!(code, 1, "the known failure fails a plain run");
    std::fs::write(tmp.path().join("baseline.json"), &saved).unwrap();
    let (code, _, stderr) = run(&["--baseline", "baseline.json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("0 result(s) worse than before"), "{stderr}");

    std::fs::write(
        tmp.path().join("gatehouse.yaml"),
        "system_url: \"\"\ntrusted_proxies: { ranges: [\"0.0.0.0/0\"] }\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&["--baseline", "baseline.json"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("1 result(s) worse than before: system_url.config"), "{stderr}");

    std::fs::write(tmp.path().join("bad.json"), "{\"schema\": 1}").unwrap();
    let (code, _, stderr) = run(&["--baseline", "bad.json"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a gatehouse JSON report"), "{stderr}");
}

#[test]
fn network_and_disk_probes() {
    let tmp = tempfile::tempdir().unwrap();
    // A tiny HTTP server: one answer per connection, with a header and a body to match.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let reply = if request.starts_with("GET /old ") {
                "HTTP/1.1 301 Moved\r\nLocation: https://billing.example.com/new\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
            } else {
                "HTTP/1.1 200 OK\r\nX-Served-By: gatehouse-test\r\nContent-Length: 11\r\nConnection: close\r\n\r\nall healthy".to_string()
            };
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    let text = format!(
        r#"only: [probe.ok, probe.body, probe.header, probe.redirect, probe.status, probe.dns, probe.dns_wrong, probe.tls, probe.disk, probe.disk_full]
probes:
  - {{ id: probe.ok, http: {{ url: "http://127.0.0.1:{port}/healthz" }} }}
  - {{ id: probe.body, http: {{ url: "http://127.0.0.1:{port}/", body_contains: "all healthy" }} }}
  - {{ id: probe.header, http: {{ url: "http://127.0.0.1:{port}/", headers: {{ X-Served-By: gatehouse }} }} }}
  - {{ id: probe.redirect, http: {{ url: "http://127.0.0.1:{port}/old", status: 301, redirect_to: "https://billing.example.com/" }} }}
  - {{ id: probe.status, http: {{ url: "http://127.0.0.1:{port}/", status: 204 }} }}
  - {{ id: probe.dns, dns: {{ name: localhost, expect: ["127.0.0.1"] }} }}
  - {{ id: probe.dns_wrong, dns: {{ name: localhost, expect: ["192.0.2.1"] }} }}
  - {{ id: probe.tls, tls: {{ address: "127.0.0.1:{port}" }} }}
  - {{ id: probe.disk, disk: {{ path: ".", min_free: "1B" }} }}
  - {{ id: probe.disk_full, disk: {{ path: ".", min_free_percent: 100.1 }} }}
"#
    );
    let (code, report, stderr) = doctor(tmp.path(), &text, &["--timeout", "2s"]);
    assert_eq!(code, 1, "{stderr}");
    let status = |id: &str| result(&report, id)["status"].as_str().unwrap().to_string();
    for id in ["probe.ok", "probe.body", "probe.header", "probe.redirect", "probe.dns", "probe.disk"] {
        assert_eq!(status(id), "pass", "{id}: {}", result(&report, id));
    }
    for id in ["probe.status", "probe.dns_wrong", "probe.tls", "probe.disk_full"] {
        assert_eq!(status(id), "fail", "{id}: {}", result(&report, id));
    }
    assert!(result(&report, "probe.status")["message"].as_str().unwrap().contains("HTTP 200, expected 204"));
    assert!(result(&report, "probe.tls")["message"].as_str().unwrap().contains("tls phase"));
}
