//! Healthy, well-configured deployments raise no warning at all: the whole doctor — every
//! check — against a real `serve` carrying real traffic: behind a trusted reverse proxy that
//! health-checks the backend, with the files session store and a working SMTP server; behind
//! CloudFlare, trusted; each on SQLite and on PostgreSQL; and two nodes on one PostgreSQL
//! database behind a real nginx.

use std::sync::Arc;
use std::time::Duration;

use crate::support::proxy::{PROXY_IP, ReverseProxy};
use crate::support::web::{Backend, Browser, PASSWORD, Server};
use gatehouse::cron::Cron;
use gatehouse::doctor::runner::RunOptions;
use gatehouse::doctor::{CheckResult, Context, checks, diagnose};

/// Every built-in check, as `gatehouse doctor` runs them, judged by the server's clock.
async fn whole_doctor(server: &Server) -> Vec<CheckResult> {
    let clock = server.state.db().clock().clone();
    let ctx =
        Arc::new(Context::new(server.state.loaded.clone()).with_deadline(Duration::from_secs(5)).with_clock(clock));
    let report = diagnose(&checks::builtin(), ctx.clone(), &RunOptions::with_timeout(Duration::from_secs(5))).await;
    ctx.close().await;
    report.results
}

fn problems(results: &[CheckResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| r.status.severity() > 0)
        .map(|r| format!("{} {}: {} {:?}", r.status, r.id, r.message, r.evidence))
        .collect()
}

/// What an operator's deployment has besides serve, as `gatehouse init` leaves it: its
/// configuration private to the service's user, an admin; and cron run (sessions, mail,
/// heartbeat) with the same configuration. The files gatehouse itself creates (database, mail
/// spool, sessions) it must make private by itself: nothing here chmods them.
async fn operate(server: &Server) {
    use std::os::unix::fs::PermissionsExt;
    let config = server.dir.path().join("gatehouse.yaml");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let actor = gatehouse::accounts::Actor::system("test");
    let all = gatehouse::accounts::AdminPermission::ALL.iter().copied().collect();
    server
        .accounts()
        .create_role(&actor, &gatehouse::accounts::Grantor::Operator, "Full Administrator", &all)
        .await
        .unwrap();
    server
        .accounts()
        .create_admin(
            &actor,
            &gatehouse::accounts::Grantor::Operator,
            "ops",
            "ops@example.com",
            "Full Administrator",
            None,
        )
        .await
        .unwrap();
    server.state.flush().await;
    let cron = Cron { loaded: &server.state.loaded, services: &server.state.services };
    let results = cron.run(None).await.unwrap();
    assert!(results.iter().all(|r| r.ok), "cron: {results:?}");
}

