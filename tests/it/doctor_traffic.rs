//! The checks that reason about how the service is reached and used — system_url.reachable,
//! system_url.requests, sessions.cookie, sessions.lifetime, proxy.cloudflare, time.timezone,
//! time.clock, admin.roles — proven on real faults: the broken deployment is built, the symptom is shown
//! through the real service, the check fails with evidence, the deployment is fixed (usually by
//! restarting with a corrected configuration), the symptom is gone and the check passes.

use std::collections::BTreeSet;

use crate::support::doctor::check;
use crate::support::web::{Backend, PASSWORD, Server, api};
use gatehouse::accounts::{Actor, AdminPermission as P};
use gatehouse::cron::heartbeat::Heartbeat;
use gatehouse::doctor::model::Status;
use serde_json::json;

const LOGIN_INCORRECT: &str = "Login details incorrect";

async fn system_url_requests_sees_visitors_on_another_host(backend: Backend) {
    let Some(mut server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let (quiet, _) = check(&server.state.loaded, "system_url.requests").await;
    assert_eq!(quiet.status, Status::Skipped, "no traffic yet: {}", quiet.message);

    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 303);
    server.state.flush().await;
    let (healthy, _) = check(&server.state.loaded, "system_url.requests").await;
    assert_eq!(healthy.status, Status::Pass, "healthy: no false alarm: {}", healthy.message);

    // Visitors open the site as localhost:PORT while system_url says 127.0.0.1:PORT.
    let visitors_host = format!("localhost:{}", server.addr.port());
    let mut visitor = server.browser();
    visitor.header("host", &visitors_host);
    let refused = visitor.login("ann@example.com", PASSWORD).await;
    assert_eq!(refused.status, 401, "the symptom");
    assert!(refused.body.contains(LOGIN_INCORRECT));
    server.state.flush().await;
    let (found, _) = check(&server.state.loaded, "system_url.requests").await;
    assert_eq!(found.status, Status::Fail, "{}", found.message);
    assert_eq!(found.evidence["by_origin"][0][0], format!("http://{visitors_host}"));
    assert_eq!(found.evidence["elsewhere"], 2, "the form and the POST");

    // The fix: system_url is the address visitors use.
    server.reconfigure(&format!("system_url: \"http://{visitors_host}/\"\n")).await;
    let mut visitor = server.browser();
    visitor.header("host", &visitors_host);
    assert_eq!(visitor.login("ann@example.com", PASSWORD).await.status, 303, "the symptom is gone");
    server.state.flush().await;
    let (fixed, _) = check(&server.state.loaded, "system_url.requests").await;
    assert_eq!(
        fixed.status,
        Status::Pass,
        "requests seen under the old configuration no longer count: {}",
        fixed.message
    );
}

/// A load balancer health-checking the backend port directly (another Host) is not a visitor on
/// the wrong host; and what serve saw is still there for the doctor right after it stops.
async fn probes_are_not_visitors_and_observations_survive_a_restart(backend: Backend) {
    let Some(mut server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let mut balancer = server.browser();
    balancer.header("host", &format!("10.0.0.5:{}", server.addr.port()));
    for probe in ["healthz", "readyz", "metrics", ".well-known/gatehouse"] {
        assert_eq!(balancer.get(probe).await.status, 200, "{probe}");
    }
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 303);

    // No explicit flush: stopping serve (what a restart does) stores what it observed.
    server.reconfigure("").await;
    let (result, _) = check(&server.state.loaded, "system_url.requests").await;
    assert_eq!(result.status, Status::Pass, "observed before the restart, probes left out: {}", result.message);
    assert_eq!(result.evidence["elsewhere"], 0, "{:?}", result.evidence);
}

