//! The client area as a person uses it: headless Chromium, driven through chromedriver, against
//! a real `gatehouse serve` on 127.0.0.1. Every flow clicks what a person clicks and reads what a
//! person reads; nothing here talks to the server except through the browser (set-up aside).
//!
//! Needs `chromium` and `chromium-driver` (Debian); see `support/chrome.rs` for what happens
//! without them.

use crate::support::chrome::{Suite, Tab, run};
#[allow(unused_imports)]
use crate::support::web::{PASSWORD, admin_token, api};
#[allow(unused_imports)]
use gatehouse::accounts::{Actor, AdminPermission, Permissions};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// Logs in through the login form.
async fn log_in(tab: &Tab, email: &str, password: &str) {
    tab.open("login").await;
    tab.fill("input[name=email]", email).await;
    tab.fill("input[name=password]", password).await;
    tab.press("Log in").await;
}

async fn log_out(tab: &Tab) {
    tab.press("Log out").await;
    assert_eq!(tab.path().await, "/login");
}

/// Now, as Unix seconds.
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The TOTP code of `key` (base32, spaces allowed) at Unix time `at`, as an authenticator app
/// computes it.
fn totp_code(key: &str, at: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(key.replace(' ', "")).unwrap();
    totp_rs::Builder::new().with_secret(secret).build().unwrap().generate(at).to_string()
}

