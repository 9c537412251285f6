//! CSRF tokens for visitors who are not signed in, kept nowhere on the server: a random nonce
//! in a cookie, and in the form an HMAC of it under this deployment's key (shared by every node
//! through the `settings` table). A form is accepted when the token matches the cookie's nonce;
//! a cross-site page can neither read the cookie nor compute the token.
//!
//! So an anonymous `GET /login` writes nothing: a session row is created only when there is
//! something to keep (a sign-in, a message for the next page). Before, every such GET stored a
//! session, and a load of anonymous requests could fill the disk.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secrets::tokens;

pub const COOKIE_NAME: &str = "gatehouse_form";

/// The deployment's key for form tokens.
#[derive(Clone)]
pub struct FormKey(Vec<u8>);

impl std::fmt::Debug for FormKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormKey(***)")
    }
}

impl FormKey {
    pub fn new(key: &str) -> Self {
        Self(key.as_bytes().to_vec())
    }

    /// A fresh nonce for the cookie.
    pub fn nonce() -> String {
        tokens::random().raw
    }

    /// The token a form carries for `nonce`.
    pub fn token(&self, nonce: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(b"gatehouse form token\0");
        mac.update(nonce.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// True when `token` was made for `nonce` with this key (constant time).
    pub fn verify(&self, nonce: &str, token: &str) -> bool {
        !nonce.is_empty() && tokens::ct_eq(&self.token(nonce), token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_belong_to_their_nonce_and_key() {
        let key = FormKey::new("k1");
        let (a, b) = (FormKey::nonce(), FormKey::nonce());
        assert!(key.verify(&a, &key.token(&a)));
        assert!(!key.verify(&b, &key.token(&a)), "another visitor's token");
        assert!(!FormKey::new("k2").verify(&a, &key.token(&a)), "another deployment's key");
        assert!(!key.verify("", &key.token("")), "no cookie, no token");
        assert_eq!(format!("{key:?}"), "FormKey(***)");
    }
}