async fn system_url_reachable_finds_another_instance(backend: Backend) {
    let Some(mut ours) = Server::start(backend, "").await else { return };
    let (healthy, _) = check(&ours.state.loaded, "system_url.reachable").await;
    assert_eq!(healthy.status, Status::Pass, "{}", healthy.message);
    assert_eq!(healthy.evidence["answered_instance_id"], ours.state.instance_id.as_str());

    // system_url names another deployment (an old server, staging) that has its own database.
    let Some(other) = Server::start(backend, "").await else { return };
    ours.client_with_owner("ann@example.com", "Ann Hosting").await;
    ours.reconfigure(&format!("system_url: \"{}\"\n", other.base)).await;
    let refused = other.browser().login("ann@example.com", PASSWORD).await;
    assert_eq!(refused.status, 401, "the symptom: the address users follow does not know them");
    let (found, _) = check(&ours.state.loaded, "system_url.reachable").await;
    assert_eq!(found.status, Status::Fail, "{}", found.message);
    assert!(found.message.contains("another gatehouse instance"), "{}", found.message);
    assert_eq!(found.evidence["answered_instance_id"], other.state.instance_id.as_str());
    assert_eq!(found.evidence["expected_instance_id"], ours.state.instance_id.as_str());

    // Nothing listening there at all: the phase that failed is named.
    let closed = crate::support::closed_port();
    ours.reconfigure(&format!("system_url: \"http://127.0.0.1:{closed}/\"\n")).await;
    let (down, _) = check(&ours.state.loaded, "system_url.reachable").await;
    assert_eq!(down.status, Status::Fail);
    assert!(down.message.contains("tcp phase") && down.message.contains("refused"), "{}", down.message);

    ours.reconfigure("").await;
    assert_eq!(ours.browser().login("ann@example.com", PASSWORD).await.status, 303, "the symptom is gone");
    assert_eq!(check(&ours.state.loaded, "system_url.reachable").await.0.status, Status::Pass);
}

async fn sessions_cookie_sees_secure_cookies_on_plain_http(backend: Backend) {
    let proxy = "trusted_proxies:\n  ranges: [\"127.0.0.1\"]\n";
    let Some(mut server) = Server::start(backend, proxy).await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let mut b = server.browser();
    b.header("x-forwarded-proto", "http");
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 303);
    server.state.flush().await;
    let (healthy, _) = check(&server.state.loaded, "sessions.cookie").await;
    assert_eq!(healthy.status, Status::Pass, "healthy: no false alarm: {}", healthy.message);

    // system_url says https, but the proxy reports that visitors come over plain http: the
    // browser drops the Secure cookie, so the login form's session never comes back. (Browsers
    // treat 127.0.0.1 as a secure context, so the visitor uses a real host name.)
    let site = format!("gatehouse.test:{}", server.addr.port());
    server.reconfigure(&format!("system_url: \"https://{site}/\"\n{proxy}")).await;
    let mut b = server.browser_as("gatehouse.test");
    b.header("x-forwarded-proto", "http");
    let refused = b.login("ann@example.com", PASSWORD).await;
    assert_eq!(refused.status, 403, "the symptom");
    assert!(refused.body.contains("Invalid CSRF token"), "{}", refused.body);
    server.state.flush().await;
    let (found, _) = check(&server.state.loaded, "sessions.cookie").await;
    assert_eq!(found.status, Status::Fail, "{}", found.message);
    assert_eq!(found.evidence["cookie"]["secure"], true);
    assert_eq!(found.evidence["plain_http_via_proxy"], 2);

    // Without the proxy's word, gatehouse cannot tell: a warning that names the peer.
    server.reconfigure(&format!("system_url: \"https://{site}/\"\n")).await;
    server.browser_as("gatehouse.test").get("login").await;
    server.state.flush().await;
    let (unsure, _) = check(&server.state.loaded, "sessions.cookie").await;
    assert_eq!(unsure.status, Status::Warn, "{}", unsure.message);
    assert_eq!(unsure.evidence["peers_without_proto_header"][0][0], "127.0.0.1");

    // The fix for a site without TLS: system_url says what visitors use.
    server.reconfigure(proxy).await;
    let mut b = server.browser();
    b.header("x-forwarded-proto", "http");
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 303, "the symptom is gone");
    server.state.flush().await;
    assert_eq!(check(&server.state.loaded, "sessions.cookie").await.0.status, Status::Pass);
}

