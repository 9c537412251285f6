//! Password and security-answer hashing: argon2id in PHC string format, with the OWASP
//! minimum parameters (m=19456 KiB, t=2, p=1, the argon2 crate's defaults).
//!
//! Legacy hashes imported from older billing systems (bcrypt `$2a$/$2b$/$2y$`, and salted MD5
//! stored as `md5(salt . password):salt`) verify once; the caller then stores an argon2id hash
//! in the same transaction. Hashing is deliberately slow, so the async faces call the `*_async`
//! variants, which run on the hashing threads (`hasher`) instead of the async workers.

use std::collections::BTreeMap;

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
    /// An argon2 or bcrypt hash whose parameters cost more than gatehouse will run (see
    /// [`MAX_ARGON2_MEMORY_KIB`]): refused at import, never verified.
    TooCostly,
    Unknown,
}

/// The costliest stored hash gatehouse verifies. A stored hash names its own parameters and
/// verifying runs them, on a hashing thread any visitor who knows the email can ask for: argon2
/// with m = 4 GiB would abort the process on its allocation, bcrypt at cost 31 would hold a
/// thread for a day and a half. The limits allow about 13 times the policy's cost (OWASP's
/// strongest argon2id setting is m = 47104 KiB, t = 1; PHP's bcrypt default is cost 10).
pub const MAX_ARGON2_MEMORY_KIB: u64 = 65_536;
/// See [`MAX_ARGON2_MEMORY_KIB`].
pub const MAX_ARGON2_PASSES: u64 = 4;
/// See [`MAX_ARGON2_MEMORY_KIB`]: argon2 lanes, each a thread's worth of work in the reference.
pub const MAX_ARGON2_LANES: u64 = 8;
/// See [`MAX_ARGON2_MEMORY_KIB`]: about 0.6 s of one core.
pub const MAX_BCRYPT_COST: u32 = 13;

impl HashKind {
    pub fn of(hash: &str) -> Self {
        if let Some(variant) = ["$argon2id$", "$argon2i$", "$argon2d$"].into_iter().find(|v| hash.starts_with(*v)) {
            // $argon2id$v=19$m=19456,t=2,p=1$salt$hash. Every name=value of every part, in any
            // order, the largest where a name repeats: what the limits see must be at least what
            // the verifier would run (salt and hash are base64 without padding: no `=`).
            let mut params: BTreeMap<&str, u64> = BTreeMap::new();
            for (name, value) in hash[variant.len()..].split(['$', ',']).filter_map(|kv| kv.split_once('=')) {
                let value = value.parse().unwrap_or(u64::MAX);
                params.entry(name).and_modify(|v| *v = (*v).max(value)).or_insert(value);
            }
            let param = |name| params.get(name).copied().unwrap_or(0);
            if param("m") > MAX_ARGON2_MEMORY_KIB || param("t") > MAX_ARGON2_PASSES || param("p") > MAX_ARGON2_LANES {
                return Self::TooCostly;
            }
            return match (variant, param("m") >= 19456 && param("t") >= 2) {
                ("$argon2id$", true) => Self::Argon2id,
                ("$argon2id$", false) => Self::Argon2idWeak,
                _ => Self::Argon2Other,
            };
        }
        if hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$") {
            // $2y$10$…: a cost the bcrypt crate would refuse verifies as false anyway.
            let cost = hash.get(4..6).and_then(|c| c.parse::<u32>().ok()).unwrap_or(0);
            if cost > MAX_BCRYPT_COST { Self::TooCostly } else { Self::Bcrypt }
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
        HashKind::TooCostly | HashKind::Unknown => false,
    };
    Verified { ok, rehash: ok && !kind.is_current() }
}

/// A hash that costs as much to "verify" as a real one, so that a login for an unknown email
/// takes about as long as one for a known email. A constant (argon2id at the policy, of a
/// phrase nobody types): made at first use, it was a full hash on an async worker, outside the
/// hashing threads, for whoever signed in first.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$GvX8zP3oneFtmGE7U63Ckg$3BD/65qpFsBvpnMrmfVuSp2VlE3xgILE866JeJAtgd0";

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
    fn the_dummy_hash_costs_a_real_verify() {
        assert!(DUMMY_HASH.starts_with(POLICY_PREFIX));
        assert!(verify("gatehouse timing equaliser", DUMMY_HASH), "a real hash: verifying it is a full argon2id run");
    }

    /// A stored hash cannot make gatehouse run more than about 13 times the policy's cost:
    /// beyond the limits it is not verified at all, so a visitor who knows the email cannot
    /// hold a hashing thread for a day or abort the process with one wrong password.
    #[test]
    fn hashes_costlier_than_the_limits_are_never_run() {
        for costly in [
            "$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=4294967295,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2i$v=19$m=65537,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2d$v=19$m=19456,t=2,p=255$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$2y$31$abcdefghijklmnopqrstuuAbCdEfGhIjKlMnOpQrStUvWxYz01234",
            "$2b$14$abcdefghijklmnopqrstuuAbCdEfGhIjKlMnOpQrStUvWxYz01234",
            "$argon2id$v=19$t=2,m=4294967295,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1,m=4294967295$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=99999999999999999999999,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert_eq!(HashKind::of(costly), HashKind::TooCostly, "{costly}");
            // Returns at once: were it run, the first would abort and the fifth take a day.
            assert_eq!(verify_any("anything", costly), Verified { ok: false, rehash: false }, "{costly}");
        }
        use argon2::password_hash::PasswordHasher;
        let at_the_limits = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(65_536, 1, 1, None).unwrap(),
        );
        let hash = at_the_limits.hash_password(b"still verified").unwrap().to_string();
        assert_eq!(HashKind::of(&hash), HashKind::Argon2idWeak, "one pass: below the policy, yet verified");
        assert!(verify_any("still verified", &hash).ok);
    }

    #[test]
    fn hash_kinds() {
        assert_eq!(HashKind::of("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"), HashKind::Argon2id);
        assert_eq!(HashKind::of("$argon2id$v=19$m=4096,t=1,p=1$c2FsdA$aGFzaA"), HashKind::Argon2idWeak);
        assert_eq!(HashKind::of("$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"), HashKind::Argon2Other);
        assert_eq!(HashKind::of("$2y$10$abcdefghijklmnopqrstuv"), HashKind::Bcrypt);
        assert_eq!(HashKind::of("5f4dcc3b5aa765d61d8327deb882cf99:abcde"), HashKind::Md5Salted);
        assert_eq!(HashKind::of("plaintext"), HashKind::Unknown);
        assert_eq!(HashKind::of("$argon2d$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"), HashKind::Argon2Other);
        assert_eq!(HashKind::of("$argon2id$m=19456,t=2,p=1$c2FsdA$aGFzaA"), HashKind::Argon2id, "no version part");
        assert_eq!(HashKind::of("$2b$13$abcdefghijklmnopqrstuv"), HashKind::Bcrypt);
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
