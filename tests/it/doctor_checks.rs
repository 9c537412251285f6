//! Built-in checks against real faults: build the broken deployment, see the check fail with
//! evidence, apply the fix, see it pass — and no false alarm on a healthy deployment.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gatehouse::accounts::{Accounts, ClientUpdate, NewClient, OwnerSpec};
use gatehouse::config::{ConfigSource, load_from_str};
use gatehouse::doctor::runner::RunOptions;
use gatehouse::doctor::{CheckResult, Context, Selection, Status, checks, diagnose, select};
use gatehouse::store::Db;
use serde_json::{Map, Value, json};

/// A deployment whose config file lives in `dir`.
struct Deployment {
    dir: tempfile::TempDir,
}

impl Deployment {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn context(&self, yaml: &str, thresholds: &[(&str, Value)]) -> Arc<Context> {
        let file = self.path().join("gatehouse.yaml");
        std::fs::write(&file, yaml).unwrap();
        let loaded = load_from_str(Some(yaml), ConfigSource::File(file), Vec::new()).unwrap();
        let mut map: HashMap<String, Map<String, Value>> = HashMap::new();
        for (id, value) in thresholds {
            map.insert(id.to_string(), value.as_object().unwrap().clone());
        }
        Arc::new(Context::new(loaded).with_thresholds(map))
    }

    /// Runs the named checks (and their prerequisites).
    async fn run(&self, yaml: &str, only: &[&str], thresholds: &[(&str, Value)]) -> Vec<CheckResult> {
        let ctx = self.context(yaml, thresholds);
        let all = checks::builtin();
        let selected =
            select(&all, &Selection { only: only.iter().map(|s| s.to_string()).collect(), ..Default::default() })
                .unwrap();
        let report = diagnose(&selected, ctx.clone(), &RunOptions::with_timeout(Duration::from_secs(5))).await;
        ctx.close().await;
        report.results
    }

    async fn check(&self, yaml: &str, id: &str) -> CheckResult {
        self.run(yaml, &[id], &[]).await.into_iter().find(|r| r.id == id).unwrap()
    }

    /// The migrated SQLite database the default config of this deployment points at.
    async fn accounts(&self) -> Accounts {
        let url = format!("sqlite://{}/gatehouse-data/gatehouse.db", self.path().display()).parse().unwrap();
        let db = Db::connect(&url, "test").await.unwrap();
        db.migrate().await.unwrap();
        Accounts::new(db, crate::support::policy())
    }
}

const DEFAULT: &str = "listen: \"127.0.0.1:8080\"\n";

#[tokio::test]
async fn database_connectivity_from_fresh_to_migrated() {
    let d = Deployment::new();
    let results = d.run(DEFAULT, &["accounts.integrity"], &[]).await;
    let db = &results[0];
    assert_eq!((db.id.as_str(), db.status), ("database.connectivity", Status::Warn), "{}", db.message);
    assert!(db.message.contains("has not been created yet"));
    assert!(db.fix.available);
    assert_eq!(results[1].status, Status::Skipped, "{}", results[1].message);
    assert!(!d.path().join("gatehouse-data/gatehouse.db").exists(), "looking never creates the database");

    // An existing but never migrated database: pending migrations.
    let url = format!("sqlite://{}/gatehouse-data/gatehouse.db", d.path().display()).parse().unwrap();
    Db::connect(&url, "test").await.unwrap().close().await;
    let pending = d.check(DEFAULT, "database.connectivity").await;
    assert_eq!(pending.status, Status::Warn);
    assert!(pending.message.contains("not applied"), "{}", pending.message);
    assert_eq!(pending.evidence["migrations_pending"], json!(crate::support::migration_versions()));

    d.accounts().await.db().close().await;
    let healthy = d.check(DEFAULT, "database.connectivity").await;
    assert_eq!(healthy.status, Status::Pass, "{}", healthy.message);
    assert_eq!(healthy.evidence["journal_mode"], "wal");
    assert!(healthy.evidence["busy_timeout_ms"].as_i64().unwrap() > 0);
    // Connecting and querying are reported apart: the latency is the median of round trips on
    // an open connection, so a slow connect cannot pass for a slow database.
    assert!(healthy.evidence["connect_ms"].as_f64().is_some(), "{:?}", healthy.evidence);
    assert!(healthy.evidence["latency_ms"].as_f64().unwrap() < 100.0, "{:?}", healthy.evidence);
    // A burst of writes must not leave the WAL file at its largest: checkpoints truncate it.
    assert_eq!(healthy.evidence["wal_size_limit_bytes"], 64 * 1024 * 1024);
    assert!(healthy.evidence["server_version"].as_str().unwrap().starts_with("SQLite 3."));
    assert_eq!(healthy.remediation, "");
}

