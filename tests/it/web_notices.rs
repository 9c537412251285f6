//! Security notifications through the real SMTP path: each event a person must hear of is
//! mailed, and the "this wasn't me" link in it signs everyone out, forgets the account's known
//! devices and starts a password reset — once.

use crate::support::smtp;
use crate::support::web::{Backend, PASSWORD, Server};
use gatehouse::accounts::Principal;
use gatehouse::cron::{Cron, Job};

/// The subjects queued for `email`, oldest first.
async fn subjects(server: &Server, email: &str) -> Vec<String> {
    let mut mail = gatehouse::mail::for_recipient(server.accounts().db(), email).await.unwrap();
    mail.reverse();
    mail.into_iter().map(|m| m.subject).collect()
}

/// The "this wasn't me" link of the newest mail with `subject`.
async fn not_me_link(server: &Server, email: &str, subject: &str) -> String {
    let mail = gatehouse::mail::for_recipient(server.accounts().db(), email).await.unwrap();
    let m = mail.iter().find(|m| m.subject == subject).unwrap_or_else(|| panic!("no mail {subject:?}"));
    let at = m.body.find("/not-me/").expect("a not-me link");
    let start = m.body[..at].rfind("http").unwrap();
    m.body[start..].split_whitespace().next().unwrap().to_string()
}

