//! argon2id on dedicated threads that keep their memory.
//!
//! Each hash needs 19 MiB of working memory. Allocated per hash on tokio's blocking pool, those
//! blocks landed in a different malloc arena on each of its many threads, and glibc keeps freed
//! memory in its arenas: a burst of logins grew the server from 47 MB to 476 MB and it stayed
//! there. Here one thread per core hashes, each with one buffer allocated on its first hash and
//! reused for every hash of a burst — memory is bounded by cores × 19 MiB, and no time goes to
//! faulting in and zeroing fresh pages — then released after two quiet seconds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use ipnet::Ipv6Net;
use rand::RngCore;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Code, Error, Result};

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

/// Who a hash is asked for, so that no one source can fill the hashing threads' queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester<'a> {
    /// A visitor, by the address the trusted-proxy rules resolved. One address (IPv6: one /64)
    /// has at most as many hashes queued or running as there are hashing threads, one IPv6 /48
    /// four times that; further requests wait for their own to finish. 200 parallel wrong
    /// logins, or a signed-in user setting a security answer in a loop, then delay a hash asked
    /// from another address by about one hash, not by the 200 queued ahead of it.
    Visitor(&'a str),
    /// Not limited: the operator (the command line, cron, a migration), and a hash that
    /// follows a right password or code (a rehash, a backup code's replacement) — the lockout
    /// bounds those, and refusing one would leave a checked success half-done.
    Operator,
}

/// Runs `work` on a hashing thread with that thread's memory. As many run at once as there
/// are cores (more would only share the same cores and multiply the memory); the rest queue,
/// each visitor's address with at most its share in the queue (see [`Requester`]).
pub async fn run<T: Send + 'static>(
    requester: Requester<'_>,
    work: impl FnOnce(&mut Memory) -> T + Send + 'static,
) -> Result<T> {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::start(std::thread::available_parallelism().map_or(2, |n| n.get())))
        .run(requester, work)
        .await
}

/// The hashing threads, their queue, and each address's share of it.
struct Pool {
    jobs: Sender<Job>,
    threads: usize,
    turns: Turns,
}

impl Pool {
    fn start(threads: usize) -> Self {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("gatehouse-hash-{n}"))
                .spawn(move || work(&rx))
                .expect("a hashing thread can be started");
        }
        Self { jobs, threads, turns: Turns::default() }
    }

    async fn run<T: Send + 'static>(
        &self,
        requester: Requester<'_>,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T> {
        let turn = match requester {
            Requester::Visitor(ip) => Some(self.turn(ip).await?),
            Requester::Operator => None,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        // The job holds the turn until its hash is done: a request dropped while its hash waits
        // (a closed connection) must not give its address another place in the queue. It is
        // released before the answer is sent, so the request's next hash finds it free.
        let job: Job = Box::new(move |memory| {
            let done = work(memory);
            drop(turn);
            let _ = tx.send(done);
        });
        self.jobs.send(job).map_err(|_| Error::Internal("the hashing threads are gone".into()))?;
        rx.await.map_err(|_| Error::Internal("a hashing job failed".into()))
    }

    /// Waits for a turn in each of the visitor's shares, narrowest first. Each share serves its
    /// requests in the order they came (tokio's semaphore is fair); the turn is held until the
    /// hash is done. Only a job holds a whole turn and a job never waits, so no request can
    /// wait for one that waits for it.
    ///
    /// A share already full of waiting requests refuses the next one at once (`busy`, 429):
    /// behind a trusted proxy, where the per-address connection limit cannot apply, one client
    /// could otherwise park thousands of requests, each holding a connection, in its own wait.
    async fn turn(&self, ip: &str) -> Result<Turn> {
        // Every share is counted and joined at once, under one lock, before waiting in any: a
        // request waiting in its /64 already counts in its /48, so a subscriber's many /64s
        // cannot park more requests than the /48's share allows.
        let joined: Vec<(String, Arc<Semaphore>)> = {
            let mut all = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            if all.len() >= 1024 && all.len().is_power_of_two() {
                // Entries left by requests that gave up waiting (a closed connection).
                all.retain(|_, s| Arc::strong_count(s) > 1);
            }
            let shares = shares(ip, self.threads);
            // The map holds one reference, and every request holding or waiting for a place one.
            if shares.iter().any(|(share, places)| {
                all.get(share).is_some_and(|s| Arc::strong_count(s) > places * (1 + WAITING_PER_PLACE))
            }) {
                return Err(Error::refused(
                    Code::Busy,
                    "too many requests from your address are waiting for a password check; try again in a moment",
                ));
            }
            shares
                .into_iter()
                .map(|(share, places)| {
                    let semaphore = all.entry(share.clone()).or_insert_with(|| Arc::new(Semaphore::new(places)));
                    (share, semaphore.clone())
                })
                .collect()
        };
        let mut turn = Turn { turns: self.turns.clone(), held: Vec::new() };
        for (share, semaphore) in joined {
            let permit = semaphore.acquire_owned().await.expect("the semaphore is never closed");
            turn.held.push((share, permit));
        }
        Ok(turn)
    }
}

