//! The standing adversary suite: an attacker with a stolen session, with a visitor's form, with
//! a link that should be dead. Each test is a break found in the last attack round, as the
//! attacker ran it; each failed on the code before its fix.

use std::time::Duration;

use gatehouse::accounts::{Actor, AdminPermission, Grantor, Permissions};
use gatehouse::auth::REAUTH_WINDOW_SECS;
use gatehouse::auth::one_time::{self, Purpose};

use crate::support::web::{Backend, Browser, PASSWORD, Server, admin_token, api};

/// A stolen cookie is used later than the sign-in it came from.
fn after_the_window(server: &Server) {
    server.state.db().clock().advance(Duration::from_secs(REAUTH_WINDOW_SECS as u64 + 1));
}

async fn signed_in(server: &Server) -> (i64, Browser) {
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let b = server.browser();
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 303);
    (user_id, b)
}

async fn a_stolen_session_cannot_replace_the_second_factor(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, thief) = signed_in(&server).await;
    after_the_window(&server);
    let setup = thief.submit("account/security", "account/security/2fa/setup", &[]).await;
    assert_eq!(setup.location(), "/account/security/confirm", "the session alone cannot start an enrolment");
    let enable = thief.submit("account/security", "account/security/2fa/enable", &[("code", "123456")]).await;
    assert_eq!(enable.location(), "/account/security/confirm");
    let user = server.accounts().user(user_id).await.unwrap();
    assert!(user.totp_secret.is_none());
    // Guessing the password on the confirmation form is limited like a login.
    for _ in 0..6 {
        let r = thief.submit("account/security/confirm", "account/security/confirm", &[("password", "guess!")]).await;
        assert_eq!(r.status, 422);
    }
    let right = thief.submit("account/security/confirm", "account/security/confirm", &[("password", PASSWORD)]).await;
    assert_eq!(right.status, 422, "locked after the limit, even for the right password");
    assert!(right.body.to_lowercase().contains("too many failed attempts"), "{}", right.body);
}

async fn the_owner_re_authenticates_then_changes_credentials(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, owner) = signed_in(&server).await;
    after_the_window(&server);
    let form = [
        ("current_password", PASSWORD),
        ("password", "a new long password"),
        ("password_confirm", "a new long password"),
    ];
    let refused = owner.submit("account/security", "account/security/password", &form).await;
    assert_eq!(refused.location(), "/account/security/confirm");
    let confirmed =
        owner.submit("account/security/confirm", "account/security/confirm", &[("password", PASSWORD)]).await;
    assert_eq!(confirmed.location(), "/account/security");
    let changed = owner.submit("account/security", "account/security/password", &form).await;
    assert_eq!(changed.location(), "/account/security");
    let actions: Vec<String> = server.audit_actions(user_id).await.into_iter().map(|a| a.0).collect();
    assert!(actions.contains(&"security.reauthenticated".to_string()), "{actions:?}");
    assert!(actions.contains(&"user.password_changed".to_string()), "{actions:?}");
}

async fn a_stolen_session_cannot_change_the_login_email(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, thief) = signed_in(&server).await;
    after_the_window(&server);
    let form = [
        ("first_name", "Ann"),
        ("last_name", "Owner"),
        ("email", "thief@example.net"),
        ("current_password", PASSWORD),
        ("language", ""),
        ("timezone", ""),
    ];
    let r = thief.submit("account/profile", "account/profile", &form).await;
    assert_eq!(r.location(), "/account/security/confirm");
    assert_eq!(server.accounts().user(user_id).await.unwrap().email, "ann@example.com");
}

async fn credential_forms_count_wrong_passwords_and_honour_the_lock(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, thief) = signed_in(&server).await;
    let guess = [
        ("current_password", "guess!"),
        ("password", "a new long password"),
        ("password_confirm", "a new long password"),
    ];
    for _ in 0..12 {
        thief.submit("account/security", "account/security/password", &guess).await;
    }
    let right = [
        ("current_password", PASSWORD),
        ("password", "a new long password"),
        ("password_confirm", "a new long password"),
    ];
    let r = thief.submit("account/security", "account/security/password", &right).await;
    assert_eq!(r.status, 422, "the 13th try, with the right password, meets the lock");
    assert!(server.accounts().user(user_id).await.is_ok());
    assert_eq!(server.browser().login("ann@example.com", "a new long password").await.status, 401);
}

