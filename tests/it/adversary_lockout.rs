//! Adversary suite, the lockout turned against the owner (OWASP's device cookies; NIST SP
//! 800-63B-4 §3.2.2). An honest per-account limit lets anyone who knows an address lock its owner
//! out; a browser that signed in before is a known device, counted in its own budget, so the
//! owner keeps signing in while an attacker hammers the account — and the attacker's evaluated
//! guesses stay within the account's budget, and within 100 consecutive ones over time.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::web::{Backend, Browser, PASSWORD, Server};

/// `security.lockout.max_failures` by default.
const LIMIT: usize = 5;

/// How many audit entries about `user_id` have `action` (all of them: an attack writes thousands).
async fn count(server: &Server, user_id: i64, action: &str) -> usize {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE target_type = 'user' AND target_id = $1 AND action = $2",
    )
    .bind(user_id)
    .bind(action)
    .fetch_one(server.state.db().pool())
    .await
    .unwrap();
    n as usize
}

/// The `i`-th of the attacker's addresses, all of them loopback (127.0.0.0/8).
fn attacker_address(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 1 + (i / 250) as u8, (i % 250) as u8, 1 + (i % 7) as u8))
}

/// Signs in and out again; returns the status of the sign-in.
async fn sign_in_and_out(b: &Browser, email: &str) -> u16 {
    let signed = b.login(email, PASSWORD).await;
    if signed.status == 303 {
        b.submit("clientarea", "logout", &[]).await;
    }
    signed.status
}

/// Wrong passwords for `email` from 1,000 addresses, without pause, until `stop` is set.
fn hammer(
    server: &Server,
    email: &'static str,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..8)
        .map(|worker| {
            let (stop, sent) = (stop.clone(), sent.clone());
            let browsers: Vec<Browser> =
                (0..125).map(|k| server.browser_via(attacker_address(worker * 125 + k), Arc::default())).collect();
            tokio::spawn(async move {
                for b in browsers.iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match b.try_login(email, "a guess that is wrong").await {
                        Ok(_) => sent.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            eprintln!("attacker: {e:?}");
                            0
                        }
                    };
                }
            })
        })
        .collect()
}

