//! The accounts rules (REFERENCE.md "Accounts model"), run on SQLite and on PostgreSQL.

use crate::support::Harness;
use gatehouse::Error;
use gatehouse::accounts::{
    Acceptance, Actor, Client, ClientStatus, ClientUpdate, CopyDirection, InviteStatus, NewClient, NewUser, OwnerSpec,
    Permission, Permissions, User,
};
use gatehouse::error::Code;
use gatehouse::secrets::{passwords, tokens};

on_both_backends!(
    a_users_clients_come_by_client_id_whatever_order_they_were_joined_in,
    client_creation_makes_its_owner_with_every_permission,
    client_can_be_owned_by_an_existing_user,
    emails_are_unique_case_insensitively,
    invalid_emails_are_refused,
    banned_domains_block_creation_and_email_changes_and_are_counted,
    a_user_belongs_to_many_clients_with_separate_permissions,
    the_owner_cannot_be_removed_and_only_members_can_be_dissociated,
    owner_permissions_are_fixed_and_unknown_permissions_refused,
    make_owner_requires_an_existing_association,
    the_database_itself_keeps_exactly_one_owner,
    users_with_clients_cannot_be_deleted,
    deleting_a_client_with_users_removes_only_users_left_without_a_client,
    closed_clients_are_kept_but_cannot_gain_users,
    client_fields_are_validated_and_updated,
    invites_are_single_use_and_stored_hashed,
    invites_expire_and_can_be_cancelled,
    invites_can_be_accepted_by_an_existing_user,
    security_questions_in_use_cannot_be_deleted_and_answers_are_hashed,
    match_details_copies_explicitly_in_one_direction,
    every_write_is_audited_and_the_log_is_append_only,
    api_tokens_are_stored_hashed_and_revocable,
    roles_hold_admin_permissions,
    weak_passwords_are_refused_and_strong_ones_hashed,
    concurrent_make_owner_never_leaves_zero_or_two_owners,
    concurrent_creation_of_one_email_leaves_one_user,
);

fn code_of<T: std::fmt::Debug>(r: Result<T, Error>) -> Code {
    r.expect_err("expected a refusal").code()
}

async fn client(h: &Harness, email: &str) -> Client {
    let fields = ClientUpdate {
        email: Some(email.into()),
        first_name: Some("Ann".into()),
        last_name: Some("Lee".into()),
        ..Default::default()
    };
    h.accounts
        .create_client(&h.actor, NewClient { fields, owner: OwnerSpec::NewUser { password: None } })
        .await
        .unwrap()
}

async fn user(h: &Harness, email: &str) -> User {
    h.accounts
        .create_user(
            &h.actor,
            NewUser { email: email.into(), first_name: "Bob".into(), last_name: "Ray".into(), ..Default::default() },
        )
        .await
        .unwrap()
}

fn perms(list: &str) -> Permissions {
    Permissions::parse_list(list).unwrap()
}

async fn owners_of(h: &Harness, client_id: i64) -> Vec<i64> {
    let members = h.accounts.members_of_client(client_id).await.unwrap();
    members.iter().filter(|m| m.is_owner).map(|m| m.user_id).collect()
}