#[tokio::test]
async fn an_unreachable_database_fails_and_blocks_its_dependants() {
    let d = Deployment::new();
    let port = crate::support::closed_port();
    let yaml = format!("listen: \"127.0.0.1:8080\"\ndatabase_url: \"postgres://app:secret@127.0.0.1:{port}/gh\"\n");
    let results = d.run(&yaml, &["accounts.integrity", "accounts.password_hashes"], &[]).await;
    assert_eq!(results[0].status, Status::Fail);
    assert!(results[0].message.contains("refused"), "{}", results[0].message);
    assert!(!results[0].message.contains("secret"));
    assert_eq!(results[0].evidence["configured_in"], format!("{}:2:15", d.path().join("gatehouse.yaml").display()));
    assert!(!results[0].remediation.is_empty());
    for dependant in &results[1..] {
        assert_eq!(dependant.status, Status::Blocked);
        assert!(dependant.message.contains("database.connectivity"));
    }
}

/// With the database down, no check wanders off with an `error` and unrelated advice: each
/// one that reads the database is blocked by database.connectivity, which names the cause.
#[tokio::test]
async fn with_the_database_down_every_check_that_needs_it_is_blocked_not_in_error() {
    let d = Deployment::new();
    let port = crate::support::closed_port();
    let yaml = format!(
        "system_url: \"http://127.0.0.1:1/\"\ndatabase_url: \"postgres://app:secret@127.0.0.1:{port}/gh\"\n\
         license: {{ key: \"GH-ABCDE-FGHJK-MNPQR-STVWX-1234\", server: \"http://127.0.0.1:1/\" }}\n"
    );
    let ids: Vec<&str> = checks::builtin().iter().map(|c| c.meta().id).collect();
    let results = d.run(&yaml, &ids, &[]).await;
    let in_error: Vec<String> =
        results.iter().filter(|r| r.status == Status::Error).map(|r| format!("{}: {}", r.id, r.message)).collect();
    assert!(in_error.is_empty(), "checks in error instead of blocked: {in_error:#?}");
    let blocked: Vec<&str> = results.iter().filter(|r| r.status == Status::Blocked).map(|r| r.id.as_str()).collect();
    for id in
        ["sessions.lifetime", "sessions.cookie", "proxy.cloudflare", "time.timezone", "time.clock", "license.validity"]
    {
        assert!(blocked.contains(&id), "{id} is not blocked: {blocked:?}");
    }
}

