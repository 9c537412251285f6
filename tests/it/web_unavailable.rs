//! A database that cannot answer: the visitor is told the site is unavailable (503, with
//! `Retry-After`), never that gatehouse broke (500); once that is known, requests are answered
//! at once instead of each waiting for the pool's timeout; and the liveness probe never asks the
//! database at all.

use std::time::{Duration, Instant};

use crate::support::web::{Backend, PASSWORD, Server};

/// Caps SQLite at its current size on every pooled connection: the next write finds the disk full.
async fn fill_the_disk(server: &Server) {
    let db = server.state.db();
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(db.pool().acquire().await.unwrap());
    }
    for conn in &mut held {
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&mut **conn).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PRAGMA max_page_count = {pages}")))
            .execute(&mut **conn)
            .await
            .unwrap();
    }
    // Then use up the room the file still has, in the audit log every login writes to.
    let conn = &mut held[0];
    for size in [65536, 4096, 512, 64, 1] {
        let fill = format!(
            "INSERT INTO audit_log (at, actor_type, action, target_type, details) VALUES (0, 'system', 'fill', 'x', hex(zeroblob({size})))"
        );
        while sqlx::raw_sql(sqlx::AssertSqlSafe(fill.clone())).execute(&mut **conn).await.is_ok() {}
    }
}

#[tokio::test]
async fn a_login_on_a_full_disk_is_503_not_500() {
    let server = Server::start(Backend::Sqlite, "").await.unwrap();
    server.client_with_owner("ann@example.com", "Ann Ltd").await;
    fill_the_disk(&server).await;
    let login = server.browser().login("ann@example.com", PASSWORD).await;
    assert_eq!(login.status, 503, "{}", login.body);
    assert_eq!(login.headers["retry-after"], "5");
    assert!(login.body.contains("temporarily unavailable"), "{}", login.body);
}

#[tokio::test]
async fn once_the_database_is_down_requests_fail_fast_and_liveness_stays_up() {
    let server = Server::start(Backend::Sqlite, "").await.unwrap();
    server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let b = server.browser();
    assert_eq!(b.login("ann@example.com", PASSWORD).await.status, 303);
    server.state.db().pool().close().await;

    let page = b.get("clientarea").await;
    assert_eq!(page.status, 503, "{}", page.body);
    // Known to be down now: a login, a page, the API are answered at once.
    let started = Instant::now();
    for path in ["login", "clientarea", "api/v1/users", "admin/"] {
        let answer = b.get(path).await;
        assert_eq!(answer.status, 503, "{path}: {}", answer.body);
    }
    assert!(started.elapsed() < Duration::from_secs(5), "no request waited for the pool: {:?}", started.elapsed());
    // The liveness probe, with the session cookie the browser holds, never asks the database.
    let live = b.get("healthz").await;
    assert_eq!((live.status, live.body.as_str()), (200, "ok\n"));
    assert_eq!(b.get("readyz").await.status, 503, "readiness does ask it");
}
