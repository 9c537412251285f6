//! Secret tokens (sessions, resets, invites, API access): 256 bits from the OS CSPRNG, shown
//! to their holder once, stored only as a SHA-256 digest and compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A freshly generated token: `raw` goes to its holder, `hash` to the database.
pub struct NewToken {
    pub raw: String,
    pub hash: String,
}

/// Generates a token `PREFIX` + 43 URL-safe characters (32 random bytes).
pub fn generate(prefix: &str) -> NewToken {
    let mut bytes = [0u8; 32];
    OsRng.try_fill_bytes(&mut bytes).expect("the OS random number generator is available");
    let raw = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = digest(&raw);
    NewToken { raw, hash }
}

/// Hex SHA-256 of a token, the only form in which tokens are stored.
pub fn digest(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// Constant-time equality, for comparing a presented secret with a stored one.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_stored_as_digest() {
        let t = generate("gh_");
        assert!(t.raw.starts_with("gh_"));
        assert_eq!(URL_SAFE_NO_PAD.decode(&t.raw[3..]).unwrap().len(), 32);
        assert_eq!(t.hash, digest(&t.raw));
        assert_eq!(t.hash.len(), 64);
        assert!(!t.hash.contains(&t.raw[3..]));
        assert_ne!(generate("gh_").raw, t.raw);
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
    }
}