async fn client_creation_makes_its_owner_with_every_permission(h: &Harness) {
    let c = client(h, "ann@example.com").await;
    let owner = h.accounts.user(c.owner_user_id).await.unwrap();
    assert_eq!(owner.email, "ann@example.com");
    assert!(!owner.has_password(), "password is optional until set");
    let members = h.accounts.members_of_client(c.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert!(members[0].is_owner);
    assert_eq!(members[0].permissions, Permissions::all());
    assert_eq!(c.status, ClientStatus::Active);
}

async fn client_can_be_owned_by_an_existing_user(h: &Harness) {
    let u = user(h, "bob@example.com").await;
    let fields = ClientUpdate {
        email: Some("billing@acme.example".into()),
        first_name: Some("Acme".into()),
        last_name: Some("Billing".into()),
        company: Some("Acme Ltd".into()),
        ..Default::default()
    };
    let c = h.accounts.create_client(&h.actor, NewClient { fields, owner: OwnerSpec::Existing(u.id) }).await.unwrap();
    assert_eq!(c.owner_user_id, u.id);
    assert_eq!(owners_of(h, c.id).await, vec![u.id]);
    // No user was created from the client's own email.
    assert!(h.accounts.user_by_email("billing@acme.example").await.unwrap().is_none());
    let missing = NewClient {
        fields: ClientUpdate {
            email: Some("x@acme.example".into()),
            first_name: Some("X".into()),
            last_name: Some("Y".into()),
            ..Default::default()
        },
        owner: OwnerSpec::Existing(9999),
    };
    assert_eq!(code_of(h.accounts.create_client(&h.actor, missing).await), Code::NotFound);
}

async fn emails_are_unique_case_insensitively(h: &Harness) {
    user(h, "Bob@Example.com").await;
    let dup = NewUser {
        email: "bob@EXAMPLE.com".into(),
        first_name: "B".into(),
        last_name: "R".into(),
        ..Default::default()
    };
    assert_eq!(code_of(h.accounts.create_user(&h.actor, dup).await), Code::UserExists);
    // A client whose new owner would duplicate an existing user is refused too.
    let fields = ClientUpdate {
        email: Some("BOB@example.com".into()),
        first_name: Some("B".into()),
        last_name: Some("R".into()),
        ..Default::default()
    };
    let refused =
        h.accounts.create_client(&h.actor, NewClient { fields, owner: OwnerSpec::NewUser { password: None } }).await;
    assert_eq!(code_of(refused), Code::UserExists);
    assert!(h.accounts.list_clients(None, None).await.unwrap().is_empty(), "nothing half-created");
    // Changing another user's email onto it is refused as well.
    let other = user(h, "carol@example.com").await;
    let change = gatehouse::accounts::UserUpdate { email: Some("BOB@example.COM".into()), ..Default::default() };
    assert_eq!(code_of(h.accounts.update_user(&h.actor, other.id, change).await), Code::UserExists);
    assert_eq!(h.accounts.user_by_email("bob@example.com").await.unwrap().unwrap().email, "Bob@Example.com");
}

async fn invalid_emails_are_refused(h: &Harness) {
    for bad in ["", "bob", "bob@", "@example.com", "bob@localhost", "Bob <bob@example.com>"] {
        let new = NewUser { email: bad.into(), first_name: "B".into(), last_name: "R".into(), ..Default::default() };
        assert_eq!(code_of(h.accounts.create_user(&h.actor, new).await), Code::InvalidEmail, "{bad:?}");
    }
    assert!(h.accounts.list_users(None).await.unwrap().is_empty());
}

async fn banned_domains_block_creation_and_email_changes_and_are_counted(h: &Harness) {
    h.accounts.ban_domain(&h.actor, "@Mailinator.com").await.unwrap();
    assert_eq!(code_of(h.accounts.ban_domain(&h.actor, "mailinator.com").await), Code::AlreadyExists);
    let new = |email: &str| NewUser {
        email: email.into(),
        first_name: "B".into(),
        last_name: "R".into(),
        ..Default::default()
    };
    assert_eq!(code_of(h.accounts.create_user(&h.actor, new("x@mailinator.com")).await), Code::BannedEmailDomain);
    // Subdomains are banned too while security.banned_email_subdomains is on.
    assert_eq!(code_of(h.accounts.create_user(&h.actor, new("x@eu.MAILINATOR.com")).await), Code::BannedEmailDomain);
    // A domain that merely ends with the same letters is not a subdomain.
    h.accounts.create_user(&h.actor, new("x@notmailinator.com")).await.unwrap();
    // Client creation.
    let fields = ClientUpdate {
        email: Some("boss@mailinator.com".into()),
        first_name: Some("B".into()),
        last_name: Some("R".into()),
        ..Default::default()
    };
    let refused =
        h.accounts.create_client(&h.actor, NewClient { fields, owner: OwnerSpec::NewUser { password: None } }).await;
    assert_eq!(code_of(refused), Code::BannedEmailDomain);
    // Email changes, of users and of clients.
    let u = user(h, "fine@example.com").await;
    let change = gatehouse::accounts::UserUpdate { email: Some("fine@mailinator.com".into()), ..Default::default() };
    assert_eq!(code_of(h.accounts.update_user(&h.actor, u.id, change).await), Code::BannedEmailDomain);
    let c = client(h, "ann@example.com").await;
    let change = ClientUpdate { email: Some("ann@mailinator.com".into()), ..Default::default() };
    assert_eq!(code_of(h.accounts.update_client(&h.actor, c.id, change).await), Code::BannedEmailDomain);
    assert_eq!(h.accounts.client(c.id).await.unwrap().email, "ann@example.com");

    let listed = h.accounts.list_banned_domains().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].domain, "mailinator.com");
    assert_eq!(listed[0].blocked_count, 5, "every blocked attempt is counted");

    h.accounts.unban_domain(&h.actor, "mailinator.com").await.unwrap();
    h.accounts.create_user(&h.actor, new("x@mailinator.com")).await.unwrap();
    assert_eq!(code_of(h.accounts.unban_domain(&h.actor, "mailinator.com").await), Code::NotFound);
}