/// Delivers the outbox to the spool (what `gatehouse cron` does) and returns the first link in
/// the newest message to `to`, read from the `.eml` file as a mail client would decode it.
async fn mailed_link(suite: &Suite, to: &str) -> String {
    let server = &suite.server;
    let cron = gatehouse::cron::Cron { loaded: &server.state.loaded, services: &server.state.services };
    let mut spooled = Vec::new();
    for _ in 0..200 {
        // The reset mail is queued in the background after the form answers.
        cron.run(Some(gatehouse::cron::Job::Mail)).await.unwrap();
        let dir = &server.state.loaded.config.mail.spool_dir;
        spooled = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        spooled.sort();
        let found = spooled.iter().rev().find_map(|path| {
            let raw = std::fs::read(path).unwrap();
            let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
            let addressed = message.to()?.first()?.address()? == to;
            addressed.then(|| message.body_text(0).unwrap().into_owned())
        });
        if let Some(text) = found {
            let at = text.find("http").unwrap_or_else(|| panic!("no link in the mail to {to}:\n{text}"));
            return text[at..].split_whitespace().next().unwrap().to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no mail to {to} in the spool ({spooled:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_then_right_password_then_logout() {
    run("wrong_then_right_password_then_logout", "", |suite| async move {
        suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
        let tab = suite.browser("ann").await;

        log_in(&tab, "ann@example.com", "not my password").await;
        assert_eq!(tab.path().await, "/login");
        tab.sees("Login details incorrect").await;
        // The email stays filled in; only the password is asked again.
        let kept = tab.find("input[name=email]").await.prop("value").await.unwrap();
        assert_eq!(kept.as_deref(), Some("ann@example.com"));

        tab.fill("input[name=password]", PASSWORD).await;
        tab.press("Log in").await;
        assert_eq!(tab.path().await, "/clientarea");
        tab.sees("Ann Hosting").await;
        tab.sees("owner of this account").await;

        log_out(&tab).await;
        tab.open("clientarea").await;
        assert_eq!(tab.path().await, "/login", "signed out: the client area asks for a login");
    })
    .await;
}

/// The backup code the page shows once, as written (four groups of four).
async fn shown_backup_code(tab: &Tab) -> String {
    let code = tab.find("#backup-code").await.text().await.unwrap();
    assert_eq!(code.len(), 19, "four groups of four: {code}");
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_enrolment_then_login_with_a_code_and_with_the_backup_code() {
    run("two_factor_enrolment_then_login_with_a_code_and_with_the_backup_code", "", |suite| async move {
        suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
        let tab = suite.browser("ann").await;
        log_in(&tab, "ann@example.com", PASSWORD).await;
        tab.follow("Security").await;
        tab.sees("Two-factor authentication is off").await;
        tab.press("Set up an authenticator app").await;

        // The QR code is inline SVG a screen reader can name; the key reads in groups.
        let qr = tab.find("figure svg").await;
        assert_eq!(qr.attr("role").await.unwrap().as_deref(), Some("img"));
        assert!(qr.attr("aria-label").await.unwrap().unwrap().contains("QR code"));
        let key = tab.find("#totp-key").await.text().await.unwrap();
        assert!(key.split(' ').all(|g| g.len() <= 4), "key in groups of four: {key}");
        let uri = tab.find("#totp-uri").await.text().await.unwrap();
        tab.snapshot("two-factor-setup").await;
        assert!(uri.contains(&format!("secret={}", key.replace(' ', ""))), "{uri}");

        tab.fill("input[name=code]", "000000").await;
        tab.press("Turn on two-factor").await;
        tab.sees("not valid").await;
        // Codes are computed for fixed instants, so a 30-second step ending mid-test changes nothing.
        let enrolled_at = unix_now();
        tab.fill("input[name=code]", &totp_code(&key, enrolled_at)).await;
        tab.press("Turn on two-factor").await;
        assert_eq!(tab.path().await, "/account/security", "answered with a redirect");
        tab.sees("Two-factor authentication is on").await;
        let backup = shown_backup_code(&tab).await;
        tab.client.refresh().await.unwrap();
        assert!(!tab.text().await.contains(&backup), "the backup code is shown once, not again on reload");
        log_out(&tab).await;

        // A code from the app: the next step's, since the enrolment used this one.
        log_in(&tab, "ann@example.com", PASSWORD).await;
        assert_eq!(tab.path().await, "/login/2fa");
        tab.fill("input[name=code]", &totp_code(&key, enrolled_at)).await;
        tab.press("Verify").await;
        tab.sees("not valid, or was already used").await;
        tab.fill("input[name=code]", &totp_code(&key, enrolled_at + 30)).await;
        tab.press("Verify").await;
        assert_eq!(tab.path().await, "/clientarea");
        log_out(&tab).await;

        // The backup code, typed in lower case without dashes; a new one is shown at once.
        log_in(&tab, "ann@example.com", PASSWORD).await;
        tab.fill("input[name=backup_code]", &backup.replace('-', "").to_lowercase()).await;
        tab.press("Use backup code").await;
        assert_eq!(tab.path().await, "/clientarea");
        tab.sees("You signed in with your backup code, which is now used up").await;
        let next = shown_backup_code(&tab).await;
        assert_ne!(next, backup);
        log_out(&tab).await;

        // The old one is spent; the new one works.
        log_in(&tab, "ann@example.com", PASSWORD).await;
        tab.fill("input[name=backup_code]", &backup).await;
        tab.press("Use backup code").await;
        tab.sees("That backup code is not valid").await;
        tab.fill("input[name=backup_code]", &next).await;
        tab.press("Use backup code").await;
        assert_eq!(tab.path().await, "/clientarea");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_chooser_and_switcher() {
    run("account_chooser_and_switcher", "", |suite| async move {
        let server = &suite.server;
        let (ann, _) = server.client_with_owner("ann@example.com", "First Co").await;
        let (_, second) = server.client_with_owner("bob@example.com", "Second Co").await;
        server.accounts().associate(&Actor::system("test"), ann, second, &Permissions::none()).await.unwrap();
        let tab = suite.browser("ann").await;
        log_in(&tab, "ann@example.com", PASSWORD).await;
        tab.sees("Choose an account").await;
        tab.press("Second Co").await;
        tab.sees("Second Co").await;
        let text = tab.sees("Switch account").await;
        assert!(!text.contains("owner of this account"), "Ann is not the owner of Second Co:\n{text}");
        tab.press("First Co").await;
        tab.sees("owner of this account").await;

        // A client closed while Ann works in it: its pages send her back to the client area,
        // which no longer offers it.
        tab.press("Second Co").await;
        tab.sees("Switch account").await;
        server.accounts().close_client(&Actor::system("test"), second).await.unwrap();
        tab.open("account/users").await;
        assert_eq!(tab.path().await, "/clientarea");
        let text = tab.sees("You are not working in an account now").await;
        assert!(!text.contains("Second Co"), "a closed client is not offered:\n{text}");
        // Not a dead end: the one open client is offered, and entering it works.
        tab.press("First Co").await;
        tab.sees("owner of this account").await;
        tab.follow("Users").await;
        assert_eq!(tab.path().await, "/account/users");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_invites_a_user_who_accepts_in_another_browser_then_permissions_and_removal() {
    run(
        "the_owner_invites_a_user_who_accepts_in_another_browser_then_permissions_and_removal",
        "",
        |suite| async move {
            suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
            let owner = suite.browser("owner").await;
            log_in(&owner, "ann@example.com", PASSWORD).await;
            owner.follow("Users").await;
            // Every permission by its label, each checkbox inside its label.
            let labels = owner
                .eval(
                    "return [...document.querySelectorAll('form[action$=\"users/invite\"] label.check')]
                 .map(l => [l.textContent.trim(), l.querySelector('input[type=checkbox]')?.value])",
                )
                .await;
            let labels = labels.as_array().unwrap();
            assert_eq!(labels.len(), 13, "{labels:?}");
            assert!(labels.iter().any(|l| l[0] == "View and pay invoices" && l[1] == "invoices"), "{labels:?}");

            owner.fill("form[action$='users/invite'] input[name=email]", "bob@example.com").await;
            owner.set_checked("form[action$='users/invite'] input[value=invoices]", true).await;
            owner.set_checked("form[action$='users/invite'] input[value=tickets]", true).await;
            owner.press("Send invite").await;
            owner.sees("An invitation was sent to bob@example.com").await;
            owner.sees("Pending invitations").await;
            owner.client.execute("window.scrollTo(0, document.body.scrollHeight)", vec![]).await.unwrap();
            owner.snapshot("users-invite").await;

            // Bob opens the mailed link in his own browser and registers.
            let link = mailed_link(&suite, "bob@example.com").await;
            let bob = suite.browser("bob").await;
            bob.open(&link).await;
            bob.sees("Join Ann Hosting").await;
            bob.fill("input[name=first_name]", "Bob").await;
            bob.fill("input[name=last_name]", "Ray").await;
            bob.fill("input[name=password]", "bobs own passphrase").await;
            bob.press("Register and join").await;
            assert_eq!(bob.path().await, "/login");
            bob.sees("Your login is ready and you joined Ann Hosting").await;
            log_in(&bob, "bob@example.com", "bobs own passphrase").await;
            let area = bob.sees("Ann Hosting").await;
            assert!(area.contains("invoices") && area.contains("tickets"), "{area}");

            // The owner sees Bob, no pending invitation, and changes his permissions.
            owner.follow("Users").await;
            let users = owner.sees("bob@example.com").await;
            assert!(!users.contains("Pending invitations"), "the accepted invitation is no longer pending:\n{users}");
            owner.set_checked("form[action$='/permissions'] input[value=tickets]", false).await;
            owner.set_checked("form[action$='/permissions'] input[value=domains]", true).await;
            owner.press("Save permissions").await;
            owner.sees("Permissions saved").await;
            bob.open("clientarea").await;
            let area = bob.text().await;
            assert!(area.contains("domains") && !area.contains("tickets"), "{area}");

            // Removed, Bob can no longer work in the account.
            owner.press("Remove bob@example.com").await;
            owner.sees("no longer has access").await;
            bob.open("clientarea").await;
            assert!(!bob.text().await.contains("Ann Hosting"), "Bob still sees the account");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_invitation_is_cancelled_and_its_link_stops_working() {
    run("a_pending_invitation_is_cancelled_and_its_link_stops_working", "", |suite| async move {
        suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
        let owner = suite.browser("owner").await;
        log_in(&owner, "ann@example.com", PASSWORD).await;
        owner.open("account/users").await;
        owner.fill("form[action$='users/invite'] input[name=email]", "carl@example.com").await;
        owner.press("Send invite").await;
        owner.press("Cancel invitation to carl@example.com").await;
        let text = owner.sees("The invitation to carl@example.com is cancelled").await;
        assert!(!text.contains("Pending invitations"), "{text}");
        let link = mailed_link(&suite, "carl@example.com").await;
        let carl = suite.browser("carl").await;
        carl.open(&link).await;
        carl.sees("not valid").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgotten_password_reset_by_the_mailed_link() {
    run("forgotten_password_reset_by_the_mailed_link", "", |suite| async move {
        suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
        let tab = suite.browser("ann").await;
        tab.open("login").await;
        tab.follow("Forgot your password?").await;
        tab.fill("input[name=email]", "ann@example.com").await;
        tab.press("Send reset link").await;
        tab.sees("If an account exists for that address, we have sent it a link").await;
        tab.client.refresh().await.unwrap();
        tab.sees("If an account exists").await; // a reload shows the page, it sends nothing again

        let link = mailed_link(&suite, "ann@example.com").await;
        assert!(link.starts_with(&format!("{}password/reset/pr_", suite.server.base)), "{link}");
        tab.open(&link).await;
        tab.fill("input[name=password]", "short").await;
        tab.fill("input[name=password_confirm]", "short").await;
        tab.press("Set password").await;
        tab.sees("Choose a password of at least 12 characters").await;
        tab.fill("input[name=password]", NEW_PASSWORD).await;
        tab.fill("input[name=password_confirm]", NEW_PASSWORD).await;
        tab.press("Set password").await;
        assert_eq!(tab.path().await, "/login");
        tab.sees("Your password has been changed").await;

        // The link worked once; used again, it says so and offers a new one.
        tab.open(&link).await;
        tab.sees("invalid or has expired").await;
        tab.follow("Ask for a new link").await;
        assert_eq!(tab.path().await, "/password/forgot");

        log_in(&tab, "ann@example.com", PASSWORD).await;
        tab.sees("Login details incorrect").await;
        log_in(&tab, "ann@example.com", NEW_PASSWORD).await;
        assert_eq!(tab.path().await, "/clientarea");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_signs_out_the_other_browser() {
    run("password_change_signs_out_the_other_browser", "", |suite| async move {
        suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
        let (laptop, phone) = (suite.browser("laptop").await, suite.browser("phone").await);
        log_in(&laptop, "ann@example.com", PASSWORD).await;
        log_in(&phone, "ann@example.com", PASSWORD).await;

        laptop.open("account/security").await;
        laptop.fill("input[name=current_password]", PASSWORD).await;
        laptop.fill("form[action$='/password'] input[name=password]", NEW_PASSWORD).await;
        laptop.fill("input[name=password_confirm]", "something else entirely").await;
        laptop.press("Change password").await;
        laptop.sees("The two new passwords differ").await;
        laptop.fill("input[name=current_password]", PASSWORD).await;
        laptop.fill("form[action$='/password'] input[name=password]", NEW_PASSWORD).await;
        laptop.fill("input[name=password_confirm]", NEW_PASSWORD).await;
        laptop.press("Change password").await;
        laptop.sees("Your password is changed. 1 other session(s) were signed out").await;

        phone.open("clientarea").await;
        assert!(phone.path().await.starts_with("/login"), "the other browser is signed out");
        laptop.open("clientarea").await;
        assert_eq!(laptop.path().await, "/clientarea", "this browser stays signed in");
    })
    .await;
}

/// Someone signs in with Ann's password from a browser her account does not know; she is
/// mailed, and the "this wasn't me" link in that mail, opened in her browser, ends the other
/// browser's session there and then, and sends her a link to choose a new password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_wasnt_me_signs_the_intruder_out() {
    run("this_wasnt_me_signs_the_intruder_out", "", |suite| async move {
        suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
        let (ann, intruder) = (suite.browser("ann").await, suite.browser("intruder").await);
        log_in(&ann, "ann@example.com", PASSWORD).await;
        log_in(&intruder, "ann@example.com", PASSWORD).await;
        assert_eq!(intruder.path().await, "/clientarea");

        let mail = gatehouse::mail::for_recipient(suite.server.accounts().db(), "ann@example.com").await.unwrap();
        let notice = mail.iter().find(|m| m.subject == "New sign-in to your account").expect("the new-device notice");
        assert!(notice.body.contains("Chrome") && notice.body.contains("Linux"), "{}", notice.body);
        let at = notice.body.find("http").unwrap();
        let link = notice.body[at..].split_whitespace().next().unwrap().to_string();
        assert!(link.starts_with(&format!("{}not-me/nm_", suite.server.base)), "{link}");

        ann.open(&link).await;
        ann.sees("sign everyone out of this account").await;
        ann.press("Continue").await;
        ann.sees("Everyone is signed out of your account").await;
        intruder.open("clientarea").await;
        assert!(intruder.path().await.starts_with("/login"), "the intruder is signed out");
        let mail = gatehouse::mail::for_recipient(suite.server.accounts().db(), "ann@example.com").await.unwrap();
        assert_eq!(mail[0].subject, "Reset your password", "and Ann chooses a new password next");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_and_one_is_ended_from_another_browser() {
    run("sessions_are_listed_and_one_is_ended_from_another_browser", "", |suite| async move {
        suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
        let (laptop, phone) = (suite.browser("laptop").await, suite.browser("phone").await);
        log_in(&laptop, "ann@example.com", PASSWORD).await;
        log_in(&phone, "ann@example.com", PASSWORD).await;
        laptop.follow("Sessions").await;
        let rows =
            laptop.eval("return [...document.querySelectorAll('#sessions tbody tr')].map(r => r.innerText)").await;
        let rows: Vec<String> = rows.as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows.iter().filter(|r| r.contains("This session")).count(), 1, "{rows:?}");
        assert!(
            rows.iter().all(|r| r.contains("Chrome") && r.contains("Linux") && r.contains("127.0.0.1")),
            "{rows:?}"
        );

        laptop.snapshot("sessions").await;
        laptop.press("End").await;
        laptop.sees("The session has ended").await;
        phone.open("clientarea").await;
        assert!(phone.path().await.starts_with("/login"), "the ended session is signed out");
        laptop.open("account/sessions").await;
        let rows = laptop.eval("return document.querySelectorAll('#sessions tbody tr').length").await;
        assert_eq!(rows, 1);

        // Both browsers signed in, so both are known devices; the laptop forgets the phone.
        let devices =
            laptop.eval("return [...document.querySelectorAll('#devices tbody tr')].map(r => r.innerText)").await;
        let devices: Vec<String> =
            devices.as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
        assert_eq!(devices.len(), 2, "{devices:?}");
        assert_eq!(devices.iter().filter(|r| r.contains("This browser")).count(), 1, "{devices:?}");
        let other = laptop
            .eval("return document.querySelector('#devices tbody tr:not(:has(strong)) form').getAttribute('action')")
            .await;
        let forget = other.as_str().unwrap().rsplit("account/").next().unwrap().to_string();
        laptop.press_in(&format!("form[action$='{forget}']"), "Forget").await;
        laptop.sees("That device is forgotten").await;
        let left =
            laptop.eval("return [...document.querySelectorAll('#devices tbody tr')].map(r => r.innerText)").await;
        assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
        assert!(left[0].as_str().unwrap().contains("This browser"), "{left}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impersonation_link_opens_the_client_area_with_a_banner() {
    run("an_impersonation_link_opens_the_client_area_with_a_banner", "", |suite| async move {
        let server = &suite.server;
        let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
        let token = admin_token(server, &[AdminPermission::UsersImpersonate]).await;
        let (status, link) =
            api(server, &token, reqwest::Method::POST, &format!("users/{user_id}/impersonate"), None).await;
        assert_eq!(status, 201);
        let admin = suite.browser("admin").await;
        admin.open(link["url"].as_str().unwrap()).await;
        admin.press("Continue").await;
        assert_eq!(admin.path().await, "/clientarea");
        admin.sees("An administrator is signed in as this user").await;
        admin.sees("Ann Hosting").await;
        // The link is single use.
        let again = suite.browser("again").await;
        again.open(link["url"].as_str().unwrap()).await;
        again.sees("not valid").await; // a used link shows no button to press
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_that_do_not_exist_or_cannot_be_opened_say_so_in_the_sites_layout() {
    run("pages_that_do_not_exist_or_cannot_be_opened_say_so_in_the_sites_layout", "", |suite| async move {
        let tab = suite.browser("visitor").await;
        tab.open("no/such/page").await;
        tab.sees("Page not found").await;
        tab.follow("Go to the client area").await;
        assert_eq!(tab.path().await, "/login");
        tab.open("logout").await;
        tab.sees("Logging out is done with the Log out button").await;
    })
    .await;
}

/// Fills and sends the sign-up form.
async fn sign_up(tab: &Tab, email: &str, password: &str, confirm: &str) {
    tab.open("login").await;
    tab.follow("Open an account").await;
    tab.fill("input[name=first_name]", "Dana").await;
    tab.fill("input[name=last_name]", "Field").await;
    tab.fill("input[name=company]", "Field Hosting").await;
    tab.fill("input[name=email]", email).await;
    tab.fill("input[name=password]", password).await;
    tab.fill("input[name=password_confirm]", confirm).await;
    tab.press("Open my account").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_opens_an_account_and_refuses_what_the_rules_refuse() {
    run("sign_up_opens_an_account_and_refuses_what_the_rules_refuse", "", |suite| async move {
        let server = &suite.server;
        server.accounts().ban_domain(&Actor::system("test"), "mailinator.com").await.unwrap();
        let tab = suite.browser("dana").await;

        sign_up(&tab, "dana@example.com", NEW_PASSWORD, "not the same").await;
        tab.sees("The two passwords differ").await;
        let kept = tab.find("input[name=company]").await.prop("value").await.unwrap();
        assert_eq!(kept.as_deref(), Some("Field Hosting"), "what was typed is kept");
        sign_up(&tab, "dana@example.com", "short", "short").await;
        tab.sees("Choose a password of at least 12 characters").await;
        sign_up(&tab, "dana@mailinator.com", NEW_PASSWORD, NEW_PASSWORD).await;
        tab.sees("Email addresses at mailinator.com are not accepted").await;
        let banned = server.accounts().list_banned_domains().await.unwrap();
        assert_eq!(banned[0].blocked_count, 1, "the refusal is counted");

        sign_up(&tab, "dana@example.com", NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(tab.path().await, "/login");
        tab.sees("Thank you for registering. We have sent an email to dana@example.com").await;
        assert!(mailed_link(&suite, "dana@example.com").await.ends_with("/login"), "the welcome mail links to login");
        log_in(&tab, "dana@example.com", NEW_PASSWORD).await;
        tab.sees("Field Hosting").await;
        tab.sees("owner of this account").await;
    })
    .await;
}

/// With contact details required, the form asks for them (the browser itself holds back a form
/// without them), the country is chosen from the ISO list, and the new client has them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_with_the_contact_details_the_site_requires() {
    let extra = "accounts:\n  signup_required: [city, country, phone]\n";
    run("sign_up_with_the_contact_details_the_site_requires", extra, |suite| async move {
        let tab = suite.browser("dana").await;
        tab.open("register").await;
        tab.fill("input[name=first_name]", "Dana").await;
        tab.fill("input[name=last_name]", "Field").await;
        tab.fill("input[name=email]", "dana@example.com").await;
        let valid = "return document.querySelector('form[action$=register]').checkValidity()";
        assert_eq!(tab.eval(valid).await, serde_json::json!(false), "the browser holds back a form without them");
        tab.fill("input[name=city]", "Bristol").await;
        tab.fill("input[name=phone]", "+44 117 496 0000").await;
        tab.find("select[name=country]").await.select_by_value("GB").await.unwrap();
        tab.fill("input[name=password]", NEW_PASSWORD).await;
        tab.fill("input[name=password_confirm]", NEW_PASSWORD).await;
        tab.press("Open my account").await;
        tab.sees("Thank you for registering").await;
        log_in(&tab, "dana@example.com", NEW_PASSWORD).await;
        tab.follow("Account details").await;
        assert_eq!(tab.find("input[name=city]").await.prop("value").await.unwrap().as_deref(), Some("Bristol"));
        let user = suite.server.accounts().user_by_email("dana@example.com").await.unwrap().unwrap();
        let membership = &suite.server.accounts().clients_of_user(user.id).await.unwrap()[0];
        let client = suite.server.accounts().client(membership.client_id).await.unwrap();
        assert_eq!((client.country.as_str(), client.phone.as_str()), ("GB", "+44 117 496 0000"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_with_a_taken_email_looks_the_same_and_tells_the_owner() {
    run("sign_up_with_a_taken_email_looks_the_same_and_tells_the_owner", "", |suite| async move {
        suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
        let (fresh, taken) = (suite.browser("fresh").await, suite.browser("taken").await);
        sign_up(&fresh, "new@example.com", NEW_PASSWORD, NEW_PASSWORD).await;
        sign_up(&taken, "ann@example.com", NEW_PASSWORD, NEW_PASSWORD).await;
        let fresh_text = fresh.text().await.replace("new@example.com", "EMAIL");
        let taken_text = taken.text().await.replace("ann@example.com", "EMAIL");
        assert_eq!(fresh_text, taken_text, "a visitor cannot tell a taken email from a new one");
        assert_eq!(taken.path().await, fresh.path().await);
        // Ann is told, and her password still works; the visitor's does not.
        assert!(mailed_link(&suite, "ann@example.com").await.ends_with("/login"));
        log_in(&taken, "ann@example.com", NEW_PASSWORD).await;
        taken.sees("Login details incorrect").await;
        log_in(&taken, "ann@example.com", PASSWORD).await;
        taken.sees("Ann Hosting").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_only_sites_offer_no_sign_up() {
    run("invite_only_sites_offer_no_sign_up", "accounts:\n  registration: invite_only\n", |suite| async move {
        let tab = suite.browser("visitor").await;
        tab.open("login").await;
        assert!(!tab.text().await.contains("Open an account"));
        tab.open("register").await;
        tab.sees("New accounts are opened by invitation only").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_edits_their_profile_and_email_with_their_password() {
    run("a_user_edits_their_profile_and_email_with_their_password", "", |suite| async move {
        suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
        let tab = suite.browser("ann").await;
        log_in(&tab, "ann@example.com", PASSWORD).await;
        tab.follow("Profile").await;
        tab.fill("input[name=first_name]", "Annie").await;
        tab.find("select[name=timezone] option[value='Asia/Tokyo']").await.click().await.unwrap();
        tab.find("select[name=language] option[value=de]").await.click().await.unwrap();
        tab.press("Save profile").await;
        tab.sees("Your profile is saved").await;
        assert_eq!(tab.find("input[name=first_name]").await.prop("value").await.unwrap().as_deref(), Some("Annie"));
        tab.follow("Sessions").await;
        tab.sees("JST").await; // times in the zone Ann chose

        // A new login email needs the current password, and the old address is told.
        tab.follow("Profile").await;
        tab.fill("input[name=email]", "annie@example.com").await;
        tab.press("Save profile").await;
        tab.sees("To change your email address, enter your current password correctly").await;
        tab.fill("input[name=current_password]", PASSWORD).await;
        tab.press("Save profile").await;
        tab.sees("Your profile is saved").await;
        assert!(mailed_link(&suite, "ann@example.com").await.contains("/not-me/nm_"), "the old address is told");
        log_out(&tab).await;
        log_in(&tab, "annie@example.com", PASSWORD).await;
        assert_eq!(tab.path().await, "/clientarea");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_details_are_edited_with_profile_and_read_with_contacts() {
    run("account_details_are_edited_with_profile_and_read_with_contacts", "", |suite| async move {
        let server = &suite.server;
        let (_, client) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
        let actor = Actor::system("test");
        for (email, permissions) in [("reader@example.com", "contacts"), ("none@example.com", "invoices")] {
            let new = gatehouse::accounts::NewUser {
                email: email.into(),
                first_name: "Team".into(),
                last_name: "Member".into(),
                language: String::new(),
                password: Some(PASSWORD.into()),
            };
            let user = server.accounts().create_user(&actor, new).await.unwrap();
            let permissions = Permissions::parse_list(permissions).unwrap();
            server.accounts().associate(&actor, user.id, client, &permissions).await.unwrap();
        }

        let owner = suite.browser("owner").await;
        log_in(&owner, "ann@example.com", PASSWORD).await;
        owner.follow("Account details").await;
        owner.fill("input[name=country]", "XX").await;
        owner.press("Save account details").await;
        owner.sees("`XX` is not an ISO 3166-1 alpha-2 country code").await;
        owner.fill("input[name=country]", "gb").await;
        owner.fill("input[name=phone]", "+44 20 7946 0000").await;
        owner.press("Save account details").await;
        owner.sees("The account details are saved").await;
        assert_eq!(owner.find("input[name=country]").await.prop("value").await.unwrap().as_deref(), Some("GB"));

        let reader = suite.browser("reader").await;
        log_in(&reader, "reader@example.com", PASSWORD).await;
        reader.follow("Account details").await;
        let text = reader.sees("+44 20 7946 0000").await;
        assert!(text.contains("changing them needs the profile permission"), "{text}");
        assert!(reader.client.find(fantoccini::Locator::Css("input[name=phone]")).await.is_err(), "read only");

        let other = suite.browser("other").await;
        log_in(&other, "none@example.com", PASSWORD).await;
        other.follow("Account details").await;
        other.sees("does not include its contact details").await;
    })
    .await;
}

/// system_url says `/clients/` (system_url.config's trailing slash added) while the site is
/// served at `/`: in a real browser the login form posts under /clients/, where nothing is
/// served, and the cookies' Path is /clients/ anyway. The doctor names both paths from what the
/// browser itself sent (its Referer on same-site navigation); one browser's Referer is only a
/// claim, so it asks rather than offers to move system_url (three visitors do: doctor_traffic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_url_path_the_site_is_not_served_at_is_seen_and_named() {
    run(
        "a_system_url_path_the_site_is_not_served_at_is_seen_and_named",
        "system_url: \"http://{addr}/clients/\"\n",
        |suite| async move {
            suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
            let tab = suite.browser("ann").await;
            log_in(&tab, "ann@example.com", PASSWORD).await;
            tab.sees("Page not found").await;
            assert_eq!(tab.path().await, "/clients/login", "the right password leads nowhere");

            suite.server.state.flush().await;
            let (found, _) = crate::support::doctor::check(&suite.server.state.loaded, "system_url.requests").await;
            assert_eq!(found.status, gatehouse::doctor::Status::Warn, "{}", found.message);
            assert!(found.message.contains("system_url's path is /clients/"), "{}", found.message);
            assert!(found.message.contains("/login ×"), "the browser's own Referer: {}", found.message);
            assert!(!found.fix.available, "one visitor's Referer moves nothing");
        },
    )
    .await;
}

/// A session older than the re-authentication window: the security page says to confirm first,
/// the change is sent to the confirmation form, and after the password the change goes through —
/// in a real browser, under the Content-Security-Policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_changes_ask_to_confirm_it_is_you_first() {
    run("credential_changes_ask_to_confirm_it_is_you_first", "", |suite| async move {
        suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
        let tab = suite.browser("ann").await;
        log_in(&tab, "ann@example.com", PASSWORD).await;
        let window = gatehouse::auth::REAUTH_WINDOW_SECS as u64 + 1;
        suite.server.state.db().clock().advance(std::time::Duration::from_secs(window));
        tab.open("account/security").await;
        tab.sees("confirm it is you").await;
        tab.press("Set up an authenticator app").await;
        assert_eq!(tab.path().await, "/account/security/confirm");
        tab.sees("For your security, confirm it is you").await;
        tab.fill("input[name=password]", PASSWORD).await;
        tab.press("Confirm").await;
        assert_eq!(tab.path().await, "/account/security");
        tab.sees("Confirmed.").await;
        tab.press("Set up an authenticator app").await;
        tab.sees("Scan this code with your authenticator app").await;
    })
    .await;
}

/// At a phone's width (390 px) every page fits: no page scrolls sideways, inputs and tables stay
/// inside the screen. The home page names the user's permissions as the users page does, never
/// by their internal keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_fit_a_phone_and_name_permissions_in_words() {
    run("pages_fit_a_phone_and_name_permissions_in_words", "", |suite: Suite| async move {
        let server = &suite.server;
        let (_, client) =
            server.client_with_owner("ann@example.com", "Ann Hosting with a rather long company name").await;
        let actor = Actor::system("test");
        let sub = server
            .accounts()
            .create_user(
                &actor,
                gatehouse::accounts::NewUser {
                    email: "sam.sub-user@example.com".into(),
                    first_name: "Sam".into(),
                    last_name: "Sub".into(),
                    language: String::new(),
                    password: Some(PASSWORD.into()),
                },
            )
            .await
            .unwrap();
        let some = Permissions::parse_list("invoices,manageproducts").unwrap();
        server.accounts().associate(&actor, sub.id, client, &some).await.unwrap();

        let tab = suite.browser("sam").await;
        tab.client.set_window_size(390, 844).await.unwrap();
        log_in(&tab, "sam.sub-user@example.com", PASSWORD).await;
        let home = tab.sees("Your permissions").await;
        assert!(!home.contains("manageproducts"), "internal keys are not shown: {home}");
        assert!(
            home.contains(Permissions::parse_list("manageproducts").unwrap().iter().next().unwrap().label()),
            "{home}"
        );
        let fits = "return document.documentElement.scrollWidth <= document.documentElement.clientWidth";
        for page in ["clientarea", "account/profile", "account/client", "account/security", "account/sessions"] {
            tab.open(page).await;
            assert_eq!(tab.eval(fits).await, serde_json::json!(true), "{page} scrolls sideways at 390 px");
        }
        let owner = suite.browser("ann").await;
        owner.client.set_window_size(390, 844).await.unwrap();
        log_in(&owner, "ann@example.com", PASSWORD).await;
        owner.open("account/users").await;
        assert_eq!(owner.eval(fits).await, serde_json::json!(true), "the users page scrolls sideways at 390 px");
        owner.snapshot("users-phone").await;
    })
    .await;
}

/// A user chooses a security question on the Security page; a reset by the mailed link then
/// asks it before a new password can be chosen, and a wrong answer is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_security_question_is_asked_in_a_reset() {
    run("a_chosen_security_question_is_asked_in_a_reset", "", |suite| async move {
        let server = &suite.server;
        server.client_with_owner("ann@example.com", "Ann Hosting").await;
        server.accounts().add_security_question(&Actor::system("test"), "Name of your first pet?").await.unwrap();
        let tab = suite.browser("ann").await;
        log_in(&tab, "ann@example.com", PASSWORD).await;
        tab.follow("Security").await;
        tab.fill("input[name=answer]", "Fluffy").await;
        tab.press("Save").await;
        tab.sees("Your security question is saved.").await;
        tab.sees("You have one set.").await;
        log_out(&tab).await;

        tab.follow("Forgot your password?").await;
        tab.fill("input[name=email]", "ann@example.com").await;
        tab.press("Send reset link").await;
        let link = mailed_link(&suite, "ann@example.com").await;
        tab.open(&link).await;
        tab.sees("Name of your first pet?").await;
        tab.fill("input[name=security_answer]", "Rex").await;
        tab.fill("input[name=password]", NEW_PASSWORD).await;
        tab.fill("input[name=password_confirm]", NEW_PASSWORD).await;
        tab.press("Set password").await;
        tab.sees("security question").await;
        tab.fill("input[name=security_answer]", "fluffy").await;
        tab.fill("input[name=password]", NEW_PASSWORD).await;
        tab.fill("input[name=password_confirm]", NEW_PASSWORD).await;
        tab.press("Set password").await;
        tab.sees("Your password has been changed").await;
        log_in(&tab, "ann@example.com", NEW_PASSWORD).await;
        assert_eq!(tab.path().await, "/clientarea");
    })
    .await;
}

/// With `twofa.force_clients`, a user without two-factor is sent to enrol before anything else,
/// and is let in once the app's code is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_two_factor_for_clients_enrols_before_anything_else() {
    run(
        "forced_two_factor_for_clients_enrols_before_anything_else",
        "twofa:\n  force_clients: true\n",
        |suite| async move {
            suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
            let tab = suite.browser("ann").await;
            log_in(&tab, "ann@example.com", PASSWORD).await;
            assert_eq!(tab.path().await, "/account/security");
            tab.sees("required").await;
            tab.open("clientarea").await;
            assert_eq!(tab.path().await, "/account/security", "nothing else until enrolled");
            tab.press("Set up an authenticator app").await;
            let key = tab.find("#totp-key").await.text().await.unwrap();
            tab.fill("input[name=code]", &totp_code(&key, unix_now())).await;
            tab.press("Turn on two-factor").await;
            tab.sees("Two-factor authentication is on").await;
            tab.open("clientarea").await;
            tab.sees("Ann Hosting").await;
        },
    )
    .await;
}
