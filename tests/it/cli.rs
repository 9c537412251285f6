//! The CLI as an operator types it: the built binary, in a temporary directory.

use std::path::Path;

use crate::support::gatehouse;
use assert_cmd::Command;
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(cmd: &mut Command) -> String {
    let r = run(cmd);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    r.stdout
}

fn json(cmd: &mut Command) -> Value {
    let out = ok(cmd.arg("--json"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Runs the accounts walk-through an operator would, with `base` pointing at a deployment.
fn accounts_walkthrough(base: impl Fn() -> Command) {
    let client = json(base().args([
        "client",
        "add",
        "--email",
        "ann@example.com",
        "--first-name",
        "Ann",
        "--last-name",
        "Lee",
        "--company",
        "Acme",
        "--country",
        "gb",
    ]));
    let keys: Vec<&String> = client.as_object().unwrap().keys().collect();
    assert_eq!(keys[0], "id", "id first");
    let client_id = client["id"].as_i64().unwrap();
    let owner_id = client["owner_user_id"].as_i64().unwrap();
    assert_eq!(client["country"], "GB");

    let bob =
        json(base().args(["user", "add", "--email", "bob@example.com", "--first-name", "Bob", "--last-name", "Ray"]));
    assert_eq!(bob["has_password"], false);
    let bob_id = bob["id"].as_i64().unwrap();
    let m = json(base().args([
        "user",
        "associate",
        "--user",
        "bob@example.com",
        "--client",
        &client_id.to_string(),
        "--permissions",
        "invoices,tickets",
    ]));
    assert_eq!(m["permissions"], serde_json::json!(["invoices", "tickets"]));

    let refused =
        run(base().args(["user", "dissociate", "--user", &owner_id.to_string(), "--client", &client_id.to_string()]));
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.starts_with("error[owner_cannot_be_removed]: "), "{}", refused.stderr);
    assert_eq!(refused.stderr.lines().count(), 1);

    let bad_perm = run(base().args([
        "user",
        "permissions",
        "--user",
        &bob_id.to_string(),
        "--client",
        &client_id.to_string(),
        "--permissions",
        "root",
    ]));
    assert_eq!(bad_perm.code, 1);
    assert!(bad_perm.stderr.starts_with("error[invalid_permission]: "), "{}", bad_perm.stderr);

    ok(base().args(["banned-email", "add", "mailinator.com"]));
    let banned =
        run(base().args(["user", "add", "--email", "spam@eu.mailinator.com", "--first-name", "S", "--last-name", "P"]));
    assert_eq!(banned.code, 1);
    assert!(banned.stderr.starts_with("error[banned_email_domain]: "), "{}", banned.stderr);
    let bans = json(base().args(["banned-email", "list"]));
    assert_eq!(bans[0]["blocked_count"], 1);

    let clients = json(base().args(["client", "list"]));
    assert_eq!(clients.as_array().unwrap().len(), 1);
    let shown = json(base().args(["client", "show", &client_id.to_string()]));
    let users = shown["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["user_id"].as_i64(), Some(owner_id));
    assert_eq!(users[0]["is_owner"], true);

    let text = ok(base().args(["client", "show", &client_id.to_string()]));
    assert!(text.contains("bob@example.com") && text.contains("invoices,tickets"), "{text}");

    // A new login email from the console goes through the rule every face uses.
    let moved = json(base().args(["user", "update", "bob@example.com", "--email", "robert@example.com"]));
    assert_eq!(moved["email"], "robert@example.com");
    let sent = json(base().args(["cron", "--job", "mail"]));
    assert_eq!(sent[0]["detail"]["sent"], 1, "the old address is told: {sent}");

    let made =
        json(base().args(["user", "make-owner", "--user", &bob_id.to_string(), "--client", &client_id.to_string()]));
    assert_eq!(made["is_owner"], true);
    let has_clients = run(base().args(["user", "delete", &bob_id.to_string()]));
    assert!(has_clients.stderr.starts_with("error[user_has_clients]"), "{}", has_clients.stderr);

    let audit = json(base().args(["audit", "--client", &client_id.to_string()]));
    assert_eq!(audit[0]["action"], "client.owner_change");
    assert_eq!(audit[0]["actor_type"], "system");

    // Searching by action: only that action, on both backends; a typo gets the nearest names.
    let updates = json(base().args(["audit", "--action", "user.update"]));
    let actions: Vec<&str> = updates.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(!actions.is_empty() && actions.iter().all(|a| *a == "user.update"), "{actions:?}");
    let client_and_action =
        json(base().args(["audit", "--client", &client_id.to_string(), "--action", "client.create"]));
    assert_eq!(client_and_action.as_array().unwrap().len(), 1, "{client_and_action}");
    let typo = run(base().args(["audit", "--action", "user.updat"]));
    assert_eq!(typo.code, 2);
    assert!(typo.stderr.contains("the nearest are user.update"), "{}", typo.stderr);
    let vocabulary = json(base().args(["audit", "--actions"]));
    assert!(vocabulary.as_array().unwrap().iter().any(|a| a["action"] == "login.failed" && a["meaning"].is_string()));

    let missing = run(base().args(["client", "show", "999"]));
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.starts_with("error[not_found]: "), "{}", missing.stderr);
}

#[test]
fn init_then_manage_accounts_on_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(gatehouse(tmp.path()).args(["init", "--dir", "site", "--system-url", "https://billing.example.com/"]));
    let token = out.lines().find_map(|l| l.strip_prefix("API token (shown once; store it now): ")).expect(&out);
    assert!(token.starts_with("gh_"));
    let config = tmp.path().join("site/gatehouse.yaml");
    assert!(std::fs::read_to_string(&config).unwrap().contains("system_url: \"https://billing.example.com/\""));
    assert!(tmp.path().join("site/gatehouse-data/gatehouse.db").exists());
    // The config holds secrets, the database TOTP secrets: theirs alone, whatever the umask.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(tmp.path().join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("site/gatehouse.yaml"), 0o600);
    assert_eq!(mode("site/gatehouse-data"), 0o700);
    assert_eq!(mode("site/gatehouse-data/gatehouse.db"), 0o600);

    // The config works from any directory: its relative paths are relative to the file.
    let elsewhere = tempfile::tempdir().unwrap();
    accounts_walkthrough(|| {
        let mut c = gatehouse(elsewhere.path());
        c.arg("--config").arg(&config);
        c
    });
    assert!(!elsewhere.path().join("gatehouse-data").exists());

    let admins = json(gatehouse(tmp.path()).args(["--config", "site/gatehouse.yaml", "admin", "list"]));
    assert_eq!(admins[0]["role_name"], "Full Administrator");
    let tokens = ok(gatehouse(tmp.path()).args(["--config", "site/gatehouse.yaml", "admin", "token", "list"]));
    assert!(!tokens.contains(token), "token secrets are never listed");

    let again = run(gatehouse(tmp.path()).args(["init", "--dir", "site"]));
    assert_eq!(again.code, 1);
    assert!(again.stderr.starts_with("error[already_initialized]"), "{}", again.stderr);
}

#[test]
fn manage_accounts_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(schema) = rt.block_on(crate::support::PgSchema::create()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    accounts_walkthrough(|| {
        let mut c = gatehouse(tmp.path());
        c.env("GATEHOUSE_DATABASE_URL", &schema.url);
        c
    });
}

#[test]
fn a_command_run_where_no_deployment_is_says_so_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [&["client", "list"][..], &["user", "list"], &["cron"], &["lockout", "list"]] {
        let r = run(gatehouse(tmp.path()).args(args));
        assert_eq!(r.code, 2, "{args:?}: {}", r.stdout);
        assert!(r.stderr.contains("no deployment found here"), "{}", r.stderr);
        assert!(r.stderr.contains("--config FILE or GATEHOUSE_CONFIG"), "{}", r.stderr);
    }
    assert!(!tmp.path().join("gatehouse-data").exists(), "nothing created");
    // `migrate` (like `init`) is how a database comes to be; then the embedded default works.
    let migrate = ok(gatehouse(tmp.path()).arg("migrate"));
    assert!(migrate.contains("Applied"), "{migrate}");
    assert_eq!(ok(gatehouse(tmp.path()).args(["client", "list"])).trim(), "(none)");
    let migrate = ok(gatehouse(tmp.path()).arg("migrate"));
    assert!(migrate.contains("up to date"), "{migrate}");
    let check = ok(gatehouse(tmp.path()).args(["config", "check"]));
    assert!(check.contains("embedded defaults"), "{check}");
}

