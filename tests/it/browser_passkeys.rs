//! Passkeys in Chromium, with WebDriver's virtual authenticator standing in for a fingerprint
//! reader: added as a second factor and used after the password; a discoverable one signing in
//! with no password at all (the login form's autofill); a second one; one removed and refused;
//! an admin the same. On `http://localhost:PORT`, a secure context: WebAuthn refuses IP addresses.

use crate::support::chrome::{Suite, Tab, run};
use crate::support::web::PASSWORD;
use gatehouse::accounts::{Actor, AdminPermission};

/// A server whose system_url is `localhost`, so passkeys are on.
const ON_LOCALHOST: &str = "system_url: \"http://localhost:{port}/\"\n";

/// A browser that opens pages under `http://localhost:PORT/`.
async fn browser(suite: &Suite, label: &str) -> Tab {
    let base = format!("http://localhost:{}/", suite.server.addr.port());
    suite.browser_with(label, &[], &base).await
}

/// The names in the passkeys table of a security page.
async fn passkey_names(tab: &Tab) -> Vec<String> {
    let rows = tab
        .eval("return [...document.querySelectorAll('#passkeys tbody tr td:first-child')].map(c => c.innerText)")
        .await;
    rows.as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect()
}

/// Adds a passkey named `name` on the security page at `path`.
async fn add_passkey(tab: &Tab, path: &str, name: &str) {
    tab.open(path).await;
    tab.fill("form[data-passkey=create] input[name=name]", name).await;
    tab.press("Add a passkey").await;
    tab.sees(&format!("The passkey \"{name}\" is added")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_after_the_password_then_one_alone_and_a_removed_one_refused() {
    run("a_passkey_after_the_password_then_one_alone_and_a_removed_one_refused", ON_LOCALHOST, |suite| async move {
        suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
        let ann = browser(&suite, "ann").await;
        ann.open("login").await;
        // A security key: it cannot keep a passkey that names its account.
        let key = ann.add_authenticator(false).await;
        ann.fill("input[name=email]", "ann@example.com").await;
        ann.fill("input[name=password]", PASSWORD).await;
        ann.press("Log in").await;
        assert_eq!(ann.path().await, "/clientarea");

        add_passkey(&ann, "account/security", "Security key").await;
        assert_eq!(passkey_names(&ann).await, ["Security key"]);
        assert_eq!(ann.authenticator_credentials(&key).await.len(), 1);

        // The password alone no longer signs in: the passkey is owed, and nothing else is asked.
        ann.press("Log out").await;
        ann.fill("input[name=email]", "ann@example.com").await;
        ann.fill("input[name=password]", PASSWORD).await;
        ann.press("Log in").await;
        assert_eq!(ann.path().await, "/login/2fa");
        let page = ann.sees("Use a passkey").await;
        assert!(!page.contains("Backup code"), "a passkey is all this sign-in takes:\n{page}");
        ann.press("Use a passkey").await;
        assert_eq!(ann.path().await, "/clientarea");

        // A second passkey, on a device that keeps passkeys (a phone): it signs in alone.
        ann.remove_authenticator(&key).await;
        let phone = ann.add_authenticator(true).await;
        add_passkey(&ann, "account/security", "Phone").await;
        assert_eq!(passkey_names(&ann).await, ["Phone", "Security key"]);
        ann.press("Log out").await;
        // The login form offers the phone's passkey in its autofill; choosing it signs in.
        ann.arrives_at("/clientarea").await;
        // In her one account, as a password sign-in would start her (its clients read once).
        ann.sees("owner of this account").await;
        ann.open("account/security").await;
        let last_used = ann.eval("return document.querySelector('#passkeys tbody tr td:nth-child(3)').innerText").await;
        assert_ne!(last_used.as_str(), Some("never"), "the phone's passkey was just used: its last use is shown");

        // Removed, it is refused, though the phone still offers it.
        ann.press_in("form[action$='/remove']", "Remove").await;
        ann.sees("The passkey is removed").await;
        assert_eq!(passkey_names(&ann).await, ["Security key"]);
        assert_eq!(ann.authenticator_credentials(&phone).await.len(), 1, "the phone still has it");
        ann.press("Log out").await;
        ann.comes_to_show("That passkey was not accepted").await;
        ann.find("input[name=password]").await;
        ann.open("clientarea").await;
        assert!(ann.path().await.starts_with("/login"), "not signed in");

        let mail = gatehouse::mail::for_recipient(suite.server.accounts().db(), "ann@example.com").await.unwrap();
        let subjects: Vec<&str> = mail.iter().map(|m| m.subject.as_str()).collect();
        assert!(subjects.contains(&"A passkey was added to your account"), "{subjects:?}");
        assert!(subjects.contains(&"A passkey was removed from your account"), "{subjects:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_signs_in_with_a_passkey_after_the_password_and_with_one_alone() {
    run("an_admin_signs_in_with_a_passkey_after_the_password_and_with_one_alone", ON_LOCALHOST, |suite| async move {
        let actor = Actor::system("test");
        let set = [AdminPermission::ClientsView].into_iter().collect();
        let accounts = suite.server.accounts();
        accounts.create_role(&actor, &gatehouse::accounts::Grantor::Operator, "viewer", &set).await.unwrap();
        accounts
            .create_admin(
                &actor,
                &gatehouse::accounts::Grantor::Operator,
                "robin",
                "robin@example.com",
                "viewer",
                Some(PASSWORD),
            )
            .await
            .unwrap();
        let robin = browser(&suite, "robin").await;
        let sign_in = async |tab: &Tab| {
            tab.fill("input[name=username]", "robin").await;
            tab.fill("input[name=password]", PASSWORD).await;
            tab.press("Sign in").await;
        };
        robin.open("admin/login").await;
        let key = robin.add_authenticator(false).await;
        sign_in(&robin).await;
        assert_eq!(robin.path().await, "/admin/");
        add_passkey(&robin, "admin/security", "Security key").await;

        robin.press("Log out").await;
        sign_in(&robin).await;
        assert_eq!(robin.path().await, "/admin/login/2fa");
        robin.press("Use a passkey").await;
        assert_eq!(robin.path().await, "/admin/");

        robin.remove_authenticator(&key).await;
        robin.add_authenticator(true).await;
        add_passkey(&robin, "admin/security", "Laptop").await;
        robin.press("Log out").await;
        robin.arrives_at("/admin/").await;
        let used =
            accounts.audit_search(None, Some(gatehouse::accounts::AuditAction::AdminPasskeyOk), 10).await.unwrap();
        assert_eq!(used.len(), 2, "a second factor, then a sign-in alone");

        // Removed, the laptop's passkey opens the admin area no more.
        robin.open("admin/security").await;
        assert_eq!(passkey_names(&robin).await, ["Laptop", "Security key"]);
        robin.press_in("form[action$='/remove']", "Remove").await;
        robin.sees("The passkey is removed").await;
        assert_eq!(passkey_names(&robin).await, ["Security key"]);
        robin.press("Log out").await;
        robin.comes_to_show("That passkey was not accepted").await;
        robin.find("input[name=username]").await;
    })
    .await;
}

/// The adversary: a session not proven recently (a stolen cookie) cannot add a passkey — the
/// ceremony is refused before the browser is asked; a user's passkey opens nothing in the admin
/// area, though the browser offers it there (one site, one relying party); and one answer
/// posted ten times at once signs in once: the ceremony is taken once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_session_adds_none_a_users_passkey_is_no_admins_and_an_answer_counts_once() {
    run(
        "a_stale_session_adds_none_a_users_passkey_is_no_admins_and_an_answer_counts_once",
        ON_LOCALHOST,
        |suite| async move {
            suite.server.client_with_owner("ann@example.com", "Ann Hosting").await;
            let ann = browser(&suite, "ann").await;
            ann.open("login").await;
            ann.add_authenticator(true).await;
            ann.fill("input[name=email]", "ann@example.com").await;
            ann.fill("input[name=password]", PASSWORD).await;
            ann.press("Log in").await;

            // Six minutes later the sign-in is no proof any more: the form says what to do.
            suite.server.state.db().clock().advance(std::time::Duration::from_secs(6 * 60));
            ann.open("account/security").await;
            ann.fill("form[data-passkey=create] input[name=name]", "Stolen").await;
            ann.find("form[data-passkey=create] button").await.click().await.unwrap();
            ann.comes_to_show("confirm it is you first").await;
            assert!(passkey_names(&ann).await.is_empty());

            // Confirmed with the password, the passkey is added.
            ann.follow("confirm it is you").await;
            ann.fill("input[name=password]", PASSWORD).await;
            ann.press("Confirm").await;
            add_passkey(&ann, "account/security", "Phone").await;

            // At the admin sign-in the browser offers Ann's passkey; it is not an admin's.
            ann.open("admin/login").await;
            ann.comes_to_show("That passkey was not accepted").await;
            ann.find("input[name=username]").await;

            // One answer, posted ten times at once from a visitor's login page (one that does not
            // offer the passkey by itself: it shows an error).
            ann.client.delete_all_cookies().await.unwrap();
            ann.open("login?expired=1").await;
            ann.sees("Your session has ended").await;
            let accounts = suite.server.accounts();
            let passkey_sign_ins = async || {
                let ok = gatehouse::accounts::AuditAction::PasskeyOk;
                accounts.audit_search(None, Some(ok), 100).await.unwrap().len()
            };
            let before = passkey_sign_ins().await;
            let statuses = ann.client.execute_async(REPLAY, vec![]).await.unwrap();
            assert_eq!(statuses.as_array().map(Vec::len), Some(10), "{statuses}");
            assert_eq!(passkey_sign_ins().await - before, 1, "ten posts of one answer sign in once");
        },
    )
    .await;
}

/// In the login page: a passkey ceremony answered by the browser's authenticator, the answer
/// then posted ten times at once. Resolves to the ten response statuses.
const REPLAY: &str = r#"
const done = arguments[arguments.length - 1];
const bytes = (t) => { const b = t.replace(/-/g, "+").replace(/_/g, "/"); return Uint8Array.from(atob(b + "===".slice((b.length + 3) % 4)), (c) => c.charCodeAt(0)).buffer; };
const text = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
(async () => {
  const csrf = document.querySelector("form[data-passkey] input[name=csrf_token]").value;
  const asked = await fetch("/login/passkey/options", { method: "POST", body: new URLSearchParams({ csrf_token: csrf }) });
  const { ceremony, options } = await asked.json();
  const key = options.publicKey;
  key.challenge = bytes(key.challenge);
  const c = await navigator.credentials.get({ publicKey: key });
  const credential = JSON.stringify({ id: c.id, rawId: text(c.rawId), type: c.type, response: {
    authenticatorData: text(c.response.authenticatorData), clientDataJSON: text(c.response.clientDataJSON),
    signature: text(c.response.signature), userHandle: c.response.userHandle ? text(c.response.userHandle) : null } });
  const body = new URLSearchParams({ csrf_token: csrf, ceremony, credential });
  const posts = Array.from({ length: 10 }, () => fetch("/login/passkey", { method: "POST", body, redirect: "manual" }));
  done((await Promise.all(posts)).map((r) => r.status));
})().catch((e) => done(String(e)));
"#;
