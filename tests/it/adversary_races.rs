//! The standing adversary suite, races: an attacker with 200 parallel requests. For every limited
//! action, N attempts sent at once evaluate at most the limit (`security.lockout.max_failures`,
//! 5 by default) — counted from the audit log, where every evaluated secret leaves its mark —
//! and every single-use thing is used exactly once. On both databases; the login also across
//! two nodes sharing PostgreSQL.

use std::future::Future;
use std::sync::Arc;

use gatehouse::accounts::{Actor, Grantor, Permissions};
use gatehouse::auth::one_time::{self, Purpose};
use gatehouse::secrets::totp;

use crate::support::web::{Backend, Browser, PASSWORD, Server};

/// The default `max_failures`.
const LIMIT: usize = 5;

/// Runs `n` attempts at once (each on its own task) and returns their answers' statuses.
async fn burst<F, Fut>(n: usize, attempt: F) -> Vec<u16>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = u16> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(attempt(i))).collect();
    let mut statuses = Vec::with_capacity(n);
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

/// How many audit entries about `user_id` have one of `actions`.
async fn count(server: &Server, user_id: i64, actions: &[&str]) -> usize {
    server.audit_actions(user_id).await.iter().filter(|(a, _)| actions.contains(&a.as_str())).count()
}

/// A browser holding a form session, shared by every task of a burst, with its CSRF token; at
/// an address of its own, so its burst fills no other test's share of the hashing threads.
async fn armed(server: &Server, form_page: &str) -> (Arc<Browser>, String) {
    let browser = server.browser_of_its_own();
    let csrf = browser.get(form_page).await.csrf();
    (Arc::new(browser), csrf)
}

async fn parallel_wrong_passwords_evaluate_at_most_the_limit(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let (browser, csrf) = armed(&server, "login").await;
    let statuses = burst(200, |_| {
        let (browser, csrf) = (browser.clone(), csrf.clone());
        async move {
            let form = [("csrf_token", csrf.as_str()), ("email", "ann@example.com"), ("password", "wrong password!")];
            browser.post("login", &form).await.status
        }
    })
    .await;
    // 401: checked, or refused unseen by the lockout; 429: refused before either, because the
    // address's share of the hashing threads was already full of its own waiting requests.
    assert!(statuses.iter().all(|s| [401, 429].contains(s)), "{statuses:?}");
    let busy = statuses.iter().filter(|s| **s == 429).count();
    let evaluated = count(&server, user_id, &["login.failed"]).await;
    let refused = count(&server, user_id, &["login.locked"]).await;
    eprintln!(
        "{backend:?}: {evaluated} of 200 parallel wrong passwords checked, {refused} refused unseen, {busy} refused busy"
    );
    assert!(evaluated <= LIMIT, "{evaluated} of 200 parallel wrong passwords were checked; the limit is {LIMIT}");
    assert_eq!(evaluated + refused + busy, 200, "every attempt is checked, refused unseen or refused busy");
    if busy > 0 {
        let metrics = reqwest::get(server.url("metrics")).await.unwrap().text().await.unwrap();
        let line = format!("gatehouse_logins_total{{outcome=\"busy\"}} {busy}\n");
        assert!(metrics.contains(&line), "operators see the refusals: {metrics}");
    }
    // A refused-busy attempt gives its slots back (its password was never looked at), so the
    // burst may end before the budget is spent; what it left, sequential guesses spend.
    for _ in evaluated..LIMIT {
        assert_eq!(server.browser().login("ann@example.com", "wrong password!").await.status, 401);
    }
    let evaluated = count(&server, user_id, &["login.failed"]).await;
    assert!(evaluated <= LIMIT, "{evaluated} guesses checked in all; the limit is {LIMIT}");
    // The budget spent, the account is locked: the right password is refused too.
    assert_eq!(server.browser().login("ann@example.com", PASSWORD).await.status, 401);
}

async fn a_right_password_inside_a_burst_gets_no_extra_guesses(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let (browser, csrf) = armed(&server, "login").await;
    burst(41, |i| {
        let (browser, csrf) = (browser.clone(), csrf.clone());
        async move {
            let password = if i == 20 { PASSWORD } else { "wrong password!" };
            let form = [("csrf_token", csrf.as_str()), ("email", "ann@example.com"), ("password", password)];
            browser.post("login", &form).await.status
        }
    })
    .await;
    let evaluated = count(&server, user_id, &["login.failed", "login.password_ok"]).await;
    assert!(evaluated <= LIMIT, "{evaluated} of 41 passwords were checked; the limit is {LIMIT}");
}

