//! Configuration: the contract in DESIGN.md ("Configuration").
//!
//! Resolution order: `--config FILE`, `$GATEHOUSE_CONFIG`, `./gatehouse.yaml`, the embedded
//! defaults. Every key can then be overridden by a `GATEHOUSE_<PATH>` environment variable, with
//! `__` between nesting levels (`GATEHOUSE_SESSIONS__STORE=files`).

mod checked;
pub mod edit;
mod load;
mod redact;
mod values;

use serde::{Deserialize, Serialize};

pub use checked::{MAX_PASSWORD_BYTES, parse_trusted};
pub(crate) use load::yaml_error;
pub use load::{ConfigError, ConfigSource, Loaded, Origin, load, load_from_str};
pub use values::{Backend, ByteSize, DatabaseUrl, Duration, HttpUrl, Secret, TimeZone};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Canonical base URL: links in emails and the cookie's host, path and Secure flag derive from it.
    #[serde(deserialize_with = "checked::system_url")]
    pub system_url: HttpUrl,
    #[serde(deserialize_with = "checked::listen_address")]
    pub listen: String,
    pub server: Server,
    pub database_url: DatabaseUrl,
    pub data_dir: String,
    /// IANA zone name; empty means the process's local zone.
    pub timezone: TimeZone,
    pub sessions: Sessions,
    pub trusted_proxies: TrustedProxies,
    pub security: Security,
    pub accounts: AccountsConfig,
    pub twofa: TwoFa,
    pub mail: Mail,
    pub license: License,
    pub cron: Cron,
    pub doctor: Doctor,
    pub report: ReportConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            system_url: "http://localhost:8080/".parse().expect("valid default"),
            listen: "127.0.0.1:8080".into(),
            server: Server::default(),
            database_url: "sqlite://gatehouse-data/gatehouse.db".parse().expect("valid default"),
            data_dir: "gatehouse-data".into(),
            timezone: TimeZone::default(),
            sessions: Sessions::default(),
            trusted_proxies: TrustedProxies::default(),
            security: Security::default(),
            accounts: AccountsConfig::default(),
            twofa: TwoFa::default(),
            mail: Mail::default(),
            license: License::default(),
            cron: Cron::default(),
            doctor: Doctor::default(),
            report: ReportConfig::default(),
        }
    }
}

