//! Lockout counters (`security.lockout`), kept in the database so that every `serve` node sees
//! the same counts. An attempt at a secret (a password, a second factor, a security answer)
//! first **takes a slot** in each [`Scope`] it counts against, in one conditional statement per
//! scope, *before* the secret is checked: a scope whose window is full or which is locked takes
//! no more, so however many requests arrive at once, on one node or several, at most the limit
//! is ever evaluated per window. A failed attempt keeps its slots (the one that fills a scope
//! locks it); a successful one clears the account's scopes and gives the address's slot back.
//!
//! - the account, and the account at one client IP, lock at `max_failures`: guessing one
//!   person's password stops there, wherever it comes from;
//! - the client IP alone locks at the much higher `ip_max_failures`: it stops password spraying
//!   (a few guesses on each of many accounts) without letting one user's typos lock out everyone
//!   else behind the same office NAT or an untrusted proxy. An IPv6 client is its /64: one
//!   subscriber line holds a whole /64, so single addresses would be free to rotate;
//! - the account's second factor locks at `max_failures` and only a second factor that succeeds
//!   clears it, so knowing the password buys no more guesses at the code;
//! - sign-ups from one IP lock at `max_failures` per window, whatever their outcome.
//!
//! Users and admins count in separate namespaces ([`Principal`]): the stored key's prefix is
//! ours, never typed, so no email can name an admin's counter (`admin:admin` typed as an email
//! is the user account `admin:admin`, not the admin `admin`).

use std::net::IpAddr;

use ipnet::Ipv6Net;

use crate::config::Lockout;
use crate::error::{Code, Result};
use crate::store::{Any, AnyConnection, Db};

/// Whose secret an account scope guards: the two kinds of sign-in never share a counter.
pub use crate::accounts::Principal;

/// What one attempt counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A user's email or an admin's username, normalised.
    Account(Principal, String),
    AccountAtIp(Principal, String, String),
    SecondFactor(Principal, String),
    /// A client address (an IPv6 client as its /64).
    Ip(String),
    SignUp(String),
    /// A known device of an account (`auth::devices`): its own small budget.
    Device(Principal, i64),
    /// Consecutive failures from one known device, bounded as the account's are.
    DeviceCeiling(Principal, i64),
    /// Consecutive failures on an account from unknown devices, at most
    /// [`MAX_CONSECUTIVE_FAILURES`] until a sign-in succeeds (NIST SP 800-63B-4's bound).
    Ceiling(Principal, String),
}

/// Consecutive failed sign-ins an account allows from unknown devices before only a known
/// device (or a completed reset) can sign in: NIST SP 800-63B-4 caps it at 100.
pub const MAX_CONSECUTIVE_FAILURES: i64 = 100;

/// How long the ceiling remembers failures, and stays shut once reached, without a success.
const CEILING_SECS: i64 = 30 * 86_400;

