//! The admin area over HTTP, on both databases: its own session cookie, permissions on every
//! form, the admin lockout, audit entries with the client IP, and the CLI that lets a locked-out
//! admin back in. The Chromium suite (`browser_admin`) shows the flows as staff click them.

use std::collections::BTreeSet;

use crate::support::gatehouse;
use crate::support::web::{Backend, Browser, PASSWORD, Server};
use gatehouse::accounts::{Actor, AdminPermission};

async fn admin(server: &Server, username: &str, permissions: &[AdminPermission]) -> i64 {
    let actor = Actor::system("test");
    let role = format!("{username} role");
    let set: BTreeSet<AdminPermission> = permissions.iter().copied().collect();
    server.accounts().create_role(&actor, &gatehouse::accounts::Grantor::Operator, &role, &set).await.unwrap();
    let email = format!("{username}@example.com");
    server
        .accounts()
        .create_admin(&actor, &gatehouse::accounts::Grantor::Operator, username, &email, &role, Some(PASSWORD))
        .await
        .unwrap()
        .id
}

async fn sign_in(b: &Browser, username: &str, password: &str) -> crate::support::web::Page {
    b.submit("admin/login", "admin/login", &[("username", username), ("password", password)]).await
}

/// The audit actions about an admin, with their client IPs.
async fn admin_events(server: &Server, admin_id: i64) -> Vec<(String, Option<String>)> {
    sqlx::query_as("SELECT action, ip FROM audit_log WHERE target_type = 'admin' AND target_id = $1 ORDER BY id")
        .bind(admin_id)
        .fetch_all(server.state.db().pool())
        .await
        .unwrap()
}

