//! The checks that read the running service's data, proven on real faults: the broken
//! deployment is built, the symptom is shown through the real service, the check fails with
//! evidence, the fix is applied, the symptom is gone and the check passes.

use std::time::Duration;

use crate::support::doctor::{check, check_at, triage_at};
use crate::support::duo;
use crate::support::web::{Backend, PASSWORD, Server};
use gatehouse::cron::Cron;
use gatehouse::doctor::model::Status;

async fn expired_gauge(server: &Server) -> String {
    let metrics = reqwest::get(server.url("metrics")).await.unwrap().text().await.unwrap();
    metrics.lines().find(|l| l.starts_with("gatehouse_sessions_expired ")).unwrap().to_string()
}

async fn sessions_gc_finds_uncollected_sessions_and_collects_them(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let healthy = check(&server.state.loaded, "sessions.gc").await.0;
    assert_eq!(healthy.status, Status::Pass, "healthy: no false alarm");
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    for _ in 0..3 {
        assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 303);
    }
    // Past the 30-minute idle timeout, on the server's clock.
    let clock = server.state.db().clock().clone();
    clock.advance(Duration::from_secs(31 * 60));
    let loaded = &server.state.loaded.clone();
    let check = |loaded, id| check_at(loaded, id, &clock);
    // The symptom, through the service: sessions that nobody removes.
    assert_eq!(expired_gauge(&server).await, "gatehouse_sessions_expired 3");

    let (result, ctx) = check(loaded, "sessions.gc").await;
    assert_eq!(result.status, Status::Fail, "{}", result.message);
    assert!(result.message.contains("never run"), "{}", result.message);
    assert_eq!(result.evidence["expired_sessions"], 3);
    assert!(result.fix.available);
    let planned = result.fix.proposal.as_ref().expect("a fix is offered");
    assert_eq!(planned.apply(&ctx).await.unwrap(), "removed 3 expired session(s)");

    assert_eq!(expired_gauge(&server).await, "gatehouse_sessions_expired 0");
    assert_eq!(check(loaded, "sessions.gc").await.0.status, Status::Pass);
}

/// "The system is not removing sessions" because cron never runs: triage names cron first and
/// the sessions piling up as what follows from it (it once ranked the restated symptom first);
/// once cron runs, nothing is left to blame.
async fn triage_puts_cron_above_the_sessions_it_leaves(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    for _ in 0..3 {
        assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 303);
    }
    let clock = server.state.db().clock().clone();
    clock.advance(Duration::from_secs(2 * 3600));
    assert_eq!(expired_gauge(&server).await, "gatehouse_sessions_expired 3", "the symptom");

    let said = "The system is not removing sessions";
    let found = triage_at(&server.state.loaded, said, &clock).await;
    assert_eq!(found.likely_causes.first().map(String::as_str), Some("cron.activity"), "{found:?}");
    let gc = found.likely_causes.iter().position(|c| c == "sessions.gc").expect("the backlog is found");
    assert!(gc > 0 && found.follows_from["sessions.gc"] == ["cron.activity"], "{found:?}");

    // The fix the first cause names: cron runs (as scheduled, now on the server's clock).
    let cron = Cron { loaded: &server.state.loaded, services: &server.state.services };
    assert!(cron.run(None).await.unwrap().iter().all(|r| r.ok));
    assert_eq!(expired_gauge(&server).await, "gatehouse_sessions_expired 0", "the symptom is gone");
    let after = triage_at(&server.state.loaded, said, &clock).await;
    assert!(after.likely_causes.is_empty(), "{after:?}");
}

async fn cron_activity_sees_whether_cron_runs(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let loaded = &server.state.loaded;
    let (never, _) = check(loaded, "cron.activity").await;
    assert_eq!(never.status, Status::Fail);
    assert!(never.message.contains("never run"));

    // A cron run from another install (an old deployment) long ago: still failing, with where it ran.
    let mut stale = gatehouse::cron::heartbeat::Heartbeat::of_this_process(
        gatehouse::cron::heartbeat::Role::Cron,
        loaded,
        server.state.db().now(),
    );
    stale.at -= 2 * 86_400;
    stale.write(server.accounts().db()).await.unwrap();
    let (old, _) = check(loaded, "cron.activity").await;
    assert_eq!(old.status, Status::Fail);
    assert!(old.evidence["install_dir"].as_str().is_some());

    let results = Cron { loaded, services: &server.state.services }.run(None).await.unwrap();
    assert!(results.iter().all(|r| r.ok));
    let (ok, _) = check(loaded, "cron.activity").await;
    assert_eq!(ok.status, Status::Pass, "{}", ok.message);
}

