//! Adversary suite, the hashing threads as the target. Every password, security answer and
//! backup code is an argon2id hash of about 16 ms on one of as many threads as there are cores,
//! so 200 parallel requests that each cost a hash would put everyone else's sign-in behind
//! 200 hashes. One address has only its share of those threads' queue: its own requests wait
//! for each other, and a sign-in from anywhere else waits behind about one hash of theirs.
//!
//! Nothing here measures time: the proof is the order in which the answers come back.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::web::{Backend, Browser, PASSWORD, Server};

const FLOOD: usize = 200;

/// Runs `one` `FLOOD` times at once; returns the tasks and the count of those answered.
fn flood<F>(one: impl Fn() -> F) -> (Vec<tokio::task::JoinHandle<()>>, Arc<AtomicUsize>)
where
    F: Future<Output = ()> + Send + 'static,
{
    let answered = Arc::new(AtomicUsize::new(0));
    let tasks = (0..FLOOD)
        .map(|_| {
            let (request, answered) = (one(), answered.clone());
            tokio::spawn(async move {
                request.await;
                answered.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    (tasks, answered)
}

/// Waits until the flood is being hashed (a few of its requests answered), then signs the owner
/// in from another address; returns how many of the flood had been answered by then.
async fn owner_signs_in_during(answered: &AtomicUsize, owner: &Browser, email: &str) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while answered.load(Ordering::SeqCst) < 5 {
        assert!(std::time::Instant::now() < deadline, "the flood never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(owner.login(email, PASSWORD).await.status, 303, "the owner signs in");
    answered.load(Ordering::SeqCst)
}

fn address(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 9, last))
}

/// An attacker with nothing: 200 parallel wrong passwords for the owner's account from one
/// address. Each costs a hash, a refused one as much as a checked one (so a locked account
/// cannot be told by the time its answer takes), yet the owner, on the browser they signed in
/// with before and from another address, signs in ahead of most of them.
async fn a_flood_of_wrong_passwords_does_not_queue_ahead_of_the_owner(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let owner = server.browser_via(address(2), Arc::default());
    assert_eq!(owner.login("ann@example.com", PASSWORD).await.status, 303);
    owner.submit("clientarea", "logout", &[]).await;
    let attacker = Arc::new(server.browser_via(address(1), Arc::default()));
    let (tasks, answered) = flood(|| {
        let attacker = attacker.clone();
        async move {
            let _ = attacker.try_login("ann@example.com", "a guess that is wrong").await;
        }
    });
    let before = owner_signs_in_during(&answered, &owner, "ann@example.com").await;
    for task in tasks {
        task.await.unwrap();
    }
    eprintln!("{backend:?}: the owner signed in after {before} of {FLOOD} wrong passwords were answered");
    // Without a share per address the owner's hash queues behind the whole flood (seen: 142 to 200).
    assert!(before < FLOOD / 2, "the owner waited for {before} of the flood's {FLOOD} hashes");
}

/// A signed-in attacker (a stolen session, or a user of a shared host) holding a fresh proof
/// sets a security answer 200 times at once: every one is a hash, and every one is allowed.
/// Another account's owner still signs in ahead of most of them.
async fn a_signed_in_flood_of_security_answers_does_not_queue_ahead_of_others(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("mallory@example.com", "Mallory Ltd").await;
    server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let actor = gatehouse::accounts::Actor::system("test");
    server.accounts().add_security_question(&actor, "First pet?").await.unwrap();
    let attacker = Arc::new(server.browser_via(address(3), Arc::default()));
    assert_eq!(attacker.login("mallory@example.com", PASSWORD).await.status, 303);
    let csrf = attacker.get("account/security").await.csrf();
    let (tasks, answered) = flood(|| {
        let (attacker, csrf) = (attacker.clone(), csrf.clone());
        async move {
            let fields = [("csrf_token", csrf.as_str()), ("question_id", "1"), ("answer", "Rex")];
            assert_eq!(attacker.post("account/security/question", &fields).await.status, 303, "each one is allowed");
        }
    });
    let owner = server.browser_via(address(4), Arc::default());
    let before = owner_signs_in_during(&answered, &owner, "ann@example.com").await;
    for task in tasks {
        task.await.unwrap();
    }
    eprintln!("{backend:?}: the owner signed in after {before} of {FLOOD} security answers were answered");
    assert!(before < FLOOD / 2, "the owner waited for {before} of the flood's {FLOOD} hashes");
}

web_on_both_backends!(
    a_flood_of_wrong_passwords_does_not_queue_ahead_of_the_owner,
    a_signed_in_flood_of_security_answers_does_not_queue_ahead_of_others,
);
