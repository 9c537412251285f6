//! The license rows of the troubleshooting table, reproduced against a real `serve` on
//! 127.0.0.1 and a fake licensing server that speaks the protocol, and diagnosed by the
//! doctor: wrong key; the install moved (directory, domain, IP); cron run from another
//! directory with another configuration; the server unreachable inside the grace and past it;
//! a tampered cache; an HTML answer on 200; a stalled connect; an answer signed by another key.

use std::time::Duration;

use gatehouse::accounts::AdminPermission;
use gatehouse::config::Loaded;
use gatehouse::cron::{Cron, Job};
use gatehouse::doctor::Status;
use gatehouse::license::{Binding, records};
use reqwest::Method;
use serde_json::json;

use crate::support::doctor::check_at;
use crate::support::license_server::{LicenseServer, Mode, stalled_port};
use crate::support::web::{Backend, PASSWORD, Server, admin_token, api};

/// A server pointed at `license`, after its start-up verification has been recorded.
async fn licensed(backend: Backend, license: &LicenseServer, extra: &str) -> Option<Server> {
    let server = Server::start(backend, &format!("{}{extra}", license.yaml())).await?;
    started(&server).await;
    Some(server)
}

/// Waits (polling, bounded) until the web server's start-up verification is recorded.
async fn started(server: &Server) {
    for _ in 0..500 {
        let done = records::all(server.state.db()).await.unwrap().iter().any(|r| r.context.as_str() == "web");
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("serve did not verify the license at start");
}

async fn doctor(server: &Server, id: &str) -> gatehouse::doctor::CheckResult {
    check_at(&server.state.loaded, id, server.state.db().clock()).await.0
}

/// An admin write through the API: the status and the error code, if any.
async fn admin_write(server: &Server) -> (u16, String) {
    let token = admin_token(server, &[AdminPermission::SettingsManage]).await;
    let domain = format!("spam{}.example", rand::random::<u32>());
    let (status, body) = api(server, &token, Method::POST, "banned-emails", Some(json!({"domain": domain}))).await;
    (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
}

/// The client area stays up: a client's owner signs in.
async fn client_area_works(server: &Server) {
    let email = format!("owner{}@example.com", rand::random::<u32>());
    server.client_with_owner(&email, "Acme").await;
    let page = server.browser().login(&email, PASSWORD).await;
    assert_eq!((page.status, page.location()), (303, "/clientarea"), "{}", page.body);
}

async fn an_active_license_passes_and_opens_admin_functions(backend: Backend) {
    let license = LicenseServer::start().await;
    let Some(server) = licensed(backend, &license, "").await else { return };

    let request = &license.requests()[0];
    assert_eq!(request.context.as_str(), "web");
    assert_eq!(request.facts.domain.as_deref(), Some("127.0.0.1"));
    assert_eq!(request.facts.ip.as_deref(), Some("127.0.0.1"));
    let dir = std::fs::canonicalize(server.dir.path()).unwrap();
    assert_eq!(request.facts.directory, dir.display().to_string());

    let validity = doctor(&server, "license.validity").await;
    assert_eq!(validity.status, Status::Pass, "{}", validity.message);
    let connectivity = doctor(&server, "license.connectivity").await;
    assert_eq!(connectivity.status, Status::Pass, "{}", connectivity.message);
    assert!(connectivity.message.contains("signed answer (status active)"), "{}", connectivity.message);
    assert_eq!(admin_write(&server).await.0, 201);

    // The cache is private to the service's user.
    let cache = server.dir.path().join("gatehouse-data/license.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o600);
}

async fn a_wrong_key_is_invalid_and_locks_admin_writes_but_not_the_client_area(backend: Backend) {
    let license = LicenseServer::start().await;
    let other = gatehouse::license::LicenseKey::issue(rand::random());
    let yaml = license.yaml().replace(license.key.as_str(), other.as_str());
    let Some(server) = Server::start(backend, &yaml).await else { return };
    started(&server).await;

    let validity = doctor(&server, "license.validity").await;
    assert_eq!(validity.status, Status::Fail);
    assert!(validity.message.contains("the license is invalid: this key was never issued"), "{}", validity.message);
    assert!(validity.remediation.contains("reissue"), "{}", validity.remediation);
    assert_eq!(admin_write(&server).await, (403, "license_invalid".to_string()));
    client_area_works(&server).await;
    admin_area_is_read_only(&server).await;
}

/// The admin area under the lock: an admin still signs in and reads, a banner gives the reason,
/// and every form is refused with it; nothing is written.
async fn admin_area_is_read_only(server: &Server) {
    let actor = gatehouse::accounts::Actor::system("test");
    let all = AdminPermission::ALL.iter().copied().collect();
    server.accounts().create_role(&actor, &gatehouse::accounts::Grantor::Operator, "ops", &all).await.unwrap();
    server
        .accounts()
        .create_admin(
            &actor,
            &gatehouse::accounts::Grantor::Operator,
            "alice",
            "alice@example.com",
            "ops",
            Some(PASSWORD),
        )
        .await
        .unwrap();
    let b = server.browser();
    let signed = b.submit("admin/login", "admin/login", &[("username", "alice"), ("password", PASSWORD)]).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let page = b.get("admin/settings/banned-emails").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("The admin area is read-only: ") && page.body.contains("never issued"), "{}", page.body);
    let form = [("domain", "spam.example")];
    let refused = b.submit("admin/settings/banned-emails", "admin/settings/banned-emails/add", &form).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("Read-only while the license is not valid"), "{}", refused.body);
    assert!(server.accounts().list_banned_domains().await.unwrap().is_empty(), "nothing written");
}

async fn the_install_moved_and_the_doctor_names_what_moved(backend: Backend) {
    let license = LicenseServer::start().await;
    let Some(mut server) = licensed(backend, &license, "").await else { return };
    let here = std::fs::canonicalize(server.dir.path()).unwrap().display().to_string();

    let cases = [
        (
            Binding { directories: vec!["/srv/gatehouse".into()], ..Binding::default() },
            format!("licensed for directory /srv/gatehouse; web runs from {here}"),
        ),
        (
            Binding { domains: vec!["portal.example.com".into()], ..Binding::default() },
            "licensed for domain portal.example.com; web serves 127.0.0.1".to_string(),
        ),
        (
            Binding { ips: vec!["203.0.113.7".into()], ..Binding::default() },
            "licensed for IP 203.0.113.7; web connects from 127.0.0.1".to_string(),
        ),
    ];
    for (binding, named) in cases {
        license.bind(binding);
        // The previous case's verification had the same outcome: without it, waiting for the
        // outcome waits for this case's.
        sqlx::query("DELETE FROM license_checks").execute(server.state.db().pool()).await.unwrap();
        // What the operator does after moving: restart serve, which verifies at start.
        let before = license.requests().len();
        server.reconfigure(&license.yaml()).await;
        while license.requests().len() == before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        started(&server).await;
        wait_for_outcome(&server, "web", "invalid").await;

        let validity = doctor(&server, "license.validity").await;
        assert_eq!(validity.status, Status::Fail, "{}", validity.message);
        assert!(validity.message.contains(&named), "expected {named:?} in: {}", validity.message);
        assert_eq!(admin_write(&server).await, (403, "license_invalid".to_string()));
    }

    // Reissued for where it runs now: the next verification unlocks.
    license.bind(Binding { directories: vec![here], ..Binding::default() });
    let before = license.requests().len();
    server.reconfigure(&license.yaml()).await;
    while license.requests().len() == before {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for_outcome(&server, "web", "active").await;
    assert_eq!(doctor(&server, "license.validity").await.status, Status::Pass);
    assert_eq!(admin_write(&server).await.0, 201);
}

async fn wait_for_outcome(server: &Server, context: &str, outcome: &str) {
    for _ in 0..500 {
        let all = records::all(server.state.db()).await.unwrap();
        if all.iter().any(|r| r.context.as_str() == context && r.outcome.as_str() == outcome) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no {context} verification with outcome {outcome}");
}

/// The configuration cron runs with when it is started from another directory: its own
/// gatehouse.yaml there, on the same database, without system_url.
fn cron_elsewhere(server: &Server, other: &std::path::Path, license: &LicenseServer) -> Loaded {
    let yaml = format!("database_url: \"{}\"\n{}", server.state.loaded.config.database_url.as_str(), license.yaml());
    let path = other.join("gatehouse.yaml");
    std::fs::write(&path, yaml).unwrap();
    gatehouse::config::load(Some(&path), Vec::<(String, String)>::new()).unwrap()
}

async fn cron_from_another_directory_cannot_invalidate_the_license_and_is_named(backend: Backend) {
    let license = LicenseServer::start().await;
    let Some(server) = Server::start(backend, &license.yaml()).await else { return };
    let here = std::fs::canonicalize(server.dir.path()).unwrap().display().to_string();
    license.bind(Binding { directories: vec![here.clone()], ..Binding::default() });
    started(&server).await;
    wait_for_outcome(&server, "web", "active").await;

    // A week later the license is due, and cron runs from the operator's home directory.
    license.follow(server.state.db().clock());
    server.state.db().clock().advance(Duration::from_secs(7 * 86_400 + 60));
    let elsewhere = tempfile::tempdir().unwrap();
    let loaded = cron_elsewhere(&server, elsewhere.path(), &license);
    // That cron is its own process: its services are built from its configuration.
    let services = gatehouse::services::Services::over(server.state.db().clone(), &loaded);
    let cron = Cron { loaded: &loaded, services: &services };
    let results = cron.run(Some(Job::License)).await.unwrap();
    let job = &results[0];
    assert!(!job.ok, "the job reports the refusal");
    let error = job.detail["error"].as_str().unwrap();
    assert!(error.contains("not applied") && error.contains("(cron) vs"), "{error}");
    cron.run(Some(Job::Heartbeat)).await.unwrap();

    // The web server's answer stands: admin functions stay open (in the grace, since it is due).
    assert_eq!(admin_write(&server).await.0, 201);
    let validity = doctor(&server, "license.validity").await;
    assert_eq!(validity.status, Status::Fail, "{}", validity.message);
    let other = std::fs::canonicalize(elsewhere.path()).unwrap().display().to_string();
    assert!(
        validity.message.contains(&format!("licensed for directory {here}; cron runs from {other}")),
        "{}",
        validity.message
    );
    assert!(validity.message.contains("sent other facts than the web server"), "{}", validity.message);
    // Its configuration has no system_url, so it sends the default's host.
    assert!(validity.message.contains("domain localhost vs 127.0.0.1"), "{}", validity.message);

    // Fixed: the next cron run is from the install directory with the web server's configuration.
    server.state.db().clock().advance(Duration::from_secs(300));
    let fixed = Cron { loaded: &server.state.loaded, services: &server.state.services };
    assert!(fixed.run(Some(Job::License)).await.unwrap()[0].ok);
    fixed.run(Some(Job::Heartbeat)).await.unwrap();
    let validity = doctor(&server, "license.validity").await;
    assert_eq!(validity.status, Status::Pass, "{}\n{:?}", validity.message, validity.evidence);
}

async fn an_unreachable_server_warns_in_the_grace_and_locks_after_it(backend: Backend) {
    let license = LicenseServer::start().await;
    let Some(mut server) = licensed(backend, &license, "").await else { return };
    wait_for_outcome(&server, "web", "active").await;

    // The licensing server goes away (its port refuses), and a week passes.
    let closed = crate::support::closed_port();
    let unreachable = license.yaml().replace(&license.url, &format!("http://127.0.0.1:{closed}/"));
    server.reconfigure(&unreachable).await;
    let clock = server.state.db().clock().clone();
    clock.advance(Duration::from_secs(7 * 86_400 + 3600));
    let cron = Cron { loaded: &server.state.loaded, services: &server.state.services };
    let job = &cron.run(Some(Job::License)).await.unwrap()[0];
    assert!(!job.ok && job.detail["error"].as_str().unwrap().contains("tcp"), "{}", job.detail);

    let validity = doctor(&server, "license.validity").await;
    assert_eq!(validity.status, Status::Warn, "{}", validity.message);
    // An hour into the 3-day grace (less the seconds the test took): 70 or 71 hours left.
    assert!(
        validity.message.contains("(2 days 22 h left)") || validity.message.contains("(2 days 23 h left)"),
        "{}",
        validity.message
    );
    assert!(validity.message.contains("tcp"), "the last attempt's cause: {}", validity.message);
    assert_eq!(admin_write(&server).await.0, 201, "admin functions stay open in the grace");
    let connectivity = doctor(&server, "license.connectivity").await;
    assert_eq!((connectivity.status, connectivity.evidence["phase"].as_str()), (Status::Fail, Some("tcp")));

    clock.advance(Duration::from_secs(3 * 86_400));
    let validity = doctor(&server, "license.validity").await;
    assert_eq!(validity.status, Status::Fail, "{}", validity.message);
    assert!(validity.message.contains("3-day grace"), "{}", validity.message);
    assert_eq!(admin_write(&server).await, (403, "license_invalid".to_string()));
    client_area_works(&server).await;
}

async fn a_tampered_cache_unlocks_nothing(backend: Backend) {
    let license = LicenseServer::start().await;
    license.set(|b| {
        b.status = gatehouse::license::Status::Suspended;
        b.reason = "payment overdue".into();
    });
    let Some(server) = licensed(backend, &license, "").await else { return };
    wait_for_outcome(&server, "web", "suspended").await;
    assert_eq!(admin_write(&server).await, (403, "license_invalid".to_string()));

    // Someone edits the cached answer to say `active`: the signature no longer verifies.
    let cache = server.dir.path().join("gatehouse-data/license.json");
    let mut envelope: serde_json::Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut answer: serde_json::Value =
        serde_json::from_slice(&b64.decode(envelope["payload"].as_str().unwrap()).unwrap()).unwrap();
    answer["status"] = json!("active");
    envelope["payload"] = json!(b64.encode(serde_json::to_vec(&answer).unwrap()));
    std::fs::write(&cache, serde_json::to_vec(&envelope).unwrap()).unwrap();

    let validity = doctor(&server, "license.validity").await;
    assert_eq!(validity.status, Status::Fail);
    assert!(validity.message.contains("not genuine"), "{}", validity.message);
    assert_eq!(admin_write(&server).await, (403, "license_invalid".to_string()));
}

web_on_both_backends!(
    an_active_license_passes_and_opens_admin_functions,
    a_wrong_key_is_invalid_and_locks_admin_writes_but_not_the_client_area,
    the_install_moved_and_the_doctor_names_what_moved,
    cron_from_another_directory_cannot_invalidate_the_license_and_is_named,
    an_unreachable_server_warns_in_the_grace_and_locks_after_it,
    a_tampered_cache_unlocks_nothing,
);

/// license.connectivity on one server (the network is the same whichever database).
async fn connectivity(license: &LicenseServer, server_url: &str) -> gatehouse::doctor::CheckResult {
    let yaml = license.yaml().replace(&license.url, server_url);
    let server = Server::start(Backend::Sqlite, &yaml).await.unwrap();
    started(&server).await;
    doctor(&server, "license.connectivity").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_html_page_on_200_is_not_an_answer() {
    let license = LicenseServer::start().await;
    license.set(|b| b.mode = Mode::Html);
    let r = connectivity(&license, &license.url.clone()).await;
    assert_eq!((r.status, r.evidence["phase"].as_str()), (Status::Fail, Some("protocol")), "{}", r.message);
    assert!(r.message.contains("HTTP 200 (text/html) is not the licensing protocol"), "{}", r.message);
    assert!(r.message.contains("Hotel WiFi"), "the page is quoted: {}", r.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_signed_by_another_key_is_not_an_answer() {
    let license = LicenseServer::start().await;
    license.set(|b| b.mode = Mode::WrongKey);
    let r = connectivity(&license, &license.url.clone()).await;
    assert_eq!((r.status, r.evidence["phase"].as_str()), (Status::Fail, Some("signature")), "{}", r.message);
    assert!(r.message.contains("does not verify against license.public_key"), "{}", r.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_connect_is_named_as_the_tcp_phase_before_the_deadline() {
    let license = LicenseServer::start().await;
    let stalled = stalled_port();
    let r = connectivity(&license, &format!("http://127.0.0.1:{}/", stalled.port)).await;
    assert_eq!((r.status, r.evidence["phase"].as_str()), (Status::Fail, Some("tcp")), "{}", r.message);
    assert!(r.message.contains("a firewall dropping packets?"), "{}", r.message);
    assert!(r.duration_ms < 3000, "the check ends before its deadline: {} ms", r.duration_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_that_accepts_and_never_answers_is_named_as_the_http_phase() {
    let license = LicenseServer::start().await;
    license.set(|b| b.mode = Mode::Stall);
    let r = connectivity(&license, &license.url.clone()).await;
    assert_eq!((r.status, r.evidence["phase"].as_str()), (Status::Fail, Some("http")), "{}", r.message);
    assert!(r.message.contains("does not answer"), "{}", r.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closed_port_and_tls_to_a_plain_port_are_named_by_phase() {
    let license = LicenseServer::start().await;
    let closed = crate::support::closed_port();
    let r = connectivity(&license, &format!("http://127.0.0.1:{closed}/")).await;
    assert_eq!((r.status, r.evidence["phase"].as_str()), (Status::Fail, Some("tcp")), "{}", r.message);
    assert!(r.message.contains("refused") && r.remediation.contains("firewall"), "{}", r.message);

    let plain = license.url.replace("http://", "https://");
    let r = connectivity(&license, &plain).await;
    assert_eq!((r.status, r.evidence["phase"].as_str()), (Status::Fail, Some("tls")), "{}", r.message);
    let names: Vec<&str> =
        r.evidence["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dns", "tcp", "tls"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_name_that_does_not_resolve_is_named_as_the_dns_phase() {
    let license = LicenseServer::start().await;
    let r = connectivity(&license, "https://licensing.no-such-host.invalid/").await;
    assert_eq!((r.status, r.evidence["phase"].as_str()), (Status::Fail, Some("dns")), "{}", r.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unlicensed_mode_skips_both_checks_and_locks_nothing() {
    let server = Server::start(Backend::Sqlite, "").await.unwrap();
    for id in ["license.validity", "license.connectivity"] {
        let r = doctor(&server, id).await;
        assert_eq!(r.status, Status::Skipped, "{id}: {}", r.message);
        assert!(r.message.contains("unlicensed mode"), "{}", r.message);
    }
    assert_eq!(admin_write(&server).await.0, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mistyped_key_is_caught_before_any_request() {
    let license = LicenseServer::start().await;
    let mut typo = license.key.as_str().to_string();
    typo.replace_range(5..6, if &typo[5..6] == "A" { "B" } else { "A" });
    let server = Server::start(Backend::Sqlite, &license.yaml().replace(license.key.as_str(), &typo)).await.unwrap();
    let r = doctor(&server, "license.validity").await;
    assert_eq!(r.status, Status::Fail);
    assert!(r.message.contains("license.key is malformed: the checksum does not match"), "{}", r.message);
    // Asked now, as serve does at start (awaited here, not raced against): refused locally.
    let refused = server.state.license.verify(gatehouse::license::Context::Web).await.unwrap_err();
    assert!(refused.to_string().contains("license.key: the checksum does not match"), "{refused}");
    assert!(license.requests().is_empty(), "nothing was sent");
    // And the lock says why: the key, not a cache.
    let (status, code) = admin_write(&server).await;
    assert_eq!((status, code.as_str()), (403, "license_invalid"));
}

/// `gatehouse license status|verify` as an operator types them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_shows_the_standing_and_verifies_with_exit_codes() {
    let license = LicenseServer::start().await;
    let server = licensed(Backend::Sqlite, &license, "").await.unwrap();
    let config = server.dir.path().join("gatehouse.yaml");
    let run = |args: &[&str]| {
        let mut cmd = crate::support::gatehouse(server.dir.path());
        cmd.arg("--config").arg(&config).args(args);
        cmd.output().unwrap()
    };

    let verified = run(&["license", "verify"]);
    let text = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(verified.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&verified.stderr));
    assert!(text.contains("status:") && text.contains("active") && text.contains("tcp"), "{text}");

    let verified: serde_json::Value = serde_json::from_slice(&run(&["--json", "license", "verify"]).stdout).unwrap();
    assert_eq!((verified["reply"].as_str(), verified["answer"]["status"].as_str()), (Some("answered"), Some("active")));
    assert_eq!((verified["context"].as_str(), verified["applied"].as_bool()), (Some("cli"), Some(true)));

    let status = run(&["--json", "license", "status"]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["standing"]["standing"], "active");
    assert_eq!(json["key_id"], license.key.id());
    assert!(!String::from_utf8_lossy(&status.stdout).contains(license.key.as_str()), "the key is never printed");
    let contexts: Vec<&str> =
        json["verifications"].as_array().unwrap().iter().map(|r| r["context"].as_str().unwrap()).collect();
    assert!(contexts.contains(&"web") && contexts.contains(&"cli"), "{contexts:?}");

    license.set(|b| b.mode = Mode::Html);
    let html = run(&["license", "verify"]);
    assert_eq!(html.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&html.stdout).contains("protocol: HTTP 200"),
        "{}",
        String::from_utf8_lossy(&html.stdout)
    );

    std::fs::write(&config, std::fs::read_to_string(&config).unwrap().replace(license.key.as_str(), "GH-NOPE"))
        .unwrap();
    let malformed = run(&["license", "verify"]);
    assert_eq!(malformed.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&malformed.stderr).contains("license.key"),
        "{}",
        String::from_utf8_lossy(&malformed.stderr)
    );
}

/// `doctor --timeout` shorter than the configured doctor.timeout: the probe stops before the
/// deadline the command line set and names the phase, instead of the runner cutting it off
/// with a bare `timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_timeout_on_the_command_line_still_names_the_phase() {
    let license = LicenseServer::start().await;
    license.set(|b| b.mode = Mode::Stall);
    let tmp = tempfile::tempdir().unwrap();
    let yaml = format!("doctor:\n  timeout: 30s\n{}", license.yaml());
    std::fs::write(tmp.path().join("gatehouse.yaml"), yaml).unwrap();
    crate::support::gatehouse(tmp.path()).arg("migrate").assert().success();
    let started = std::time::Instant::now();
    let out = crate::support::gatehouse(tmp.path())
        .args(["--json", "doctor", "--only", "license.connectivity", "--timeout", "1s"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = report["results"].as_array().unwrap().iter().find(|r| r["id"] == "license.connectivity").unwrap();
    assert_eq!((r["status"].as_str(), r["evidence"]["phase"].as_str()), (Some("fail"), Some("http")), "{r}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "the 1 s deadline held");
}
