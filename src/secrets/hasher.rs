//! argon2id on dedicated threads that keep their memory.
//!
//! Each hash needs 19 MiB of working memory. Allocated per hash on tokio's blocking pool, those
//! blocks landed in a different malloc arena on each of its many threads, and glibc keeps freed
//! memory in its arenas: a burst of logins grew the server from 47 MB to 476 MB and it stayed
//! there. Here one thread per core hashes, each with one buffer allocated on its first hash and
//! reused for every hash of a burst — memory is bounded by cores × 19 MiB, and no time goes to
//! faulting in and zeroing fresh pages — then released after two quiet seconds.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use rand::RngCore;

use crate::error::{Error, Result};

/// An argon2 working area, grown to the largest parameters seen and then reused.
#[derive(Default)]
pub struct Memory(Vec<Block>);

impl Memory {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let needed = params.block_count();
        if self.0.len() < needed {
            self.0.resize(needed, Block::default());
        }
        &mut self.0[..needed]
    }
}

/// Hashes `secret` with argon2id at the OWASP minimum (m=19456 KiB, t=2, p=1, the argon2
/// crate's defaults) and a fresh 16-byte salt, as a PHC string.
pub fn hash_in(memory: &mut Memory, secret: &[u8]) -> Result<String> {
    let failed = |e: &dyn std::fmt::Display| Error::Internal(format!("password hashing failed: {e}"));
    let argon2 = Argon2::default();
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(secret, &salt, &mut out, memory.blocks(argon2.params()))
        .map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// Verifies `secret` against an argon2 PHC string (any variant, version and parameters it
/// names); a malformed string verifies as false. The comparison is constant-time (`Output`'s
/// equality).
pub fn verify_in(memory: &mut Memory, secret: &[u8], phc: &str) -> bool {
    let mut verify = || -> Option<bool> {
        let parsed = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).ok()?;
        let (salt, expected) = (parsed.salt?, parsed.hash?);
        let mut out = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(secret, &salt, &mut out, memory.blocks(&params))
            .ok()?;
        Some(Output::new(&out).ok()? == expected)
    };
    verify().unwrap_or(false)
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// How long a hashing thread keeps its memory with no work: through a burst of logins, but
/// not for the hours of quiet after it.
const KEEP_MEMORY: Duration = Duration::from_secs(2);

/// Runs `work` on a hashing thread with that thread's memory. As many run at once as there
/// are cores (more would only share the same cores and multiply the memory); the rest queue.
pub async fn run<T: Send + 'static>(work: impl FnOnce(&mut Memory) -> T + Send + 'static) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move |memory| {
        let _ = tx.send(work(memory));
    });
    pool().send(job).map_err(|_| Error::Internal("the hashing threads are gone".into()))?;
    rx.await.map_err(|_| Error::Internal("a hashing job failed".into()))
}

fn pool() -> &'static Sender<Job> {
    static POOL: OnceLock<Sender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..std::thread::available_parallelism().map_or(2, |n| n.get()) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("gatehouse-hash-{n}"))
                .spawn(move || work(&rx))
                .expect("a hashing thread can be started");
        }
        tx
    })
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    let mut memory = Memory::default();
    loop {
        // The lock is held only while waiting for the next job, never while hashing.
        let next = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv_timeout(KEEP_MEMORY);
        let job = match next {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                // Quiet for a while: give the memory back until the next burst.
                if memory.0.capacity() > 0 {
                    memory = Memory::default();
                    crate::system::return_free_memory();
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        // A panicking job must not take the thread (and its share of the pool) with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut memory)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn hashes_verify_both_ways_with_the_argon2_crate() {
        let mut memory = Memory::default();
        let ours = hash_in(&mut memory, b"correct horse").unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        assert!(Argon2::default().verify_password(b"correct horse", ours.as_str()).is_ok());
        assert!(verify_in(&mut memory, b"correct horse", &ours));
        assert!(!verify_in(&mut memory, b"correct horsf", &ours));

        // Hashes made elsewhere with other parameters and variants, in the same memory.
        let weak = Argon2::new(Algorithm::Argon2i, Version::V0x10, Params::new(64, 1, 1, None).unwrap())
            .hash_password(b"legacy")
            .unwrap()
            .to_string();
        assert!(verify_in(&mut memory, b"legacy", &weak));
        assert!(!verify_in(&mut memory, b"Legacy", &weak));
        assert!(verify_in(&mut memory, b"correct horse", &ours), "after a smaller hash in the same memory");
        assert!(!verify_in(&mut memory, b"x", "$argon2id$v=19$garbage"));
    }

    /// Memory is bounded by construction: however many hashes are asked for at once, they run
    /// on the pool's threads only (one per core), each reusing its own working area.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_of_hashes_runs_on_one_thread_per_core() {
        let burst: Vec<_> = (0..16)
            .map(|_| {
                tokio::spawn(run(|memory| {
                    let hashed = hash_in(memory, b"burst").unwrap();
                    (std::thread::current().name().unwrap_or_default().to_string(), memory.0.len(), hashed)
                }))
            })
            .collect();
        let mut done = Vec::new();
        for job in burst {
            done.push(job.await.unwrap().unwrap());
        }
        let threads: std::collections::BTreeSet<&str> = done.iter().map(|(t, _, _)| t.as_str()).collect();
        assert!(threads.iter().all(|t| t.starts_with("gatehouse-hash-")), "{threads:?}");
        assert!(threads.len() <= std::thread::available_parallelism().unwrap().get(), "{threads:?}");
        assert!(done.iter().all(|(_, blocks, _)| *blocks == Params::DEFAULT.block_count()));
        assert!(done.iter().all(|(_, _, h)| verify_in(&mut Memory::default(), b"burst", h)));
    }
}
