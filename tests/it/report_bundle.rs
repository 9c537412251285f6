//! Support bundles: contents, manifest hashes, redaction of planted canary secrets in every
//! file of the folder and the archive, and `report diff`.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::support::gatehouse;
use assert_cmd::Command;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The bundle path a `report --json` run wrote.
fn bundle(dir: &Path, args: &[&str]) -> (PathBuf, Value) {
    let out: Value =
        serde_json::from_str(&ok(gatehouse(dir).args(["--json", "report", "--out", "bundles"]).args(args))).unwrap();
    (dir.join(out["path"].as_str().unwrap()), out["manifest"].clone())
}

/// Every file of a bundle folder or archive, by name.
fn contents(path: &Path) -> Vec<(String, String)> {
    if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        files.sort();
        return files;
    }
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()));
    let mut files = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_file() {
            let name = entry.path().unwrap().file_name().unwrap().to_string_lossy().into_owned();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            files.push((name, text));
        }
    }
    files.sort();
    files
}

const CANARIES: [&str; 5] =
    ["CANARY-SMTP-PW", "CANARY-LICENSE-KEY", "CANARY-DUO-SECRET", "CANARY-DB-PW", "CANARY-DB-QUERY-PW"];

/// A deployment with every kind of secret planted where a careless bundle would pick it up.
fn planted(dir: &Path, database_url: &str) -> (String, String) {
    let init = ok(gatehouse(dir).args(["init", "--dir", "."]));
    let token =
        init.lines().find_map(|l| l.strip_prefix("API token (shown once; store it now): ")).unwrap().to_string();
    let config = std::fs::read_to_string(dir.join("gatehouse.yaml")).unwrap();
    let config = config
        .replace(
            "smtp: { host: \"\", port: 587, username: \"\", password: \"\"",
            "smtp: { host: \"smtp.example.com\", port: 587, username: \"mailer\", password: \"CANARY-SMTP-PW\"",
        )
        .replace("client_secret: \"\"", "client_secret: \"CANARY-DUO-SECRET\"")
        .replace(
            "database_url: \"sqlite://gatehouse-data/gatehouse.db\"",
            &format!("database_url: \"{database_url}\""),
        );
    std::fs::write(dir.join("gatehouse.yaml"), config).unwrap();
    ok(gatehouse(dir).args([
        "client",
        "add",
        "--email",
        "ann.lee@example.com",
        "--first-name",
        "Ann",
        "--last-name",
        "Lee",
        "--password",
        "correct horse battery staple",
    ]));
    // Free text that reaches the audit log, carrying a token and a password hash.
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g";
    ok(gatehouse(dir).args(["security-question", "add", &format!("leaked {token} and {hash}?")]));
    // The service's log, as serve writes it: secrets that reached it must not leave through it.
    let log = format!(
        "2026-12-01T10:00:00Z INFO request path=/login client_ip=203.0.113.5 user=ann.lee@example.com\n\
         2026-12-01T10:00:01Z WARN smtp auth with CANARY-SMTP-PW failed; token {token} hash {hash}\n"
    );
    std::fs::write(dir.join("serve.log"), log).unwrap();
    let config = std::fs::read_to_string(dir.join("gatehouse.yaml")).unwrap();
    std::fs::write(dir.join("gatehouse.yaml"), config.replace("  log_file: \"\"", "  log_file: \"serve.log\""))
        .unwrap();
    // Planted last: a license key that was never verified locks the admin writes above.
    let config = std::fs::read_to_string(dir.join("gatehouse.yaml")).unwrap();
    std::fs::write(dir.join("gatehouse.yaml"), config.replace("  key: \"\"", "  key: \"CANARY-LICENSE-KEY\"")).unwrap();
    (token, hash.to_string())
}

fn assert_clean(files: &[(String, String)], planted: &[&str]) {
    for (name, text) in files {
        for canary in CANARIES.iter().chain(planted) {
            assert!(!text.contains(canary), "{canary} leaked into {name}:\n{text}");
        }
        assert!(!text.contains("ann.lee@"), "an email address leaked into {name}");
    }
}