/// How many requests may wait for each place in a share: at about 16 ms a hash, about half a
/// second of the share's own wait. Fifty people signing in at once from one office's address
/// all wait their turn; beyond 33 requests per thread at once, one address is refused.
const WAITING_PER_PLACE: usize = 32;

/// The shares of the queue a visitor's hash counts in, narrowest first, with their sizes: its
/// address (IPv6: its /64, as the lockout counts it) has as many places as there are threads;
/// for IPv6, its /48 has four times that. One subscriber is routed a /56 or a /48 (256 or
/// 65,536 /64s), and each /64 would otherwise have its own places.
fn shares(ip: &str, threads: usize) -> Vec<(String, usize)> {
    let prefix = |v6, len| Ipv6Net::new(v6, len).map(|n| n.trunc().to_string()).unwrap_or_default();
    match ip.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V6(v6)) => vec![(prefix(v6, 64), threads), (prefix(v6, 48), 4 * threads)],
        Ok(v4) => vec![(v4.to_string(), threads)],
        Err(_) => vec![(ip.to_string(), threads)],
    }
}

/// Per share, its places. An entry lives while a request holds or waits for a place in it.
type Turns = Arc<Mutex<HashMap<String, Arc<Semaphore>>>>;

/// A place in each of a visitor's shares; the last one out of a share removes its entry.
struct Turn {
    turns: Turns,
    held: Vec<(String, OwnedSemaphorePermit)>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut all = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        for (share, permit) in self.held.drain(..) {
            drop(permit);
            // Under the lock, as every clone is made: only the map's own reference left means
            // nobody holds or waits for a place in this share.
            if all.get(&share).is_some_and(|s| Arc::strong_count(s) == 1) {
                all.remove(&share);
            }
        }
    }
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

    #[test]
    fn shares_count_ipv6_by_its_64_and_48_and_mapped_ipv4_as_ipv4() {
        assert_eq!(shares("203.0.113.9", 2), [("203.0.113.9".to_string(), 2)]);
        assert_eq!(shares("::ffff:203.0.113.9", 2), [("203.0.113.9".to_string(), 2)]);
        assert_eq!(
            shares("2001:db8:5:7:1:2:3:4", 2),
            [("2001:db8:5:7::/64".to_string(), 2), ("2001:db8:5::/48".to_string(), 8)]
        );
    }

    /// Hashing jobs that record that they started, then wait until the test lets them end:
    /// nothing in these tests waits for time.
    #[derive(Clone, Default)]
    struct Held {
        order: Arc<Mutex<Vec<&'static str>>>,
        started: Arc<std::sync::atomic::AtomicUsize>,
        may_end: Arc<(Mutex<usize>, std::sync::Condvar)>,
    }

    impl Held {
        fn job(&self, name: &'static str) -> impl FnOnce(&mut Memory) + Send + 'static {
            let held = self.clone();
            move |_| {
                held.order.lock().unwrap().push(name);
                held.started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (count, turn) = &*held.may_end;
                *turn.wait_while(count.lock().unwrap(), |n| *n == 0).unwrap() -= 1;
            }
        }

        /// One held job from each of `addresses`, each asked for on a task of its own.
        fn flood(&self, pool: &Arc<Pool>, addresses: impl Iterator<Item = String>) -> Vec<tokio::task::JoinHandle<()>> {
            addresses
                .map(|address| {
                    let (pool, job) = (pool.clone(), self.job("flood"));
                    tokio::spawn(async move { pool.run(Requester::Visitor(&address), job).await.unwrap() })
                })
                .collect()
        }

        /// A job that records that it ran, and ends.
        fn quick(&self, name: &'static str) -> impl FnOnce(&mut Memory) + Send + 'static {
            let order = self.order.clone();
            move |_| order.lock().unwrap().push(name)
        }

        fn let_end(&self, n: usize) {
            *self.may_end.0.lock().unwrap() += n;
            self.may_end.1.notify_all();
        }

        async fn until_started(&self, n: usize) {
            let started = async {
                while self.started.load(std::sync::atomic::Ordering::SeqCst) < n {
                    tokio::task::yield_now().await;
                }
            };
            tokio::time::timeout(Duration::from_secs(30), started).await.expect("the threads take the jobs");
        }
    }

    /// Polls a request once: a job whose address has a free turn is queued by then.
    async fn poll_once<F: Future>(request: std::pin::Pin<&mut F>) -> bool {
        let mut request = request;
        std::future::poll_fn(|cx| std::task::Poll::Ready(request.as_mut().poll(cx).is_pending())).await
    }

    /// One address's flood has at most its share of the queue: a hash asked from another
    /// address runs as soon as one of the flood's running hashes ends, ahead of the other 48.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_from_one_address_waits_behind_its_own_share() {
        let pool = Arc::new(Pool::start(2));
        let held = Held::default();
        let flood = held.flood(&pool, (0..50).map(|_| "203.0.113.9".to_string()));
        held.until_started(2).await;

        let mut other = Box::pin(pool.run(Requester::Visitor("198.51.100.1"), held.quick("other")));
        assert!(poll_once(other.as_mut()).await, "both threads are busy");
        held.let_end(1);
        tokio::time::timeout(Duration::from_secs(30), other).await.expect("the other address is served").unwrap();
        held.let_end(usize::MAX / 2);
        for job in flood {
            job.await.unwrap();
        }

        let order = held.order.lock().unwrap();
        assert_eq!(order.len(), 51);
        assert_eq!(
            order[..3],
            ["flood", "flood", "other"],
            "the other address is next after one of the flood's hashes"
        );
        assert!(pool.turns.lock().unwrap().is_empty(), "no address is remembered once its hashes are done");
    }

    /// One IPv6 subscriber is many /64s: a flood from 50 of them, all in one /48, has that
    /// /48's share of the queue (four places per thread), not 50 addresses' worth.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_from_many_addresses_of_one_ipv6_site_waits_behind_the_sites_share() {
        let pool = Arc::new(Pool::start(2));
        let held = Held::default();
        let flood = held.flood(&pool, (0..50).map(|n| format!("2001:db8:5:{n:x}::1")));
        held.until_started(2).await;

        let mut other = Box::pin(pool.run(Requester::Visitor("2001:db8:6::1"), held.quick("other")));
        assert!(poll_once(other.as_mut()).await, "both threads are busy");
        held.let_end(usize::MAX / 2);
        tokio::time::timeout(Duration::from_secs(30), other).await.expect("the other site is served").unwrap();
        for job in flood {
            job.await.unwrap();
        }
        let order = held.order.lock().unwrap();
        let served = order.iter().position(|name| *name == "other").unwrap();
        assert!(served <= 8, "the other site waited for {served} of the flood's hashes: {order:?}");
        assert!(pool.turns.lock().unwrap().is_empty(), "no share is remembered once its hashes are done");
    }

    /// A share full of waiting requests refuses the next one at once, so one client behind a
    /// trusted proxy cannot park thousands of connections in its wait; another address is still
    /// served, and the refused address is again once its wait moves.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_share_full_of_waiting_requests_refuses_the_next_at_once() {
        let pool = Pool::start(2);
        let held = Held::default();
        let flood = Requester::Visitor("203.0.113.9");
        let mut waiting = Vec::new();
        for _ in 0..2 + 2 * WAITING_PER_PLACE {
            let mut request = Box::pin(pool.run(flood, held.job("flood")));
            assert!(poll_once(request.as_mut()).await, "two run, the rest wait");
            waiting.push(request);
        }
        held.until_started(2).await;
        let refused = tokio::time::timeout(Duration::from_secs(30), pool.run(flood, held.quick("refused")))
            .await
            .expect("refused at once, not queued");
        assert!(matches!(refused, Err(Error::Refused { code: Code::Busy, .. })), "{refused:?}");

        let other = pool.run(Requester::Visitor("198.51.100.1"), held.quick("other"));
        held.let_end(usize::MAX / 2);
        tokio::time::timeout(Duration::from_secs(30), other).await.expect("the other address is served").unwrap();
        for request in waiting {
            request.await.unwrap();
        }
        pool.run(flood, held.quick("later")).await.expect("served again once its wait moved");
        assert!(!held.order.lock().unwrap().contains(&"refused"));
    }

    /// Requests waiting in their /64s count in their /48 at once: a subscriber's many /64s
    /// cannot park more requests than the /48's share allows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_requests_count_in_their_48_while_they_wait_in_their_64() {
        let pool = Pool::start(2);
        let held = Held::default();
        let site_share = 4 * 2 * (1 + WAITING_PER_PLACE);
        let addresses: Vec<String> = (0..site_share).map(|n| format!("2001:db8:5:{:x}::1", n % 64)).collect();
        let mut waiting = Vec::new();
        for address in &addresses {
            let mut request = Box::pin(pool.run(Requester::Visitor(address), held.job("flood")));
            assert!(poll_once(request.as_mut()).await, "two run, the rest wait");
            waiting.push(request);
        }
        held.until_started(2).await;
        let refused = tokio::time::timeout(
            Duration::from_secs(30),
            pool.run(Requester::Visitor("2001:db8:5:ffff::1"), held.quick("refused")),
        )
        .await
        .expect("refused at once, not queued");
        assert!(
            matches!(refused, Err(Error::Refused { code: Code::Busy, .. })),
            "a new /64 of the full /48: {refused:?}"
        );
        held.let_end(usize::MAX / 2);
        for request in waiting {
            request.await.unwrap();
        }
        assert!(pool.turns.lock().unwrap().is_empty());
    }

    /// A request given up while its hash waits or runs (a closed connection) keeps its turn
    /// until the hash is done: dropping requests buys an address no more places in the queue.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_given_up_keeps_its_turn_until_its_hash_is_done() {
        let pool = Pool::start(2);
        let held = Held::default();
        let flood = Requester::Visitor("203.0.113.9");
        for _ in 0..2 {
            let mut request = Box::pin(pool.run(flood, held.job("flood")));
            poll_once(request.as_mut()).await;
        }
        held.until_started(2).await;
        for _ in 0..10 {
            let mut request = Box::pin(pool.run(flood, held.job("given up")));
            assert!(poll_once(request.as_mut()).await, "the address's turns are taken");
        }

        let mut other = Box::pin(pool.run(Requester::Visitor("198.51.100.1"), held.quick("other")));
        assert!(poll_once(other.as_mut()).await, "both threads are busy");
        held.let_end(usize::MAX / 2);
        tokio::time::timeout(Duration::from_secs(30), other).await.expect("the other address is served").unwrap();
        assert_eq!(*held.order.lock().unwrap(), ["flood", "flood", "other"], "no request given up was queued");
    }

    /// Memory is bounded by construction: however many hashes are asked for at once, they run
    /// on the pool's threads only (one per core), each reusing its own working area.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_of_hashes_runs_on_one_thread_per_core() {
        let burst: Vec<_> = (0..16)
            .map(|_| {
                tokio::spawn(run(Requester::Operator, |memory| {
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
