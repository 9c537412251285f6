//! The two-factor backup code: 16 alphanumeric characters shown once as four groups of four,
//! stored argon2id-hashed, accepted with or without separators in any case, and replaced by a
//! new one every time it is used.

use rand::Rng;
use rand::TryRngCore;
use rand::rngs::OsRng;

/// Upper-case letters and digits without the look-alikes 0/O and 1/I/L, so a code copied from
/// paper is read back correctly. 31 symbols × 16 positions ≈ 79 bits.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A new code, formatted for display: `ABCD-EFGH-JKMN-PQRS`.
pub fn generate() -> String {
    let mut rng = OsRng.unwrap_err();
    let chars: Vec<char> = (0..16).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// The form that is hashed and compared: separators and spaces removed, upper case.
pub fn normalize(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_groups_of_four() {
        let code = generate();
        let groups: Vec<&str> = code.split('-').collect();
        assert_eq!(groups.len(), 4, "{code}");
        assert!(groups.iter().all(|g| g.len() == 4 && g.bytes().all(|b| ALPHABET.contains(&b))));
        assert_ne!(generate(), code);
    }

    #[test]
    fn separators_and_case_do_not_matter() {
        assert_eq!(normalize("abcd-efgh jkmn_pqrs"), "ABCDEFGHJKMNPQRS");
        assert_eq!(normalize("ABCDEFGHJKMNPQRS"), "ABCDEFGHJKMNPQRS");
    }
}