async fn a_user_belongs_to_many_clients_with_separate_permissions(h: &Harness) {
    let a = client(h, "ann@example.com").await;
    let b = client(h, "ann2@example.com").await;
    let bob = user(h, "bob@example.com").await;
    h.accounts.associate(&h.actor, bob.id, a.id, &perms("invoices,tickets")).await.unwrap();
    h.accounts.associate(&h.actor, bob.id, b.id, &perms("domains")).await.unwrap();
    let memberships = h.accounts.clients_of_user(bob.id).await.unwrap();
    assert_eq!(memberships.len(), 2);
    assert!(memberships[0].permissions.contains(Permission::Invoices));
    assert!(!memberships[0].permissions.contains(Permission::Domains));
    assert!(memberships[1].permissions.contains(Permission::Domains));
    assert!(memberships.iter().all(|m| !m.is_owner));
    assert_eq!(code_of(h.accounts.associate(&h.actor, bob.id, a.id, &perms("orders")).await), Code::AlreadyAssociated);
}

/// Every client-area page lists them from this (one query, its rows in the database's order).
async fn a_users_clients_come_by_client_id_whatever_order_they_were_joined_in(h: &Harness) {
    let mut ids = Vec::new();
    for owner in ["ann@example.com", "ann2@example.com", "ann3@example.com"] {
        ids.push(client(h, owner).await.id);
    }
    let bob = user(h, "bob@example.com").await;
    for id in [ids[2], ids[0], ids[1]] {
        h.accounts.associate(&h.actor, bob.id, id, &perms("invoices")).await.unwrap();
    }
    let listed = h.accounts.user_with_clients(bob.id).await.unwrap().unwrap().memberships;
    assert_eq!(listed.iter().map(|m| m.client_id).collect::<Vec<_>>(), ids);
}

async fn the_owner_cannot_be_removed_and_only_members_can_be_dissociated(h: &Harness) {
    let c = client(h, "ann@example.com").await;
    assert_eq!(code_of(h.accounts.dissociate(&h.actor, c.owner_user_id, c.id).await), Code::OwnerCannotBeRemoved);
    let bob = user(h, "bob@example.com").await;
    assert_eq!(code_of(h.accounts.dissociate(&h.actor, bob.id, c.id).await), Code::NotAssociated);
    h.accounts.associate(&h.actor, bob.id, c.id, &perms("invoices")).await.unwrap();
    h.accounts.dissociate(&h.actor, bob.id, c.id).await.unwrap();
    assert!(h.accounts.membership(bob.id, c.id).await.unwrap().is_none());
    assert_eq!(owners_of(h, c.id).await, vec![c.owner_user_id]);
}

async fn owner_permissions_are_fixed_and_unknown_permissions_refused(h: &Harness) {
    let c = client(h, "ann@example.com").await;
    let set = h.accounts.set_permissions(&h.actor, c.owner_user_id, c.id, &perms("invoices")).await;
    assert_eq!(code_of(set), Code::OwnerPermissionsFixed);
    let bob = user(h, "bob@example.com").await;
    assert_eq!(
        code_of(h.accounts.set_permissions(&h.actor, bob.id, c.id, &perms("invoices")).await),
        Code::NotAssociated
    );
    h.accounts.associate(&h.actor, bob.id, c.id, &perms("invoices")).await.unwrap();
    let m = h.accounts.set_permissions(&h.actor, bob.id, c.id, &perms("tickets,orders")).await.unwrap();
    assert_eq!(m.permissions, perms("orders,tickets"));
    assert_eq!(code_of(Permissions::parse_list("invoices,superuser")), Code::InvalidPermission);
}

async fn make_owner_requires_an_existing_association(h: &Harness) {
    let c = client(h, "ann@example.com").await;
    let bob = user(h, "bob@example.com").await;
    assert_eq!(code_of(h.accounts.make_owner(&h.actor, bob.id, c.id).await), Code::NotAssociated);
    assert_eq!(owners_of(h, c.id).await, vec![c.owner_user_id]);
    h.accounts.associate(&h.actor, bob.id, c.id, &perms("invoices")).await.unwrap();
    let m = h.accounts.make_owner(&h.actor, bob.id, c.id).await.unwrap();
    assert!(m.is_owner);
    assert_eq!(m.permissions, Permissions::all());
    assert_eq!(owners_of(h, c.id).await, vec![bob.id]);
    assert_eq!(h.accounts.client(c.id).await.unwrap().owner_user_id, bob.id);
    // The previous owner is an ordinary member now, and can be removed.
    let previous = h.accounts.membership(c.owner_user_id, c.id).await.unwrap().unwrap();
    assert!(!previous.is_owner);
    h.accounts.dissociate(&h.actor, c.owner_user_id, c.id).await.unwrap();
    assert_eq!(code_of(h.accounts.dissociate(&h.actor, bob.id, c.id).await), Code::OwnerCannotBeRemoved);
}

