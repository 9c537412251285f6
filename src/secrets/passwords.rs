//! Password and security-answer hashing: argon2id in PHC string format, with the OWASP
//! minimum parameters (m=19456 KiB, t=2, p=1, the argon2 crate's defaults).
//!
//! Legacy hashes imported from older billing systems (bcrypt `$2a$/$2b$/$2y$`, and salted MD5
//! stored as `md5(salt . password):salt`) verify once; the caller then stores an argon2id hash
//! in the same transaction. Hashing is deliberately slow, so the async faces call the `*_async`
//! variants, which run on the hashing threads (`hasher`) instead of the async workers.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use md5::{Digest, Md5};

use super::hasher;
pub use super::hasher::{Memory, Requester};

use crate::error::{Code, Error, Result};

/// The longest password accepted, in bytes: long enough for any passphrase, short enough that
/// hashing cannot be used to exhaust memory or CPU.
pub use crate::config::MAX_PASSWORD_BYTES;

/// Checks the policy (length only: no composition rules, per ASVS) and hashes.
pub fn hash_new_password(password: &str, min_length: usize) -> Result<String> {
    hash_new_password_in(&mut Memory::default(), password, min_length)
}

fn hash_new_password_in(memory: &mut Memory, password: &str, min_length: usize) -> Result<String> {
    let chars = password.chars().count();
    if chars < min_length {
        return Err(Error::refused(
            Code::WeakPassword,
            format!("choose a password of at least {min_length} characters (this one has {chars})"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::refused(
            Code::WeakPassword,
            format!("choose a password of at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    hasher::hash_in(memory, password.as_bytes())
}

/// Hashes a secret with argon2id and a fresh random salt.
pub fn hash(secret: &str) -> Result<String> {
    hasher::hash_in(&mut Memory::default(), secret.as_bytes())
}

/// Verifies a secret against a stored PHC string; any malformed hash verifies as false.
pub fn verify(secret: &str, phc: &str) -> bool {
    verify_in(&mut Memory::default(), secret, phc)
}

/// [`verify`] in a working area the caller keeps for its next hash, as each hashing thread
/// keeps its own: the hash alone, with no memory to fault in and zero (the serve benchmark's
/// ceiling for logins).
pub fn verify_in(memory: &mut Memory, secret: &str, phc: &str) -> bool {
    hasher::verify_in(memory, secret.as_bytes(), phc)
}

/// How every hash gatehouse makes begins (PHC string up to the salt): a hash that starts so is
/// `argon2id` at the policy without looking further.
pub const POLICY_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

/// The kind of a stored password hash, named in audit entries and the doctor's evidence as
/// `argon2id`, `argon2id_weak`, `argon2_other`, `bcrypt`, `md5_salted` or `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HashKind {
    /// argon2id at or above the OWASP minimum: what gatehouse makes.
    Argon2id,
    /// argon2id below the OWASP minimum.
    Argon2idWeak,
    /// argon2i or argon2d.
    Argon2Other,
    /// `$2a$`, `$2b$` or `$2y$` (PHP).
    Bcrypt,
    /// `md5(salt . password):salt`.
    Md5Salted,
    Unknown,
}

impl HashKind {
    pub fn of(hash: &str) -> Self {
        if let Some(rest) = hash.strip_prefix("$argon2id$") {
            // $argon2id$v=19$m=19456,t=2,p=1$salt$hash
            let params: BTreeMap<&str, u64> = rest
                .split('$')
                .nth(1)
                .unwrap_or_default()
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
                .collect();
            let strong = params.get("m").copied().unwrap_or(0) >= 19456 && params.get("t").copied().unwrap_or(0) >= 2;
            return if strong { Self::Argon2id } else { Self::Argon2idWeak };
        }
        if hash.starts_with("$argon2") {
            Self::Argon2Other
        } else if hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$") {
            Self::Bcrypt
        } else if hash.len() == 38 && hash.as_bytes()[32] == b':' && hash[..32].bytes().all(|b| b.is_ascii_hexdigit()) {
            Self::Md5Salted
        } else {
            Self::Unknown
        }
    }

    /// Made by gatehouse's policy or stronger: nothing to upgrade.
    pub fn is_current(self) -> bool {
        self == Self::Argon2id
    }
}

/// The result of checking a password against any supported stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The password matched a legacy or below-policy hash: store a fresh argon2id hash now.
    pub rehash: bool,
}

/// Verifies a password against an argon2 PHC string, a legacy bcrypt hash or a salted MD5 hash.
pub fn verify_any(password: &str, stored: &str) -> Verified {
    verify_any_in(&mut Memory::default(), password, stored)
}

fn verify_any_in(memory: &mut Memory, password: &str, stored: &str) -> Verified {
    let kind = HashKind::of(stored);
    let ok = match kind {
        HashKind::Argon2id | HashKind::Argon2idWeak | HashKind::Argon2Other => {
            hasher::verify_in(memory, password.as_bytes(), stored)
        }
        // PHP writes `$2y$`; the algorithm is the same as `$2b$`.
        HashKind::Bcrypt => bcrypt::verify(password, &stored.replacen("$2y$", "$2b$", 1)).unwrap_or(false),
        HashKind::Md5Salted => {
            let (digest, salt) = stored.split_at(32);
            let salt = &salt[1..];
            let mut md5 = Md5::new();
            md5.update(salt.as_bytes());
            md5.update(password.as_bytes());
            crate::secrets::tokens::ct_eq(&hex::encode(md5.finalize()), &digest.to_ascii_lowercase())
        }
        HashKind::Unknown => false,
    };
    Verified { ok, rehash: ok && !kind.is_current() }
}

/// A hash that costs as much to "verify" as a real one, so that a login for an unknown email
/// takes about as long as one for a known email.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("gatehouse timing equaliser").expect("argon2 hashing works"))
}

/// [`verify_any`] on the hashing threads.
pub async fn verify_any_async(password: &str, stored: &str, requester: Requester<'_>) -> Result<Verified> {
    let (password, stored) = (password.to_owned(), stored.to_owned());
    hasher::run(requester, move |memory| verify_any_in(memory, &password, &stored)).await
}

/// [`hash_new_password`] on the hashing threads.
pub async fn hash_new_password_async(password: &str, min_length: usize, requester: Requester<'_>) -> Result<String> {
    let password = password.to_owned();
    hasher::run(requester, move |memory| hash_new_password_in(memory, &password, min_length)).await?
}

/// [`hash`] on the hashing threads.
pub async fn hash_async(secret: &str, requester: Requester<'_>) -> Result<String> {
    let secret = secret.to_owned();
    hasher::run(requester, move |memory| hasher::hash_in(memory, secret.as_bytes())).await?
}

/// Security answers are compared after trimming and lower-casing, so "  Fluffy" matches "fluffy".
pub fn normalize_answer(answer: &str) -> String {
    answer.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters() {
        let h = hash("correct horse battery staple").unwrap();
        assert!(h.starts_with(POLICY_PREFIX), "{h}");
        assert_eq!(HashKind::of(&h), HashKind::Argon2id);
        assert!(verify("correct horse battery staple", &h));
        assert!(!verify("correct horse battery stapler", &h));
        assert!(!verify("anything", "not a hash"));
    }

    #[test]
    fn legacy_hashes_verify_and_ask_for_a_rehash() {
        let bcrypt_2y =
            bcrypt::hash_with_result("hunter2 hunter2", 4).unwrap().format_for_version(bcrypt::Version::TwoY);
        assert!(bcrypt_2y.starts_with("$2y$"));
        assert_eq!(verify_any("hunter2 hunter2", &bcrypt_2y), Verified { ok: true, rehash: true });
        assert!(!verify_any("hunter3 hunter3", &bcrypt_2y).ok);

        // md5("abcde" . "password123")
        let md5 = format!("{}:abcde", hex::encode(Md5::digest(b"abcdepassword123")));
        assert_eq!(HashKind::of(&md5), HashKind::Md5Salted);
        assert_eq!(verify_any("password123", &md5), Verified { ok: true, rehash: true });
        assert!(!verify_any("password124", &md5).ok);

        let current = hash("a modern password").unwrap();
        assert_eq!(verify_any("a modern password", &current), Verified { ok: true, rehash: false });
        assert_eq!(verify_any("x", "plaintext"), Verified { ok: false, rehash: false });
    }

    #[test]
    fn hash_kinds() {
        assert_eq!(HashKind::of("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"), HashKind::Argon2id);
        assert_eq!(HashKind::of("$argon2id$v=19$m=4096,t=1,p=1$c2FsdA$aGFzaA"), HashKind::Argon2idWeak);
        assert_eq!(HashKind::of("$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"), HashKind::Argon2Other);
        assert_eq!(HashKind::of("$2y$10$abcdefghijklmnopqrstuv"), HashKind::Bcrypt);
        assert_eq!(HashKind::of("5f4dcc3b5aa765d61d8327deb882cf99:abcde"), HashKind::Md5Salted);
        assert_eq!(HashKind::of("plaintext"), HashKind::Unknown);
        // The names audit entries and the doctor's evidence use.
        let named = serde_json::to_value([HashKind::Argon2idWeak, HashKind::Argon2Other, HashKind::Md5Salted]).unwrap();
        assert_eq!(named, serde_json::json!(["argon2id_weak", "argon2_other", "md5_salted"]));
    }

    #[test]
    fn policy_is_length_only() {
        assert_eq!(hash_new_password("short", 12).unwrap_err().code(), Code::WeakPassword);
        assert!(hash_new_password("alllowercaseletters", 12).is_ok());
        let huge = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(hash_new_password(&huge, 12).unwrap_err().code(), Code::WeakPassword);
    }
}