/// The targeted account: wrong passwords from 1,000 addresses for the length of the test, and
/// the owner, from the browser they signed in with before, signs in every time.
async fn the_owner_signs_in_while_the_account_is_hammered(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let owner = server.browser();
    assert_eq!(sign_in_and_out(&owner, "ann@example.com").await, 303, "the owner's browser becomes known");

    let (stop, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let attack = hammer(&server, "ann@example.com", stop.clone(), sent.clone());
    // Wait until the account's own budget is spent, so every sign-in below meets the lock.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while count(&server, user_id, "login.failed").await < LIMIT {
        assert!(std::time::Instant::now() < deadline, "the attack never reached the account: {sent:?}");
        assert!(!attack.iter().any(|t| t.is_finished()), "an attacker stopped early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stranger = server.browser();
    assert_eq!(stranger.login("ann@example.com", PASSWORD).await.status, 401, "an unknown browser meets the lock");
    for round in 0..10 {
        assert_eq!(sign_in_and_out(&owner, "ann@example.com").await, 303, "sign-in {round} during the attack");
    }
    stop.store(true, Ordering::Relaxed);
    for task in attack {
        task.await.unwrap();
    }
    let evaluated = count(&server, user_id, "login.failed").await;
    let sent = sent.load(Ordering::Relaxed);
    eprintln!(
        "{backend:?}: {sent} wrong passwords from 1,000 addresses, {evaluated} evaluated; the owner signed in 10 of 10"
    );
    assert!(sent > 10 * LIMIT, "the attack ran: {sent}");
    assert!(evaluated <= LIMIT, "{evaluated} of {sent} guesses were evaluated; the account's budget is {LIMIT}");
}

/// Fifty people behind one address (an office's NAT), each on a browser that signed in before,
/// sign in while an attacker at the same address sprays wrong passwords at their accounts and
/// beyond: every real sign-in succeeds, though the address's own budget is long spent.
async fn an_office_signs_in_through_a_spray_from_its_own_address(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let mut people = Vec::new();
    for i in 0..50 {
        let email: &'static str = Box::leak(format!("user{i}@example.com").into_boxed_str());
        server.client_with_owner(email, &format!("Client {i}")).await;
        let b = server.browser();
        assert_eq!(sign_in_and_out(&b, email).await, 303);
        people.push((email, Arc::new(b)));
    }
    let (stop, sprayed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let sprayer = {
        let (stop, sprayed) = (stop.clone(), sprayed.clone());
        let b = server.browser();
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                b.login(&format!("user{}@example.com", (i * 7) % 60), "spray").await;
                sprayed.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sprayed.load(Ordering::Relaxed) < 60 {
        assert!(std::time::Instant::now() < deadline && !sprayer.is_finished(), "the spray never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let signed: Vec<_> = people
        .iter()
        .map(|(email, b)| {
            let (email, b) = (*email, b.clone());
            tokio::spawn(async move { b.login(email, PASSWORD).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in signed {
        statuses.push(task.await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    sprayer.await.unwrap();
    let stranger = server.browser();
    assert_eq!(stranger.login("user1@example.com", PASSWORD).await.status, 401, "the address itself is locked");
    let ok = statuses.iter().filter(|s| **s == 303).count();
    eprintln!(
        "{backend:?}: {ok} of 50 sign-ins through a spray of {} from the same address",
        sprayed.load(Ordering::Relaxed)
    );
    assert_eq!(ok, 50, "{statuses:?}");
}

/// Over time, with the window passing again and again, an attacker gets at most 100 consecutive
/// evaluated guesses; then only a known device — or a completed reset — signs in, and that
/// success starts the count again.
async fn at_most_a_hundred_consecutive_failures_then_only_a_known_device(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let owner = server.browser();
    assert_eq!(sign_in_and_out(&owner, "ann@example.com").await, 303);
    let clock = server.state.db().clock();
    let attacker = server.browser();
    for _ in 0..30 {
        for _ in 0..LIMIT {
            attacker.login("ann@example.com", "a guess that is wrong").await;
        }
        clock.advance(Duration::from_secs(31 * 60)); // the window and the lock both pass
    }
    let evaluated = count(&server, user_id, "login.failed").await;
    assert_eq!(evaluated, 100, "150 sent over 15 hours, 100 evaluated");
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 401, "a new browser is refused");
    assert_eq!(sign_in_and_out(&owner, "ann@example.com").await, 303, "the known device signs in");
    assert_eq!(sign_in_and_out(&server.browser(), "ann@example.com").await, 303, "and that success reopened it");
}

/// A stolen device cookie is worth a device's budget, and no more than 100 consecutive
/// guesses: then that device is shut, while the account stays open to the owner's other
/// browsers. A completed reset forgets every known device (one may be why it was asked for).
async fn a_known_device_meets_its_own_ceiling_and_a_reset_forgets_devices(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let stolen = server.browser();
    assert_eq!(sign_in_and_out(&stolen, "ann@example.com").await, 303);
    let clock = server.state.db().clock();
    for _ in 0..30 {
        for _ in 0..LIMIT {
            stolen.login("ann@example.com", "a guess that is wrong").await;
        }
        clock.advance(Duration::from_secs(31 * 60));
    }
    assert_eq!(count(&server, user_id, "login.failed").await, 100, "150 sent from the device, 100 evaluated");
    assert_eq!(stolen.login("ann@example.com", PASSWORD).await.status, 401, "that device is shut");
    assert_eq!(sign_in_and_out(&server.browser(), "ann@example.com").await, 303, "the account is not");

    let who = gatehouse::accounts::Principal::User;
    assert_eq!(server.auth().known_devices(who, user_id, None).await.unwrap().0.len(), 2);
    let user = server.accounts().user(user_id).await.unwrap();
    server.auth().send_reset(&gatehouse::accounts::Actor::system("test"), &user).await.unwrap();
    let mail = gatehouse::mail::for_recipient(server.accounts().db(), "ann@example.com").await.unwrap();
    let raw = mail[0].body.split("password/reset/").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    server.auth().complete_reset(&raw, None, "a brand new password", "127.0.0.1").await.unwrap();
    assert!(server.auth().known_devices(who, user_id, None).await.unwrap().0.is_empty(), "every device forgotten");
}

/// A lock an attacker caused does not stop the owner, on their browser, from confirming who they
/// are: the current password asked by a credential form counts in the device's budget too.
async fn the_owner_changes_the_password_while_the_account_is_locked(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let owner = server.browser();
    assert_eq!(owner.login("ann@example.com", PASSWORD).await.status, 303);
    for _ in 0..LIMIT {
        server.browser().login("ann@example.com", "a guess that is wrong").await;
    }
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 401, "the account's budget is spent");
    let new = "the owner's next password";
    let form = [("current_password", PASSWORD), ("password", new), ("password_confirm", new)];
    let changed = owner.submit("account/security", "account/security/password", &form).await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    owner.submit("clientarea", "logout", &[]).await;
    assert_eq!(owner.login("ann@example.com", PASSWORD).await.status, 401, "the old password is gone");
    assert_eq!(owner.login("ann@example.com", new).await.status, 303, "the new one works, lock or not");
}

web_on_both_backends!(
    the_owner_changes_the_password_while_the_account_is_locked,
    a_known_device_meets_its_own_ceiling_and_a_reset_forgets_devices,
    the_owner_signs_in_while_the_account_is_hammered,
    an_office_signs_in_through_a_spray_from_its_own_address,
    at_most_a_hundred_consecutive_failures_then_only_a_known_device,
);