async fn sessions_lifetime_sees_sessions_ended_by_ip_changes(backend: Backend) {
    let proxy = "trusted_proxies:\n  ranges: [\"127.0.0.1\"]\n";
    let Some(mut server) = Server::start(backend, proxy).await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let mut b = server.browser();
    b.header("x-forwarded-for", "198.51.100.7");
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 303);
    assert_eq!(b.get("clientarea").await.status, 200);
    server.state.flush().await;
    let (healthy, _) = check(&server.state.loaded, "sessions.lifetime").await;
    assert_eq!(healthy.status, Status::Pass, "healthy: no false alarm: {}", healthy.message);

    // The visitor's address rotates (a mobile network): ip_check logs them out.
    b.header("x-forwarded-for", "198.51.100.8");
    let out = b.get("clientarea").await;
    assert_eq!((out.status, out.location()), (303, "/login?expired=1"), "the symptom");
    server.state.flush().await;
    let (found, _) = check(&server.state.loaded, "sessions.lifetime").await;
    assert_eq!(found.status, Status::Fail, "{}", found.message);
    assert_eq!(found.evidence["sessions_ended_by_ip_change"], 1);
    assert_eq!(found.evidence["ip_check"], true);

    server.reconfigure(&format!("{proxy}sessions:\n  ip_check: false\n")).await;
    let mut b = server.browser();
    b.header("x-forwarded-for", "198.51.100.7");
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 303);
    b.header("x-forwarded-for", "198.51.100.8");
    assert_eq!(b.get("clientarea").await.status, 200, "the symptom is gone");
    server.state.flush().await;
    assert_eq!(check(&server.state.loaded, "sessions.lifetime").await.0.status, Status::Pass);

    // A very short idle timeout is named too.
    let mut short = server.state.loaded.clone();
    short.config.sessions.idle_timeout = "2m".parse().unwrap();
    let (warned, _) = check(&short, "sessions.lifetime").await;
    assert_eq!(warned.status, Status::Warn, "{}", warned.message);
    assert!(warned.message.contains("idle_timeout is 2m"), "{}", warned.message);
}

async fn time_timezone_compares_web_and_cron(backend: Backend) {
    let Some(server) = Server::start(backend, "timezone: Europe/Berlin\n").await else { return };
    let loaded = &server.state.loaded;
    server.state.flush().await; // the web heartbeat
    let cron = Heartbeat::of_this_process(gatehouse::cron::heartbeat::Role::Cron, loaded, server.state.db().now());
    cron.write(server.accounts().db()).await.unwrap();
    let (healthy, _) = check(loaded, "time.timezone").await;
    assert_eq!(healthy.status, Status::Pass, "{}", healthy.message);

    // The cron runs with another zone (a different configuration or TZ).
    let mut elsewhere = loaded.clone();
    elsewhere.config.timezone = "America/New_York".parse().unwrap();
    Heartbeat::of_this_process(gatehouse::cron::heartbeat::Role::Cron, &elsewhere, server.state.db().now())
        .write(server.accounts().db())
        .await
        .unwrap();
    let (found, _) = check(loaded, "time.timezone").await;
    assert_eq!(found.status, Status::Fail, "{}", found.message);
    assert!(found.message.contains("America/New_York") && found.message.contains("Europe/Berlin"), "{}", found.message);

    cron.write(server.accounts().db()).await.unwrap();
    assert_eq!(check(loaded, "time.timezone").await.0.status, Status::Pass);

    // The real cron, started with a typo in TZ: the C library silently uses UTC there, and the
    // doctor names it.
    let config = server.dir.path().join("gatehouse.yaml");
    crate::support::gatehouse(server.dir.path())
        .args(["--config", config.to_str().unwrap(), "cron", "--job", "heartbeat"])
        .env("TZ", "Europe/Berln")
        .assert()
        .success();
    let (named, _) = check(loaded, "time.timezone").await;
    assert_eq!(named.status, Status::Warn, "timezone: is set, so gatehouse's own times hold: {}", named.message);
    assert!(named.message.contains("TZ=Europe/Berln") && named.message.contains("UTC"), "{}", named.message);
    cron.write(server.accounts().db()).await.unwrap();
    assert_eq!(check(loaded, "time.timezone").await.0.status, Status::Pass, "fixed");
}

