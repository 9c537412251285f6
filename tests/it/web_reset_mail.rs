//! Password reset by emailed link, the mail outbox and its delivery by `cron`, end to end.

use std::time::Duration;

use crate::support::web::{Backend, PASSWORD, Server};
use gatehouse::accounts::Actor;
use gatehouse::cron::Cron;

/// Waits for the reset email (it is queued in the background) and returns its link.
async fn reset_link(server: &Server, email: &str) -> String {
    for _ in 0..100 {
        let mail = gatehouse::mail::for_recipient(server.accounts().db(), email).await.unwrap();
        if let Some(m) = mail.first() {
            let at = m.body.find("http").unwrap();
            return m.body[at..].split_whitespace().next().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no reset email for {email}");
}

async fn forgot_password_answers_the_same_for_unknown_emails(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();
    let known = b.submit("password/forgot", "password/forgot", &[("email", "ann@example.com")]).await;
    let unknown = b.submit("password/forgot", "password/forgot", &[("email", "nobody@example.com")]).await;
    assert_eq!((known.status, unknown.status), (303, 303));
    assert_eq!(known.location(), unknown.location(), "identical answers");
    let (known, unknown) = (b.get(known.location()).await, b.get(unknown.location()).await);
    assert_eq!(known.body, unknown.body, "identical pages");
    let link = reset_link(&server, "ann@example.com").await;
    assert!(link.starts_with(&format!("{}password/reset/pr_", server.base)), "{link}");
    assert!(gatehouse::mail::for_recipient(server.accounts().db(), "nobody@example.com").await.unwrap().is_empty());
}

async fn reset_link_comes_from_system_url_whatever_the_host(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let (_, token) =
        server.accounts().bootstrap_admin(&Actor::system("test"), "root", "root@example.com").await.unwrap();
    // An admin asks for the reset through a request whose Host is something else entirely.
    let r = reqwest::Client::new()
        .post(server.url(&format!("api/v1/users/{user_id}/password-reset")))
        .header("host", "evil.example")
        .bearer_auth(&token.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let link = reset_link(&server, "ann@example.com").await;
    assert!(link.starts_with(&server.base), "{link} does not start with {}", server.base);
    assert!(!link.contains("evil.example"));
}

/// A reset link opened on another name for the same server (a bookmark on the server's own
/// name, a proxy that rewrote the host): the form cannot keep a session there. The refusal
/// says so — the wrong address, and a link to the same page at system_url — instead of
/// "Invalid CSRF token"; followed, the link completes the reset.
async fn a_reset_link_opened_on_another_host_points_to_system_url(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    server.browser().submit("password/forgot", "password/forgot", &[("email", "ann@example.com")]).await;
    let link = reset_link(&server, "ann@example.com").await;
    let path = link.strip_prefix(&server.base).unwrap().to_string();
    let mut elsewhere = server.browser();
    elsewhere.header("host", &format!("server-7.internal:{}", server.addr.port()));
    let new = "a completely new passphrase";
    let fields = [("password", new), ("password_confirm", new)];
    let refused = elsewhere.submit(&path, &path, &fields).await;
    assert_eq!(refused.status, 403);
    assert!(!refused.body.contains("CSRF"), "{}", refused.body);
    assert!(refused.body.contains("This page was opened at server-7.internal"), "{}", refused.body);
    let there = format!("{}/{path}", server.base.trim_end_matches('/'));
    let body = refused.body.replace("&#x2f;", "/");
    assert!(body.contains(&format!("href=\"{there}\"")), "the same page at system_url: {body}");

    let b = server.browser();
    assert_eq!(b.submit(&path, &path, &fields).await.status, 303, "followed, the link completes the reset");
    assert_eq!(b.login("ann@example.com", new).await.status, 303);
}

/// A link is stamped by the clock its expiry is judged by: issued after that clock moved on (a
/// test advancing it, a server whose clock was corrected), it is not born expired.
async fn a_link_issued_after_the_clock_moved_is_not_born_expired(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    server.state.db().clock().advance(Duration::from_secs(3 * 3600));
    server.browser().submit("password/forgot", "password/forgot", &[("email", "ann@example.com")]).await;
    let link = reset_link(&server, "ann@example.com").await;
    let page = server.browser().get(&link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("invalid or has expired"), "{}", page.body);
}

async fn reset_asks_the_security_question_is_single_use_and_ends_sessions(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let actor = Actor::system("test");
    let q = server.accounts().add_security_question(&actor, "Name of your first pet?").await.unwrap();
    server.accounts().set_security_answer(&actor, user_id, q.id, "Fluffy").await.unwrap();
    let signed_in = server.browser();
    assert_eq!(signed_in.login("ann@example.com", PASSWORD).await.status, 303);

    let b = server.browser();
    b.submit("password/forgot", "password/forgot", &[("email", "ann@example.com")]).await;
    let link = reset_link(&server, "ann@example.com").await;
    let page = b.get(&link).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Name of your first pet?"), "the question comes first");

    let new = "a completely new passphrase";
    let wrong =
        b.submit(&link, &link, &[("security_answer", "Rex"), ("password", new), ("password_confirm", new)]).await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("security question"));
    let done =
        b.submit(&link, &link, &[("security_answer", "  FLUFFY "), ("password", new), ("password_confirm", new)]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(b.get(done.location()).await.body.contains("Your password has been changed"));

    assert_eq!(b.get(&link).await.status, 404, "single use");
    assert_eq!(signed_in.get("clientarea").await.status, 303, "every session ended");
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 401);
    assert_eq!(server.browser().login("ann@example.com", new).await.status, 303);
    let actions: Vec<String> = server.audit_actions(user_id).await.into_iter().map(|a| a.0).collect();
    assert!(
        actions.contains(&"password.reset_wrong_answer".into()) && actions.contains(&"password.reset_completed".into())
    );
}

async fn reset_links_expire(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();
    b.submit("password/forgot", "password/forgot", &[("email", "ann@example.com")]).await;
    let link = reset_link(&server, "ann@example.com").await;
    assert_eq!(b.get(&link).await.status, 200, "live within reset_token_ttl (1 h)");
    server.state.db().clock().advance(Duration::from_secs(3601));
    let page = b.get(&link).await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("invalid or has expired"));
}

async fn cron_delivers_the_outbox_and_records_failures(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let b = server.browser();
    b.submit("password/forgot", "password/forgot", &[("email", "ann@example.com")]).await;
    let link = reset_link(&server, "ann@example.com").await;

    // Spool transport: one .eml per message.
    let results = Cron { loaded: &server.state.loaded, services: &server.state.services }
        .run(Some(gatehouse::cron::Job::Mail))
        .await
        .unwrap();
    assert!(results[0].ok, "{results:?}");
    assert_eq!(results[0].detail["sent"], 1);
    let spool = server.dir.path().join("gatehouse-data/mail");
    let files: Vec<_> = std::fs::read_dir(&spool).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(eml.contains("Subject: Reset your password") && eml.contains("To: ann@example.com"), "{eml}");
    assert!(eml.contains(&link[..40]), "the link is in the message");

    // SMTP to a port where nothing listens: the failure is recorded and the message retried later.
    let closed = crate::support::closed_port();
    let mut loaded = server.state.loaded.clone();
    loaded.config.mail.transport = gatehouse::config::MailTransport::Smtp;
    loaded.config.mail.smtp.host = "127.0.0.1".into();
    loaded.config.mail.smtp.port = closed;
    loaded.config.mail.smtp.tls = gatehouse::config::SmtpTls::None;
    b.submit("password/forgot", "password/forgot", &[("email", "ann@example.com")]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let results =
        Cron { loaded: &loaded, services: &server.state.services }.run(Some(gatehouse::cron::Job::Mail)).await.unwrap();
    assert_eq!(results[0].detail["retrying"], 1, "{results:?}");
    let mail = gatehouse::mail::for_recipient(server.accounts().db(), "ann@example.com").await.unwrap();
    let failed = &mail[0];
    assert_eq!((failed.status.as_str(), failed.attempts), ("queued", 1));
    assert!(failed.last_error.as_deref().unwrap_or("").contains("SMTP"), "{:?}", failed.last_error);
    assert!(failed.next_attempt_at > server.state.db().now(), "backoff before the next attempt");
    let stats = gatehouse::mail::stats(server.accounts().db()).await.unwrap();
    assert_eq!(stats.queued, 1);
}

async fn cron_collects_expired_sessions_and_writes_a_heartbeat(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Hosting").await;
    for _ in 0..3 {
        assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 303);
    }
    // Past the 30-minute idle timeout, on the server's clock.
    server.state.db().clock().advance(Duration::from_secs(31 * 60));
    assert_eq!(server.sessions().expired().await.unwrap().0, 3);
    let cron = Cron { loaded: &server.state.loaded, services: &server.state.services };
    let results = cron.run(None).await.unwrap();
    assert!(results.iter().all(|r| r.ok), "{results:?}");
    let gc = results.iter().find(|r| r.job == gatehouse::cron::Job::SessionsGc).unwrap();
    assert_eq!(gc.detail["removed"], 3);
    assert_eq!(server.sessions().expired().await.unwrap().0, 0);

    server.state.flush().await; // what serve's background task does every 30 s
    let beats = gatehouse::cron::heartbeat::all(server.accounts().db()).await.unwrap();
    let roles: Vec<&str> = beats.iter().map(|b| b.role.as_str()).collect();
    assert!(roles.contains(&"cron") && roles.contains(&"web"), "{roles:?}");
    assert!(beats.iter().all(|b| !b.timezone.is_empty() && b.config_fingerprint.len() == 16));
}

web_on_both_backends!(
    forgot_password_answers_the_same_for_unknown_emails,
    reset_link_comes_from_system_url_whatever_the_host,
    a_reset_link_opened_on_another_host_points_to_system_url,
    a_link_issued_after_the_clock_moved_is_not_born_expired,
    reset_asks_the_security_question_is_single_use_and_ends_sessions,
    reset_links_expire,
    cron_delivers_the_outbox_and_records_failures,
    cron_collects_expired_sessions_and_writes_a_heartbeat,
);

/// `security.security_questions: false` (what `gatehouse init` writes for a new site): a reset
/// never asks a question, even of a user who has an answer, and none can be set.
#[tokio::test]
async fn with_security_questions_off_a_reset_asks_none() {
    let server = Server::start(Backend::Sqlite, "security:\n  security_questions: false\n").await.unwrap();
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Hosting").await;
    let actor = gatehouse::accounts::Actor::system("test");
    let question = server.accounts().add_security_question(&actor, "First pet?").await.unwrap();
    server.accounts().set_security_answer(&actor, user_id, question.id, "Rex").await.unwrap();
    let mut conn = server.accounts().db().pool().acquire().await.unwrap();
    let token = gatehouse::auth::one_time::issue(
        &mut conn,
        server.state.db().now(),
        gatehouse::auth::one_time::Purpose::PasswordReset,
        user_id,
        None,
        3600,
    );
    let token = token.await.unwrap();
    drop(conn);
    let b = server.browser();
    let path = format!("password/reset/{token}");
    let page = b.get(&path).await;
    assert!(!page.body.contains("First pet?") && !page.body.contains("security_answer"), "{}", page.body);
    let fields = [("password", "a brand new password"), ("password_confirm", "a brand new password")];
    assert_eq!(b.submit(&path, &path, &fields).await.status, 303);
    assert_eq!(b.login("ann@example.com", "a brand new password").await.status, 303);
    let security = b.get("account/security").await;
    assert!(!security.body.contains("Security question"), "{}", security.body);
    let set = b.submit("account/security", "account/security/question", &[("question_id", "1"), ("answer", "x")]).await;
    assert_eq!(set.status, 404);
}
