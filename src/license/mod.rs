//! Licensing: the key, its signed remote verification, the signed local cache and the lock on
//! admin functions (REFERENCE.md, "Licensing model"; README, "Licensing").
//!
//! A license is bound to a domain (system_url's host), an IP and an install directory. The key
//! is verified with the vendor's server every 7 days (`gatehouse cron`, job `license`) and when
//! `serve` starts; the signed answer is cached in `data_dir`. When the server cannot be reached
//! the last good answer stands for 3 more days; past that, or when the answer is not `active`,
//! admin functions lock while the client area stays up. No key configured is unlicensed mode:
//! nothing is verified and nothing locks.

pub mod cache;
pub mod key;
pub mod memory;
pub mod protocol;
pub mod records;
pub mod standing;
pub mod vendor;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use serde::Serialize;

pub use cache::Cached;
pub use key::LicenseKey;
pub use protocol::{Answer, Binding, Context, Facts, Signed, Status};
pub use standing::{Here, Standing};

use crate::config::Loaded;
use crate::error::{Code, Error, Result};
use crate::net::http::{self, Stage, Trace};
use crate::net::resolve::Resolver;
use crate::store::Db;

/// How long one verification may take, all network phases together.
pub const VERIFY_DEADLINE: Duration = Duration::from_secs(10);

/// The licensing service of one process.
#[derive(Clone)]
pub struct License {
    settings: crate::config::License,
    data_dir: PathBuf,
    db: Db,
    directory: String,
    domain: Option<String>,
    fingerprint: String,
    memory: Arc<memory::Memory>,
    /// The address this process last reached the licensing server from.
    last_ip: Arc<Mutex<Option<String>>>,
}

/// The vendor's verifying key, when this build embeds one (`GATEHOUSE_LICENSE_PUBLIC_KEY` at
/// compile time): then it alone verifies answers, and a configured `license.public_key` is refused.
pub const EMBEDDED_PUBLIC_KEY: Option<&str> = option_env!("GATEHOUSE_LICENSE_PUBLIC_KEY");

/// The key answers are verified with: the build's, or — in a build without one (development,
/// tests, an operator who is their own vendor) — the configured one.
pub fn verifying_key(embedded: Option<&str>, configured: &str) -> std::result::Result<VerifyingKey, String> {
    match embedded {
        Some(vendor) if !configured.trim().is_empty() && configured.trim() != vendor.trim() => Err(
            "license.public_key is set, but this build carries the vendor's key and verifies answers with it alone: \
             remove license.public_key from the configuration"
                .into(),
        ),
        Some(vendor) => protocol::public_key(vendor).map_err(|e| format!("the key built into gatehouse: {e}")),
        None => protocol::public_key(configured),
    }
}

/// What one verification got.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub context: Context,
    pub facts: Facts,
    #[serde(flatten)]
    pub reply: Reply,
    /// Whether the answer replaced the cache; when not, why.
    pub applied: bool,
    pub not_applied: Option<String>,
    pub phases: Vec<http::Phase>,
}

/// The server's reply, judged.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// A genuine answer for this key.
    Answered {
        answer: Answer,
        #[serde(skip)]
        signed: Signed,
    },
    /// No usable answer: the phase that failed and why.
    NoAnswer { phase: Stage, why: String },
}

impl Reply {
    /// Judges what came back from a verification request.
    pub fn of(trace: &Trace, public_key: &VerifyingKey, key_id: &str) -> Self {
        let no = |phase, why| Reply::NoAnswer { phase, why };
        if let Some(failure) = trace.failure() {
            return no(trace.failed_phase.unwrap_or(Stage::Http), failure);
        }
        let status = trace.status.unwrap_or(0);
        let body = trace.body.as_deref().unwrap_or_default();
        let Ok(signed) = serde_json::from_str::<Signed>(body) else {
            let excerpt: String = body.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(120).collect();
            return no(
                Stage::Protocol,
                format!(
                    "HTTP {status} ({}) is not the licensing protocol — a proxy, a captive portal or a wrong \
                     license.server? It began: {excerpt:?}",
                    trace.content_type().unwrap_or("no content type")
                ),
            );
        };
        match signed.open(public_key) {
            Ok(answer) if answer.key_id != key_id => {
                no(Stage::Signature, format!("the answer is for another key (id {}), not this one", answer.key_id))
            }
            Ok(answer) => Reply::Answered { answer, signed },
            Err(why) => no(
                Stage::Signature,
                format!("{why} — license.public_key is not the server's, or the answer was altered"),
            ),
        }
    }
}

impl License {
    pub fn new(loaded: &Loaded, db: Db) -> Self {
        let config = &loaded.config;
        Self {
            settings: config.license.clone(),
            data_dir: PathBuf::from(&config.data_dir),
            db,
            directory: loaded.install_dir(),
            domain: config.system_url.url().and_then(|u| u.host_str()).map(str::to_string),
            fingerprint: loaded.fingerprint(),
            memory: Arc::default(),
            last_ip: Arc::default(),
        }
    }