async fn the_database_itself_keeps_exactly_one_owner(h: &Harness) {
    let c = client(h, "ann@example.com").await;
    let bob = user(h, "bob@example.com").await;
    // Bypassing the service: deleting the owner's membership is refused at commit.
    let mut tx = h.accounts.db().begin().await.unwrap();
    sqlx::query("DELETE FROM memberships WHERE client_id = $1 AND user_id = $2")
        .bind(c.id)
        .bind(c.owner_user_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = tx.commit().await.expect_err("owner membership removal must fail");
    assert!(gatehouse::store::is_foreign_key_violation(&err), "{err}");
    // Pointing the owner at a user who is not a member is refused too.
    let mut tx = h.accounts.db().begin().await.unwrap();
    sqlx::query("UPDATE clients SET owner_user_id = $1 WHERE id = $2")
        .bind(bob.id)
        .bind(c.id)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert!(tx.commit().await.is_err());
    // And a client without an owner cannot exist.
    let no_owner = sqlx::query(
        "INSERT INTO clients (first_name, last_name, email, created_at, updated_at) VALUES ('a', 'b', 'c@d.ef', 0, 0)",
    )
    .execute(h.pool())
    .await;
    assert!(no_owner.is_err());
    assert_eq!(owners_of(h, c.id).await, vec![c.owner_user_id]);
}

async fn users_with_clients_cannot_be_deleted(h: &Harness) {
    let c = client(h, "ann@example.com").await;
    let bob = user(h, "bob@example.com").await;
    h.accounts.associate(&h.actor, bob.id, c.id, &perms("invoices")).await.unwrap();
    assert_eq!(code_of(h.accounts.delete_user(&h.actor, bob.id).await), Code::UserHasClients);
    assert_eq!(code_of(h.accounts.delete_user(&h.actor, c.owner_user_id).await), Code::UserHasClients);
    h.accounts.dissociate(&h.actor, bob.id, c.id).await.unwrap();
    h.accounts.delete_user(&h.actor, bob.id).await.unwrap();
    assert_eq!(code_of(h.accounts.user(bob.id).await), Code::NotFound);
    assert_eq!(code_of(h.accounts.delete_user(&h.actor, bob.id).await), Code::NotFound);
}

async fn deleting_a_client_with_users_removes_only_users_left_without_a_client(h: &Harness) {
    let a = client(h, "ann@example.com").await;
    let b = client(h, "other@example.com").await;
    let shared = user(h, "shared@example.com").await;
    let only_a = user(h, "only@example.com").await;
    h.accounts.associate(&h.actor, shared.id, a.id, &perms("invoices")).await.unwrap();
    h.accounts.associate(&h.actor, shared.id, b.id, &perms("invoices")).await.unwrap();
    h.accounts.associate(&h.actor, only_a.id, a.id, &perms("invoices")).await.unwrap();
    let invite = h.accounts.create_invite(&h.actor, a.id, "later@example.com", &perms(""), None).await.unwrap();

    let deleted = h.accounts.delete_client(&h.actor, a.id, true).await.unwrap();
    let mut gone = deleted.deleted_users.clone();
    gone.sort();
    assert_eq!(gone, vec![a.owner_user_id, only_a.id]);
    assert_eq!(deleted.kept_users, vec![shared.id]);
    assert_eq!(code_of(h.accounts.client(a.id).await), Code::NotFound);
    assert_eq!(code_of(h.accounts.user(only_a.id).await), Code::NotFound);
    assert_eq!(h.accounts.clients_of_user(shared.id).await.unwrap().len(), 1);
    assert_eq!(code_of(h.accounts.invite_by_token(&invite.token).await), Code::InviteInvalid);

    // Without --delete-users every user stays.
    let kept = h.accounts.delete_client(&h.actor, b.id, false).await.unwrap();
    assert!(kept.deleted_users.is_empty());
    h.accounts.user(b.owner_user_id).await.unwrap();
    h.accounts.user(shared.id).await.unwrap();
}

async fn closed_clients_are_kept_but_cannot_gain_users(h: &Harness) {
    let c = client(h, "ann@example.com").await;
    let closed = h.accounts.close_client(&h.actor, c.id).await.unwrap();
    assert_eq!(closed.status, ClientStatus::Closed);
    assert_eq!(h.accounts.list_clients(Some(ClientStatus::Closed), None).await.unwrap().len(), 1);
    assert!(h.accounts.list_clients(Some(ClientStatus::Active), None).await.unwrap().is_empty());
    let bob = user(h, "bob@example.com").await;
    assert_eq!(code_of(h.accounts.associate(&h.actor, bob.id, c.id, &perms("")).await), Code::ClientClosed);
    assert_eq!(
        code_of(h.accounts.create_invite(&h.actor, c.id, "x@example.com", &perms(""), None).await),
        Code::ClientClosed
    );
}

async fn client_fields_are_validated_and_updated(h: &Harness) {
    let c = client(h, "ann@example.com").await;
    let update = ClientUpdate {
        company: Some("Acme Ltd".into()),
        address1: Some("1 High St".into()),
        city: Some("Leeds".into()),
        postcode: Some("LS1 1AA".into()),
        country: Some("gb".into()),
        phone: Some("+44 113 000".into()),
        tax_id: Some("GB123".into()),
        group: Some("VIP".into()),
        notes: Some("pays early".into()),
        status: Some(ClientStatus::Inactive),
        email_prefs: Some(gatehouse::accounts::EmailPrefs::parse_list("invoice,general").unwrap()),
        ..Default::default()
    };
    let u = h.accounts.update_client(&h.actor, c.id, update).await.unwrap();
    assert_eq!((u.country.as_str(), u.group.as_str(), u.status), ("GB", "VIP", ClientStatus::Inactive));
    assert_eq!(u.email_prefs.to_stored(), "general,invoice");
    assert_eq!(h.accounts.list_clients(None, Some("acme")).await.unwrap().len(), 1);
    let bad = ClientUpdate { country: Some("XX".into()), ..Default::default() };
    assert_eq!(code_of(h.accounts.update_client(&h.actor, c.id, bad).await), Code::InvalidInput);
    let bad = ClientUpdate { first_name: Some("  ".into()), ..Default::default() };
    assert_eq!(code_of(h.accounts.update_client(&h.actor, c.id, bad).await), Code::InvalidInput);
    assert_eq!(code_of(gatehouse::accounts::EmailPrefs::parse_list("spam")), Code::InvalidInput);
    // Client details never change the owner's user details.
    let owner = h.accounts.user(c.owner_user_id).await.unwrap();
    assert_eq!(owner.email, "ann@example.com");
}

async fn invites_are_single_use_and_stored_hashed(h: &Harness) {
    let c = client(h, "ann@example.com").await;
    let created = h
        .accounts
        .create_invite(&h.actor, c.id, "new@example.com", &perms("invoices,tickets"), Some(c.owner_user_id))
        .await
        .unwrap();
    assert_eq!(created.invite.status, InviteStatus::Pending);
    assert_eq!(created.invite.expires_at - created.invite.created_at, 7 * 86400);
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM invites WHERE id = $1")
        .bind(created.invite.id)
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert_eq!(stored, tokens::digest(&created.token));
    assert!(!stored.contains(&created.token));

    // Accepting does not verify the email: the registering user may use another address.
    let new = NewUser {
        email: "someone.else@example.com".into(),
        first_name: "New".into(),
        last_name: "Person".into(),
        password: Some("a long enough password".into()),
        ..Default::default()
    };
    let m = h.accounts.accept_invite(&h.actor, &created.token, Acceptance::NewUser(new.clone())).await.unwrap();
    assert_eq!(m.client_id, c.id);
    assert_eq!(m.permissions, perms("invoices,tickets"));
    let again = NewUser { email: "third@example.com".into(), ..new };
    assert_eq!(
        code_of(h.accounts.accept_invite(&h.actor, &created.token, Acceptance::NewUser(again)).await),
        Code::InviteInvalid
    );
    assert!(h.accounts.user_by_email("third@example.com").await.unwrap().is_none());
    let listed = h.accounts.list_invites(Some(c.id)).await.unwrap();
    assert_eq!(listed[0].status, InviteStatus::Accepted);
    assert_eq!(listed[0].accepted_user_id, Some(m.user_id));
    assert_eq!(code_of(h.accounts.invite_by_token("inv_not-a-real-token").await), Code::InviteInvalid);
}

async fn invites_expire_and_can_be_cancelled(h: &Harness) {
    let c = client(h, "ann@example.com").await;
    let cancelled = h.accounts.create_invite(&h.actor, c.id, "a@example.com", &perms(""), None).await.unwrap();
    let cancelled_invite = h.accounts.cancel_invite(&h.actor, cancelled.invite.id).await.unwrap();
    assert_eq!(cancelled_invite.status, InviteStatus::Cancelled);
    assert_eq!(code_of(h.accounts.cancel_invite(&h.actor, cancelled.invite.id).await), Code::InviteInvalid);
    assert_eq!(code_of(h.accounts.cancel_invite(&h.actor, 9999).await), Code::NotFound);
    let bob = user(h, "bob@example.com").await;
    let accept = h.accounts.accept_invite(&h.actor, &cancelled.token, Acceptance::ExistingUser(bob.id)).await;
    assert_eq!(code_of(accept), Code::InviteInvalid);

    // Move an invite's expiry into the past, as time passing would.
    let expiring = h.accounts.create_invite(&h.actor, c.id, "b@example.com", &perms(""), None).await.unwrap();
    sqlx::query("UPDATE invites SET expires_at = $1 WHERE id = $2")
        .bind(h.accounts.db().now() - 1)
        .bind(expiring.invite.id)
        .execute(h.pool())
        .await
        .unwrap();
    let accept = h.accounts.accept_invite(&h.actor, &expiring.token, Acceptance::ExistingUser(bob.id)).await;
    assert_eq!(code_of(accept), Code::InviteExpired);
    assert!(h.accounts.membership(bob.id, c.id).await.unwrap().is_none());
    let statuses: Vec<InviteStatus> = h.accounts.list_invites(None).await.unwrap().iter().map(|i| i.status).collect();
    assert_eq!(statuses, vec![InviteStatus::Expired, InviteStatus::Cancelled]);
}

async fn invites_can_be_accepted_by_an_existing_user(h: &Harness) {
    let c = client(h, "ann@example.com").await;
    let bob = user(h, "bob@example.com").await;
    let first = h.accounts.create_invite(&h.actor, c.id, "bob@example.com", &perms("quotes"), None).await.unwrap();
    let m = h
        .accounts
        .accept_invite(&Actor::user(bob.id, &bob.email), &first.token, Acceptance::ExistingUser(bob.id))
        .await
        .unwrap();
    assert_eq!((m.user_id, m.is_owner), (bob.id, false));
    assert!(m.permissions.contains(Permission::Quotes));
    let second = h.accounts.create_invite(&h.actor, c.id, "bob@example.com", &perms("quotes"), None).await.unwrap();
    let accept = h.accounts.accept_invite(&h.actor, &second.token, Acceptance::ExistingUser(bob.id)).await;
    assert_eq!(code_of(accept), Code::AlreadyAssociated);
    // The refused acceptance did not spend the invite.
    assert_eq!(h.accounts.invite_by_token(&second.token).await.unwrap().status, InviteStatus::Pending);
}

async fn security_questions_in_use_cannot_be_deleted_and_answers_are_hashed(h: &Harness) {
    let q1 = h.accounts.add_security_question(&h.actor, "Name of your first pet?").await.unwrap();
    let q2 = h.accounts.add_security_question(&h.actor, "City you were born in?").await.unwrap();
    assert_eq!(
        code_of(h.accounts.add_security_question(&h.actor, "Name of your first pet?").await),
        Code::AlreadyExists
    );
    let bob = user(h, "bob@example.com").await;
    h.accounts.set_security_answer(&h.actor, bob.id, q1.id, "  Fluffy ").await.unwrap();
    let stored: String = sqlx::query_scalar("SELECT security_answer_hash FROM users WHERE id = $1")
        .bind(bob.id)
        .fetch_one(h.pool())
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.to_lowercase().contains("fluffy"));
    // Stored normalised, as `Auth::complete_reset` checks it (throttled, on the hashing threads).
    let answers = |a: &str| passwords::verify(&passwords::normalize_answer(a), &stored);
    assert!(answers("fluffy") && answers("FLUFFY  "));
    assert!(!answers("rex"));

    assert_eq!(code_of(h.accounts.remove_security_question(&h.actor, q1.id).await), Code::QuestionInUse);
    assert_eq!(h.accounts.list_security_questions().await.unwrap()[0].users, 1);
    h.accounts.remove_security_question(&h.actor, q2.id).await.unwrap();
    assert_eq!(code_of(h.accounts.set_security_answer(&h.actor, bob.id, q2.id, "x").await), Code::NotFound);
    assert_eq!(code_of(h.accounts.set_security_answer(&h.actor, bob.id, q1.id, "   ").await), Code::InvalidInput);
}

