//! Values that parse but cannot work, refused when the file is read — with the file, line and
//! column serde-saphyr attaches to the error — instead of failing later at run time.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, de};

use super::Duration;

/// The longest password accepted (bytes): argon2 cost must not be an attacker's lever.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The shortest minimum length a deployment may set.
pub const MIN_PASSWORD_LENGTH: usize = 8;

/// A trusted proxy entry: an address or a CIDR range (host bits dropped).
pub fn parse_trusted(entry: &str) -> Result<IpNet, String> {
    let e = entry.trim();
    if let Ok(net) = e.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    Err(format!("`{e}` is not an IP address or CIDR range (such as 10.0.0.0/8 or 2001:db8::/32)"))
}

pub(super) fn trusted_ranges<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let ranges = Vec::<String>::deserialize(d)?;
    for r in &ranges {
        parse_trusted(r).map_err(de::Error::custom)?;
    }
    Ok(ranges)
}

/// `HOST:PORT` with a port that exists (0 asks the system for a free one).
pub(super) fn listen_address<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = String::deserialize(d)?;
    let Some((host, port)) = raw.rsplit_once(':') else {
        return Err(de::Error::custom(format!("`{raw}` has no port; expected HOST:PORT such as 127.0.0.1:8080")));
    };
    if host.is_empty() {
        return Err(de::Error::custom(format!("`{raw}` has no host; expected HOST:PORT such as 127.0.0.1:8080")));
    }
    port.parse::<u16>()
        .map_err(|_| de::Error::custom(format!("port `{port}` in `{raw}` is not a port number (0 to 65535)")))?;
    Ok(raw)
}

pub(super) fn password_min_length<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if n > MAX_PASSWORD_BYTES {
        return Err(de::Error::custom(format!(
            "{n} cannot work: passwords are at most {MAX_PASSWORD_BYTES} bytes; expected 8 to {MAX_PASSWORD_BYTES} \
             (12 or more recommended)"
        )));
    }
    // NIST SP 800-63B-4 and OWASP ASVS 6.2.1: never fewer than 8 characters.
    if n < MIN_PASSWORD_LENGTH {
        return Err(de::Error::custom(format!(
            "{n} is too short to protect anything: expected {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_BYTES} (12 or more recommended)"
        )));
    }
    Ok(n)
}

/// A count that must allow at least one (zero would refuse everything).
pub(super) fn at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if n == 0 {
        return Err(de::Error::custom("0 would refuse every connection; expected 1 or more, such as 10000"));
    }
    Ok(n)
}

/// Failures on one account before it locks: at least one (zero would lock before the first
/// try) and at most 100 (NIST SP 800-63B-4's bound on consecutive failures per account).
pub(super) fn account_failures<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if !(1..=100).contains(&n) {
        return Err(de::Error::custom(format!(
            "{n} cannot work: expected 1 to 100 failures before an account locks (5 recommended)"
        )));
    }
    Ok(n)
}

/// Failures from one address before it locks: at least one.
pub(super) fn address_failures<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if n == 0 {
        return Err(de::Error::custom(
            "0 would lock every address before its first try; expected 1 or more, such as 50",
        ));
    }
    Ok(n)
}

/// system_url: every emailed link and the cookie are built from it, so it carries no
/// credentials (they would be in every link), no query and no fragment (relative links break).
pub(super) fn system_url<'de, D: Deserializer<'de>>(d: D) -> Result<super::HttpUrl, D::Error> {
    let raw = String::deserialize(d)?;
    let parsed: super::HttpUrl = raw.parse().map_err(de::Error::custom)?;
    if let Some(url) = parsed.url() {
        let problem = if !url.username().is_empty() || url.password().is_some() {
            Some("holds a user name or password, which every emailed link would carry")
        } else if url.query().is_some() {
            Some("has a query (`?…`), which breaks every link built under it")
        } else if url.fragment().is_some() {
            Some("has a fragment (`#…`), which breaks every link built under it")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(de::Error::custom(format!(
                "`{}` {problem}; expected the plain address users open, such as https://billing.example.com/",
                raw.trim()
            )));
        }
    }
    Ok(parsed)
}

/// A timeout, lockout window or lock that is not zero (zero would count nothing, or lock nothing).
pub(super) fn positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let v = Duration::deserialize(d)?;
    if v.as_secs() == 0 {
        return Err(de::Error::custom(format!("`{v}` is zero; expected a duration of at least 1s, such as 15m")));
    }
    Ok(v)
}

/// A sender as mail headers need it: `Name <address>` or `address`, on one line.
pub(super) fn mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = String::deserialize(d)?;
    if raw.chars().any(char::is_control) {
        return Err(de::Error::custom(
            "contains a line break or control character, which would let it add mail headers; expected \
             `Name <address@example.com>` on one line",
        ));
    }
    raw.parse::<lettre::message::Mailbox>().map_err(|e| {
        de::Error::custom(format!("`{raw}` is not a mail address ({e}); expected `Name <address@example.com>`"))
    })?;
    Ok(raw)
}