async fn admin_sessions_are_their_own(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let alice = admin(&server, "alice", AdminPermission::ALL).await;

    // A client-area session does not open the admin area.
    let user = server.browser();
    assert_eq!(user.login("ann@example.com", PASSWORD).await.status, 303);
    assert_eq!(user.get("admin/clients").await.location(), "/admin/login");

    let b = server.browser();
    assert_eq!(sign_in(&b, "alice", "wrong password").await.status, 401);
    let signed = sign_in(&b, "alice", PASSWORD).await;
    assert_eq!((signed.status, signed.location()), (303, "/admin/"));
    let cookie = signed.set_cookie().unwrap();
    assert!(cookie.starts_with("gatehouse_admin=") && cookie.contains("Path=/admin"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert_eq!(b.get("admin/clients").await.status, 200);
    // Its cookie goes only to /admin: the client area does not see an admin as a user.
    assert_eq!(b.get("clientarea").await.location(), "/login");

    let sessions = server.sessions().for_admin(alice).await.unwrap();
    assert_eq!(sessions.len(), 1, "listed by admin");
    let mut events = admin_events(&server, alice).await;
    events.retain(|(action, _)| action.starts_with("admin.login"));
    let actions: Vec<_> = events.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["admin.login_failed", "admin.login_password_ok", "admin.login"], "{events:?}");
    assert!(events.iter().all(|(_, ip)| ip.as_deref() == Some("127.0.0.1")), "with the client IP: {events:?}");

    // A form without the session's token is refused; with it, it is carried out.
    let refused = b.post("admin/settings/banned-emails/add", &[("domain", "spam.example")]).await;
    assert_eq!(refused.status, 403);
    let done = b
        .submit("admin/settings/banned-emails", "admin/settings/banned-emails/add", &[("domain", "spam.example")])
        .await;
    assert_eq!((done.status, done.location()), (303, "/admin/settings/banned-emails"));
    assert!(b.get("admin/settings/banned-emails").await.body.contains("Sign-ups from spam.example are refused."));

    // Staff edit a client's details and status; a status that does not exist is refused by name.
    let (_, client_id) = server.client_with_owner("cy@example.com", "Cy Hosting").await;
    let edit = format!("admin/clients/{client_id}/edit");
    let save = format!("admin/clients/{client_id}");
    let fields = [("company", "Cy Cloud"), ("status", "inactive")];
    assert_eq!(b.submit(&edit, &save, &fields).await.location(), format!("/{save}"));
    let client = server.accounts().client(client_id).await.unwrap();
    assert_eq!((client.company.as_str(), client.status.to_string().as_str()), ("Cy Cloud", "inactive"));
    assert_eq!(b.submit(&edit, &save, &[("status", "sleeping")]).await.status, 303);
    let page = b.get(&save).await.body;
    assert!(page.contains("sleeping"), "the refusal names the value: {page}");
    assert_eq!(server.accounts().client(client_id).await.unwrap().status.to_string(), "inactive");

    // Alice signs in on a second device, and ends the sessions she left there from the admins page.
    let other = server.browser();
    assert_eq!(sign_in(&other, "alice", PASSWORD).await.status, 303);
    assert!(b.get("admin/settings/admins").await.body.contains("2 session(s) (you)"));
    let end = format!("admin/settings/admins/{alice}/sessions/end");
    assert_eq!(b.submit("admin/settings/admins", &end, &[]).await.status, 303);
    assert_eq!(other.get("admin/clients").await.location(), "/admin/login", "the other device is signed out");
    assert_eq!(b.get("admin/clients").await.status, 200, "the current session stays");

    // Ending the admin's sessions (what `admin set-password` does) signs the browser out.
    assert_eq!(server.sessions().end_for_admin(alice, None).await.unwrap(), 1);
    assert_eq!(b.get("admin/clients").await.location(), "/admin/login");
}

/// Every form of the admin area, and the permission it needs: a role without it gets the 403
/// page naming the permission and the role, and nothing changes.
async fn every_admin_form_names_the_permission_it_lacks(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, client_id) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    admin(&server, "nobody", &[]).await;
    let b = server.browser();
    assert_eq!(sign_in(&b, "nobody", PASSWORD).await.status, 303);
    let dashboard = b.get("admin/").await;
    assert!(dashboard.body.contains("Your role gives you no admin pages yet"), "{}", dashboard.body);
    let csrf = dashboard.csrf();
    let (c, u) = (client_id, user_id);
    let forms: Vec<(String, &str)> = vec![
        ("admin/clients/new".into(), "clients.create"),
        (format!("admin/clients/{c}"), "clients.manage"),
        (format!("admin/clients/{c}/close"), "clients.manage"),
        (format!("admin/clients/{c}/users/associate"), "users.manage"),
        (format!("admin/clients/{c}/users/invite"), "users.manage"),
        (format!("admin/clients/{c}/users/{u}/permissions"), "users.manage"),
        (format!("admin/clients/{c}/users/{u}/owner"), "users.manage"),
        (format!("admin/clients/{c}/users/{u}/remove"), "users.manage"),
        (format!("admin/clients/{c}/users/{u}/match"), "clients.manage"),
        (format!("admin/users/{u}/password-reset"), "users.manage"),
        (format!("admin/users/{u}/2fa/disable"), "users.manage"),
        (format!("admin/users/{u}/sessions/end"), "sessions.manage"),
        (format!("admin/users/{u}/unlock"), "users.manage"),
        (format!("admin/users/{u}/impersonate"), "users.impersonate"),
        ("admin/settings/banned-emails/add".into(), "settings.manage"),
        ("admin/settings/security-questions/add".into(), "settings.manage"),
        ("admin/settings/admins/add".into(), "settings.manage"),
        ("admin/settings/admins/1/disable".into(), "settings.manage"),
        ("admin/settings/admins/1/enable".into(), "settings.manage"),
        ("admin/settings/roles/save".into(), "settings.manage"),
        ("admin/settings/tokens/create".into(), "settings.manage"),
        ("admin/health/run".into(), "health.view"),
        ("admin/health/fix/proxy.cloudflare".into(), "settings.manage"),
    ];
    for (path, permission) in &forms {
        let page =
            b.post(path, &[("csrf_token", csrf.as_str()), ("email", "x@example.com"), ("domain", "x.example")]).await;
        assert_eq!(page.status, 403, "POST {path}: {}", page.body);
        assert!(page.body.contains("Oops! Access Denied"), "POST {path}");
        assert!(
            page.body.contains(permission) && page.body.contains("“nobody role”"),
            "POST {path} names {permission}"
        );
    }
    for (path, permission) in [
        ("admin/clients", "clients.view"),
        ("admin/users", "users.view"),
        ("admin/settings/admins", "settings.manage"),
        ("admin/health", "health.view"),
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, 403, "GET {path}");
        assert!(page.body.contains(permission), "GET {path} names {permission}");
    }
    assert_eq!(server.accounts().client(client_id).await.unwrap().status.to_string(), "active", "nothing changed");
    assert!(server.accounts().list_banned_domains().await.unwrap().is_empty());
}

