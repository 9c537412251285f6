//! Login, sessions, CSRF, lockout, client IPs and the account switcher, end to end over HTTP.

use crate::support::web::{Backend, PASSWORD, Server};

const LOGIN_INCORRECT: &str = "Login details incorrect. Please try again.";

async fn login_opens_the_client_area_on_a_new_session(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (_, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();

    let form = b.get("login").await;
    assert_eq!(form.status, 200);
    let pre_cookie = form.set_cookie().expect("a pre-login session carries the CSRF token");
    assert!(pre_cookie.contains("HttpOnly") && pre_cookie.contains("SameSite=Lax") && pre_cookie.contains("Path=/"));
    assert!(!pre_cookie.contains("Secure"), "system_url is http: {pre_cookie}");
    assert!(!pre_cookie.to_lowercase().contains("domain="), "host-only cookie: {pre_cookie}");

    let wrong = b.login("ann@example.com", "not the password").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains(LOGIN_INCORRECT));

    let ok = b.login("ann@example.com", PASSWORD).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location(), "/clientarea");
    let session_cookie = ok.set_cookie().expect("login issues a new session id");
    assert_ne!(session_cookie, pre_cookie);

    let area = b.get("clientarea").await;
    assert_eq!(area.status, 200);
    assert!(area.body.contains("Ann Hosting") || area.body.contains("Ann Owner"), "{}", area.body);

    // The pre-login session id is dead: replaying it gets no session.
    let stale = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let old_value = pre_cookie.split(';').next().unwrap().to_string();
    let r = stale.get(server.url("clientarea")).header("cookie", old_value).send().await.unwrap();
    assert_eq!(r.status(), 303);

    let logout = b.submit("clientarea", "logout", &[]).await;
    assert_eq!(logout.status, 303);
    assert_eq!(b.get("clientarea").await.status, 303, "logged out");
}

