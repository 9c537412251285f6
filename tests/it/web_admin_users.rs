//! Staff add and edit users — in the admin area and through `PATCH /api/v1/users/{id}` — by the
//! rules a user's own profile follows: a unique email, no banned domain, audited, the old
//! address told of a new email; behind `users.create` / `users.manage`, and a new login email
//! only with a recent proof that it is the admin (it hands over the account's password resets).

use std::collections::BTreeSet;
use std::time::Duration;

use gatehouse::accounts::{Actor, AdminPermission as P, Grantor};
use reqwest::Method;
use serde_json::json;

use crate::support::web::{Backend, Browser, PASSWORD, Server, admin_token, api};

async fn staff(server: &Server, username: &str, permissions: &[P]) -> Browser {
    let actor = Actor::system("test");
    let role = format!("{username} role");
    let set: BTreeSet<P> = permissions.iter().copied().collect();
    server.accounts().create_role(&actor, &Grantor::Operator, &role, &set).await.unwrap();
    let email = format!("{username}@example.com");
    server.accounts().create_admin(&actor, &Grantor::Operator, username, &email, &role, Some(PASSWORD)).await.unwrap();
    let b = server.browser();
    let signed = b.submit("admin/login", "admin/login", &[("username", username), ("password", PASSWORD)]).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    b
}

async fn mails_to(server: &Server, to: &str) -> Vec<String> {
    gatehouse::mail::for_recipient(server.state.db(), to).await.unwrap().into_iter().map(|m| m.subject).collect()
}

async fn staff_add_a_user_who_sets_their_own_password(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let b = staff(&server, "hal", &[P::UsersView, P::UsersCreate]).await;
    let listing = b.get("admin/users").await;
    assert!(listing.body.contains("id=\"add-user\""), "{}", listing.body);
    let fields = [("first_name", "Nia"), ("last_name", "Ode"), ("email", "nia@example.com"), ("send_reset", "1")];
    let added = b.submit("admin/users/new", "admin/users/new", &fields).await;
    assert_eq!(added.status, 303, "{}", added.body);
    let user = server.accounts().user_by_email("nia@example.com").await.unwrap().expect("added");
    assert_eq!(added.location(), format!("/admin/users/{}", user.id));
    assert!(user.password_hash.is_none(), "nobody chose a password for them");
    assert!(mails_to(&server, "nia@example.com").await.iter().any(|s| s.contains("eset")), "the link to set one");
    let page = b.get(added.location()).await;
    assert!(page.body.contains("was added") && page.body.contains("A link to set their password was sent"));

    // The same email again, and a banned domain: refused with the reason, nothing added.
    let again = b.submit("admin/users/new", "admin/users/new", &fields).await;
    assert_eq!(again.location(), "/admin/users/new");
    assert!(b.get("admin/users/new").await.body.contains("already exists"));
    server.accounts().ban_domain(&Actor::system("test"), "spam.test").await.unwrap();
    let banned = [("first_name", "S"), ("last_name", "P"), ("email", "x@spam.test")];
    b.submit("admin/users/new", "admin/users/new", &banned).await;
    assert!(server.accounts().user_by_email("x@spam.test").await.unwrap().is_none());

    // Without users.create: the page and the form say which permission is missing.
    let viewer = staff(&server, "vic", &[P::UsersView]).await;
    assert!(!viewer.get("admin/users").await.body.contains("add-user"));
    let refused = viewer.submit("admin/users", "admin/users/new", &fields).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("users.create"), "{}", refused.body);
}

async fn staff_edit_a_user_and_a_new_email_needs_a_fresh_proof(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (ann, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = staff(&server, "hal", &[P::UsersView, P::UsersManage]).await;
    let edit = format!("admin/users/{ann}/edit");
    let save = format!("admin/users/{ann}");
    let form = |email: &'static str| {
        [
            ("first_name", "Ann"),
            ("last_name", "Smith-Jones"),
            ("email", email),
            ("language", "fr"),
            ("timezone", "Europe/Paris"),
        ]
    };
    let saved = b.submit(&edit, &save, &form("ann@example.com")).await;
    assert_eq!(saved.location(), format!("/{save}"), "{}", saved.body);
    let user = server.accounts().user(ann).await.unwrap();
    assert_eq!(
        (user.last_name.as_str(), user.language.as_str(), user.timezone.as_str()),
        ("Smith-Jones", "fr", "Europe/Paris")
    );
    assert!(mails_to(&server, "ann@example.com").await.is_empty(), "no email change, no mail");

    // A stolen admin session cannot move the login to an address of the thief's choosing.
    server.state.db().clock().advance(Duration::from_secs(6 * 60));
    let moved = b.submit(&edit, &save, &form("ann@new.example")).await;
    assert_eq!(moved.location(), "/admin/security/confirm");
    assert_eq!(server.accounts().user(ann).await.unwrap().email, "ann@example.com");
    let confirmed = b.submit("admin/security/confirm", "admin/security/confirm", &[("password", PASSWORD)]).await;
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    let moved = b.submit(&edit, &save, &form("ann@new.example")).await;
    assert_eq!(moved.location(), format!("/{save}"));
    assert_eq!(server.accounts().user(ann).await.unwrap().email, "ann@new.example");
    assert_eq!(mails_to(&server, "ann@example.com").await, ["Your login email was changed"], "the old address is told");
    assert_eq!(server.browser().login("ann@new.example", PASSWORD).await.status, 303, "the new login works");

    // Taken by another login: refused, and said so on the form.
    server.client_with_owner("bob@example.com", "Bob Hosting").await;
    let taken = b.submit(&edit, &save, &form("bob@example.com")).await;
    assert_eq!(taken.location(), format!("/{edit}"));
    assert!(b.get(&edit).await.body.contains("already exists"));

    // users.view alone: the profile, but no edit link and no edit.
    let viewer = staff(&server, "vic", &[P::UsersView]).await;
    assert!(!viewer.get(&save).await.body.contains("id=\"edit-user\""));
    assert_eq!(viewer.get(&edit).await.status, 403);
    let actions: Vec<String> = server.audit_actions(ann).await.into_iter().map(|a| a.0).collect();
    assert!(actions.iter().filter(|a| *a == "user.update").count() >= 2, "{actions:?}");
}

