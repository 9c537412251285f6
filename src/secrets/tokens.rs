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

/// Every kind of bearer token gatehouse hands out, with the prefix that names it. One list: the
/// support-bundle redactor masks exactly these shapes, so a new kind cannot slip past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An admin API token (`Authorization: Bearer`).
    Api,
    /// A session cookie's value.
    Session,
    /// A link in an invitation email.
    Invite,
    /// A link in a password-reset email.
    PasswordReset,
    /// A one-time "log in as client" link.
    Impersonation,
    /// A browser's device token (`auth::devices`), in its cookie.
    Device,
    /// A "this wasn't me" link in a security notification.
    NotMe,
}

impl TokenKind {
    pub const ALL: [TokenKind; 7] = [
        TokenKind::Api,
        TokenKind::Session,
        TokenKind::Invite,
        TokenKind::PasswordReset,
        TokenKind::Impersonation,
        TokenKind::Device,
        TokenKind::NotMe,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Api => "gh_",
            TokenKind::Session => "gs_",
            TokenKind::Invite => "inv_",
            TokenKind::PasswordReset => "pr_",
            TokenKind::Impersonation => "im_",
            TokenKind::Device => "gd_",
            TokenKind::NotMe => "nm_",
        }
    }
}

/// True when `raw` is shaped like a token of `kind`: its prefix and 43 URL-safe characters.
/// Anything else cannot be one, and is refused before it is looked up or shown.
pub fn has_shape(kind: TokenKind, raw: &str) -> bool {
    raw.strip_prefix(kind.prefix()).is_some_and(|rest| {
        rest.len() == RANDOM_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Every kind of token gatehouse mints, by its prefix (`gh_…`, `gs_…`, `pr_…`…), wherever it
/// appears in a text.
pub fn pattern() -> &'static regex::Regex {
    static PATTERN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        let prefixes: Vec<&str> = TokenKind::ALL.iter().map(|k| k.prefix()).collect();
        let pattern = format!(r"(?:{})[A-Za-z0-9_-]{{{}}}", prefixes.join("|"), RANDOM_CHARS);
        regex::Regex::new(&pattern).expect("the token pattern is valid")
    });
    &PATTERN
}

/// `text` with every token in it masked: for what is written to logs (a path no route
/// matched may still hold a live reset or invite token).
pub fn masked(text: &str) -> std::borrow::Cow<'_, str> {
    pattern().replace_all(text, "***")
}

/// The random part of every token: 43 URL-safe characters (32 random bytes).
pub const RANDOM_CHARS: usize = 43;

/// A bearer token of `kind`: its prefix + 43 URL-safe characters (32 random bytes).
pub fn mint(kind: TokenKind) -> NewToken {
    with_prefix(kind.prefix())
}

/// 32 random bytes as 43 URL-safe characters, for values that name nothing on their own
/// (CSRF tokens, nonces, OAuth `state`).
pub fn random() -> NewToken {
    with_prefix("")
}

fn with_prefix(prefix: &str) -> NewToken {
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
        let t = mint(TokenKind::Api);
        assert!(t.raw.starts_with("gh_"));
        assert_eq!(URL_SAFE_NO_PAD.decode(&t.raw[3..]).unwrap().len(), 32);
        assert_eq!(t.hash, digest(&t.raw));
        assert_eq!(t.hash.len(), 64);
        assert!(!t.hash.contains(&t.raw[3..]));
        assert_ne!(mint(TokenKind::Api).raw, t.raw);
    }

    #[test]
    fn only_a_token_has_a_tokens_shape() {
        let t = mint(TokenKind::Impersonation).raw;
        assert!(has_shape(TokenKind::Impersonation, &t));
        assert!(!has_shape(TokenKind::PasswordReset, &t));
        assert!(!has_shape(TokenKind::Impersonation, "../../account/users/9/remove"));
        assert!(!has_shape(TokenKind::Impersonation, &format!("{t}x")));
        assert!(!has_shape(TokenKind::Impersonation, &format!("im_{}", "a/".repeat(21) + "a")));
    }

    #[test]
    fn tokens_in_a_path_are_masked() {
        let t = mint(TokenKind::PasswordReset).raw;
        assert_eq!(masked(&format!("/password/reset/{t}/")), "/password/reset/***/");
        assert_eq!(masked("/password/reset/short/"), "/password/reset/short/");
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
    }
}