#[test]
fn a_configuration_file_that_is_not_utf8_is_located() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("latin1.yaml"),
        b"listen: \"127.0.0.1:8080\"\nmail:\n  from: \"Gr\xfcn <a@b.example>\"\n",
    )
    .unwrap();
    let r = run(gatehouse(tmp.path()).args(["--config", "latin1.yaml", "config", "check"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("latin1.yaml:3:12: not valid UTF-8 (byte offset 42, byte 0xfc)"), "{}", r.stderr);
}

#[test]
fn bad_configuration_exits_2_with_its_location() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("malformed.yaml", "listen: [\n", "malformed.yaml:1:9: "),
        ("unknown.yaml", "listen: \"127.0.0.1:1\"\nsesions: {}\n", "unknown.yaml:2:1: unknown field `sesions`"),
        ("type.yaml", "security:\n  password_min_length: twelve\n", "type.yaml:2:24: "),
        ("duration.yaml", "cron:\n  interval: often\n", "duration.yaml:2:13: invalid duration `often`"),
        ("url.yaml", "system_url: \"not a url\"\n", "url.yaml:1:13: invalid URL"),
        ("tz.yaml", "timezone: Europe/Atlantis\n", "tz.yaml:1:11: unknown time zone `Europe/Atlantis`"),
        ("scheme.yaml", "database_url: \"mysql://db/x\"\n", "scheme.yaml:1:15: unsupported database URL scheme"),
        // Values that parse but cannot work.
        ("ranges.yaml", "trusted_proxies:\n  ranges: [\"10.0.0.0/8\", \"proxy.internal\"]\n", "ranges.yaml:2:"),
        (
            "port.yaml",
            "listen: \"127.0.0.1:99999\"\n",
            "port.yaml:1:9: port `99999` in `127.0.0.1:99999` is not a port",
        ),
        ("minlen.yaml", "security:\n  password_min_length: 2000\n", "minlen.yaml:2:24: 2000 cannot work"),
        ("lock.yaml", "security:\n  lockout: { lock: 0s }\n", "lock.yaml:2:"),
        (
            "from.yaml",
            "mail:\n  from: \"gh <a@b.example>\\r\\nBcc: x@evil.example\"\n",
            "from.yaml:2:9: contains a line break",
        ),
    ];
    for (name, text, expected) in cases {
        std::fs::write(tmp.path().join(name), text).unwrap();
        for args in [vec!["config", "check"], vec!["client", "list"]] {
            let r = run(gatehouse(tmp.path()).arg("--config").arg(name).args(&args));
            assert_eq!(r.code, 2, "{name} {args:?}: {}", r.stderr);
            assert!(r.stderr.starts_with(&format!("error[invalid_config]: {expected}")), "{name}: {}", r.stderr);
            assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        }
    }
    let missing = run(gatehouse(tmp.path()).args(["--config", "nope.yaml", "config", "check"]));
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("nope.yaml: cannot read configuration file"), "{}", missing.stderr);
    let env = run(gatehouse(tmp.path()).env("GATEHOUSE_SESSIONS__GC", "sometimes").args(["config", "check"]));
    assert_eq!(env.code, 2);
    assert!(env.stderr.contains("environment variable GATEHOUSE_SESSIONS__GC"), "{}", env.stderr);
}