/// A sign-in that completes writes its lockout counters, audit rows, device and session in one
/// transaction, and on PostgreSQL each counter row stays locked until the commit. One person's
/// browsers signing in all at once — eight known devices, each in its own budget, and four
/// unknown ones sharing the account's — all get in, round after round: no two sign-ins wait on
/// each other in a cycle (a deadlock PostgreSQL would end by failing one), and on SQLite the
/// writers queue on the busy timeout instead of failing.
async fn one_persons_browsers_sign_in_all_at_once(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let known: Vec<Browser> = (0..8).map(|_| server.browser()).collect();
    for b in &known {
        assert_eq!(sign_in_and_out(b).await, 303, "each browser becomes known");
    }
    let known = Arc::new(known);
    for round in 0..3 {
        let unknown: Arc<Vec<Browser>> = Arc::new((0..4).map(|_| server.browser()).collect());
        let statuses = burst(12, |i| {
            let (known, unknown) = (known.clone(), unknown.clone());
            async move { sign_in_and_out(if i < 8 { &known[i] } else { &unknown[i - 8] }).await }
        })
        .await;
        assert_eq!(statuses, vec![303; 12], "round {round}: every browser signed in");
    }
    let signed_in = count(&server, user_id, &["login.signed_in"]).await;
    assert_eq!(signed_in, 8 + 3 * 12, "one audit row per sign-in");
}

/// An account keeps its 20 most recently used devices (`auth::devices`), pruned inside each
/// sign-in's transaction: 24 new browsers signing in four at a time all get in, and 20
/// devices are left — concurrent prunes of one account's rows neither deadlock nor keep more.
async fn an_account_keeps_twenty_devices_while_new_ones_sign_in_at_once(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    for round in 0..6 {
        let browsers: Arc<Vec<Browser>> = Arc::new((0..4).map(|_| server.browser()).collect());
        let statuses = burst(4, |i| {
            let browsers = browsers.clone();
            async move { sign_in_and_out(&browsers[i]).await }
        })
        .await;
        assert_eq!(statuses, vec![303; 4], "round {round}: every new browser signed in");
    }
    let devices: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM device_tokens WHERE principal = 'user' AND account_id = $1")
            .bind(user_id)
            .fetch_one(server.state.db().pool())
            .await
            .unwrap();
    assert_eq!(devices, 20, "the 20 most recent of 24 devices are kept");
}

/// Signs Ann in and out again; returns the status of the sign-in.
async fn sign_in_and_out(b: &Browser) -> u16 {
    let signed = b.login("ann@example.com", PASSWORD).await;
    if signed.status == 303 {
        b.submit("clientarea", "logout", &[]).await;
    }
    signed.status
}

async fn admin_logins_in_parallel_evaluate_at_most_the_limit(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let accounts = server.accounts();
    let actor = Actor::system("test");
    let all = gatehouse::accounts::AdminPermission::ALL.iter().copied().collect();
    accounts.create_role(&actor, &Grantor::Operator, "ops", &all).await.unwrap();
    let admin = accounts.create_admin(&actor, &Grantor::Operator, "root", "r@example.com", "ops", Some(PASSWORD));
    let admin = admin.await.unwrap();
    let (browser, csrf) = armed(&server, "admin/login").await;
    let statuses = burst(31, |i| {
        let (browser, csrf) = (browser.clone(), csrf.clone());
        async move {
            let password = if i == 30 { PASSWORD } else { "wrong password!" };
            let form = [("csrf_token", csrf.as_str()), ("username", "root"), ("password", password)];
            browser.post("admin/login", &form).await.status
        }
    })
    .await;
    let log = accounts.audit_log(Some((gatehouse::accounts::Target::Admin, admin.id)), 500).await.unwrap();
    let evaluated = log.iter().filter(|e| e.action == "admin.login_failed" || e.action == "admin.login_password_ok");
    let evaluated = evaluated.count();
    assert!(evaluated <= LIMIT, "{evaluated} of 31 admin passwords were checked; the limit is {LIMIT}");
    assert!(statuses.iter().filter(|s| **s == 303).count() <= 1);
}

