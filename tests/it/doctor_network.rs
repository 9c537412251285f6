//! `email.transport` and the TLS/HTTPS probes against real listeners on 127.0.0.1: SMTP with
//! and without AUTH, a closed port, one that accepts and never answers. (`license.connectivity`,
//! which speaks the licensing protocol, is proven in `license.rs` against a fake licensing server.)

use std::sync::Arc;
use std::time::Duration;

use crate::support::closed_port;
use gatehouse::config::{ConfigSource, load_from_str};
use gatehouse::doctor::runner::RunOptions;
use gatehouse::doctor::{CheckResult, Context, Selection, Status, checks, diagnose, select};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn check(yaml: &str, id: &str, deadline: Duration) -> CheckResult {
    let loaded = load_from_str(Some(yaml), ConfigSource::File("gatehouse.yaml".into()), Vec::new()).unwrap();
    let ctx = Arc::new(Context::new(loaded).with_deadline(deadline));
    let all = checks::builtin();
    let selected = select(&all, &Selection { only: vec![id.into()], ..Default::default() }).unwrap();
    let report = diagnose(&selected, ctx, &RunOptions::with_timeout(deadline)).await;
    report.results.into_iter().find(|r| r.id == id).unwrap()
}

/// An HTTP server that reads whatever arrives and answers with `status`, or never answers.
async fn http_server(status: Option<u16>) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                match status {
                    Some(code) => {
                        let reply = format!(
                            "HTTP/1.1 {code} Whatever\r\nDate: Sun, 22 Nov 2026 10:00:00 GMT\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                        );
                        let _ = stream.write_all(reply.as_bytes()).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(60)).await,
                }
            });
        }
    });
    (port, task)
}

const SECOND: Duration = Duration::from_secs(2);

fn smtp_yaml(port: u16, tls: &str, user: &str, password: &str) -> String {
    format!(
        "mail:\n  transport: smtp\n  smtp: {{ host: localhost, port: {port}, tls: {tls}, username: \"{user}\", password: \"{password}\" }}\n"
    )
}

