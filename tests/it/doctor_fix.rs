//! `doctor --fix [--dry-run]`: the broken deployment, the plan, the change, the check passing.

use std::path::Path;

use crate::support::gatehouse;
use serde_json::Value;

fn doctor(dir: &Path, extra: &[&str]) -> (i32, Value, String) {
    let out = gatehouse(dir)
        .args(["doctor", "--format", "json", "--only", "database.connectivity,system_url.config"])
        .args(extra)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap(), json, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn status(report: &Value, id: &str) -> String {
    report["results"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap()["status"].as_str().unwrap().into()
}

const CONFIG: &str = "# our billing site\nsystem_url: \"https://billing.example.com/portal\"   # what users type\nlisten: \"127.0.0.1:8080\"\n";

#[test]
fn dry_run_describes_every_change_and_makes_none() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("gatehouse.yaml"), CONFIG).unwrap();
    let (code, report, log) = doctor(tmp.path(), &["--fix", "--dry-run", "--fail-on", "warn"]);
    assert_eq!(code, 1);
    assert_eq!(status(&report, "system_url.config"), "warn");
    assert!(log.contains("would fix database.connectivity: create the database"), "{log}");
    assert!(
        log.contains("would fix system_url.config: set system_url to \"https://billing.example.com/portal/\""),
        "{log}"
    );
    assert!(log.contains("-system_url: \"https://billing.example.com/portal\"   # what users type\n"), "{log}");
    assert!(log.contains("+system_url: \"https://billing.example.com/portal/\"   # what users type\n"), "{log}");
    assert_eq!(std::fs::read_to_string(tmp.path().join("gatehouse.yaml")).unwrap(), CONFIG, "nothing changed");
    assert!(!tmp.path().join("gatehouse-data").exists());
    let entries = std::fs::read_dir(tmp.path()).unwrap().count();
    assert_eq!(entries, 1, "no backup either");
}

#[test]
fn fix_changes_the_deployment_keeps_a_backup_and_checks_again() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("gatehouse.yaml"), CONFIG).unwrap();
    let (code, report, log) = doctor(tmp.path(), &["--fix", "--fail-on", "warn"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(status(&report, "database.connectivity"), "pass", "the report is from after the fixes");
    assert_eq!(status(&report, "system_url.config"), "pass");
    let applied = format!("done: applied migrations {:?}", crate::support::migration_versions());
    assert!(log.contains(&applied), "{log}");

    let fixed = std::fs::read_to_string(tmp.path().join("gatehouse.yaml")).unwrap();
    assert_eq!(fixed, CONFIG.replace("/portal\"", "/portal/\""), "only the value changed; comments kept");
    let backups: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("gatehouse.yaml.bak-"))
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), CONFIG);

    let (_, _, log) = doctor(tmp.path(), &["--fix"]);
    assert!(log.contains("nothing can be fixed automatically"), "{log}");
}

#[test]
fn values_from_the_environment_are_not_edited() {
    let tmp = tempfile::tempdir().unwrap();
    let out = gatehouse(tmp.path())
        .env("GATEHOUSE_SYSTEM_URL", "https://billing.example.com/portal")
        .args(["doctor", "--only", "system_url.config", "--fix", "--dry-run"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("nothing can be fixed automatically"), "{log}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Set system_url to https://billing.example.com/portal/"), "{stdout}");
}

#[test]
fn secrets_left_readable_by_others_are_named_and_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    crate::support::gatehouse(tmp.path()).args(["init", "--dir", "."]).assert().success();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let config = tmp.path().join("gatehouse.yaml");
    let database = tmp.path().join("gatehouse-data/gatehouse.db");
    let data = tmp.path().join("gatehouse-data");
    assert_eq!((mode(&config), mode(&database), mode(&data)), (0o600, 0o600, 0o700), "init makes them private");
    let only = ["--only", "disk.permissions"];
    let run = |extra: &[&str]| {
        let out = gatehouse(tmp.path()).args(["doctor", "--format", "json"]).args(only).args(extra).output().unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        (report["results"][0].clone(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(run(&[]).0["status"], "pass");

    // What a `cp -r` or `tar x` under umask 022 leaves behind.
    for (path, m) in [(&config, 0o644), (&database, 0o644), (&data, 0o755)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
    }
    let (found, _) = run(&[]);
    assert_eq!(found["status"], "warn");
    let message = found["message"].as_str().unwrap();
    assert!(message.contains("0644") && message.contains("gatehouse.yaml (configuration)"), "{message}");
    assert!(message.contains("gatehouse.db (database)") && message.contains("0755"), "{message}");
    // The three, and SQLite's -wal and -shm beside the database, which take its mode.
    let exposed = found["evidence"]["exposed"].as_array().unwrap().len();
    assert!(exposed == 3 || exposed == 5, "{found}");

    let (fixed, log) = run(&["--fix"]);
    assert!(log.contains("path(s) private to their owner"), "{log}");
    assert_eq!(fixed["status"], "pass", "checked again after the fix");
    assert_eq!((mode(&config), mode(&database), mode(&data)), (0o600, 0o600, 0o700));
}