async fn reset_links_die_with_the_state_they_were_asked_for(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, owner) = signed_in(&server).await;
    let issue = || async {
        let mut conn = server.accounts().db().pool().acquire().await.unwrap();
        one_time::issue(&mut conn, server.state.db().now(), Purpose::PasswordReset, user_id, None, 3600).await.unwrap()
    };
    let reset = |token: String, password: &'static str| {
        let b = server.browser();
        async move {
            let path = format!("password/reset/{token}");
            let form = b.get(&path).await;
            if form.status != 200 {
                return form.status;
            }
            let fields =
                [("csrf_token", form.csrf()), ("password", password.into()), ("password_confirm", password.into())];
            b.post(&path, &fields.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await.status
        }
    };
    // Two links; the first used: the second dies with it.
    let (t1, t2) = (issue().await, issue().await);
    assert_eq!(reset(t1, "first new password").await, 303);
    assert_eq!(reset(t2, "second new password").await, 404);
    // A link asked for before a password change is dead after it.
    let t3 = issue().await;
    assert_eq!(owner.login("ann@example.com", "first new password").await.status, 303);
    let form = [
        ("current_password", "first new password"),
        ("password", "third new password"),
        ("password_confirm", "third new password"),
    ];
    assert_eq!(owner.submit("account/security", "account/security/password", &form).await.status, 303);
    assert_eq!(reset(t3, "an attacker's password").await, 404);
    // And before an email change.
    let t4 = issue().await;
    let actor = Actor::system("test");
    let update = gatehouse::accounts::UserUpdate { email: Some("ann@example.org".into()), ..Default::default() };
    server.accounts().update_user(&actor, user_id, update).await.unwrap();
    assert_eq!(reset(t4, "an attacker's password").await, 404);
}

async fn an_impersonation_link_dies_with_its_admins_permission(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let token = admin_token(&server, &[AdminPermission::UsersImpersonate]).await;
    let (status, link) =
        api(&server, &token, reqwest::Method::POST, &format!("users/{user_id}/impersonate"), None).await;
    assert_eq!(status, 201);
    // The admin's role loses the permission before the link is used.
    let role =
        server.accounts().list_roles().await.unwrap().into_iter().find(|r| r.name.starts_with("users.impersonate"));
    let role = role.unwrap();
    let reduced = [AdminPermission::UsersView].into_iter().collect();
    server
        .accounts()
        .set_role_permissions(&Actor::system("test"), &Grantor::Operator, &role.name, &reduced)
        .await
        .unwrap();
    let url = link["url"].as_str().unwrap();
    let b = server.browser();
    let page = b.get(url).await;
    assert_eq!(b.post(url, &[("csrf_token", &page.csrf())]).await.status, 404);
    assert_eq!(b.get("clientarea").await.status, 303, "not signed in as the user");
    let actions: Vec<String> = server.audit_actions(user_id).await.into_iter().map(|a| a.0).collect();
    assert!(actions.contains(&"user.impersonation_refused".to_string()), "{actions:?}");
}

