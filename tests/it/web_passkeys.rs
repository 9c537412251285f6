//! Passkeys over HTTP, what no browser does: a flood of refused answers stores nothing, a
//! browser keeps only its newest few ceremonies, an address's sign-in ceremonies are bounded
//! (and a flood of them does not stop a signed-in person adding a passkey), a session not proven
//! recently and a Duo account add none. The ceremonies themselves, answered by a real
//! authenticator, are `browser_passkeys.rs`.

use crate::support::web::{Backend, PASSWORD, Server, admin_token, api};
use gatehouse::accounts::{Actor, AdminPermission, Principal};

const ON_LOCALHOST: &str = "system_url: \"http://localhost:{port}/\"\n";

async fn count(server: &Server, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(server.accounts().db().pool()).await.unwrap()
}

async fn refused_answers_store_nothing_and_ceremonies_are_bounded(backend: Backend) {
    let Some(server) = Server::start(backend, ON_LOCALHOST).await else { return };
    let visitor = server.browser_as("localhost");
    let page = visitor.get("login").await;
    assert!(page.body.contains("Sign in with a passkey"), "passkeys are on at localhost");
    let csrf = page.csrf();

    let asked = visitor.post("login/passkey/options", &[("csrf_token", &csrf)]).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let options: serde_json::Value = serde_json::from_str(&asked.body).unwrap();
    assert_eq!(options["options"]["mediation"], "conditional", "{options}");
    assert!(options["options"]["publicKey"]["challenge"].is_string() && options["ceremony"].is_string());
    assert_eq!(visitor.post("login/passkey/options", &[]).await.status, 403, "the CSRF token is required");

    // A page left open asks again and again: its browser keeps its newest three.
    for _ in 0..5 {
        assert_eq!(visitor.post("login/passkey/options", &[("csrf_token", &csrf)]).await.status, 200);
    }
    assert_eq!(count(&server, "SELECT COUNT(*) FROM passkey_ceremonies").await, 3);

    // Refused answers — an unknown ceremony, a credential that is none — write no session.
    let ceremony = options["ceremony"].as_str().unwrap();
    for (id, credential) in [("pk_nothing", "{}"), (ceremony, "not json"), ("", "")] {
        let answer =
            visitor.post("login/passkey", &[("csrf_token", &csrf), ("ceremony", id), ("credential", credential)]).await;
        assert_eq!(answer.status, 401, "{}", answer.body);
        assert!(answer.body.contains("That passkey was not accepted"), "{}", answer.body);
    }
    assert_eq!(count(&server, "SELECT COUNT(*) FROM sessions").await, 0, "a refused visitor stores no session");

    // Every browser at one address: their sign-in ceremonies are bounded together…
    let mut refused = None;
    for n in 0..260 {
        let other = server.browser_as("localhost");
        let csrf = other.get("login").await.csrf();
        let asked = other.post("login/passkey/options", &[("csrf_token", &csrf)]).await;
        if asked.status != 200 {
            refused = Some((n, asked));
            break;
        }
    }
    let (n, last) = refused.expect("the address's sign-in ceremonies are bounded");
    assert_eq!((n, last.status), (197, 422), "200 open at once, three of them the first browser's: {}", last.body);
    assert!(last.body.contains("Too many passkey sign-ins"), "{}", last.body);

    // …but a person signed in at that address still adds a passkey: that needs no sign-in ceremony.
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let ann = server.browser_as("localhost");
    assert_eq!(ann.login("ann@example.com", PASSWORD).await.status, 303);
    let page = ann.get("account/security").await;
    assert!(page.body.contains("Add a passkey"), "{}", page.body);
    let asked = ann.post("account/passkeys/options", &[("csrf_token", &page.csrf())]).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let options: serde_json::Value = serde_json::from_str(&asked.body).unwrap();
    assert_eq!(options["options"]["publicKey"]["user"]["name"], "ann@example.com");
    assert_eq!(options["options"]["publicKey"]["authenticatorSelection"]["residentKey"], "preferred");
    assert_eq!(options["options"]["publicKey"]["rp"]["id"], "localhost");
}

async fn a_stale_session_or_a_duo_account_adds_no_passkey(backend: Backend) {
    let Some(server) = Server::start(backend, ON_LOCALHOST).await else { return };
    let (ann_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let ann = server.browser_as("localhost");
    assert_eq!(ann.login("ann@example.com", PASSWORD).await.status, 303);
    let csrf = ann.get("account/security").await.csrf();

    server.state.db().clock().advance(std::time::Duration::from_secs(6 * 60));
    let asked = ann.post("account/passkeys/options", &[("csrf_token", &csrf)]).await;
    assert_eq!(asked.status, 403, "{}", asked.body);
    assert!(asked.body.contains("Confirm it is you first"), "{}", asked.body);
    let added = ann
        .post("account/passkeys", &[("csrf_token", &csrf), ("name", "x"), ("ceremony", "x"), ("credential", "{}")])
        .await;
    assert_eq!(added.status, 303);
    assert!(added.headers["location"].to_str().unwrap().ends_with("account/security/confirm"), "{:?}", added.headers);
    assert_eq!(
        ann.post("account/passkeys/1/remove", &[("csrf_token", &csrf)]).await.headers["location"],
        "/account/security/confirm"
    );

    // Confirmed, but the account signs in through Duo: a passkey would step around it.
    let page = ann.submit("account/security/confirm", "account/security/confirm", &[("password", PASSWORD)]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    server.accounts().set_duo(&Actor::system("test"), (Principal::User, ann_id)).await.unwrap();
    let csrf = ann.get("account/security").await.csrf();
    let asked = ann.post("account/passkeys/options", &[("csrf_token", &csrf)]).await;
    assert_eq!(asked.status, 422, "{}", asked.body);
    assert!(asked.body.contains("go through Duo"), "{}", asked.body);
    assert_eq!(count(&server, "SELECT COUNT(*) FROM passkey_ceremonies").await, 0);
}

/// A session an administrator opened as the user (an impersonation link) neither adds a passkey
/// nor confirms with one: the admin never proved to be the user.
async fn an_impersonated_session_neither_adds_nor_confirms_with_a_passkey(backend: Backend) {
    let Some(server) = Server::start(backend, ON_LOCALHOST).await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let token = admin_token(&server, &[AdminPermission::UsersImpersonate]).await;
    let (_, link) = api(&server, &token, reqwest::Method::POST, &format!("users/{user_id}/impersonate"), None).await;
    let url = link["url"].as_str().unwrap();
    let admin = server.browser_as("localhost");
    let page = admin.get(url).await;
    assert_eq!(admin.post(url, &[("csrf_token", &page.csrf())]).await.status, 303);
    let csrf = admin.get("account/security").await.csrf();
    let asked = admin.post("account/passkeys/options", &[("csrf_token", &csrf)]).await;
    assert_eq!(asked.status, 401, "{}", asked.body);
    let confirm = admin.post("login/passkey/options", &[("csrf_token", &csrf)]).await;
    assert_eq!(confirm.status, 403, "{}", confirm.body);
    assert_eq!(count(&server, "SELECT COUNT(*) FROM passkey_ceremonies").await, 0);
}

web_on_both_backends!(
    an_impersonated_session_neither_adds_nor_confirms_with_a_passkey,
    refused_answers_store_nothing_and_ceremonies_are_bounded,
    a_stale_session_or_a_duo_account_adds_no_passkey
);
