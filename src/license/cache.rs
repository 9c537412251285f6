//! The local cache: the last signed answer, kept verbatim in `{data_dir}/license.json` (mode
//! 0600). It is trusted only as far as its signature verifies, so editing it unlocks nothing.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;

use super::protocol::{Answer, Signed};

pub const FILE: &str = "license.json";

/// What the cache holds, judged against the configured key and public key.
#[derive(Debug, Clone)]
pub enum Cached {
    /// Never verified (or the file was removed).
    Missing,
    /// The file cannot be read or is not a signed envelope.
    Unreadable(String),
    /// The signature does not verify: the file was edited, or the public key changed.
    Tampered(String),
    /// A genuine answer, for another key than the configured one.
    OtherKey {
        key_id: String,
    },
    Answer(Answer),
}

impl Cached {
    pub fn state(&self) -> &'static str {
        match self {
            Cached::Missing => "missing",
            Cached::Unreadable(_) => "unreadable",
            Cached::Tampered(_) => "tampered",
            Cached::OtherKey { .. } => "other_key",
            Cached::Answer(_) => "valid",
        }
    }
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// Reads and opens the cache for the key `key_id`.
pub fn read(data_dir: &Path, public_key: &VerifyingKey, key_id: &str) -> Cached {
    let file = path(data_dir);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Cached::Missing,
        Err(e) => return Cached::Unreadable(format!("{}: {e}", file.display())),
    };
    let signed: Signed = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(e) => return Cached::Unreadable(format!("{} is not a signed license answer: {e}", file.display())),
    };
    match signed.open(public_key) {
        Ok(answer) if answer.key_id != key_id => Cached::OtherKey { key_id: answer.key_id },
        Ok(answer) => Cached::Answer(answer),
        Err(why) => Cached::Tampered(format!("{}: {why}", file.display())),
    }
}

/// Replaces the cache with `signed`: written beside it and renamed, so a crash leaves the old
/// answer or the new one, never half of one.
pub fn write(data_dir: &Path, signed: &Signed) -> std::io::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let target = path(data_dir);
    // A name of its own per write: two verifications at once (serve's, and an operator's)
    // must not rename each other's half-written file away.
    let partial = data_dir.join(format!(".{FILE}.{}.{}.partial", std::process::id(), rand::random::<u32>()));
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&partial)?;
    file.write_all(&serde_json::to_vec_pretty(signed).expect("an envelope serializes"))?;
    file.sync_all()?;
    std::fs::rename(&partial, &target)
}
