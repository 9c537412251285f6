//! The doctor judges the whole deployment from whichever node it runs on, from what every node's
//! process is (its heartbeat in the shared database) and what the running servers met (their
//! counts of refused forms and unknown sessions) — behind a real nginx, under a real moved clock.

use std::time::Duration;

use gatehouse::cron::heartbeat;
use gatehouse::doctor::model::Status;
use gatehouse::secrets::totp;

use crate::support::doctor::check;
use crate::support::nginx::{Nginx, PASS_HOST};
use crate::support::node::{Node, faketime_env, faketime_library};
use crate::support::web::{Backend, Browser, PASSWORD, Server};

/// Waits (bounded) until the process `pid` has written its heartbeat into `db`.
async fn heartbeat_of(db: &gatehouse::store::Db, pid: u32) -> heartbeat::Heartbeat {
    for _ in 0..200 {
        let beats = heartbeat::all(db).await.unwrap();
        if let Some(beat) = beats.into_iter().find(|b| b.pid == i64::from(pid)) {
            return beat;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("process {pid} wrote no heartbeat");
}

/// Node B runs with its clock two minutes ahead (libfaketime, for the whole process) and refuses
/// a correct two-factor code. The doctor on node A, whose clock is right, names B — its role,
/// host and pid, and by how much — from B's heartbeat. B restarted on a right clock takes the
/// code, and the check passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_whose_clock_is_off_is_named_by_the_doctor_on_another() {
    let Some(faketime) = faketime_library() else { return };
    let Some(a) = Server::start(Backend::Postgres, "").await else { return };
    a.client_with_owner("ann@example.com", "Ann Hosting").await;
    let (secret, _, enrolled_at) = {
        let b = a.browser();
        b.login("ann@example.com", PASSWORD).await;
        crate::web_twofa::enrol(&b).await
    };
    // Node B: the same configuration, in a folder of its own, behind the same name.
    let b_dir = tempfile::tempdir().unwrap();
    let config = b_dir.path().join("gatehouse.yaml");
    std::fs::copy(a.dir.path().join("gatehouse.yaml"), &config).unwrap();
    let host = a.addr.to_string();
    let sign_in_on = |node: &Node| {
        let (url, host, secret) = (node.url(""), host.clone(), secret.clone());
        async move {
            let mut visitor = Browser::at(&url);
            visitor.header("host", &host);
            assert_eq!(visitor.login("ann@example.com", PASSWORD).await.location(), "/login/2fa");
            // The next step's code (the enrolment used this one): right for a right clock.
            let code = totp::code_at(&secret, enrolled_at + 30).unwrap();
            visitor.submit("login/2fa", "login/2fa", &[("code", &code)]).await.status
        }
    };

    let ahead = Node::serve(&config, "127.0.0.1:0", faketime_env(&faketime, "+120s"));
    assert_eq!(sign_in_on(&ahead).await, 401, "the symptom: a correct code is refused on node B");
    heartbeat_of(a.state.db(), ahead.pid()).await;
    let (found, _) = check(&a.state.loaded, "time.clock").await;
    assert_eq!(found.status, Status::Fail, "{}", found.message);
    let named = format!("(pid {}) runs with a clock", ahead.pid());
    assert!(
        found.message.contains(&named) && found.message.contains("ahead of the database server"),
        "{}",
        found.message
    );
    let offsets = found.evidence["process_offsets_secs"].as_object().unwrap();
    let b_offset = offsets.iter().find(|(k, _)| k.contains(&format!("(pid {})", ahead.pid()))).unwrap().1;
    assert!((110.0..130.0).contains(&b_offset.as_f64().unwrap()), "{b_offset}");
    assert_eq!(offsets.len(), 2, "node A is judged too, and is in step: {offsets:?}");

    // The fix: B's clock set right (here: B restarted without the fake clock).
    drop(ahead);
    let in_step = Node::serve(&config, "127.0.0.1:0", []);
    heartbeat_of(a.state.db(), in_step.pid()).await;
    assert_eq!(sign_in_on(&in_step).await, 303, "the symptom is gone");
    let (healthy, _) = check(&a.state.loaded, "time.clock").await;
    assert_eq!(healthy.status, Status::Pass, "{}", healthy.message);
}

/// A site scaled out by copying its folder, SQLite and all, to a second node behind one nginx:
/// each node knows only its own sessions, so a visitor signed in on one is sent back to the
/// login page by the other. The doctor on node A asks system_url several times, meets both
/// nodes, and names the one whose storage is not A's; with both nodes on one database the
/// loop is gone and the check passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_that_do_not_share_storage_are_named_from_either_node() {
    let Some(reserved) = Nginx::reserve() else { return };
    let system_url = format!("system_url: \"{}\"\n", reserved.base());
    let a = Server::start(Backend::Sqlite, &system_url).await.unwrap();
    a.client_with_owner("ann@example.com", "Ann Hosting").await;
    // The copy: a consistent snapshot of A's database in B's own folder.
    let b_dir = tempfile::tempdir().unwrap();
    let copy = b_dir.path().join("gatehouse.db");
    sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{}'", copy.display())))
        .execute(a.state.db().pool())
        .await
        .unwrap();
    let b = Server::start_on(b_dir, format!("sqlite://{}", copy.display()), None, &system_url).await;
    assert_eq!(a.state.instance_id, b.state.instance_id, "a copy keeps the instance id");
    let nginx = reserved.balance(&[a.addr, b.addr]);

    // The symptom: signed in, and yet sent back to the login page on the next node.
    let mut looped = 0;
    for _ in 0..4 {
        let visitor = Browser::at(&nginx.base());
        assert_eq!(visitor.login("ann@example.com", PASSWORD).await.status, 303, "{}", nginx.error_log());
        let area = visitor.get("clientarea").await;
        if area.status == 303 && area.location().ends_with("login") {
            looped += 1;
        }
    }
    assert!(looped >= 2, "round-robin over two storages loops every other request ({looped} of 4)");
    a.state.flush().await;

    let (found, _) = check(&a.state.loaded, "system_url.reachable").await;
    assert_eq!(found.status, Status::Fail, "{}", found.message);
    assert!(found.message.contains(&b.state.storage_id()) && found.message.contains("loop"), "{}", found.message);
    assert_eq!(found.evidence["nodes"].as_array().unwrap().len(), 2, "{}", found.evidence["nodes"]);
    assert!(found.evidence["unknown_session_cookies_24h"].as_i64().unwrap() >= 1, "{:?}", found.evidence);
    assert!(found.remediation.contains("same storage"), "{}", found.remediation);
    // Run on node B, the doctor names A the same way.
    let (from_b, _) = check(&b.state.loaded, "system_url.reachable").await;
    assert!(from_b.message.contains(&a.state.storage_id()), "{}", from_b.message);

    // The fix: node B on A's database (one storage for both).
    let url = a.state.loaded.config.database_url.as_str().to_string();
    let b_shared = Server::start_on(tempfile::tempdir().unwrap(), url, None, &system_url).await;
    let nginx = nginx.stop().balance(&[a.addr, b_shared.addr]);
    for _ in 0..4 {
        let visitor = Browser::at(&nginx.base());
        assert_eq!(visitor.login("ann@example.com", PASSWORD).await.status, 303);
        assert_eq!(visitor.get("clientarea").await.status, 200, "the symptom is gone");
    }
    let (healthy, _) = check(&a.state.loaded, "system_url.reachable").await;
    assert_eq!(healthy.status, Status::Pass, "{}", healthy.message);
    assert_eq!(healthy.evidence["nodes"].as_array().unwrap().len(), 1, "{}", healthy.evidence["nodes"]);
}