    /// Reads what the install remembers (`memory`): call before judging standing from a
    /// process that has not done so lately (serve does every 30 s).
    pub async fn refresh(&self) -> Result<()> {
        self.memory.refresh(&self.db).await
    }

    /// The time standing is judged at: this machine's, never earlier than the high-water mark.
    pub fn judged_at(&self) -> i64 {
        self.db.now().max(self.memory.high_water())
    }

    /// Which kind of build verifies the answers: "embedded" (the vendor's key is built in) or
    /// "configured" (license.public_key).
    pub fn key_source(&self) -> &'static str {
        if EMBEDDED_PUBLIC_KEY.is_some() { "embedded" } else { "configured" }
    }

    /// False in unlicensed mode (no key configured).
    pub fn is_configured(&self) -> bool {
        !self.settings.key.is_empty()
    }

    /// The configured key, checked; `None` in unlicensed mode.
    pub fn key(&self) -> Option<std::result::Result<LicenseKey, String>> {
        self.is_configured().then(|| LicenseKey::parse(self.settings.key.expose()))
    }

    pub fn public_key(&self) -> std::result::Result<VerifyingKey, String> {
        verifying_key(EMBEDDED_PUBLIC_KEY, &self.settings.public_key)
    }

    pub fn server(&self) -> Option<&url::Url> {
        self.settings.server.url()
    }

    pub fn cache_path(&self) -> PathBuf {
        cache::path(&self.data_dir)
    }

    /// This process's facts, with the IP it reached the licensing server from.
    pub fn facts(&self, ip: Option<String>) -> Facts {
        Facts { domain: self.domain.clone(), ip, directory: self.directory.clone() }
    }

    /// What the cache holds for the configured key: `None` in unlicensed mode, `Some(Err)` when
    /// the key or the public key is unusable (then no answer can be judged at all).
    pub fn cached(&self) -> Option<std::result::Result<Cached, String>> {
        let key = self.key()?;
        Some(match (key, self.public_key()) {
            (Ok(key), Ok(public_key)) => Ok(cache::read(&self.data_dir, &public_key, &key.id())),
            (Err(why), _) => Err(format!("license.key: {why}")),
            (_, Err(why)) => Err(why),
        })
    }

    pub fn standing(&self) -> Standing {
        match self.cached() {
            None if self.was_licensed() => Standing::Locked {
                reason: "license.key is empty, but this install has been licensed: removing the key does not \
                         return it to unlicensed mode; set the key again"
                    .into(),
                answer: None,
            },
            None => Standing::Unlicensed,
            Some(Ok(cached)) => standing::judge(&cached, &self.here(), self.judged_at()),
            Some(Err(unusable)) => Standing::Locked { reason: unusable, answer: None },
        }
    }

    /// A genuine answer was once applied here, or a cache file exists.
    fn was_licensed(&self) -> bool {
        self.memory.was_licensed() || self.cache_path().exists()
    }

    fn here(&self) -> Here {
        let ip = self.last_ip.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        Here {
            facts: self.facts(ip),
            first_attempt_at: self.memory.first_attempt_at(),
            last_applied_at: self.memory.last_applied_at(),
        }
    }

    /// Refuses with `license_invalid` while admin functions are locked.
    pub fn require_unlocked(&self) -> Result<()> {
        match self.standing() {
            Standing::Locked { reason, .. } => Err(Error::refused(
                Code::LicenseInvalid,
                format!(
                    "admin functions are locked: {reason}. Run `gatehouse license verify`; if the license is not \
                     active for this installation, ask the vendor to reissue it (the client area stays up)"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Whether the cached answer is due for its next check (or there is no good one).
    pub fn is_due(&self) -> bool {
        !matches!(self.standing(), Standing::Active { .. } | Standing::Unlicensed)
    }

    /// Asks the licensing server now, as `context`. The answer replaces the cache — unless it
    /// is not `active`, comes from another context than the web server's and that context sent
    /// other facts than the web server's last verification: that is a cron or CLI run from the
    /// wrong place, and it must not lock a license that is valid where the site runs.
    /// Names resolve as the service's own connections do: through the system resolver.
    pub async fn verify(&self, context: Context) -> Result<Verification> {
        let resolver = Resolver::new(&[]).map_err(|e| Error::Internal(format!("no resolver: {e}")))?;
        self.memory.attempted(&self.db, self.db.now()).await?;
        let (trace, facts, reply) = self.ask(context, &resolver, VERIFY_DEADLINE).await?;
        if facts.ip.is_some() {
            *self.last_ip.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = facts.ip.clone();
        }
        let not_applied = match &reply {
            Reply::Answered { answer, .. } if answer.status != Status::Active && context != Context::Web => {
                self.differs_from_web(context, &facts).await?
            }
            Reply::Answered { answer, .. }
                if self.memory.last_applied_at().is_some_and(|newest| answer.checked_at.timestamp() < newest) =>
            {
                Some("not applied: the answer is older than the newest one applied here (a replayed answer)".into())
            }
            Reply::Answered { .. } => None,
            Reply::NoAnswer { .. } => Some("no answer: the cached one stands".into()),
        };
        if let (Reply::Answered { signed, answer }, None) = (&reply, &not_applied) {
            cache::write(&self.data_dir, signed).map_err(|e| {
                Error::Internal(format!("cannot write the license cache {}: {e}", self.cache_path().display()))
            })?;
            self.memory.licensed(&self.db, answer.checked_at.timestamp()).await?;
        }
        let applied = not_applied.is_none();
        self.record(context, &facts, &reply, applied).await?;
        match &reply {
            Reply::Answered { answer, .. } => {
                tracing::info!(%context, status = %answer.status, reason = %answer.reason, applied, "license verified")
            }
            Reply::NoAnswer { phase, why } => tracing::warn!(%context, %phase, why, "license server gave no answer"),
        }
        Ok(Verification { context, facts, reply, applied, not_applied, phases: trace.phases })
    }

    /// Sends one verification request and judges the reply, changing nothing here: what
    /// `verify` and the doctor's `license.connectivity` share. Errors when the key or the
    /// configuration make a request pointless.
    pub async fn ask(
        &self,
        context: Context,
        resolver: &Resolver,
        deadline: Duration,
    ) -> Result<(Trace, Facts, Reply)> {
        let usage = |what: String| Error::Usage(format!("{what}; see README, \"Licensing\""));
        let key = match self.key() {
            None => return Err(usage("license.key is not set: unlicensed mode, nothing to verify".into())),
            Some(Err(why)) => return Err(usage(format!("license.key: {why}"))),
            Some(Ok(key)) => key,
        };
        let public_key = self.public_key().map_err(usage)?;
        let server = self.server().ok_or_else(|| usage("license.server is empty: nowhere to verify the key".into()))?;
        let url = server.join("v1/verify").map_err(|e| usage(format!("license.server {server}: {e}")))?;
        let instance_id = crate::store::settings::instance_id(&self.db).await?;

        let request = {
            let (key, facts) = (key.as_str().to_string(), self.facts(None));
            move |local: Option<std::net::SocketAddr>| {
                let facts = Facts { ip: local.map(|a| a.ip().to_string()), ..facts };
                let version = env!("CARGO_PKG_VERSION").to_string();
                serde_json::to_vec(&protocol::Request { key, instance_id, facts, context, version })
                    .expect("a request serializes")
            }
        };
        let trace = http::post_json(&url, resolver, deadline, request).await;
        let facts = self.facts(trace.local_addr.map(|a| a.ip().to_string()));
        let reply = Reply::of(&trace, &public_key, &key.id());
        Ok((trace, facts, reply))
    }

    /// Why an answer from `context` must not be applied: its facts differ from the web server's.
    async fn differs_from_web(&self, context: Context, facts: &Facts) -> Result<Option<String>> {
        let web = records::all(&self.db).await?.into_iter().find(|r| r.context == Context::Web);
        let Some(web) = web else { return Ok(None) };
        let differences = facts.differences(&web.facts());
        if differences.is_empty() {
            return Ok(None);
        }
        let named: Vec<String> = differences
            .iter()
            .map(|(what, mine, theirs)| format!("{what} {mine} ({context}) vs {theirs} (web)"))
            .collect();
        Ok(Some(format!(
            "not applied: this {context} run sent other facts than the web server — {} — so its answer cannot \
             speak for the site; run it from the install directory with the same configuration",
            named.join("; ")
        )))
    }

    async fn record(&self, context: Context, facts: &Facts, reply: &Reply, applied: bool) -> Result<()> {
        let (outcome, reason) = match reply {
            Reply::Answered { answer, .. } => (records::Outcome::Answered(answer.status), answer.reason.clone()),
            Reply::NoAnswer { phase, why } => (records::Outcome::NoAnswer, format!("{phase}: {why}")),
        };
        let record = records::Record {
            context,
            host: sysinfo::System::host_name().unwrap_or_else(|_| "unknown".into()),
            domain: facts.domain.clone(),
            ip: facts.ip.clone(),
            directory: facts.directory.clone(),
            config_fingerprint: self.fingerprint.clone(),
            outcome,
            reason,
            applied: i64::from(applied),
            at: self.db.now(),
        };
        records::save(&self.db, &record).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_with_the_vendors_key_refuses_a_configured_one() {
        let vendor = protocol::encode_public_key(&ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key());
        let operator = protocol::encode_public_key(&ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key());
        assert!(verifying_key(Some(&vendor), "").is_ok(), "the built-in key alone");
        assert!(verifying_key(Some(&vendor), &vendor).is_ok(), "the same key configured changes nothing");
        let refused = verifying_key(Some(&vendor), &operator).unwrap_err();
        assert!(refused.contains("remove license.public_key"), "{refused}");
        assert_eq!(verifying_key(None, &operator).map(|k| protocol::encode_public_key(&k)), Ok(operator));
    }
}
