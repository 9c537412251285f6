//! The vendor's side of the licensing protocol (`gatehouse licensing …`), on the same types as
//! the installs' side: the keys a vendor issued, what each is bound to and its status, kept in
//! the vendor's own SQLite database; every verification answered with an [`Answer`] signed by
//! the vendor's key. An unbound key is bound to the facts of its first verification **by a web
//! server** (a cron or a CLI run is not where the site lives); `reissue` frees the binding after a
//! move. Every change and every answer is audited in the same database.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde_json::json;

use super::key::{LicenseKey, key_id};
use super::protocol::{Answer, Binding, Context, Request, Status};
use crate::config::DatabaseUrl;
use crate::error::{Code, Error, Result};
use crate::store::Db;

/// How long an answer stands before the install asks again.
const ANSWER_FOR_DAYS: i64 = 7;

/// The longest fact a request may carry (a directory path); longer is not a real install.
const MAX_FACT: usize = 4096;

fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).expect("strings serialize")
}

const SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS licenses (
    key_id      TEXT PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    domains     TEXT NOT NULL DEFAULT '[]',
    ips         TEXT NOT NULL DEFAULT '[]',
    directories TEXT NOT NULL DEFAULT '[]',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS vendor_audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    action  TEXT NOT NULL,
    key_id  TEXT NOT NULL,
    details TEXT NOT NULL
);";

/// One issued key, as the vendor keeps it (the binding's lists as JSON text).
#[derive(Debug, Clone, sqlx_macros::FromRow)]
pub struct Issued {
    pub key_id: String,
    pub key: String,
    pub status: String,
    pub reason: String,
    domains: String,
    ips: String,
    directories: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What `licensing list --json` shows of a key: never the key itself.
impl Serialize for Issued {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        json!({
            "key_id": self.key_id,
            "status": self.status,
            "reason": self.reason,
            "binding": self.binding(),
            "created_at": crate::store::rfc3339(self.created_at),
            "updated_at": crate::store::rfc3339(self.updated_at),
        })
        .serialize(s)
    }
}

impl Issued {
    /// The binding, kept as JSON lists: a value holding a comma is one value, never several.
    pub fn binding(&self) -> Binding {
        let list = |s: &str| serde_json::from_str(s).unwrap_or_default();
        Binding { domains: list(&self.domains), ips: list(&self.ips), directories: list(&self.directories) }
    }

    fn status(&self) -> Status {
        match self.status.as_str() {
            "suspended" => Status::Suspended,
            "expired" => Status::Expired,
            "invalid" => Status::Invalid,
            _ => Status::Active,
        }
    }
}

/// The vendor's registry of keys.
pub struct Registry {
    db: Db,
}

