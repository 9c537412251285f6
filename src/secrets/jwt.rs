//! The cryptography under `jsonwebtoken`, for the one algorithm gatehouse speaks: HS512, with
//! which Duo's Universal Prompt signs its requests and id_tokens (and gatehouse its client
//! assertions). jsonwebtoken keeps the format — header, claims, their validation — and this
//! provider the HMAC, with the `hmac` and `sha2` gatehouse builds anyway, instead of the
//! crate's `rust_crypto` feature, which compiles RSA and two elliptic curves (a second copy of
//! the RustCrypto tree passkeys use) for algorithms nothing here accepts. Every other
//! algorithm is refused: a token cannot choose one.

use hmac::{Hmac, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use sha2::Sha512;

static HS512_ONLY: CryptoProvider =
    CryptoProvider { signer_factory: signer, verifier_factory: verifier, key_utils: KeyUtils::new_unimplemented() };

/// Makes HS512 the process's JWT cryptography. jsonwebtoken settles its provider at its first
/// use, on a stand-in that panics when none was installed: [`sign`] and [`verify`] install it
/// themselves, and anything else that calls jsonwebtoken (a test's fake Duo) calls this first.
pub fn install() {
    let _ = HS512_ONLY.install_default();
}

/// `claims` as an HS512 JWT signed with `secret`.
pub fn sign(claims: &impl serde::Serialize, secret: &[u8]) -> Result<String, Error> {
    install();
    jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS512), claims, &EncodingKey::from_secret(secret))
}

/// The claims of an HS512 JWT signed with `secret`, checked against `validation` (whose
/// algorithm must be HS512).
pub fn verify<T: serde::de::DeserializeOwned>(
    token: &str,
    secret: &[u8],
    validation: &jsonwebtoken::Validation,
) -> Result<T, Error> {
    install();
    Ok(jsonwebtoken::decode::<T>(token, &DecodingKey::from_secret(secret), validation)?.claims)
}

struct Hs512(Hmac<Sha512>);

impl Hs512 {
    fn keyed(algorithm: &Algorithm, family: AlgorithmFamily, secret: &[u8]) -> Result<Self, Error> {
        if *algorithm != Algorithm::HS512 || family != AlgorithmFamily::Hmac {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        Ok(Self(Hmac::new_from_slice(secret).map_err(|_| ErrorKind::InvalidKeyFormat)?))
    }
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    Ok(Box::new(Hs512::keyed(algorithm, key.family(), key.as_bytes())?))
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    Ok(Box::new(Hs512::keyed(algorithm, key.family(), key.try_get_as_bytes()?)?))
}

impl signature::Signer<Vec<u8>> for Hs512 {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.0.clone().chain_update(message).finalize().into_bytes().to_vec())
    }
}

impl signature::Verifier<Vec<u8>> for Hs512 {
    fn verify(&self, message: &[u8], tag: &Vec<u8>) -> Result<(), signature::Error> {
        // In constant time.
        self.0.clone().chain_update(message).verify_slice(tag).map_err(signature::Error::from_source)
    }
}

impl JwtSigner for Hs512 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS512
    }
}

impl JwtVerifier for Hs512 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS512
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Header, Validation, decode, encode};
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn hs512_round_trips_and_a_changed_token_or_secret_is_refused() {
        let claims = json!({"sub": "ann", "exp": 4_000_000_000_i64});
        let token = sign(&claims, b"secret").unwrap();
        let check = |token: &str, secret: &[u8]| verify::<Value>(token, secret, &Validation::new(Algorithm::HS512));
        assert_eq!(check(&token, b"secret").unwrap()["sub"], "ann");
        assert!(check(&token, b"other").is_err());
        let (body, tag) = token.rsplit_once('.').unwrap();
        let forged = format!("{}.{tag}", body.replace('A', "B"));
        assert!(check(&forged, b"secret").is_err());
    }

    #[test]
    fn no_other_algorithm_is_spoken() {
        install();
        let claims = json!({"sub": "ann", "exp": 4_000_000_000_i64});
        let hs256 = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(b"secret"));
        assert!(hs256.is_err(), "HS256 signed");
        // A token that names HS256 is not verified under a validation that allows it either.
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s);
        let token = format!("{}.{}.AAAA", b64(header), b64(&claims.to_string()));
        let decoded = decode::<Value>(&token, &DecodingKey::from_secret(b"secret"), &Validation::new(Algorithm::HS256));
        assert!(decoded.is_err());
    }
}
