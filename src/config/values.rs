//! Typed configuration values that are written as strings in YAML and the environment.
//!
//! Each type validates itself while it is deserialized, so a bad value is reported by the YAML
//! parser at the exact line and column where it was written.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// Implements `Serialize`/`Deserialize` through `Display`/`FromStr`, with `expected` naming the
/// accepted form in error messages.
macro_rules! string_value {
    ($ty:ty, $expected:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(|e: String| de::Error::custom(format!("{e}; expected {}", $expected)))
            }
        }
    };
}

/// A duration written like `30m`, `12h`, `7d` or `1h 30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }
    pub fn as_std(self) -> std::time::Duration {
        self.0
    }
    pub fn as_secs(self) -> i64 {
        i64::try_from(self.0.as_secs()).unwrap_or(i64::MAX)
    }
}

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty duration".into());
        }
        humantime::parse_duration(s).map(Duration).map_err(|_| format!("invalid duration `{s}`"))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}
string_value!(Duration, "a duration such as `30s`, `15m`, `12h` or `7d`");

/// A size written like `1GiB`, `500MB` or `1048576`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| ByteSize(b.as_u64()))
            .map_err(|e| format!("invalid size `{s}`: {e}"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bytesize::ByteSize(self.0).display().iec_short())
    }
}
string_value!(ByteSize, "a size such as `512MiB` or `1GiB`");

/// An absolute `http://` or `https://` URL, or the empty string for "not configured".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpUrl(Option<url::Url>);

impl HttpUrl {
    pub fn url(&self) -> Option<&url::Url> {
        self.0.as_ref()
    }
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl FromStr for HttpUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Self(None));
        }
        let url = url::Url::parse(s).map_err(|e| format!("invalid URL `{s}`: {e}"))?;
        match url.scheme() {
            "http" | "https" if url.host().is_some() => Ok(Self(Some(url))),
            "http" | "https" => Err(format!("invalid URL `{s}`: no host")),
            other => Err(format!("invalid URL `{s}`: scheme `{other}` is not http or https")),
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(u) => f.write_str(u.as_str()),
            None => Ok(()),
        }
    }
}
string_value!(HttpUrl, "an absolute http:// or https:// URL, or \"\"");

/// The database location: `sqlite://PATH` (relative paths are relative to the working
/// directory) or `postgres://USER:PASSWORD@HOST:PORT/DB`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn backend(&self) -> Backend {
        if self.0.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres }
    }
    /// The path of the SQLite database file, if this is a file-backed SQLite URL.
    pub fn sqlite_path(&self) -> Option<&str> {
        let rest = self.0.strip_prefix("sqlite://").or_else(|| self.0.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && path != ":memory:").then_some(path)
    }
    /// For a relative SQLite path, the same URL with the path resolved against `base`.
    pub fn relative_to(&self, base: &std::path::Path) -> DatabaseUrl {
        match self.sqlite_path() {
            Some(path) if std::path::Path::new(path).is_relative() && !base.as_os_str().is_empty() => {
                let query = self.0.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
                DatabaseUrl(format!("sqlite://{}{query}", base.join(path).display()))
            }
            _ => self.clone(),
        }
    }

    /// The URL with its secrets as `***`, safe to print and log: the password in the
    /// authority, and the value of every query parameter but the few known to be harmless
    /// (a parameter nobody listed may be a secret: `sslpassword=`, a vendor's token…).
    pub fn redacted(&self) -> String {
        let Ok(mut u) = url::Url::parse(&self.0) else { return self.0.clone() };
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
        }
        if u.query_pairs().any(|(k, _)| !is_harmless(&k)) {
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if is_harmless(&k) { v.into_owned() } else { "***".to_string() };
                    (k.into_owned(), v)
                })
                .collect();
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
        u.to_string()
    }

    /// The values of the query parameters [`DatabaseUrl::redacted`] hides, for redactors that
    /// look for them in logs.
    pub fn secret_parameter_values(&self) -> Vec<String> {
        let Ok(u) = url::Url::parse(&self.0) else { return Vec::new() };
        u.query_pairs()
            .filter(|(k, v)| !HARMLESS_PARAMETERS.contains(&&**k) && !v.is_empty())
            .map(|(_, v)| v.into_owned())
            .collect()
    }

    /// The URL to give the PostgreSQL driver: parameters it does not know are left out (it would
    /// log each with its value — `sslpassword=…` in clear), and named, without value, in the
    /// list returned beside it.
    pub fn for_postgres_driver(&self) -> (String, Vec<String>) {
        let Ok(mut u) = url::Url::parse(&self.0) else { return (self.0.clone(), Vec::new()) };
        let (known, unknown): (Vec<_>, Vec<_>) = u
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .partition(|(k, _)| POSTGRES_DRIVER_PARAMETERS.contains(&k.as_str()) || is_server_setting(k));
        if unknown.is_empty() {
            return (self.0.clone(), Vec::new());
        }
        if known.is_empty() {
            u.set_query(None);
        } else {
            u.query_pairs_mut().clear().extend_pairs(known);
        }
        (u.to_string(), unknown.into_iter().map(|(k, _)| k).collect())
    }
}

/// A PostgreSQL server setting passed at connect time (`options=-c …`, `options[search_path]=…`).
fn is_server_setting(key: &str) -> bool {
    key == "options" || key.starts_with("options[") && key.ends_with(']')
}

fn is_harmless(key: &str) -> bool {
    HARMLESS_PARAMETERS.contains(&key) || is_server_setting(key)
}

