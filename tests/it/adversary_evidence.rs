//! The standing adversary suite, forged evidence: a visitor alone, whatever headers it sends —
//! CloudFlare's, forwarding headers, a Referer outside system_url's path, tokens and markdown in
//! it — can make the doctor ask a question, never make `doctor --fix` change who is trusted or
//! where the site lives, never get a live token into what the doctor stores or prints, and never
//! get a link into the markdown report.

use gatehouse::doctor::model::Status;

use crate::support::doctor::check;
use crate::support::web::{Backend, PASSWORD, Server};

async fn a_visitor_alone_cannot_make_the_doctor_change_trust_or_system_url(backend: Backend) {
    let Some(server) = Server::start(backend, "system_url: \"http://{addr}/clients/billing/\"\n").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let invite_token = gatehouse::secrets::tokens::mint(gatehouse::secrets::tokens::TokenKind::Invite).raw;
    let referers = [
        server.url("login"),
        server.url(&format!("invite/{invite_token}/x")),
        server.url("x](javascript:alert(1))"),
        server.url("clientarea"),
    ];
    for round in 0..12 {
        let mut b = server.browser();
        b.header("cf-ray", "8f1c2a3b4c5d6e7f-FRA");
        b.header("cf-connecting-ip", &format!("198.51.100.{round}"));
        b.header("x-forwarded-for", "173.245.48.1");
        b.header("x-forwarded-proto", "https");
        b.header("referer", &referers[round % referers.len()]);
        b.login("ann@example.com", PASSWORD).await;
        b.get("clientarea").await;
    }
    server.state.flush().await;

    // The doctor may ask, but offers no fix on what a visitor wrote.
    for id in ["proxy.cloudflare", "system_url.requests"] {
        let (found, _) = check(&server.state.loaded, id).await;
        assert!(!found.fix.available, "{id} offers a fix on a visitor's claims: {}", found.message);
        assert_ne!(found.status, Status::Fail, "{id}: {}", found.message);
    }
    let (cloudflare, _) = check(&server.state.loaded, "proxy.cloudflare").await;
    assert_eq!(cloudflare.status, Status::Warn, "the claim raises the question: {}", cloudflare.message);
    assert!(cloudflare.message.contains("not a CloudFlare address"), "{}", cloudflare.message);

    // Not by `--fix`, nor by naming the checks.
    let config = server.dir.path().join("gatehouse.yaml");
    let before = std::fs::read_to_string(&config).unwrap();
    for fix in [&["--fix"][..], &["--fix", "proxy.cloudflare,system_url.requests"][..]] {
        let out = crate::support::gatehouse(server.dir.path())
            .args(["--config", config.to_str().unwrap(), "doctor"])
            .args(fix)
            .output()
            .unwrap();
        let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!printed.contains(&invite_token), "a live token from a Referer was printed:\n{printed}");
    }
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before, "the configuration is unchanged");

    // What was stored keeps no token and none of the visitor's words.
    let paths: Vec<String> = sqlx::query_scalar("SELECT DISTINCT page_path FROM request_observations")
        .fetch_all(server.state.db().pool())
        .await
        .unwrap();
    for path in &paths {
        assert!(!path.contains("inv_") && !path.contains("javascript"), "stored page path {path:?}");
    }

    // The markdown report renders what the visitor wrote as text, not as a link.
    let out = crate::support::gatehouse(server.dir.path())
        .args(["--config", config.to_str().unwrap(), "doctor", "--format", "markdown"])
        .output()
        .unwrap();
    let markdown = String::from_utf8_lossy(&out.stdout);
    assert!(!markdown.contains("](javascript"), "{markdown}");
}

/// What users met is counted from what visitors send: 200 made-up session cookies and 200
/// forms posted without one, at once, on system_url's host and on made-up hosts. The counts stay
/// a handful of rows, and the doctor at most asks (a warning), never fails a check or offers a fix
/// on them; a made-up Host with a forwarding header is no proxy that "does not pass Host".
async fn a_visitor_flooding_what_users_met_grows_nothing_and_fixes_nothing(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..200 {
        let (url, page) = (server.url("login"), server.url("clientarea"));
        let host = if n % 2 == 0 { server.addr.to_string() } else { format!("gatehouse{n}") };
        sends.spawn(async move {
            let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
            let cookie = format!("gatehouse_session=gs_{n:0>43}");
            client.get(page).header("host", &host).header("cookie", cookie).send().await.unwrap();
            let form = [("email", "ann@example.com"), ("password", PASSWORD)];
            let post = client.post(url).header("host", &host).header("x-forwarded-for", "198.51.100.7");
            post.form(&form).send().await.unwrap();
        });
    }
    sends.join_all().await;
    server.state.flush().await;
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM encounters").fetch_one(server.state.db().pool()).await.unwrap();
    assert!(rows <= 6, "counts by kind and cause, not by request: {rows} rows");
    let unknown: i64 =
        sqlx::query_scalar("SELECT CAST(SUM(count) AS BIGINT) FROM encounters WHERE kind = 'unknown_session'")
            .fetch_one(server.state.db().pool())
            .await
            .unwrap();
    assert_eq!(unknown, 100, "every made-up cookie on system_url's host is counted, in one row");
    for id in ["sessions.cookie", "system_url.requests", "system_url.reachable", "proxy.trusted"] {
        let (r, _) = check(&server.state.loaded, id).await;
        assert!(!r.fix.available, "{id} offers a fix on a visitor's word: {}", r.message);
        if id != "system_url.requests" {
            assert_ne!(r.status, Status::Fail, "{id} fails on a visitor's word: {}", r.message);
        }
        assert!(!r.message.contains("does not pass"), "{id}: {}", r.message);
    }
}

web_on_both_backends!(
    a_visitor_alone_cannot_make_the_doctor_change_trust_or_system_url,
    a_visitor_flooding_what_users_met_grows_nothing_and_fixes_nothing,
);