/// A client-area session an admin opened with an impersonation link ends when that admin is
/// disabled (an account thought taken over): it does not outlive the admin's own sessions.
async fn an_impersonated_session_ends_when_its_admin_is_disabled(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let token = admin_token(&server, &[AdminPermission::UsersImpersonate]).await;
    let impersonator = server.accounts().authenticate_api_token(&token).await.unwrap();
    let (_, link) = api(&server, &token, reqwest::Method::POST, &format!("users/{user_id}/impersonate"), None).await;
    let url = link["url"].as_str().unwrap();
    let b = server.browser();
    let page = b.get(url).await;
    assert_eq!(b.post(url, &[("csrf_token", &page.csrf())]).await.status, 303);
    assert_eq!(b.get("clientarea").await.status, 200, "acting as Ann");

    let (actor, grantor) = (Actor::system("test"), Grantor::Operator);
    server.full_admin("root").await;
    // First a second impersonated session, ended when the admin's role loses the permission.
    let (_, again) = api(&server, &token, reqwest::Method::POST, &format!("users/{user_id}/impersonate"), None).await;
    let again_url = again["url"].as_str().unwrap();
    let second = server.browser();
    let page = second.get(again_url).await;
    assert_eq!(second.post(again_url, &[("csrf_token", &page.csrf())]).await.status, 303);
    let role = impersonator.role_name.clone().unwrap();
    let kept = [AdminPermission::UsersView].into_iter().collect();
    server.accounts().set_role_permissions(&actor, &grantor, &role, &kept).await.unwrap();
    assert!(second.get("clientarea").await.location().starts_with("/login"), "ended with the permission");
    let again = [AdminPermission::UsersImpersonate].into_iter().collect();
    server.accounts().set_role_permissions(&actor, &grantor, &role, &again).await.unwrap();
    server.state.auth.set_admin_disabled(&actor, &grantor, impersonator.id, true).await.unwrap();
    let after = b.get("clientarea").await;
    assert_eq!(after.status, 303, "{}", after.body);
    assert!(after.location().starts_with("/login"), "{}", after.location());
    assert!(server.sessions().for_user(user_id).await.unwrap().is_empty(), "the session is gone, not only refused");
}

async fn an_impersonated_session_cannot_change_the_users_credentials(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let token = admin_token(&server, &[AdminPermission::UsersImpersonate]).await;
    let (_, link) = api(&server, &token, reqwest::Method::POST, &format!("users/{user_id}/impersonate"), None).await;
    let url = link["url"].as_str().unwrap();
    let b = server.browser();
    let page = b.get(url).await;
    assert_eq!(b.post(url, &[("csrf_token", &page.csrf())]).await.status, 303);
    let setup = b.submit("account/security", "account/security/2fa/setup", &[]).await;
    assert_eq!(setup.location(), "/account/security/confirm");
    let confirm = b.submit("account/security/confirm", "account/security/confirm", &[("password", PASSWORD)]).await;
    assert_eq!(confirm.status, 403, "not even with the user's password");
}

async fn an_email_typed_at_the_client_login_cannot_lock_an_admin(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.full_admin("admin").await;
    for _ in 0..6 {
        server.browser().login("admin:admin", "wrong password!").await;
    }
    let b = server.browser();
    let r = b.submit("admin/login", "admin/login", &[("username", "admin"), ("password", PASSWORD)]).await;
    assert_eq!(r.location(), "/admin/", "the admin signs in: the client login's counters are another namespace");
}

async fn an_invite_link_does_not_tell_which_emails_have_logins(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (_, client_id) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let none = Permissions::none();
    let accept = |email: &'static str| {
        let server = &server;
        let none = &none;
        async move {
            let actor = Actor::system("t");
            let created = server.accounts().create_invite(&actor, client_id, "x@example.com", none, None);
            let path = format!("invite/{}", created.await.unwrap().token);
            let b = server.browser();
            let fields = [("email", email), ("first_name", "X"), ("last_name", "Y"), ("password", PASSWORD)];
            let answer = b.submit(&path, &path, &fields).await;
            let again = b.get(&path).await;
            let next = b.get(answer.location()).await.body;
            let csrf = regex::Regex::new(r#"name="csrf_token" value="[^"]*""#).unwrap();
            (answer.status, answer.location().to_string(), csrf.replace_all(&next, "").into_owned(), again.status)
        }
    };
    let (taken, fresh) = (accept("ann@example.com").await, accept("new@example.com").await);
    assert_eq!((taken.0, &taken.1), (fresh.0, &fresh.1), "the same answer");
    assert_eq!(taken.2.replace("ann@", "new@"), fresh.2.replace("ann@", "new@"), "the same page");
    assert_eq!(taken.3, fresh.3, "and the invite is spent in both cases");
    let mails = server.accounts().db().pool();
    let told: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE to_addr = 'ann@example.com'")
        .fetch_one(mails)
        .await
        .unwrap();
    assert_eq!(told, 1, "the address's owner is told by mail");
}