async fn match_details_copies_explicitly_in_one_direction(h: &Harness) {
    let c = client(h, "ann@example.com").await;
    let bob = user(h, "bob@example.com").await;
    assert_eq!(
        code_of(h.accounts.match_details(&h.actor, bob.id, c.id, CopyDirection::UserToClient).await),
        Code::NotAssociated
    );
    h.accounts.associate(&h.actor, bob.id, c.id, &perms("profile")).await.unwrap();
    h.accounts.match_details(&h.actor, bob.id, c.id, CopyDirection::UserToClient).await.unwrap();
    let after = h.accounts.client(c.id).await.unwrap();
    assert_eq!((after.first_name.as_str(), after.email.as_str()), ("Bob", "bob@example.com"));
    assert_eq!(h.accounts.user(bob.id).await.unwrap().first_name, "Bob", "the source is unchanged");

    let update = ClientUpdate {
        first_name: Some("Robert".into()),
        email: Some("robert@example.com".into()),
        ..Default::default()
    };
    h.accounts.update_client(&h.actor, c.id, update).await.unwrap();
    assert_eq!(h.accounts.user(bob.id).await.unwrap().first_name, "Bob", "no automatic sync");
    h.accounts.match_details(&h.actor, bob.id, c.id, CopyDirection::ClientToUser).await.unwrap();
    let bob = h.accounts.user(bob.id).await.unwrap();
    assert_eq!((bob.first_name.as_str(), bob.email.as_str()), ("Robert", "robert@example.com"));
}