#[test]
fn unreachable_database_exits_2_naming_where_it_was_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let port = crate::support::closed_port();
    std::fs::write(
        tmp.path().join("gatehouse.yaml"),
        format!("listen: \"127.0.0.1:8080\"\ndatabase_url: \"postgres://app:hunter2@127.0.0.1:{port}/gh\"\n"),
    )
    .unwrap();
    let r = run(gatehouse(tmp.path()).args(["client", "list"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.starts_with("error[database_unavailable]: cannot open database"), "{}", r.stderr);
    assert!(r.stderr.contains("database_url from gatehouse.yaml:2:15"), "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2"), "password leaked: {}", r.stderr);
    assert!(r.stderr.contains("refused"), "{}", r.stderr);

    let r = run(gatehouse(tmp.path())
        .env("GATEHOUSE_DATABASE_URL", "postgres://u@no-such-host.invalid/gh")
        .args(["client", "list"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("database_url from environment variable GATEHOUSE_DATABASE_URL"), "{}", r.stderr);

    // A SQLite file in a directory that cannot be created.
    std::fs::write(tmp.path().join("blocker"), "a file, not a directory").unwrap();
    let r = run(gatehouse(tmp.path()).env("GATEHOUSE_DATABASE_URL", "sqlite://blocker/sub/gh.db").arg("migrate"));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot create database directory"), "{}", r.stderr);
    // Other commands do not try to create it: they say it is not there.
    let r =
        run(gatehouse(tmp.path()).env("GATEHOUSE_DATABASE_URL", "sqlite://blocker/sub/gh.db").args(["client", "list"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("does not exist") && r.stderr.contains("migrate"), "{}", r.stderr);
}

#[test]
fn config_show_redacts_every_secret() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("gatehouse.yaml"),
        "database_url: \"postgres://app:CANARY-DB@db/gh\"\nmail:\n  smtp: { host: smtp.example.com, password: CANARY-SMTP }\n\
         license: { key: CANARY-LICENSE }\ntwofa:\n  duo: { client_id: DIXXXXXXXXXXXXXXXXXX, client_secret: CANARY-DUO }\n",
    )
    .unwrap();
    for args in [vec!["config", "show"], vec!["--json", "config", "show"]] {
        let out = ok(gatehouse(tmp.path()).args(&args));
        assert!(!out.contains("CANARY"), "secret leaked:\n{out}");
        assert!(out.contains("smtp.example.com") && out.contains("DIXXXXXXXXXXXXXXXXXX"), "{out}");
        assert!(out.contains("***"));
    }
}

#[test]
fn help_and_version_teach_the_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let help = ok(gatehouse(tmp.path()).arg("--help"));
    for command in [
        "init",
        "migrate",
        "config",
        "client",
        "user",
        "invite",
        "banned-email",
        "security-question",
        "admin",
        "match-details",
    ] {
        assert!(help.contains(command), "{command} missing from --help");
    }
    assert!(ok(gatehouse(tmp.path()).args(["user", "permissions", "--help"])).contains("manageproducts"));
    assert!(ok(gatehouse(tmp.path()).arg("--version")).starts_with("gatehouse "));
    let usage = run(gatehouse(tmp.path()).args(["client", "frobnicate"]));
    assert_eq!(usage.code, 2);
}

#[test]
fn doctor_reports_on_the_embedded_default() {
    let tmp = tempfile::tempdir().unwrap();
    // Free space depends on the machine running the tests, not on the deployment under test.
    let gatehouse = |dir: &Path| {
        let mut c = gatehouse(dir);
        c.env("GATEHOUSE_DOCTOR__DISK_MIN_FREE", "1B").env("GATEHOUSE_DOCTOR__DISK_MIN_FREE_PERCENT", "0");
        c
    };
    let r = run(gatehouse(tmp.path()).arg("doctor"));
    assert_eq!(r.code, 0, "warnings do not fail at the default --fail-on fail\n{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("database.connectivity") && r.stdout.contains("has not been created yet"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("→ Run `gatehouse migrate`"), "remediation under the problem:\n{}", r.stdout);
    assert!(r.stdout.lines().last().unwrap().starts_with("25 checks: "), "{}", r.stdout);
    assert!(!r.stdout.contains('\u{1b}'), "no colour when stdout is not a terminal");
    assert!(!tmp.path().join("gatehouse-data").exists(), "the doctor only looks");

    assert_eq!(run(gatehouse(tmp.path()).args(["doctor", "--fail-on", "warn"])).code, 1);
    let nagios = run(gatehouse(tmp.path()).args(["doctor", "--format", "nagios"]));
    assert_eq!(nagios.code, 1, "{}", nagios.stdout);
    assert!(nagios.stdout.starts_with("GATEHOUSE WARNING - "));
}

#[test]
fn doctor_writes_several_formats_from_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    ok(gatehouse(tmp.path()).args(["init", "--dir", "."]));
    let r = run(gatehouse(tmp.path()).args([
        "doctor",
        "--format",
        "json",
        "--output",
        "junit=out/doctor.xml",
        "--output",
        "sarif=out/doctor.sarif",
        "--output",
        "html=doctor.html",
        "--skip",
        // The first two depend on the machine (its zone, its free space), not on this deployment;
        // the cron of a deployment initialised a moment ago has not run yet, and nothing serves
        // its system_url.
        "time.timezone,disk.space,cron.activity,system_url.reachable",
    ]));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["schema"], "gatehouse.report/v1");
    let ids: Vec<&str> = report["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "database.connectivity",
            "disk.permissions",
            "time.clock",
            "system_url.config",
            "system_url.requests",
            "proxy.trusted",
            "proxy.cloudflare",
            "proxy.lockouts",
            "accounts.integrity",
            "accounts.password_hashes",
            "admin.roles",
            "license.validity",
            "license.connectivity",
            "email.transport",
            "email.queue",
            "sessions.storage",
            "sessions.cookie",
            "sessions.lifetime",
            "sessions.gc",
            "fleet.drift",
            "twofa.duo"
        ]
    );
    assert_eq!(report["summary"]["fail"], 0);

    let xml = std::fs::read_to_string(tmp.path().join("out/doctor.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let names: Vec<&str> =
        doc.descendants().filter(|n| n.has_tag_name("testcase")).map(|n| n.attribute("name").unwrap()).collect();
    assert_eq!(names, ids);
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("out/doctor.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), ids.len());
    assert!(std::fs::read_to_string(tmp.path().join("doctor.html")).unwrap().contains("accounts.integrity"));

    let json_flag: Value =
        serde_json::from_str(&ok(gatehouse(tmp.path()).args(["--json", "doctor", "--only", "database.connectivity"])))
            .unwrap();
    assert_eq!(json_flag["results"].as_array().unwrap().len(), 1);
}

#[test]
fn doctor_refuses_bad_usage_with_exit_2_before_running() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, says) in [
        (vec!["doctor", "--only", "no.such.check"], "unknown check id `no.such.check`"),
        (vec!["doctor", "--tag", "nonsense"], "no check has the tag `nonsense`"),
        (vec!["doctor", "--output", "junit"], "expected FORMAT=PATH"),
        (vec!["doctor", "--output", "pdf=x.pdf"], "unknown format `pdf`"),
        (vec!["doctor", "--timeout", "soon"], "--timeout: invalid duration"),
    ] {
        let r = run(gatehouse(tmp.path()).args(&args));
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "nothing ran: {}", r.stdout);
    }
    std::fs::write(tmp.path().join("gatehouse.yaml"), "doctor:\n  timeout: quick\n").unwrap();
    let r = run(gatehouse(tmp.path()).arg("doctor"));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("gatehouse.yaml:2:12: invalid duration `quick`"), "{}", r.stderr);
}

