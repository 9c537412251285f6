//! `gatehouse init`: a ready-to-run deployment in one command.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::Output;
use crate::accounts::Actor;
use crate::config::{self, DatabaseUrl, HttpUrl};
use crate::error::{Code, Error, Result};
use crate::services::Services;
use crate::store::Db;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory for gatehouse.yaml and the data folder (created if missing)
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// The URL users reach the client area at; links and cookies derive from it
    #[arg(long, default_value = "http://localhost:8080/", value_name = "URL")]
    pub system_url: String,
    /// Address serve listens on (default: system_url's own host and port when it names this
    /// machine, such as http://127.0.0.1:9000/; else 127.0.0.1:8080, behind a proxy)
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Database URL (default: SQLite in DIR/gatehouse-data/)
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Username of the first admin
    #[arg(long, default_value = "admin")]
    pub admin_username: String,
    /// Email of the first admin
    #[arg(long, default_value = "admin@localhost")]
    pub admin_email: String,
}

pub async fn run(args: InitArgs, out: &Output) -> Result<()> {
    let system_url: HttpUrl = args.system_url.parse().map_err(|e| Error::Usage(format!("--system-url: {e}")))?;
    let Some(mut url) = system_url.url().cloned() else {
        return Err(Error::Usage("--system-url must not be empty".into()));
    };
    // Links are joined under system_url: without its trailing slash `/clients` + `login` would
    // be `/clientslogin`.
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    let system_url: HttpUrl = url.as_str().parse().map_err(Error::Usage)?;
    let listen = args.listen.unwrap_or_else(|| listen_for(&url));
    let database_url = args.database_url.unwrap_or_else(|| "sqlite://gatehouse-data/gatehouse.db".into());
    database_url.parse::<DatabaseUrl>().map_err(|e| Error::Usage(format!("--database-url: {e}")))?;

    let path = args.dir.join("gatehouse.yaml");
    if path.exists() {
        return Err(Error::refused(
            Code::AlreadyInitialized,
            format!("{} already exists; edit it, or choose another --dir", path.display()),
        ));
    }
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| Error::Usage(format!("cannot create directory {}: {e}", args.dir.display())))?;
    // The zone this machine runs in, written down: a web server and a cron started differently
    // then still agree, and the first `doctor` has nothing to say about it.
    let zone = crate::system::effective_zone().zone.filter(|z| z.parse::<chrono_tz::Tz>().is_ok()).unwrap_or_default();
    std::fs::write(&path, template(&system_url, &listen, &database_url, &zone))
        .map_err(|e| Error::Usage(format!("cannot write {}: {e}", path.display())))?;

    // From here on a failure removes the half-written config, so init can simply be re-run.
    let result = set_up(&path, &args.admin_username, &args.admin_email).await;
    if result.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    let (db_shown, admin, token) = result?;
    let config = std::fs::canonicalize(&path).unwrap_or(path.clone());
    let config = config.display();
    out.emit(&json!({"config": path, "database": db_shown, "admin": admin, "token": token.token}), || {
        format!(
            "Wrote {}\nCreated database {db_shown}\nCreated admin `{}` with role `{}`\n\n\
             API token (shown once; store it now): {}\n\n\
             Next steps:\n  \
             1. Serve it:   gatehouse --config {config} serve\n     \
             (as a service: contrib/systemd/gatehouse.service; README, \"Running it as a service\")\n  \
             2. Cron, every cron.interval (5m), same configuration:\n     \
             */5 * * * * gatehouse --config {config} cron\n     \
             (or contrib/systemd/gatehouse-cron.timer)\n  \
             3. Check it:   gatehouse --config {config} doctor",
            path.display(),
            admin.username,
            admin.role_name.clone().unwrap_or_default(),
            token.token,
        )
    })
}