/// Failures lock the admin (and only them) like users' lockout: after `max_failures` even the
/// right password gets the same answer, with the same work done.
async fn admin_lockout_refuses_like_a_wrong_password(backend: Backend) {
    let extra = "security:\n  lockout:\n    max_failures: 3\n";
    let Some(server) = Server::start(backend, extra).await else { return };
    let alice = admin(&server, "alice", AdminPermission::ALL).await;
    admin(&server, "bob", AdminPermission::ALL).await;
    let b = server.browser();
    for _ in 0..3 {
        assert_eq!(sign_in(&b, "alice", "guess").await.status, 401);
    }
    let locked = sign_in(&b, "alice", PASSWORD).await;
    assert_eq!(locked.status, 401);
    assert!(locked.body.contains("Login details incorrect"), "{}", locked.body);
    assert_eq!(sign_in(&server.browser(), "bob", PASSWORD).await.status, 303, "another admin is not locked");
    let actions: Vec<_> = admin_events(&server, alice).await.into_iter().map(|(a, _)| a).collect();
    assert!(
        actions.contains(&"admin.lockout".to_string()) && actions.contains(&"admin.login_locked".to_string()),
        "{actions:?}"
    );
}

/// A disabled admin signs in to nothing: their open session is sent to the sign-in page, which
/// refuses them, and their API token is refused; enabled again, they sign in as before. Only an
/// admin holding everything the other's role holds may do either, nobody disables themself,
/// and the last admin who can sign in stays.
async fn a_disabled_admin_signs_in_to_nothing(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let root = admin(&server, "root", AdminPermission::ALL).await;
    let bob = admin(&server, "bob", &[AdminPermission::SettingsManage, AdminPermission::ClientsView]).await;
    let carol = admin(&server, "carol", &[AdminPermission::ClientsView]).await;
    let [r, b, c] = [server.browser(), server.browser(), server.browser()];
    for (browser, name) in [(&r, "root"), (&b, "bob"), (&c, "carol")] {
        assert_eq!(sign_in(browser, name, PASSWORD).await.location(), "/admin/", "{name}");
    }
    let grantor = gatehouse::accounts::Grantor::Operator;
    let token = server.accounts().create_api_token(&Actor::system("test"), &grantor, carol, "ci").await.unwrap().token;
    let api = || async {
        let answer = reqwest::Client::new().get(server.url("api/v1/clients")).bearer_auth(&token).send().await;
        answer.unwrap().status().as_u16()
    };
    assert_eq!(api().await, 200);

    // Bob, who holds everything Carol's role holds, disables her: she is out at once.
    let page = "admin/settings/admins";
    let disable = |id: i64| format!("admin/settings/admins/{id}/disable");
    assert_eq!(b.submit(page, &disable(carol), &[]).await.location(), "/admin/settings/admins");
    assert!(b.get(page).await.body.contains("carol is disabled; 1 session(s) ended."));
    assert_eq!(c.get("admin/clients").await.location(), "/admin/login", "her session ended");
    assert_eq!(sign_in(&c, "carol", PASSWORD).await.status, 401, "she cannot sign in");
    assert_eq!(api().await, 401, "her API token is refused");

    // Bob cannot disable Root, who holds more, nor himself; Root is still signed in.
    b.submit(page, &disable(root), &[]).await;
    assert!(b.get(page).await.body.contains("which your role does not hold"), "refused by what he lacks");
    assert!(
        !b.get(page).await.body.contains(&format!("/admin/settings/admins/{bob}/disable\"")),
        "no button for himself"
    );
    b.submit(page, &disable(bob), &[]).await;
    assert!(b.get(page).await.body.contains("annot disable yourself"));
    assert_eq!(r.get("admin/clients").await.status, 200);
    assert_eq!(b.get("admin/clients").await.status, 200);

    // Disabled, Carol's role and tokens are still hers: Bob, who holds less than Root, can
    // neither make a token acting as Root while Root is disabled, nor move Root to a role he
    // holds, nor enable Root. (Each would act with Root's role once Root is back.)
    let actor = Actor::system("test");
    server.state.auth.set_admin_disabled(&actor, &grantor, root, true).await.unwrap();
    let bob_holds = [AdminPermission::SettingsManage, AdminPermission::ClientsView].into_iter().collect();
    let as_bob = gatehouse::accounts::Grantor::Admin { id: bob, holds: bob_holds };
    let bob_actor = Actor::admin(bob, "bob");
    let token = server.accounts().create_api_token(&bob_actor, &as_bob, root, "mine").await.unwrap_err();
    assert!(token.to_string().contains("which your role does not hold"), "{token}");
    let moved = server.accounts().set_admin_role(&bob_actor, &as_bob, root, "bob role").await.unwrap_err();
    assert!(moved.to_string().contains("which your role does not hold"), "{moved}");
    b.submit(page, &format!("admin/settings/admins/{root}/enable"), &[]).await;
    assert!(server.accounts().admin(root).await.unwrap().is_disabled(), "Bob cannot enable Root");
    assert!(b.get(page).await.body.contains("nabling this admin needs"), "refused by what he lacks");
    server.state.auth.set_admin_disabled(&actor, &grantor, root, false).await.unwrap();
    assert_eq!(sign_in(&r, "root", PASSWORD).await.location(), "/admin/");

    // Without a recent proof of identity, a session alone cannot disable anyone.
    server.state.db().clock().advance(std::time::Duration::from_secs(6 * 60));
    let unproven = r.submit(page, &disable(bob), &[]).await;
    assert_eq!(unproven.location(), "/admin/security/confirm");
    assert!(!server.accounts().admin(bob).await.unwrap().is_disabled());
    // Nor add an admin, give a role or make a token: who can use the admin area is unchanged.
    let admin_fields =
        [("username", "eve"), ("email", "eve@example.com"), ("role", "root role"), ("password", PASSWORD)];
    let attempts = [
        ("admin/settings/admins/add".to_string(), &admin_fields[..]),
        (format!("admin/settings/admins/{carol}/role"), &[("role", "root role")][..]),
        ("admin/settings/tokens/create".to_string(), &[("admin_id", "1"), ("name", "kept")][..]),
    ];
    for (action, fields) in attempts {
        assert_eq!(r.submit(page, &action, fields).await.location(), "/admin/security/confirm", "{action}");
    }
    let admins = server.accounts().list_admins().await.unwrap();
    assert!(admins.iter().all(|a| a.username != "eve"), "no admin was added");
    assert_eq!(server.accounts().admin(carol).await.unwrap().role_name.as_deref(), Some("carol role"));
    assert!(server.accounts().list_api_tokens(None).await.unwrap().iter().all(|t| t.name != "kept"));
    let proof = [("password", PASSWORD)];
    assert_eq!(r.submit("admin/security/confirm", "admin/security/confirm", &proof).await.status, 303);

    // Nor may Bob end Root's sessions or revoke Root's tokens: nobody takes an admin's tools who
    // holds less than them.
    let root_token = server.accounts().create_api_token(&actor, &grantor, root, "root's").await.unwrap();
    b.submit(page, &format!("admin/settings/admins/{root}/sessions/end"), &[]).await;
    let said = b.get(page).await.body;
    assert!(said.contains("sessions needs"), "{said}");
    assert_eq!(r.get("admin/clients").await.status, 200, "Root is still signed in");
    let revoke = format!("admin/settings/tokens/{}/revoke", root_token.info.id);
    b.submit("admin/settings/tokens", &revoke, &[]).await;
    assert!(b.get("admin/settings/tokens").await.body.contains("s token needs "));

    // Root enables Carol again: her password, role and token work as before.
    let enable = format!("admin/settings/admins/{carol}/enable");
    assert_eq!(r.submit(page, &enable, &[]).await.location(), "/admin/settings/admins");
    assert_eq!(sign_in(&c, "carol", PASSWORD).await.location(), "/admin/");
    assert_eq!(api().await, 200);
    let actions: Vec<String> = admin_events(&server, carol).await.into_iter().map(|(a, _)| a).collect();
    assert!(actions.contains(&"admin.disabled".into()) && actions.contains(&"admin.enabled".into()), "{actions:?}");
    assert!(admin_events(&server, root).await.iter().any(|(a, _)| a == "admin.grant_refused"));

    // The operator may disable anyone, but not the last admin who can sign in.
    for id in [bob, carol] {
        server.state.auth.set_admin_disabled(&actor, &grantor, id, true).await.unwrap();
    }
    let last = server.state.auth.set_admin_disabled(&actor, &grantor, root, true).await.unwrap_err();
    assert!(last.to_string().contains("root is the last admin who can sign in"), "{last}");
    assert_eq!(r.get("admin/clients").await.status, 200);
}