async fn a_reset_completed_in_a_signed_in_browser_signs_it_out(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, b) = signed_in(&server).await;
    let mut conn = server.accounts().db().pool().acquire().await.unwrap();
    let token =
        one_time::issue(&mut conn, server.state.db().now(), Purpose::PasswordReset, user_id, None, 3600).await.unwrap();
    drop(conn);
    // The same browser (the thief's, say) opens the link and completes the reset: the reset
    // ends every session, and the request that did it must not save its own back.
    let path = format!("password/reset/{token}");
    let fields = [("password", "a brand new password"), ("password_confirm", "a brand new password")];
    assert_eq!(b.submit(&path, &path, &fields).await.status, 303);
    assert_eq!(b.get("clientarea").await.status, 303, "the session ended with the reset stays ended");
}

async fn a_duo_user_never_signs_in_with_the_password_alone(backend: Backend) {
    // Duo is the user's second factor, but this deployment has no Duo configured (any more).
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    server.accounts().set_duo(&Actor::system("test"), (gatehouse::accounts::Principal::User, user_id)).await.unwrap();
    let b = server.browser();
    let login = b.login("ann@example.com", PASSWORD).await;
    assert_eq!(login.location(), "/login/2fa", "the password alone is not a sign-in");
    assert_eq!(b.get("clientarea").await.status, 303);
    assert_eq!(b.get("login/2fa").await.status, 503, "Duo is said to be unavailable");
}

async fn a_kept_totp_key_does_not_finish_a_duo_sign_in(backend: Backend) {
    let fake = crate::support::duo::start(false).await;
    let Some(server) = Server::start(backend, &fake.config()).await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let secret = gatehouse::secrets::totp::new_secret();
    let backup = gatehouse::secrets::passwords::hash("AAAABBBBCCCCDDDD").unwrap();
    let actor = Actor::system("test");
    server
        .accounts()
        .set_totp(&actor, (gatehouse::accounts::Principal::User, user_id), &secret, 0, &backup)
        .await
        .unwrap();
    server.accounts().set_duo(&actor, (gatehouse::accounts::Principal::User, user_id)).await.unwrap();
    let b = server.browser();
    assert_eq!(b.login("ann@example.com", PASSWORD).await.location(), "/login/2fa");
    let code = gatehouse::secrets::totp::code_at(&secret, gatehouse::store::Clock::wall()).unwrap();
    let csrf = b.get("login").await.csrf();
    let r = b.post("login/2fa", &[("csrf_token", &csrf), ("code", &code)]).await;
    assert_ne!(r.location(), "/clientarea", "a TOTP code does not step around Duo");
    assert_eq!(b.get("clientarea").await.status, 303);
}

async fn re_authentication_gives_a_new_session_id(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (_, b) = signed_in(&server).await;
    let confirmed = b.submit("account/security/confirm", "account/security/confirm", &[("password", PASSWORD)]).await;
    assert_eq!(confirmed.location(), "/account/security");
    assert!(
        confirmed.set_cookie().is_some_and(|c| c.starts_with("gatehouse_session=")),
        "{:?}",
        confirmed.set_cookie()
    );
}

async fn a_password_typed_as_the_email_stays_out_of_the_audit_log(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Ltd").await;
    server.browser().login("my secret passphrase", "wrong password!").await;
    let log = server.accounts().audit_log(None, 100).await.unwrap();
    let failed = log.iter().find(|e| e.action == "login.failed").expect("the failure is audited");
    assert!(!failed.details.contains("my secret passphrase"), "{}", failed.details);
}

async fn a_password_change_ends_a_sign_in_left_at_the_second_factor(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let secret = gatehouse::secrets::totp::new_secret();
    let backup = gatehouse::secrets::passwords::hash("AAAABBBBCCCCDDDD").unwrap();
    server
        .accounts()
        .set_totp(&Actor::system("test"), (gatehouse::accounts::Principal::User, user_id), &secret, 0, &backup)
        .await
        .unwrap();
    // The attacker knows the password and stops at the second factor, keeping that cookie.
    let thief = server.browser();
    assert_eq!(thief.login("ann@example.com", PASSWORD).await.location(), "/login/2fa");
    let csrf = thief.get("login/2fa").await.csrf();
    // The owner changes the password (as `user set-password` does: a new one, sessions ended).
    server
        .accounts()
        .set_password(
            &Actor::system("test"),
            (gatehouse::accounts::Principal::User, user_id),
            "the owner's new password",
        )
        .await
        .unwrap();
    server.sessions().end_for_user(user_id, None).await.unwrap();
    // A code phished later does not finish the sign-in the change should have ended.
    let code = gatehouse::secrets::totp::code_at(&secret, gatehouse::store::Clock::wall()).unwrap();
    let r = thief.post("login/2fa", &[("csrf_token", &csrf), ("code", &code)]).await;
    assert_ne!(r.location(), "/clientarea");
    assert_eq!(thief.get("clientarea").await.status, 303);
}