async fn parallel_second_factor_codes_evaluate_at_most_the_limit(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let backup = gatehouse::secrets::passwords::hash("AAAABBBBCCCCDDDD").unwrap();
    let actor = Actor::system("test");
    server
        .accounts()
        .set_totp(&actor, (gatehouse::accounts::Principal::User, user_id), &totp::new_secret(), 0, &backup)
        .await
        .unwrap();
    let browser = Arc::new(server.browser_of_its_own());
    assert_eq!(browser.login("ann@example.com", PASSWORD).await.location(), "/login/2fa");
    let csrf = browser.get("login/2fa").await.csrf();
    burst(60, |i| {
        let (browser, csrf) = (browser.clone(), csrf.clone());
        async move {
            let code = format!("{:06}", 100_000 + i);
            browser.post("login/2fa", &[("csrf_token", csrf.as_str()), ("code", code.as_str())]).await.status
        }
    })
    .await;
    let evaluated = count(&server, user_id, &["twofa.totp_failed", "twofa.totp_ok"]).await;
    assert!(evaluated <= LIMIT, "{evaluated} of 60 parallel codes were checked; the limit is {LIMIT}");
}

/// The backup code, sent by several browsers half-way through a sign-in at once, signs in
/// exactly one of them: each spends it only while it is still the stored code, in its sign-in's
/// transaction, and the others are told it is not valid.
async fn a_backup_code_sent_in_parallel_signs_in_once(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let backup = gatehouse::secrets::passwords::hash("AAAABBBBCCCCDDDD").unwrap();
    let ann = (gatehouse::accounts::Principal::User, user_id);
    server.accounts().set_totp(&Actor::system("test"), ann, &totp::new_secret(), 0, &backup).await.unwrap();
    let mut browsers = Vec::new();
    for _ in 0..4 {
        let browser = server.browser_of_its_own();
        assert_eq!(browser.login("ann@example.com", PASSWORD).await.location(), "/login/2fa");
        let csrf = browser.get("login/2fa").await.csrf();
        browsers.push((Arc::new(browser), csrf));
    }
    let statuses = burst(browsers.len(), |i| {
        let (browser, csrf) = browsers[i].clone();
        async move {
            let form = [("csrf_token", csrf.as_str()), ("backup_code", "AAAA-BBBB-CCCC-DDDD")];
            browser.post("login/2fa", &form).await.status
        }
    })
    .await;
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [303, 401, 401, 401], "one sign-in, three refusals: {statuses:?}");
    assert_eq!(count(&server, user_id, &["twofa.backup_code_used"]).await, 1);
    assert_eq!(count(&server, user_id, &["twofa.backup_code_failed"]).await, 3, "the others count as wrong codes");
}

/// Re-authentication spends the backup code as a sign-in does: sent from four signed-in
/// sessions at once, it confirms one of them; the others are refused and count as wrong codes.
async fn a_backup_code_confirmed_in_parallel_is_spent_once(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let mut sessions = Vec::new();
    for _ in 0..4 {
        let browser = server.browser_of_its_own();
        assert_eq!(browser.login("ann@example.com", PASSWORD).await.location(), "/clientarea");
        sessions.push(Arc::new(browser));
    }
    let backup = gatehouse::secrets::passwords::hash("AAAABBBBCCCCDDDD").unwrap();
    let ann = (gatehouse::accounts::Principal::User, user_id);
    server.accounts().set_totp(&Actor::system("test"), ann, &totp::new_secret(), 0, &backup).await.unwrap();
    let statuses = burst(sessions.len(), |i| {
        let browser = sessions[i].clone();
        async move {
            let proof = [("password", PASSWORD), ("backup_code", "AAAA-BBBB-CCCC-DDDD")];
            browser.submit("account/security/confirm", "account/security/confirm", &proof).await.status
        }
    })
    .await;
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [303, 422, 422, 422], "one confirmation, three refusals: {statuses:?}");
    let counts = [
        count(&server, user_id, &["security.reauthenticated"]).await,
        count(&server, user_id, &["twofa.backup_code_used"]).await,
        count(&server, user_id, &["twofa.backup_code_failed"]).await,
    ];
    assert_eq!(counts, [1, 1, 3], "confirmed, spent, refused");
}