#[tokio::test]
async fn database_connectivity_on_postgres() {
    let Some(schema) = crate::support::PgSchema::create().await else {
        return;
    };
    let d = Deployment::new();
    let yaml = format!("database_url: \"{}\"\n", schema.url);
    let fresh = d.check(&yaml, "database.connectivity").await;
    assert_eq!(fresh.status, Status::Warn, "an empty schema has pending migrations: {}", fresh.message);
    let db = Db::connect(&schema.url.parse().unwrap(), "test").await.unwrap();
    db.migrate().await.unwrap();
    db.close().await;
    let healthy = d.check(&yaml, "database.connectivity").await;
    assert_eq!(healthy.status, Status::Pass, "{}", healthy.message);
    assert!(healthy.evidence["server_version"].as_str().unwrap().starts_with("PostgreSQL"));
    assert_eq!(healthy.evidence["backend"], "postgres");
    // To this machine with no sslmode written, gatehouse goes without TLS (the server here
    // accepts that), and there is nothing to say.
    assert_eq!(healthy.evidence["tls"], false, "{}", healthy.message);
    assert!(!healthy.message.contains("sslmode"), "{}", healthy.message);
    // And through the server's Unix socket, where this machine has one that takes the URL's
    // user (Debian's `peer` authentication takes only the database user's namesake).
    let socket = socket_that_accepts(&schema.url).await;
    assert_eq!(healthy.evidence["unix_socket"].as_str(), socket.as_deref(), "{}", healthy.message);

    // An sslmode the operator wrote is kept; TLS to this machine is then said, never warned about.
    let with = |mode: &str| {
        let sep = if schema.url.contains('?') { '&' } else { '?' };
        format!("database_url: \"{}{sep}sslmode={mode}\"\n", schema.url)
    };
    let prefer = d.check(&with("prefer"), "database.connectivity").await;
    assert_eq!(prefer.status, Status::Pass, "{}", prefer.message);
    let tls = prefer.evidence["tls_to_this_machine"].as_bool().expect("observed");
    assert_eq!(prefer.message.contains("no `sslmode`"), tls, "{}", prefer.message);
    // A transport the operator wrote is theirs: TCP, as written.
    assert_eq!(prefer.evidence["unix_socket"], Value::Null);
    let plain = d.check(&with("disable"), "database.connectivity").await;
    assert_eq!(plain.evidence["tls"], false);
    assert_eq!(plain.evidence["unix_socket"], Value::Null);
    assert!(!plain.message.contains("sslmode"), "{}", plain.message);
}

/// The Unix socket of the PostgreSQL server `url` names, when gatehouse may use it: in a usual
/// directory that not every user may write to, its owner's, and reaching that same server with
/// `url`'s credentials.
async fn socket_that_accepts(url: &str) -> Option<String> {
    use sqlx::Connection;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use std::str::FromStr;
    let port = sqlx::postgres::PgConnectOptions::from_str(url).unwrap().get_port();
    let (dir, socket) = ["/run/postgresql", "/var/run/postgresql", "/tmp"].into_iter().find_map(|dir| {
        let socket = format!("{dir}/.s.PGSQL.{port}");
        let (d, s) = (std::fs::metadata(dir).ok()?, std::fs::symlink_metadata(&socket).ok()?);
        (s.file_type().is_socket() && d.mode() & 0o002 == 0 && s.uid() == d.uid()).then_some((dir, socket))
    })?;
    let started = "SELECT pg_postmaster_start_time()::text";
    let mut tcp = sqlx::PgConnection::connect(url).await.unwrap();
    let mut through = sqlx::PgConnection::connect(&format!("{url}&host={dir}")).await.ok()?;
    let tcp_started: String = sqlx::query_scalar(started).fetch_one(&mut tcp).await.unwrap();
    let socket_started: String = sqlx::query_scalar(started).fetch_one(&mut through).await.unwrap();
    (tcp_started == socket_started).then_some(socket)
}

