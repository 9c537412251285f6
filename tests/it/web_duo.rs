//! Duo Universal Prompt against a fake Duo that speaks the same protocol.

use crate::support::duo;
use crate::support::web::{Backend, PASSWORD, Server};
use gatehouse::accounts::Actor;

async fn duo_user(server: &Server) -> i64 {
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    server.accounts().set_duo(&Actor::system("test"), (gatehouse::accounts::Principal::User, user_id)).await.unwrap();
    user_id
}

async fn duo_universal_prompt_signs_in(backend: Backend) {
    let fake = duo::start(false).await;
    let Some(server) = Server::start(backend, &fake.config()).await else { return };
    let user_id = duo_user(&server).await;
    let b = server.browser();
    assert_eq!(b.login("ann@example.com", PASSWORD).await.location(), "/login/2fa");
    let to_duo = b.get("login/2fa").await;
    assert_eq!(to_duo.status, 303);
    assert!(to_duo.location().starts_with(&format!("{}/oauth/v1/authorize?", fake.base)), "{}", to_duo.location());
    let back = b.get(to_duo.location()).await; // the user approves at Duo
    assert_eq!(back.status, 302);
    let callback = back.location().to_string();
    assert!(callback.starts_with(&format!("{}login/2fa/duo/callback?state=", server.base)));

    // A forged state is refused and does not spend the pending login.
    let forged = callback.replacen("state=", "state=x", 1);
    assert_eq!(b.get(&forged).await.status, 401);
    let done = b.get(&callback).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/clientarea");
    assert_eq!(b.get("clientarea").await.status, 200);
    assert!(server.audit_actions(user_id).await.iter().any(|a| a.0 == "twofa.duo_ok"));
    // The code was exchanged once; replaying the callback finds no pending Duo login.
    assert_eq!(b.get(&callback).await.status, 303);
}

async fn frameless_access_error_is_explained(backend: Backend) {
    let fake = duo::start(true).await;
    let Some(server) = Server::start(backend, &fake.config()).await else { return };
    duo_user(&server).await;
    let b = server.browser();
    b.login("ann@example.com", PASSWORD).await;
    let page = b.get("login/2fa").await;
    assert_eq!(page.status, 502);
    assert!(page.body.contains("Integration type does not support frameless access"), "{}", page.body);
    assert_eq!(b.get("clientarea").await.status, 303, "no way in without the second factor");
}

/// Under forced two-factor, a user who chooses Duo while enrolling is sent to log in again: Duo
/// is proven at Duo, not assumed by the half-way sign-in.
async fn choosing_duo_while_enrolling_means_logging_in_through_it(backend: Backend) {
    let fake = duo::start(false).await;
    let extra = fake.config().replace("twofa:\n", "twofa:\n  force_clients: true\n");
    let Some(server) = Server::start(backend, &extra).await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();
    assert_eq!(b.login("ann@example.com", PASSWORD).await.location(), "/account/security");
    let chosen = b.submit("account/security", "account/security/2fa/setup", &[("method", "duo")]).await;
    assert_eq!(chosen.location(), "/login");
    assert!(b.get("login").await.body.contains("Log in again to use it"));
    assert_eq!(b.get("clientarea").await.location(), "/login", "the half-way sign-in is over");
    assert_eq!(b.login("ann@example.com", PASSWORD).await.location(), "/login/2fa");
    let to_duo = b.get("login/2fa").await;
    assert!(to_duo.location().starts_with(&format!("{}/oauth/v1/authorize?", fake.base)), "{}", to_duo.location());
}

web_on_both_backends!(
    duo_universal_prompt_signs_in,
    frameless_access_error_is_explained,
    choosing_duo_while_enrolling_means_logging_in_through_it,
);