/// The last admin who can sign in is never disabled, even by two operators at once each
/// disabling one of the last two: one of them is refused, every round, on both databases.
async fn the_last_two_admins_disabled_at_once_leave_one(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (actor, grantor) = (Actor::system("test"), gatehouse::accounts::Grantor::Operator);
    let ids = [server.full_admin("ada").await, server.full_admin("bea").await];
    for round in 0..10 {
        let auth = Arc::new(server.state.auth.clone());
        let tasks: Vec<_> = ids
            .iter()
            .map(|&id| {
                let (auth, actor, grantor) = (auth.clone(), actor.clone(), grantor.clone());
                tokio::spawn(async move {
                    match auth.set_admin_disabled(&actor, &grantor, id, true).await {
                        Ok(_) => true,
                        Err(e) if e.to_string().contains("last admin who can sign in") => false,
                        Err(e) => panic!("neither done nor refused by the rule: {e}"),
                    }
                })
            })
            .collect();
        let mut disabled = 0;
        for task in tasks {
            disabled += usize::from(task.await.unwrap());
        }
        assert_eq!(disabled, 1, "round {round}: one of the two is refused");
        for &id in &ids {
            auth.set_admin_disabled(&actor, &grantor, id, false).await.unwrap();
        }
    }
}

async fn parallel_current_password_confirmations_evaluate_at_most_the_limit(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let browser = Arc::new(server.browser_of_its_own());
    assert_eq!(browser.login("ann@example.com", PASSWORD).await.status, 303);
    let csrf = browser.get("account/security").await.csrf();
    burst(50, |_| {
        let (browser, csrf) = (browser.clone(), csrf.clone());
        async move {
            let form = [
                ("csrf_token", csrf.as_str()),
                ("current_password", "a stolen session's guess"),
                ("password", "another long password"),
                ("password_confirm", "another long password"),
            ];
            browser.post("account/security/password", &form).await.status
        }
    })
    .await;
    let evaluated = count(&server, user_id, &["password.confirm_failed"]).await;
    assert!(evaluated <= LIMIT, "{evaluated} of 50 current-password guesses were checked; the limit is {LIMIT}");
    // The right one after the burst: the account is locked, the password stays.
    let form = [
        ("csrf_token", csrf.as_str()),
        ("current_password", PASSWORD),
        ("password", "another long password"),
        ("password_confirm", "another long password"),
    ];
    assert_eq!(browser.post("account/security/password", &form).await.status, 422);
    assert_eq!(server.browser().login("ann@example.com", "another long password").await.status, 401);
}

async fn parallel_reset_answers_evaluate_at_most_the_limit(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let accounts = server.accounts();
    let actor = Actor::system("test");
    let question = accounts.add_security_question(&actor, "First pet?").await.unwrap();
    accounts.set_security_answer(&actor, user_id, question.id, "Rex").await.unwrap();
    let token = reset_token(&server, user_id).await;
    let path = format!("password/reset/{token}");
    let (browser, csrf) = armed(&server, &path).await;
    burst(40, |i| {
        let (browser, csrf, path) = (browser.clone(), csrf.clone(), path.clone());
        async move {
            let answer = format!("guess {i}");
            let form = [
                ("csrf_token", csrf.as_str()),
                ("security_answer", answer.as_str()),
                ("password", "a brand new password"),
                ("password_confirm", "a brand new password"),
            ];
            browser.post(&path, &form).await.status
        }
    })
    .await;
    let evaluated = count(&server, user_id, &["password.reset_wrong_answer"]).await;
    assert!(evaluated <= LIMIT, "{evaluated} of 40 parallel answers were checked; the limit is {LIMIT}");
}

async fn reset_token(server: &Server, user_id: i64) -> String {
    let mut conn = server.accounts().db().pool().acquire().await.unwrap();
    one_time::issue(&mut conn, server.state.db().now(), Purpose::PasswordReset, user_id, None, 3600).await.unwrap()
}

async fn a_reset_link_used_in_parallel_resets_once(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (user_id, _) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let token = reset_token(&server, user_id).await;
    let path = format!("password/reset/{token}");
    let (browser, csrf) = armed(&server, &path).await;
    let statuses = burst(20, |i| {
        let (browser, csrf, path) = (browser.clone(), csrf.clone(), path.clone());
        async move {
            let password = format!("new password number {i}");
            let form = [("csrf_token", csrf.as_str()), ("password", &password), ("password_confirm", &password)];
            browser.post(&path, &form).await.status
        }
    })
    .await;
    assert_eq!(statuses.iter().filter(|s| **s == 303).count(), 1, "{statuses:?}");
    assert_eq!(count(&server, user_id, &["password.reset_completed"]).await, 1);
}