#[tokio::test]
async fn disk_space_below_the_minimum_fails_with_the_filesystem() {
    let d = Deployment::new();
    let yaml = "sessions:\n  store: files\n";
    let low = d.run(yaml, &["disk.space"], &[("disk.space", json!({"min_free_bytes": 1e18}))]).await;
    assert_eq!(low[0].status, Status::Fail, "{}", low[0].message);
    let fs = &low[0].evidence["filesystems"][0];
    assert!(fs["free_bytes"].as_u64().unwrap() > 0);
    let used_for: Vec<&str> = fs["used_for"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(used_for.contains(&"sessions.dir") && used_for.contains(&"data_dir"), "{used_for:?}");
    let ok = d
        .run(
            yaml,
            &["disk.space"],
            &[("disk.space", json!({"min_free_bytes": 1, "min_free_percent": 0, "min_free_inodes_percent": 0}))],
        )
        .await;
    assert_eq!(ok[0].status, Status::Pass, "{}", ok[0].message);
}

#[tokio::test]
async fn configured_time_zone_passes_and_reports_the_process_zone() {
    let d = Deployment::new();
    let r = d.check("timezone: Europe/London\n", "time.timezone").await;
    assert_eq!(r.status, Status::Pass, "{}", r.message);
    assert_eq!(r.evidence["configured"], "Europe/London");
    assert!(r.evidence.contains_key("process_zone_source"));
    let unset = d.check(DEFAULT, "time.timezone").await;
    assert_ne!(unset.status, Status::Fail);
    assert_eq!(unset.evidence["configured"], "");
}

#[tokio::test]
async fn system_url_problems_are_explained() {
    let d = Deployment::new();
    let cases = [
        ("system_url: \"\"\n", Status::Fail, "not set"),
        ("system_url: \"https://billing.example.com/portal\"\n", Status::Warn, "trailing slash"),
        ("system_url: \"http://billing.example.com/\"\n", Status::Warn, "not Secure"),
        ("system_url: \"https://billing.example.com/portal/\"\n", Status::Pass, "derive from"),
        ("system_url: \"http://localhost:8080/\"\n", Status::Pass, "derive from"),
    ];
    for (yaml, status, says) in cases {
        let r = d.check(yaml, "system_url.config").await;
        assert_eq!(r.status, status, "{yaml}: {}", r.message);
        assert!(r.message.contains(says), "{yaml}: {}", r.message);
    }
    let slash = d.check(cases[1].0, "system_url.config").await;
    assert!(slash.fix.available && slash.fix.description.contains("https://billing.example.com/portal/"));
    assert_eq!(slash.evidence["configured_in"], format!("{}:1:13", d.path().join("gatehouse.yaml").display()));
}

#[tokio::test]
async fn trusted_proxy_mistakes_are_found() {
    // (An entry that is no address at all is refused when the file is read: tests/cli.rs.)
    let d = Deployment::new();
    let cases = [
        ("trusted_proxies: { ranges: [\"0.0.0.0/0\"] }\n", Status::Fail, "trusts every address"),
        ("trusted_proxies: { ranges: [\"8.0.0.0/8\"] }\n", Status::Warn, "very broad public"),
        (
            "trusted_proxies: { header: CF-Connecting-IP, ranges: [\"10.0.0.0/8\"] }\n",
            Status::Warn,
            "cloudflare is false",
        ),
        ("trusted_proxies: { ranges: [\"10.0.0.0/8\", \"192.0.2.10\"] }\n", Status::Pass, "2 range(s)"),
        (DEFAULT, Status::Pass, "no proxies are trusted"),
    ];
    for (yaml, status, says) in cases {
        let r = d.check(yaml, "proxy.trusted").await;
        assert_eq!(r.status, status, "{yaml}: {}", r.message);
        assert!(r.message.contains(says), "{yaml}: {}", r.message);
    }
}

#[tokio::test]
async fn accounts_integrity_finds_broken_data_and_clears_when_fixed() {
    let d = Deployment::new();
    let accounts = d.accounts().await;
    let actor = gatehouse::accounts::Actor::system("test");
    let healthy = d.check(DEFAULT, "accounts.integrity").await;
    assert_eq!(healthy.status, Status::Pass, "{}", healthy.message);

    // An owner without a password, who therefore cannot sign in.
    let fields = ClientUpdate {
        email: Some("ann@example.com".into()),
        first_name: Some("Ann".into()),
        last_name: Some("Lee".into()),
        ..Default::default()
    };
    let client = accounts
        .create_client(&actor, NewClient { fields, owner: OwnerSpec::NewUser { password: None } })
        .await
        .unwrap();
    let r = d.check(DEFAULT, "accounts.integrity").await;
    assert_eq!(r.status, Status::Warn, "{}", r.message);
    assert_eq!(r.evidence["clients_owner_without_password"], json!([client.id]));
    assert!(r.message.contains("cannot sign in") && r.message.contains("reset-password"), "{}", r.message);
    accounts
        .set_password(&actor, (gatehouse::accounts::Principal::User, client.owner_user_id), "a long enough password")
        .await
        .unwrap();
    assert_eq!(d.check(DEFAULT, "accounts.integrity").await.status, Status::Pass);

    // A user whose domain was banned after they signed up; one under a subdomain of it; and
    // one whose domain only ends in the same letters, who is not.
    let sub = accounts.create_user(&actor, new_user("bo@mail.example.com")).await.unwrap().id;
    accounts.create_user(&actor, new_user("cy@notexample.com")).await.unwrap();
    accounts.ban_domain(&actor, "example.com").await.unwrap();
    let r = d.check(DEFAULT, "accounts.integrity").await;
    assert_eq!(r.status, Status::Warn);
    let mut banned = vec![client.owner_user_id, sub];
    banned.sort();
    assert_eq!(r.evidence["users_in_banned_domains"], json!(banned));
    // With subdomains allowed, only the domain itself is banned.
    let r = d.check("security: { banned_email_subdomains: false }\n", "accounts.integrity").await;
    assert_eq!(r.evidence["users_in_banned_domains"], json!([client.owner_user_id]));
    accounts.unban_domain(&actor, "example.com").await.unwrap();

    // A permission key written by hand that this version does not know.
    sqlx::query("UPDATE memberships SET permissions = 'invoices,superpowers'")
        .execute(accounts.db().pool())
        .await
        .unwrap();
    let r = d.check(DEFAULT, "accounts.integrity").await;
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.evidence["unknown_permission_keys"], json!({"superpowers": 1}));
    sqlx::query("UPDATE memberships SET permissions = 'invoices'").execute(accounts.db().pool()).await.unwrap();

    // An invite left to expire.
    let invite = accounts.create_invite(&actor, client.id, "bob@example.com", &Default::default(), None).await.unwrap();
    sqlx::query("UPDATE invites SET expires_at = 1").execute(accounts.db().pool()).await.unwrap();
    let r = d.check(DEFAULT, "accounts.integrity").await;
    assert_eq!((r.status, r.evidence["stale_invites"].as_i64()), (Status::Warn, Some(1)));
    accounts.cancel_invite(&actor, invite.invite.id).await.unwrap();
    assert_eq!(d.check(DEFAULT, "accounts.integrity").await.status, Status::Pass);
}