async fn twofa_duo_explains_frameless_access(backend: Backend) {
    // Healthy without Duo: skipped, not alarmed.
    let Some(plain) = Server::start(backend, "").await else { return };
    assert_eq!(check(&plain.state.loaded, "twofa.duo").await.0.status, Status::Skipped);

    let legacy = duo::start(true).await;
    let Some(server) = Server::start(backend, &legacy.config()).await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    server
        .accounts()
        .set_duo(&gatehouse::accounts::Actor::system("test"), (gatehouse::accounts::Principal::User, user_id))
        .await
        .unwrap();
    let b = server.browser();
    b.login("ann@example.com", PASSWORD).await;
    assert_eq!(b.get("login/2fa").await.status, 502, "the symptom: Duo login fails");

    let (result, _) = check(&server.state.loaded, "twofa.duo").await;
    assert_eq!(result.status, Status::Fail);
    assert!(result.message.contains("Integration type does not support frameless access"), "{}", result.message);
    assert!(result.remediation.contains("Web SDK"), "{}", result.remediation);

    // The fix: Web SDK application keys (here: a Duo that accepts the Universal Prompt).
    let web_sdk = duo::start(false).await;
    let Some(fixed) = Server::start(backend, &web_sdk.config()).await else { return };
    assert_eq!(check(&fixed.state.loaded, "twofa.duo").await.0.status, Status::Pass);
    let (user_id, _) = fixed.client_with_owner("ann@example.com", "Ann Hosting").await;
    fixed
        .accounts()
        .set_duo(&gatehouse::accounts::Actor::system("test"), (gatehouse::accounts::Principal::User, user_id))
        .await
        .unwrap();
    let b = fixed.browser();
    b.login("ann@example.com", PASSWORD).await;
    assert_eq!(b.get("login/2fa").await.status, 303, "the symptom is gone: off to Duo");

    // Keys of the wrong shape are named before any network call.
    let mut wrong = fixed.state.loaded.clone();
    wrong.config.twofa.duo.client_secret = "short".into();
    let (shape, _) = check(&wrong, "twofa.duo").await;
    assert_eq!(shape.status, Status::Fail);
    assert!(shape.message.contains("client_secret has 5 characters"), "{}", shape.message);
}

async fn metric(server: &Server, name: &str) -> String {
    let metrics = reqwest::get(server.url("metrics")).await.unwrap().text().await.unwrap();
    metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap().to_string()
}

