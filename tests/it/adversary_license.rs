//! The standing adversary suite, licensing: an operator who would rather not pay. A copied
//! cache, a clock turned back, a blanked key — each tried against a real `serve` and a licensing
//! server that speaks the protocol — re-opens nothing; and a new key waits for its first answer
//! with the same grace as a server that went away.

use std::time::Duration;

use gatehouse::accounts::AdminPermission;
use gatehouse::doctor::Status;
use gatehouse::license::{Binding, records};
use reqwest::Method;
use serde_json::json;

use crate::support::doctor::check_at;
use crate::support::license_server::LicenseServer;
use crate::support::web::{Backend, Server, admin_token, api};

async fn started(server: &Server, outcome: &str) {
    for _ in 0..500 {
        if records::all(server.state.db())
            .await
            .unwrap()
            .iter()
            .any(|r| r.context.as_str() == "web" && r.outcome.as_str() == outcome)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("serve did not record a web verification answered {outcome}");
}

async fn admin_write(server: &Server) -> (u16, String) {
    let token = admin_token(server, &[AdminPermission::SettingsManage]).await;
    let domain = format!("spam{}.example", rand::random::<u32>());
    let (status, body) = api(server, &token, Method::POST, "banned-emails", Some(json!({"domain": domain}))).await;
    (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
}

/// The licensing server gone: the same key and public key, a port that refuses.
fn unreachable(license: &LicenseServer) -> String {
    let closed = crate::support::closed_port();
    license.yaml().replace(&license.url, &format!("http://127.0.0.1:{closed}/"))
}

async fn a_copied_cache_does_not_license_another_install(backend: Backend) {
    let license = LicenseServer::start().await;
    let Some(site1) = Server::start(backend, &license.yaml()).await else { return };
    let here = std::fs::canonicalize(site1.dir.path()).unwrap().display().to_string();
    license.bind(Binding { directories: vec![here.clone()], ..Binding::default() });
    site1.state.license.verify(gatehouse::license::Context::Cli).await.unwrap();
    assert_eq!(admin_write(&site1).await.0, 201, "site 1 is licensed");

    // Site 2: another directory, the licensing server out of reach, site 1's cache copied in.
    let Some(site2) = Server::start(backend, &unreachable(&license)).await else { return };
    started(&site2, "no_answer").await;
    std::fs::copy(
        site1.dir.path().join("gatehouse-data/license.json"),
        site2.dir.path().join("gatehouse-data/license.json"),
    )
    .unwrap();
    assert_eq!(admin_write(&site2).await, (403, "license_invalid".to_string()));
    let validity = check_at(&site2.state.loaded, "license.validity", site2.state.db().clock()).await.0;
    assert_eq!(validity.status, Status::Fail, "{}", validity.message);
    let standing = format!("{:?}", site2.state.license.standing());
    assert!(standing.contains(&format!("licensed for directory {here}")), "names which fact differs: {standing}");
}

async fn a_clock_turned_back_does_not_reopen_a_lapsed_license(backend: Backend) {
    let license = LicenseServer::start().await;
    let Some(mut server) = Server::start(backend, &license.yaml()).await else { return };
    license.follow(server.state.db().clock());
    started(&server, "active").await;
    server.reconfigure(&unreachable(&license)).await;
    // The grace ran out 11 days ago: a week to the check, 3 days of grace, 11 more.
    let clock = server.state.db().clock().clone();
    clock.advance(Duration::from_secs((7 + 3 + 11) * 86_400));
    server.state.flush().await; // a heartbeat at the real time
    server.state.license.refresh().await.unwrap();
    assert_eq!(admin_write(&server).await, (403, "license_invalid".to_string()));

    // The operator turns the clock back 11 days: in that time, the answer would be in its grace.
    clock.turn_back(Duration::from_secs(11 * 86_400));
    server.state.flush().await; // heartbeats now carry the turned-back time
    server.state.license.refresh().await.unwrap();
    assert_eq!(admin_write(&server).await, (403, "license_invalid".to_string()), "the high-water mark holds");
}

async fn a_blanked_key_does_not_unlock_a_licensed_install(backend: Backend) {
    let license = LicenseServer::start().await;
    license.set(|b| {
        b.status = gatehouse::license::Status::Suspended;
        b.reason = "payment overdue".into();
    });
    let Some(mut server) = Server::start(backend, &license.yaml()).await else { return };
    started(&server, "suspended").await;
    assert_eq!(admin_write(&server).await, (403, "license_invalid".to_string()));

    server.reconfigure("license: { key: \"\" }\n").await;
    assert_eq!(admin_write(&server).await, (403, "license_invalid".to_string()), "no key is not unlicensed here");
    let validity = check_at(&server.state.loaded, "license.validity", server.state.db().clock()).await.0;
    assert_eq!(validity.status, Status::Fail, "{}", validity.message);
    assert!(validity.message.contains("has been licensed"), "{}", validity.message);
}

async fn a_first_verification_gets_the_grace(backend: Backend) {
    let license = LicenseServer::start().await;
    let Some(server) = Server::start(backend, &unreachable(&license)).await else { return };
    started(&server, "no_answer").await;
    assert_eq!(admin_write(&server).await.0, 201, "a new key waits for its first answer");
    let validity = check_at(&server.state.loaded, "license.validity", server.state.db().clock()).await.0;
    assert_eq!(validity.status, Status::Warn, "{}", validity.message);
    assert!(
        validity.message.contains("not been verified yet") && validity.message.contains("h left"),
        "{}",
        validity.message
    );

    server.state.db().clock().advance(Duration::from_secs(3 * 86_400 + 60));
    assert_eq!(admin_write(&server).await, (403, "license_invalid".to_string()), "until the grace ends");
}

/// A new install with no key at all stays in unlicensed mode: nothing to blank, nothing locks.
async fn a_new_install_without_a_key_stays_unlicensed(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    assert_eq!(admin_write(&server).await.0, 201);
}

async fn a_restored_cache_does_not_undo_a_suspension(backend: Backend) {
    let license = LicenseServer::start().await;
    let Some(server) = Server::start(backend, &license.yaml()).await else { return };
    started(&server, "active").await;
    let cache = server.dir.path().join("gatehouse-data/license.json");
    let saved = std::fs::read(&cache).unwrap();
    // A second later the vendor suspends the key, and the install hears of it.
    server.state.db().clock().advance(Duration::from_secs(60));
    license.follow(server.state.db().clock());
    license.set(|b| {
        b.status = gatehouse::license::Status::Suspended;
        b.reason = "payment overdue".into();
    });
    server.state.license.verify(gatehouse::license::Context::Web).await.unwrap();
    assert_eq!(admin_write(&server).await, (403, "license_invalid".to_string()));
    // The operator puts the old, genuine, active answer back.
    std::fs::write(&cache, saved).unwrap();
    assert_eq!(admin_write(&server).await, (403, "license_invalid".to_string()), "an older answer is not believed");
    let standing = format!("{:?}", server.state.license.standing());
    assert!(standing.contains("older than the newest one this install applied"), "{standing}");
}

web_on_both_backends!(
    a_restored_cache_does_not_undo_a_suspension,
    a_copied_cache_does_not_license_another_install,
    a_clock_turned_back_does_not_reopen_a_lapsed_license,
    a_blanked_key_does_not_unlock_a_licensed_install,
    a_first_verification_gets_the_grace,
    a_new_install_without_a_key_stays_unlicensed,
);
