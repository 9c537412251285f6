//! The security headers on every kind of response: pages, the API, the probes, a 404, a refusal.

use gatehouse::accounts::AdminPermission;

use crate::support::web::{Backend, Server, admin_token, api};

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let server = Server::start(Backend::Sqlite, "").await.unwrap();
    let b = server.browser();
    for path in
        ["login", "register", "password/forgot", "admin/login", "no/such/page", "healthz", "metrics", "api/v1/users"]
    {
        let page = b.get(path).await;
        let header = |name: &str| page.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        let policy = header("content-security-policy");
        assert!(
            policy.starts_with("default-src 'none'") && policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        if header("content-type").starts_with("text/html") {
            // One script, the passkey buttons', from this origin; nothing inline, no eval.
            assert!(policy.contains("form-action 'self'") && policy.contains("script-src 'self';"), "{path}: {policy}");
            assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{path}: {policy}");
        }
        assert!(header("strict-transport-security").is_empty(), "{path}: no HSTS on an http system_url");
    }
    let token = admin_token(&server, &[AdminPermission::UsersView]).await;
    let (status, _) = api(&server, &token, reqwest::Method::GET, "users", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_https_system_url_adds_hsts() {
    let server = Server::start(Backend::Sqlite, "system_url: \"https://{addr}/\"\n").await.unwrap();
    let page = reqwest::get(server.url("login").replace("https://", "http://")).await.unwrap();
    let hsts = page.headers().get("strict-transport-security").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(hsts.starts_with("max-age=31536000"), "{hsts:?}");
}
