//! TOTP per RFC 6238 (HMAC-SHA-1, 6 digits, 30-second steps, ±1 step of clock skew) and the
//! enrolment material: the `otpauth://` key URI and its QR code as SVG.
//!
//! `totp-rs` computes and checks codes; replay protection is ours: the caller stores the step
//! of the last accepted code and [`verify`] refuses that step and every earlier one.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use qrcode::QrCode;
use qrcode::render::svg;
use rand::TryRngCore;
use rand::rngs::OsRng;
use totp_rs::{Algorithm, Secret, Totp};

use crate::error::{Error, Result};

pub const ISSUER: &str = "gatehouse";
const DIGITS: u8 = 6;
const STEP_SECS: u64 = 30;
const SKEW_STEPS: u16 = 1;
/// RFC 3986 unreserved characters stay as they are in the URI label.
const LABEL: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'-').remove(b'_').remove(b'~');

/// A new 160-bit secret from the OS CSPRNG (RFC 4226 recommends 160 bits), base32 encoded.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    OsRng.try_fill_bytes(&mut bytes).expect("the OS random number generator is available");
    Secret::from(bytes.to_vec()).to_base32()
}

fn build(secret_b32: &str) -> Result<Totp> {
    let secret =
        Secret::try_from_base32(secret_b32).map_err(|e| Error::Internal(format!("stored TOTP secret: {e}")))?;
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(SKEW_STEPS)
        .with_step_duration(STEP_SECS)
        .with_secret(secret)
        .build()
        .map_err(|e| Error::Internal(format!("TOTP parameters: {e}")))
}

/// The key URI authenticator apps read, with every parameter explicit (some apps mis-read
/// omitted defaults): `otpauth://totp/gatehouse:ACCOUNT?secret=…&issuer=gatehouse&algorithm=SHA1&digits=6&period=30`.
pub fn uri(secret_b32: &str, account: &str) -> Result<String> {
    build(secret_b32)?; // the secret must be usable before it is handed out
    let label = |s: &str| utf8_percent_encode(&s.replace(':', ""), LABEL).to_string();
    Ok(format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        label(ISSUER),
        label(account),
        label(ISSUER)
    ))
}

/// The key URI as an SVG QR code to put inline in the enrolment page (no JavaScript, no image
/// requests): without the XML prolog, which has no place inside HTML, and with an accessible
/// name, so a screen reader announces an image rather than reading out hundreds of squares.
pub fn qr_svg(uri: &str) -> Result<String> {
    let code = QrCode::new(uri.as_bytes()).map_err(|e| Error::Internal(format!("QR code: {e}")))?;
    let svg = code.render::<svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build();
    let at = svg.find("<svg").ok_or_else(|| Error::Internal("QR code: no <svg> element".into()))?;
    Ok(svg[at..].replacen(
        "<svg",
        r#"<svg role="img" aria-label="QR code of your two-factor key: scan it with your authenticator app""#,
        1,
    ))
}

/// The key as a person copies it by hand: groups of four characters.
pub fn grouped(secret_b32: &str) -> String {
    secret_b32.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>().join(" ")
}

/// Checks `code` at Unix time `now`. Returns the matched step, which must be later than
/// `last_step` (the step of the last accepted code): a code is never accepted twice.
pub fn verify(secret_b32: &str, code: &str, now: i64, last_step: Option<i64>) -> Result<Option<i64>> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let totp = build(secret_b32)?;
    let step = totp.check(&code, now.max(0) as u64).map(|s| s as i64);
    Ok(step.filter(|s| last_step.is_none_or(|last| *s > last)))
}

/// The code for time `now`, for tests and for operators checking a device's clock.
pub fn code_at(secret_b32: &str, now: i64) -> Result<String> {
    Ok(build(secret_b32)?.generate(now.max(0) as u64).to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn qr_code_is_inline_svg_with_a_name_and_the_key_reads_in_groups() {
        let svg = super::qr_svg("otpauth://totp/gatehouse:a?secret=JBSWY3DPEHPK3PXP").unwrap();
        assert!(svg.starts_with("<svg role=\"img\" aria-label=\"QR code"), "{}", &svg[..80]);
        assert!(!svg.contains("<?xml"));
        assert_eq!(super::grouped("JBSWY3DPEHPK3PXPAB"), "JBSW Y3DP EHPK 3PXP AB");
    }

    use super::*;

    fn rfc_totp(alg: Algorithm, seed: &[u8]) -> Totp {
        totp_rs::Builder::new()
            .with_algorithm(alg)
            .with_digits(8)
            .with_step_duration(30)
            .with_secret(seed.to_vec())
            .build_noncompliant()
    }

    #[test]
    fn rfc6238_appendix_b_vectors() {
        let sha1 = rfc_totp(Algorithm::SHA1, b"12345678901234567890");
        let sha256 = rfc_totp(Algorithm::SHA256, b"12345678901234567890123456789012");
        let sha512 = rfc_totp(Algorithm::SHA512, b"1234567890123456789012345678901234567890123456789012345678901234");
        let vectors = [
            (59u64, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, a, b, c) in vectors {
            assert_eq!(sha1.generate(t).to_string(), a, "SHA-1 at {t}");
            assert_eq!(sha256.generate(t).to_string(), b, "SHA-256 at {t}");
            assert_eq!(sha512.generate(t).to_string(), c, "SHA-512 at {t}");
        }
    }

    #[test]
    fn rfc4226_appendix_d_hotp_vectors() {
        // HOTP is TOTP with the counter as the time step: counter c is time c * 30.
        let hotp = totp_rs::Builder::new()
            .with_digits(6)
            .with_step_duration(30)
            .with_secret(b"12345678901234567890".to_vec())
            .build_noncompliant();
        let expected =
            ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp.generate(counter as u64 * 30).to_string(), *code, "counter {counter}");
        }
    }

    #[test]
    fn codes_are_accepted_once_within_one_step_of_skew() {
        let secret = new_secret();
        let now = 1_700_000_000;
        let code = code_at(&secret, now).unwrap();
        let step = verify(&secret, &code, now, None).unwrap().expect("current code accepted");
        assert_eq!(step, now / 30);
        assert_eq!(verify(&secret, &code, now, Some(step)).unwrap(), None, "replay refused");
        assert!(verify(&secret, &code, now + 30, None).unwrap().is_some(), "one step late is fine");
        assert_eq!(verify(&secret, &code, now + 90, None).unwrap(), None, "three steps late is not");
        assert_eq!(verify(&secret, "12345", now, None).unwrap(), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert!(verify(&secret, &spaced, now, None).unwrap().is_some());
    }

    #[test]
    fn enrolment_uri_and_qr() {
        let secret = new_secret();
        let uri = uri(&secret, "ann@example.com").unwrap();
        assert!(uri.starts_with("otpauth://totp/gatehouse:ann%40example.com?"), "{uri}");
        let expected = [
            format!("secret={secret}"),
            "issuer=gatehouse".into(),
            "algorithm=SHA1".into(),
            "digits=6".into(),
            "period=30".into(),
        ];
        for part in expected {
            assert!(uri.contains(&part), "{uri} lacks {part}");
        }
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
    }
}