impl Config {
    /// Every secret of the configuration, with its key.
    pub(crate) fn secrets_mut(&mut self) -> [(&'static str, &mut Secret); 3] {
        [
            ("mail.smtp.password", &mut self.mail.smtp.password),
            ("twofa.duo.client_secret", &mut self.twofa.duo.client_secret),
            ("license.key", &mut self.license.key),
        ]
    }

    /// The files and folders whose identity on disk is part of where this deployment keeps its
    /// data (see `store::settings::storage_id`): a SQLite database, a sessions folder.
    pub fn storage_files(&self) -> Vec<&std::path::Path> {
        let sqlite = self.database_url.sqlite_path().map(std::path::Path::new);
        let sessions =
            (self.sessions.store == SessionStore::Files).then(|| std::path::Path::new(self.sessions.dir.as_str()));
        sqlite.into_iter().chain(sessions).collect()
    }

    /// Resolves the relative paths of a configuration file against the file's directory, so a
    /// deployment works whatever directory `gatehouse` is started from.
    pub(crate) fn resolve_paths(&mut self, base: &std::path::Path) {
        if base.as_os_str().is_empty() {
            return;
        }
        self.database_url = self.database_url.relative_to(base);
        let ranges_file = &mut self.trusted_proxies.cloudflare_ranges_file;
        let log_file = &mut self.report.log_file;
        for dir in [&mut self.data_dir, &mut self.sessions.dir, &mut self.mail.spool_dir, ranges_file, log_file] {
            if !dir.is_empty() && std::path::Path::new(dir.as_str()).is_relative() {
                *dir = base.join(&*dir).display().to_string();
            }
        }
    }
}

/// What `serve` allows a connection, so that slow or hoarding clients cannot exhaust it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// Open connections at most; more are answered 503 and closed.
    #[serde(deserialize_with = "checked::at_least_one")]
    pub max_connections: u32,
    /// Open connections from one peer address at most (trusted proxies excepted); 0 = no limit.
    pub max_connections_per_ip: u32,
    /// Reading a request's headers, and waiting for the next request on a kept-alive connection.
    #[serde(deserialize_with = "checked::positive_duration")]
    pub header_timeout: Duration,
    /// Reading a request's body.
    #[serde(deserialize_with = "checked::positive_duration")]
    pub body_timeout: Duration,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_ip: 256,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStore {
    Database,
    Files,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sessions {
    pub store: SessionStore,
    pub dir: String,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    pub ip_check: bool,
    pub gc: bool,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            store: SessionStore::Database,
            dir: "gatehouse-data/sessions".into(),
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            ip_check: true,
            gc: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardedHeader {
    #[serde(rename = "X-Forwarded-For")]
    XForwardedFor,
    #[serde(rename = "CF-Connecting-IP")]
    CfConnectingIp,
    #[serde(rename = "X-Real-IP")]
    XRealIp,
}

/// Proxies whose forwarded headers are believed. Entries are kept as written so that the doctor
/// can point at an invalid or over-broad one instead of the whole file being refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustedProxies {
    pub header: ForwardedHeader,
    #[serde(deserialize_with = "checked::trusted_ranges")]
    pub ranges: Vec<String>,
    pub cloudflare: bool,
    /// CloudFlare's ranges from this file (ips-v4 and ips-v6 as CloudFlare publishes them, one
    /// CIDR per line) instead of the bundled list; "" = the bundled list.
    pub cloudflare_ranges_file: String,
}

impl Default for TrustedProxies {
    fn default() -> Self {
        Self {
            header: ForwardedHeader::XForwardedFor,
            ranges: Vec::new(),
            cloudflare: false,
            cloudflare_ranges_file: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    #[serde(deserialize_with = "checked::password_min_length")]
    pub password_min_length: usize,
    pub lockout: Lockout,
    #[serde(deserialize_with = "checked::positive_duration")]
    pub reset_token_ttl: Duration,
    #[serde(deserialize_with = "checked::positive_duration")]
    pub invite_ttl: Duration,
    /// Also ban every subdomain of a banned domain (`mail.example.com` for `example.com`).
    pub banned_email_subdomains: bool,
    /// Ask a user's security question before a password reset (a WHMCS feature that OWASP ASVS
    /// 6.4.2 and NIST SP 800-63B-4 advise against). On where the key is absent, so deployments
    /// that use them keep them; `gatehouse init` writes it off for new installs.
    pub security_questions: bool,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            password_min_length: 12,
            lockout: Lockout::default(),
            reset_token_ttl: Duration::from_secs(3600),
            invite_ttl: Duration::from_secs(7 * 86400),
            banned_email_subdomains: true,
            security_questions: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lockout {
    /// Failures on one account (from anywhere, and from one IP) before it locks.
    #[serde(deserialize_with = "checked::account_failures")]
    pub max_failures: u32,
    /// Failures from one client IP, on any accounts, before that IP locks (password spraying).
    #[serde(deserialize_with = "checked::address_failures")]
    pub ip_max_failures: u32,
    #[serde(deserialize_with = "checked::positive_duration")]
    pub window: Duration,
    #[serde(deserialize_with = "checked::positive_duration")]
    pub lock: Duration,
}

impl Default for Lockout {
    fn default() -> Self {
        Self { max_failures: 5, ip_max_failures: 50, window: Duration::from_secs(900), lock: Duration::from_secs(900) }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    pub registration: Registration,
    /// The contact details `/register` requires besides name, email and password (it asks
    /// for all of them; the rest are optional).
    pub signup_required: Vec<ContactField>,
}

/// A client's contact detail, as a sign-up form asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactField {
    Company,
    Address1,
    Address2,
    City,
    /// The region: state, county or province.
    State,
    Postcode,
    Country,
    Phone,
    TaxId,
}

impl ContactField {
    pub const ALL: [ContactField; 9] = [
        ContactField::Company,
        ContactField::Address1,
        ContactField::Address2,
        ContactField::City,
        ContactField::State,
        ContactField::Postcode,
        ContactField::Country,
        ContactField::Phone,
        ContactField::TaxId,
    ];

    /// The form field's name (the client's column).
    pub fn key(self) -> &'static str {
        match self {
            ContactField::Company => "company",
            ContactField::Address1 => "address1",
            ContactField::Address2 => "address2",
            ContactField::City => "city",
            ContactField::State => "state",
            ContactField::Postcode => "postcode",
            ContactField::Country => "country",
            ContactField::Phone => "phone",
            ContactField::TaxId => "tax_id",
        }
    }

    /// What a person reads beside the field.
    pub fn label(self) -> &'static str {
        match self {
            ContactField::Company => "Company",
            ContactField::Address1 => "Address",
            ContactField::Address2 => "Address (second line)",
            ContactField::City => "City",
            ContactField::State => "State, county or region",
            ContactField::Postcode => "Postcode",
            ContactField::Country => "Country",
            ContactField::Phone => "Phone",
            ContactField::TaxId => "Tax id (VAT number)",
        }
    }
}

/// Who may create a client in the client area (`/register`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Anyone: `/register` creates a client and its owner.
    #[default]
    Open,
    /// Only people an owner invited; `/register` says so.
    InviteOnly,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwoFa {
    pub force_clients: bool,
    pub force_admins: bool,
    /// Passkeys (WebAuthn) for users and admins; they need system_url's host to be a domain name.
    pub passkeys: bool,
    pub duo: Duo,
}

impl Default for TwoFa {
    fn default() -> Self {
        Self { force_clients: false, force_admins: false, passkeys: true, duo: Duo::default() }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Duo {
    pub client_id: String,
    pub client_secret: Secret,
    pub api_hostname: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    Spool,
    Smtp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mail {
    #[serde(deserialize_with = "checked::mailbox")]
    pub from: String,
    pub transport: MailTransport,
    pub spool_dir: String,
    pub smtp: Smtp,
}

impl Default for Mail {
    fn default() -> Self {
        Self {
            from: "gatehouse <noreply@localhost>".into(),
            transport: MailTransport::Spool,
            spool_dir: "gatehouse-data/mail".into(),
            smtp: Smtp::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Secret,
    pub tls: SmtpTls,
}

impl Default for Smtp {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            username: String::new(),
            password: Secret::default(),
            tls: SmtpTls::Starttls,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct License {
    pub key: Secret,
    /// Base URL of the licensing service; empty means not configured.
    pub server: HttpUrl,
    /// Base64 ed25519 public key that signs license responses.
    pub public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cron {
    /// How often the operator schedules `gatehouse cron`.
    pub interval: Duration,
}

impl Default for Cron {
    fn default() -> Self {
        Self { interval: Duration::from_secs(300) }
    }
}

/// What support bundles (`gatehouse report`) carry of the service's own log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportConfig {
    /// The file `serve` logs to; "" = the systemd journal of `journal_unit`.
    pub log_file: String,
    pub journal_unit: String,
    /// How many of the most recent lines.
    pub log_lines: usize,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self { log_file: String::new(), journal_unit: "gatehouse".into(), log_lines: 500 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Doctor {
    pub timeout: Duration,
    pub disk_min_free: ByteSize,
    pub disk_min_free_percent: f64,
    /// Resolvers for DNS probes; empty means the system resolvers.
    pub dns_servers: Vec<String>,
}

impl Default for Doctor {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            disk_min_free: ByteSize(1 << 30),
            disk_min_free_percent: 5.0,
            dns_servers: Vec::new(),
        }
    }
}
