//! Redaction for support bundles: configured secrets by value, and anything shaped like a
//! secret (password hashes, tokens) or personal (email local parts) by pattern. Counts what it
//! replaced so the manifest can say so.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::config::Config;
use crate::secrets::tokens;

pub const MASK: &str = "***";

static PATTERNS: LazyLock<Vec<(&'static str, Regex, &'static str)>> = LazyLock::new(|| {
    vec![
        ("password_hash", Regex::new(r#"\$argon2(?:id|i|d)\$[^\s"'<>]+"#).unwrap(), MASK),
        ("password_hash", Regex::new(r#"\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}"#).unwrap(), MASK),
        ("password_hash", Regex::new(r#"\b[0-9a-f]{32}:[^\s"'<>]{5}\b"#).unwrap(), MASK),
        ("token", tokens::pattern().clone(), MASK),
        ("email", Regex::new(r"\b([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+\.[A-Za-z0-9.-]+)").unwrap(), "$1***@$2"),
    ]
});

/// Replaces secrets in text files headed for a bundle.
pub struct Redactor {
    secrets: Vec<(&'static str, String)>,
    pub counts: BTreeMap<&'static str, usize>,
}

impl Redactor {
    /// Knows the secret values of `config` (database password, SMTP password, Duo client
    /// secret, license key), so they are caught wherever they appear.
    pub fn new(config: &Config) -> Self {
        let mut secrets = Vec::new();
        if let Ok(url) = url::Url::parse(config.database_url.as_str())
            && let Some(pw) = url.password()
        {
            secrets.push(("database_password", pw.to_string()));
            if let Ok(decoded) = percent_encoding::percent_decode_str(pw).decode_utf8() {
                secrets.push(("database_password", decoded.into_owned()));
            }
        }
        // Query parameters that may be secrets (`sslpassword=`…), wherever a driver echoed them.
        for value in config.database_url.secret_parameter_values().into_iter().filter(|v| v.len() >= 4) {
            let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
            if encoded != value {
                secrets.push(("database_password", encoded));
            }
            secrets.push(("database_password", value));
        }
        for (kind, value) in [
            ("smtp_password", &config.mail.smtp.password),
            ("duo_client_secret", &config.twofa.duo.client_secret),
            ("license_key", &config.license.key),
        ] {
            if !value.is_empty() {
                secrets.push((kind, value.expose().to_owned()));
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        Self { secrets, counts: BTreeMap::new() }
    }

    pub fn redact(&mut self, text: &str) -> String {
        let mut out = text.to_string();
        for (kind, secret) in &self.secrets {
            let n = out.matches(secret.as_str()).count();
            if n > 0 {
                out = out.replace(secret.as_str(), MASK);
                *self.counts.entry(kind).or_default() += n;
            }
        }
        for (kind, pattern, replacement) in PATTERNS.iter() {
            let n = pattern.find_iter(&out).count();
            if n > 0 {
                out = pattern.replace_all(&out, *replacement).into_owned();
                *self.counts.entry(kind).or_default() += n;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::tokens::TokenKind;

    #[test]
    fn secrets_hashes_tokens_and_emails_are_masked() {
        let mut config = Config::default();
        config.mail.smtp.password = "CANARY-SMTP".into();
        config.license.key = "CANARY-LICENSE".into();
        config.database_url = "postgres://app:CANARY%2FDB@db/gh".parse().unwrap();
        let mut r = Redactor::new(&config);
        let token = format!("gh_{}", "A".repeat(43));
        let text = format!(
            "smtp CANARY-SMTP lic CANARY-LICENSE db CANARY/DB and CANARY%2FDB \
             hash $argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g token {token} mail ann.lee@example.com"
        );
        let out = r.redact(&text);
        for leaked in ["CANARY", "argon2id", &token, "ann.lee"] {
            assert!(!out.contains(leaked), "{leaked} in {out}");
        }
        assert!(out.contains("a***@example.com"), "{out}");
        assert_eq!(r.counts["database_password"], 2);
        assert_eq!(r.counts["password_hash"], 1);
        assert_eq!(r.counts["token"], 1);
    }

    /// Every kind of token the service mints is caught — in a URL, a log line, a cookie header.
    #[test]
    fn every_kind_of_token_is_masked() {
        let mut r = Redactor::new(&Config::default());
        for kind in TokenKind::ALL {
            let raw = tokens::mint(kind).raw;
            for text in [
                format!("GET /password/reset/{raw} 200"),
                format!("cookie: gatehouse_session={raw}; Path=/"),
                format!("token={raw}"),
            ] {
                let out = r.redact(&text);
                assert!(!out.contains(&raw), "{kind:?} token leaked: {out}");
            }
        }
        assert_eq!(r.counts["token"], 3 * TokenKind::ALL.len());
        let unprefixed = tokens::random().raw;
        assert_eq!(r.redact(&unprefixed), unprefixed, "a random value that names nothing is left alone");
    }
}