fn smtp_phases(r: &CheckResult) -> Vec<String> {
    r.evidence["phases"].as_array().unwrap().iter().map(|p| p["phase"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn smtp_without_auth_passes_through_ehlo() {
    let server = crate::support::smtp::start(None).await;
    let r = check(&smtp_yaml(server.port, "none", "", ""), "email.transport", SECOND).await;
    assert_eq!(r.status, Status::Pass, "{}: {:?}", r.message, r.evidence);
    assert_eq!(smtp_phases(&r), ["dns", "connect", "ehlo", "mail_from", "rcpt_to"]);
}

#[tokio::test]
async fn smtp_auth_is_checked_with_the_configured_credentials() {
    let server = crate::support::smtp::start(Some(("mailer", "s3cret-pass"))).await;
    let good = check(&smtp_yaml(server.port, "none", "mailer", "s3cret-pass"), "email.transport", SECOND).await;
    assert_eq!(good.status, Status::Pass, "{}: {:?}", good.message, good.evidence);
    assert_eq!(smtp_phases(&good), ["dns", "connect", "ehlo", "auth", "mail_from", "rcpt_to"]);

    let bad = check(&smtp_yaml(server.port, "none", "mailer", "wrong"), "email.transport", SECOND).await;
    assert_eq!(bad.status, Status::Fail);
    assert_eq!(bad.evidence["failed_phase"], "auth");
    assert!(bad.message.contains("535"), "{}", bad.message);
    assert!(!serde_json::to_string(&bad.evidence).unwrap().contains("wrong"), "the password is not evidence");
}

#[tokio::test]
async fn smtp_misconfigurations_name_their_phase() {
    let server = crate::support::smtp::start(None).await;
    let starttls = check(&smtp_yaml(server.port, "starttls", "", ""), "email.transport", SECOND).await;
    assert_eq!((starttls.status, starttls.evidence["failed_phase"].as_str()), (Status::Fail, Some("starttls")));
    assert!(starttls.message.contains("does not offer STARTTLS"), "{}", starttls.message);

    let closed = check(&smtp_yaml(closed_port(), "none", "", ""), "email.transport", SECOND).await;
    assert_eq!((closed.status, closed.evidence["failed_phase"].as_str()), (Status::Fail, Some("connect")));

    let unnamed = check("mail: { transport: smtp }\n", "email.transport", SECOND).await;
    assert_eq!(unnamed.status, Status::Fail);
    assert!(unnamed.message.contains("mail.smtp.host is empty"));

    let (port, _silent) = http_server(None).await;
    let silent = check(&smtp_yaml(port, "none", "", ""), "email.transport", Duration::from_millis(600)).await;
    assert_eq!(
        (silent.status, silent.evidence["failed_phase"].as_str()),
        (Status::Fail, Some("ehlo")),
        "{}",
        silent.message
    );
}

#[tokio::test]
async fn the_spool_must_be_writable() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = check(&format!("mail: {{ spool_dir: \"{}\" }}\n", tmp.path().display()), "email.transport", SECOND).await;
    assert_eq!(ok.status, Status::Pass, "{}", ok.message);
    let blocker = tmp.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let bad = check(&format!("mail: {{ spool_dir: \"{}\" }}\n", blocker.display()), "email.transport", SECOND).await;
    assert_eq!(bad.status, Status::Fail, "{}", bad.message);
    assert_eq!(bad.evidence["transport"], Value::from("spool"));
}

/// A TLS server for `localhost` whose certificate, signed by a fresh CA, expires in `days`
/// days. Returns its port and the CA certificate in PEM.
async fn tls_server(days: i64) -> (u16, String, tokio::task::JoinHandle<()>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let expires = chrono::Utc::now() + chrono::Duration::days(days);
    use chrono::Datelike;
    leaf.not_after = rcgen::date_time_ymd(expires.year(), expires.month() as u8, expires.day() as u8);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf_cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let mut buf = [0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (port, ca_cert.pem(), task)
}

#[tokio::test]
async fn tls_and_https_probes_report_certificate_expiry() {
    let (port, ca_pem, _server) = tls_server(10).await;
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let ca = ca.display();
    let profile = format!(
        r#"only: [probe.tls, probe.tls_soon, probe.tls_untrusted, probe.https, probe.https_soon]
probes:
  - {{ id: probe.tls, tls: {{ address: "localhost:{port}", ca_file: "{ca}" }} }}
  - {{ id: probe.tls_soon, tls: {{ address: "localhost:{port}", ca_file: "{ca}", min_days_left: 30 }} }}
  - {{ id: probe.tls_untrusted, tls: {{ address: "localhost:{port}" }} }}
  - {{ id: probe.https, http: {{ url: "https://localhost:{port}/", ca_file: "{ca}", min_tls_days: 5 }} }}
  - {{ id: probe.https_soon, http: {{ url: "https://localhost:{port}/", ca_file: "{ca}", min_tls_days: 30 }} }}
"#
    );
    std::fs::write(tmp.path().join("profile.yaml"), profile).unwrap();
    let loaded = load_from_str(Some("listen: \"127.0.0.1:8080\"\n"), ConfigSource::Embedded, Vec::new()).unwrap();
    let all = checks::builtin();
    let profile = gatehouse::doctor::profile::load(&tmp.path().join("profile.yaml"), &all).unwrap();
    let mut all = all;
    all.extend(profile.probes.iter().cloned());
    let selected = select(&all, &profile.selection).unwrap();
    let ctx = Arc::new(Context::new(loaded).with_deadline(SECOND));
    let report = diagnose(&selected, ctx, &RunOptions::with_timeout(SECOND)).await;
    let get = |id: &str| report.results.iter().find(|r| r.id == id).unwrap();

    let ok = get("probe.tls");
    assert_eq!(ok.status, Status::Pass, "{}", ok.message);
    let days = ok.evidence["days_left"].as_i64().unwrap();
    assert!((8..=10).contains(&days), "{days}");
    assert!(ok.message.contains("expires in"), "{}", ok.message);
    assert_eq!(get("probe.tls_soon").status, Status::Fail);
    assert!(get("probe.tls_soon").message.contains("fewer than 30"));
    let untrusted = get("probe.tls_untrusted");
    assert_eq!(untrusted.status, Status::Fail);
    assert!(untrusted.message.contains("tls phase"), "{}", untrusted.message);
    assert_eq!(get("probe.https").status, Status::Pass, "{}", get("probe.https").message);
    assert_eq!(get("probe.https").evidence["http_status"], 200);
    assert_eq!(get("probe.https_soon").status, Status::Fail);
}
