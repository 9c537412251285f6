//! The license key: `GH-` then four groups of five characters and a four-character checksum,
//! all in Crockford's base32 (digits and capitals without I, L, O, U, which read like 1, 1, 0
//! and V). The checksum catches a mistyped or missing character before any network call.

use sha2::{Digest, Sha256};

const PREFIX: &str = "GH-";
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const GROUPS: usize = 4;
const GROUP_LEN: usize = 5;
const CHECK_LEN: usize = 4;
const EXAMPLE: &str = "GH-ABCDE-FGHJK-MNPQR-STVWX-1234";

/// A license key whose format and checksum are right (whether it is licensed is the
/// licensing server's answer).
#[derive(Clone, PartialEq, Eq)]
pub struct LicenseKey(String);

impl std::fmt::Debug for LicenseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LicenseKey({})", self.id())
    }
}

impl LicenseKey {
    /// Reads a key as typed: case and surrounding spaces do not matter.
    pub fn parse(typed: &str) -> Result<Self, String> {
        let key = typed.trim().to_ascii_uppercase();
        let Some(rest) = key.strip_prefix(PREFIX) else {
            return Err(format!("a license key starts with `{PREFIX}` (like {EXAMPLE})"));
        };
        let parts: Vec<&str> = rest.split('-').collect();
        let shape_ok = parts.len() == GROUPS + 1
            && parts[..GROUPS].iter().all(|g| g.len() == GROUP_LEN)
            && parts[GROUPS].len() == CHECK_LEN;
        if !shape_ok {
            return Err(format!(
                "a license key has {GROUPS} groups of {GROUP_LEN} characters and a {CHECK_LEN}-character checksum, \
                 separated by `-` (like {EXAMPLE}); this one has {} part(s) of length {}",
                parts.len(),
                parts.iter().map(|p| p.len().to_string()).collect::<Vec<_>>().join(", ")
            ));
        }
        if let Some((i, c)) = rest.char_indices().find(|(_, c)| *c != '-' && !ALPHABET.contains(&(*c as u8))) {
            return Err(format!(
                "`{c}` (character {}) is not a key character: keys use digits and capitals without I, L, O, U",
                PREFIX.len() + i + 1
            ));
        }
        let body: String = parts[..GROUPS].concat();
        if checksum(&body) != parts[GROUPS] {
            return Err("the checksum does not match: a character is mistyped or two are swapped".into());
        }
        Ok(Self(key))
    }

    /// A new key over 20 random body characters (for a vendor's issuing tool and the tests).
    pub fn issue(random: [u8; GROUPS * GROUP_LEN]) -> Self {
        let body: String = random.iter().map(|b| ALPHABET[usize::from(b % 32)] as char).collect();
        let groups: Vec<&str> = (0..GROUPS).map(|g| &body[g * GROUP_LEN..(g + 1) * GROUP_LEN]).collect();
        Self(format!("{PREFIX}{}-{}", groups.join("-"), checksum(&body)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A public name for the key (the first 16 hex digits of its SHA-256): what signed answers
    /// and reports carry, so they are tied to a key without revealing it.
    pub fn id(&self) -> String {
        key_id(&self.0)
    }
}

/// The id of a key as the licensing server computes it.
pub fn key_id(key: &str) -> String {
    hex::encode(Sha256::digest(key.trim().to_ascii_uppercase().as_bytes()))[..16].to_string()
}

fn checksum(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let bits = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    (0..CHECK_LEN).map(|i| ALPHABET[((bits >> (27 - 5 * i)) & 31) as usize] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_key_parses_in_any_case_and_a_typo_does_not() {
        let key = LicenseKey::issue(*b"0123456789abcdefghij");
        assert_eq!(LicenseKey::parse(&format!("  {}\n", key.as_str().to_lowercase())).unwrap(), key);

        let mut typo = key.as_str().to_string().into_bytes();
        typo[4] = if typo[4] == b'A' { b'B' } else { b'A' };
        let typo = String::from_utf8(typo).unwrap();
        assert!(LicenseKey::parse(&typo).unwrap_err().contains("checksum does not match"));
    }

    #[test]
    fn each_format_error_says_what_was_expected() {
        assert!(LicenseKey::parse("WHMCS-1234").unwrap_err().contains("starts with `GH-`"));
        assert!(LicenseKey::parse("GH-ABCDE-FGHJK").unwrap_err().contains("2 part(s) of length 5, 5"));
        let err = LicenseKey::parse("GH-ABCDE-FGHJK-MNPQR-STVWI-1234").unwrap_err();
        assert!(err.contains("`I` (character 26)"), "{err}");
    }

    #[test]
    fn the_id_names_the_key_without_revealing_it() {
        let key = LicenseKey::issue([7; 20]);
        assert_eq!(key.id().len(), 16);
        assert!(!key.as_str().contains(&key.id()));
        assert_eq!(key_id(&key.as_str().to_lowercase()), key.id());
        assert!(!format!("{key:?}").contains(key.as_str()));
    }
}