/// nginx in front hides the `Set-Cookie` header (a cache rule copied from a static site): no
/// visitor ever gets the form's cookie, and every login is refused as "Invalid CSRF token".
/// Nothing in the requests themselves shows it — host, scheme and path are right — but the
/// server counted the forms it refused and why, and `sessions.cookie` says the cookie does not
/// come back. With the rule gone, the next login passes and the check with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forms_refused_for_a_cookie_that_never_comes_back_are_told() {
    let Some(reserved) = Nginx::reserve() else { return };
    let trusted = "trusted_proxies:\n  ranges: [\"127.0.0.1\"]\n";
    let server =
        Server::start(Backend::Sqlite, &format!("system_url: \"{}\"\n{trusted}", reserved.base())).await.unwrap();
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let nginx = reserved.balance_with(&[server.addr], &format!("{PASS_HOST} proxy_hide_header Set-Cookie;"));
    for _ in 0..12 {
        let refused = Browser::at(&nginx.base()).login("ann@example.com", PASSWORD).await;
        assert_eq!(refused.status, 403, "the symptom");
        assert!(refused.body.contains("Invalid CSRF token"), "{}", refused.body);
    }
    server.state.flush().await;
    let (found, _) = check(&server.state.loaded, "sessions.cookie").await;
    assert_eq!(found.status, Status::Warn, "{}", found.message);
    assert!(found.message.starts_with("12 of 12 forms in the last day were refused"), "{}", found.message);
    assert_eq!(found.evidence["forms_last_day"]["refused"]["no session cookie came back"], 12);

    let nginx = nginx.stop().balance(&[server.addr]);
    assert_eq!(Browser::at(&nginx.base()).login("ann@example.com", PASSWORD).await.status, 303, "the symptom is gone");
    server.state.flush().await;
    let (healthy, _) = check(&server.state.loaded, "sessions.cookie").await;
    assert_eq!(healthy.status, Status::Pass, "{}", healthy.message);
}

