//! Two-factor: TOTP enrolment and login, replay refusal, the rotating backup code, disabling,
//! admin disable and enforced enrolment — end to end over HTTP.

use crate::support::web::{Backend, Browser, PASSWORD, Server};
use gatehouse::secrets::totp;

fn now() -> i64 {
    gatehouse::store::Clock::wall()
}

/// Enrols TOTP through the pages; returns (secret, backup code, the Unix time of the code used).
pub(crate) async fn enrol(b: &Browser) -> (String, String, i64) {
    let setup = b.submit("account/security", "account/security/2fa/setup", &[]).await;
    assert_eq!(setup.status, 303);
    let page = b.get("account/security").await;
    assert!(page.body.contains("<svg"), "QR code as inline SVG");
    let body = page.body.replace("&#x2f;", "/").replace("&amp;", "&");
    let uri_at = body.find("otpauth://totp/gatehouse:").expect("the key URI is shown as text");
    let uri = body[uri_at..].split('<').next().unwrap().to_string();
    let secret = uri.split("secret=").nth(1).unwrap().split('&').next().unwrap().to_string();
    assert!(uri.contains("issuer=gatehouse") && uri.contains("period=30") && uri.contains("digits=6"), "{uri}");

    let wrong = b.post("account/security/2fa/enable", &[("csrf_token", &page.csrf()), ("code", "000000")]).await;
    assert_eq!(wrong.status, 422);
    let enrolled_at = now();
    let code = totp::code_at(&secret, enrolled_at).unwrap();
    let enabled = b.post("account/security/2fa/enable", &[("csrf_token", &page.csrf()), ("code", &code)]).await;
    assert_eq!(enabled.status, 303, "{}", enabled.body);
    assert!(enabled.set_cookie().is_some(), "a new session id when two-factor changes");
    let shown = b.get(enabled.location()).await;
    let backup = extract_backup(&shown.body);
    let reload = b.get(enabled.location()).await;
    assert!(!reload.body.contains(&backup), "the backup code is shown once");
    (secret, backup, enrolled_at)
}

fn extract_backup(body: &str) -> String {
    let re = regex::Regex::new(r"\b([2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4})\b").unwrap();
    re.captures(body).unwrap_or_else(|| panic!("no backup code in:\n{body}"))[1].to_string()
}