async fn every_write_is_audited_and_the_log_is_append_only(h: &Harness) {
    let admin = Actor::admin(7, "root").with_ip("203.0.113.9");
    let fields = ClientUpdate {
        email: Some("ann@example.com".into()),
        first_name: Some("Ann".into()),
        last_name: Some("Lee".into()),
        ..Default::default()
    };
    let c = h
        .accounts
        .create_client(&admin, NewClient { fields, owner: OwnerSpec::NewUser { password: None } })
        .await
        .unwrap();
    let bob = user(h, "bob@example.com").await;
    h.accounts.associate(&admin, bob.id, c.id, &perms("invoices")).await.unwrap();
    h.accounts.set_permissions(&admin, bob.id, c.id, &perms("tickets")).await.unwrap();
    h.accounts.make_owner(&admin, bob.id, c.id).await.unwrap();

    let entries = h.accounts.audit_log(Some((gatehouse::accounts::Target::Client, c.id)), 50).await.unwrap();
    let actions: Vec<&str> = entries.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["client.create", "membership.create", "membership.permissions", "client.owner_change"]);
    let last = &entries[0];
    assert_eq!((last.actor_type.as_str(), last.actor_id, last.actor_label.as_str()), ("admin", Some(7), "root"));
    assert_eq!(last.ip.as_deref(), Some("203.0.113.9"));
    assert!(last.details.contains(&format!("\"to\":{}", bob.id)), "{}", last.details);
    assert!(last.at > 0);
    let user_entries = h.accounts.audit_log(Some((gatehouse::accounts::Target::User, bob.id)), 50).await.unwrap();
    assert_eq!(user_entries[0].action, "user.create");
    assert_eq!(user_entries[0].actor_type, "system");

    // A refused write leaves no entry.
    let before = h.accounts.audit_log(None, 1000).await.unwrap().len();
    let _ = h.accounts.dissociate(&admin, bob.id, c.id).await;
    assert_eq!(h.accounts.audit_log(None, 1000).await.unwrap().len(), before);

    assert!(sqlx::query("UPDATE audit_log SET action = 'x'").execute(h.pool()).await.is_err());
    assert!(sqlx::query("DELETE FROM audit_log").execute(h.pool()).await.is_err());
    assert_eq!(h.accounts.audit_log(None, 1000).await.unwrap().len(), before);
}

