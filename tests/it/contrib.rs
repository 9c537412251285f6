//! `contrib/`: the systemd units parse (`systemd-analyze verify`), the logrotate snippet passes
//! logrotate's own check, and the `trusted_proxies` the nginx and Caddy examples tell you to set
//! is a configuration gatehouse accepts and that trusts the proxy they run as.

use std::path::{Path, PathBuf};
use std::process::Command;

fn contrib(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib").join(path)
}

/// `tool` when this machine has it; otherwise a note and `None` (the test says what it skipped).
fn tool(name: &str) -> Option<&'static str> {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().ok()?.status.success();
    if !found {
        eprintln!("note: {name} is not installed; that part of the contrib check is skipped");
    }
    found.then(|| Box::leak(name.to_string().into_boxed_str()) as &'static str)
}

#[test]
fn the_systemd_units_parse() {
    let Some(analyze) = tool("systemd-analyze") else { return };
    let dir = tempfile::tempdir().unwrap();
    let binary = assert_cmd::cargo::cargo_bin("gatehouse");
    let mut units = Vec::new();
    for name in ["gatehouse.service", "gatehouse-cron.service", "gatehouse-cron.timer"] {
        // The binary where the unit expects it: verify checks that ExecStart exists.
        let text = std::fs::read_to_string(contrib(&format!("systemd/{name}"))).unwrap();
        let text = text.replace("/usr/local/bin/gatehouse", binary.to_str().unwrap());
        std::fs::write(dir.path().join(name), text).unwrap();
        units.push(dir.path().join(name));
    }
    let out = Command::new(analyze).arg("verify").args(&units).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify:\n{stderr}");
    let serve = std::fs::read_to_string(contrib("systemd/gatehouse.service")).unwrap();
    for hardening in ["NoNewPrivileges=yes", "ProtectSystem=strict", "User=gatehouse", "UMask=0077"] {
        assert!(serve.contains(hardening), "{hardening} missing");
    }
}

#[test]
fn the_logrotate_snippet_passes_logrotates_check() {
    let Some(logrotate) = tool("logrotate") else { return };
    let dir = tempfile::tempdir().unwrap();
    // This machine has no user `gatehouse`: the check runs as the one we are.
    let me = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let text = std::fs::read_to_string(contrib("logrotate/gatehouse"))
        .unwrap()
        .replace("gatehouse gatehouse", &format!("{0} {0}", me.trim()));
    let snippet = dir.path().join("gatehouse");
    std::fs::write(&snippet, text).unwrap();
    let out = Command::new(logrotate).arg("-d").arg("-s").arg(dir.path().join("state")).arg(&snippet).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && !said.contains("error"), "logrotate -d:\n{said}");
}

#[test]
fn the_proxy_examples_tell_you_a_configuration_that_trusts_them() {
    for example in ["nginx/gatehouse.conf", "caddy/Caddyfile"] {
        let text = std::fs::read_to_string(contrib(example)).unwrap();
        // The YAML in the example's comments, as the operator copies it.
        let yaml: String = text
            .lines()
            .skip_while(|l| !l.contains("system_url:"))
            .take_while(|l| l.starts_with('#'))
            .map(|l| {
                l.trim_start_matches('#').strip_prefix("   ").unwrap_or(l.trim_start_matches('#')).to_string() + "\n"
            })
            .collect();
        let loaded =
            gatehouse::config::load_from_str(Some(&yaml), gatehouse::config::ConfigSource::Embedded, Vec::new())
                .unwrap_or_else(|e| panic!("{example}: its configuration does not load: {e}\n{yaml}"));
        let trusted = gatehouse::net::client_ip::Trusted::from_config(&loaded.config.trusted_proxies);
        assert!(trusted.contains("127.0.0.1".parse().unwrap()), "{example}: the proxy is not trusted:\n{yaml}");
        assert_eq!(loaded.config.system_url.to_string(), "https://billing.example.com/");
    }
}