#[test]
fn doctor_lists_its_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let text = ok(gatehouse(tmp.path()).args(["doctor", "--list"]));
    for id in [
        "proxy.cloudflare",
        "license.connectivity",
        "email.transport",
        "database.connectivity",
        "disk.space",
        "time.timezone",
        "system_url.config",
        "proxy.trusted",
        "accounts.integrity",
        "accounts.password_hashes",
        "sessions.gc",
        "cron.activity",
        "twofa.duo",
        "email.queue",
        "sessions.storage",
    ] {
        assert!(text.contains(id), "{id} missing:\n{text}");
    }
    let listed: Value = serde_json::from_str(&ok(gatehouse(tmp.path()).args(["--json", "doctor", "--list"]))).unwrap();
    let integrity = listed.as_array().unwrap().iter().find(|c| c["id"] == "accounts.integrity").unwrap();
    assert_eq!(integrity["prerequisites"], serde_json::json!(["database.connectivity"]));
}

#[test]
fn colour_only_on_a_terminal_unless_forced_and_never_in_log_files() {
    let tmp = tempfile::tempdir().unwrap();
    ok(gatehouse(tmp.path()).args(["init", "--dir", "."]));
    let doctor = |env: &[(&str, &str)]| {
        let mut cmd = gatehouse(tmp.path());
        cmd.args(["doctor", "--only", "database.connectivity"]).env("GATEHOUSE_LOG", "debug");
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(&mut cmd)
    };
    // Into pipes (a file, a log shipper): plain text, the report and the log lines alike.
    let plain = doctor(&[]);
    assert!(!plain.stderr.is_empty(), "debug logging writes something to stderr");
    assert!(!plain.stdout.contains('\u{1b}') && !plain.stderr.contains('\u{1b}'), "{}", plain.stderr);
    // CLICOLOR_FORCE asks for colour anyway; NO_COLOR and TERM=dumb never get it otherwise.
    let forced = doctor(&[("CLICOLOR_FORCE", "1")]);
    assert!(forced.stdout.contains('\u{1b}') && forced.stderr.contains('\u{1b}'), "{}", forced.stdout);
    for env in [[("NO_COLOR", "1")], [("TERM", "dumb")]] {
        let r = doctor(&env);
        assert!(!r.stdout.contains('\u{1b}') && !r.stderr.contains('\u{1b}'), "{env:?}");
    }
}