fn normalized(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The address a per-IP budget counts: IPv4 as it is, IPv6 as its /64 (one subscriber's
/// prefix), so rotating addresses inside one's own prefix buys no more guesses.
pub fn ip_key(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            Ipv6Net::new(v6, 64).map(|n| n.trunc().to_string()).unwrap_or_else(|_| ip.to_string())
        }
        Ok(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_default(),
        _ => ip.to_string(),
    }
}

impl Principal {
    /// The key prefixes of this principal's account, account-at-IP and second-factor scopes.
    fn prefixes(self) -> [&'static str; 3] {
        match self {
            Principal::User => ["account", "account-ip", "2fa"],
            Principal::Admin => ["admin", "admin-ip", "admin-2fa"],
        }
    }

    /// The key prefixes of this principal's device and ceiling scopes.
    fn device_prefixes(self) -> [&'static str; 3] {
        match self {
            Principal::User => ["device", "ceiling", "device-ceiling"],
            Principal::Admin => ["admin-device", "admin-ceiling", "admin-device-ceiling"],
        }
    }
}

impl Scope {
    pub fn account(who: Principal, name: &str) -> Self {
        Scope::Account(who, normalized(name))
    }
    pub fn account_at_ip(who: Principal, name: &str, ip: &str) -> Self {
        Scope::AccountAtIp(who, normalized(name), ip_key(ip))
    }
    pub fn ip(ip: &str) -> Self {
        Scope::Ip(ip_key(ip))
    }
    pub fn second_factor(who: Principal, name: &str) -> Self {
        Scope::SecondFactor(who, normalized(name))
    }
    pub fn sign_up(ip: &str) -> Self {
        Scope::SignUp(ip_key(ip))
    }
    pub fn ceiling(who: Principal, name: &str) -> Self {
        Scope::Ceiling(who, normalized(name))
    }

    /// A password check of `name` from an unknown device at `ip`: the account's budgets, the
    /// address's, and the ceiling of consecutive failures.
    pub fn unknown_device(who: Principal, name: &str, ip: &str) -> [Scope; 4] {
        let [account, at_ip, ip] = Scope::password(who, name, ip);
        [account, at_ip, ip, Scope::ceiling(who, name)]
    }

    /// A check from known device `id`: its own budget and its own ceiling.
    pub fn known_device(who: Principal, id: i64) -> [Scope; 2] {
        [Scope::Device(who, id), Scope::DeviceCeiling(who, id)]
    }

    /// The ceilings a full sign-in (every factor proven) ends: the account's, and the device's
    /// it came from.
    pub fn ended_by_sign_in(who: Principal, name: &str, device: Option<i64>) -> Vec<Scope> {
        let mut scopes = vec![Scope::ceiling(who, name)];
        scopes.extend(device.map(|id| Scope::DeviceCeiling(who, id)));
        scopes
    }

    /// A password check of `name` from `ip` (login, re-authentication, reset answer).
    pub fn password(who: Principal, name: &str, ip: &str) -> [Scope; 3] {
        [Scope::account(who, name), Scope::account_at_ip(who, name, ip), Scope::ip(ip)]
    }

    /// A second-factor check of `name` from `ip`.
    pub fn second_factor_attempt(who: Principal, name: &str, ip: &str) -> [Scope; 3] {
        [Scope::account(who, name), Scope::ip(ip), Scope::second_factor(who, name)]
    }

    /// The key stored in the `throttle` table.
    pub fn key(&self) -> String {
        match self {
            Scope::Account(who, name) => format!("{}:{name}", who.prefixes()[0]),
            Scope::AccountAtIp(who, name, ip) => format!("{}:{name} {ip}", who.prefixes()[1]),
            Scope::SecondFactor(who, name) => format!("{}:{name}", who.prefixes()[2]),
            Scope::Ip(ip) => format!("ip:{ip}"),
            Scope::SignUp(ip) => format!("register:{ip}"),
            Scope::Device(who, id) => format!("{}:{id}", who.device_prefixes()[0]),
            Scope::Ceiling(who, name) => format!("{}:{name}", who.device_prefixes()[1]),
            Scope::DeviceCeiling(who, id) => format!("{}:{id}", who.device_prefixes()[2]),
        }
    }

    /// Reads a stored key back.
    pub fn parse(key: &str) -> Option<Self> {
        let (kind, rest) = key.split_once(':')?;
        let at_ip = |who| {
            let (name, ip) = rest.rsplit_once(' ')?;
            Some(Scope::AccountAtIp(who, name.into(), ip.into()))
        };
        Some(match kind {
            "account" => Scope::Account(Principal::User, rest.into()),
            "admin" => Scope::Account(Principal::Admin, rest.into()),
            "account-ip" => at_ip(Principal::User)?,
            "admin-ip" => at_ip(Principal::Admin)?,
            "2fa" => Scope::SecondFactor(Principal::User, rest.into()),
            "admin-2fa" => Scope::SecondFactor(Principal::Admin, rest.into()),
            "ip" => Scope::Ip(rest.into()),
            "register" => Scope::SignUp(rest.into()),
            "device" => Scope::Device(Principal::User, rest.parse().ok()?),
            "admin-device" => Scope::Device(Principal::Admin, rest.parse().ok()?),
            "ceiling" => Scope::Ceiling(Principal::User, rest.into()),
            "admin-ceiling" => Scope::Ceiling(Principal::Admin, rest.into()),
            "device-ceiling" => Scope::DeviceCeiling(Principal::User, rest.parse().ok()?),
            "admin-device-ceiling" => Scope::DeviceCeiling(Principal::Admin, rest.parse().ok()?),
            _ => return None,
        })
    }

    /// The client address the scope counts (an IPv6 client as its /64), if it counts one.
    pub fn client_ip(&self) -> Option<&str> {
        match self {
            Scope::AccountAtIp(_, _, ip) | Scope::Ip(ip) | Scope::SignUp(ip) => Some(ip),
            _ => None,
        }
    }

    /// The account the scope counts, if it counts one.
    pub fn account_name(&self) -> Option<(Principal, &str)> {
        match self {
            Scope::Account(who, n)
            | Scope::AccountAtIp(who, n, _)
            | Scope::SecondFactor(who, n)
            | Scope::Ceiling(who, n) => Some((*who, n)),
            _ => None,
        }
    }

    /// A success clears the scopes of the account it proved; an address's budget only gets
    /// its slot back, so one valid account cannot reset a sprayer's count.
    /// Ceilings are not: only a full sign-in ends a run of consecutive failures (a right
    /// password alone, before the second factor, does not).
    fn cleared_by_success(&self) -> bool {
        !matches!(self, Scope::Ip(_) | Scope::SignUp(_) | Scope::Ceiling(..) | Scope::DeviceCeiling(..))
    }
}

/// One stored counter, for `gatehouse lockout list` and the doctor.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Counter {
    pub scope: String,
    pub failures: i64,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub window_start: i64,
    /// Unix time the lock ends; 0 or past when not locked.
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub locked_until: i64,
    pub locked: bool,
}