/// A hand edit of one client's owner or one membership, as an operator's SQL shell makes it.
async fn edit(c: &mut sqlx::AnyConnection, sql: &'static str, a: i64, b: i64) {
    sqlx::query(sql).bind(a).bind(b).execute(c).await.unwrap();
}

const SET_OWNER: &str = "UPDATE clients SET owner_user_id = $2 WHERE id = $1";
const REMOVE_MEMBER: &str = "DELETE FROM memberships WHERE client_id = $1 AND user_id = $2";
const ADD_MEMBER: &str = "INSERT INTO memberships (client_id, user_id, permissions, created_at) VALUES ($1, $2, '', 0)";

/// A client whose owner is no longer a member: gatehouse never writes one (a deferred foreign
/// key refuses the commit), so it comes from a hand edit that went round the key — SQLite's
/// shell with foreign keys off, or a PostgreSQL schema whose constraint was dropped. The check
/// finds it from the table the triggers keep, without reading every client; with a trigger
/// gone it reads every client, still finds it, and says why it had to.
async fn owner_not_member_is_found(d: &Deployment, yaml: &str, db: &Db, break_the_key: &str, drop_trigger: &str) {
    let accounts = Accounts::new(db.clone(), crate::support::policy());
    let actor = gatehouse::accounts::Actor::system("test");
    let fields = ClientUpdate {
        email: Some("ann@example.com".into()),
        first_name: Some("Ann".into()),
        last_name: Some("Lee".into()),
        ..Default::default()
    };
    let new =
        |fields| NewClient { fields, owner: OwnerSpec::NewUser { password: Some("a long enough password".into()) } };
    let client = accounts.create_client(&actor, new(fields.clone())).await.unwrap();
    let other = accounts
        .create_client(&actor, new(ClientUpdate { email: Some("bo@example.com".into()), ..fields }))
        .await
        .unwrap();
    let healthy = d.check(yaml, "accounts.integrity").await;
    assert_eq!(healthy.status, Status::Pass, "{}", healthy.message);
    assert_eq!(healthy.evidence["owner_triggers_missing"], false);

    // One connection, so a per-connection setting (SQLite's foreign_keys) holds for the edit.
    let mut c = db.pool().acquire().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(break_the_key.to_string())).execute(&mut *c).await.unwrap();
    edit(&mut c, REMOVE_MEMBER, client.id, client.owner_user_id).await;
    let r = d.check(yaml, "accounts.integrity").await;
    assert_eq!(r.status, Status::Fail, "{}", r.message);
    assert_eq!(r.evidence["clients_owner_not_member"], json!([client.id]));
    assert!(r.message.contains("1 client(s) whose owner is not a member"), "{}", r.message);

    // The other client handed to that same user, who is not one of its members: it breaks
    // the rule too, and the first is still wrong.
    edit(&mut c, SET_OWNER, other.id, client.owner_user_id).await;
    let r = d.check(yaml, "accounts.integrity").await;
    let mut both = vec![client.id, other.id];
    both.sort();
    assert_eq!(r.evidence["clients_owner_not_member"], json!(both), "{}", r.message);

    // Without a trigger the list could fall behind: every client is read instead.
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop_trigger.to_string())).execute(&mut *c).await.unwrap();
    let r = d.check(yaml, "accounts.integrity").await;
    assert_eq!(r.status, Status::Fail, "{}", r.message);
    assert_eq!(r.evidence["clients_owner_not_member"], json!(both));
    assert_eq!(r.evidence["owner_triggers_missing"], true);
    assert!(r.message.contains("triggers") && r.message.contains("every client was read"), "{}", r.message);

    // Put right by hand, the check passes again (the remaining triggers keep up).
    edit(&mut c, SET_OWNER, other.id, other.owner_user_id).await;
    edit(&mut c, ADD_MEMBER, client.id, client.owner_user_id).await;
    let r = d.check(yaml, "accounts.integrity").await;
    assert_eq!(r.evidence["clients_owner_not_member"], json!([]), "{}", r.message);
    assert_eq!(r.status, Status::Warn, "only the missing trigger is left: {}", r.message);
}