#[test]
fn init_writes_down_the_machines_time_zone_so_the_first_doctor_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    ok(gatehouse(tmp.path()).args(["init", "--dir", "."]));
    let yaml = std::fs::read_to_string(tmp.path().join("gatehouse.yaml")).unwrap();
    let line = yaml.lines().find(|l| l.starts_with("timezone:")).unwrap();
    assert_ne!(line, "timezone: \"\"", "a zone is written: {line}");
    let r = run(gatehouse(tmp.path()).args(["doctor", "--only", "time.timezone", "--format", "json"]));
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["results"][0]["status"], "pass", "{}", report["results"][0]);
}

/// `init --system-url http://127.0.0.1:9000/clients`: the site the operator named is the site
/// they get — system_url with its trailing slash (else the login form would post to
/// `/clientslogin`), and serve listening on that address.
#[test]
fn init_takes_system_url_as_the_address_to_serve() {
    let tmp = tempfile::tempdir().unwrap();
    ok(gatehouse(tmp.path()).args(["init", "--dir", ".", "--system-url", "http://127.0.0.1:9000/clients"]));
    let yaml = std::fs::read_to_string(tmp.path().join("gatehouse.yaml")).unwrap();
    assert!(yaml.contains("system_url: \"http://127.0.0.1:9000/clients/\""), "{yaml}");
    assert!(yaml.contains("listen: \"127.0.0.1:9000\""), "{yaml}");
    let other = tempfile::tempdir().unwrap();
    let args = ["init", "--dir", ".", "--system-url", "https://billing.example.com", "--listen", "127.0.0.1:8181"];
    ok(gatehouse(other.path()).args(args));
    let yaml = std::fs::read_to_string(other.path().join("gatehouse.yaml")).unwrap();
    assert!(
        yaml.contains("system_url: \"https://billing.example.com/\"") && yaml.contains("listen: \"127.0.0.1:8181\""),
        "{yaml}"
    );
}

