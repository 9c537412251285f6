//! The client area as a person uses it: headless Chromium, driven through chromedriver, against
//! a real `gatehouse serve` on 127.0.0.1. Every flow clicks what a person clicks and reads what a
//! person reads; nothing here talks to the server except through the browser (set-up aside).
//!
//! Needs `chromium` and `chromium-driver` (Debian); see `support/chrome.rs` for what happens
//! without them.

#[path = "support/chrome.rs"]
mod chrome;
mod support;

use chrome::{Suite, Tab, run};
#[allow(unused_imports)]
use gatehouse::accounts::{Actor, AdminPermission, Permissions};
#[allow(unused_imports)]
use support::web::{PASSWORD, admin_token, api};

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

/// The TOTP code of `key` (base32, spaces allowed) for the 30-second step `offset` steps from now.
fn totp_code(key: &str, offset: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(&key.replace(' ', "")).unwrap();
    let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    totp.generate((now + offset * 30) as u64).to_string()
}

/// Delivers the outbox to the spool (what `gatehouse cron` does) and returns the first link in
/// the newest message to `to`, read from the `.eml` file as a mail client would decode it.
async fn mailed_link(suite: &Suite, to: &str) -> String {
    let server = &suite.server;
    let cron = gatehouse::cron::Cron { loaded: &server.state.loaded, auth: server.auth() };
    let mut spooled = Vec::new();
    for _ in 0..200 {
        // The reset mail is queued in the background after the form answers.
        cron.run(Some("mail")).await.unwrap();
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
