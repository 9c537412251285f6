//! `cargo bench --bench sessions_gc`: the `sessions.gc` check and the collection itself on a
//! session table of 1,000,000 rows (SQLite in WAL mode, release build).
//!
//! 1. The `sessions.gc` check (count and oldest age of the expired sessions) as
//!    `doctor --only sessions.gc` runs it (with database.connectivity), 5 times: median and
//!    worst wall time. Budget: < 300 ms.
//! 2. Collecting the 900,000 expired rows in batches (`Sessions::collect_all`, as cron and the
//!    doctor's fix do) while another task starts a session every millisecond, as logins do:
//!    the slowest session write during collection. Budget: < 100 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gatehouse::auth::sessions::Sessions;
use gatehouse::doctor::{checks, context::Context, diagnose, runner::RunOptions};
use gatehouse::store::Db;

const ROWS: i64 = 1_000_000;
const LIVE: i64 = 100_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatehouse.yaml");
    std::fs::write(&config, "system_url: \"http://127.0.0.1:8080/\"\n").unwrap();
    let loaded = gatehouse::config::load(Some(&config), Vec::<(String, String)>::new()).unwrap();
    let db = Db::connect(&loaded.config.database_url, "bench").await.unwrap();
    db.migrate().await.unwrap();

    let filled = Instant::now();
    let now = db.now();
    // The newest LIVE rows were seen a minute ago; the rest two days ago (idle and absolute
    // timeouts both passed).
    sqlx::query(
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $1) \
         INSERT INTO sessions (key, user_id, created_at, last_seen_at, data) \
         SELECT printf('%064d', x), NULL, CASE WHEN x > $1 - $2 THEN $3 - 60 ELSE $3 - 172800 END, \
                CASE WHEN x > $1 - $2 THEN $3 - 60 ELSE $3 - 172800 END, '{\"csrf_token\":\"\",\"ip\":\"\"}' FROM n",
    )
    .bind(ROWS)
    .bind(LIVE)
    .bind(now)
    .execute(db.pool())
    .await
    .unwrap();
    println!(
        "sessions.gc benchmark — SQLite (WAL), {ROWS} session rows ({} expired), filled in {:.1} s",
        ROWS - LIVE,
        filled.elapsed().as_secs_f64()
    );

    // As `doctor --only sessions.gc` runs it: with its prerequisite.
    let gc: Vec<_> = checks::builtin()
        .into_iter()
        .filter(|c| ["sessions.gc", "database.connectivity"].contains(&c.meta().id))
        .collect();
    let mut times = Vec::new();
    for _ in 0..5 {
        let ctx = Arc::new(Context::new(loaded.clone()));
        let started = Instant::now();
        let report = diagnose(&gc, ctx.clone(), &RunOptions::with_timeout(Duration::from_secs(30))).await;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let result = report.results.iter().find(|r| r.id == "sessions.gc").unwrap();
        assert_eq!(result.evidence["expired_sessions"], ROWS - LIVE, "{}", result.message);
        ctx.close().await;
    }
    times.sort_by(f64::total_cmp);
    println!("sessions.gc check:                          median {:.0} ms, worst {:.0} ms", times[2], times[4]);

    let sessions = Sessions::from_config(&loaded.config, &db);
    let logins = {
        let sessions = sessions.clone();
        tokio::spawn(async move {
            let (mut slowest, mut n) = (Duration::ZERO, 0);
            while !STOP.load(Ordering::Relaxed) {
                let started = Instant::now();
                sessions.start("192.0.2.1").await.unwrap();
                slowest = slowest.max(started.elapsed());
                n += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            (slowest, n)
        })
    };
    let started = Instant::now();
    let removed = sessions.collect_all(gatehouse::cron::GC_BATCH).await.unwrap();
    let took = started.elapsed();
    STOP.store(true, Ordering::Relaxed);
    let (slowest, writes) = logins.await.unwrap();
    assert_eq!(removed as i64, ROWS - LIVE);
    println!(
        "collect {removed} expired sessions:         {:.1} s; slowest of {writes} concurrent session writes {:.1} ms",
        took.as_secs_f64(),
        slowest.as_secs_f64() * 1000.0
    );
}

/// Tells the session-writing task that collection is over.
static STOP: AtomicBool = AtomicBool::new(false);