#[derive(Debug, Clone)]
pub struct Throttle {
    db: Db,
    max_failures: i64,
    ip_max_failures: i64,
    window_secs: i64,
    lock_secs: i64,
}

/// The slots one attempt holds. Say how it ended — [`Attempt::failed`] or
/// [`Attempt::succeeded`]; an attempt dropped on an error keeps its slots, as a failure would.
#[must_use = "an attempt must be ended with failed(), succeeded() or succeeded_in()"]
#[derive(Debug)]
pub struct Attempt {
    throttle: Throttle,
    /// Each scope with the slot it took.
    taken: Vec<(Scope, Slot)>,
}

/// A slot of a scope's window: its number (1 = the first of the window), and the window it is
/// of, so that a slot given back is given back to its own window and never to a later one.
#[derive(Debug, Clone, Copy, sqlx_macros::FromRow)]
struct Slot {
    #[sqlx(rename = "failures")]
    number: i64,
    window_start: i64,
}

impl Throttle {
    pub fn new(db: Db, policy: &Lockout) -> Self {
        Self {
            db,
            max_failures: i64::from(policy.max_failures.max(1)),
            ip_max_failures: i64::from(policy.ip_max_failures.max(1)),
            window_secs: policy.window.as_secs(),
            lock_secs: policy.lock.as_secs(),
        }
    }

    fn limit(&self, scope: &Scope) -> i64 {
        match scope {
            Scope::Ip(_) => self.ip_max_failures,
            Scope::Ceiling(..) | Scope::DeviceCeiling(..) => MAX_CONSECUTIVE_FAILURES,
            _ => self.max_failures,
        }
    }

    /// How long a full account scope stays locked (what a notice tells).
    pub fn lock_minutes(&self) -> i64 {
        self.lock_secs / 60
    }

    /// How long a scope's failures are counted together.
    fn window(&self, scope: &Scope) -> i64 {
        match scope {
            Scope::Ceiling(..) | Scope::DeviceCeiling(..) => CEILING_SECS,
            _ => self.window_secs,
        }
    }