async fn admin_roles_finds_roles_that_stop_halfway(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (actor, accounts) = (Actor::system("test"), server.accounts());
    let (empty, _) = check(&server.state.loaded, "admin.roles").await;
    assert_eq!(empty.status, Status::Warn, "no admin at all: {}", empty.message);

    let sales: BTreeSet<P> = [P::ClientsView, P::ClientsCreate].into();
    accounts.create_role(&actor, &gatehouse::accounts::Grantor::Operator, "Sales", &sales).await.unwrap();
    let sam = accounts
        .create_admin(&actor, &gatehouse::accounts::Grantor::Operator, "sam", "sam@example.com", "Sales", None)
        .await
        .unwrap();
    let token =
        accounts.create_api_token(&actor, &gatehouse::accounts::Grantor::Operator, sam.id, "test").await.unwrap().token;
    let body = json!({"email": "new@example.com", "first_name": "New", "last_name": "Client"});
    let (created, client) = api(&server, &token, reqwest::Method::POST, "clients", Some(body)).await;
    assert_eq!(created, 201, "{client}");
    let path = format!("clients/{}", client["id"]);
    let (denied, why) = api(&server, &token, reqwest::Method::PATCH, &path, Some(json!({"company": "X"}))).await;
    assert_eq!(denied, 403, "the symptom: access denied on what sam just created");
    assert!(why["error"]["message"].as_str().unwrap().contains("clients.manage"));

    server.state.flush().await;
    let (found, _) = check(&server.state.loaded, "admin.roles").await;
    assert_eq!(found.status, Status::Warn, "{}", found.message);
    assert_eq!(found.evidence["incomplete_roles"], json!(["Sales: clients.create without clients.manage"]));
    // What sam met is told too: the role, the permission, how often.
    assert_eq!(found.evidence["refused_in_the_last_day"], json!(["role “Sales” was refused clients.manage 1 time(s)"]));
    assert!(found.message.contains("admins met \"Access Denied\""), "{}", found.message);

    let complete: BTreeSet<P> = [P::ClientsView, P::ClientsCreate, P::ClientsManage].into();
    accounts.set_role_permissions(&actor, &gatehouse::accounts::Grantor::Operator, "Sales", &complete).await.unwrap();
    let (allowed, _) = api(&server, &token, reqwest::Method::PATCH, &path, Some(json!({"company": "X"}))).await;
    assert_eq!(allowed, 200, "the symptom is gone");
    assert_eq!(check(&server.state.loaded, "admin.roles").await.0.status, Status::Pass, "a refusal since resolved");

    // A role complete by the rules, but its admin is refused what they tried: a question for
    // the operator, told from what the server met.
    let (refused, _) = api(&server, &token, reqwest::Method::GET, "users", None).await;
    assert_eq!(refused, 403);
    server.state.flush().await;
    let (met, _) = check(&server.state.loaded, "admin.roles").await;
    assert_eq!(met.status, Status::Warn, "{}", met.message);
    assert!(met.message.contains("“Sales” was refused users.view 1 time(s)"), "{}", met.message);
    let viewing: BTreeSet<P> = complete.iter().copied().chain([P::UsersView]).collect();
    accounts.set_role_permissions(&actor, &gatehouse::accounts::Grantor::Operator, "Sales", &viewing).await.unwrap();
    assert_eq!(check(&server.state.loaded, "admin.roles").await.0.status, Status::Pass);
}