async fn each_notice_is_mailed_and_its_link_signs_everyone_out(backend: Backend) {
    let relay = smtp::start(None).await;
    let extra = format!("mail:\n  transport: smtp\n  smtp: {{ host: localhost, port: {}, tls: none }}\n", relay.port);
    let Some(server) = Server::start(backend, &extra).await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let email = "ann@example.com";

    let laptop = server.browser();
    assert_eq!(laptop.login(email, PASSWORD).await.status, 303);
    assert!(subjects(&server, email).await.iter().all(|s| s != "New sign-in to your account"), "the first browser");
    let intruder = server.browser();
    assert_eq!(intruder.login(email, PASSWORD).await.status, 303);
    assert!(subjects(&server, email).await.contains(&"New sign-in to your account".to_string()));

    // Two-factor on, then a sign-in with the backup code.
    let (_, backup, _) = crate::web_twofa::enrol(&laptop).await;
    let phone = server.browser();
    phone.login(email, PASSWORD).await;
    assert_eq!(phone.submit("login/2fa", "login/2fa", &[("backup_code", &backup)]).await.location(), "/clientarea");

    // The password changed from the laptop.
    let form = [
        ("current_password", PASSWORD),
        ("password", "a new long password"),
        ("password_confirm", "a new long password"),
    ];
    let changed = laptop.submit("account/security", "account/security/password", &form).await;
    assert_eq!(changed.status, 303, "{}", changed.body);

    // Someone is half-way into the account with the new password.
    let intruder = server.browser();
    assert_eq!(intruder.login(email, "a new long password").await.location(), "/login/2fa");
    // Wrong passwords from a stranger lock the account's budget for unknown browsers.
    let stranger = server.browser();
    for _ in 0..5 {
        stranger.login(email, "not the password").await;
    }
    let told = subjects(&server, email).await;
    for expected in [
        "New sign-in to your account",
        "Two-factor authentication was turned on",
        "Your backup code was used",
        "Sign-ins to your account were locked",
        "Your password was changed",
    ] {
        assert!(told.iter().any(|s| s == expected), "{expected:?} not in {told:?}");
    }
    // Through the relay, as production mail goes.
    let cron = Cron { loaded: &server.state.loaded, services: &server.state.services };
    assert!(cron.run(Some(Job::Mail)).await.unwrap()[0].ok);
    let relayed = relay.messages.lock().unwrap().clone();
    assert!(relayed.iter().any(|m| m.contains("Subject: Your backup code was used")), "{} relayed", relayed.len());

    // The owner uses the link.
    let link = not_me_link(&server, email, "Your backup code was used").await;
    let owner = server.browser();
    let page = owner.get(&link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let done = owner.post(&link, &[("csrf_token", &page.csrf())]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Everyone is signed out"), "{}", done.body);
    assert_eq!(laptop.get("clientarea").await.location(), "/login", "the owner's own sessions end too");
    assert_eq!(phone.get("clientarea").await.location(), "/login", "every session ends");
    assert_eq!(intruder.get("login/2fa").await.location(), "/login", "a half-way sign-in ends");
    let (devices, _) = server.auth().known_devices(Principal::User, user_id, None).await.unwrap();
    assert!(devices.is_empty(), "known devices forgotten: {devices:?}");
    assert_eq!(subjects(&server, email).await.last().map(String::as_str), Some("Reset your password"));
    let actions: Vec<String> = server.audit_actions(user_id).await.into_iter().map(|a| a.0).collect();
    assert!(actions.contains(&"security.not_me".to_string()), "{actions:?}");

    // Once.
    let again = server.browser();
    assert_eq!(again.get(&link).await.status, 404);
    let csrf = again.get("login").await.csrf();
    assert_eq!(again.post(&link, &[("csrf_token", &csrf)]).await.status, 404);
    // A link of the wrong shape is a 404 before anything is looked up.
    assert_eq!(again.get("not-me/nm_short").await.status, 404);
}

/// An intruder with the password turns two-factor on with their own key and moves the login to
/// their own address; the owner's mails say so, and the links in them undo it: the address is
/// put back, the intruder's key is gone, the password they know no longer works, and the reset
/// link goes to the owner. A lock notice carries no link (forgetting the owner's browsers would
/// help whoever caused it).
async fn this_wasnt_me_undoes_what_the_intruder_did(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let owner = server.browser();
    owner.login("ann@example.com", PASSWORD).await;
    let intruder = server.browser();
    assert_eq!(intruder.login("ann@example.com", PASSWORD).await.location(), "/clientarea");
    crate::web_twofa::enrol(&intruder).await;
    let fields =
        [("first_name", "Ann"), ("last_name", "Owner"), ("email", "evil@example.com"), ("current_password", PASSWORD)];
    let moved = intruder.submit("account/profile", "account/profile", &fields).await;
    assert_eq!(moved.status, 303, "{}", moved.body);
    assert_eq!(server.accounts().user(user_id).await.unwrap().email, "evil@example.com");

    for subject in ["Your login email was changed", "Two-factor authentication was turned on"] {
        let link = not_me_link(&server, "ann@example.com", subject).await;
        let b = server.browser();
        let page = b.get(&link).await;
        assert_eq!(b.post(&link, &[("csrf_token", &page.csrf())]).await.status, 200, "{subject}");
    }
    let user = server.accounts().user(user_id).await.unwrap();
    assert_eq!(user.email, "ann@example.com", "the owner's address is back");
    assert!(user.totp_secret.is_none() && user.twofa_method.is_none(), "the intruder's key is gone");
    assert!(user.password_hash.is_none(), "the password they knew no longer works");
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 401);
    assert_eq!(server.browser().login("evil@example.com", PASSWORD).await.status, 401);
    assert!(gatehouse::mail::for_recipient(server.accounts().db(), "evil@example.com").await.unwrap().is_empty());
    assert_eq!(subjects(&server, "ann@example.com").await.last().map(String::as_str), Some("Reset your password"));

    // A lock tells, with no link.
    for _ in 0..5 {
        server.browser().login("ann@example.com", "wrong").await;
    }
    let mail = gatehouse::mail::for_recipient(server.accounts().db(), "ann@example.com").await.unwrap();
    let locked = mail.iter().find(|m| m.subject == "Sign-ins to your account were locked").expect("the lock is told");
    assert!(!locked.body.contains("/not-me/"), "{}", locked.body);
}

/// A second factor taken away by staff is news to its owner too.
async fn staff_turning_two_factor_off_is_told(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let secret = gatehouse::secrets::totp::new_secret();
    let backup =
        gatehouse::secrets::passwords::hash_async("unused", gatehouse::secrets::passwords::Requester::Operator)
            .await
            .unwrap();
    let actor = gatehouse::accounts::Actor::system("test");
    server.accounts().set_totp(&actor, (Principal::User, user_id), &secret, 0, &backup).await.unwrap();
    let token = crate::support::web::admin_token(&server, &[gatehouse::accounts::AdminPermission::UsersManage]).await;
    let path = format!("users/{user_id}/2fa");
    let (status, _) = crate::support::web::api(&server, &token, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    assert_eq!(subjects(&server, "ann@example.com").await, ["Two-factor authentication was turned off"]);
}

/// New-device notices are the person's choice (after proving it is them); credential changes
/// are always told.
async fn new_device_notices_can_be_turned_off(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let email = "ann@example.com";
    let laptop = server.browser();
    laptop.login(email, PASSWORD).await;
    assert!(laptop.get("account/security").await.body.contains("name=\"new_device\" checked"));
    let off = laptop.submit("account/security", "account/security/notifications", &[]).await;
    assert_eq!(off.location(), "/account/security");
    assert!(!laptop.get("account/security").await.body.contains("name=\"new_device\" checked"));
    assert_eq!(server.browser().login(email, PASSWORD).await.status, 303);
    assert!(subjects(&server, email).await.is_empty(), "no new-device mail once turned off");
}

web_on_both_backends!(
    each_notice_is_mailed_and_its_link_signs_everyone_out,
    this_wasnt_me_undoes_what_the_intruder_did,
    staff_turning_two_factor_off_is_told,
    new_device_notices_can_be_turned_off,
);
