//! The standing adversary suite, path and parameter tampering: every route with a token or id
//! segment, fed encoded slashes, dots, other people's ids and over-long values, answers 404,
//! 403 or 422 — and never performs another action, nor draws the request's text into a link or
//! a form.

use gatehouse::accounts::{Actor, Permissions};

use crate::support::web::{Backend, PASSWORD, Server};

/// Segments an attacker puts where a token goes.
fn hostile_segments() -> Vec<String> {
    vec![
        "..%2F..%2Faccount%2Fusers%2F2%2Fremove".into(),
        "..%2f..%2flogout".into(),
        "%2e%2e%2f%2e%2e%2faccount%2fsecurity%2f2fa%2fsetup".into(),
        "im_..%2F..%2Faccount%2Fusers%2F2%2Fremove".into(),
        "%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E".into(),
        "A".repeat(5000),
        format!("pr_{}", "A".repeat(43)),
        format!("inv_{}", "A".repeat(43)),
        format!("im_{}", "A".repeat(43)),
    ]
}

async fn token_routes_refuse_what_is_not_a_live_token(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (owner_id, client_id) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    // A second member the hostile link would remove.
    let none = Permissions::none();
    let actor = Actor::system("test");
    let invite = server.accounts().create_invite(&actor, client_id, "bob@example.com", &none, None).await.unwrap();
    let bob = server.browser();
    let path = format!("invite/{}", invite.token);
    let fields = [("email", "bob@example.com"), ("first_name", "Bob"), ("last_name", "Ray"), ("password", PASSWORD)];
    assert_eq!(bob.submit(&path, &path, &fields).await.status, 303);

    let owner = server.browser();
    assert_eq!(owner.login("ann@example.com", PASSWORD).await.status, 303);
    for route in ["login/as", "invite", "password/reset"] {
        for segment in hostile_segments() {
            let page = owner.get(&format!("{route}/{segment}")).await;
            assert!(matches!(page.status, 404 | 414 | 400), "{route}/{segment}: {}", page.status);
            assert!(!page.body.contains("account/users"), "{route}/{segment} drew the path into the page");
            assert!(!page.body.contains("<script>"), "{route}/{segment} drew markup into the page");
            let csrf = owner.get("clientarea").await.csrf();
            let post = owner.post(&format!("{route}/{segment}"), &[("csrf_token", &csrf)]).await;
            assert!(matches!(post.status, 404 | 414 | 400 | 422), "POST {route}/{segment}: {}", post.status);
        }
    }
    let members = server.accounts().members_of_client(client_id).await.unwrap();
    assert_eq!(members.len(), 2, "nobody was removed");
    assert_eq!(owner.get("clientarea").await.status, 200, "the owner is still signed in");
    let _ = owner_id;
}

async fn id_routes_refuse_other_peoples_ids(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (_, ann_client) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let (carl_id, carl_client) = server.client_with_owner("carl@example.com", "Carl Ltd").await;
    let carl = server.browser();
    assert_eq!(carl.login("carl@example.com", PASSWORD).await.status, 303);
    let carl_session = carl.get("account/sessions").await;
    let handle = regex::Regex::new(r"account/sessions/([0-9a-f]{16})/revoke").unwrap();
    let _ = handle.captures(&carl_session.body); // Carl's own session is the current one: no revoke button.

    let ann = server.browser();
    assert_eq!(ann.login("ann@example.com", PASSWORD).await.status, 303);
    // Carl's sessions as Ann sees them: none. Their handles are not guessable, but try his id.
    for id in [carl_id.to_string(), "0".into(), "-1".into(), "99999999999999999999".into(), "1%2F..".into()] {
        for action in ["remove", "permissions"] {
            let r = ann
                .submit("account/users", &format!("account/users/{id}/{action}"), &[("permissions", "tickets")])
                .await;
            assert!(matches!(r.status, 403 | 404 | 422), "account/users/{id}/{action}: {}", r.status);
        }
        let r = ann.submit("account/sessions", &format!("account/sessions/{id}/revoke"), &[]).await;
        assert!(matches!(r.status, 403 | 404 | 422), "account/sessions/{id}/revoke: {}", r.status);
    }
    // Carl's known device, as Ann would guess it: never forgotten by her.
    let who = gatehouse::accounts::Principal::User;
    let (carls, _) = server.auth().known_devices(who, carl_id, None).await.unwrap();
    assert_eq!(carls.len(), 1, "Carl's browser is a known device");
    let carl_device = carls[0].id.to_string();
    for id in [carl_device.as_str(), "0", "-1", "99999999999999999999", "1%2F.."] {
        let r = ann.submit("account/sessions", &format!("account/devices/{id}/forget"), &[]).await;
        assert!(matches!(r.status, 400 | 403 | 404 | 422), "account/devices/{id}/forget: {}", r.status);
    }
    assert_eq!(server.auth().known_devices(who, carl_id, None).await.unwrap().0.len(), 1, "Carl's device stays");
    assert_eq!(server.accounts().members_of_client(carl_client).await.unwrap().len(), 1, "Carl's account untouched");
    assert_eq!(carl.get("clientarea").await.status, 200, "Carl is still signed in");
    let _ = ann_client;
}

