//! The verification protocol, as a vendor serves it (README, "Licensing"):
//!
//! `POST {license.server}v1/verify` with a JSON [`Request`]; the answer is a [`Signed`]
//! envelope: `payload` is the base64 of an [`Answer`]'s JSON and `signature` the base64
//! ed25519 signature of those payload bytes, made with the key whose public half is
//! `license.public_key`. Anything else — an HTML page from a proxy, a payload that does not
//! verify — is no answer at all.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Which kind of process asks: the answer (and the facts sent) can differ between them, which
/// is exactly the troubleshooting row "license key is invalid from a non-web context".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Context {
    #[default]
    Web,
    Cron,
    Cli,
}

impl Context {
    pub fn as_str(self) -> &'static str {
        match self {
            Context::Web => "web",
            Context::Cron => "cron",
            Context::Cli => "cli",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Context::Web, Context::Cron, Context::Cli].into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Context {
    type Error = crate::Error;
    fn try_from(stored: String) -> crate::error::Result<Self> {
        Self::parse(&stored).ok_or_else(|| crate::Error::Internal(format!("unknown process kind {stored:?}")))
    }
}

crate::stored_as!(Context, String);

/// Where this installation is: what a license is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// system_url's host; `None` when system_url is empty.
    pub domain: Option<String>,
    /// The local address this host uses to reach the licensing server.
    pub ip: Option<String>,
    /// The install directory: the configuration file's directory.
    pub directory: String,
}

impl Facts {
    /// Each fact that differs from `other`'s, as `(name, mine, theirs)`.
    pub fn differences(&self, other: &Facts) -> Vec<(&'static str, String, String)> {
        let show = |v: &Option<String>, what: &str| v.clone().unwrap_or_else(|| format!("(none: {what})"));
        let mut out = Vec::new();
        if self.domain != other.domain {
            out.push(("domain", show(&self.domain, "system_url is empty"), show(&other.domain, "system_url is empty")));
        }
        if self.ip != other.ip {
            out.push(("ip", show(&self.ip, "not connected"), show(&other.ip, "not connected")));
        }
        if self.directory != other.directory {
            out.push(("directory", self.directory.clone(), other.directory.clone()));
        }
        out
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub key: String,
    pub instance_id: String,
    pub facts: Facts,
    pub context: Context,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Invalid,
    Suspended,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Invalid => "invalid",
            Status::Suspended => "suspended",
            Status::Expired => "expired",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a license is bound to; an empty list binds nothing of that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Binding {
    pub domains: Vec<String>,
    pub ips: Vec<String>,
    pub directories: Vec<String>,
}

impl std::fmt::Display for Binding {
    /// "domain portal.example.com; directory /srv/gatehouse", or "not bound".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [("domain", &self.domains), ("IP", &self.ips), ("directory", &self.directories)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(what, v)| format!("{what} {}", v.join(", ")))
            .collect();
        if parts.is_empty() { f.write_str("not bound") } else { f.write_str(&parts.join("; ")) }
    }
}

impl Binding {
    /// How `facts` fall outside this binding, one sentence per fact, for a process that runs
    /// as `who` ("web", "cron"): "licensed for directory /srv/gatehouse; cron runs from …".
    pub fn mismatches(&self, facts: &Facts, who: &str) -> Vec<String> {
        fn outside(list: &[String], value: Option<&str>) -> bool {
            !list.is_empty() && !value.is_some_and(|v| list.iter().any(|l| l.eq_ignore_ascii_case(v)))
        }
        let mut out = Vec::new();
        if outside(&self.domains, facts.domain.as_deref()) {
            let actual = facts.domain.as_deref().map_or("has no system_url".to_string(), |d| format!("serves {d}"));
            out.push(format!("licensed for domain {}; {who} {actual}", self.domains.join(", ")));
        }
        if outside(&self.ips, facts.ip.as_deref()) {
            let actual = facts.ip.as_deref().unwrap_or("unknown");
            out.push(format!("licensed for IP {}; {who} connects from {actual}", self.ips.join(", ")));
        }
        if outside(&self.directories, Some(&facts.directory)) {
            out.push(format!(
                "licensed for directory {}; {who} runs from {}",
                self.directories.join(", "),
                facts.directory
            ));
        }
        out
    }
}

/// The licensing server's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The id of the key asked about (`LicenseKey::id`): an answer for another key is no answer.
    pub key_id: String,
    pub status: Status,
    pub binding: Binding,
    /// Why, in the vendor's words ("directory /home/x is not licensed", "payment overdue").
    #[serde(default)]
    pub reason: String,
    pub checked_at: DateTime<Utc>,
    pub next_check_at: DateTime<Utc>,
}