#[test]
fn nagios_says_unknown_when_the_run_cannot_start() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("broken.yaml"), "sesions: {}\n").unwrap();
    let r = run(gatehouse(tmp.path()).args(["--config", "broken.yaml", "doctor", "--format", "nagios"]));
    assert_eq!(r.code, 3, "UNKNOWN: {}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    assert!(r.stdout.starts_with("GATEHOUSE UNKNOWN - ") && r.stdout.contains("broken.yaml:1:1"), "{}", r.stdout);
    // Any other format keeps the usual refusal: exit 2 and the error on stderr.
    let human = run(gatehouse(tmp.path()).args(["--config", "broken.yaml", "doctor"]));
    assert_eq!((human.code, human.stdout.as_str()), (2, ""));
}

/// Triage by symptom on a deployment whose mail goes nowhere: `--symptoms` lists the thirteen
/// rows, `--symptom emails-unsent` runs the checks that explain it and ranks what they found.
#[test]
fn doctor_triages_by_symptom() {
    let tmp = tempfile::tempdir().unwrap();
    ok(gatehouse(tmp.path()).args(["init", "--dir", "."]));
    let config = tmp.path().join("gatehouse.yaml");
    let text = std::fs::read_to_string(&config).unwrap().replace("transport: spool", "transport: smtp");
    std::fs::write(&config, text).unwrap();

    let listed: Value =
        serde_json::from_str(&ok(gatehouse(tmp.path()).args(["--json", "doctor", "--symptoms"]))).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 13);
    let human = ok(gatehouse(tmp.path()).args(["doctor", "--symptoms"]));
    assert!(human.contains("login-details-incorrect") && human.contains("Login Details Incorrect"), "{human}");

    let r = run(gatehouse(tmp.path()).args(["doctor", "--symptom", "emails-unsent"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("Symptom: \"General emails"), "{}", r.stdout);
    let first = r.stdout.lines().find(|l| l.starts_with("  1. ")).unwrap();
    assert!(first.contains("email.transport") && first.contains("mail.smtp.host is empty"), "{}", r.stdout);
    let second = r.stdout.lines().find(|l| l.starts_with("  2. ")).unwrap();
    assert!(second.contains("cron.activity"), "{}", r.stdout);
    assert!(r.stdout.contains("Ruled out: ") && r.stdout.contains("email.queue"), "{}", r.stdout);

    let json: Value = serde_json::from_str(
        &run(gatehouse(tmp.path()).args(["--json", "doctor", "--symptom", "emails-unsent"])).stdout,
    )
    .unwrap();
    assert_eq!(json["triage"]["likely_causes"], serde_json::json!(["email.transport", "cron.activity"]));
    let transport = json["results"].as_array().unwrap().iter().find(|r| r["id"] == "email.transport").unwrap();
    assert_eq!(transport["symptoms"], serde_json::json!(["emails-unsent"]));

    let unknown = run(gatehouse(tmp.path()).args(["doctor", "--symptom", "slow"]));
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("no such symptom") && unknown.stderr.contains("frequent-logouts"),
        "{}",
        unknown.stderr
    );

    // In the user's words: any case and spacing, or what the page said.
    for typed in ["General Emails", "Emails unsent", "EMAILS-UNSENT"] {
        let r = run(gatehouse(tmp.path()).args(["doctor", "--symptom", typed]));
        assert!(r.stdout.starts_with("Symptom: \"General emails"), "{typed}: {}{}", r.stdout, r.stderr);
    }
    let said = run(gatehouse(tmp.path()).args(["doctor", "--symptom", "Login Details Incorrect"]));
    assert!(said.stdout.starts_with("Symptom: \"Login Details Incorrect"), "{}{}", said.stdout, said.stderr);
    let typo = run(gatehouse(tmp.path()).args(["doctor", "--symptom", "frequnt-logouts"]));
    assert_eq!(typo.code, 2);
    assert!(typo.stderr.contains("Did you mean `frequent-logouts`?"), "{}", typo.stderr);
}