#[tokio::test]
async fn an_owner_who_is_not_a_member_is_found_on_sqlite() {
    let d = Deployment::new();
    let db = d.accounts().await.db().clone();
    owner_not_member_is_found(
        &d,
        DEFAULT,
        &db,
        "PRAGMA foreign_keys = OFF",
        "DROP TRIGGER owner_not_member_membership_added",
    )
    .await;
}

#[tokio::test]
async fn an_owner_who_is_not_a_member_is_found_on_postgres() {
    let Some(schema) = crate::support::PgSchema::create().await else {
        return;
    };
    let d = Deployment::new();
    let db = Db::connect(&schema.url.parse().unwrap(), "test").await.unwrap();
    db.migrate().await.unwrap();
    let yaml = format!("database_url: \"{}\"\n", schema.url);
    owner_not_member_is_found(
        &d,
        &yaml,
        &db,
        "ALTER TABLE clients DROP CONSTRAINT clients_owner_is_member",
        "ALTER TABLE memberships ENABLE REPLICA TRIGGER owner_not_member_memberships",
    )
    .await;
    // TRUNCATE fires no row trigger; its own trigger judges every client again.
    sqlx::raw_sql("ALTER TABLE memberships ENABLE TRIGGER owner_not_member_memberships; TRUNCATE memberships")
        .execute(db.pool())
        .await
        .unwrap();
    let r = d.check(&yaml, "accounts.integrity").await;
    assert_eq!(r.evidence["owner_triggers_missing"], false, "{}", r.message);
    let clients: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM clients ORDER BY id").fetch_all(db.pool()).await.unwrap();
    assert_eq!(r.evidence["clients_owner_not_member"], json!(clients));

    // Two transactions on one client, neither seeing the other's change when it starts: one
    // makes Bo the owner (a member then), the other removes Bo's membership. Judged apart,
    // the removal would see the old owner (a member) and list nothing, leaving Bo an owner who
    // is not a member, unlisted. Each judges the client under its row lock, so the second
    // judges after the first committed.
    let (client, bo) = (clients[0], 999_999_i64);
    let owner: i64 = sqlx::query_scalar("SELECT owner_user_id FROM clients WHERE id = $1")
        .bind(client)
        .fetch_one(db.pool())
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (id, email, email_norm, first_name, last_name, created_at, updated_at) \
             VALUES ({bo}, 'bo@example.net', 'bo@example.net', 'Bo', 'Ray', 0, 0); \
         INSERT INTO memberships (client_id, user_id, permissions, created_at) \
             VALUES ({client}, {owner}, '', 0), ({client}, {bo}, '', 0)"
    )))
    .execute(db.pool())
    .await
    .unwrap();
    let mut owner_change = db.pool().begin().await.unwrap();
    sqlx::query("UPDATE clients SET owner_user_id = $1 WHERE id = $2")
        .bind(bo)
        .bind(client)
        .execute(&mut *owner_change)
        .await
        .unwrap();
    // The removal on a connection of its own, whose server process is known, so the test can
    // see it wait on a lock rather than guess how long that takes.
    let mut removal = db.pool().acquire().await.unwrap();
    let removal_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *removal).await.unwrap();
    let leaving = tokio::spawn(async move {
        sqlx::query("DELETE FROM memberships WHERE client_id = $1 AND user_id = $2")
            .bind(client)
            .bind(bo)
            .execute(&mut *removal)
            .await
            .unwrap();
    });
    // Without the row lock the removal finishes at once; with it, it waits for the owner change
    // (a minute is only the bound for a removal stuck on something else).
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if leaving.is_finished() {
                break false;
            }
            let lock_wait: Option<String> =
                sqlx::query_scalar("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1")
                    .bind(removal_pid)
                    .fetch_one(db.pool())
                    .await
                    .unwrap();
            if lock_wait.as_deref() == Some("Lock") {
                break true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or(false);
    // Both transactions end before anything is asserted: one left open on a failure would hold
    // its locks, and the schema's clean-up would wait on them for ever.
    owner_change.commit().await.unwrap();
    leaving.await.unwrap();
    assert!(waited, "the membership removal waits for the client's row lock");
    let listed: Vec<i64> =
        sqlx::query_scalar("SELECT client_id FROM owner_not_member").fetch_all(db.pool()).await.unwrap();
    assert!(listed.contains(&client), "Bo owns the client without being a member: {listed:?}");
    db.close().await;
}