/// A sign-in under way when its admin was disabled can still write a session after the
/// sessions were ended. The admin area ends such a session the first time it sees it: no page,
/// not even the admin's own security page, and no loop between the sign-in page and the area.
async fn a_session_a_disabled_admin_was_left_with_ends_when_seen(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let carol = admin(&server, "carol", &[AdminPermission::ClientsView]).await;
    let c = server.browser();
    assert_eq!(sign_in(&c, "carol", PASSWORD).await.location(), "/admin/");
    // The race's outcome, written directly: disabled, with a session nobody ended.
    let pool = server.state.db().pool();
    sqlx::query("UPDATE admins SET disabled = 1 WHERE id = $1").bind(carol).execute(pool).await.unwrap();
    assert_eq!(server.sessions().for_admin(carol).await.unwrap().len(), 1);
    assert_eq!(c.get("admin/security").await.location(), "/admin/login", "not even her own security page");
    assert_eq!(c.get("admin/clients").await.location(), "/admin/login");
    assert!(server.sessions().for_admin(carol).await.unwrap().is_empty(), "ended when seen");
    assert_eq!(c.get("admin/login").await.status, 200, "the sign-in page, not a loop back to the area");
}

/// A sign-in half-way through its second factor when its admin is disabled ends there: the
/// right code signs in to nothing, and no admin session is written.
async fn a_sign_in_under_way_ends_when_its_admin_is_disabled(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let carol = admin(&server, "carol", &[AdminPermission::ClientsView]).await;
    let secret = gatehouse::secrets::totp::new_secret();
    let carol_account = (gatehouse::accounts::Principal::Admin, carol);
    server.accounts().set_totp(&Actor::system("test"), carol_account, &secret, 0, "unused").await.unwrap();
    let c = server.browser();
    assert_eq!(sign_in(&c, "carol", PASSWORD).await.location(), "/admin/login/2fa");
    // Disabled after her password was checked, and after the sessions were ended (the race).
    let pool = server.state.db().pool();
    sqlx::query("UPDATE admins SET disabled = 1 WHERE id = $1").bind(carol).execute(pool).await.unwrap();
    let code = gatehouse::secrets::totp::code_at(&secret, gatehouse::store::Clock::wall()).unwrap();
    let done = c.submit("admin/login/2fa", "admin/login/2fa", &[("code", &code)]).await;
    assert_eq!(done.location(), "/admin/login", "{} {}", done.status, done.body);
    assert_ne!(c.get("admin/clients").await.status, 200, "no admin page");
    assert!(server.sessions().for_admin(carol).await.unwrap().iter().all(|s| s.data.admin_id.is_none()));
    let signed_in = admin_events(&server, carol).await.iter().filter(|(a, _)| a == "admin.login").count();
    assert_eq!(signed_in, 0, "no sign-in is recorded");
}

