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
        ann.open("account/security").await;
        let text = ann.sees("Phone").await;
        assert!(!text.contains("Phone never"), "its last use is shown:\n{text}");

        // Removed, it is refused, though the phone still offers it.
        ann.press_in("form[action$='/remove']", "Remove").await;
        ann.sees("The passkey is removed").await;
        assert_eq!(passkey_names(&ann).await, ["Security key"]);
        assert_eq!(ann.authenticator_credentials(&phone).await.len(), 1, "the phone still has it");
        ann.press("Log out").await;
        ann.comes_to_show("That passkey was not accepted").await;
        assert_eq!(ann.path().await, "/login");
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
    })
    .await;
}
