//! The admin API (bearer tokens, role permissions), impersonation links, invites and user
//! management pages, the files session store and the probe endpoints — end to end.

use std::os::unix::fs::PermissionsExt;

use crate::support::web::{Backend, PASSWORD, Server, admin_token, api};
use gatehouse::accounts::AdminPermission;
use serde_json::{Value, json};

async fn api_needs_a_token_and_names_missing_permissions(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let r = reqwest::get(server.url("api/v1/clients")).await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let viewer = admin_token(&server, &[AdminPermission::ClientsView]).await;
    let (status, body) =
        api(&server, &viewer, reqwest::Method::POST, "clients", Some(json!({"email": "x@example.com"}))).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(body["error"]["message"].as_str().unwrap().contains("clients.create"), "{body}");
    assert_eq!(api(&server, &viewer, reqwest::Method::GET, "clients", None).await.0, 200);
    assert_eq!(api(&server, "gh_not-a-token", reqwest::Method::GET, "clients", None).await.0, 401);
}

async fn api_manages_clients_users_and_memberships(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let all = AdminPermission::ALL.to_vec();
    let token = admin_token(&server, &all).await;
    let post = reqwest::Method::POST;
    let (status, client) = api(
        &server,
        &token,
        post.clone(),
        "clients",
        Some(json!({"email": "ann@example.com", "first_name": "Ann", "last_name": "Owner", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 201, "{client}");
    let client_id = client["id"].as_i64().unwrap();
    let owner_id = client["owner_user_id"].as_i64().unwrap();
    let (status, user) = api(
        &server,
        &token,
        post.clone(),
        "users",
        Some(json!({"email": "bob@example.com", "first_name": "Bob", "last_name": "Helper", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 201);
    let bob = user["id"].as_i64().unwrap();
    let (status, m) = api(
        &server,
        &token,
        reqwest::Method::PUT,
        &format!("clients/{client_id}/users/{bob}"),
        Some(json!({"permissions": ["invoices", "tickets"]})),
    )
    .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["permissions"], json!(["invoices", "tickets"]));
    let (status, err) =
        api(&server, &token, reqwest::Method::DELETE, &format!("clients/{client_id}/users/{owner_id}"), None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("owner_cannot_be_removed")));
    let (status, _) = api(
        &server,
        &token,
        reqwest::Method::PUT,
        &format!("clients/{client_id}/owner"),
        Some(json!({"user_id": bob})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, banned) = api(&server, &token, post.clone(), "banned-emails", Some(json!({"domain": "spam.test"}))).await;
    assert_eq!(banned["domain"], "spam.test");
    let (status, err) = api(
        &server,
        &token,
        post.clone(),
        "users",
        Some(json!({"email": "x@spam.test", "first_name": "X", "last_name": "Y"})),
    )
    .await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("banned_email_domain")));
    let (status, err) =
        api(&server, &token, reqwest::Method::PATCH, &format!("clients/{client_id}"), Some(json!({"colour": "red"})))
            .await;
    assert_eq!(status, 422, "unknown fields are refused: {err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("unknown field `colour`"), "{err}");
    let (status, err) = api(
        &server,
        &token,
        reqwest::Method::PATCH,
        &format!("clients/{client_id}"),
        Some(json!({"status": "asleep"})),
    )
    .await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("invalid_input")), "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("unknown client status `asleep`"), "{err}");
    let (status, err) = api(
        &server,
        &token,
        post.clone(),
        "clients",
        Some(json!({"email": "new@example.com", "first_name": "N", "last_name": "C", "company": 7})),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (422, Some("invalid_input")),
        "a number is not a company name: {err}"
    );

    // Sessions and two-factor of a user, as an admin.
    let b = server.browser();
    assert_eq!(b.login("bob@example.com", PASSWORD).await.status, 303);
    let (_, sessions) = api(&server, &token, reqwest::Method::GET, &format!("users/{bob}/sessions"), None).await;
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    let (_, ended) = api(&server, &token, reqwest::Method::DELETE, &format!("users/{bob}/sessions"), None).await;
    assert_eq!(ended["ended"], 1);
    assert_eq!(b.get("clientarea").await.status, 303);
    assert_eq!(api(&server, &token, reqwest::Method::DELETE, &format!("users/{bob}/2fa"), None).await.0, 204);
}

async fn impersonation_link_is_single_use_and_audited(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let token = admin_token(&server, &[AdminPermission::UsersImpersonate]).await;
    let (status, link) =
        api(&server, &token, reqwest::Method::POST, &format!("users/{user_id}/impersonate"), None).await;
    assert_eq!(status, 201);
    assert_eq!(link["expires_in"], 60);
    let url = link["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{}login/as/im_", server.base)));

    let b = server.browser();
    let confirm = b.get(&url).await;
    assert_eq!(confirm.status, 200, "GET does not use the link");
    let entered = b.post(&url, &[("csrf_token", &confirm.csrf())]).await;
    assert_eq!(entered.status, 303);
    let area = b.get("clientarea").await;
    assert!(area.body.contains("An administrator is signed in as this user"));
    let again = server.browser();
    assert_eq!(again.get(&url).await.status, 404, "single use: a used link shows no button");
    let csrf = again.get("login").await.csrf();
    assert_eq!(again.post(&url, &[("csrf_token", &csrf)]).await.status, 404, "single use");
    let actions: Vec<String> = server.audit_actions(user_id).await.into_iter().map(|a| a.0).collect();
    assert!(actions.contains(&"user.impersonation_link".into()) && actions.contains(&"user.impersonated".into()));
    let viewer = admin_token(&server, &[AdminPermission::UsersView]).await;
    let (status, err) =
        api(&server, &viewer, reqwest::Method::POST, &format!("users/{user_id}/impersonate"), None).await;
    assert_eq!(status, 403);
    assert!(err["error"]["message"].as_str().unwrap().contains("users.impersonate"));
}

async fn owners_invite_users_who_register_or_log_in(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (_, client_id) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let owner = server.browser();
    owner.login("ann@example.com", PASSWORD).await;
    let sent = owner
        .submit(
            "account/users",
            "account/users/invite",
            &[("email", "carol@example.com"), ("permissions", "invoices"), ("permissions", "tickets")],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let mail = gatehouse::mail::for_recipient(server.accounts().db(), "carol@example.com").await.unwrap();
    let at = mail[0].body.find("http").unwrap();
    let link = mail[0].body[at..].split_whitespace().next().unwrap().to_string();
    assert!(link.starts_with(&format!("{}invite/inv_", server.base)));

    let carol = server.browser();
    let page = carol.get(&link).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Ann Hosting"), "the account is named as everywhere else: {}", page.body);
    let joined = carol
        .post(
            &link,
            &[
                ("csrf_token", &page.csrf()),
                ("email", "carol@example.com"),
                ("first_name", "Carol"),
                ("last_name", "New"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!((joined.status, joined.location()), (303, "/login"), "{}", joined.body);
    assert_eq!(carol.get(&link).await.status, 404, "invite links work once");
    assert_eq!(carol.login("carol@example.com", PASSWORD).await.status, 303);

    let carol_id = server.accounts().user_by_email("carol@example.com").await.unwrap().unwrap().id;
    let m = server.accounts().membership(carol_id, client_id).await.unwrap().unwrap();
    assert_eq!(m.permissions.iter().map(|p| p.key()).collect::<Vec<_>>(), ["invoices", "tickets"]);
    // Only the owner manages users.
    let refused = carol.submit("account/users", &format!("account/users/{carol_id}/remove"), &[]).await;
    assert_eq!(refused.status, 403);
    let changed = owner
        .submit("account/users", &format!("account/users/{carol_id}/permissions"), &[("permissions", "quotes")])
        .await;
    assert_eq!(changed.status, 303);
    let removed = owner.submit("account/users", &format!("account/users/{carol_id}/remove"), &[]).await;
    assert_eq!(removed.status, 303);
    assert!(server.accounts().membership(carol_id, client_id).await.unwrap().is_none());
}

async fn files_store_keeps_hashed_sessions_in_private_files(backend: Backend) {
    let Some(server) = Server::start(backend, "sessions:\n  store: files\n").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();
    let ok = b.login("ann@example.com", PASSWORD).await;
    assert_eq!(ok.status, 303);
    let token = ok.set_cookie().unwrap().split(';').next().unwrap().split('=').nth(1).unwrap().to_string();
    assert_eq!(b.get("clientarea").await.status, 200);
    let dir = server.dir.path().join("gatehouse-data/sessions");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "the pre-login session was replaced, not kept: {files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().to_string();
    assert_eq!(name, format!("sess_{}", gatehouse::secrets::tokens::digest(&token)), "named by the hash");
    assert!(!std::fs::read_to_string(&files[0]).unwrap().contains(&token), "the token is not stored");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);

    // The seed's failure: the directory becomes unwritable → a login cannot be kept, and says so.
    std::fs::remove_dir_all(&dir).unwrap();
    let fresh = server.browser();
    let form = fresh.get("login").await;
    assert_eq!(form.status, 200);
    let r = fresh
        .post("login", &[("csrf_token", &form.csrf()), ("email", "ann@example.com"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("Your session could not be saved"), "{}", r.body);
    let ready = reqwest::get(server.url("readyz?verbose")).await.unwrap();
    assert_eq!(ready.status(), 503, "readiness shows the store failing");
    let text = ready.text().await.unwrap();
    assert!(
        text.contains("[+]database ok\n[-]session_store failed: ") && text.ends_with("readyz check failed\n"),
        "{text}"
    );
    let excluded = reqwest::get(server.url("readyz?verbose&exclude=session_store")).await.unwrap();
    assert_eq!(excluded.status(), 200, "excluded from the verdict");
    assert!(excluded.text().await.unwrap().contains("[-]session_store excluded: failed: "));
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(reqwest::get(server.url("readyz")).await.unwrap().status(), 200);
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 303);
}

async fn probes_answer(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    assert_eq!(reqwest::get(server.url("healthz")).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(server.url("livez")).await.unwrap().text().await.unwrap(), "ok\n");
    let ready: Value = reqwest::get(server.url("readyz?format=json")).await.unwrap().json().await.unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    // As Kubernetes' own probes answer, and a check can be left out of the verdict.
    let verbose = reqwest::get(server.url("readyz?verbose")).await.unwrap().text().await.unwrap();
    assert_eq!(verbose, "[+]database ok\n[+]session_store ok\nreadyz check passed\n");
    let known: Value = reqwest::get(server.url(".well-known/gatehouse")).await.unwrap().json().await.unwrap();
    assert_eq!(known["system_url"], server.base);
    assert_eq!(known["instance_id"].as_str().unwrap().len(), 32);
    let metrics = reqwest::get(server.url("metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gatehouse_http_responses_total{class=\"2xx\"}"), "{metrics}");
    assert!(metrics.contains("gatehouse_sessions_expired"));

    // What a platform's monitoring expects: build info, latency by route pattern (never a raw
    // path: a reset token must not become a label), login outcomes, the last cron run.
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 303);
    assert_eq!(server.browser().get("password/reset/not-a-real-token-s3cr3t").await.status, 404, "an invalid link");
    gatehouse::cron::Cron { loaded: &server.state.loaded, services: &server.state.services }
        .run(Some(gatehouse::cron::Job::Heartbeat))
        .await
        .unwrap();
    let response = reqwest::get(server.url("metrics")).await.unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let metrics = response.text().await.unwrap();
    assert!(metrics.contains(&format!("gatehouse_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))));
    assert!(metrics.contains("gatehouse_logins_total{outcome=\"ok\"} 1"), "{metrics}");
    assert!(
        metrics.contains("gatehouse_http_request_duration_seconds_count{method=\"POST\",route=\"/login\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/password/reset/{token}\""), "the pattern, not the path");
    assert!(!metrics.contains("s3cr3t"), "no token in a label");
    assert!(metrics.contains("gatehouse_cron_last_run_timestamp_seconds "), "{metrics}");
    assert!(metrics.ends_with("# EOF\n"));
}

/// Unknown routes and methods answer in the API's error contract under `/api/`, and with a page
/// in the site's layout elsewhere.
async fn unknown_routes_and_methods_answer_in_kind(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let token = admin_token(&server, &[AdminPermission::ClientsView]).await;
    let (status, body) = api(&server, &token, reqwest::Method::GET, "no-such-thing", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) = api(&server, &token, reqwest::Method::DELETE, "health", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (405, Some("method_not_allowed")), "{body}");

    // Bodies and path parameters that cannot be read are refused in the same contract.
    let token = admin_token(&server, &[AdminPermission::ClientsView, AdminPermission::ClientsCreate]).await;
    let (status, body) = api(&server, &token, reqwest::Method::GET, "clients/abc", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid_input")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("path: "), "{body}");
    let broken = reqwest::Client::new()
        .post(server.url("api/v1/clients"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 422);
    let body: Value = broken.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_input", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("request body: "), "{body}");

    let b = server.browser();
    let missing = b.get("no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Page not found") && missing.body.contains("<nav>"), "{}", missing.body);
    let logout = b.get("logout").await;
    assert_eq!(logout.status, 405);
    assert!(logout.body.contains("Log out button"), "{}", logout.body);
}

/// An admin ends a user's lockout over the API; it is audited with what was removed.
async fn an_admin_unlocks_a_locked_out_user(backend: Backend) {
    let extra = "security:\n  lockout: { max_failures: 2, window: 15m, lock: 15m }\n";
    let Some(server) = Server::start(backend, extra).await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();
    for _ in 0..2 {
        b.login("ann@example.com", "not the password").await;
    }
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 401, "locked");
    let viewer = admin_token(&server, &[AdminPermission::UsersView]).await;
    let (status, _) = api(&server, &viewer, reqwest::Method::DELETE, &format!("users/{user_id}/lockout"), None).await;
    assert_eq!(status, 403, "unlocking needs users.manage");
    let token = admin_token(&server, &[AdminPermission::UsersManage]).await;
    let (status, body) = api(&server, &token, reqwest::Method::DELETE, &format!("users/{user_id}/lockout"), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["removed"].as_array().unwrap().iter().any(|s| s == "account:ann@example.com"), "{body}");
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 303, "unlocked");
    assert!(server.audit_actions(user_id).await.iter().any(|(a, _)| a == "user.unlock"));
}

web_on_both_backends!(
    an_admin_unlocks_a_locked_out_user,
    unknown_routes_and_methods_answer_in_kind,
    api_needs_a_token_and_names_missing_permissions,
    api_manages_clients_users_and_memberships,
    impersonation_link_is_single_use_and_audited,
    owners_invite_users_who_register_or_log_in,
    files_store_keeps_hashed_sessions_in_private_files,
    probes_answer,
);

/// A TCP forwarder to PostgreSQL that can be cut, as the database stopping under a running
/// server: open connections break and new ones are refused.
struct Forwarder {
    port: u16,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Forwarder {
    async fn start(target: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut accept_stop = stopped.clone();
            loop {
                tokio::select! {
                    _ = accept_stop.changed() => break, // the listener is dropped: connections refused
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { break };
                        let mut conn_stop = stopped.clone();
                        tokio::spawn(async move {
                            let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else { return };
                            tokio::select! {
                                _ = conn_stop.changed() => {}
                                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            }
                        });
                    }
                }
            }
        });
        Self { port, stop }
    }

    fn cut(&self) {
        let _ = self.stop.send(true);
    }
}

/// PostgreSQL stops under a running server: a valid API token gets 503 `database_unavailable`
/// (not 401 "invalid or revoked"), a signed-in user a "temporarily unavailable" page (not the
/// login page, and the session is kept), and `/readyz` says 503 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_that_stops_is_reported_as_unavailable() {
    let Some(schema) = crate::support::PgSchema::create().await else { return };
    let forwarder = Forwarder::start("127.0.0.1:5432").await;
    let url = schema.url.replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", forwarder.port), 1);
    assert!(url.contains(&forwarder.port.to_string()), "expected a PostgreSQL URL on 127.0.0.1:5432: {url}");
    let server = Server::start_on(tempfile::tempdir().unwrap(), url, Some(schema), "").await;
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let token = admin_token(&server, &[AdminPermission::ClientsView]).await;
    let b = server.browser();
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 303);
    assert_eq!(api(&server, &token, reqwest::Method::GET, "clients", None).await.0, 200);
    assert_eq!(reqwest::get(server.url("readyz")).await.unwrap().status(), 200);

    forwarder.cut();
    let started = std::time::Instant::now();
    let ready = reqwest::get(server.url("readyz?verbose")).await.unwrap();
    assert_eq!(ready.status(), 503);
    // A bound on behaviour, not a speed target: before, the probe hung for the pool's 30 s.
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    let (status, body) = api(&server, &token, reqwest::Method::GET, "clients", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("database_unavailable")), "{body}");
    let page = b.get("clientarea").await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("temporarily unavailable"), "{}", page.body);
    assert!(page.set_cookie().is_none(), "the session cookie is kept");
}