#[tokio::test]
async fn legacy_and_unknown_password_hashes_are_reported() {
    let d = Deployment::new();
    let accounts = d.accounts().await;
    let actor = gatehouse::accounts::Actor::system("test");
    let new = |email: &str| gatehouse::accounts::NewUser {
        email: email.into(),
        first_name: "A".into(),
        last_name: "B".into(),
        password: Some("a long enough password".into()),
        ..Default::default()
    };
    let modern = accounts.create_user(&actor, new("modern@example.com")).await.unwrap();
    assert_eq!(d.check(DEFAULT, "accounts.password_hashes").await.status, Status::Pass);
    let legacy = accounts.create_user(&actor, new("legacy@example.com")).await.unwrap();
    sqlx::query(
        "UPDATE users SET password_hash = '$2y$10$abcdefghijklmnopqrstuuN0aWx0ZXJhbGx5IG5vdCBhIGhhc2g' WHERE id = $1",
    )
    .bind(legacy.id)
    .execute(accounts.db().pool())
    .await
    .unwrap();
    let r = d.check(DEFAULT, "accounts.password_hashes").await;
    assert_eq!(r.status, Status::Warn, "{}", r.message);
    assert_eq!(r.evidence["legacy_users"], json!([legacy.id]));
    assert_eq!(r.evidence["by_kind"], json!({"argon2id": 1, "bcrypt": 1}));
    sqlx::query("UPDATE users SET password_hash = 'hunter2' WHERE id = $1")
        .bind(modern.id)
        .execute(accounts.db().pool())
        .await
        .unwrap();
    let r = d.check(DEFAULT, "accounts.password_hashes").await;
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.evidence["unknown_format_users"], json!([modern.id]));
    assert!(!serde_json::to_string(&r).unwrap().contains("hunter2"), "hashes never appear in reports");
    for id in [modern.id, legacy.id] {
        accounts
            .set_password(&actor, (gatehouse::accounts::Principal::User, id), "another long password")
            .await
            .unwrap();
    }
    assert_eq!(d.check(DEFAULT, "accounts.password_hashes").await.status, Status::Pass);
}