async fn a_clients_manager_cannot_take_over_a_user_by_copying_details(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, client_id) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let actor = Actor::system("test");
    let clients = [AdminPermission::ClientsView, AdminPermission::ClientsManage, AdminPermission::ClientsCreate];
    let role: std::collections::BTreeSet<_> = clients.into_iter().collect();
    server.accounts().create_role(&actor, &Grantor::Operator, "clients only", &role).await.unwrap();
    let cmgr = server.accounts().create_admin(
        &actor,
        &Grantor::Operator,
        "cmgr",
        "c@example.com",
        "clients only",
        Some(PASSWORD),
    );
    cmgr.await.unwrap();
    let b = server.browser();
    assert_eq!(
        b.submit("admin/login", "admin/login", &[("username", "cmgr"), ("password", PASSWORD)]).await.location(),
        "/admin/"
    );
    let update = gatehouse::accounts::ClientUpdate { email: Some("mallory@evil.example".into()), ..Default::default() };
    server.accounts().update_client(&actor, client_id, update).await.unwrap();
    let path = format!("admin/clients/{client_id}/users/{user_id}/match");
    let r = b.submit("admin/", &path, &[("from", "client")]).await;
    assert_eq!(r.status, 403, "copying onto the user's login email needs users.manage");
    assert_eq!(server.accounts().user(user_id).await.unwrap().email, "ann@example.com");
}

async fn a_stolen_admin_session_re_authenticates_before_replacing_the_second_factor(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.full_admin("root").await;
    let b = server.browser();
    assert_eq!(
        b.submit("admin/login", "admin/login", &[("username", "root"), ("password", PASSWORD)]).await.location(),
        "/admin/"
    );
    after_the_window(&server);
    let setup = b.submit("admin/security", "admin/security/2fa/setup", &[]).await;
    assert_eq!(setup.location(), "/admin/security/confirm");
    let page = b.get("admin/security/confirm").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Confirm it is you") && page.body.contains("admin/logout"),
        "the admin layout: {}",
        page.body
    );
    let wrong = b.submit("admin/security/confirm", "admin/security/confirm", &[("password", "guess!")]).await;
    assert_eq!(wrong.status, 422);
    let right = b.submit("admin/security/confirm", "admin/security/confirm", &[("password", PASSWORD)]).await;
    assert_eq!(right.location(), "/admin/security");
    assert!(right.set_cookie().is_some_and(|c| c.starts_with("gatehouse_admin=")), "a new session id");
    assert_eq!(b.submit("admin/security", "admin/security/2fa/setup", &[]).await.location(), "/admin/security");
}

web_on_both_backends!(
    a_stolen_admin_session_re_authenticates_before_replacing_the_second_factor,
    a_password_change_ends_a_sign_in_left_at_the_second_factor,
    a_clients_manager_cannot_take_over_a_user_by_copying_details,
    a_reset_completed_in_a_signed_in_browser_signs_it_out,
    a_duo_user_never_signs_in_with_the_password_alone,
    a_kept_totp_key_does_not_finish_a_duo_sign_in,
    re_authentication_gives_a_new_session_id,
    a_password_typed_as_the_email_stays_out_of_the_audit_log,
    a_stolen_session_cannot_replace_the_second_factor,
    the_owner_re_authenticates_then_changes_credentials,
    a_stolen_session_cannot_change_the_login_email,
    credential_forms_count_wrong_passwords_and_honour_the_lock,
    reset_links_die_with_the_state_they_were_asked_for,
    an_impersonation_link_dies_with_its_admins_permission,
    an_impersonated_session_cannot_change_the_users_credentials,
    an_impersonated_session_ends_when_its_admin_is_disabled,
    an_email_typed_at_the_client_login_cannot_lock_an_admin,
    an_invite_link_does_not_tell_which_emails_have_logins,
);