/// A licensing server whose clock is `skew_secs` away from ours (it only answers with a Date).
async fn licensing_server(skew_secs: i64) -> String {
    let app = axum::Router::new().fallback(move || async move {
        let date = chrono::Utc::now() + chrono::Duration::seconds(skew_secs);
        ([(axum::http::header::DATE, date.format("%a, %d %b %Y %H:%M:%S GMT").to_string())], "ok")
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

async fn time_clock_compares_with_independent_clocks(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let mut loaded = server.state.loaded.clone();
    let (alone, _) = check(&loaded, "time.clock").await;
    if backend == Backend::Sqlite {
        assert_eq!(alone.status, Status::Skipped, "SQLite shares this machine's clock: {}", alone.message);
    } else {
        assert_eq!(alone.status, Status::Pass, "the PostgreSQL server runs on this machine: {}", alone.message);
        assert!(alone.evidence["skew_secs"]["database_server"].as_f64().unwrap().abs() < 2.0);
    }

    loaded.config.license.server = licensing_server(0).await.parse().unwrap();
    let (agreed, _) = check(&loaded, "time.clock").await;
    assert_eq!(agreed.status, Status::Pass, "{}", agreed.message);

    // Our clock against one that is two minutes ahead: as if this machine's clock were behind.
    loaded.config.license.server = licensing_server(120).await.parse().unwrap();
    let (found, _) = check(&loaded, "time.clock").await;
    assert_eq!(found.status, Status::Fail, "{}", found.message);
    let skew = found.evidence["skew_secs"]["licensing_server"].as_f64().unwrap();
    assert!((-122.0..=-118.0).contains(&skew), "{skew}");
}

async fn proxy_cloudflare_sees_traffic_through_untrusted_cloudflare(backend: Backend) {
    // nginx on this machine (127.0.0.1) is trusted; CloudFlare in front of it is not.
    let trusted_nginx = "trusted_proxies:\n  ranges: [\"127.0.0.1/32\"]\n";
    let Some(mut server) = Server::start(backend, trusted_nginx).await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 303);
    server.state.flush().await;
    let (healthy, _) = check(&server.state.loaded, "proxy.cloudflare").await;
    assert_eq!(healthy.status, Status::Pass, "healthy: no false alarm: {}", healthy.message);

    // Requests arrive through CloudFlare: nginx says CloudFlare's edge (173.245.48.1) connected
    // to it, and CloudFlare's headers name the visitor. CloudFlare is not trusted, so the
    // visitor's address is lost and the edge's is recorded instead.
    let mut b = server.browser();
    b.header("x-forwarded-for", "173.245.48.1");
    b.header("cf-ray", "8f1c2a3b4c5d6e7f-FRA");
    b.header("cf-connecting-ip", "203.0.113.50");
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 303);
    let ips: Vec<_> = server.audit_actions(user_id).await.into_iter().filter_map(|a| a.1).collect();
    assert!(!ips.iter().any(|ip| ip == "203.0.113.50"), "the symptom: the visitor's address is not seen: {ips:?}");
    assert!(ips.iter().any(|ip| ip == "173.245.48.1"), "the edge is seen instead: {ips:?}");
    server.state.flush().await;
    let (found, _) = check(&server.state.loaded, "proxy.cloudflare").await;
    assert_eq!(found.status, Status::Fail, "ip_check is on: {}", found.message);
    assert_eq!(found.evidence["observed_via_cloudflare"], 2);
    assert!(found.remediation.contains("CF-Connecting-IP"), "{}", found.remediation);

    // The seed's one click: "automatically reconfigure your CloudFlare proxy settings".
    let (found, ctx) = check(&server.state.loaded, "proxy.cloudflare").await;
    let planned = found.fix.proposal.as_ref().expect("the CloudFlare fix is offered");
    let described = planned.describe(&ctx);
    assert!(
        described.contains("+  cloudflare: true") && described.contains("+  header: \"CF-Connecting-IP\""),
        "{described}"
    );
    planned.apply(&ctx).await.unwrap();
    server.restart_from_file().await;
    assert!(server.state.loaded.config.trusted_proxies.cloudflare);
    assert_eq!(check(&server.state.loaded, "proxy.cloudflare").await.0.status, Status::Pass);
}

/// system_url says `/clients` while the site is served at `/`: the session cookie gets
/// `Path=/clients` (the form token's cookie too), the browser never sends them to `/login`: the
/// right password answers "Invalid CSRF token", and a session would loop back to login. The doctor
/// compares the pages visitors are on (their Referer, as browsers send it on same-site
/// navigation) with system_url's path, names both, and its fix makes the loop go away.
async fn system_url_requests_sees_visitors_outside_system_urls_path(backend: Backend) {
    let Some(mut server) = Server::start(backend, "system_url: \"http://{addr}/clients\"\n").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    // Three visitors (three addresses): one visitor's Referer alone is only a claim.
    let visit = async |server: &Server, from: &str| {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let mut b = server.browser_via(from.parse().unwrap(), jar);
        b.header("referer", &server.url("login"));
        let login = b.login("ann@example.com", PASSWORD).await;
        (login, b.get("clientarea").await)
    };
    for from in ["127.0.0.2", "127.0.0.3"] {
        visit(&server, from).await;
    }
    let (refused, _) = visit(&server, "127.0.0.4").await;
    assert_eq!(refused.status, 403, "the symptom, with the right password");
    assert!(refused.body.contains("Invalid CSRF token"), "{}", refused.body);
    server.state.flush().await;

    let (found, ctx) = check(&server.state.loaded, "system_url.requests").await;
    assert_eq!(found.status, Status::Fail, "{}", found.message);
    assert!(
        found.message.contains("system_url's path is /clients") && found.message.contains("/login ×"),
        "{}",
        found.message
    );
    let (cookie, _) = check(&server.state.loaded, "sessions.cookie").await;
    assert!(!cookie.message.contains("fit"), "no claim that the requests fit the cookie: {}", cookie.message);

    let planned = found.fix.proposal.as_ref().expect("the fix is offered");
    let root = server.url("");
    assert!(planned.describe(&ctx).contains(&format!("+system_url: \"{root}\"")), "{}", planned.describe(&ctx));
    // Asked to fix both system_url checks (one would add the trailing slash to /clients, one
    // moves the site to /): one coherent system_url comes out, the named move.
    let config = server.dir.path().join("gatehouse.yaml");
    let out = crate::support::gatehouse(server.dir.path())
        .args(["--config", config.to_str().unwrap(), "doctor", "--only", "system_url.config"])
        .args(["--only", "system_url.requests", "--fix", "system_url.config", "--fix", "system_url.requests"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("fixing system_url.requests"), "{said}");
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains(&format!("system_url: \"{root}\"")), "{written}\n{said}");
    server.restart_from_file().await;
    let (login, clientarea) = visit(&server, "127.0.0.2").await;
    assert_eq!(login.status, 303, "{}", login.body);
    assert_eq!(clientarea.status, 200, "signed in and staying so: {}", clientarea.location());
    server.state.flush().await;
    let (after, _) = check(&server.state.loaded, "system_url.requests").await;
    assert_eq!(after.status, Status::Pass, "{}", after.message);
}

/// A pool of two load-balancer nodes (127.0.0.2 and 127.0.0.3) that forward with
/// X-Forwarded-For but were never trusted: a visitor whose requests take turns through the pool
/// loses the session (ip_check sees the node change). proxy.trusted names both nodes; its fix
/// runs only when asked for by name, and then the same visitor keeps the session.
async fn proxy_trusted_names_an_untrusted_pool_and_trusts_it_when_asked(backend: Backend) {
    let Some(mut server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let (healthy, _) = check(&server.state.loaded, "proxy.trusted").await;
    assert_eq!(healthy.status, Status::Pass, "{}", healthy.message);

    let visit = async |server: &Server| {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let mut nodes = ["127.0.0.2", "127.0.0.3"].map(|n| server.browser_via(n.parse().unwrap(), jar.clone()));
        for node in &mut nodes {
            node.header("x-forwarded-for", "198.51.100.7");
        }
        assert_eq!(nodes[0].login("ann@example.com", PASSWORD).await.status, 303);
        let mut pages = Vec::new();
        for round in 0..6 {
            pages.push(nodes[round % 2].get("clientarea").await.status);
        }
        pages
    };
    // The symptom: the session ends as soon as the other node carries a request.
    let pages = visit(&server).await;
    assert_eq!(pages[0], 200);
    assert!(pages[1..].contains(&303), "logged out by the pool: {pages:?}");
    server.state.flush().await;

    let (found, _) = check(&server.state.loaded, "proxy.trusted").await;
    assert_eq!(found.status, Status::Fail, "ip_check is on: {}", found.message);
    assert!(found.message.contains("127.0.0.2 (") && found.message.contains("127.0.0.3 ("), "{}", found.message);
    assert!(found.remediation.contains("--fix proxy.trusted"), "{}", found.remediation);

    // `--fix` alone does not trust anyone; `--fix proxy.trusted` adds exactly the two nodes.
    let config = server.dir.path().join("gatehouse.yaml");
    let before = std::fs::read_to_string(&config).unwrap();
    let doctor = |fix: &[&str]| {
        let mut cmd = crate::support::gatehouse(server.dir.path());
        cmd.args(["--config", config.to_str().unwrap(), "doctor", "--only", "proxy.trusted"]).args(fix);
        String::from_utf8_lossy(&cmd.output().unwrap().stderr).into_owned()
    };
    let declined = doctor(&["--fix"]);
    assert!(declined.contains("not fixing proxy.trusted: its fix changes who is trusted"), "{declined}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
    let applied = doctor(&["--fix", "proxy.trusted"]);
    assert!(applied.contains("+trusted_proxies:") && applied.contains("done: set trusted_proxies.ranges"), "{applied}");
    server.restart_from_file().await;
    assert_eq!(server.state.loaded.config.trusted_proxies.ranges, ["127.0.0.2/32", "127.0.0.3/32"]);

    // The symptom is gone: the visitor keeps the session whichever node carries it.
    assert_eq!(visit(&server).await, [200; 6]);
    server.state.flush().await;
    let (fixed, _) = check(&server.state.loaded, "proxy.trusted").await;
    assert_eq!(fixed.status, Status::Pass, "{}", fixed.message);
}

/// A reverse proxy in front that is not trusted: every visitor has its address, so a handful of
/// users' typos add up to an IP lockout that shuts everyone out. The check names the address.
async fn proxy_lockouts_names_a_locked_out_proxy(backend: Backend) {
    let lockout = "security:\n  lockout: { max_failures: 5, ip_max_failures: 6, window: 15m, lock: 15m }\n";
    let Some(mut server) = Server::start(backend, lockout).await else { return };
    for (email, company) in [("ann@example.com", "Ann Hosting"), ("bob@example.com", "Bob Hosting")] {
        server.client_with_owner(email, company).await;
    }
    let (healthy, _) = check(&server.state.loaded, "proxy.lockouts").await;
    assert_eq!(healthy.status, Status::Pass, "{}", healthy.message);

    // Visitors behind the proxy on 127.0.0.1, each making a typo or two.
    for (n, visitor) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"].iter().enumerate() {
        let mut b = server.browser();
        b.header("x-forwarded-for", visitor);
        for _ in 0..2 {
            b.login(&format!("user{n}@example.com"), "a typo or two").await;
        }
    }
    let mut ann = server.browser();
    ann.header("x-forwarded-for", "198.51.100.9");
    assert_eq!(ann.login("ann@example.com", PASSWORD).await.status, 401, "the symptom: Ann is locked out too");
    let (found, _) = check(&server.state.loaded, "proxy.lockouts").await;
    assert_eq!(found.status, Status::Fail, "{}", found.message);
    assert_eq!(found.evidence["proxy_addresses_locked"][0]["ip"], "127.0.0.1", "{:?}", found.evidence);
    assert!(found.message.contains("127.0.0.1 (internal address"), "{}", found.message);

    // The fix: trust the proxy, end the lock.
    server.reconfigure(&format!("{lockout}trusted_proxies:\n  ranges: [\"127.0.0.1/32\"]\n")).await;
    let admin = Actor::system("test");
    server.auth().clear_lockouts(&admin, Some("127.0.0.1")).await.unwrap();
    for (n, visitor) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"].iter().enumerate() {
        let mut b = server.browser();
        b.header("x-forwarded-for", visitor);
        for _ in 0..2 {
            b.login(&format!("user{n}@example.com"), "a typo or two").await;
        }
    }
    assert_eq!(ann.login("ann@example.com", PASSWORD).await.status, 303, "the symptom is gone");
    let (fixed, _) = check(&server.state.loaded, "proxy.lockouts").await;
    assert_eq!(fixed.status, Status::Pass, "{}", fixed.message);
}

web_on_both_backends!(
    system_url_requests_sees_visitors_outside_system_urls_path,
    proxy_trusted_names_an_untrusted_pool_and_trusts_it_when_asked,
    proxy_lockouts_names_a_locked_out_proxy,
    system_url_requests_sees_visitors_on_another_host,
    probes_are_not_visitors_and_observations_survive_a_restart,
    system_url_reachable_finds_another_instance,
    sessions_cookie_sees_secure_cookies_on_plain_http,
    sessions_lifetime_sees_sessions_ended_by_ip_changes,
    time_timezone_compares_web_and_cron,
    admin_roles_finds_roles_that_stop_halfway,
    time_clock_compares_with_independent_clocks,
    proxy_cloudflare_sees_traffic_through_untrusted_cloudflare,
);