/// Reports a person reads put the problems first (failures, then warnings) and fold the rest;
/// SARIF rules carry the check's help, and a finding about a configured value points at the
/// file and line it was written on.
#[test]
fn reports_lead_with_problems_and_point_at_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let config = "listen: \"127.0.0.1:8080\"\n# where users go\nsystem_url: \"https://billing.example.com/portal\"\n";
    std::fs::write(tmp.path().join("gatehouse.yaml"), config).unwrap();
    let doctor = |format: &str| {
        run(gatehouse(tmp.path())
            .env("GATEHOUSE_DOCTOR__DISK_MIN_FREE", "1B")
            .env("GATEHOUSE_DOCTOR__DISK_MIN_FREE_PERCENT", "0")
            .args(["doctor", "--skip", "system_url.reachable,proxy.cloudflare,time.clock", "--format", format]))
        .stdout
    };
    let human = doctor("human");
    assert!(human.starts_with("problems\n"), "{human}");
    let problems_end = human.find("\n\n").unwrap();
    assert!(human[..problems_end].contains("system_url.config"), "{human}");
    assert!(!human[..problems_end].contains('✔'), "no pass among the problems:\n{human}");

    let markdown = doctor("markdown");
    let first_problem = markdown.find("## WARN").expect(&markdown);
    // The rest is folded (the summary line of a <details>), after the problems.
    let rest = markdown.find(" other result(s): passed, skipped").expect(&markdown);
    let opened = markdown[..rest].rfind("<details><summary>").unwrap();
    assert!(markdown[opened + "<details><summary>".len()..rest].chars().all(|c| c.is_ascii_digit()), "{markdown}");
    assert!(first_problem < opened, "{markdown}");
    assert!(!markdown[rest..].contains("## WARN"), "no problem among the folded rest");
    let html = doctor("html");
    assert!(html.find("<h2>Problems</h2>").unwrap() < html.find("other result(s)").unwrap());

    let sarif: Value = serde_json::from_str(&doctor("sarif")).unwrap();
    let run = &sarif["runs"][0];
    let result = run["results"].as_array().unwrap().iter().find(|r| r["ruleId"] == "system_url.config").unwrap();
    let location = &result["locations"][0]["physicalLocation"];
    assert!(location["artifactLocation"]["uri"].as_str().unwrap().ends_with("gatehouse.yaml"), "{result}");
    assert_eq!(location["region"]["startLine"], 3);
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.iter().all(|r| !r["help"]["text"].as_str().unwrap().is_empty()), "every rule has help");
}

/// `--color` decides over the conventions; `--json` errors are JSON; a doctor run that cannot
/// start still speaks its format; `GATEHOUSE_LOG_FORMAT=json` logs one JSON object per line.
#[test]
fn colour_errors_and_logs_in_the_form_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let doctor = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = gatehouse(tmp.path());
        cmd.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd.args(args))
    };
    let always = doctor(&["--color", "always", "doctor", "--only", "database.connectivity"], &[]);
    assert!(always.stdout.contains('\u{1b}'), "colour into a pipe when asked: {}", always.stdout);
    let never = doctor(&["--color", "never", "doctor", "--only", "database.connectivity"], &[("CLICOLOR_FORCE", "1")]);
    assert!(!never.stdout.contains('\u{1b}'), "--color never wins over CLICOLOR_FORCE");

    let refused = doctor(&["--json", "--config", "missing.yaml", "client", "list"], &[]);
    assert_eq!(refused.code, 2);
    let error: Value = serde_json::from_str(refused.stderr.trim()).expect(&refused.stderr);
    assert_eq!(error["error"]["code"], "invalid_config");
    assert!(error["error"]["message"].as_str().unwrap().contains("missing.yaml"));

    for format in ["json", "sarif", "junit"] {
        let r = doctor(&["--config", "missing.yaml", "doctor", "--format", format], &[]);
        assert_eq!(r.code, 2, "{format}");
        match format {
            "json" => {
                let report: Value = serde_json::from_str(&r.stdout).expect(&r.stdout);
                assert_eq!(report["results"][0]["id"], "doctor.run");
                assert_eq!(report["results"][0]["status"], "error");
            }
            "sarif" => assert_eq!(serde_json::from_str::<Value>(&r.stdout).unwrap()["version"], "2.1.0"),
            _ => assert!(roxmltree::Document::parse(&r.stdout).is_ok(), "{}", r.stdout),
        }
    }

    ok(gatehouse(tmp.path()).args(["init", "--dir", "."]));
    let logged =
        doctor(&["cron", "--job", "heartbeat"], &[("GATEHOUSE_LOG_FORMAT", "json"), ("GATEHOUSE_LOG", "debug")]);
    assert_eq!(logged.code, 0, "{}", logged.stderr);
    let lines: Vec<&str> = logged.stderr.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(entry["level"].is_string() && entry["timestamp"].is_string(), "{line}");
    }
}