web_on_both_backends!(
    a_sign_in_under_way_ends_when_its_admin_is_disabled,
    a_session_a_disabled_admin_was_left_with_ends_when_seen,
    a_disabled_admin_signs_in_to_nothing,
    admin_sessions_are_their_own,
    every_admin_form_names_the_permission_it_lacks,
    admin_lockout_refuses_like_a_wrong_password,
);

/// The admin who is locked out: an operator sets a new password and turns two-factor off.
#[tokio::test]
async fn the_cli_lets_a_locked_out_admin_back_in() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(gatehouse(dir).arg("migrate").output().unwrap().status.success());
    let url = format!("sqlite://{}/gatehouse-data/gatehouse.db", dir.display()).parse().unwrap();
    let db = gatehouse::store::Db::connect(&url, "test").await.unwrap();
    let accounts = gatehouse::accounts::Accounts::new(db, crate::support::policy());
    let actor = Actor::system("test");
    accounts
        .create_role(
            &actor,
            &gatehouse::accounts::Grantor::Operator,
            "ops",
            &AdminPermission::ALL.iter().copied().collect(),
        )
        .await
        .unwrap();
    let alice = accounts
        .create_admin(&actor, &gatehouse::accounts::Grantor::Operator, "alice", "alice@example.com", "ops", None)
        .await
        .unwrap();
    accounts
        .set_totp(&actor, (gatehouse::accounts::Principal::Admin, alice.id), "JBSWY3DPEHPK3PXP", 1, "unused")
        .await
        .unwrap();
    // Without a password or passkey Alice cannot sign in, so disabling her shuts nobody out: the
    // rule keeps the last admin who can sign in, not the last row.
    for (command, said) in [("disable", "Disabled admin alice"), ("enable", "Enabled admin alice")] {
        let out = gatehouse(dir).args(["admin", command, "alice"]).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains(said), "{out:?}");
    }

    let set = gatehouse(dir)
        .args(["admin", "set-password", "alice", "--password-stdin"])
        .write_stdin("a new admin passphrase\n")
        .output()
        .unwrap();
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    assert!(String::from_utf8_lossy(&set.stdout).contains("Set the password of admin alice"));
    let hash = accounts.admin(alice.id).await.unwrap().password_hash.unwrap();
    assert!(
        gatehouse::secrets::passwords::verify_any_async(
            "a new admin passphrase",
            &hash,
            gatehouse::secrets::passwords::Requester::Operator
        )
        .await
        .unwrap()
        .ok
    );

    let off = gatehouse(dir).args(["--json", "admin", "disable-2fa", &alice.id.to_string()]).output().unwrap();
    assert!(off.status.success(), "{}", String::from_utf8_lossy(&off.stderr));
    let json: serde_json::Value = serde_json::from_slice(&off.stdout).unwrap();
    assert_eq!(json["twofa"], false);
    assert!(accounts.admin(alice.id).await.unwrap().totp_secret.is_none());

    let unknown = gatehouse(dir).args(["admin", "disable-2fa", "mallory"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("admin mallory does not exist"));

    // An operator shuts an admin out, and lets them back in; never the last one who can sign in.
    let run = |args: &[&str]| gatehouse(dir).args(args).output().unwrap();
    let last = run(&["admin", "disable", "alice"]);
    assert_eq!(last.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&last.stderr).contains("alice is the last admin who can sign in"));
    let operator = gatehouse::accounts::Grantor::Operator;
    let bob = accounts.create_admin(&actor, &operator, "bob", "bob@example.com", "ops", None).await.unwrap();
    let refused = run(&["admin", "disable", "alice"]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("last admin who can sign in"), "Bob has no password: {said}");
    let bob_account = (gatehouse::accounts::Principal::Admin, bob.id);
    accounts.set_password(&actor, bob_account, "bob's admin passphrase").await.unwrap();
    let off = run(&["--json", "admin", "disable", "alice"]);
    assert!(off.status.success(), "{}", String::from_utf8_lossy(&off.stderr));
    let json: serde_json::Value = serde_json::from_slice(&off.stdout).unwrap();
    assert_eq!((json["username"].as_str(), json["disabled"].as_bool()), (Some("alice"), Some(true)), "{json}");
    let listed = String::from_utf8_lossy(&run(&["admin", "list"]).stdout).into_owned();
    let alice_row = listed.lines().find(|l| l.contains("alice")).unwrap();
    assert!(alice_row.trim_end().ends_with("yes"), "{listed}");
    assert!(accounts.admin(alice.id).await.unwrap().is_disabled());
    let on = run(&["admin", "enable", "alice"]);
    assert!(String::from_utf8_lossy(&on.stdout).contains("Enabled admin alice"), "{on:?}");
    assert!(!accounts.admin(alice.id).await.unwrap().is_disabled());
}