    /// How long a full scope stays locked.
    fn lock(&self, scope: &Scope) -> i64 {
        match scope {
            Scope::Ceiling(..) | Scope::DeviceCeiling(..) => CEILING_SECS,
            _ => self.lock_secs,
        }
    }

    /// Takes a slot in every scope, or none: `None` when one of them is locked or its window
    /// is full (the slots already taken are given back). Check the secret only with an attempt.
    pub async fn begin(&self, scopes: &[Scope]) -> Result<Option<Attempt>> {
        let mut taken = Vec::with_capacity(scopes.len());
        for scope in scopes {
            match self.take(scope).await? {
                Some(slot) => taken.push((scope.clone(), slot)),
                None => {
                    for (scope, slot) in &taken {
                        give_back(self.db.pool(), &scope.key(), slot).await?;
                    }
                    return Ok(None);
                }
            }
        }
        Ok(Some(Attempt { throttle: self.clone(), taken }))
    }

    /// One conditional increment: a window that has passed starts again at one; a locked scope
    /// or a full window takes nothing and returns no row. Atomic on both databases (SQLite
    /// serialises writers; PostgreSQL re-checks the `WHERE` on the row it locked).
    async fn take(&self, scope: &Scope) -> Result<Option<Slot>> {
        let ts = self.db.now();
        Ok(sqlx::query_as(
            "INSERT INTO throttle (scope, failures, window_start, locked_until) VALUES ($1, 1, $2, 0) \
             ON CONFLICT (scope) DO UPDATE SET \
             failures = CASE WHEN throttle.window_start < $3 THEN 1 ELSE throttle.failures + 1 END, \
             window_start = CASE WHEN throttle.window_start < $3 THEN $2 ELSE throttle.window_start END \
             WHERE throttle.locked_until <= $2 AND (throttle.window_start < $3 OR throttle.failures < $4) \
             RETURNING failures, window_start",
        )
        .bind(scope.key())
        .bind(ts)
        .bind(ts - self.window(scope))
        .bind(self.limit(scope))
        .fetch_optional(self.db.pool())
        .await?)
    }

    /// True if any of the scopes is locked now. For what a page says; the decision to check a
    /// secret is [`Throttle::begin`]'s.
    pub async fn is_locked(&self, scopes: &[Scope]) -> Result<bool> {
        for scope in scopes {
            let until: Option<i64> = sqlx::query_scalar("SELECT locked_until FROM throttle WHERE scope = $1")
                .bind(scope.key())
                .fetch_optional(self.db.pool())
                .await?;
            if until.is_some_and(|u| u > self.db.now()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every counter, locked or not, locked ones first.
    pub async fn counters(&self) -> Result<Vec<Counter>> {
        let ts = self.db.now();
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT scope, failures, window_start, locked_until FROM throttle ORDER BY locked_until DESC, scope",
        )
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(scope, failures, window_start, locked_until)| Counter {
                scope,
                failures,
                window_start,
                locked_until,
                locked: locked_until > ts,
            })
            .collect())
    }

