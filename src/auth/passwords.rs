//! Password and security-answer hashing: argon2id in PHC string format, with the OWASP
//! minimum parameters (m=19456 KiB, t=2, p=1, the argon2 crate's defaults).

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};

use crate::error::{Error, Result, code};

/// The longest password accepted, in bytes: long enough for any passphrase, short enough that
/// hashing cannot be used to exhaust memory or CPU.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks the policy (length only: no composition rules, per ASVS) and hashes.
pub fn hash_new_password(password: &str, min_length: usize) -> Result<String> {
    let chars = password.chars().count();
    if chars < min_length {
        return Err(Error::refused(
            code::WEAK_PASSWORD,
            format!("password must be at least {min_length} characters long (got {chars})"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::refused(
            code::WEAK_PASSWORD,
            format!("password must be at most {MAX_PASSWORD_BYTES} bytes long"),
        ));
    }
    hash(password)
}

/// Hashes a secret with argon2id and a fresh random salt.
pub fn hash(secret: &str) -> Result<String> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}

/// Verifies a secret against a stored PHC string; any malformed hash verifies as false.
pub fn verify(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
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
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery staple", &h));
        assert!(!verify("correct horse battery stapler", &h));
        assert!(!verify("anything", "not a hash"));
    }

    #[test]
    fn policy_is_length_only() {
        assert_eq!(hash_new_password("short", 12).unwrap_err().code(), code::WEAK_PASSWORD);
        assert!(hash_new_password("alllowercaseletters", 12).is_ok());
        let huge = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(hash_new_password(&huge, 12).unwrap_err().code(), code::WEAK_PASSWORD);
    }
}
