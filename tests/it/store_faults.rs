//! The store after a full disk. SQLite reports SQLITE_FULL when a write needs a page it cannot
//! have; `PRAGMA max_page_count` set to the current size on every pooled connection makes that
//! happen on demand, and setting it back is the operator freeing space.

use gatehouse::store::Db;

use crate::support::Harness;

/// SQLite's pool size (see `Db::connect`): every connection gets the limit.
const POOL: usize = 8;

/// Caps the database at its current size (`full`), or lifts the cap, on every pooled connection.
async fn disk_full(db: &Db, full: bool) {
    let mut held = Vec::new();
    for _ in 0..POOL {
        held.push(db.pool().acquire().await.unwrap());
    }
    for conn in &mut held {
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&mut **conn).await.unwrap();
        let cap = if full { pages } else { 1_073_741_823 };
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PRAGMA max_page_count = {cap}")))
            .execute(&mut **conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn writes_recover_once_a_full_disk_has_space_again() {
    let h = Harness::sqlite().await;
    let db = h.accounts.db();
    disk_full(db, true).await;
    let mut full = 0;
    for i in 0..60 {
        if let Err(e) =
            h.accounts.ban_domain(&h.actor, &format!("spam-{i}.{}.{}.example", "a".repeat(60), "b".repeat(60))).await
        {
            assert!(e.to_string().contains("full"), "the disk-full error is reported as such: {e}");
            full += 1;
        }
    }
    assert!(full > 0, "the capped database refused writes");

    disk_full(db, false).await;
    // Every write succeeds again, on whichever pooled connection it lands: none is left
    // inside a transaction SQLite already rolled back.
    for i in 0..40 {
        h.accounts
            .ban_domain(&h.actor, &format!("after-{i}.example"))
            .await
            .unwrap_or_else(|e| panic!("write {i}: {e}"));
    }
}

/// SQLite is built without the global locks `.cargo/config.toml` names (`LIBSQLITE3_FLAGS`): no
/// allocation statistics, and a page cache per connection instead of one shared by all eight.
/// Dropping that setting would cost page views 5 % (README, "Performance of the service").
#[tokio::test]
async fn sqlite_is_built_without_its_global_allocation_and_cache_locks() {
    let h = Harness::sqlite().await;
    let options: Vec<String> =
        sqlx::query_scalar("PRAGMA compile_options").fetch_all(h.accounts.db().pool()).await.unwrap();
    assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
    assert!(!options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"), "{options:?}");
}