async fn totp_login_refuses_replayed_codes(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();
    b.login("ann@example.com", PASSWORD).await;
    let (secret, _, enrolled_at) = enrol(&b).await;

    let c = server.browser();
    let after_password = c.login("ann@example.com", PASSWORD).await;
    assert_eq!(after_password.location(), "/login/2fa");
    assert_eq!(c.get("clientarea").await.status, 303, "not signed in before the second factor");

    // The code used to enable two-factor was accepted once already: refused now. (Computed for
    // the instant of enrolment, not now: a step may have ended since.)
    let used = totp::code_at(&secret, enrolled_at).unwrap();
    let replay = c.submit("login/2fa", "login/2fa", &[("code", &used)]).await;
    assert_eq!(replay.status, 401, "replayed code");
    // The next step's code (within the ±1 step window) is new: accepted.
    let next = totp::code_at(&secret, enrolled_at + 30).unwrap();
    let ok = c.submit("login/2fa", "login/2fa", &[("code", &next)]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert!(ok.set_cookie().is_some(), "new session id after the second factor");
    assert_eq!(c.get("clientarea").await.status, 200);

    // And that code cannot be used again on another login.
    let d = server.browser();
    d.login("ann@example.com", PASSWORD).await;
    assert_eq!(d.submit("login/2fa", "login/2fa", &[("code", &next)]).await.status, 401);
    let actions: Vec<String> = server.audit_actions(user_id).await.into_iter().map(|a| a.0).collect();
    assert!(actions.contains(&"twofa.totp_failed".into()) && actions.contains(&"twofa.totp_ok".into()));
}

async fn backup_code_signs_in_once_and_rotates(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();
    b.login("ann@example.com", PASSWORD).await;
    let (_, backup, _) = enrol(&b).await;
    assert_eq!(backup.len(), 19);

    let c = server.browser();
    c.login("ann@example.com", PASSWORD).await;
    // Accepted without separators and in lower case.
    let typed = backup.replace('-', "").to_lowercase();
    let used = c.submit("login/2fa", "login/2fa", &[("backup_code", &typed)]).await;
    assert_eq!(used.status, 303, "{}", used.body);
    let area = c.get("clientarea").await;
    let fresh = extract_backup(&area.body);
    assert_ne!(fresh, backup, "a new backup code is shown at once");
    assert!(!c.get("clientarea").await.body.contains(&fresh), "shown once");

    let d = server.browser();
    d.login("ann@example.com", PASSWORD).await;
    assert_eq!(d.submit("login/2fa", "login/2fa", &[("backup_code", &backup)]).await.status, 401, "spent");
    assert_eq!(d.submit("login/2fa", "login/2fa", &[("backup_code", &fresh)]).await.status, 303);
}

async fn disabling_needs_the_password_and_admins_can_disable(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();
    b.login("ann@example.com", PASSWORD).await;
    enrol(&b).await;
    let wrong = b.submit("account/security", "account/security/2fa/disable", &[("password", "wrong password!")]).await;
    assert_eq!(wrong.status, 422);
    let off = b.submit("account/security", "account/security/2fa/disable", &[("password", PASSWORD)]).await;
    assert_eq!(off.status, 303);
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.location(), "/clientarea");

    // Admin disable (what `DELETE /api/v1/users/{id}/2fa` and `user disable-2fa` call).
    enrol(&b).await;
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.location(), "/login/2fa");
    server
        .accounts()
        .clear_twofa(&gatehouse::accounts::Actor::admin(1, "root"), (gatehouse::accounts::Principal::User, user_id))
        .await
        .unwrap();
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.location(), "/clientarea");
}

async fn forced_two_factor_requires_enrolment_first(backend: Backend) {
    let Some(server) = Server::start(backend, "twofa:\n  force_clients: true\n").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();
    let login = b.login("ann@example.com", PASSWORD).await;
    assert_eq!(login.location(), "/account/security");
    let blocked = b.get("clientarea").await;
    assert_eq!(blocked.location(), "/account/security", "nothing else until enrolled");
    assert!(b.get("account/security").await.body.contains("required"));
    enrol(&b).await;
    assert_eq!(b.get("clientarea").await.status, 200);
}

/// Whoever has the password cannot guess the second factor by logging in again and again, from
/// as many addresses as they like: second-factor failures count per account until a second
/// factor succeeds, and one password login allows a few tries only.
async fn second_factor_guesses_are_bounded_across_logins_and_addresses(backend: Backend) {
    let extra = "trusted_proxies:\n  ranges: [\"127.0.0.1/32\"]\n";
    let Some(server) = Server::start(backend, extra).await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();
    b.login("ann@example.com", PASSWORD).await;
    let (_, backup, _) = enrol(&b).await;

    // One password login: three wrong codes, then it is back to the password.
    let mut one = server.browser();
    one.header("x-forwarded-for", "198.51.100.1");
    one.login("ann@example.com", PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(one.submit("login/2fa", "login/2fa", &[("backup_code", "AAAA-AAAA-AAAA-AAAA")]).await.status, 401);
    }
    let third = one.submit("login/2fa", "login/2fa", &[("backup_code", "AAAA-AAAA-AAAA-AAAA")]).await;
    assert_eq!((third.status, third.location()), (303, "/login"), "{}", third.body);
    assert_eq!(one.get("login/2fa").await.location(), "/login", "the half-signed-in state is gone");

    // New logins from new addresses: the account's second factor locks after max_failures (5).
    for i in 2..12 {
        let mut c = server.browser();
        c.header("x-forwarded-for", &format!("198.51.100.{i}"));
        assert_eq!(c.login("ann@example.com", PASSWORD).await.location(), "/login/2fa");
        c.submit("login/2fa", "login/2fa", &[("backup_code", "AAAA-AAAA-AAAA-AAAA")]).await;
    }
    let mut last = server.browser();
    last.header("x-forwarded-for", "198.51.100.200");
    last.login("ann@example.com", PASSWORD).await;
    let right = last.submit("login/2fa", "login/2fa", &[("backup_code", &backup)]).await;
    assert_eq!(right.status, 401, "locked: even the right backup code is refused now");
    assert!(right.body.contains("Too many failed attempts"), "{}", right.body);
    let actions: Vec<String> = server.audit_actions(user_id).await.into_iter().map(|a| a.0).collect();
    assert!(actions.contains(&"twofa.lockout".to_string()), "{actions:?}");
}