impl Registry {
    /// Opens (creating it on first use) the vendor's database at `path`.
    pub async fn open(path: &Path) -> Result<Self> {
        let url: DatabaseUrl = format!("sqlite://{}", path.display()).parse().map_err(Error::Usage)?;
        let db = Db::connect(&url, "--db").await?;
        sqlx::raw_sql(SCHEMA).execute(db.pool()).await?;
        Ok(Self { db })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    async fn audit(&self, action: &str, key_id: &str, details: serde_json::Value) -> Result<()> {
        sqlx::query("INSERT INTO vendor_audit (at, action, key_id, details) VALUES ($1, $2, $3, $4)")
            .bind(self.db.now())
            .bind(action)
            .bind(key_id)
            .bind(details.to_string())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Issues a new key, bound in advance to `binding` (or to nothing: then its first web
    /// verification binds it).
    pub async fn issue(&self, binding: &Binding) -> Result<(LicenseKey, Issued)> {
        let mut random = [0u8; 20];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut random);
        let key = LicenseKey::issue(random);
        let now = self.db.now();
        sqlx::query(
            "INSERT INTO licenses (key_id, key, status, domains, ips, directories, created_at, updated_at) \
             VALUES ($1, $2, 'active', $3, $4, $5, $6, $6)",
        )
        .bind(key.id())
        .bind(key.as_str())
        .bind(json_list(&binding.domains))
        .bind(json_list(&binding.ips))
        .bind(json_list(&binding.directories))
        .bind(now)
        .execute(self.db.pool())
        .await?;
        self.audit("issue", &key.id(), json!({"binding": binding})).await?;
        let issued = self.get(key.as_str()).await?;
        Ok((key, issued))
    }

    /// A key as issued, by the key or its id.
    pub async fn get(&self, key_or_id: &str) -> Result<Issued> {
        let id = LicenseKey::parse(key_or_id).map(|k| k.id()).unwrap_or_else(|_| key_or_id.trim().to_string());
        sqlx::query_as("SELECT * FROM licenses WHERE key_id = $1")
            .bind(&id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| Error::not_found("license key", key_or_id.trim()))
    }

    pub async fn list(&self) -> Result<Vec<Issued>> {
        Ok(sqlx::query_as("SELECT * FROM licenses ORDER BY created_at, key_id").fetch_all(self.db.pool()).await?)
    }

    /// Frees a key's binding (the install moved): its next web verification binds it again.
    pub async fn reissue(&self, key_or_id: &str) -> Result<Issued> {
        let issued = self.get(key_or_id).await?;
        sqlx::query(
            "UPDATE licenses SET domains = '[]', ips = '[]', directories = '[]', updated_at = $1 WHERE key_id = $2",
        )
        .bind(self.db.now())
        .bind(&issued.key_id)
        .execute(self.db.pool())
        .await?;
        self.audit("reissue", &issued.key_id, json!({"was": issued.binding()})).await?;
        self.get(&issued.key_id).await
    }

    /// Sets a key's status (`suspend`, `resume`), with the reason the install is told.
    pub async fn set_status(&self, key_or_id: &str, status: Status, reason: &str) -> Result<Issued> {
        let issued = self.get(key_or_id).await?;
        sqlx::query("UPDATE licenses SET status = $1, reason = $2, updated_at = $3 WHERE key_id = $4")
            .bind(status.as_str())
            .bind(reason)
            .bind(self.db.now())
            .bind(&issued.key_id)
            .execute(self.db.pool())
            .await?;
        self.audit(status.as_str(), &issued.key_id, json!({"reason": reason})).await?;
        self.get(&issued.key_id).await
    }

    /// The verdict on one verification request, binding an unbound key to a web server's facts.
    pub async fn answer(&self, request: &Request) -> Result<Answer> {
        let id = key_id(&request.key);
        let now = self.db.now();
        let at = DateTime::<Utc>::from_timestamp(now, 0).unwrap_or_default();
        let verdict = |status, binding, reason: String| Answer {
            key_id: id.clone(),
            status,
            binding,
            reason,
            checked_at: at,
            next_check_at: at + chrono::Duration::days(ANSWER_FOR_DAYS),
        };
        let issued = match self.get(&request.key).await {
            Ok(issued) if issued.key == request.key.trim().to_ascii_uppercase() => issued,
            Ok(_) | Err(Error::Refused { code: Code::NotFound, .. }) => {
                // Not issued: recorded by the id only — an unknown caller's facts are not kept.
                self.audit("verify", &id, json!({"status": "invalid", "why": "unknown key"})).await?;
                return Ok(verdict(Status::Invalid, Binding::default(), "this key was never issued".into()));
            }
            Err(e) => return Err(e),
        };
        let binding = issued.binding();
        let answer = if issued.status() != Status::Active {
            verdict(issued.status(), binding, issued.reason.clone())
        } else if binding == Binding::default() {
            match self.bind(&id, request).await? {
                Ok(bound) => verdict(Status::Active, bound, String::new()),
                Err(why) => verdict(Status::Invalid, Binding::default(), why),
            }
        } else {
            let outside = binding.mismatches(&request.facts, request.context.as_str());
            if outside.is_empty() {
                verdict(Status::Active, binding, String::new())
            } else {
                let why = format!("not licensed for this installation: {}", outside.join("; "));
                verdict(Status::Invalid, binding, why)
            }
        };
        let details =
            json!({"context": request.context, "facts": request.facts, "status": answer.status, "why": answer.reason});
        self.audit("verify", &id, details).await?;
        Ok(answer)
    }

    /// Binds an unbound key to the facts of a web server's verification — all three of them,
    /// each one value — in one conditional statement, so of several first verifications at
    /// once exactly one binds and the others are judged against it.
    async fn bind(&self, id: &str, request: &Request) -> Result<std::result::Result<Binding, String>> {
        if request.context != Context::Web {
            return Ok(Err(format!(
                "not bound yet: the first verification must come from the web server, not {}",
                request.context
            )));
        }
        let facts = &request.facts;
        let (Some(domain), Some(ip)) = (facts.domain.as_deref(), facts.ip.as_deref()) else {
            return Ok(Err("a first verification names its domain, IP and directory; this one did not".into()));
        };
        let sound = |v: &str| !v.trim().is_empty() && v.len() <= MAX_FACT && !v.chars().any(char::is_control);
        if !(sound(domain) && sound(ip) && sound(&facts.directory)) {
            return Ok(Err("the facts of this verification are not a domain, an IP and a directory".into()));
        }
        let binding =
            Binding { domains: vec![domain.into()], ips: vec![ip.into()], directories: vec![facts.directory.clone()] };
        let bound = sqlx::query(
            "UPDATE licenses SET domains = $1, ips = $2, directories = $3, updated_at = $4 \
             WHERE key_id = $5 AND domains = '[]' AND ips = '[]' AND directories = '[]'",
        )
        .bind(json_list(&binding.domains))
        .bind(json_list(&binding.ips))
        .bind(json_list(&binding.directories))
        .bind(self.db.now())
        .bind(id)
        .execute(self.db.pool())
        .await?
        .rows_affected()
            == 1;
        if bound {
            self.audit("bind", id, json!({"binding": binding})).await?;
            return Ok(Ok(binding));
        }
        // Another first verification bound it a moment ago: judged against that binding.
        let now_bound = self.get(id).await?.binding();
        let outside = now_bound.mismatches(facts, request.context.as_str());
        Ok(if outside.is_empty() {
            Ok(now_bound)
        } else {
            Err(format!("not licensed for this installation: {}", outside.join("; ")))
        })
    }
}

/// Writes a new signing key (its 32-byte seed, base64, mode 0600) to `path`, never over an
/// existing one; returns its public half as `license.public_key` takes it.
pub fn keygen(path: &Path) -> Result<String> {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
    let signing = SigningKey::from_bytes(&seed);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| {
        Error::Usage(format!("cannot create {} (an existing key is never overwritten): {e}", path.display()))
    })?;
    file.write_all(format!("{}\n", B64.encode(seed)).as_bytes())
        .map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))?;
    Ok(super::protocol::encode_public_key(&signing.verifying_key()))
}