async fn parallel_sign_ups_from_one_address_stop_at_the_limit(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (browser, csrf) = armed(&server, "register").await;
    burst(30, |i| {
        let (browser, csrf) = (browser.clone(), csrf.clone());
        async move {
            let email = format!("signup{i}@example.com");
            let form = [
                ("csrf_token", csrf.as_str()),
                ("first_name", "Sam"),
                ("last_name", "Script"),
                ("email", &email),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ];
            browser.post("register", &form).await.status
        }
    })
    .await;
    let created = server.accounts().list_clients(None, None).await.unwrap().len();
    assert!(created <= LIMIT, "{created} of 30 parallel sign-ups from one address went through; the limit is {LIMIT}");
}

async fn an_invite_accepted_in_parallel_joins_once(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    let (_, client_id) = server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let actor = Actor::system("test");
    let none = Permissions::none();
    let invite = server.accounts().create_invite(&actor, client_id, "bob@example.com", &none, None);
    let token = invite.await.unwrap().token;
    let path = format!("invite/{token}");
    let (browser, csrf) = armed(&server, &path).await;
    burst(20, |i| {
        let (browser, csrf, path) = (browser.clone(), csrf.clone(), path.clone());
        async move {
            let email = format!("bob{i}@example.com");
            let form = [
                ("csrf_token", csrf.as_str()),
                ("email", &email),
                ("first_name", "Bob"),
                ("last_name", "Ray"),
                ("password", PASSWORD),
            ];
            browser.post(&path, &form).await.status
        }
    })
    .await;
    let members = server.accounts().members_of_client(client_id).await.unwrap();
    assert_eq!(members.len(), 2, "the owner and exactly one invitee: {members:?}");
}

web_on_both_backends!(
    a_slot_given_back_late_does_not_erase_a_later_windows_guess,
    the_purge_removes_only_counters_whose_window_and_lock_passed,
    parallel_wrong_passwords_evaluate_at_most_the_limit,
    a_right_password_inside_a_burst_gets_no_extra_guesses,
    one_persons_browsers_sign_in_all_at_once,
    an_account_keeps_twenty_devices_while_new_ones_sign_in_at_once,
    admin_logins_in_parallel_evaluate_at_most_the_limit,
    parallel_second_factor_codes_evaluate_at_most_the_limit,
    a_backup_code_sent_in_parallel_signs_in_once,
    a_backup_code_confirmed_in_parallel_is_spent_once,
    the_last_two_admins_disabled_at_once_leave_one,
    parallel_current_password_confirmations_evaluate_at_most_the_limit,
    parallel_reset_answers_evaluate_at_most_the_limit,
    a_reset_link_used_in_parallel_resets_once,
    parallel_sign_ups_from_one_address_stop_at_the_limit,
    an_invite_accepted_in_parallel_joins_once,
);

/// A slot given back late — by an attempt refused busy, or by a success, after its window
/// ended — goes back to its own window, never to the next: it cannot erase a guess the next
/// window checked (each late give-back would otherwise buy one more guess per window).
async fn a_slot_given_back_late_does_not_erase_a_later_windows_guess(backend: Backend) {
    use gatehouse::auth::throttle::{Principal, Scope, Throttle};
    let Some(server) = Server::start(backend, "").await else { return };
    let db = server.state.db().clone();
    let policy = gatehouse::config::Lockout::default();
    let throttle = Throttle::new(db.clone(), &policy);
    let scope = Scope::account(Principal::User, "ann@example.com");
    let failures = || async {
        let counters = throttle.counters().await.unwrap();
        counters.iter().find(|c| c.scope == scope.key()).map_or(0, |c| c.failures)
    };
    // The hashing threads refusing to queue the check: what gives a slot back.
    let busy = || async { Err::<(), _>(gatehouse::Error::refused(gatehouse::error::Code::Busy, "busy")) };
    let early = throttle.begin(std::slice::from_ref(&scope)).await.unwrap().expect("a slot");
    db.clock().advance(std::time::Duration::from_secs(policy.window.as_secs() as u64 + 60));
    let later = throttle.begin(std::slice::from_ref(&scope)).await.unwrap().expect("a slot of the new window");
    assert!(later.failed().await.unwrap().is_empty());
    assert_eq!(failures().await, 1, "the new window counts its one checked guess");
    assert!(early.check(busy()).await.is_err(), "refused busy");
    assert_eq!(failures().await, 1, "the late give-back left the new window's guess counted");

    // Within one window a give-back still returns the slot.
    let again = throttle.begin(std::slice::from_ref(&scope)).await.unwrap().expect("a slot");
    assert_eq!(failures().await, 2);
    assert!(again.check(busy()).await.is_err(), "refused busy");
    assert_eq!(failures().await, 1);
}