async fn csrf_is_required_on_every_form(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();
    b.get("login").await;
    let missing = b.post("login", &[("email", "ann@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains("Invalid CSRF token"));
    let wrong =
        b.post("login", &[("csrf_token", "forged"), ("email", "ann@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(wrong.status, 403);

    // A right token from another origin is still refused.
    let mut evil = server.browser();
    let token = evil.get("login").await.csrf();
    evil.header("origin", "https://evil.example");
    let cross =
        evil.post("login", &[("csrf_token", &token), ("email", "ann@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(cross.status, 403);

    // Signed in, a state-changing form without the token changes nothing.
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 303);
    assert_eq!(b.post("logout", &[]).await.status, 403);
    assert_eq!(b.get("clientarea").await.status, 200, "still signed in");
}

/// The headers real browsers put on a same-origin form POST are accepted (Chromium and Firefox
/// send `Origin: null` under a `no-referrer` policy); a cross-site POST is refused even with a
/// stolen token; and pages keep the browser's `Origin` real with `Referrer-Policy: same-origin`.
async fn same_origin_forms_pass_whatever_origin_browsers_send(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let own = server.base.trim_end_matches('/').to_string();
    let same_origin: [&[(&'static str, &str)]; 4] = [
        &[("sec-fetch-site", "same-origin"), ("origin", "null")],
        &[("sec-fetch-site", "same-origin"), ("origin", &own)],
        &[("origin", "null")],
        &[("origin", &own)],
    ];
    for sent in same_origin {
        let mut b = server.browser();
        let page = b.get("login").await;
        assert_eq!(page.headers["referrer-policy"], "same-origin");
        for (name, value) in sent {
            b.header(name, value);
        }
        let token = page.csrf();
        let r = b.post("login", &[("csrf_token", &token), ("email", "ann@example.com"), ("password", PASSWORD)]).await;
        assert_eq!(r.status, 303, "{sent:?}: {}", r.body);
    }
    let cross_site: [&[(&'static str, &str)]; 3] = [
        &[("sec-fetch-site", "cross-site"), ("origin", "null")],
        &[("sec-fetch-site", "same-site"), ("origin", "http://shop.127.0.0.1")],
        &[("origin", "https://evil.example")],
    ];
    for sent in cross_site {
        let mut b = server.browser();
        let token = b.get("login").await.csrf();
        for (name, value) in sent {
            b.header(name, value);
        }
        let r = b.post("login", &[("csrf_token", &token), ("email", "ann@example.com"), ("password", PASSWORD)]).await;
        assert_eq!(r.status, 403, "{sent:?}");
        assert!(r.body.contains("from another site"), "{}", r.body);
    }
}

async fn lockout_after_the_configured_failures_with_one_message(backend: Backend) {
    let extra = "security:\n  lockout: { max_failures: 3, window: 15m, lock: 15m }\n";
    let Some(server) = Server::start(backend, extra).await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();

    let unknown = b.login("nobody@example.com", "whatever it is").await;
    let wrong = b.login("ann@example.com", "not the password").await;
    assert_eq!((unknown.status, wrong.status), (401, 401));
    assert!(unknown.body.contains(LOGIN_INCORRECT) && wrong.body.contains(LOGIN_INCORRECT));

    // Third failure on Ann's account locks it.
    b.login("ann@example.com", "still not it").await;
    b.login("ann@example.com", "and not this").await;
    let locked = b.login("ann@example.com", PASSWORD).await;
    assert_eq!(locked.status, 401, "the right password is refused while locked");
    assert!(locked.body.contains(LOGIN_INCORRECT));

    let actions: Vec<String> = server.audit_actions(user_id).await.into_iter().map(|a| a.0).collect();
    assert!(actions.contains(&"login.lockout".to_string()), "{actions:?}");
    assert!(actions.contains(&"login.locked".to_string()), "{actions:?}");

    // The counters are in the database: a second browser from the same IP is locked too.
    let other = server.browser();
    assert_eq!(other.login("ann@example.com", PASSWORD).await.status, 401);
}

async fn another_host_than_system_url_gets_no_session(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let mut b = server.browser();
    b.header("host", &format!("localhost:{}", server.addr.port()));
    let form = b.get("login").await;
    assert_eq!(form.status, 200);
    assert!(form.set_cookie().is_none(), "no session is created for another host");
    let answer =
        b.post("login", &[("csrf_token", &form.csrf()), ("email", "ann@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(answer.status, 401);
    assert!(answer.body.contains(LOGIN_INCORRECT), "the seed's symptom: {}", answer.body);
}

async fn forwarded_addresses_are_believed_only_from_trusted_proxies(backend: Backend) {
    // Untrusted peer: a spoofed X-Forwarded-For is ignored.
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let mut b = server.browser();
    b.header("x-forwarded-for", "203.0.113.9");
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 303);
    let ips: Vec<_> = server.audit_actions(user_id).await.into_iter().filter_map(|a| a.1).collect();
    assert!(ips.iter().all(|ip| ip == "127.0.0.1"), "{ips:?}");
    // ip_check is on, but the spoofed header cannot end the session either.
    b.header("x-forwarded-for", "198.51.100.1");
    assert_eq!(b.get("clientarea").await.status, 200);

    // Behind trusted proxies: the right-most untrusted hop is the client.
    let extra = "trusted_proxies:\n  ranges: [\"127.0.0.1/32\", \"10.0.0.0/8\"]\n";
    let Some(server) = Server::start(backend, extra).await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let mut b = server.browser();
    b.header("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.2");
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 303);
    let last_ip = server.audit_actions(user_id).await.into_iter().rev().find_map(|a| a.1);
    assert_eq!(last_ip.as_deref(), Some("198.51.100.7"));

    // A client-written line and the proxy's own line are one list in order (RFC 9110): the
    // right-most untrusted hop is still the client, not the first line's forgery.
    let mut split = server.browser();
    split.header_line("x-forwarded-for", "203.0.113.66");
    split.header_line("x-forwarded-for", "198.51.100.9, 10.0.0.2");
    assert_eq!(split.login("ann@example.com", PASSWORD).await.status, 303);
    let last_ip = server.audit_actions(user_id).await.into_iter().rev().find_map(|a| a.1);
    assert_eq!(last_ip.as_deref(), Some("198.51.100.9"));

    // ip_check: the visible client IP changes → the session ends.
    b.header("x-forwarded-for", "198.51.100.7, 10.0.0.2");
    assert_eq!(b.get("clientarea").await.status, 200);
    b.header("x-forwarded-for", "198.51.100.8, 10.0.0.2");
    let ended = b.get("clientarea").await;
    assert_eq!(ended.status, 303);
    assert_eq!(ended.location(), "/login?expired=1");
}

async fn cf_connecting_ip_is_believed_only_from_cloudflare(backend: Backend) {
    let extra = "trusted_proxies:\n  header: CF-Connecting-IP\n  cloudflare: true\n";
    let Some(server) = Server::start(backend, extra).await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let mut b = server.browser();
    // 127.0.0.1 is not a CloudFlare address: its CF-Connecting-IP is a forgery.
    b.header("cf-connecting-ip", "203.0.113.50");
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 303);
    let ips: Vec<_> = server.audit_actions(user_id).await.into_iter().filter_map(|a| a.1).collect();
    assert!(ips.iter().all(|ip| ip == "127.0.0.1"), "{ips:?}");
}

async fn password_change_ends_the_other_sessions(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let (a, other) = (server.browser(), server.browser());
    assert_eq!(a.login("ann@example.com", PASSWORD).await.status, 303);
    assert_eq!(other.login("ann@example.com", PASSWORD).await.status, 303);
    assert_eq!(other.get("clientarea").await.status, 200);

    let changed = a
        .submit(
            "account/security",
            "account/security/password",
            &[
                ("current_password", PASSWORD),
                ("password", "a brand new passphrase"),
                ("password_confirm", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert!(changed.set_cookie().is_some(), "a new session id after a password change");
    assert_eq!(a.get("clientarea").await.status, 200, "this session continues");
    assert_eq!(other.get("clientarea").await.status, 303, "the other session ended");
    assert_eq!(server.browser().login("ann@example.com", "a brand new passphrase").await.status, 303);
}

async fn users_list_and_revoke_their_sessions(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let (a, other) = (server.browser(), server.browser());
    a.login("ann@example.com", PASSWORD).await;
    other.login("ann@example.com", PASSWORD).await;
    let list = a.get("account/sessions").await;
    assert_eq!(list.status, 200);
    let sessions = server.sessions().for_user(user_id).await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(list.body.matches("(This session)").count(), 1);
    // Only the other session has an End button.
    let ends: Vec<_> = sessions.iter().map(|s| s.handle().to_string()).filter(|h| list.body.contains(h)).collect();
    assert_eq!(ends.len(), 1, "{}", list.body);
    let target = &ends[0];
    let revoked = a.submit("account/sessions", &format!("account/sessions/{target}/revoke"), &[]).await;
    assert_eq!(revoked.status, 303);
    assert_eq!(other.get("clientarea").await.status, 303);
    assert_eq!(a.get("clientarea").await.status, 200);
}

async fn account_chooser_switcher_and_closed_clients(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, first) = server.client_with_owner("ann@example.com", "First Co").await;
    let actor = gatehouse::accounts::Actor::system("test");
    let (_, second) = server.client_with_owner("bob@example.com", "Second Co").await;
    server.accounts().associate(&actor, user_id, second, &gatehouse::accounts::Permissions::none()).await.unwrap();

    let b = server.browser();
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 303);
    let chooser = b.get("clientarea").await;
    assert!(chooser.body.contains("Choose an account"), "{}", chooser.body);
    let switched = b.submit("clientarea", "clientarea/switch", &[("client_id", &second.to_string())]).await;
    assert_eq!(switched.status, 303);
    let area = b.get("clientarea").await;
    assert!(area.body.contains("Switch account"));

    // Pages of the client worked in are reached (what each shows is the permissions' to say).
    for page in ["account/users", "account/client"] {
        assert_ne!(b.get(page).await.status, 303, "{page} of an open client");
    }

    // A closed client cannot be entered…
    server.accounts().close_client(&actor, second).await.unwrap();
    let refused = b.submit("clientarea", "clientarea/switch", &[("client_id", &second.to_string())]).await;
    assert_eq!(refused.status, 403);
    // …nor worked in by a session that was in it when it closed: its pages send it back.
    for page in ["account/users", "account/client"] {
        let after = b.get(page).await;
        assert_eq!(after.status, 303, "{page} of a closed client");
        assert!(after.location().ends_with("/clientarea"), "{page}: {}", after.location());
    }
    // …and a user whose every client is closed cannot log in; a session that was signed in is
    // told why it has nothing to work in.
    server.accounts().close_client(&actor, first).await.unwrap();
    let nothing = b.get("clientarea").await;
    assert!(nothing.body.contains("There is no account you can work in now"), "{}", nothing.body);
    assert!(!nothing.body.contains("clientarea/switch"), "no closed client is offered: {}", nothing.body);
    let closed = server.browser().login("ann@example.com", PASSWORD).await;
    assert_eq!(closed.status, 403);
    assert!(closed.body.contains("closed"));
}

async fn legacy_hashes_are_upgraded_at_login(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    use md5::Digest;
    let legacy = format!("{}:q9Zx1", hex::encode(md5::Md5::digest(b"q9Zx1legacy password 1")));
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(&legacy)
        .bind(user_id)
        .execute(server.accounts().db().pool())
        .await
        .unwrap();
    assert_eq!(server.browser().login("ann@example.com", "legacy password 1").await.status, 303);
    let stored = server.accounts().user(user_id).await.unwrap().password_hash.unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(server.audit_actions(user_id).await.iter().any(|a| a.0 == "user.password_rehashed"));
    assert_eq!(server.browser().login("ann@example.com", "legacy password 1").await.status, 303);
}

/// Sign-up creates the client, its owner and the welcome mail together, is audited with the
/// visitor's IP, and is throttled per IP like a lockout (here 3 attempts).
/// A hosting client area needs its clients' contact details: `/register` asks for them, those
/// `accounts.signup_required` names are required (checked by the server, not only the browser),
/// countries come from ISO 3166 (a maintained list), phone numbers are kept as typed.
async fn sign_up_asks_the_contact_details_the_site_requires(backend: Backend) {
    let extra = "accounts:\n  signup_required: [address1, city, postcode, country, phone]\n";
    let Some(server) = Server::start(backend, extra).await else { return };
    let b = server.browser();
    let page = b.get("register").await;
    assert!(page.body.contains("name=\"city\"") && page.body.contains("autocomplete=\"address-level2\" required"));
    assert!(page.body.contains("Company (optional)") && page.body.contains("<option value=\"GB\""), "{}", page.body);
    let mut fields = vec![
        ("email", "dana@example.com"),
        ("first_name", "Dana"),
        ("last_name", "Field"),
        ("password", "a long enough passphrase"),
        ("password_confirm", "a long enough passphrase"),
        ("address1", "1 Harbour Row"),
        ("postcode", "BS1 4RN"),
        ("country", "GB"),
        ("phone", "+44 (0)117 496 0000 ext. 12"),
    ];
    let missing = b.submit("register", "register", &fields).await;
    assert_eq!(missing.status, 422);
    assert!(missing.body.contains("City is required"), "{}", missing.body);
    assert!(missing.body.contains("1 Harbour Row"), "what was typed is kept");
    fields.push(("city", "Bristol"));
    for (field, bad, said) in [("country", "ZZ", "ISO 3166-1"), ("phone", "call me maybe", "phone number")] {
        let wrong: Vec<_> = fields.iter().map(|(k, v)| (*k, if *k == field { bad } else { *v })).collect();
        let refused = b.submit("register", "register", &wrong).await;
        assert_eq!(refused.status, 422, "{field}");
        assert!(refused.body.contains(said), "{field}: {}", refused.body);
    }
    assert!(server.accounts().user_by_email("dana@example.com").await.unwrap().is_none(), "nothing half made");
    let done = b.submit("register", "register", &fields).await;
    assert_eq!((done.status, done.location()), (303, "/login"), "{}", done.body);
    let user = server.accounts().user_by_email("dana@example.com").await.unwrap().expect("the owner");
    let client =
        server.accounts().client(server.accounts().clients_of_user(user.id).await.unwrap()[0].client_id).await.unwrap();
    assert_eq!(
        (client.address1.as_str(), client.city.as_str(), client.postcode.as_str(), client.country.as_str()),
        ("1 Harbour Row", "Bristol", "BS1 4RN", "GB")
    );
    assert_eq!(client.phone, "+44 (0)117 496 0000 ext. 12", "kept as typed");
}

async fn sign_up_is_one_transaction_audited_and_throttled_per_ip(backend: Backend) {
    let extra = "security:\n  lockout: { max_failures: 3, window: 15m, lock: 15m }\n";
    let Some(server) = Server::start(backend, extra).await else { return };
    let b = server.browser();
    let fields = |email: &'static str| {
        [
            ("email", email),
            ("first_name", "Dana"),
            ("last_name", "Field"),
            ("company", "Field Hosting"),
            ("password", "a long enough passphrase"),
            ("password_confirm", "a long enough passphrase"),
        ]
    };
    let done = b.submit("register", "register", &fields("dana@example.com")).await;
    assert_eq!((done.status, done.location()), (303, "/login"), "{}", done.body);
    let user = server.accounts().user_by_email("dana@example.com").await.unwrap().expect("the owner exists");
    let clients = server.accounts().clients_of_user(user.id).await.unwrap();
    assert!(clients[0].is_owner && clients[0].client_name == "Field Hosting", "{clients:?}");
    let mail = gatehouse::mail::for_recipient(server.accounts().db(), "dana@example.com").await.unwrap();
    assert_eq!(mail.len(), 1, "the welcome mail is queued with the account");
    let actions = server.audit_actions(user.id).await;
    assert!(actions.iter().any(|(a, ip)| a == "user.create" && ip.as_deref() == Some("127.0.0.1")), "{actions:?}");

    // A taken email: the same answer, nothing created, the owner told.
    let again = b.submit("register", "register", &fields("dana@example.com")).await;
    assert_eq!((again.status, again.location()), (303, "/login"));
    let mail = gatehouse::mail::for_recipient(server.accounts().db(), "dana@example.com").await.unwrap();
    assert_eq!(mail.len(), 2);
    assert!(mail[0].subject.contains("tried to register"), "{}", mail[0].subject);

    // The third attempt from this IP locks the scope; the fourth is refused before any work.
    b.submit("register", "register", &fields("erin@example.com")).await;
    let locked = b.submit("register", "register", &fields("finn@example.com")).await;
    assert_eq!(locked.status, 422);
    assert!(locked.body.contains("Too many sign-ups"), "{}", locked.body);
    assert!(server.accounts().user_by_email("finn@example.com").await.unwrap().is_none());
    // Logins from the same IP are not affected by sign-up throttling.
    assert_eq!(server.browser().login("dana@example.com", "a long enough passphrase").await.status, 303);
}

/// One user's typos never lock out another user at the same address (an office NAT, or everyone
/// behind an untrusted proxy); only many failures from one IP, on any accounts, lock the IP; a
/// success clears the account's count, never the IP's.
async fn lockout_spares_the_innocent_behind_one_address(backend: Backend) {
    let extra = "security:\n  lockout: { max_failures: 3, ip_max_failures: 8, window: 15m, lock: 15m }\n";
    let Some(server) = Server::start(backend, extra).await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    server.client_with_owner("bob@example.com", "Bob Hosting").await;
    let office = server.browser();
    for _ in 0..4 {
        assert_eq!(office.login("bob@example.com", "bob keeps mistyping").await.status, 401);
    }
    assert_eq!(server.browser().login("bob@example.com", PASSWORD).await.status, 401, "Bob's account is locked");
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 303, "Ann, same IP, is not");

    // Two typos, a success, two typos: the success cleared Ann's count, so she is not locked.
    for _ in 0..2 {
        office.login("ann@example.com", "typo typo typo").await;
    }
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 303);
    // Spraying: one guess on each of many accounts. The IP locks at ip_max_failures, whatever
    // the accounts: 8 failures from it = 3 on Bob (his 4th found the account locked and counted
    // nothing), 2 on Ann, 3 below.
    for account in ["ann@example.com", "carol@example.com", "dave@example.com"] {
        office.login(account, "spray spray spray").await;
    }
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 401, "the IP is locked now");
    let counters = server.auth().lockouts().await.unwrap();
    let ip = counters.iter().find(|c| c.scope == "ip:127.0.0.1").unwrap();
    assert!(ip.locked, "{counters:?}");
    assert!(counters.iter().any(|c| c.scope == "account-ip:bob@example.com 127.0.0.1" && c.locked), "{counters:?}");
}

/// A sign-in is recorded whole or not at all: when its last write (the new session) is refused,
/// no audit row says the password was right or that anyone signed in, no device was remembered,
/// and no session exists; the next try, once the database takes writes again, signs in as the
/// first would have.
async fn a_sign_in_the_database_refuses_leaves_no_trace(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let pool = server.state.db().pool();
    server.refuse_user_sessions(backend, true).await;
    let traces = || async {
        let mut counts = Vec::new();
        for sql in [
            "SELECT COUNT(*) FROM audit_log WHERE target_type = 'user' AND target_id = $1 \
             AND action IN ('login.password_ok', 'login.signed_in')",
            "SELECT COUNT(*) FROM device_tokens WHERE principal = 'user' AND account_id = $1",
            "SELECT COUNT(*) FROM sessions WHERE user_id = $1",
        ] {
            counts.push(sqlx::query_scalar::<_, i64>(sql).bind(user_id).fetch_one(pool).await.unwrap());
        }
        counts
    };
    let b = server.browser();
    let refused = b.login("ann@example.com", PASSWORD).await;
    assert_eq!(refused.status, 500, "{}", refused.body);
    assert_eq!(traces().await, [0, 0, 0], "audit rows, devices, sessions after the refused sign-in");

    server.refuse_user_sessions(backend, false).await;
    let signed = b.login("ann@example.com", PASSWORD).await;
    assert_eq!(signed.location(), "/clientarea", "{}", signed.body);
    assert_eq!(traces().await, [2, 1, 1], "password_ok and signed_in, one device, one session");
}

/// Anonymous requests write nothing: the forms of visitors who are not signed in carry a
/// stateless token (a nonce cookie and its HMAC), and a session row is stored only when there
/// is something to keep. Before, every GET /login stored a session: wrk filled a disk with them.
async fn anonymous_visitors_store_no_sessions(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let rows = || async {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sessions").fetch_one(server.accounts().db().pool()).await.unwrap();
        n
    };
    for _ in 0..100 {
        let visitor = server.browser();
        for page in ["login", "password/forgot", "register"] {
            assert_eq!(visitor.get(page).await.status, 200);
        }
    }
    assert_eq!(rows().await, 0, "no session row for anonymous page views");

    // A token is good only with the nonce cookie it was made for.
    let (a, b) = (server.browser(), server.browser());
    let token_of_a = a.get("login").await.csrf();
    b.get("login").await;
    let fields = [("csrf_token", token_of_a.as_str()), ("email", "ann@example.com"), ("password", PASSWORD)];
    assert_eq!(b.post("login", &fields).await.status, 403, "another visitor's token");
    assert_eq!(server.browser().post("login", &fields).await.status, 403, "no nonce cookie");
    assert_eq!(rows().await, 0);
    assert_eq!(a.login("ann@example.com", PASSWORD).await.status, 303);
    assert_eq!(rows().await, 1, "a sign-in is something to keep");
}

/// The `gatehouse_session=…` pair a response set.
fn session_cookie(page: &crate::support::web::Page) -> String {
    let mut set = page.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok());
    let found = set.rfind(|v| v.starts_with("gatehouse_session=")).expect("a session cookie was set");
    found.split(';').next().unwrap().to_string()
}

/// Logging out ends the session at the server, not only in the browser: its cookie, replayed
/// by anyone who copied it, opens nothing afterwards. (A browser drops the cookie itself, so
/// only a replay shows the server's side.)
async fn a_session_cookie_replayed_after_logout_opens_nothing(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();
    let cookie = session_cookie(&b.login("ann@example.com", PASSWORD).await);
    let mut copy = server.browser();
    copy.header("cookie", &cookie);
    assert_eq!(copy.get("clientarea").await.status, 200, "a copied cookie works while its session lives");

    let out = b.submit("clientarea", "logout", &[]).await;
    assert_eq!(out.status, 303, "{}", out.body);
    let replayed = copy.get("clientarea").await;
    assert_eq!(replayed.status, 303, "{}", replayed.body);
    assert!(replayed.location().starts_with("/login"), "{}", replayed.location());
    assert!(server.sessions().for_user(user_id).await.unwrap().is_empty(), "nothing is left to replay");
}

/// However busy, a session ends at `sessions.absolute_timeout` (12 hours by default): used
/// every 20 minutes — never idle for the 30 that would end it — it is sent to sign in again
/// once 12 hours have passed since it began. The test moves the server's clock, not the wall's.
async fn a_busy_session_ends_at_its_absolute_lifetime(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();
    assert_eq!(b.login("ann@example.com", PASSWORD).await.location(), "/clientarea");
    let clock = server.state.db().clock();
    let step = std::time::Duration::from_secs(20 * 60);
    for n in 1..36 {
        clock.advance(step);
        assert_eq!(b.get("clientarea").await.status, 200, "used after {} minutes", n * 20);
    }
    clock.advance(std::time::Duration::from_secs(25 * 60));
    let ended = b.get("clientarea").await;
    assert_eq!((ended.status, ended.location()), (303, "/login?expired=1"), "12 h 5 min after it began");
}

/// Everyone signed out at once (`gatehouse session end-all`): every client-area session ends —
/// signed in or half-way through a sign-in — and the admin area's stay unless asked for too; in
/// batches, on both session stores.
async fn everyone_is_signed_out_at_once(backend: Backend, store: &str) {
    let Some(server) = Server::start(backend, store).await else { return };
    let (ann, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    server.client_with_owner("bob@example.com", "Bob Hosting").await;
    let users: Vec<_> = (0..3).map(|_| server.browser()).collect();
    for (b, email) in users.iter().zip(["ann@example.com", "bob@example.com", "bob@example.com"]) {
        assert_eq!(b.login(email, PASSWORD).await.location(), "/clientarea");
    }
    server.full_admin("root").await;
    let actor = gatehouse::accounts::Actor::system("test");
    let staff = server.browser();
    let signed = staff.submit("admin/login", "admin/login", &[("username", "root"), ("password", PASSWORD)]).await;
    assert_eq!(signed.location(), "/admin/");
    // Half-way: Ann's second factor is owed on one more browser.
    let secret = gatehouse::secrets::totp::new_secret();
    let ann_account = (gatehouse::accounts::Principal::User, ann);
    server.accounts().set_totp(&actor, ann_account, &secret, 0, "unused").await.unwrap();
    let halfway = server.browser();
    assert_eq!(halfway.login("ann@example.com", PASSWORD).await.location(), "/login/2fa");

    assert_eq!(server.sessions().end_everyone(false, 2).await.unwrap(), 4, "three signed in, one half-way");
    for b in &users {
        assert!(b.get("clientarea").await.location().starts_with("/login"));
    }
    assert!(halfway.get("login/2fa").await.location().starts_with("/login"), "the half-way sign-in is over");
    assert_eq!(staff.get("admin/clients").await.status, 200, "the admin area's session stays");
    assert_eq!(server.sessions().end_everyone(true, 2).await.unwrap(), 1);
    assert!(staff.get("admin/clients").await.location().starts_with("/admin/login"));
}

async fn everyone_is_signed_out_at_once_database_store(backend: Backend) {
    everyone_is_signed_out_at_once(backend, "").await;
}

async fn everyone_is_signed_out_at_once_files_store(backend: Backend) {
    everyone_is_signed_out_at_once(backend, "sessions:\n  store: files\n").await;
}

web_on_both_backends!(
    everyone_is_signed_out_at_once_database_store,
    everyone_is_signed_out_at_once_files_store,
    a_session_cookie_replayed_after_logout_opens_nothing,
    a_busy_session_ends_at_its_absolute_lifetime,
    a_sign_in_the_database_refuses_leaves_no_trace,
    anonymous_visitors_store_no_sessions,
    lockout_spares_the_innocent_behind_one_address,
    sign_up_is_one_transaction_audited_and_throttled_per_ip,
    sign_up_asks_the_contact_details_the_site_requires,
    login_opens_the_client_area_on_a_new_session,
    csrf_is_required_on_every_form,
    same_origin_forms_pass_whatever_origin_browsers_send,
    lockout_after_the_configured_failures_with_one_message,
    another_host_than_system_url_gets_no_session,
    forwarded_addresses_are_believed_only_from_trusted_proxies,
    cf_connecting_ip_is_believed_only_from_cloudflare,
    password_change_ends_the_other_sessions,
    users_list_and_revoke_their_sessions,
    account_chooser_switcher_and_closed_clients,
    legacy_hashes_are_upgraded_at_login,
);
