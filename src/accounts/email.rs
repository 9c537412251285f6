//! Email address validation and the case-insensitive form used for uniqueness.

use std::str::FromStr;

use email_address::EmailAddress;

use crate::error::{Code, Error, Result};

/// A syntactically valid address: `display` as the user wrote it (trimmed), `norm` lower-cased
/// for uniqueness, `domain` lower-cased for the banned-domain rule.
#[derive(Debug, Clone)]
pub(crate) struct Email {
    pub display: String,
    pub norm: String,
    pub domain: String,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        let display = raw.trim().to_string();
        let invalid = || Error::refused(Code::InvalidEmail, format!("`{display}` is not a valid email address"));
        let parsed = EmailAddress::from_str(&display).map_err(|_| invalid())?;
        let domain = parsed.domain().to_ascii_lowercase();
        // Display names (`Ann <ann@x>`) and bracketed IP literals are valid RFC 5322 but not a
        // mailbox we can send a reset link to.
        if parsed.email() != display || !domain.contains('.') || domain.starts_with('[') {
            return Err(invalid());
        }
        Ok(Self { norm: lookup_key(&display), display, domain })
    }
}

/// The key an email is looked up by (`users.email_norm`): as typed, trimmed, lower-case — the
/// `norm` of [`Email::parse`] without its checks, so a lookup of any typed text never fails.
pub(crate) fn lookup_key(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// Normalizes a banned domain as entered: lower-case, without a leading `@` or `.`.
pub(crate) fn normalize_domain(raw: &str) -> Result<String> {
    let d = raw.trim().trim_start_matches(['@', '.']).trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if d.len() > 253 || !d.contains('.') || !d.split('.').all(label_ok) {
        return Err(Error::invalid(format!("`{}` is not a domain name such as example.com", raw.trim())));
    }
    Ok(d)
}

/// True when `raw` parses as an email address gatehouse would accept.
pub fn looks_like_email(raw: &str) -> bool {
    Email::parse(raw).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_normalize_case_insensitively() {
        let e = Email::parse("  Ann.Lee@Example.COM ").unwrap();
        assert_eq!(e.display, "Ann.Lee@Example.COM");
        assert_eq!(e.norm, "ann.lee@example.com");
        assert_eq!(e.domain, "example.com");
        for bad in ["", "ann", "ann@", "@example.com", "ann@localhost", "Ann <ann@example.com>"] {
            assert_eq!(Email::parse(bad).unwrap_err().code(), Code::InvalidEmail, "{bad}");
        }
    }

    #[test]
    fn domains_normalize() {
        assert_eq!(normalize_domain("@Mail.Example.com").unwrap(), "mail.example.com");
        assert!(normalize_domain("not a domain").is_err());
        assert!(normalize_domain("com").is_err());
    }
}
