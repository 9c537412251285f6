//! The authentication commands as an operator types them: user import with legacy hashes,
//! reset-password, disable-2fa, session list/revoke/gc, cron.

use crate::support::gatehouse;
use gatehouse::auth::sessions::Session;
use gatehouse::auth::{Step, Visitor};
use serde_json::Value;

fn json_of(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A folder with the embedded default deployment's database created, as `gatehouse migrate` does.
fn deployment() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    assert!(gatehouse(tmp.path()).arg("migrate").output().unwrap().status.success());
    tmp
}

/// Writes `rows` under the CSV header of `user import` to `name` in `dir`, and imports it.
fn import_csv(dir: &std::path::Path, name: &str, rows: &str, flags: &[&str]) -> std::process::Output {
    std::fs::write(dir.join(name), format!("email,first_name,last_name,password_hash\n{rows}")).unwrap();
    gatehouse(dir).args(["user", "import", name]).args(flags).output().unwrap()
}

#[test]
fn import_users_keeps_legacy_hashes_and_is_all_or_nothing() {
    let tmp = deployment();
    let dir = tmp.path();
    let bcrypt = bcrypt::hash("imported password", 4).unwrap();
    use md5::Digest;
    let md5 = format!("{}:a1b2c", hex::encode(md5::Md5::digest(b"a1b2cother password")));

    let bad = import_csv(dir, "bad.csv", &format!("ok@example.com,Ok,User,{bcrypt}\nbroken,No,Email,\n"), &[]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.starts_with("error[invalid_email]: bad.csv:3:"), "{err}");
    let users = json_of(&gatehouse(dir).args(["user", "list", "--json"]).output().unwrap());
    assert_eq!(users.as_array().unwrap().len(), 0, "nothing imported");

    // A hash that would hold a hashing thread for a day and a half at every wrong password.
    let costly = "$2y$31$abcdefghijklmnopqrstuuAbCdEfGhIjKlMnOpQrStUvWxYz01234";
    let refused = import_csv(dir, "costly.csv", &format!("cy@example.com,Cy,D,{costly}\n"), &[]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.starts_with("error[invalid_input]: costly.csv:2:") && err.contains("bcrypt: cost ≤ 13"), "{err}");

    let rows = format!("ann@example.com,Ann,B,{bcrypt}\nbob@example.com,Bob,C,{md5}\n");
    let imported = json_of(&import_csv(dir, "users.csv", &rows, &["--json"]));
    assert_eq!(imported.as_array().unwrap().len(), 2);
    assert_eq!(imported[0]["has_password"], true);

    std::fs::write(
        dir.join("more.jsonl"),
        "{\"email\":\"cy@example.com\",\"first_name\":\"Cy\",\"last_name\":\"D\"}\n\n{\"email\":1}\n",
    )
    .unwrap();
    let bad_json = gatehouse(dir).args(["user", "import", "more.jsonl"]).output().unwrap();
    assert_eq!(bad_json.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad_json.stderr).contains("more.jsonl:3:"),
        "{}",
        String::from_utf8_lossy(&bad_json.stderr)
    );

    // The legacy hashes verify through the real login path and are upgraded.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let loaded = gatehouse::config::load(None, Vec::<(String, String)>::new()).unwrap_or_else(|e| panic!("{e}"));
        let mut loaded = loaded;
        loaded.config.database_url = format!("sqlite://{}/gatehouse-data/gatehouse.db", dir.display()).parse().unwrap();
        let db = gatehouse::store::Db::connect(&loaded.config.database_url, "test").await.unwrap();
        let accounts = gatehouse::accounts::Accounts::new(db, gatehouse::accounts::Policy::from(&loaded.config));
        let sessions = gatehouse::auth::sessions::Sessions::from_config(&loaded.config, accounts.db());
        let auth = gatehouse::auth::Auth::new(&loaded.config, accounts.clone(), sessions);
        for (email, password) in [("ann@example.com", "imported password"), ("bob@example.com", "other password")] {
            let (visitor_session, who) = (Session::unsaved("form"), gatehouse::accounts::Principal::User);
            let from = Visitor { ip: "127.0.0.1".into(), ..Default::default() };
            let step = auth.sign_in_with_password(who, email, password, &visitor_session, &from).await.unwrap();
            assert!(matches!(step, Step::Done { .. }), "{step:?}");
            let user = accounts.user_by_email(email).await.unwrap().unwrap();
            assert!(user.password_hash.unwrap().starts_with("$argon2id$"), "{email} upgraded");
        }
    });
}