async fn the_api_patches_users_by_the_same_rules(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (ann, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let manager = admin_token(&server, &[P::UsersView, P::UsersManage]).await;
    let path = format!("users/{ann}");
    let (status, user) = api(&server, &manager, Method::PATCH, &path, Some(json!({"first_name": "Annie"}))).await;
    assert_eq!(
        (status, user["first_name"].as_str(), user["email"].as_str()),
        (200, Some("Annie"), Some("ann@example.com"))
    );
    let (status, user) =
        api(&server, &manager, Method::PATCH, &path, Some(json!({"email": "annie@example.com"}))).await;
    assert_eq!((status, user["email"].as_str()), (200, Some("annie@example.com")));
    assert_eq!(mails_to(&server, "ann@example.com").await, ["Your login email was changed"]);

    let (status, body) = api(&server, &manager, Method::PATCH, &path, Some(json!({"password": "x"}))).await;
    assert_eq!(status, 422, "an unknown field is refused, not ignored: {body}");
    let (status, body) = api(&server, &manager, Method::PATCH, &path, Some(json!({"timezone": "Mars/Olympus"}))).await;
    assert_eq!(status, 422, "{body}");
    let viewer = admin_token(&server, &[P::UsersView]).await;
    let (status, body) = api(&server, &viewer, Method::PATCH, &path, Some(json!({"first_name": "X"}))).await;
    assert_eq!(status, 403);
    assert!(body["error"]["message"].as_str().unwrap().contains("users.manage"), "{body}");
}

/// Match details from the client's Users tab: the client's email onto the user is a login
/// change (a fresh proof, the old address told); an email that is another user's login is
/// refused, saying so, and the name and language can still be copied.
async fn matching_client_details_onto_a_user_follows_the_same_rules(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (ann, client) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let (bob, _) = server.client_with_owner("bob@example.com", "Bob Hosting").await;
    let actor = Actor::system("test");
    let b = staff(&server, "hal", &[P::ClientsView, P::ClientsManage, P::UsersView, P::UsersManage]).await;
    let tab = format!("admin/clients/{client}");
    let matching = format!("admin/clients/{client}/users/{ann}/match");
    let set_client = |email: &str, first: &str| gatehouse::accounts::ClientUpdate {
        email: Some(email.into()),
        first_name: Some(first.into()),
        ..Default::default()
    };

    // The client's email is Bob's login: refused, and said so; nothing changes.
    server.accounts().update_client(&actor, client, set_client("bob@example.com", "Annabel")).await.unwrap();
    let refused = b.submit(&tab, &matching, &[("from", "client")]).await;
    assert_eq!(refused.location(), format!("/{tab}"));
    let page = b.get(&tab).await;
    assert!(page.body.contains("is the login of another user") && page.body.contains("name and language only"));
    assert_eq!(server.accounts().user(ann).await.unwrap().first_name, "Ann");
    let names = b.submit(&tab, &matching, &[("from", "client_names")]).await;
    assert_eq!(names.location(), format!("/{tab}"));
    let user = server.accounts().user(ann).await.unwrap();
    assert_eq!((user.first_name.as_str(), user.email.as_str()), ("Annabel", "ann@example.com"));
    assert_eq!(server.accounts().user(bob).await.unwrap().email, "bob@example.com");

    // A free address: outside the window, a proof first; then copied, and the old address told.
    server.accounts().update_client(&actor, client, set_client("billing@ann.example", "Annabel")).await.unwrap();
    server.state.db().clock().advance(Duration::from_secs(6 * 60));
    let asked = b.submit(&tab, &matching, &[("from", "client")]).await;
    assert_eq!(asked.location(), "/admin/security/confirm");
    assert_eq!(server.accounts().user(ann).await.unwrap().email, "ann@example.com");
    b.submit("admin/security/confirm", "admin/security/confirm", &[("password", PASSWORD)]).await;
    b.submit(&tab, &matching, &[("from", "client")]).await;
    assert_eq!(server.accounts().user(ann).await.unwrap().email, "billing@ann.example");
    assert_eq!(mails_to(&server, "ann@example.com").await, ["Your login email was changed"]);
}

web_on_both_backends!(
    matching_client_details_onto_a_user_follows_the_same_rules,
    staff_add_a_user_who_sets_their_own_password,
    staff_edit_a_user_and_a_new_email_needs_a_fresh_proof,
    the_api_patches_users_by_the_same_rules,
);
