//! The whole licensing lifecycle against the reference licensing server, run as its own process
//! (`gatehouse licensing serve`): keygen → issue → the first web verification binds → cron from
//! the same install is applied → the install moved: invalid, with the licensed facts named by
//! the doctor → reissue → active again → suspend: admin functions lock, the client area stays up →
//! resume.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use gatehouse::accounts::AdminPermission;
use gatehouse::doctor::Status;
use gatehouse::license::{Context, Status as LicenseStatus};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::doctor::check_at;
use crate::support::web::{Backend, PASSWORD, Server, admin_token, api};

struct Vendor(Child);

impl Drop for Vendor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn licensing(dir: &std::path::Path, args: &[&str]) -> Value {
    let out = crate::support::gatehouse(dir).args(["--json", "licensing"]).args(args).output().unwrap();
    assert!(out.status.success(), "licensing {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn admin_write(server: &Server) -> u16 {
    let token = admin_token(server, &[AdminPermission::SettingsManage]).await;
    let domain = format!("spam{}.example", rand::random::<u32>());
    api(server, &token, Method::POST, "banned-emails", Some(json!({"domain": domain}))).await.0
}

async fn verified(server: &Server, context: Context) -> (LicenseStatus, String) {
    let verification = server.state.license.verify(context).await.unwrap();
    match verification.reply {
        gatehouse::license::Reply::Answered { answer, .. } => (answer.status, answer.reason),
        other => panic!("no answer: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_license_lifecycle_against_the_reference_server() {
    let vendor_dir = tempfile::tempdir().unwrap();
    let dir = vendor_dir.path();
    let public_key = licensing(dir, &["keygen"])["public_key"].as_str().unwrap().to_string();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join("licensing.key")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the signing key is private");
    let key = licensing(dir, &["issue"])["key"].as_str().unwrap().to_string();

    let mut child = Command::new(assert_cmd::cargo::cargo_bin("gatehouse"))
        .current_dir(dir)
        .args(["licensing", "serve", "--listen", "127.0.0.1:0"])
        .env("GATEHOUSE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _vendor = Vendor(child);
    let url = line.trim().strip_prefix("licensing server listening on ").expect("the address").to_string();
    let yaml = format!("license: {{ key: \"{key}\", server: \"{url}/\", public_key: \"{public_key}\" }}\n");

    // The first web verification binds the key to this install.
    let Some(site) = Server::start(Backend::Sqlite, &yaml).await else { return };
    assert_eq!(verified(&site, Context::Web).await.0, LicenseStatus::Active);
    let here = std::fs::canonicalize(site.dir.path()).unwrap().display().to_string();
    let listed = licensing(dir, &["list"]);
    assert_eq!(listed[0]["binding"]["directories"], json!([here]), "bound to the first web server's directory");
    assert!(!listed.to_string().contains(&key), "a listing never shows the key itself");
    assert_eq!(admin_write(&site).await, 201);
    // Cron from the same install: the same facts, applied.
    let cron = site.state.license.verify(Context::Cron).await.unwrap();
    assert!(cron.applied, "{:?}", cron.not_applied);

    // The install moves to another directory: invalid, and the doctor names what is licensed.
    let Some(moved) = Server::start(Backend::Sqlite, &yaml).await else { return };
    let (status, reason) = verified(&moved, Context::Web).await;
    assert_eq!(status, LicenseStatus::Invalid);
    assert!(reason.contains(&format!("licensed for directory {here}")), "{reason}");
    let validity = check_at(&moved.state.loaded, "license.validity", moved.state.db().clock()).await.0;
    assert_eq!(validity.status, Status::Fail, "{}", validity.message);
    assert!(validity.message.contains(&here), "the licensed facts are named: {}", validity.message);
    assert_eq!(admin_write(&moved).await, 403);

    // The vendor reissues it: the next web verification binds the new place.
    licensing(dir, &["reissue", &key]);
    assert_eq!(verified(&moved, Context::Web).await.0, LicenseStatus::Active);
    assert_eq!(admin_write(&moved).await, 201);

    // Suspended: admin functions lock, the client area stays up.
    licensing(dir, &["suspend", &key, "--reason", "payment overdue"]);
    assert_eq!(verified(&moved, Context::Web).await, (LicenseStatus::Suspended, "payment overdue".to_string()));
    assert_eq!(admin_write(&moved).await, 403);
    moved.client_with_owner("ann@example.com", "Ann Ltd").await;
    assert_eq!(moved.browser().login("ann@example.com", PASSWORD).await.location(), "/clientarea");

    licensing(dir, &["resume", &key]);
    assert_eq!(verified(&moved, Context::Web).await.0, LicenseStatus::Active);
    assert_eq!(admin_write(&moved).await, 201);
}