/// A signed answer, as sent and as cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    pub payload: String,
    pub signature: String,
}

impl Signed {
    /// Signs `answer` (what a licensing server does; the tests' fake server uses it).
    pub fn sign(answer: &Answer, key: &SigningKey) -> Self {
        let bytes = serde_json::to_vec(answer).expect("an answer serializes");
        Self { payload: B64.encode(&bytes), signature: B64.encode(key.sign(&bytes).to_bytes()) }
    }

    /// The answer, when the signature verifies against `public_key`; why not otherwise.
    pub fn open(&self, public_key: &VerifyingKey) -> Result<Answer, String> {
        let bytes = B64.decode(&self.payload).map_err(|e| format!("payload is not base64: {e}"))?;
        let signature = B64
            .decode(&self.signature)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
            .ok_or("signature is not a base64 ed25519 signature")?;
        public_key
            .verify_strict(&bytes, &signature)
            .map_err(|_| "the signature does not verify against license.public_key".to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| format!("signed payload is not a license answer: {e}"))
    }
}

/// `license.public_key` (base64 of the 32-byte ed25519 key).
pub fn public_key(base64: &str) -> Result<VerifyingKey, String> {
    if base64.trim().is_empty() {
        return Err("license.public_key is empty: answers cannot be verified without the vendor's public key".into());
    }
    let bytes = B64.decode(base64.trim()).map_err(|e| format!("license.public_key is not base64: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("license.public_key is {} bytes; an ed25519 public key is 32", b.len()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("license.public_key is not an ed25519 key: {e}"))
}

/// The base64 form of a public key, as `license.public_key` takes it.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    B64.encode(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> Answer {
        Answer {
            key_id: "abcd".into(),
            status: Status::Active,
            binding: Binding { directories: vec!["/srv/gatehouse".into()], ..Binding::default() },
            reason: String::new(),
            checked_at: Utc::now(),
            next_check_at: Utc::now(),
        }
    }

    #[test]
    fn a_signed_answer_opens_with_its_key_and_not_after_tampering_or_with_another_key() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signed = Signed::sign(&answer(), &key);
        assert_eq!(signed.open(&key.verifying_key()).unwrap(), answer_with(&signed));

        let other = SigningKey::from_bytes(&[2; 32]);
        assert!(signed.open(&other.verifying_key()).unwrap_err().contains("does not verify"));

        let mut tampered = answer_with(&signed);
        tampered.status = Status::Active;
        tampered.binding.directories = vec!["/home/ops".into()];
        let forged = Signed { payload: B64.encode(serde_json::to_vec(&tampered).unwrap()), ..signed };
        assert!(forged.open(&key.verifying_key()).unwrap_err().contains("does not verify"));
    }

    fn answer_with(signed: &Signed) -> Answer {
        serde_json::from_slice(&B64.decode(&signed.payload).unwrap()).unwrap()
    }

    #[test]
    fn mismatches_name_the_licensed_value_and_the_process_value() {
        let binding = Binding {
            domains: vec!["portal.example.com".into()],
            ips: vec![],
            directories: vec!["/srv/gatehouse".into()],
        };
        let facts = Facts { domain: None, ip: Some("10.0.0.9".into()), directory: "/home/ops/gatehouse".into() };
        assert_eq!(
            binding.mismatches(&facts, "cron"),
            vec![
                "licensed for domain portal.example.com; cron has no system_url",
                "licensed for directory /srv/gatehouse; cron runs from /home/ops/gatehouse",
            ]
        );
        let home = Facts { domain: Some("PORTAL.example.com".into()), ip: None, directory: "/srv/gatehouse".into() };
        assert!(binding.mismatches(&home, "web").is_empty());
    }

    #[test]
    fn a_public_key_of_the_wrong_size_is_named() {
        assert!(public_key("").unwrap_err().contains("is empty"));
        assert!(public_key("AAAA").unwrap_err().contains("3 bytes"));
        let key = SigningKey::from_bytes(&[3; 32]).verifying_key();
        assert_eq!(public_key(&encode_public_key(&key)).unwrap(), key);
    }
}