/// Completions and man pages come from the command-line definition: bash loads the script,
/// and there is a page per command.
#[test]
fn completions_and_man_pages_are_generated_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let script = ok(gatehouse(tmp.path()).args(["completions", "bash"]));
    std::fs::write(tmp.path().join("gatehouse.bash"), &script).unwrap();
    let syntax = std::process::Command::new("bash").arg("-n").arg(tmp.path().join("gatehouse.bash")).output().unwrap();
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
    assert!(script.contains("doctor") && script.contains("--symptom"), "every command and flag is in it");
    let loaded = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p gatehouse", tmp.path().join("gatehouse.bash").display()))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&loaded.stdout).contains("gatehouse"), "bash registers the completion");
    for shell in ["zsh", "fish"] {
        assert!(ok(gatehouse(tmp.path()).args(["completions", shell])).contains("gatehouse"));
    }

    let page = ok(gatehouse(tmp.path()).arg("man"));
    assert!(page.contains(".TH gatehouse 1"), "{page}");
    ok(gatehouse(tmp.path()).args(["man", "pages"]));
    let pages: Vec<String> = std::fs::read_dir(tmp.path().join("pages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    for expected in ["gatehouse.1", "gatehouse-doctor.1", "gatehouse-license-verify.1"] {
        assert!(pages.iter().any(|p| p == expected), "{expected} missing: {pages:?}");
    }
}

/// A deployment made by `init` and started as its next steps say — serve, cron, doctor — is all
/// green: not one warning on the first run.
#[test]
fn the_first_run_after_init_is_all_green() {
    let tmp = tempfile::tempdir().unwrap();
    let port = crate::support::port_for_a_server();
    let url = format!("http://127.0.0.1:{port}/");
    let init = ok(gatehouse(tmp.path()).args(["init", "--dir", "site", "--system-url", &url]));
    let config = std::fs::canonicalize(tmp.path().join("site/gatehouse.yaml")).unwrap();
    let config = config.to_str().unwrap();
    for step in [format!("gatehouse --config {config} serve"), format!("*/5 * * * * gatehouse --config {config} cron")]
    {
        assert!(init.contains(&step), "init says how: {step}\n{init}");
    }

    let mut serve = std::process::Command::new(assert_cmd::cargo::cargo_bin("gatehouse"))
        .args(["--config", config, "serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(serve.stdout.take().unwrap()), &mut line).unwrap();
    assert!(line.starts_with("listening on"), "{line}");
    ok(gatehouse(tmp.path()).args(["--config", config, "cron"]));
    let doctor = run(gatehouse(tmp.path())
        .env("GATEHOUSE_DOCTOR__DISK_MIN_FREE", "1B")
        .env("GATEHOUSE_DOCTOR__DISK_MIN_FREE_PERCENT", "0")
        .args(["--config", config, "--json", "doctor", "--fail-on", "warn"]));
    let _ = serve.kill();
    let _ = serve.wait();
    let report: Value = serde_json::from_str(&doctor.stdout).unwrap();
    let problems: Vec<String> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !["pass", "skipped"].contains(&r["status"].as_str().unwrap()))
        .map(|r| format!("{} {}: {}", r["status"], r["id"], r["message"]))
        .collect();
    assert!(problems.is_empty(), "the first run after init: {problems:#?}");
    assert_eq!(doctor.code, 0);
}
