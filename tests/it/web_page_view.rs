//! A page view reads the session, its user and the user's clients together (one query on the
//! database store, the session file and one query on the files store). What a page shows and
//! allows must still be what the database holds at that moment: nothing is kept between
//! requests.

use crate::support::web::{Backend, PASSWORD, Server};
use gatehouse::accounts::{Actor, NewUser, Permissions};

async fn page_views_follow_the_database_at_once(backend: Backend, store_yaml: &str) {
    let Some(server) = Server::start(backend, store_yaml).await else { return };
    let accounts = server.accounts();
    let admin = Actor::system("test");
    let (_, ann_client) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let (_, bob_client) = server.client_with_owner("bob@example.com", "Bob Hosting").await;
    let carol = accounts
        .create_user(
            &admin,
            NewUser {
                email: "carol@example.com".into(),
                first_name: "Carol".into(),
                last_name: "Jones".into(),
                language: String::new(),
                password: Some(PASSWORD.into()),
            },
        )
        .await
        .unwrap();
    let details = Permissions::parse_list("profile").unwrap();
    accounts.associate(&admin, carol.id, ann_client, &details).await.unwrap();

    let b = server.browser();
    assert_eq!(b.login("carol@example.com", PASSWORD).await.status, 303);
    let home = b.get("clientarea").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Ann Hosting") && !home.body.contains("Bob Hosting"), "{}", home.body);
    assert_eq!(b.get("account/client").await.status, 200, "the profile permission opens the details");

    // A second client appears on the next page view; a closed one disappears.
    accounts.associate(&admin, carol.id, bob_client, &Permissions::none()).await.unwrap();
    assert!(b.get("clientarea").await.body.contains("Bob Hosting"));
    accounts.close_client(&admin, bob_client).await.unwrap();
    assert!(!b.get("clientarea").await.body.contains("Bob Hosting"));

    // A permission taken away is gone on the next request, and so is a membership.
    accounts.set_permissions(&admin, carol.id, ann_client, &Permissions::none()).await.unwrap();
    assert_eq!(b.get("account/client").await.status, 403);
    accounts.dissociate(&admin, carol.id, ann_client).await.unwrap();
    let page = b.get("account/client").await;
    assert_eq!((page.status, page.location()), (303, "/clientarea"));

    // A deleted user's session opens nothing.
    accounts.dissociate(&admin, carol.id, bob_client).await.unwrap();
    accounts.delete_user(&admin, carol.id).await.unwrap();
    let page = b.get("clientarea").await;
    assert_eq!((page.status, page.location()), (303, "/login"));
}

async fn database_store(backend: Backend) {
    page_views_follow_the_database_at_once(backend, "").await;
}

async fn files_store(backend: Backend) {
    page_views_follow_the_database_at_once(backend, "sessions:\n  store: files\n").await;
}

web_on_both_backends!(database_store, files_store);