#[test]
fn a_bundle_holds_everything_and_no_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let (token, hash) = planted(tmp.path(), "sqlite://gatehouse-data/gatehouse.db");
    let (folder, manifest) = bundle(tmp.path(), &[]);
    let files = contents(&folder);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "SHA256SUMS",
            "audit.json",
            "config.yaml",
            "database.json",
            "manifest.json",
            "report.html",
            "report.json",
            "report.md",
            "service.log",
            "system.json"
        ]
    );
    assert_clean(&files, &[&token, &hash]);
    let log = &files.iter().find(|(n, _)| n == "service.log").unwrap().1;
    assert!(log.contains("path=/login") && log.contains("the last lines of"), "{log}");

    // `sha256sum -c` accepts the sums, the manifest's included.
    let check =
        std::process::Command::new("sha256sum").args(["-c", "SHA256SUMS"]).current_dir(&folder).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    assert_eq!(String::from_utf8_lossy(&check.stdout).lines().count(), files.len() - 1);

    // The manifest hashes every other file, and says what it skipped and redacted.
    let listed = manifest["files"].as_array().unwrap();
    assert_eq!(listed.len(), files.len() - 2);
    for entry in listed {
        let (_, text) = files.iter().find(|(n, _)| n == entry["name"].as_str().unwrap()).unwrap();
        assert_eq!(entry["sha256"].as_str().unwrap(), hex::encode(Sha256::digest(text.as_bytes())));
        assert_eq!(entry["bytes"].as_u64().unwrap(), text.len() as u64);
    }
    assert_eq!(manifest["redacted"], true);
    assert!(manifest["redactions"]["token"].as_u64().unwrap() >= 1, "{manifest}");
    assert!(manifest["redactions"]["password_hash"].as_u64().unwrap() >= 1, "{manifest}");
    assert_eq!(manifest["skipped"][0]["item"], "heartbeats.json");

    let database: Value = serde_json::from_str(&files.iter().find(|(n, _)| n == "database.json").unwrap().1).unwrap();
    assert_eq!(database["row_counts"]["clients"], 1);
    assert_eq!(database["migrations"]["latest"], *crate::support::migration_versions().last().unwrap());
    assert!(database["size_bytes"].as_i64().unwrap() > 0);
    let system: Value = serde_json::from_str(&files.iter().find(|(n, _)| n == "system.json").unwrap().1).unwrap();
    for key in ["os", "kernel", "cpu_count", "memory_total_bytes", "disks", "uptime_seconds", "time_zone"] {
        assert!(!system[key].is_null(), "system.json lacks {key}: {system}");
    }
    let config = &files.iter().find(|(n, _)| n == "config.yaml").unwrap().1;
    assert!(config.contains("smtp.example.com") && config.contains("***"), "{config}");

    let (archive, _) = bundle(tmp.path(), &["--archive"]);
    assert!(archive.to_string_lossy().ends_with(".tar.gz"));
    let archived = contents(&archive);
    assert_eq!(archived.len(), files.len());
    assert_clean(&archived, &[&token, &hash]);
    assert!(folder.exists(), "an archive never replaces an earlier bundle");
}

#[test]
fn an_unreachable_database_is_skipped_without_leaking_its_password() {
    let tmp = tempfile::tempdir().unwrap();
    planted(tmp.path(), "sqlite://gatehouse-data/gatehouse.db");
    let port = crate::support::closed_port();
    let config = std::fs::read_to_string(tmp.path().join("gatehouse.yaml")).unwrap().replace(
        "database_url: \"sqlite://gatehouse-data/gatehouse.db\"",
        &format!("database_url: \"postgres://app:CANARY-DB-PW@127.0.0.1:{port}/gh\""),
    );
    std::fs::write(tmp.path().join("gatehouse.yaml"), config).unwrap();
    let (folder, manifest) = bundle(tmp.path(), &[]);
    assert_clean(&contents(&folder), &[]);
    let skipped: Vec<&str> =
        manifest["skipped"].as_array().unwrap().iter().map(|s| s["item"].as_str().unwrap()).collect();
    assert_eq!(skipped, ["database.json", "audit.json", "heartbeats.json"]);
    assert!(manifest["skipped"][0]["reason"].as_str().unwrap().contains("unreachable"));
}

/// The password may also be a query parameter of the URL (`?password=`), as libpq allows: it is
/// as secret there, in the bundle and in `config show` / `config check`.
#[test]
fn a_database_password_in_the_query_is_redacted_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    planted(tmp.path(), "sqlite://gatehouse-data/gatehouse.db");
    let port = crate::support::closed_port();
    let url = format!("postgres://app@127.0.0.1:{port}/gh?sslmode=disable&password=CANARY-DB-QUERY-PW");
    let config = std::fs::read_to_string(tmp.path().join("gatehouse.yaml"))
        .unwrap()
        .replace("database_url: \"sqlite://gatehouse-data/gatehouse.db\"", &format!("database_url: \"{url}\""));
    std::fs::write(tmp.path().join("gatehouse.yaml"), config).unwrap();
    let (folder, _) = bundle(tmp.path(), &[]);
    assert_clean(&contents(&folder), &[]);
    for args in [&["config", "show"][..], &["config", "check"][..], &["--json", "config", "show"][..]] {
        let out = gatehouse(tmp.path()).args(args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!text.contains("CANARY-DB-QUERY-PW"), "{args:?}:\n{text}");
        assert!(text.contains("password=***") || !text.contains("password="), "{args:?}:\n{text}");
    }
}