/// A reset link pasted with a trailing slash matches no route: the request log names the path
/// with the token masked, never the live token.
#[test]
fn a_token_in_a_path_no_route_matches_never_reaches_the_log() {
    use std::io::{BufRead, BufReader, Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    assert!(crate::support::gatehouse(tmp.path()).arg("migrate").output().unwrap().status.success());
    let port = crate::support::port_for_a_server();
    let mut serve = std::process::Command::new(assert_cmd::cargo::cargo_bin("gatehouse"))
        .current_dir(tmp.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("GATEHOUSE_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on"), "{line}");
    let token = gatehouse::secrets::tokens::mint(gatehouse::secrets::tokens::TokenKind::PasswordReset).raw;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let request = format!("GET /password/reset/{token}/ HTTP/1.1\r\nHost: localhost:8080\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let _ = serve.kill();
    let mut log = String::new();
    serve.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    let _ = serve.wait();
    assert!(log.contains("/password/reset/***/"), "the request is logged, its token masked:\n{log}");
    assert!(!log.contains(&token), "the live token reached the log:\n{log}");
}

/// A name carrying a terminal's escape sequence (it would rewrite an operator's terminal in
/// `client list`) is refused at sign-up, like any control character.
async fn control_characters_in_names_are_refused(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let b = server.browser();
    let fields = [
        ("first_name", "Eve\u{1b}]0;owned\u{7}"),
        ("last_name", "Escape"),
        ("email", "eve@example.com"),
        ("password", PASSWORD),
        ("password_confirm", PASSWORD),
    ];
    let answer = b.submit("register", "register", &fields).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(answer.body.contains("control characters"), "{}", answer.body);
    assert!(server.accounts().user_by_email("eve@example.com").await.unwrap().is_none());
}

/// PostgreSQL refuses a NUL byte in text (SQLSTATE 22021, all digits): that is the request's
/// fault, answered 422 — never the "database unavailable" that turns the whole site away.
async fn a_nul_byte_is_the_requests_fault_not_an_outage(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let b = server.browser();
    let r = b.login("x\u{0}@example.com", "wrong password!").await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(b.get("login").await.status, 200, "the site stays up");
    let token =
        crate::support::web::admin_token(&server, &[gatehouse::accounts::AdminPermission::SettingsManage]).await;
    let body = serde_json::json!({"domain": "x\u{0}.example"});
    let (status, _) =
        crate::support::web::api(&server, &token, reqwest::Method::POST, "banned-emails", Some(body)).await;
    assert!(matches!(status, 400 | 422), "{status}");
    assert_eq!(b.get("login").await.status, 200, "the site stays up");
}

web_on_both_backends!(
    a_nul_byte_is_the_requests_fault_not_an_outage,
    token_routes_refuse_what_is_not_a_live_token,
    id_routes_refuse_other_peoples_ids,
    control_characters_in_names_are_refused,
);
