//! The admin area as staff use it: headless Chromium against a real `gatehouse serve`. Sign-in
//! with TOTP and the backup code, forced enrolment, a role meeting "Access Denied", adding a
//! client and managing its Users tab, adding and editing a user, log in as client, and System Health applying the
//! CloudFlare fix. Set-up (admins, roles, traffic) goes through the services; everything an
//! admin does goes through the browser.

use std::collections::BTreeSet;

use crate::support::chrome::{Tab, run};
use crate::support::web::{PASSWORD, Server};
use gatehouse::accounts::{Actor, AdminPermission};

/// An admin named `username` with a password and a role holding exactly `permissions`.
async fn admin(server: &Server, username: &str, permissions: &[AdminPermission]) {
    let actor = Actor::system("test");
    let role = format!("{username} role");
    let set: BTreeSet<AdminPermission> = permissions.iter().copied().collect();
    server.accounts().create_role(&actor, &gatehouse::accounts::Grantor::Operator, &role, &set).await.unwrap();
    let email = format!("{username}@example.com");
    server
        .accounts()
        .create_admin(&actor, &gatehouse::accounts::Grantor::Operator, username, &email, &role, Some(PASSWORD))
        .await
        .unwrap();
}

async fn sign_in(tab: &Tab, username: &str) {
    tab.open("admin/login").await;
    tab.fill("input[name=username]", username).await;
    tab.fill("input[name=password]", PASSWORD).await;
    tab.press("Sign in").await;
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn totp_code(key: &str, at: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(key.replace(' ', "")).unwrap();
    totp_rs::Builder::new().with_secret(secret).build().unwrap().generate(at).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_enrolment_then_sign_in_with_a_code_and_with_the_backup_code() {
    let extra = "twofa:\n  force_admins: true\n";
    run("forced_enrolment_then_sign_in_with_a_code_and_with_the_backup_code", extra, |suite| async move {
        admin(&suite.server, "alice", AdminPermission::ALL).await;
        let tab = suite.browser("alice").await;

        // A wrong password: the users' words, nothing about which part was wrong.
        tab.open("admin/login").await;
        tab.fill("input[name=username]", "alice").await;
        tab.fill("input[name=password]", "not the password").await;
        tab.press("Sign in").await;
        tab.sees("Login details incorrect").await;

        // The password is right, but two-factor is required and alice has none: enrolment
        // first, and no admin page opens before it is done.
        sign_in(&tab, "alice").await;
        assert_eq!(tab.path().await, "/admin/security");
        tab.sees("required for administrators").await;
        tab.open("admin/clients").await;
        assert_eq!(tab.path().await, "/admin/security", "enrolment comes before any admin page");
        tab.press("Set up an authenticator app").await;
        let key = tab.find("#totp-key").await.text().await.unwrap();
        let enrolled_at = unix_now();
        tab.fill("input[name=code]", &totp_code(&key, enrolled_at)).await;
        tab.press("Turn on two-factor").await;
        assert_eq!(tab.path().await, "/admin/");
        tab.sees("Two-factor authentication is on").await;
        let backup = tab.find("#backup-code").await.text().await.unwrap();
        assert_eq!(backup.len(), 19, "four groups of four: {backup}");
        tab.press("Log out").await;
        assert_eq!(tab.path().await, "/admin/login");
        tab.open("admin/clients").await;
        assert_eq!(tab.path().await, "/admin/login", "signed out");

        // A code from the app (the next step's: the enrolment spent this one).
        sign_in(&tab, "alice").await;
        assert_eq!(tab.path().await, "/admin/login/2fa");
        tab.snapshot("admin-sign-in-2fa").await;
        tab.fill("input[name=code]", &totp_code(&key, enrolled_at)).await;
        tab.press("Verify").await;
        tab.sees("not valid, or was already used").await;
        tab.fill("input[name=code]", &totp_code(&key, enrolled_at + 30)).await;
        tab.press("Verify").await;
        assert_eq!(tab.path().await, "/admin/");
        tab.press("Log out").await;

        // The device is lost: the backup code, in lower case without dashes; a new one at once.
        sign_in(&tab, "alice").await;
        tab.fill("input[name=backup_code]", &backup.replace('-', "").to_lowercase()).await;
        tab.press("Use backup code").await;
        assert_eq!(tab.path().await, "/admin/");
        tab.sees("You signed in with your backup code").await;
        let next = tab.find("#backup-code").await.text().await.unwrap();
        assert_ne!(next, backup);
        tab.press("Log out").await;
        sign_in(&tab, "alice").await;
        tab.fill("input[name=backup_code]", &backup).await;
        tab.press("Use backup code").await;
        tab.sees("That backup code is not valid").await;
    })
    .await;
}

/// Duo for admins, as for users: under `force_admins` an admin chooses Duo while enrolling,
/// signs in again, and Duo's Universal Prompt (the fake Duo approving at once) brings them back
/// to the admin area through the admin callback — under the pages' Content-Security-Policy,
/// which must let the sign-in's redirects reach Duo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_chooses_duo_while_enrolling_and_signs_in_through_it() {
    let fake = crate::support::duo::start(false).await;
    let extra = fake.config().replace("twofa:\n", "twofa:\n  force_admins: true\n");
    run("an_admin_chooses_duo_while_enrolling_and_signs_in_through_it", &extra, |suite| async move {
        admin(&suite.server, "alice", AdminPermission::ALL).await;
        let tab = suite.browser("alice").await;
        sign_in(&tab, "alice").await;
        assert_eq!(tab.path().await, "/admin/security");
        tab.press("Use Duo").await;
        assert_eq!(tab.path().await, "/admin/login");
        tab.sees("Duo is now your second factor. Sign in again to use it.").await;

        sign_in(&tab, "alice").await;
        assert_eq!(tab.path().await, "/admin/", "through Duo's prompt and the admin callback");
        tab.open("admin/clients").await;
        assert_eq!(tab.path().await, "/admin/clients");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_clients_manage_meets_access_denied_naming_it() {
    run("a_role_without_clients_manage_meets_access_denied_naming_it", "", |suite| async move {
        let server = &suite.server;
        let (_, client_id) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
        admin(server, "viewer", &[AdminPermission::ClientsView]).await;
        let tab = suite.browser("viewer").await;
        sign_in(&tab, "viewer").await;

        // The menu shows only what the role allows.
        let menu = tab.find("header").await.text().await.unwrap();
        assert!(menu.contains("Clients"), "{menu}");
        for hidden in ["Users", "Settings", "System Health"] {
            assert!(!menu.contains(hidden), "{hidden} is not offered to this role: {menu}");
        }
        tab.follow("Clients").await;
        tab.follow("Ann Hosting").await;
        tab.sees("Ann Hosting").await;
        assert!(!tab.text().await.contains("Edit details"), "no button the role cannot use");

        // A link from a colleague: the seed's words, the permission and the role named.
        tab.open(&format!("admin/clients/{client_id}/edit")).await;
        let text = tab.sees("Oops! Access Denied").await;
        assert!(text.contains("clients.manage") && text.contains("“viewer role”"), "{text}");
        tab.snapshot("admin-access-denied").await;
        tab.open("admin/settings/roles").await;
        tab.sees("settings.manage").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_client_and_managing_its_users_tab() {
    run("adding_a_client_and_managing_its_users_tab", "", |suite| async move {
        let server = &suite.server;
        server.client_with_owner("bob@example.com", "Bob Ltd").await;
        admin(server, "alice", AdminPermission::ALL).await;
        let tab = suite.browser("alice").await;
        sign_in(&tab, "alice").await;

        tab.follow("Clients").await;
        tab.follow("Add a client").await;
        tab.fill("input[name=first_name]", "Carol").await;
        tab.fill("input[name=last_name]", "Jones").await;
        tab.fill("input[name=company]", "Carol Cloud").await;
        tab.fill("input[name=email]", "carol@example.com").await;
        tab.press("Add client").await;
        tab.sees("Client Carol Cloud was added").await;
        let profile = tab.path().await;
        assert!(profile.starts_with("/admin/clients/"), "{profile}");
        tab.sees("carol@example.com (owner)").await;

        // Associate an existing user with one permission.
        tab.fill("#associate input[name=email]", "bob@example.com").await;
        tab.set_checked("#associate input[value=invoices]", true).await;
        tab.press("Associate user").await;
        tab.sees("bob@example.com can now work in this client").await;
        let bob_invoices = tab.find("tr[data-email='bob@example.com'] input[value=invoices]").await;
        assert!(bob_invoices.is_selected().await.unwrap());

        // Invite by email: pending until accepted.
        tab.fill("#invite input[name=email]", "dave@example.com").await;
        tab.press("Send invitation").await;
        tab.sees("An invitation was sent to dave@example.com").await;
        tab.sees("Pending invitations").await;

        // One owner: making bob the owner makes carol a user, who can then be removed.
        tab.press_in("form[action$='/owner']", "Make owner").await;
        tab.sees("bob@example.com now owns this client").await;
        tab.sees("bob@example.com (owner)").await;
        tab.eval("document.getElementById('users').scrollIntoView()").await;
        tab.snapshot("admin-client-users").await;
        tab.press_in("form[action$='/remove']", "Remove").await;
        tab.sees("The user no longer works in this client").await;
        assert!(!tab.text().await.contains("carol@example.com (owner)"));

        // Search finds it by company; the other client does not match.
        tab.follow("Clients").await;
        tab.fill("input[name=q]", "cloud").await;
        tab.press("Search").await;
        let text = tab.sees("1 client(s) matching").await;
        assert!(text.contains("Carol Cloud") && !text.contains("Bob Ltd"), "{text}");
    })
    .await;
}

/// Staff add a user (who gets a link to set their own password) and edit another's details;
/// a new login email after the re-authentication window first asks the admin to confirm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_user_and_editing_a_users_details() {
    run("adding_a_user_and_editing_a_users_details", "", |suite| async move {
        let server = &suite.server;
        server.client_with_owner("bob@example.com", "Bob Ltd").await;
        admin(server, "alice", AdminPermission::ALL).await;
        let tab = suite.browser("alice").await;
        sign_in(&tab, "alice").await;

        tab.follow("Users").await;
        tab.follow("Add user").await;
        tab.fill("input[name=first_name]", "Nia").await;
        tab.fill("input[name=last_name]", "Ode").await;
        tab.fill("input[name=email]", "nia@example.com").await;
        tab.press("Add user").await;
        tab.sees("User nia@example.com was added. A link to set their password was sent to them.").await;
        tab.sees("Password: not set").await;

        tab.follow("Users").await;
        tab.follow("bob@example.com").await;
        tab.follow("Edit details").await;
        tab.fill("input[name=last_name]", "Baker").await;
        tab.snapshot("admin-user-edit").await;
        tab.press("Save").await;
        tab.sees("bob@example.com's details are saved.").await;
        tab.sees("Baker bob@example.com").await;

        // Six minutes on, a new login email needs the admin's password first.
        server.state.db().clock().advance(std::time::Duration::from_secs(6 * 60));
        tab.follow("Edit details").await;
        tab.fill("input[name=email]", "bob@baker.example").await;
        tab.press("Save").await;
        tab.sees("hands its password resets to the new address").await;
        tab.fill("input[name=password]", PASSWORD).await;
        tab.press("Confirm").await;
        tab.follow("Users").await;
        tab.follow("bob@example.com").await;
        tab.follow("Edit details").await;
        tab.fill("input[name=email]", "bob@baker.example").await;
        tab.press("Save").await;
        tab.sees("bob@baker.example's details are saved.").await;
    })
    .await;
}

/// Match details on a client's Users tab, both ways — client → user refused, saying why, when
/// the client's email is another user's login, and the name and language copied instead — then
/// the user page's "Send password reset".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_details_both_ways_and_sending_a_reset() {
    run("match_details_both_ways_and_sending_a_reset", "", |suite| async move {
        let server = &suite.server;
        let (ann, client) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
        server.client_with_owner("bob@example.com", "Bob Ltd").await;
        let actor = Actor::system("test");
        let details = gatehouse::accounts::ClientUpdate {
            first_name: Some("Annabel".into()),
            email: Some("bob@example.com".into()),
            ..Default::default()
        };
        server.accounts().update_client(&actor, client, details).await.unwrap();
        admin(server, "alice", AdminPermission::ALL).await;
        let tab = suite.browser("alice").await;
        sign_in(&tab, "alice").await;
        tab.open(&format!("admin/clients/{client}")).await;
        // Match details is folded under each user: unfold it as a person clicks its summary.
        let unfold = || tab.eval("document.querySelectorAll('details').forEach(d => d.open = true)");

        unfold().await;
        tab.press("Copy client → user").await;
        tab.sees("is the login of another user").await;
        unfold().await;
        tab.press("Copy name and language → user").await;
        tab.sees("The client's name and language were copied to the user.").await;
        assert_eq!(server.accounts().user(ann).await.unwrap().first_name, "Annabel");
        unfold().await;
        tab.press("Copy user → client").await;
        tab.sees("The user's details were copied to the client.").await;
        assert_eq!(server.accounts().client(client).await.unwrap().email, "ann@example.com");

        tab.open(&format!("admin/users/{ann}")).await;
        tab.press("Send password reset").await;
        tab.sees("A password reset link was sent to ann@example.com.").await;
    })
    .await;
}

/// Every Settings form as staff use it: a banned domain added and removed, a security question
/// added and removed, an API token created (shown once) and revoked, a role created, an admin
/// disabled and enabled again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_settings_form_does_what_it_says() {
    run("every_settings_form_does_what_it_says", "", |suite| async move {
        admin(&suite.server, "alice", AdminPermission::ALL).await;
        let tab = suite.browser("alice").await;
        sign_in(&tab, "alice").await;
        tab.follow("Settings").await;
        tab.fill("input[name=domain]", "mailinator.com").await;
        tab.press("Ban domain").await;
        tab.sees("Sign-ups from mailinator.com are refused.").await;
        tab.press("Remove").await;
        tab.sees("mailinator.com is no longer banned.").await;

        tab.follow("Security questions").await;
        tab.fill("input[name=question]", "Name of your first pet?").await;
        tab.press("Add question").await;
        tab.sees("The question was added.").await;
        tab.press("Remove").await;
        tab.sees("The question was removed.").await;

        tab.follow("Roles").await;
        tab.fill("form:not(.role) input[name=name]", "Support").await;
        tab.set_checked("form:not(.role) input[value='users.view']", true).await;
        tab.press("Create role").await;
        tab.sees("The role Support is saved.").await;

        tab.follow("API tokens").await;
        tab.fill("input[name=name]", "monitoring").await;
        tab.press("Create token").await;
        let shown = tab.sees("Copy it now, it is shown only once").await;
        assert!(shown.contains("gh_"), "the token is shown: {shown}");
        tab.press("Revoke").await;
        tab.sees("Token monitoring is revoked.").await;

        // Bob, signed in on his own browser, is disabled from the Admins page: his next page is
        // the sign-in page; enabled again, he signs in as before.
        admin(&suite.server, "bob", &[AdminPermission::ClientsView]).await;
        let bob = suite.browser("bob").await;
        sign_in(&bob, "bob").await;
        bob.arrives_at("/admin/").await;
        tab.follow("Admins").await;
        tab.press("Disable bob").await;
        tab.sees("bob is disabled; 1 session(s) ended.").await;
        bob.open("admin/clients").await;
        bob.arrives_at("/admin/login").await;
        tab.press("Enable bob").await;
        tab.sees("bob is enabled again.").await;
        sign_in(&bob, "bob").await;
        bob.arrives_at("/admin/").await;
    })
    .await;
}

/// Through `contrib/nginx/gatehouse.conf` as shipped (TLS with a certificate made here): plain
/// http is redirected to https, a person signs in to the client area and an admin to the admin
/// area, and gatehouse sees the visitor, not nginx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_shipped_nginx_configuration_people_and_staff_sign_in() {
    let Some(shipped) = crate::support::nginx::Shipped::reserve() else { return };
    let extra = format!(
        "system_url: \"{}\"\ntrusted_proxies:\n  header: X-Forwarded-For\n  ranges: [\"127.0.0.1/32\"]\n",
        shipped.system_url()
    );
    let (http, base) = (shipped.http.addr, shipped.system_url());
    run("through_the_shipped_nginx_configuration_people_and_staff_sign_in", &extra, |suite| async move {
        let server = &suite.server;
        let nginx = shipped.start(server.addr);
        server.client_with_owner("ann@example.com", "Ann Hosting").await;
        admin(server, "alice", AdminPermission::ALL).await;
        let args = ["--host-resolver-rules=MAP billing.example.com 127.0.0.1", "--ignore-certificate-errors"];

        let person = suite.browser_with("ann", &args, &base).await;
        person.open(&format!("http://billing.example.com:{}/login", http.port())).await;
        assert!(person.client.current_url().await.unwrap().as_str().starts_with(&base), "http is sent to https");
        person.fill("input[name=email]", "ann@example.com").await;
        person.fill("input[name=password]", PASSWORD).await;
        person.press("Log in").await;
        person.sees("Ann Hosting").await;
        person.sees("owner of this account").await;

        let staff = suite.browser_with("alice", &args, &base).await;
        sign_in(&staff, "alice").await;
        staff.follow("Users").await;
        staff.sees("ann@example.com").await;
        drop(nginx);

        // The visitor as nginx named them (loopback here), and https as nginx said.
        server.state.flush().await;
        let seen =
            gatehouse::net::observations::recent(server.state.db(), &server.state.loaded.fingerprint()).await.unwrap();
        assert!(seen.iter().any(|o| o.scheme == "https" && o.scheme_from_proxy.0), "{seen:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_as_client_opens_a_new_tab_with_the_banner() {
    run("log_in_as_client_opens_a_new_tab_with_the_banner", "", |suite| async move {
        let server = &suite.server;
        let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
        admin(server, "alice", &[AdminPermission::UsersView, AdminPermission::UsersImpersonate]).await;
        let tab = suite.browser("alice").await;
        sign_in(&tab, "alice").await;
        tab.follow("Users").await;
        tab.follow("ann@example.com").await;
        let admin_window = tab.client.window().await.unwrap();
        tab.find("#login-as-client").await.click().await.unwrap();

        // The link opens in a new tab; the admin area stays open in the first.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let new = loop {
            let windows = tab.client.windows().await.unwrap();
            if let Some(w) = windows.into_iter().find(|w| *w != admin_window) {
                break w;
            }
            assert!(std::time::Instant::now() < deadline, "no new tab opened");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        tab.client.switch_to_window(new).await.unwrap();
        tab.press("Continue").await;
        assert_eq!(tab.path().await, "/clientarea");
        tab.sees("An administrator is signed in as this user").await;
        tab.sees("Ann Hosting").await;
        let actions = server.audit_actions(user_id).await;
        assert!(actions.iter().any(|(a, _)| a == "user.impersonated"), "audited: {actions:?}");

        // The admin's own session is untouched by the client-area one.
        tab.client.switch_to_window(admin_window).await.unwrap();
        tab.open("admin/").await;
        assert_eq!(tab.path().await, "/admin/");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_health_shows_the_cloudflare_fault_and_applies_the_fix() {
    // nginx on this machine is trusted; CloudFlare in front of it is not.
    let trusted_nginx = "trusted_proxies:\n  ranges: [\"127.0.0.1/32\"]\n";
    run("system_health_shows_the_cloudflare_fault_and_applies_the_fix", trusted_nginx, |suite| async move {
        let server = &suite.server;
        server.client_with_owner("ann@example.com", "Ann Hosting").await;
        admin(server, "alice", AdminPermission::ALL).await;
        // Visitors arrive through CloudFlare, which nobody trusted: nginx says CloudFlare's edge
        // connected to it (a CloudFlare address vouches), and CloudFlare's headers are there.
        let mut visitor = server.browser();
        visitor.header("x-forwarded-for", "173.245.48.1");
        visitor.header("cf-ray", "8f1c2a3b4c5d6e7f-FRA");
        visitor.header("cf-connecting-ip", "203.0.113.50");
        assert_eq!(visitor.login("ann@example.com", PASSWORD).await.status, 303);
        server.state.flush().await;

        let tab = suite.browser("alice").await;
        sign_in(&tab, "alice").await;
        tab.follow("System Health").await;
        let text = tab.sees("There is a problem with your CloudFlare® trusted proxies configuration").await;
        assert!(
            text.contains("running behind a CloudFlare proxy, but you have not configured proxy settings"),
            "{text}"
        );
        let problem = tab.find("#check-proxy\\.cloudflare").await.text().await.unwrap();
        assert!(problem.contains("came from CloudFlare"), "the evidence is the observed traffic: {problem}");
        tab.snapshot("admin-health-cloudflare").await;

        // The one click shows the change before making it.
        tab.follow("Apply settings now").await;
        let change = tab.find("#change").await.text().await.unwrap();
        assert!(change.contains("+  cloudflare: true") && change.contains("CF-Connecting-IP"), "{change}");
        tab.press("Apply this change").await;
        assert_eq!(tab.path().await, "/admin/health");
        let text = tab.sees("proxy.cloudflare now: pass").await;
        assert!(!text.contains("There is a problem with your CloudFlare"), "the notice is gone:\n{text}");

        let file = std::fs::read_to_string(server.dir.path().join("gatehouse.yaml")).unwrap();
        assert!(file.contains("cloudflare: true") && file.contains("CF-Connecting-IP"), "{file}");
        let backups = std::fs::read_dir(server.dir.path()).unwrap().flatten();
        assert!(backups.into_iter().any(|e| e.file_name().to_string_lossy().contains(".bak-")), "a backup is kept");
        assert!(server.state.trusted().header_name().eq_ignore_ascii_case("cf-connecting-ip"), "taken at once");
    })
    .await;
}