async fn set_up(
    path: &Path,
    username: &str,
    email: &str,
) -> Result<(String, crate::accounts::Admin, crate::accounts::CreatedToken)> {
    let loaded = config::load(Some(path), std::env::vars())?;
    let db = Db::connect(&loaded.config.database_url, loaded.origin("database_url")).await?;
    db.migrate().await?;
    let accounts = Services::over(db.clone(), &loaded).accounts;
    let (admin, token) = accounts.bootstrap_admin(&Actor::system("init"), username, email).await?;
    db.close().await;
    Ok((loaded.config.database_url.redacted(), admin, token))
}

/// Where serve listens: system_url's own address when it names this machine with a port of its
/// own (a site served directly, or tried out), else the loopback port a proxy forwards to.
fn listen_for(url: &url::Url) -> String {
    let local = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match (local, url.port(), url.host()) {
        (true, Some(port), Some(url::Host::Ipv6(ip))) => format!("[{ip}]:{port}"),
        (true, Some(port), Some(url::Host::Ipv4(ip))) => format!("{ip}:{port}"),
        (true, Some(port), _) => format!("127.0.0.1:{port}"),
        _ => "127.0.0.1:8080".into(),
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// The commented configuration `init` writes. Relative paths are relative to this file.
fn template(system_url: &HttpUrl, listen: &str, database_url: &str, timezone: &str) -> String {
    // A site at an IP address cannot offer passkeys: off, and the file says why.
    let by_name = system_url.url().is_some_and(|u| u.domain().is_some());
    let passkeys_note = if by_name { "" } else { ": off while system_url is one" };
    let passkeys = by_name;
    format!(
        r#"# gatehouse configuration, written by `gatehouse init`.
#
# Relative paths below are relative to the directory of this file.
# Any key can be overridden by an environment variable GATEHOUSE_<KEY>, with __ between
# levels: GATEHOUSE_DATABASE_URL, GATEHOUSE_SESSIONS__STORE=files.
# Durations are written like 30s, 15m, 12h, 7d; sizes like 512MiB, 1GiB.
# Check this file with `gatehouse config check`; see the result with `gatehouse config show`.

# The URL users reach the client area at. Links in emails, and the session cookie's host, path
# and Secure flag, derive from it: logging in through any other URL fails.
system_url: {system_url}
listen: {listen}
# Limits that keep slow or hoarding clients from exhausting the server: connections over a
# limit are answered 503 and closed; trusted proxies are exempt from the per-address limit.
server:
  max_connections: 10000
  max_connections_per_ip: 256
  header_timeout: "10s"        # a request's headers, and an idle kept-alive connection
  body_timeout: "30s"          # a request's body
# sqlite://PATH or postgres://USER:PASSWORD@HOST:5432/DB (several `serve` nodes need PostgreSQL).
database_url: {database_url}
data_dir: "gatehouse-data"
# IANA time zone for the web server and cron alike (init writes this machine's); "" uses each
# process's local zone.
timezone: {timezone}

sessions:
  store: database              # database | files
  dir: "gatehouse-data/sessions"  # used by store: files
  idle_timeout: "30m"
  absolute_timeout: "12h"
  ip_check: true               # end a session when the client IP changes
  gc: true                     # cron removes expired sessions

trusted_proxies:
  header: "X-Forwarded-For"    # X-Forwarded-For | CF-Connecting-IP | X-Real-IP
  ranges: []                   # IPs / CIDRs of your reverse proxies
  cloudflare: false            # also trust CloudFlare's published ranges
  cloudflare_ranges_file: ""   # a fresher copy of them (cloudflare.com/ips-v4 + ips-v6); "" = bundled

security:
  password_min_length: 12
  # An account (and an account at one IP) locks after max_failures; an IP alone, on any
  # accounts, after ip_max_failures, so one user's typos never lock out their colleagues.
  lockout: {{ max_failures: 5, ip_max_failures: 50, window: "15m", lock: "15m" }}
  reset_token_ttl: "1h"
  invite_ttl: "7d"
  banned_email_subdomains: true   # a banned domain also bans its subdomains
  # Security questions before a password reset: a WHMCS feature that OWASP ASVS (6.4.2) and
  # NIST SP 800-63B-4 advise against (answers are guessable and looked up); off for new sites.
  security_questions: false

accounts:
  registration: open           # open (/register creates a client and its owner) | invite_only
  # Contact details /register requires besides name, email and password (it asks for all):
  # company, address1, address2, city, state, postcode, country, phone, tax_id
  signup_required: []

twofa:
  force_clients: false
  force_admins: false
  # Passkeys (WebAuthn) for users and admins. Browsers allow them only where system_url's host is
  # a domain name (localhost counts), never an IP address{passkeys_note}.
  passkeys: {passkeys}
  # Duo Universal Prompt needs a Web SDK application's Client ID, Client Secret and API hostname.
  duo: {{ client_id: "", client_secret: "", api_hostname: "" }}

mail:
  from: "gatehouse <noreply@localhost>"
  transport: spool             # spool (one .eml file per message) | smtp
  spool_dir: "gatehouse-data/mail"
  smtp: {{ host: "", port: 587, username: "", password: "", tls: starttls }}   # starttls | tls | none

# The license binds this installation's domain (system_url), IP and directory; "" = unlicensed
# mode, where nothing is verified or locked. See README, "Licensing".
license:
  key: ""                      # GH-XXXXX-XXXXX-XXXXX-XXXXX-CCCC, from the vendor
  server: ""                   # base URL of the licensing service
  public_key: ""               # the vendor's ed25519 public key (base64) that signs its answers

cron:
  interval: "5m"               # how often you schedule `gatehouse cron`

doctor:
  timeout: "5s"                # per check
  disk_min_free: "1GiB"
  disk_min_free_percent: 5
  dns_servers: []

# What support bundles (`gatehouse report`) carry of the service's log, redacted like the rest.
report:
  log_file: ""                 # the file serve logs to; "" = the systemd journal of journal_unit
  journal_unit: "gatehouse"
  log_lines: 500
"#,
        system_url = quoted(&system_url.to_string()),
        listen = quoted(listen),
        database_url = quoted(database_url),
        timezone = quoted(timezone),
    )
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigSource, load_from_str};

    /// `init`'s commented file and `Config::default()` are two spellings of the defaults; this
    /// keeps them one: a default changed in one place only fails here. One difference is meant:
    /// a new site starts without security questions, which a file without the key keeps.
    #[test]
    fn the_written_file_states_exactly_the_defaults() {
        let mut defaults = Config::default();
        let text = super::template(&defaults.system_url, &defaults.listen, defaults.database_url.as_str(), "");
        let written = load_from_str(Some(&text), ConfigSource::Embedded, Vec::new()).unwrap().config;
        assert!(!written.security.security_questions, "a new site starts without security questions");
        defaults.security.security_questions = false;
        assert_eq!(serde_json::to_value(&written).unwrap(), serde_json::to_value(&defaults).unwrap());

        // And every key is written out, so an operator sees each setting there is.
        fn keys(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
            if let serde_json::Value::Object(map) = v {
                for (k, v) in map {
                    out.push(format!("{prefix}{k}"));
                    keys(v, &format!("{prefix}{k}."), out);
                }
            }
        }
        let (mut all, mut in_file) = (Vec::new(), Vec::new());
        keys(&serde_json::to_value(&defaults).unwrap(), "", &mut all);
        keys(&serde_saphyr::from_str::<serde_json::Value>(&text).unwrap(), "", &mut in_file);
        let missing: Vec<_> = all.iter().filter(|k| !in_file.contains(k)).collect();
        assert!(missing.is_empty(), "keys the written file leaves out: {missing:?}");
    }

    #[test]
    fn serve_listens_where_a_local_system_url_points() {
        let listen = |u: &str| super::listen_for(&u.parse().unwrap());
        assert_eq!(listen("http://127.0.0.1:9000/clients/"), "127.0.0.1:9000");
        assert_eq!(listen("http://localhost:9001/"), "127.0.0.1:9001");
        assert_eq!(listen("http://[::1]:9002/"), "[::1]:9002");
        assert_eq!(listen("https://billing.example.com/"), "127.0.0.1:8080", "behind a proxy");
        assert_eq!(listen("http://localhost/"), "127.0.0.1:8080", "no port of its own");
    }
}