    /// Removes the counters whose scope `matching` accepts, locks included. Returns the
    /// scopes removed (an operator's `lockout clear`, `user unlock`).
    pub async fn release(&self, matching: impl Fn(&Scope) -> bool) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for counter in self.counters().await? {
            if Scope::parse(&counter.scope).is_some_and(|s| matching(&s)) {
                sqlx::query("DELETE FROM throttle WHERE scope = $1")
                    .bind(&counter.scope)
                    .execute(self.db.pool())
                    .await?;
                removed.push(counter.scope);
            }
        }
        Ok(removed)
    }

    /// Removes counters whose window and lock have both passed (cron). A ceiling is kept for
    /// its own, longer window.
    ///
    /// One row per statement, as everywhere: a sign-in holds its counters until it commits, and
    /// one statement deleting many rows could hold one of them while it waits for another.
    pub async fn purge(&self) -> Result<u64> {
        let ts = self.db.now();
        let (window, ceiling) = (ts - self.window_secs, ts - CEILING_SECS);
        let passed: Vec<String> = sqlx::query_scalar(
            "SELECT scope FROM throttle WHERE locked_until <= $1 AND \
             ((scope NOT LIKE '%ceiling:%' AND window_start < $2) OR window_start < $3)",
        )
        .bind(ts)
        .bind(window)
        .bind(ceiling)
        .fetch_all(self.db.pool())
        .await?;
        let mut removed = 0;
        for scope in passed {
            // Judged again: an attempt may have started a new window meanwhile.
            removed += sqlx::query(
                "DELETE FROM throttle WHERE scope = $1 AND locked_until <= $2 AND \
                 ((scope NOT LIKE '%ceiling:%' AND window_start < $3) OR window_start < $4)",
            )
            .bind(scope)
            .bind(ts)
            .bind(window)
            .bind(ceiling)
            .execute(self.db.pool())
            .await?
            .rows_affected();
        }
        Ok(removed)
    }

    /// Forgets these scopes' failures and locks (a completed reset), by key.
    pub async fn clear(&self, scopes: &[Scope]) -> Result<()> {
        self.clear_in(&mut *self.db.pool().acquire().await?, scopes).await
    }

    /// [`Throttle::clear`] in the caller's transaction (a full sign-in).
    pub async fn clear_in(&self, conn: &mut AnyConnection, scopes: &[Scope]) -> Result<()> {
        end_in(conn, self.db.now(), scopes.iter().map(|s| (s.key(), Ending::Forget)).collect()).await
    }
}

/// What becomes of one counter when an attempt ends well.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// Removed, lock and all: a full sign-in ends a run of failures whatever it reached.
    Forget,
    /// Removed unless another attempt locked it meanwhile: the account's own budgets.
    Reset,
    /// The slot handed back to its own window: an address's budget, a ceiling.
    GiveBack(Slot),
}

/// Ends counters on `conn` — in a sign-in, its transaction — one statement per row, **in key
/// order**: every transaction that holds more than one counter row takes them in the same
/// order, so two sign-ins never wait on each other in a cycle (PostgreSQL locks each row until
/// the commit; SQLite has one writer). A key that appears twice keeps its strongest ending.
async fn end_in(conn: &mut AnyConnection, now: i64, mut endings: Vec<(String, Ending)>) -> Result<()> {
    endings.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.rank().cmp(&b.1.rank())));
    endings.dedup_by(|later, kept| later.0 == kept.0);
    for (key, ending) in endings {
        match ending {
            Ending::Forget => {
                sqlx::query("DELETE FROM throttle WHERE scope = $1").bind(key).execute(&mut *conn).await?;
            }
            Ending::Reset => {
                sqlx::query("DELETE FROM throttle WHERE scope = $1 AND locked_until <= $2")
                    .bind(key)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
            }
            Ending::GiveBack(slot) => give_back(&mut *conn, &key, &slot).await?,
        }
    }
    Ok(())
}

impl Ending {
    /// Forget before reset before give back: the first of a key's endings is the one kept.
    fn rank(self) -> u8 {
        match self {
            Ending::Forget => 0,
            Ending::Reset => 1,
            Ending::GiveBack(_) => 2,
        }
    }
}

/// One statement per scope, here as in [`end_in`]: each locks one row. A statement over
/// several scopes (`scope IN (…)`) would lock its rows in scan order, and two of them under a
/// flood of attempts could deadlock on PostgreSQL — an aborted give-back keeps the slots a
/// refused attempt must not cost.
///
/// Only to the slot's own window: once the window started again (or a lock reset it), the
/// count is of other attempts — given back there, a late give-back would erase a guess that
/// was checked.
async fn give_back(db: impl sqlx::Executor<'_, Database = Any>, key: &str, slot: &Slot) -> Result<()> {
    sqlx::query("UPDATE throttle SET failures = failures - 1 WHERE scope = $1 AND failures > 0 AND window_start = $2")
        .bind(key)
        .bind(slot.window_start)
        .execute(db)
        .await?;
    Ok(())
}