#[tokio::test]
async fn a_site_behind_cloudflare_must_trust_it() {
    let d = Deployment::new();
    // An address literal in CloudFlare's edge stands in for a proxied DNS name.
    let behind = "system_url: \"https://104.16.1.1/\"\n";
    let r = d.check(behind, "proxy.cloudflare").await;
    assert_eq!(r.status, Status::Fail, "{}", r.message);
    assert_eq!(r.evidence["cloudflare_addresses"], json!(["104.16.1.1"]));
    assert!(r.remediation.contains("cloudflare: true"));
    let no_ip_check = d.check(&format!("{behind}sessions: {{ ip_check: false }}\n"), "proxy.cloudflare").await;
    assert_eq!(no_ip_check.status, Status::Warn);
    let fixed = format!("{behind}trusted_proxies: {{ cloudflare: true, header: CF-Connecting-IP }}\n");
    assert_eq!(d.check(&fixed, "proxy.cloudflare").await.status, Status::Pass);
    let direct = d.check("system_url: \"http://localhost:8080/\"\n", "proxy.cloudflare").await;
    assert_eq!(direct.status, Status::Pass, "no false alarm: {}", direct.message);
}

fn new_user(email: &str) -> gatehouse::accounts::NewUser {
    gatehouse::accounts::NewUser {
        email: email.into(),
        first_name: "T".into(),
        last_name: "U".into(),
        ..Default::default()
    }
}

/// Trusting CloudFlare means trusting its current ranges: a downloaded list that cannot be read
/// is named with its line (serve falls back to the bundled one), and a list older than
/// `max_ranges_age_days` — the bundled one, or the file by its modification time — warns.
#[tokio::test]
async fn cloudflare_ranges_must_be_readable_and_current() {
    let d = Deployment::new();
    let file = d.path().join("cloudflare-ips.txt");
    let yaml = "system_url: \"http://localhost:8080/\"\ntrusted_proxies:\n  cloudflare: true\n  header: CF-Connecting-IP\n  \
                cloudflare_ranges_file: cloudflare-ips.txt\n";
    let run = |thresholds: Vec<(&'static str, Value)>| {
        let d = &d;
        async move {
            d.run(yaml, &["proxy.cloudflare"], &thresholds)
                .await
                .into_iter()
                .find(|r| r.id == "proxy.cloudflare")
                .unwrap()
        }
    };

    std::fs::write(&file, "173.245.48.0/20\n<!doctype html>\n").unwrap();
    let broken = run(vec![]).await;
    assert_eq!(broken.status, Status::Fail, "{}", broken.message);
    assert!(
        broken.message.contains("cloudflare-ips.txt:2: `<!doctype html>` is not a CIDR range"),
        "{}",
        broken.message
    );

    std::fs::write(&file, "173.245.48.0/20\n2400:cb00::/32\n").unwrap();
    assert_eq!(run(vec![]).await.status, Status::Pass, "a fresh, valid file");
    let old = std::time::SystemTime::now() - Duration::from_secs(200 * 86_400);
    std::fs::File::options().write(true).open(&file).unwrap().set_modified(old).unwrap();
    let stale = run(vec![]).await;
    assert_eq!(stale.status, Status::Warn, "{}", stale.message);
    assert!(stale.message.contains("200 days ago, more than 180"), "{}", stale.message);

    let bundled =
        "system_url: \"http://localhost:8080/\"\ntrusted_proxies: { cloudflare: true, header: CF-Connecting-IP }\n";
    let fresh = d.run(bundled, &["proxy.cloudflare"], &[]).await;
    assert_eq!(fresh.iter().find(|r| r.id == "proxy.cloudflare").unwrap().status, Status::Pass);
    let aged = d.run(bundled, &["proxy.cloudflare"], &[("proxy.cloudflare", json!({"max_ranges_age_days": -1}))]).await;
    let aged = aged.into_iter().find(|r| r.id == "proxy.cloudflare").unwrap();
    assert!(aged.message.contains("come from the bundled list"), "{}", aged.message);
}