#[test]
fn a_postgres_bundle_hides_the_database_password() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(schema) = rt.block_on(crate::support::PgSchema::create()) else { return };
    // Local test servers trust connections, so a planted password is accepted and ignored.
    let url = schema.url.replacen("postgres://postgres@", "postgres://postgres:CANARY-DB-PW@", 1);
    assert!(url.contains("CANARY-DB-PW"), "expected a postgres://postgres@ test URL: {url}");
    let tmp = tempfile::tempdir().unwrap();
    // init makes its SQLite database; from then on the config points at PostgreSQL, where the
    // planted client and audit entries land.
    let (token, hash) = planted(tmp.path(), &url);
    let (folder, manifest) = bundle(tmp.path(), &["--archive"]);
    let files = contents(&folder);
    assert_clean(&files, &[&token, &hash]);
    let database: Value = serde_json::from_str(&files.iter().find(|(n, _)| n == "database.json").unwrap().1).unwrap();
    assert_eq!(database["backend"], "postgres");
    assert_eq!(database["row_counts"]["clients"], 1);
    assert!(manifest["redactions"]["database_password"].as_u64().unwrap() >= 1, "{manifest}");
}

#[test]
fn no_redact_keeps_everything_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    planted(tmp.path(), "sqlite://gatehouse-data/gatehouse.db");
    let out = ok(gatehouse(tmp.path()).args(["report", "--out", "bundles", "--no-redact"]));
    assert!(out.contains("NOT redacted"), "{out}");
    let folder = std::fs::read_dir(tmp.path().join("bundles")).unwrap().next().unwrap().unwrap().path();
    let config = std::fs::read_to_string(folder.join("config.yaml")).unwrap();
    assert!(config.contains("CANARY-SMTP-PW"));
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["redacted"], false);
}

#[test]
fn report_diff_shows_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    ok(gatehouse(tmp.path()).args(["init", "--dir", "."]));
    let (before, _) = bundle(tmp.path(), &[]);
    let config = std::fs::read_to_string(tmp.path().join("gatehouse.yaml")).unwrap();
    std::fs::write(
        tmp.path().join("gatehouse.yaml"),
        config.replace("system_url: \"http://localhost:8080/\"", "system_url: \"\""),
    )
    .unwrap();
    let (after, _) = bundle(tmp.path(), &["--archive"]);

    let changes: Value = serde_json::from_str(&ok(gatehouse(tmp.path())
        .arg("--json")
        .args(["report", "diff"])
        .arg(&before)
        .arg(&after)))
    .unwrap();
    let summary: Vec<(&str, &str, &str)> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["before"].as_str().unwrap(), c["after"].as_str().unwrap()))
        // What answers at localhost:8080 before the change depends on the machine running the test.
        .filter(|c| c.0 != "system_url.reachable")
        .collect();
    // Without a system_url: the checks that need it are blocked or have nothing to resolve, and
    // the impersonation link of init's full administrator role cannot be built.
    assert_eq!(
        summary,
        [
            ("system_url.config", "pass", "fail"),
            ("system_url.requests", "skipped", "blocked"),
            ("proxy.cloudflare", "pass", "skipped"),
            ("admin.roles", "pass", "fail"),
            ("sessions.cookie", "pass", "blocked"),
        ]
    );
    let text = ok(gatehouse(tmp.path()).args(["report", "diff"]).arg(&before).arg(&after));
    assert!(text.contains("system_url.config") && text.contains("worse"), "{text}");
    assert_eq!(
        ok(gatehouse(tmp.path()).args(["report", "diff"]).arg(&before).arg(&before)).trim(),
        "No results changed."
    );

    let missing = gatehouse(tmp.path()).args(["report", "diff", "nope", "nope2"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

/// `report --preview` lists what would leave the machine and writes nothing.
#[test]
fn preview_lists_what_would_leave_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    planted(tmp.path(), "sqlite://gatehouse-data/gatehouse.db");
    let out = ok(gatehouse(tmp.path()).args(["report", "--out", "bundles", "--preview"]));
    assert!(out.starts_with("Would write (nothing has been written):"), "{out}");
    for file in ["report.json", "config.yaml", "service.log", "audit.json", "manifest.json, SHA256SUMS"] {
        assert!(out.contains(file), "{file} missing:\n{out}");
    }
    assert!(out.contains("Redacted: ") && out.contains("email"), "{out}");
    assert!(!tmp.path().join("bundles").exists(), "nothing written");
    let json: Value = serde_json::from_str(&ok(gatehouse(tmp.path()).args(["--json", "report", "--preview"]))).unwrap();
    assert_eq!(json["preview"], true);
    assert!(!tmp.path().join("reports").exists());
}