/// The cron's purge removes a counter only once its window and its lock have passed (a ceiling
/// after its own 30 days), one row per statement — a sign-in holds its counters until it
/// commits, and a statement over many rows could hold one while waiting for another.
async fn the_purge_removes_only_counters_whose_window_and_lock_passed(backend: Backend) {
    use gatehouse::auth::throttle::{Principal, Scope, Throttle};
    use gatehouse::config::{Duration, Lockout};
    let Some(server) = Server::start(backend, "").await else { return };
    let db = server.state.db().clone();
    let policy = Lockout { lock: Duration::from_secs(3600), ..Lockout::default() };
    let throttle = Throttle::new(db.clone(), &policy);
    let fail = |scope: Scope| {
        let throttle = throttle.clone();
        async move {
            let attempt = throttle.begin(std::slice::from_ref(&scope)).await.unwrap().expect("a slot");
            attempt.failed().await.unwrap().len()
        }
    };
    let (passed, locked) =
        (Scope::account(Principal::User, "old@example.com"), Scope::account(Principal::User, "locked@example.com"));
    let ceiling = Scope::ceiling(Principal::User, "ann@example.com");
    fail(passed.clone()).await;
    fail(ceiling.clone()).await;
    let mut locks = 0;
    for _ in 0..policy.max_failures {
        locks += fail(locked.clone()).await;
    }
    assert_eq!(locks, 1, "the fifth failure locked the account for an hour");
    db.clock().advance(std::time::Duration::from_secs(policy.window.as_secs() as u64 + 60));
    let fresh = Scope::account(Principal::User, "fresh@example.com");
    fail(fresh.clone()).await;

    let kept = || async {
        let counters = throttle.counters().await.unwrap();
        counters.into_iter().map(|c| c.scope).collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(throttle.purge().await.unwrap(), 1, "only the counter whose window passed");
    let expected = [locked.key(), ceiling.key(), fresh.key()].into();
    assert_eq!(kept().await, expected, "the lock, the ceiling and the new window stay");

    db.clock().advance(std::time::Duration::from_secs(3600));
    assert_eq!(throttle.purge().await.unwrap(), 2, "the lock and the second window passed too");
    assert_eq!(kept().await, [ceiling.key()].into(), "a ceiling is kept for its 30 days");
}

/// Two nodes behind a load balancer, one PostgreSQL: the budget is the database's, so 200
/// wrong passwords split across both nodes are still at most the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_postgres_nodes_evaluate_at_most_the_limit_between_them() {
    let Some(a) = Server::start(Backend::Postgres, "").await else { return };
    let b = a.second_node().await;
    let (user_id, _) = a.client_with_owner("ann@example.com", "Ann Ltd").await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let own: std::net::IpAddr = "127.200.255.1".parse().unwrap();
    let on_a = Arc::new(a.browser_via(own, jar.clone()));
    let mut via_b = b.browser_via(own, jar);
    via_b.header("host", &a.addr.to_string());
    let on_b = Arc::new(via_b);
    let csrf = on_a.get("login").await.csrf();
    let statuses = burst(200, |i| {
        let (node, csrf) = (if i % 2 == 0 { on_a.clone() } else { on_b.clone() }, csrf.clone());
        async move {
            let form = [("csrf_token", csrf.as_str()), ("email", "ann@example.com"), ("password", "wrong password!")];
            node.post("login", &form).await.status
        }
    })
    .await;
    assert!(statuses.iter().all(|s| [401, 429].contains(s)), "{statuses:?}");
    let evaluated = count(&a, user_id, &["login.failed"]).await;
    eprintln!("two PostgreSQL nodes: {evaluated} of 200 parallel wrong passwords checked");
    assert!(evaluated <= LIMIT, "{evaluated} of 200 wrong passwords on two nodes were checked; the limit is {LIMIT}");
}