impl Attempt {
    /// The secret was wrong: the slots stay spent, and a scope this attempt filled is locked
    /// (its count starts again when the lock ends). Returns the scopes that became locked.
    pub async fn failed(self) -> Result<Vec<Scope>> {
        let throttle = &self.throttle;
        let ts = throttle.db.now();
        let mut locked = Vec::new();
        for (scope, slot) in self.taken {
            if slot.number >= throttle.limit(&scope) {
                sqlx::query("UPDATE throttle SET locked_until = $1, failures = 0, window_start = $2 WHERE scope = $3")
                    .bind(ts + throttle.lock(&scope))
                    .bind(ts)
                    .bind(scope.key())
                    .execute(throttle.db.pool())
                    .await?;
                locked.push(scope);
            }
        }
        Ok(locked)
    }

    /// Looks at the secret with this attempt: `check` is the hash. If the hashing threads refused
    /// to queue it (`busy`), the secret was never looked at, so every slot is given back, as if
    /// the attempt had not been made, and the refusal returned; otherwise the attempt comes back
    /// with the check's answer, to be ended by [`Attempt::failed`] or [`Attempt::succeeded`].
    pub async fn check<T>(self, check: impl Future<Output = Result<T>>) -> Result<(Self, T)> {
        match check.await {
            Ok(answer) => Ok((self, answer)),
            Err(busy) if busy.code() == Code::Busy => {
                for (scope, slot) in &self.taken {
                    give_back(self.throttle.db.pool(), &scope.key(), slot).await?;
                }
                Err(busy)
            }
            Err(e) => Err(e),
        }
    }

    /// The secret was right: the account's scopes start again from zero (unless another
    /// attempt locked them meanwhile), the address's get their slot back.
    pub async fn succeeded(&self) -> Result<()> {
        let mut conn = self.throttle.db.pool().acquire().await?;
        self.succeeded_in(&mut conn, &[]).await
    }

    /// [`Attempt::succeeded`] in the caller's transaction, with the scopes the sign-in it
    /// completed ends ([`Scope::ended_by_sign_in`]; none when a second factor is still owed).
    /// Borrowed, so that an attempt whose success the transaction could not write (a backup
    /// code spent meanwhile) can still end as [`Attempt::failed`] after the rollback.
    pub async fn succeeded_in(&self, conn: &mut AnyConnection, ended: &[Scope]) -> Result<()> {
        let taken = self.taken.iter().map(|(scope, slot)| {
            let ending = if scope.cleared_by_success() { Ending::Reset } else { Ending::GiveBack(*slot) };
            (scope.key(), ending)
        });
        let endings = taken.chain(ended.iter().map(|s| (s.key(), Ending::Forget))).collect();
        end_in(conn, self.throttle.db.now(), endings).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_admins_never_share_a_key() {
        let typed = Scope::account(Principal::User, "admin:admin");
        let admin = Scope::account(Principal::Admin, "admin");
        assert_ne!(typed.key(), admin.key());
        assert_eq!(Scope::parse(&admin.key()), Some(admin));
        assert_eq!(Scope::parse(&typed.key()), Some(typed));
        for who in [Principal::User, Principal::Admin] {
            for scope in Scope::unknown_device(who, "Ann@Example.com", "10.0.0.1")
                .into_iter()
                .chain(Scope::second_factor_attempt(who, "x", "::1"))
                .chain(Scope::known_device(who, 7))
            {
                assert_eq!(Scope::parse(&scope.key()), Some(scope));
            }
        }
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        assert_eq!(ip_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(ip_key("2001:db8:1:2:ffff::9"), "2001:db8:1:2::/64");
        assert_ne!(ip_key("2001:db8:1:3::1"), ip_key("2001:db8:1:2::1"));
        assert_eq!(ip_key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(ip_key("192.0.2.7"), "192.0.2.7");
    }
}