/// `serve` runs as the service account (`nobody` here) while the operator, as root, made the
/// sessions folder: the service cannot keep a session and `/readyz` says 503. The doctor, run
/// as root, can write the folder itself — its own probe passes — but the heartbeat names the
/// account serve runs as and what it could not write, and the doctor tries the folder as that
/// account. After `chown`, the service is ready and the check passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_folder_the_service_account_cannot_write_is_named_by_a_doctor_run_as_root() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: not root: cannot run serve as another account; test not run");
        return;
    }
    let Some(schema) = crate::support::PgSchema::create().await else { return };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("the nobody account");
    let site = tempfile::tempdir().unwrap();
    std::fs::set_permissions(site.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = site.path().join("gatehouse-data");
    std::fs::create_dir(&data).unwrap();
    nix::unistd::chown(&data, Some(nobody.uid), Some(nobody.gid)).unwrap();
    let sessions = site.path().join("sessions");
    std::fs::create_dir(&sessions).unwrap(); // root's, 0700: what `sudo mkdir` leaves
    let config = site.path().join("gatehouse.yaml");
    std::fs::write(
        &config,
        format!(
            "system_url: \"http://127.0.0.1:1/\"\ndatabase_url: \"{}\"\nsessions:\n  store: files\n  dir: sessions\n",
            schema.url
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    crate::support::gatehouse(site.path()).args(["--config", config.to_str().unwrap(), "migrate"]).assert().success();

    // The built binary may sit where nobody cannot reach it (a checkout under /root): then a
    // copy beside the site, as a package would install it for every account.
    let built = assert_cmd::cargo::cargo_bin("gatehouse");
    let reachable = std::process::Command::new("setpriv")
        .args([format!("--reuid={}", nobody.uid), format!("--regid={}", nobody.gid), "--clear-groups".into()])
        .args(["test", "-x"])
        .arg(&built)
        .status()
        .is_ok_and(|s| s.success());
    let binary = if reachable {
        built
    } else {
        let copy = site.path().join("gatehouse");
        std::fs::copy(&built, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        copy
    };
    let serve_as_nobody = || {
        let mut cmd = std::process::Command::new(&binary);
        cmd.args(["--config", config.to_str().unwrap(), "serve", "--listen", "127.0.0.1:0"])
            .env("GATEHOUSE_LOG", "error")
            .env_remove(crate::support::POSTGRES_ENV)
            .uid(nobody.uid.as_raw())
            .gid(nobody.gid.as_raw());
        Node::start(cmd)
    };
    let node = serve_as_nobody();
    let ready = reqwest::get(node.url("readyz")).await.unwrap();
    assert_eq!(ready.status(), 503, "the symptom: the service cannot keep sessions");
    let loaded = gatehouse::config::load(Some(&config), Vec::<(String, String)>::new()).unwrap();
    let db = gatehouse::store::Db::connect(&loaded.config.database_url, "test").await.unwrap();
    let beat = heartbeat_of(&db, node.pid()).await;
    assert_eq!((beat.run_as.as_str(), beat.uid), ("nobody", Some(i64::from(nobody.uid.as_raw()))));
    assert_eq!(
        beat.troubles.0.iter().map(|t| t.what.as_str()).collect::<Vec<_>>(),
        ["sessions.dir"],
        "{:?}",
        beat.troubles
    );

    let (found, _) = check(&loaded, "sessions.storage").await;
    assert_eq!(found.status, Status::Fail, "{}", found.message);
    assert!(
        found.message.contains("as nobody (uid 65534), which cannot write the sessions folder"),
        "{}",
        found.message
    );
    assert!(found.message.contains("tested as nobody just now"), "{}", found.message);
    assert!(found.remediation.contains("chown -R nobody:"), "{}", found.remediation);

    // The fix the check names.
    nix::unistd::chown(&sessions, Some(nobody.uid), Some(nobody.gid)).unwrap();
    assert_eq!(reqwest::get(node.url("readyz")).await.unwrap().status(), 200, "the symptom is gone");
    let (healthy, _) = check(&loaded, "sessions.storage").await;
    assert_eq!(healthy.status, Status::Pass, "{}", healthy.message);
    // The configuration is root's, 0644: nobody reads it as "other". Making it private, as
    // disk.permissions would for any 0644 secret, would lock the service out: not offered.
    let (exposed, _) = check(&loaded, "disk.permissions").await;
    assert_eq!(exposed.status, Status::Warn, "{}", exposed.message);
    assert!(!exposed.fix.available, "a chmod that locks nobody out of its configuration");
    let relied = exposed.evidence["relied_on_by_service"].to_string();
    assert!(relied.contains("gatehouse.yaml") && relied.contains("nobody (uid 65534)"), "{relied}");
    // Stopped for maintenance — when `--fix` is run — the service still needs its files.
    drop(node);
    let (stopped, _) = check(&loaded, "disk.permissions").await;
    assert!(!stopped.fix.available, "the chmod would lock out the service's next start: {}", stopped.message);
    db.close().await;
}

/// nginx proxies to gatehouse without passing the visitor's Host (the `proxy_set_header Host`
/// line left out): gatehouse sees `Host: gatehouse`, the upstream's name, and no session cookie
/// for system_url's host ever comes back. The doctor says the proxy does not pass Host and
/// shows the line — not "redirect visitors", which would not help. With the line, logins work
/// and the check passes at the next proxied request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_proxy_that_does_not_pass_host_is_told_with_the_line_to_add() {
    let Some(reserved) = Nginx::reserve() else { return };
    let trusted = "trusted_proxies:\n  ranges: [\"127.0.0.1\"]\n";
    let server =
        Server::start(Backend::Sqlite, &format!("system_url: \"{}\"\n{trusted}", reserved.base())).await.unwrap();
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let nginx = reserved.balance_with(&[server.addr], "");
    let refused = Browser::at(&nginx.base()).login("ann@example.com", PASSWORD).await;
    assert_ne!(refused.status, 303, "the symptom: no login through the proxy");
    server.state.flush().await;
    let (found, _) = check(&server.state.loaded, "system_url.requests").await;
    assert_eq!(found.status, Status::Fail, "{}", found.message);
    assert!(found.message.contains("Host: gatehouse") && found.message.contains("does not pass"), "{}", found.message);
    assert!(found.remediation.contains("proxy_set_header Host $http_host;"), "{}", found.remediation);
    assert!(!found.remediation.contains("301"), "a redirect would not help: {}", found.remediation);

    let nginx = nginx.stop().balance(&[server.addr]);
    assert_eq!(Browser::at(&nginx.base()).login("ann@example.com", PASSWORD).await.status, 303, "the symptom is gone");
    server.state.flush().await;
    let (healthy, _) = check(&server.state.loaded, "system_url.requests").await;
    assert_eq!(healthy.status, Status::Pass, "{}", healthy.message);
}

/// A sessions folder created after `serve` started (as `doctor --fix sessions.storage` does):
/// the node's storage id is worked out when asked, so it still matches the doctor's, and the
/// answer is never cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_folder_created_after_start_keeps_one_storage_id() {
    let files = "sessions:\n  store: files\n  dir: later-sessions\n";
    let server = Server::start(Backend::Sqlite, files).await.unwrap();
    let dir = server.dir.path().join("later-sessions");
    let _ = std::fs::remove_dir_all(&dir);
    let before = server.state.storage_id();
    std::fs::create_dir(&dir).unwrap();
    assert_ne!(server.state.storage_id(), before, "the folder is part of the storage");
    let answer = reqwest::get(server.url(".well-known/gatehouse")).await.unwrap();
    assert_eq!(answer.headers()["cache-control"], "no-store");
    let (reached, _) = check(&server.state.loaded, "system_url.reachable").await;
    assert_eq!(reached.status, Status::Pass, "{}", reached.message);
}
