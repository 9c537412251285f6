//! Two `gatehouse serve` processes sharing one PostgreSQL database, as several nodes behind a
//! load balancer: a login on one is a session on the other, and lockout counters are shared.

use std::process::Command;

use crate::support::node::Node;
use crate::support::web::PASSWORD;

fn free_port() -> u16 {
    crate::support::port_for_a_server()
}

/// Starts `gatehouse serve` on `port` and waits until it listens.
fn serve(config: &std::path::Path, port: u16) -> Node {
    Node::serve(config, &format!("127.0.0.1:{port}"), [])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_sessions_and_lockout_on_postgres() {
    let Some(schema) = crate::support::PgSchema::create().await else { return };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let system_url = format!("http://127.0.0.1:{port_a}/");
    let config = dir.path().join("gatehouse.yaml");
    std::fs::write(
        &config,
        format!(
            "system_url: \"{system_url}\"\ndatabase_url: \"{}\"\nsecurity:\n  lockout: {{ max_failures: 3, window: 15m, lock: 15m }}\n",
            schema.url
        ),
    )
    .unwrap();
    let _a = serve(&config, port_a);
    let _b = serve(&config, port_b);

    // Seed a client through the CLI, as an operator would.
    crate::support::gatehouse(dir.path())
        .args(["--config", config.to_str().unwrap(), "client", "add", "--email", "ann@example.com"])
        .args(["--first-name", "Ann", "--last-name", "Owner", "--password", PASSWORD])
        .assert()
        .success();

    let client =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let on_a = |path: &str| format!("http://127.0.0.1:{port_a}/{path}");
    let on_b = |path: &str| format!("http://127.0.0.1:{port_b}/{path}");
    // Node B is reached through the load balancer: the Host is still system_url's.
    let host_a = format!("127.0.0.1:{port_a}");

    let login_page = client.get(on_a("login")).send().await.unwrap().text().await.unwrap();
    let csrf = login_page.split("name=\"csrf_token\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let login = client
        .post(on_a("login"))
        .form(&[("csrf_token", csrf.as_str()), ("email", "ann@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let on_other_node = client.get(on_b("clientarea")).header("host", &host_a).send().await.unwrap();
    assert_eq!(on_other_node.status(), 200, "a login on node A is a session on node B");

    // Lockout: two failures on A and one on B lock the account everywhere.
    let fresh =
        || reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for (i, url) in [on_a("login"), on_a("login"), on_b("login"), on_b("login")].into_iter().enumerate() {
        let c = fresh();
        let page = c.get(&url).header("host", &host_a).send().await.unwrap().text().await.unwrap();
        let csrf = page.split("name=\"csrf_token\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        let password = if i < 3 { "wrong password!" } else { PASSWORD };
        let r = c
            .post(&url)
            .header("host", &host_a)
            .form(&[("csrf_token", csrf.as_str()), ("email", "ann@example.com"), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
}

/// The doctor's `fleet.drift` on a real fleet: two nodes and the cron from one configuration
/// are all green; a third node started from another directory with its own gatehouse.yaml (an
/// idle timeout of its own) is named, with what differs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fleet_drift_names_the_node_started_with_another_configuration() {
    let Some(schema) = crate::support::PgSchema::create().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b, port_c) = (free_port(), free_port(), free_port());
    let yaml = format!("system_url: \"http://127.0.0.1:{port_a}/\"\ndatabase_url: \"{}\"\n", schema.url);
    let config = dir.path().join("gatehouse.yaml");
    std::fs::write(&config, &yaml).unwrap();
    let gatehouse = |args: &[&str]| {
        let out = crate::support::gatehouse(dir.path())
            .args(["--config", config.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    assert_eq!(gatehouse(&["migrate"]).0, 0);
    let _a = serve(&config, port_a);
    let _b = serve(&config, port_b);
    assert_eq!(gatehouse(&["cron", "--job", "heartbeat"]).0, 0);
    let doctor = || {
        let (_, out) = gatehouse(&["--json", "doctor", "--only", "fleet.drift"]);
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        report["results"].as_array().unwrap().iter().find(|r| r["id"] == "fleet.drift").unwrap().clone()
    };
    // A node writes its heartbeat just after it starts listening: ask until both roles are in.
    let until = |done: &dyn Fn(&serde_json::Value) -> bool| {
        let mut last = serde_json::Value::Null;
        for _ in 0..100 {
            last = doctor();
            if done(&last) {
                return last;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("fleet.drift never got there: {last}");
    };
    let healthy = until(&|r| r["evidence"]["processes"].as_array().unwrap().len() == 2);
    assert_eq!(healthy["status"], "pass", "{healthy}");
    assert!(
        healthy["message"].as_str().unwrap().starts_with("2 processes"),
        "two nodes in one directory share a heartbeat row, plus cron: {healthy}"
    );

    let elsewhere = tempfile::tempdir().unwrap();
    let odd_config = elsewhere.path().join("gatehouse.yaml");
    std::fs::write(&odd_config, format!("{yaml}sessions:\n  idle_timeout: 2h\n")).unwrap();
    let _c = serve(&odd_config, port_c);
    let found = until(&|r| r["evidence"]["processes"].as_array().unwrap().len() == 3);
    assert_eq!(found["status"], "fail", "{found}");
    let message = found["message"].as_str().unwrap();
    let odd_dir = std::fs::canonicalize(elsewhere.path()).unwrap().display().to_string();
    assert!(message.contains("web on ") && message.contains(&format!("in {odd_dir} (pid")), "{message}");
    assert!(message.contains("configuration differs") && message.contains("install directory differs"), "{message}");
}

/// Request logs name the route, never the secret in a link's path (reset, impersonation and
/// invite tokens), at the default info level.
#[tokio::test]
async fn request_logs_name_routes_not_the_tokens_in_links() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("gatehouse.yaml");
    std::fs::write(&config, format!("system_url: \"http://127.0.0.1:{port}/\"\n")).unwrap();
    crate::support::gatehouse(dir.path()).args(["--config", config.to_str().unwrap(), "migrate"]).assert().success();
    let log = dir.path().join("serve.log");
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("gatehouse"));
    cmd.args(["--config", config.to_str().unwrap(), "serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("GATEHOUSE_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap());
    let node = Node::start(cmd);
    let secrets = ["pr_SECRETRESETTOKEN", "im_SECRETIMPERSONATION", "inv_SECRETINVITE"];
    for path in ["password/reset/pr_SECRETRESETTOKEN", "login/as/im_SECRETIMPERSONATION", "invite/inv_SECRETINVITE"] {
        reqwest::get(format!("http://127.0.0.1:{port}/{path}")).await.unwrap();
    }
    // The request line is logged once the response is on its way: wait for all three.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.matches(" request").count() >= 3 || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    drop(node);
    for route in ["/password/reset/{token}", "/login/as/{token}", "/invite/{token}"] {
        assert!(text.contains(route), "{route} not logged:\n{text}");
    }
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} in the log:\n{text}");
    }
}
