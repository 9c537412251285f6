//! One sign-in for users and admins (`auth::sign_in`): the admin area gets what the client area
//! has — Duo, and a second factor whose enrolment cannot leave the person signed out with a
//! backup code that belongs to nothing — because both faces run the same steps.

use std::collections::BTreeSet;

use crate::support::duo;
use crate::support::web::{Backend, Browser, PASSWORD, Server};
use gatehouse::accounts::{Actor, AdminPermission, Grantor, Principal};
use gatehouse::secrets::totp;

/// A full admin `alice` with a password; returns the id.
async fn alice(server: &Server) -> i64 {
    let actor = Actor::system("test");
    let all: BTreeSet<AdminPermission> = AdminPermission::ALL.iter().copied().collect();
    server.accounts().create_role(&actor, &Grantor::Operator, "full", &all).await.unwrap();
    let created = server.accounts().create_admin(
        &actor,
        &Grantor::Operator,
        "alice",
        "alice@example.com",
        "full",
        Some(PASSWORD),
    );
    created.await.unwrap().id
}

async fn sign_in(b: &Browser) -> crate::support::web::Page {
    b.submit("admin/login", "admin/login", &[("username", "alice"), ("password", PASSWORD)]).await
}

/// Makes every write of a TOTP key to the admins table fail, as a database that refuses the
/// write at that moment would.
async fn refuse_totp_writes(server: &Server, backend: Backend) {
    let pool = server.state.db().pool();
    let statements: &[&str] = match backend {
        Backend::Sqlite => &["CREATE TRIGGER refuse_totp BEFORE UPDATE OF totp_secret ON admins \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
        Backend::Postgres => &[
            "CREATE FUNCTION refuse_totp() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$ \
             LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_totp BEFORE UPDATE OF totp_secret ON admins FOR EACH ROW \
             EXECUTE FUNCTION refuse_totp()",
        ],
    };
    for &sql in statements {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
}

/// Sets up a TOTP key on the admin security page and confirms it with a right code while the
/// database refuses to store it; returns the answer to the confirmation.
async fn enable_while_writes_fail(server: &Server, backend: Backend, b: &Browser) -> crate::support::web::Page {
    assert_eq!(b.submit("admin/security", "admin/security/2fa/setup", &[]).await.status, 303);
    let page = b.get("admin/security").await;
    let key = page.body.split("id=\"totp-key\">").nth(1).unwrap().split('<').next().unwrap().replace(' ', "");
    refuse_totp_writes(server, backend).await;
    let code = totp::code_at(&key, gatehouse::store::Clock::wall()).unwrap();
    let enabled = b.post("admin/security/2fa/enable", &[("csrf_token", &page.csrf()), ("code", &code)]).await;
    assert_eq!(enabled.status, 303, "{}", enabled.body);
    enabled
}

/// The drift the two copies of sign-in had: the admin face rotated the session and then failed
/// to turn two-factor on, so the admin was signed out and an orphan session kept a backup code
/// for a key that was never stored. Now both areas run one sequence: the admin stays signed in,
/// is told nothing changed, and is shown no code.
async fn a_failed_two_factor_enable_keeps_the_admin_signed_in_and_says_so(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let admin_id = alice(&server).await;
    let b = server.browser();
    assert_eq!(sign_in(&b).await.location(), "/admin/");
    let enabled = enable_while_writes_fail(&server, backend, &b).await;
    let home = b.get(enabled.location()).await;
    assert_eq!(home.status, 200, "still signed in: {}", home.body);
    assert!(home.body.contains("could not be turned on; nothing changed"), "{}", home.body);
    assert!(!home.body.contains("backup code"), "no code for a key that was not stored: {}", home.body);
    let admin = server.accounts().admin(admin_id).await.unwrap();
    assert!(admin.totp_secret.is_none() && admin.twofa_method.is_none(), "{admin:?}");
    let sessions = server.sessions().for_admin(admin_id).await.unwrap();
    assert_eq!(sessions.len(), 1, "no orphan session: {sessions:?}");
}

/// The same failure while a forced enrolment is all a sign-in still owes: the admin is not
/// signed in by a key that was never stored.
async fn a_failed_enrolment_leaves_the_admin_signing_in(backend: Backend) {
    let Some(server) = Server::start(backend, "twofa:\n  force_admins: true\n").await else { return };
    let admin_id = alice(&server).await;
    let b = server.browser();
    assert_eq!(sign_in(&b).await.location(), "/admin/security");
    enable_while_writes_fail(&server, backend, &b).await;
    assert_eq!(b.get("admin/clients").await.location(), "/admin/security", "still enrolling, not signed in");
    assert!(server.accounts().admin(admin_id).await.unwrap().totp_secret.is_none());
}

/// Admins sign in with Duo's Universal Prompt, through their own callback (their session cookie
/// is the admin area's), and Duo is told the admin's username.
async fn an_admin_signs_in_with_duo(backend: Backend) {
    let fake = duo::start(false).await;
    let Some(server) = Server::start(backend, &fake.config()).await else { return };
    let admin_id = alice(&server).await;
    server.accounts().set_duo(&Actor::system("test"), (Principal::Admin, admin_id)).await.unwrap();
    let b = server.browser();
    assert_eq!(sign_in(&b).await.location(), "/admin/login/2fa");
    assert_eq!(b.get("admin/clients").await.location(), "/admin/login/2fa", "nothing before Duo");

    // A code is not what is owed: a TOTP key or backup code kept from before does not step
    // around Duo.
    let csrf = b.get("admin/login").await.csrf();
    let code = b.post("admin/login/2fa", &[("csrf_token", &csrf), ("backup_code", "AAAA-AAAA-AAAA-AAAA")]).await;
    assert_eq!(code.location(), "/admin/login", "{}", code.body);

    assert_eq!(sign_in(&b).await.location(), "/admin/login/2fa");
    let to_duo = b.get("admin/login/2fa").await;
    assert!(to_duo.location().starts_with(&format!("{}/oauth/v1/authorize?", fake.base)), "{}", to_duo.location());
    let callback = b.get(to_duo.location()).await.location().to_string();
    assert!(callback.starts_with(&format!("{}admin/login/2fa/duo/callback?state=", server.base)), "{callback}");
    let forged = callback.replacen("state=", "state=x", 1);
    assert_eq!(b.get(&forged).await.status, 401, "another sign-in's state is refused");
    let done = b.get(&callback).await;
    assert_eq!(done.location(), "/admin/", "{}", done.body);
    assert_eq!(b.get("admin/clients").await.status, 200);
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE target_type = 'admin'")
        .fetch_all(server.state.db().pool())
        .await
        .unwrap();
    assert!(actions.iter().any(|a| a == "admin.duo_ok") && actions.iter().any(|a| a == "admin.login"), "{actions:?}");
    // The client area's callback does not finish an admin's sign-in.
    assert_eq!(b.get(&callback.replace("admin/login/", "login/")).await.location(), "/login");
}

/// An admin whose second factor is Duo, on a site where Duo is not configured, is never signed
/// in by the password alone.
async fn a_duo_admin_without_duo_configured_is_not_let_in(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let admin_id = alice(&server).await;
    server.accounts().set_duo(&Actor::system("test"), (Principal::Admin, admin_id)).await.unwrap();
    let b = server.browser();
    assert_eq!(sign_in(&b).await.location(), "/admin/login/2fa");
    let page = b.get("admin/login/2fa").await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert_eq!(b.get("admin/clients").await.location(), "/admin/login/2fa");
}

/// Admins choose Duo on their security page when the site has it; the next sign-in goes
/// through Duo.
async fn an_admin_chooses_duo(backend: Backend) {
    let fake = duo::start(false).await;
    let Some(server) = Server::start(backend, &fake.config()).await else { return };
    let admin_id = alice(&server).await;
    let b = server.browser();
    sign_in(&b).await;
    assert!(b.get("admin/security").await.body.contains("Use Duo"));
    let chosen = b.submit("admin/security", "admin/security/2fa/setup", &[("method", "duo")]).await;
    assert_eq!(chosen.location(), "/admin/security");
    assert!(b.get("admin/security").await.body.contains("you confirm each sign-in with Duo"));
    let admin = server.accounts().admin(admin_id).await.unwrap();
    assert_eq!(admin.twofa_method, Some(gatehouse::accounts::TwoFaMethod::Duo));
    assert_eq!(sign_in(&server.browser()).await.location(), "/admin/login/2fa");
}

/// An admin with a TOTP key, signed in as far as the code.
async fn admin_owing_a_code(server: &Server) -> (i64, String, Browser) {
    let admin_id = alice(server).await;
    let secret = totp::new_secret();
    let backup =
        gatehouse::secrets::passwords::hash_async("unused", gatehouse::secrets::passwords::Requester::Operator)
            .await
            .unwrap();
    server
        .accounts()
        .set_totp(&Actor::system("test"), (Principal::Admin, admin_id), &secret, 0, &backup)
        .await
        .unwrap();
    let b = server.browser();
    assert_eq!(sign_in(&b).await.location(), "/admin/login/2fa");
    (admin_id, secret, b)
}

/// One password buys three wrong codes, for admins as for users: then the half-way sign-in is
/// gone, and no later code is looked at without the password again.
async fn three_wrong_codes_end_an_admins_sign_in(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (_, secret, b) = admin_owing_a_code(&server).await;
    for _ in 0..2 {
        assert_eq!(b.submit("admin/login/2fa", "admin/login/2fa", &[("code", "000000")]).await.status, 401);
    }
    let third = b.submit("admin/login/2fa", "admin/login/2fa", &[("code", "000000")]).await;
    assert_eq!(third.location(), "/admin/login");
    assert!(b.get("admin/login").await.body.contains("Too many wrong codes"));
    assert_eq!(b.get("admin/login/2fa").await.location(), "/admin/login", "the half-way sign-in is gone");
    let csrf = b.get("admin/login").await.csrf();
    let code = totp::code_at(&secret, gatehouse::store::Clock::wall()).unwrap();
    let late = b.post("admin/login/2fa", &[("csrf_token", &csrf), ("code", &code)]).await;
    assert_eq!(late.location(), "/admin/login", "even the right code needs the password again");
    assert_eq!(b.get("admin/clients").await.location(), "/admin/login");
}

/// A key stored without its method (a row an older version wrote) is still owed.
async fn a_key_without_its_method_is_still_owed(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let admin_id = alice(&server).await;
    let backup =
        gatehouse::secrets::passwords::hash_async("unused", gatehouse::secrets::passwords::Requester::Operator)
            .await
            .unwrap();
    let secret = totp::new_secret();
    server
        .accounts()
        .set_totp(&Actor::system("test"), (Principal::Admin, admin_id), &secret, 0, &backup)
        .await
        .unwrap();
    sqlx::query("UPDATE admins SET twofa_method = NULL WHERE id = $1")
        .bind(admin_id)
        .execute(server.state.db().pool())
        .await
        .unwrap();
    assert_eq!(sign_in(&server.browser()).await.location(), "/admin/login/2fa", "never the password alone");
}

/// A sign-in that reached the code step is not finished with a code once the account has
/// switched to Duo: what is owed is judged now.
async fn a_kept_code_does_not_finish_a_sign_in_that_now_owes_duo(backend: Backend) {
    let fake = duo::start(false).await;
    let Some(server) = Server::start(backend, &fake.config()).await else { return };
    let (admin_id, secret, b) = admin_owing_a_code(&server).await;
    server.accounts().set_duo(&Actor::system("test"), (Principal::Admin, admin_id)).await.unwrap();
    let code = totp::code_at(&secret, gatehouse::store::Clock::wall()).unwrap();
    let csrf = b.get("admin/login").await.csrf();
    let answer = b.post("admin/login/2fa", &[("csrf_token", &csrf), ("code", &code)]).await;
    assert_eq!(answer.location(), "/admin/login", "{}", answer.body);
    assert_eq!(b.get("admin/clients").await.location(), "/admin/login/2fa");
}

/// An admin username shaped like an email address could be a client-area user's Duo identity:
/// such an admin cannot choose Duo.
async fn an_admin_named_like_an_email_cannot_choose_duo(backend: Backend) {
    let fake = duo::start(false).await;
    let Some(server) = Server::start(backend, &fake.config()).await else { return };
    let actor = Actor::system("test");
    let all: BTreeSet<AdminPermission> = AdminPermission::ALL.iter().copied().collect();
    server.accounts().create_role(&actor, &Grantor::Operator, "full", &all).await.unwrap();
    let name = "ann@example.com";
    let made = server.accounts().create_admin(&actor, &Grantor::Operator, name, name, "full", Some(PASSWORD));
    let admin_id = made.await.unwrap().id;
    let b = server.browser();
    let signed = b.submit("admin/login", "admin/login", &[("username", name), ("password", PASSWORD)]).await;
    assert_eq!(signed.location(), "/admin/");
    let refused = b.submit("admin/security", "admin/security/2fa/setup", &[("method", "duo")]).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(server.accounts().admin(admin_id).await.unwrap().twofa_method.is_none());
}

/// Admins have what users have: a sign-in from a browser they had not used is mailed to them,
/// their known devices are listed on their security page and can be forgotten, and the
/// new-device notice can be turned off.
async fn admins_get_known_devices_and_notices(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    alice(&server).await;
    let mails = || async {
        let mail = gatehouse::mail::for_recipient(server.accounts().db(), "alice@example.com").await.unwrap();
        mail.into_iter().map(|m| m.subject).collect::<Vec<_>>()
    };
    let desk = server.browser();
    assert_eq!(sign_in(&desk).await.location(), "/admin/");
    assert!(mails().await.is_empty(), "the first browser is not news");
    let laptop = server.browser();
    assert_eq!(sign_in(&laptop).await.location(), "/admin/");
    assert_eq!(mails().await, ["New sign-in to your account"]);

    let page = desk.get("admin/security").await.body;
    let forget = regex::Regex::new(r"admin/security/devices/(\d+)/forget").unwrap();
    let ids: Vec<String> = forget.captures_iter(&page).map(|c| c[1].to_string()).collect();
    assert_eq!(ids.len(), 2, "{page}");
    assert_eq!(page.matches("(This browser)").count(), 1);
    // The row without "(This browser)" is the laptop's: the one listed first (used last).
    let done = desk.submit("admin/security", &format!("admin/security/devices/{}/forget", ids[0]), &[]).await;
    assert_eq!(done.location(), "/admin/security");
    let page = desk.get("admin/security").await.body;
    assert!(page.contains("That device is forgotten") && forget.captures_iter(&page).count() == 1, "{page}");

    let off = desk.submit("admin/security", "admin/security/notifications", &[]).await;
    assert_eq!(off.location(), "/admin/security");
    assert_eq!(sign_in(&server.browser()).await.location(), "/admin/");
    assert_eq!(mails().await.len(), 1, "no new-device mail once turned off");
}

web_on_both_backends!(
    admins_get_known_devices_and_notices,
    three_wrong_codes_end_an_admins_sign_in,
    a_key_without_its_method_is_still_owed,
    a_kept_code_does_not_finish_a_sign_in_that_now_owes_duo,
    an_admin_named_like_an_email_cannot_choose_duo,
    a_failed_two_factor_enable_keeps_the_admin_signed_in_and_says_so,
    a_failed_enrolment_leaves_the_admin_signing_in,
    an_admin_signs_in_with_duo,
    a_duo_admin_without_duo_configured_is_not_let_in,
    an_admin_chooses_duo,
);