/// Visitors sign in, browse, ask for a password reset (mail through SMTP), sign out.
async fn visitors(base: &str, server: &Server, extra: &[(&'static str, &str)]) {
    for (n, email) in ["ann@example.com", "bob@example.com", "cy@example.com"].iter().enumerate() {
        server.client_with_owner(email, &format!("Hosting {n}")).await;
        let mut b = Browser::at(base);
        for (name, value) in extra {
            b.header(name, value);
        }
        b.header("referer", &format!("{base}login"));
        assert_eq!(b.login(email, PASSWORD).await.status, 303);
        assert_eq!(b.get("clientarea").await.status, 200);
        b.header("referer", &format!("{base}clientarea"));
        assert_eq!(b.get("account/profile").await.status, 200);
    }
    let b = Browser::at(base);
    let asked = b.submit("password/forgot", "password/forgot", &[("email", "ann@example.com")]).await;
    assert!(asked.status < 400, "{}", asked.status);
    // The reset mail is queued in the background after the answer (so the answer takes the same
    // time for every email): wait, bounded, until it is in the outbox for cron to send.
    for _ in 0..500 {
        let queued: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(server.state.db().pool()).await.unwrap();
        if queued > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the reset mail was never queued");
}

/// These sites are reached at an IP address on loopback, where WebAuthn refuses passkeys: as an
/// operator on an address must, they turn passkeys off (`system_url.config` says so otherwise).
const IP_SITE: &str = "twofa:\n  passkeys: false\n";

async fn behind_a_trusted_reverse_proxy_with_files_sessions_and_smtp(backend: Backend) {
    let smtp = crate::support::smtp::start(None).await;
    let mut proxy = ReverseProxy::bind().await;
    let extra = format!(
        "system_url: \"{}\"\ntrusted_proxies:\n  ranges: [\"{PROXY_IP}/32\"]\nsessions:\n  store: files\n\
         mail:\n  transport: smtp\n  smtp: {{ host: localhost, port: {}, tls: none }}\n\
         timezone: Etc/UTC\ndoctor:\n  disk_min_free: 1B\n  disk_min_free_percent: 0\n{IP_SITE}",
        proxy.base(),
        smtp.port
    );
    let Some(server) = Server::start(backend, &extra).await else { return };
    proxy.forward_to(server.addr);
    assert_eq!(ReverseProxy::health_check(server.addr).await, 200);
    visitors(&proxy.base(), &server, &[]).await;
    operate(&server).await;
    assert!(!smtp.messages.lock().unwrap().is_empty(), "the reset mail went through SMTP");

    let results = whole_doctor(&server).await;
    assert_eq!(problems(&results), Vec::<String>::new(), "a healthy deployment raises nothing");
}

async fn behind_cloudflare_trusted(backend: Backend) {
    // CloudFlare's edge → nginx on this machine → gatehouse, both trusted: what a CloudFlare
    // site looks like from loopback (a test cannot connect from CloudFlare's own addresses).
    let extra = format!(
        "trusted_proxies:\n  ranges: [\"127.0.0.1\"]\n  cloudflare: true\n  header: CF-Connecting-IP\n\
         timezone: Etc/UTC\ndoctor:\n  disk_min_free: 1B\n  disk_min_free_percent: 0\n{IP_SITE}"
    );
    let Some(server) = Server::start(backend, &extra).await else { return };
    let base = server.base.clone();
    let edge =
        [("cf-ray", "8f1c2a3b4c5d6e7f-FRA"), ("cf-connecting-ip", "203.0.113.50"), ("x-forwarded-for", "173.245.48.1")];
    visitors(&base, &server, &edge).await;
    operate(&server).await;
    let results = whole_doctor(&server).await;
    assert_eq!(problems(&results), Vec::<String>::new(), "a healthy deployment raises nothing");
}

web_on_both_backends!(behind_a_trusted_reverse_proxy_with_files_sessions_and_smtp, behind_cloudflare_trusted);

/// Two `serve` nodes on one PostgreSQL database behind a real nginx balancing between them
/// (the second a real process started from the same installation, as a deploy copies it to
/// each node): the doctor raises nothing, in process on one node and as the operator types it
/// (`gatehouse doctor --fail-on warn`) — both nodes answer system_url with the same storage,
/// share sessions (no unknown cookies), and their clocks and configurations agree. Then one node
/// is started from another configuration, and `fleet.drift` names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_postgresql_behind_a_real_nginx() {
    let Some(reserved) = crate::support::nginx::Nginx::reserve() else { return };
    let Some(schema) = crate::support::PgSchema::create().await else { return };
    let extra = format!(
        "system_url: \"{}\"\ntrusted_proxies:\n  ranges: [\"127.0.0.1/32\"]\ntimezone: Etc/UTC\n\
         doctor:\n  disk_min_free: 1B\n  disk_min_free_percent: 0\n{IP_SITE}",
        reserved.base()
    );
    let a = Server::start_on(tempfile::tempdir().unwrap(), schema.url.clone(), None, &extra).await;
    let config = a.dir.path().join("gatehouse.yaml");
    let b = crate::support::node::Node::serve(&config, "127.0.0.1:0", []);
    let nginx = reserved.balance(&[a.addr, b.addr]);
    visitors(&nginx.base(), &a, &[]).await;
    operate(&a).await;
    let results = whole_doctor(&a).await;
    assert_eq!(problems(&results), Vec::<String>::new(), "a healthy fleet raises nothing\n{}", nginx.error_log());
    let out = crate::support::gatehouse(a.dir.path())
        .args(["--config", config.to_str().unwrap(), "doctor", "--fail-on", "warn"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));

    // The same fleet with node B started from another directory whose gatehouse.yaml has an
    // idle timeout of its own: named, with what differs.
    drop(b);
    let elsewhere = tempfile::tempdir().unwrap();
    let odd = elsewhere.path().join("gatehouse.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&odd, format!("{text}sessions:\n  idle_timeout: 2h\n")).unwrap();
    let odd_node = crate::support::node::Node::serve(&odd, "127.0.0.1:0", []);
    let _nginx = nginx.stop().balance(&[a.addr, odd_node.addr]);
    let mut drift = None;
    for _ in 0..100 {
        let results = whole_doctor(&a).await;
        let found = results.into_iter().find(|r| r.id == "fleet.drift").unwrap();
        if found.message.contains(&format!("(pid {})", odd_node.pid())) {
            drift = Some(found);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drift = drift.expect("the odd node's heartbeat arrives");
    assert_eq!(drift.status, gatehouse::doctor::Status::Fail, "{}", drift.message);
    assert!(drift.message.contains("configuration differs"), "{}", drift.message);
    drop(schema);
}