async fn api_tokens_are_stored_hashed_and_revocable(h: &Harness) {
    let (admin, created) = h.accounts.bootstrap_admin(&h.actor, "root", "root@example.com").await.unwrap();
    assert_eq!(admin.role_name.as_deref(), Some("Full Administrator"));
    assert_eq!(code_of(h.accounts.bootstrap_admin(&h.actor, "again", "a@example.com").await), Code::AlreadyInitialized);
    let raw = created.token.clone();
    assert!(raw.starts_with("gh_") && raw.len() >= 46);
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT token_hash FROM api_tokens").fetch_all(h.pool()).await.unwrap();
    assert_eq!(stored, vec![tokens::digest(&raw)]);
    assert!(!stored[0].contains(&raw[3..]));

    assert!(h.accounts.list_api_tokens(None).await.unwrap()[0].last_used_at.is_none());
    let who = h.accounts.authenticate_api_token(&raw).await.unwrap();
    assert_eq!(who.id, admin.id);
    assert!(h.accounts.list_api_tokens(Some(admin.id)).await.unwrap()[0].last_used_at.is_some());
    let perms = h.accounts.admin_permissions(&who).await.unwrap();
    assert_eq!(perms.len(), gatehouse::accounts::AdminPermission::ALL.len());

    assert_eq!(code_of(h.accounts.authenticate_api_token("gh_wrong").await), Code::InvalidToken);
    h.accounts.revoke_api_token(&h.actor, &gatehouse::accounts::Grantor::Operator, created.info.id).await.unwrap();
    assert_eq!(code_of(h.accounts.authenticate_api_token(&raw).await), Code::InvalidToken);
    assert_eq!(
        code_of(h.accounts.revoke_api_token(&h.actor, &gatehouse::accounts::Grantor::Operator, created.info.id).await),
        Code::NotFound
    );
}