#[test]
fn reset_password_disable_2fa_sessions_and_cron() {
    let tmp = deployment();
    let dir = tmp.path();
    let user = json_of(
        &gatehouse(dir)
            .args(["user", "add", "--email", "ann@example.com", "--first-name", "Ann", "--last-name", "B", "--json"])
            .output()
            .unwrap(),
    );
    let id = user["id"].as_i64().unwrap().to_string();
    let reset =
        json_of(&gatehouse(dir).args(["user", "reset-password", "ann@example.com", "--json"]).output().unwrap());
    assert_eq!(reset["queued"], true);
    let off = json_of(&gatehouse(dir).args(["user", "disable-2fa", &id, "--json"]).output().unwrap());
    assert_eq!(off["twofa_method"], Value::Null);

    let cron = json_of(&gatehouse(dir).args(["cron", "--json"]).output().unwrap());
    let jobs: Vec<&str> = cron.as_array().unwrap().iter().map(|j| j["job"].as_str().unwrap()).collect();
    assert_eq!(jobs, ["sessions-gc", "token-purge", "mail", "license", "heartbeat"]);
    assert!(cron.as_array().unwrap().iter().all(|j| j["ok"] == true), "{cron}");
    let spooled: Vec<_> = std::fs::read_dir(dir.join("gatehouse-data/mail")).unwrap().collect();
    assert_eq!(spooled.len(), 1, "the reset email was delivered to the spool");

    let unknown = gatehouse(dir).args(["cron", "--job", "nope"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));

    let sessions =
        json_of(&gatehouse(dir).args(["session", "list", "--user", "ann@example.com", "--json"]).output().unwrap());
    assert_eq!(sessions, serde_json::json!([]));
    let gc = json_of(&gatehouse(dir).args(["session", "gc", "--json"]).output().unwrap());
    assert_eq!(gc["removed"], 0);
    let revoke =
        json_of(&gatehouse(dir).args(["session", "revoke", "--user", &id, "--all", "--json"]).output().unwrap());
    assert_eq!(revoke["ended"], 0);
    let missing = gatehouse(dir).args(["session", "revoke", "--user", &id, "0123456789abcdef"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let everyone = json_of(&gatehouse(dir).args(["session", "end-all", "--admins", "--json"]).output().unwrap());
    assert_eq!(everyone, serde_json::json!({"ended": 0, "admins": true}));
    let said = gatehouse(dir).args(["session", "end-all"]).output().unwrap();
    assert!(String::from_utf8_lossy(&said.stdout).contains("every user signs in again"), "{said:?}");
    let audit = gatehouse(dir).args(["audit", "--action", "session.end_everyone", "--json"]).output().unwrap();
    assert_eq!(json_of(&audit).as_array().map(Vec::len), Some(2), "both are in the audit log");
}

/// Lockouts as an operator sees and ends them: `lockout list`, `user unlock`, `lockout clear --ip`.
#[tokio::test]
async fn lockouts_are_listed_unlocked_and_cleared() {
    use gatehouse::auth::throttle::{Principal, Scope, Throttle};
    let tmp = deployment();
    let dir = tmp.path();
    let add = ["user", "add", "--email", "ann@example.com", "--first-name", "Ann", "--last-name", "Lee"];
    assert!(gatehouse(dir).args(add).output().unwrap().status.success());
    // Failures as the service counts them, in the deployment's database.
    let url = format!("sqlite://{}/gatehouse-data/gatehouse.db", dir.display()).parse().unwrap();
    let db = gatehouse::store::Db::connect(&url, "test").await.unwrap();
    let lockout = gatehouse::config::Lockout { max_failures: 2, ..Default::default() };
    let throttle = Throttle::new(db, &lockout);
    for _ in 0..2 {
        for (email, ip) in [("ann@example.com", "198.51.100.7"), ("bob@example.com", "203.0.113.5")] {
            let attempt = throttle.begin(&Scope::password(Principal::User, email, ip)).await.unwrap().unwrap();
            attempt.failed().await.unwrap();
        }
    }

    let listed = json_of(&gatehouse(dir).args(["lockout", "list", "--json"]).output().unwrap());
    let locked: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["locked"] == true)
        .map(|c| c["scope"].as_str().unwrap())
        .collect();
    assert!(locked.contains(&"account:ann@example.com") && locked.contains(&"account-ip:bob@example.com 203.0.113.5"));
    let text = gatehouse(dir).args(["lockout", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("LOCKED UNTIL"));

    let unlocked = json_of(&gatehouse(dir).args(["user", "unlock", "ann@example.com", "--json"]).output().unwrap());
    assert_eq!(unlocked["removed"].as_array().unwrap().len(), 2, "{unlocked}");
    let cleared =
        json_of(&gatehouse(dir).args(["lockout", "clear", "--ip", "203.0.113.5", "--json"]).output().unwrap());
    let removed: Vec<&str> = cleared["removed"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(removed, ["account-ip:bob@example.com 203.0.113.5", "ip:203.0.113.5"]);
    let left = json_of(&gatehouse(dir).args(["lockout", "list", "--json"]).output().unwrap());
    let left: Vec<&str> = left.as_array().unwrap().iter().map(|c| c["scope"].as_str().unwrap()).collect();
    assert_eq!(left, ["account:bob@example.com", "ip:198.51.100.7"], "only what was not released");
    let audit = gatehouse(dir).args(["audit", "--json"]).output().unwrap();
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.contains("user.unlock") && audit.contains("lockout.clear"), "{audit}");
}

/// Passwords need not be on the command line: piped with --password-stdin or in
/// GATEHOUSE_PASSWORD; with neither and no terminal to ask on, set-password says what to do.
#[tokio::test]
async fn passwords_come_from_stdin_or_the_environment() {
    let tmp = deployment();
    let dir = tmp.path();
    let add = ["user", "add", "--email", "ann@example.com", "--first-name", "Ann", "--last-name", "Lee"];
    let added = gatehouse(dir).args(add).env("GATEHOUSE_PASSWORD", "from the environment").output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let url = format!("sqlite://{}/gatehouse-data/gatehouse.db", dir.display()).parse().unwrap();
    let db = gatehouse::store::Db::connect(&url, "test").await.unwrap();
    let accounts = gatehouse::accounts::Accounts::new(db, crate::support::policy());
    let hash = || async { accounts.user_by_email("ann@example.com").await.unwrap().unwrap().password_hash.unwrap() };
    let verifies = |password: &'static str, hash: String| async move {
        gatehouse::secrets::passwords::verify_any_async(
            password,
            &hash,
            gatehouse::secrets::passwords::Requester::Operator,
        )
        .await
        .unwrap()
        .ok
    };
    assert!(verifies("from the environment", hash().await).await);

    let piped = gatehouse(dir)
        .args(["user", "set-password", "ann@example.com", "--password-stdin"])
        .write_stdin("piped through stdin\n")
        .output()
        .unwrap();
    assert!(piped.status.success(), "{}", String::from_utf8_lossy(&piped.stderr));
    assert!(verifies("piped through stdin", hash().await).await, "the line, without its newline");

    let none = gatehouse(dir).args(["user", "set-password", "ann@example.com"]).write_stdin("").output().unwrap();
    assert_eq!(none.status.code(), Some(2));
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(err.contains("--password-stdin") && err.contains("GATEHOUSE_PASSWORD"), "{err}");
}