/// Reads the signing key `keygen` wrote.
pub fn signing_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read the signing key {}: {e}", path.display())))?;
    let seed: [u8; 32] = B64.decode(text.trim()).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| {
        Error::Usage(format!("{} is not a signing key written by `licensing keygen`", path.display()))
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::license::protocol::Facts;

    fn request(key: &str, context: Context, directory: &str) -> Request {
        Request {
            key: key.into(),
            instance_id: "i".into(),
            facts: Facts {
                domain: Some("portal.example.com".into()),
                ip: Some("203.0.113.7".into()),
                directory: directory.into(),
            },
            context,
            version: "test".into(),
        }
    }

    #[tokio::test]
    async fn the_first_web_verification_binds_and_a_move_is_invalid_until_reissued() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let registry = Registry::open(&dir.path().join("licensing.db")).await.expect("opens");
        let (key, _) = registry.issue(&Binding::default()).await.expect("issues");
        let cron_first = registry.answer(&request(key.as_str(), Context::Cron, "/srv/a")).await.expect("answers");
        assert_eq!(cron_first.status, Status::Invalid, "only a web server binds");
        let web = registry.answer(&request(key.as_str(), Context::Web, "/srv/a")).await.expect("answers");
        assert_eq!(web.status, Status::Active);
        assert_eq!(web.binding.directories, ["/srv/a"]);
        let moved = registry.answer(&request(key.as_str(), Context::Web, "/srv/b")).await.expect("answers");
        assert_eq!(moved.status, Status::Invalid);
        assert!(moved.reason.contains("licensed for directory /srv/a"), "{}", moved.reason);
        registry.reissue(key.as_str()).await.expect("reissues");
        let again = registry.answer(&request(key.as_str(), Context::Web, "/srv/b")).await.expect("answers");
        assert_eq!((again.status, again.binding.directories.clone()), (Status::Active, vec!["/srv/b".to_string()]));
        registry.set_status(&key.id(), Status::Suspended, "payment overdue").await.expect("suspends");
        let suspended = registry.answer(&request(key.as_str(), Context::Web, "/srv/b")).await.expect("answers");
        assert_eq!((suspended.status, suspended.reason.as_str()), (Status::Suspended, "payment overdue"));
        let unknown = registry.answer(&request(LicenseKey::issue([3; 20]).as_str(), Context::Web, "/")).await;
        assert_eq!(unknown.expect("answers").status, Status::Invalid);
    }

    #[tokio::test]
    async fn a_first_verification_binds_one_install_only() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let registry = Registry::open(&dir.path().join("licensing.db")).await.expect("opens");
        // Facts left out bind nothing: refused.
        let (key, _) = registry.issue(&Binding::default()).await.expect("issues");
        let mut blank = request(key.as_str(), Context::Web, "/srv/a");
        blank.facts.domain = None;
        assert_eq!(registry.answer(&blank).await.expect("answers").status, Status::Invalid);
        // A comma is part of one value, never a list of several.
        let mut listed = request(key.as_str(), Context::Web, "/srv/a");
        listed.facts.domain = Some("alpha.example,beta.example".into());
        assert_eq!(registry.answer(&listed).await.expect("answers").status, Status::Active);
        let mut beta = request(key.as_str(), Context::Web, "/srv/a");
        beta.facts.domain = Some("beta.example".into());
        assert_eq!(registry.answer(&beta).await.expect("answers").status, Status::Invalid);
        // Parallel first verifications from different installs: exactly one is active.
        let (fresh, _) = registry.issue(&Binding::default()).await.expect("issues");
        let registry = std::sync::Arc::new(registry);
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let (registry, key) = (registry.clone(), fresh.as_str().to_string());
                tokio::spawn(async move { registry.answer(&request(&key, Context::Web, &format!("/srv/{i}"))).await })
            })
            .collect();
        let mut active = 0;
        for task in tasks {
            active += usize::from(task.await.expect("joins").expect("answers").status == Status::Active);
        }
        assert_eq!(active, 1, "one binding, one active answer");
    }
}