async fn roles_hold_admin_permissions(h: &Harness) {
    use gatehouse::accounts::admins::parse_admin_permissions;
    let support = h
        .accounts
        .create_role(
            &h.actor,
            &gatehouse::accounts::Grantor::Operator,
            "Support",
            &parse_admin_permissions("clients.view,users.view").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(support.permissions.len(), 2);
    assert_eq!(code_of(parse_admin_permissions("clients.view,root")), Code::InvalidPermission);
    assert_eq!(
        code_of(
            h.accounts
                .create_role(&h.actor, &gatehouse::accounts::Grantor::Operator, "Support", &Default::default())
                .await
        ),
        Code::AlreadyExists
    );
    let admin = h
        .accounts
        .create_admin(
            &h.actor,
            &gatehouse::accounts::Grantor::Operator,
            "Helper",
            "helper@example.com",
            "Support",
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        code_of(
            h.accounts
                .create_admin(
                    &h.actor,
                    &gatehouse::accounts::Grantor::Operator,
                    "helper",
                    "h2@example.com",
                    "Support",
                    None
                )
                .await
        ),
        Code::AlreadyExists
    );
    let granted = h.accounts.admin_permissions(&admin).await.unwrap();
    assert_eq!(granted, parse_admin_permissions("users.view,clients.view").unwrap());
    h.accounts
        .set_role_permissions(
            &h.actor,
            &gatehouse::accounts::Grantor::Operator,
            "Support",
            &parse_admin_permissions("health.view").unwrap(),
        )
        .await
        .unwrap();
    let granted = h.accounts.admin_permissions(&h.accounts.admin(admin.id).await.unwrap()).await.unwrap();
    assert_eq!(granted, parse_admin_permissions("health.view").unwrap());
    assert_eq!(
        code_of(
            h.accounts
                .create_admin(&h.actor, &gatehouse::accounts::Grantor::Operator, "x", "x@example.com", "Nope", None)
                .await
        ),
        Code::NotFound
    );
}

async fn weak_passwords_are_refused_and_strong_ones_hashed(h: &Harness) {
    let short = NewUser {
        email: "bob@example.com".into(),
        first_name: "B".into(),
        last_name: "R".into(),
        password: Some("short".into()),
        ..Default::default()
    };
    assert_eq!(code_of(h.accounts.create_user(&h.actor, short).await), Code::WeakPassword);
    let bob = user(h, "bob@example.com").await;
    h.accounts
        .set_password(&h.actor, (gatehouse::accounts::Principal::User, bob.id), "a sufficiently long passphrase")
        .await
        .unwrap();
    let stored = h.accounts.user(bob.id).await.unwrap().password_hash.unwrap();
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(gatehouse::secrets::passwords::verify("a sufficiently long passphrase", &stored));
    assert_eq!(
        code_of(h.accounts.set_password(&h.actor, (gatehouse::accounts::Principal::User, bob.id), "tiny").await),
        Code::WeakPassword
    );
}

async fn concurrent_make_owner_never_leaves_zero_or_two_owners(h: &Harness) {
    let c = client(h, "ann@example.com").await;
    let b = user(h, "b@example.com").await;
    let d = user(h, "d@example.com").await;
    for u in [b.id, d.id] {
        h.accounts.associate(&h.actor, u, c.id, &perms("invoices")).await.unwrap();
    }
    for round in 0..10 {
        let (x, y) = if round % 2 == 0 { (b.id, d.id) } else { (d.id, b.id) };
        let (ra, rb) =
            tokio::join!(h.accounts.make_owner(&h.actor, x, c.id), h.accounts.make_owner(&h.actor, y, c.id),);
        assert!(ra.is_ok() || rb.is_ok(), "round {round}: {ra:?} {rb:?}");
        let owners = owners_of(h, c.id).await;
        assert_eq!(owners.len(), 1, "round {round}: owners {owners:?}");
        assert!(owners[0] == x || owners[0] == y);
    }
    // Racing a dissociation of the would-be owner never strands the client either.
    let (made, removed) = tokio::join!(
        h.accounts.make_owner(&h.actor, c.owner_user_id, c.id),
        h.accounts.dissociate(&h.actor, c.owner_user_id, c.id),
    );
    let owners = owners_of(h, c.id).await;
    assert_eq!(owners.len(), 1, "{made:?} {removed:?}");
    assert!(h.accounts.membership(owners[0], c.id).await.unwrap().is_some());
}

async fn concurrent_creation_of_one_email_leaves_one_user(h: &Harness) {
    for round in 0..5 {
        let email = format!("race{round}@example.com");
        let make =
            |e: String| NewUser { email: e, first_name: "R".into(), last_name: "C".into(), ..Default::default() };
        let (a, b) = tokio::join!(
            h.accounts.create_user(&h.actor, make(email.clone())),
            h.accounts.create_user(&h.actor, make(email.to_uppercase())),
        );
        let oks = [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count();
        assert_eq!(oks, 1, "round {round}: {a:?} {b:?}");
        let refused = a.err().or(b.err()).unwrap();
        assert_eq!(refused.code(), Code::UserExists);
        let matching = h.accounts.list_users(Some(&email)).await.unwrap();
        assert_eq!(matching.len(), 1);
    }
}