/// Query parameters of a database URL whose values are never secret (modes, names, paths).
const HARMLESS_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "application_name",
    "mode",
    "cache",
    "immutable",
    "vfs",
];

/// The parameters sqlx's PostgreSQL driver reads (sqlx-postgres `options/parse.rs`).
const POSTGRES_DRIVER_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

impl FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.starts_with("sqlite:") {
            if s == "sqlite:" || s == "sqlite://" {
                return Err(format!("invalid database URL `{s}`: no file path"));
            }
            return Ok(Self(s.to_string()));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            let u =
                url::Url::parse(s).map_err(|e| format!("invalid database URL `{}`: {e}", Self(s.into()).redacted()))?;
            if u.host().is_none() {
                return Err(format!("invalid database URL `{}`: no host", Self(s.into()).redacted()));
            }
            return Ok(Self(s.to_string()));
        }
        let scheme = s.split(':').next().unwrap_or(s);
        Err(format!("unsupported database URL scheme `{scheme}`"))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_value!(DatabaseUrl, "sqlite://PATH or postgres://USER:PASSWORD@HOST/DB");

/// An IANA time zone name, or the empty string for the process's local zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeZone(Option<chrono_tz::Tz>);

impl TimeZone {
    pub fn zone(&self) -> Option<chrono_tz::Tz> {
        self.0
    }
}

impl FromStr for TimeZone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Self(None));
        }
        s.parse::<chrono_tz::Tz>().map(|tz| Self(Some(tz))).map_err(|_| format!("unknown time zone `{s}`"))
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(tz) => f.write_str(tz.name()),
            None => Ok(()),
        }
    }
}
string_value!(TimeZone, "an IANA time zone such as `Europe/London`, or \"\" for the local zone");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for (text, secs) in [("30m", 1800), ("12h", 43200), ("7d", 604_800), ("1h 30m", 5400)] {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.as_secs(), secs, "{text}");
            let again: Duration = d.to_string().parse().unwrap();
            assert_eq!(again, d);
        }
        assert!("ten minutes".parse::<Duration>().is_err());
        assert!("".parse::<Duration>().is_err());
    }

    #[test]
    fn sizes_parse_binary_units() {
        assert_eq!("1GiB".parse::<ByteSize>().unwrap().0, 1 << 30);
        assert_eq!("512 MiB".parse::<ByteSize>().unwrap().0, 512 << 20);
        assert!("lots".parse::<ByteSize>().is_err());
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert!("".parse::<HttpUrl>().unwrap().url().is_none());
        assert!("https://billing.example.com/".parse::<HttpUrl>().is_ok());
        assert!("/clients/".parse::<HttpUrl>().is_err());
        assert!("ftp://example.com/".parse::<HttpUrl>().is_err());
    }

    #[test]
    fn database_urls_are_checked_and_redacted() {
        let pg: DatabaseUrl = "postgres://app:s3cret@db.internal:5432/gh".parse().unwrap();
        assert_eq!(pg.backend(), Backend::Postgres);
        assert_eq!(pg.redacted(), "postgres://app:***@db.internal:5432/gh");
        let in_query: DatabaseUrl =
            "postgres://app@db/gh?sslmode=require&password=s3cret&sslpassword=k3y".parse().unwrap();
        assert_eq!(in_query.redacted(), "postgres://app@db/gh?sslmode=require&password=***&sslpassword=***");
        // A parameter nobody listed may be a secret: hidden too.
        let vendor: DatabaseUrl = "postgres://app@db/gh?application_name=gh&x_vendor_auth=abc123".parse().unwrap();
        assert_eq!(vendor.redacted(), "postgres://app@db/gh?application_name=gh&x_vendor_auth=***");
        assert_eq!(vendor.secret_parameter_values(), vec!["abc123"]);
        // The driver never sees (and so never logs) what it does not know.
        let (for_driver, ignored) = in_query.for_postgres_driver();
        assert_eq!(for_driver, "postgres://app@db/gh?sslmode=require&password=s3cret");
        assert_eq!(ignored, vec!["sslpassword"]);
        assert_eq!(pg.for_postgres_driver(), (pg.as_str().to_string(), Vec::new()));
        let schema: DatabaseUrl = "postgres://app@db/gh?options[search_path]=t1&options=-c%20x%3Dy".parse().unwrap();
        assert_eq!(schema.for_postgres_driver().1, Vec::<String>::new(), "server settings reach the driver");
        assert_eq!(schema.redacted(), schema.as_str(), "and are no secret");
        let lite: DatabaseUrl = "sqlite://gatehouse-data/gatehouse.db".parse().unwrap();
        assert_eq!(lite.sqlite_path(), Some("gatehouse-data/gatehouse.db"));
        assert!("mysql://x".parse::<DatabaseUrl>().is_err());
        assert!("postgres://".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!("Europe/London".parse::<TimeZone>().unwrap().to_string(), "Europe/London");
        assert!("Mars/Olympus".parse::<TimeZone>().is_err());
    }
}

/// A configured secret: the SMTP password, Duo's client secret, the license key. Its `Debug`,
/// `Display` and `Serialize` show `***` (or nothing when unset), so it cannot reach a log line,
/// `config show` or a support bundle by accident; [`Secret::expose`] is the one way to the value.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn shown(&self) -> &'static str {
        if self.0.is_empty() { "" } else { "***" }
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?})", self.shown())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.shown())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.shown())
    }
}