/// A backup code is spent in the transaction that writes the session showing its replacement:
/// when the database refuses that session — at sign-in or at re-authentication — the code stays
/// valid and nothing says it was used. Before, the code was spent first and its replacement,
/// never shown, was lost with the failed request: a person without their authenticator could
/// not sign in again.
async fn a_backup_code_is_never_spent_with_its_replacement_lost(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let owner = server.browser();
    owner.login("ann@example.com", PASSWORD).await;
    let (_, backup, _) = enrol(&owner).await;
    let pool = server.state.db().pool();
    let stored = || async {
        let sql = "SELECT backup_code_hash FROM users WHERE id = $1";
        sqlx::query_scalar::<_, String>(sql).bind(user_id).fetch_one(pool).await.unwrap()
    };
    let used = || async {
        let actions = server.audit_actions(user_id).await;
        actions.iter().filter(|(a, _)| a == "twofa.backup_code_used").count()
    };

    // At sign-in: the second step's new session is refused.
    let c = server.browser();
    assert_eq!(c.login("ann@example.com", PASSWORD).await.location(), "/login/2fa");
    let enrolled = stored().await;
    server.refuse_user_sessions(backend, true).await;
    let refused = c.submit("login/2fa", "login/2fa", &[("backup_code", &backup)]).await;
    assert_eq!(refused.status, 500, "{}", refused.body);
    assert_eq!((stored().await == enrolled, used().await), (true, 0), "the code is not spent");
    server.refuse_user_sessions(backend, false).await;
    let signed = c.submit("login/2fa", "login/2fa", &[("backup_code", &backup)]).await;
    assert_eq!(signed.location(), "/clientarea", "the same code signs in once the database takes it");
    let second = extract_backup(&c.get("clientarea").await.body);
    assert_eq!(used().await, 1);

    // At re-authentication: the confirmed session is refused.
    let after_sign_in = stored().await;
    let proof = [("password", PASSWORD), ("backup_code", second.as_str())];
    server.refuse_user_sessions(backend, true).await;
    let refused = owner.submit("account/security/confirm", "account/security/confirm", &proof).await;
    assert_eq!(refused.status, 500, "{}", refused.body);
    assert_eq!((stored().await == after_sign_in, used().await), (true, 1), "the code is not spent");
    server.refuse_user_sessions(backend, false).await;
    let confirmed = owner.submit("account/security/confirm", "account/security/confirm", &proof).await;
    assert_eq!(confirmed.location(), "/account/security", "{}", confirmed.body);
    let third = extract_backup(&owner.get("account/security").await.body);
    assert_ne!(third, second, "its replacement is shown");
    assert_eq!((stored().await == after_sign_in, used().await), (false, 2));

    // The replacement shown is the code that works now.
    let d = server.browser();
    d.login("ann@example.com", PASSWORD).await;
    assert_eq!(d.submit("login/2fa", "login/2fa", &[("backup_code", &second)]).await.status, 401, "spent");
    assert_eq!(d.submit("login/2fa", "login/2fa", &[("backup_code", &third)]).await.location(), "/clientarea");
}

web_on_both_backends!(
    a_backup_code_is_never_spent_with_its_replacement_lost,
    second_factor_guesses_are_bounded_across_logins_and_addresses,
    totp_login_refuses_replayed_codes,
    backup_code_signs_in_once_and_rotates,
    disabling_needs_the_password_and_admins_can_disable,
    forced_two_factor_requires_enrolment_first,
);