async fn email_queue_finds_failed_mail_and_requeues_it(backend: Backend) {
    let closed = crate::support::closed_port();
    let smtp = format!("mail:\n  transport: smtp\n  smtp: {{ host: 127.0.0.1, port: {closed}, tls: none }}\n");
    let Some(server) = Server::start(backend, &smtp).await else { return };
    let loaded = &server.state.loaded;
    assert_eq!(check(loaded, "email.queue").await.0.status, Status::Pass, "healthy: no false alarm");

    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    server.browser().submit("password/forgot", "password/forgot", &[("email", "ann@example.com")]).await;
    let db = server.accounts().db();
    for _ in 0..100 {
        if gatehouse::mail::stats(db).await.unwrap().queued == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every retry fails; let the backoff pass between the runs.
    for _ in 0..8 {
        sqlx::query("UPDATE outbox SET next_attempt_at = 0").execute(db.pool()).await.unwrap();
        Cron { loaded, services: &server.state.services }.run(Some(gatehouse::cron::Job::Mail)).await.unwrap();
    }
    // The symptom: the reset email never goes out.
    assert_eq!(metric(&server, "gatehouse_mail_failed").await, "gatehouse_mail_failed 1");

    let (result, ctx) = check(loaded, "email.queue").await;
    assert_eq!(result.status, Status::Fail, "{}", result.message);
    assert!(result.evidence["last_error"].as_str().unwrap().contains("SMTP"), "{:?}", result.evidence);
    assert!(result.fix.available);

    // Fix the transport (here: the spool), requeue, let cron deliver.
    let mut fixed = loaded.clone();
    fixed.config.mail.transport = gatehouse::config::MailTransport::Spool;
    assert_eq!(result.fix.proposal.as_ref().unwrap().apply(&ctx).await.unwrap(), "requeued 1 message(s)");
    let sent =
        Cron { loaded: &fixed, services: &server.state.services }.run(Some(gatehouse::cron::Job::Mail)).await.unwrap();
    assert_eq!(sent[0].detail["sent"], 1, "{sent:?}");
    assert_eq!(metric(&server, "gatehouse_mail_failed").await, "gatehouse_mail_failed 0");
    assert_eq!(check(&fixed, "email.queue").await.0.status, Status::Pass);
}

/// The relay refuses this site's sender (`550 5.7.1 sender rejected` at MAIL FROM). A reset
/// email fails at once — a permanent answer is not retried for hours — and the doctor names the
/// answer twice: email.queue from the outbox, email.transport by trying the envelope itself
/// (MAIL FROM and RCPT TO, no DATA). With a sender the relay accepts, the requeued mail goes out.
async fn a_relay_that_refuses_the_sender_is_named_and_not_retried(backend: Backend) {
    let relay = crate::support::smtp::start_refusing(None, Some("noreply@shop.test")).await;
    let mail = |from: &str| {
        format!(
            "mail:\n  transport: smtp\n  from: \"Shop <{from}>\"\n  smtp: {{ host: 127.0.0.1, port: {}, tls: none }}\n",
            relay.port
        )
    };
    let Some(mut server) = Server::start(backend, &mail("noreply@shop.test")).await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    server.browser().submit("password/forgot", "password/forgot", &[("email", "ann@example.com")]).await;
    let db = server.accounts().db().clone();
    for _ in 0..100 {
        if gatehouse::mail::stats(&db).await.unwrap().queued == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let loaded = server.state.loaded.clone();
    let run =
        Cron { loaded: &loaded, services: &server.state.services }.run(Some(gatehouse::cron::Job::Mail)).await.unwrap();
    assert_eq!(run[0].detail["failed"], 1, "failed at the first answer, not queued for retries: {run:?}");
    assert_eq!(metric(&server, "gatehouse_mail_failed").await, "gatehouse_mail_failed 1", "the symptom");

    let (queue, _) = check(&loaded, "email.queue").await;
    assert_eq!(queue.status, Status::Fail, "{}", queue.message);
    assert!(queue.message.contains("550") && queue.message.contains("sender rejected"), "{}", queue.message);
    let (transport, _) = check(&loaded, "email.transport").await;
    assert_eq!(transport.status, Status::Fail, "{}", transport.message);
    assert_eq!(transport.evidence["failed_phase"], "mail_from");
    assert!(transport.message.contains("MAIL FROM:<noreply@shop.test>") && transport.message.contains("550"));
    assert!(relay.messages.lock().unwrap().is_empty(), "the doctor sends nothing");

    // The fix: a sender the relay accepts; requeue, and cron delivers.
    server.reconfigure(&mail("billing@shop.test")).await;
    let loaded = server.state.loaded.clone();
    let (transport, ctx) = check(&loaded, "email.transport").await;
    assert_eq!(transport.status, Status::Pass, "{}", transport.message);
    let (queue, _) = check(&loaded, "email.queue").await;
    assert_eq!(queue.fix.proposal.as_ref().unwrap().apply(&ctx).await.unwrap(), "requeued 1 message(s)");
    let sent =
        Cron { loaded: &loaded, services: &server.state.services }.run(Some(gatehouse::cron::Job::Mail)).await.unwrap();
    assert_eq!(sent[0].detail["sent"], 1, "{sent:?}");
    assert_eq!(relay.messages.lock().unwrap().len(), 1, "the symptom is gone");
    assert_eq!(check(&loaded, "email.queue").await.0.status, Status::Pass);
}

/// With `sessions.gc: false` a one-off collection does not last: the fix turns collection back on
/// in the configuration (diff and backup), then collects, and the next cron keeps it that way.
async fn the_gc_fix_turns_collection_back_on_so_it_lasts(backend: Backend) {
    let Some(mut server) = Server::start(backend, "sessions:\n  gc: false   # we thought cron was slow\n").await else {
        return;
    };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let expire_two = async |server: &Server| {
        for _ in 0..2 {
            assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 303);
        }
        server.state.db().clock().advance(Duration::from_secs(31 * 60));
    };
    expire_two(&server).await;
    let cron = Cron { loaded: &server.state.loaded, services: &server.state.services };
    let skipped = cron.run(Some(gatehouse::cron::Job::SessionsGc)).await.unwrap();
    assert_eq!(skipped[0].detail["skipped"], "sessions.gc is false", "the symptom: cron removes nothing");

    let clock = server.state.db().clock().clone();
    let (result, ctx) = check_at(&server.state.loaded, "sessions.gc", &clock).await;
    assert_eq!(result.status, Status::Fail, "{}", result.message);
    assert!(result.fix.description.starts_with("set sessions.gc to true in "), "{:?}", result.fix);
    let planned = result.fix.proposal.as_ref().expect("a fix is offered");
    let described = planned.describe(&ctx);
    assert!(described.contains("-  gc: false   # we thought cron was slow"), "{described}");
    assert!(described.contains("+  gc: true   # we thought cron was slow"), "{described}");
    let done = planned.apply(&ctx).await.unwrap();
    assert!(done.contains("set sessions.gc to true") && done.ends_with("removed 2 expired session(s)"), "{done}");

    // serve and cron restarted on the edited file: collection now happens by itself.
    server.restart_from_file().await;
    assert!(server.state.loaded.config.sessions.gc);
    expire_two(&server).await;
    let cron = Cron { loaded: &server.state.loaded, services: &server.state.services };
    let collected = cron.run(Some(gatehouse::cron::Job::SessionsGc)).await.unwrap();
    assert_eq!(collected[0].detail["removed"], 2, "{}", collected[0].detail);
    cron.run(Some(gatehouse::cron::Job::Heartbeat)).await.unwrap();
    assert_eq!(check_at(&server.state.loaded, "sessions.gc", &clock).await.0.status, Status::Pass);
}

async fn sessions_storage_finds_a_store_that_cannot_keep_sessions(backend: Backend) {
    let Some(server) = Server::start(backend, "sessions:\n  store: files\n").await else { return };
    let loaded = &server.state.loaded;
    assert_eq!(check(loaded, "sessions.storage").await.0.status, Status::Pass, "healthy: no false alarm");
    server.client_with_owner("ann@example.com", "Ann Hosting").await;

    std::fs::remove_dir_all(server.dir.path().join("gatehouse-data/sessions")).unwrap();
    // The symptom: the right password leads nowhere — the session cannot be saved.
    let b = server.browser();
    let refused = b.login("ann@example.com", PASSWORD).await;
    assert_eq!(refused.status, 503);
    assert!(refused.body.contains("Your session could not be saved"), "{}", refused.body);

    let (result, ctx) = check(loaded, "sessions.storage").await;
    assert_eq!(result.status, Status::Fail, "{}", result.message);
    assert_eq!(result.evidence["dir_exists"], false);
    let applied = result.fix.proposal.as_ref().expect("creating the directory is offered").apply(&ctx).await.unwrap();
    assert!(applied.starts_with("created "), "{applied}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(server.dir.path().join("gatehouse-data/sessions")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);

    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 303, "the symptom is gone");
    assert_eq!(check(loaded, "sessions.storage").await.0.status, Status::Pass);
}

web_on_both_backends!(
    the_gc_fix_turns_collection_back_on_so_it_lasts,
    sessions_storage_finds_a_store_that_cannot_keep_sessions,
    email_queue_finds_failed_mail_and_requeues_it,
    a_relay_that_refuses_the_sender_is_named_and_not_retried,
    sessions_gc_finds_uncollected_sessions_and_collects_them,
    triage_puts_cron_above_the_sessions_it_leaves,
    cron_activity_sees_whether_cron_runs,
    twofa_duo_explains_frameless_access,
);
