//! Passkeys (WebAuthn) for users and admins: several per person, named, with their last use. A
//! passkey proves possession of a key held by the person's device *and* their verification on it
//! (a PIN, a fingerprint: user verification is required), so a sign-in with one counts as both
//! factors; after a password it stands in for a TOTP code.
//!
//! The relying party is `webauthn-rs` (kanidm's; pure Rust since 0.6), its ID system_url's host —
//! a domain name: WebAuthn refuses IP addresses, and the doctor says so. A ceremony spans two
//! requests (the options the browser is given, then its answer): the library's state is kept in
//! `passkey_ceremonies` between them, bound to the session that asked (the SHA-256 of its CSRF
//! token), taken once and only for [`CEREMONY_TTL_SECS`]. The browser holds only a random id.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use super::guard::Checked;
use super::sessions::Session;
use super::throttle::Scope;
use super::{Auth, Notice};
use crate::accounts::{CredentialEvent as Event, Credentials, Principal};
use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::secrets::tokens;
use crate::store::Db;

/// How long a ceremony waits for the browser's answer.
pub const CEREMONY_TTL_SECS: i64 = 300;

/// Passkeys one person may keep.
pub const PASSKEYS_PER_ACCOUNT: i64 = 10;

/// Ceremonies one browser (one session's CSRF token) keeps open: its newest few. A page left
/// open keeps one for its autofill, a button asks for another.
const CEREMONIES_PER_BROWSER: i64 = 3;

/// Sign-in ceremonies one address (an IPv6 /64) may have open. They need nothing but a page
/// view, so they are bounded apart; the others need a right password or a signed-in session,
/// so no flood of sign-ins at an address can keep its people from their second factor.
const SIGN_INS_PER_ADDRESS: i64 = 200;

/// The longest passkey name kept.
const NAME_CHARS: usize = 60;

/// What a ceremony proves or makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A new passkey for the signed-in account.
    Register,
    /// The second factor of a sign-in whose password was right.
    SecondFactor,
    /// A sign-in with a passkey alone (discoverable: the passkey says whose it is).
    SignIn,
    /// Re-authentication of the signed-in account, before a credential change.
    Confirm,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::SecondFactor => "second_factor",
            Purpose::SignIn => "sign_in",
            Purpose::Confirm => "confirm",
        }
    }
}

/// The relying party, when passkeys can be used here: `twofa.passkeys` is on and system_url's
/// host is a domain name. Otherwise why not (the doctor reports it).
pub fn relying_party(config: &Config) -> std::result::Result<Webauthn, String> {
    if !config.twofa.passkeys {
        return Err("passkeys are turned off (twofa.passkeys: false)".into());
    }
    let url = config.system_url.url().ok_or("system_url is not set")?;
    let Some(domain) = url.domain() else {
        return Err(format!(
            "system_url's host {} is an IP address; WebAuthn needs a domain name as the relying party ID, so \
             browsers refuse passkeys there",
            url.host_str().unwrap_or_default()
        ));
    };
    let origin = Url::parse(&url.origin().ascii_serialization()).map_err(|e| e.to_string())?;
    WebauthnBuilder::new(domain, &origin)
        .and_then(|b| b.rp_name(domain).build())
        .map_err(|e| format!("system_url cannot be a WebAuthn relying party: {e}"))
}

/// A passkey as its owner's security page lists it.
#[derive(Debug, Clone, Serialize, sqlx_macros::FromRow)]
pub struct PasskeyEntry {
    pub id: i64,
    pub name: String,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::store::serialize_opt_ts")]
    pub last_used_at: Option<i64>,
}

/// What the browser sends back: the ceremony's id and the credential, as JSON.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub ceremony: &'a str,
    pub credential: &'a str,
}

/// What a passkey answer came to, for the faces to map to pages.
#[derive(Debug)]
pub enum Proven {
    /// The account the passkey proved, and for what.
    Account(Box<Credentials>, Purpose),
    /// Not proven: an unknown or expired ceremony, a passkey not of this account, a bad signature.
    Refused,
    /// The address's budget is full: the answer was not looked at.
    Locked,
}

#[derive(sqlx_macros::FromRow)]
struct Ceremony {
    purpose: String,
    principal: String,
    account_id: Option<i64>,
    bound_to: String,
    state: String,
}

#[derive(sqlx_macros::FromRow)]
struct Stored {
    id: i64,
    account_id: i64,
    handle: String,
    passkey: String,
}

/// The passkeys store and the relying party.
#[derive(Clone)]
pub struct Passkeys {
    db: Db,
    party: Option<Arc<Webauthn>>,
}

impl Passkeys {
    pub fn new(db: Db, config: &Config) -> Self {
        Self { db, party: relying_party(config).ok().map(Arc::new) }
    }

    fn party(&self) -> Result<&Webauthn> {
        self.party.as_deref().ok_or_else(|| Error::refused(Code::Forbidden, "passkeys are not available on this site"))
    }

    /// An account's passkeys, newest first.
    pub async fn of(&self, who: Principal, account_id: i64) -> Result<Vec<PasskeyEntry>> {
        Ok(sqlx::query_as(
            "SELECT id, name, created_at, last_used_at FROM passkeys WHERE principal = $1 AND account_id = $2 \
             ORDER BY created_at DESC, id DESC",
        )
        .bind(who.target_type().as_str())
        .bind(account_id)
        .fetch_all(self.db.pool())
        .await?)
    }

    pub async fn count(&self, who: Principal, account_id: i64) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM passkeys WHERE principal = $1 AND account_id = $2")
            .bind(who.target_type().as_str())
            .bind(account_id)
            .fetch_one(self.db.pool())
            .await?)
    }

    async fn stored(&self, who: Principal, account_id: i64) -> Result<Vec<Stored>> {
        Ok(sqlx::query_as(
            "SELECT id, account_id, handle, passkey FROM passkeys WHERE principal = $1 AND account_id = $2",
        )
        .bind(who.target_type().as_str())
        .bind(account_id)
        .fetch_all(self.db.pool())
        .await?)
    }

    /// Forgets every passkey of an account (its second factor reset by staff; a "this wasn't
    /// me" link after one was added). Returns how many.
    pub async fn remove_all(&self, who: Principal, account_id: i64) -> Result<u64> {
        sqlx::query("DELETE FROM passkey_ceremonies WHERE principal = $1 AND account_id = $2")
            .bind(who.target_type().as_str())
            .bind(account_id)
            .execute(self.db.pool())
            .await?;
        Ok(sqlx::query("DELETE FROM passkeys WHERE principal = $1 AND account_id = $2")
            .bind(who.target_type().as_str())
            .bind(account_id)
            .execute(self.db.pool())
            .await?
            .rows_affected())
    }

    /// Removes ceremonies nobody finished (cron).
    pub async fn purge(&self) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM passkey_ceremonies WHERE expires_at <= $1")
            .bind(self.db.now())
            .execute(self.db.pool())
            .await?
            .rows_affected())
    }

    /// Keeps `state` for a ceremony and returns the id the browser answers with.
    async fn open(
        &self,
        purpose: Purpose,
        who: Principal,
        account_id: Option<i64>,
        session: &Session,
        ip: &str,
        state: &impl Serialize,
    ) -> Result<String> {
        let now = self.db.now();
        let bound_to = tokens::digest(&session.data.csrf_token);
        let address = super::throttle::ip_key(ip);
        // The browser's older ceremonies beyond its newest few are dropped.
        sqlx::query(
            "DELETE FROM passkey_ceremonies WHERE bound_to = $1 AND id_hash NOT IN \
             (SELECT id_hash FROM passkey_ceremonies WHERE bound_to = $1 ORDER BY expires_at DESC LIMIT $2)",
        )
        .bind(&bound_to)
        .bind(CEREMONIES_PER_BROWSER - 1)
        .execute(self.db.pool())
        .await?;
        let id = tokens::random();
        let state = serde_json::to_string(state).map_err(|e| Error::Internal(e.to_string()))?;
        let cap = if purpose == Purpose::SignIn { SIGN_INS_PER_ADDRESS } else { 0 };
        // One statement: concurrent requests cannot pass the address's cap together.
        let opened = sqlx::query(
            "INSERT INTO passkey_ceremonies (id_hash, purpose, principal, account_id, bound_to, ip, state, expires_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE $9 = 0 OR (SELECT COUNT(*) FROM passkey_ceremonies \
             WHERE ip = $6 AND purpose = $2 AND expires_at > $10) < $9",
        )
        .bind(&id.hash)
        .bind(purpose.as_str())
        .bind(who.target_type().as_str())
        .bind(account_id)
        .bind(&bound_to)
        .bind(&address)
        .bind(state)
        .bind(now + CEREMONY_TTL_SECS)
        .bind(cap)
        .bind(now)
        .execute(self.db.pool())
        .await?
        .rows_affected();
        if opened == 0 {
            return Err(Error::refused(
                Code::LockedOut,
                "too many passkey sign-ins from this address; try again later",
            ));
        }
        Ok(id.raw)
    }

    /// Takes the ceremony `raw` names, once: it must be live, of kind `who`, and opened by this
    /// session. Returns its purpose, account and state.
    async fn take<S: DeserializeOwned>(
        &self,
        raw: &str,
        who: Principal,
        session: &Session,
    ) -> Result<Option<(Purpose, Option<i64>, S)>> {
        let Some(found) = sqlx::query_as::<_, Ceremony>(
            "DELETE FROM passkey_ceremonies WHERE id_hash = $1 AND expires_at > $2 \
             RETURNING purpose, principal, account_id, bound_to, state",
        )
        .bind(tokens::digest(raw))
        .bind(self.db.now())
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(None);
        };
        let purpose = [Purpose::Register, Purpose::SecondFactor, Purpose::SignIn, Purpose::Confirm]
            .into_iter()
            .find(|p| p.as_str() == found.purpose);
        let ours = found.principal == who.target_type().as_str()
            && tokens::ct_eq(&found.bound_to, &tokens::digest(&session.data.csrf_token));
        let state = serde_json::from_str::<S>(&found.state).ok();
        Ok(match (purpose, ours, state) {
            (Some(purpose), true, Some(state)) => Some((purpose, found.account_id, state)),
            _ => None,
        })
    }
}

/// The credential id as the table keeps it.
fn credential_key(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

fn parse<T: DeserializeOwned>(json: &str) -> Option<T> {
    serde_json::from_str(json).ok()
}

impl Auth {
    /// Whether passkeys can be used here (see [`relying_party`]).
    pub fn passkeys_available(&self) -> bool {
        self.passkeys.party.is_some()
    }

    /// Removes passkey ceremonies nobody finished (cron).
    pub async fn purge_passkey_ceremonies(&self) -> Result<u64> {
        self.passkeys.purge().await
    }

    /// Whether the account has a passkey (its second-factor page offers one).
    pub async fn has_passkeys(&self, who: Principal, id: i64) -> Result<bool> {
        Ok(self.passkeys.count(who, id).await? > 0)
    }

    /// An account's passkeys, for its security page.
    pub async fn passkeys_of(&self, who: Principal, id: i64) -> Result<Vec<PasskeyEntry>> {
        self.passkeys.of(who, id).await
    }

    /// Options for adding a passkey to `creds` — the caller has checked the proof is recent.
    /// The passkeys it has are excluded (a device is not registered twice). Discoverable
    /// credentials are preferred, so most passkeys also sign in without a password; a security
    /// key that cannot keep one still serves as a second factor.
    pub async fn passkey_registration(&self, session: &Session, creds: &Credentials, ip: &str) -> Result<Value> {
        let party = self.passkeys.party()?;
        if creds.twofa_method == Some(crate::accounts::TwoFaMethod::Duo) {
            return Err(Error::invalid(
                "your sign-ins go through Duo, and a passkey would sign in without it; ask for Duo to be turned off first",
            ));
        }
        let stored = self.passkeys.stored(creds.who, creds.id).await?;
        if stored.len() as i64 >= PASSKEYS_PER_ACCOUNT {
            return Err(Error::invalid(format!(
                "you have {PASSKEYS_PER_ACCOUNT} passkeys, the most one account keeps; remove one first"
            )));
        }
        // One handle per account, random: it names nobody outside this site.
        let handle = match stored.first() {
            Some(s) => Uuid::parse_str(&s.handle).map_err(|e| Error::Internal(e.to_string()))?,
            None => Uuid::from_bytes(rand::random()),
        };
        let keys: Vec<Passkey> = stored.iter().filter_map(|s| parse(&s.passkey)).collect();
        let exclude = keys.iter().map(|k| k.cred_id().clone()).collect();
        let (mut options, state) = party
            .start_passkey_registration(handle, &creds.login, &creds.login, Some(exclude))
            .map_err(|e| Error::Internal(format!("passkey registration could not start: {e}")))?;
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Preferred);
            selection.require_resident_key = false;
        }
        let ceremony =
            self.passkeys.open(Purpose::Register, creds.who, Some(creds.id), session, ip, &(handle, state)).await?;
        Ok(json!({"ceremony": ceremony, "options": options}))
    }

    /// Adds the passkey the browser made for the ceremony `answer` names, under `name`, and
    /// tells the account's owner.
    pub async fn add_passkey(
        &self,
        session: &Session,
        creds: &Credentials,
        answer: Answer<'_>,
        name: &str,
        ip: &str,
    ) -> Result<()> {
        let party = self.passkeys.party()?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > NAME_CHARS {
            return Err(Error::invalid(format!("give the passkey a name of 1 to {NAME_CHARS} characters")));
        }
        crate::accounts::refuse_control_characters("the passkey's name", name)?;
        let taken = self.passkeys.take::<(Uuid, PasskeyRegistration)>(answer.ceremony, creds.who, session).await?;
        let Some((Purpose::Register, Some(account), (handle, state))) = taken else {
            return Err(Error::refused(Code::InvalidToken, "this passkey request has expired; try again"));
        };
        if account != creds.id {
            return Err(Error::refused(Code::InvalidToken, "this passkey request was for another account"));
        }
        let credential: RegisterPublicKeyCredential =
            parse(answer.credential).ok_or_else(|| Error::invalid("the browser's answer is not a passkey"))?;
        let passkey = party
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| Error::refused(Code::InvalidCredentials, format!("the passkey was not accepted: {e}")))?;
        let stored = serde_json::to_string(&passkey).map_err(|e| Error::Internal(e.to_string()))?;
        let inserted = sqlx::query(
            "INSERT INTO passkeys (principal, account_id, handle, credential_id, name, passkey, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE (SELECT COUNT(*) FROM passkeys WHERE principal = $1 \
             AND account_id = $2) < $8 ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(creds.who.target_type().as_str())
        .bind(creds.id)
        .bind(handle.to_string())
        .bind(credential_key(passkey.cred_id()))
        .bind(name)
        .bind(stored)
        .bind(self.accounts.db().now())
        .bind(PASSKEYS_PER_ACCOUNT)
        .execute(self.accounts.db().pool())
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(Error::refused(
                Code::AlreadyExists,
                "this passkey is registered already, or the account has as many as it may keep",
            ));
        }
        let details = json!({"name": name});
        self.accounts
            .record_event(&creds.actor(ip), creds.who.action(Event::PasskeyAdded), creds.target(), details)
            .await?;
        self.notify(creds.who, creds.id, Notice::PasskeyAdded { name: name.to_string() }).await;
        Ok(())
    }

    /// Removes one of the account's passkeys — the caller has checked the proof is recent — and
    /// tells its owner.
    pub async fn remove_passkey(&self, creds: &Credentials, passkey_id: i64, ip: &str) -> Result<()> {
        let name: Option<String> = sqlx::query_scalar(
            "DELETE FROM passkeys WHERE id = $1 AND principal = $2 AND account_id = $3 RETURNING name",
        )
        .bind(passkey_id)
        .bind(creds.who.target_type().as_str())
        .bind(creds.id)
        .fetch_optional(self.accounts.db().pool())
        .await?;
        let Some(name) = name else { return Err(Error::not_found("passkey", passkey_id)) };
        let details = json!({"name": name});
        self.accounts
            .record_event(&creds.actor(ip), creds.who.action(Event::PasskeyRemoved), creds.target(), details)
            .await?;
        self.notify(creds.who, creds.id, Notice::PasskeyRemoved { name }).await;
        Ok(())
    }

    /// Options for proving who `session` is with a passkey, of kind `who`. What it proves follows
    /// from the session: a signed-in one re-authenticates its account; one whose password was
    /// right (and that owes a code or a passkey) gives its second factor; any other signs in
    /// with a passkey alone, which names its account.
    pub async fn passkey_challenge(&self, session: &Session, who: Principal, ip: &str) -> Result<Value> {
        let party = self.passkeys.party()?;
        let data = &session.data;
        let proving = match (data.signed_in(who), data.pending_for(who)) {
            (Some(id), _) if data.impersonated_by.is_none() => Some((Purpose::Confirm, id)),
            (Some(_), _) => return Err(Error::refused(Code::Forbidden, "a session opened by an administrator cannot")),
            (None, Some(p)) if p.method.accepts_passkey() => Some((Purpose::SecondFactor, p.id)),
            (None, Some(_)) => return Err(Error::refused(Code::Forbidden, "this sign-in does not take a passkey")),
            (None, None) => None,
        };
        let (options, ceremony) = match proving {
            Some((purpose, id)) => {
                let keys: Vec<Passkey> =
                    self.passkeys.stored(who, id).await?.iter().filter_map(|s| parse(&s.passkey)).collect();
                if keys.is_empty() {
                    return Err(Error::refused(Code::NotFound, "this account has no passkey"));
                }
                let (options, state) = party
                    .start_passkey_authentication(&keys)
                    .map_err(|e| Error::Internal(format!("a passkey check could not start: {e}")))?;
                let ceremony = self.passkeys.open(purpose, who, Some(id), session, ip, &state).await?;
                (serde_json::to_value(options), ceremony)
            }
            None => {
                let (options, state) = party
                    .start_discoverable_authentication()
                    .map_err(|e| Error::Internal(format!("a passkey sign-in could not start: {e}")))?;
                let ceremony = self.passkeys.open(Purpose::SignIn, who, None, session, ip, &state).await?;
                (serde_json::to_value(options), ceremony)
            }
        };
        let options = options.map_err(|e| Error::Internal(e.to_string()))?;
        Ok(json!({"ceremony": ceremony, "options": options}))
    }

    /// Checks the browser's answer to [`Auth::passkey_challenge`]. Failures count in the
    /// address's budget (a signature cannot be guessed; this bounds the work a flood costs). On
    /// success the passkey's counter and last use are kept, and the account is returned with
    /// what it was proven for.
    pub async fn check_passkey(
        &self,
        session: &Session,
        who: Principal,
        answer: Answer<'_>,
        ip: &str,
    ) -> Result<Proven> {
        let party = self.passkeys.party()?;
        let scopes = [Scope::ip(ip)];
        let actor = crate::accounts::Actor::system("passkey").with_ip(ip);
        // The account a refused answer was for, once its ceremony says (a second factor, a
        // confirmation): the audit log shows the failure on that account.
        let aimed_at = std::sync::Mutex::new(None);
        let target = (who.target_type(), None);
        let checked = self
            .guarded(who, &scopes, &actor, target, async {
                let Some(credential) = parse::<PublicKeyCredential>(answer.credential) else { return Ok(None) };
                let Some((purpose, account, state)) =
                    self.passkeys.take::<Value>(answer.ceremony, who, session).await?
                else {
                    return Ok(None);
                };
                *aimed_at.lock().expect("not poisoned") = account;
                // The passkey the browser used, of the account the ceremony is for (or, for a
                // sign-in, the account the passkey names).
                let key = credential_key(credential.get_credential_id());
                let Some(stored) = self.passkey_by_credential(who, &key).await? else { return Ok(None) };
                let mut passkey: Passkey = parse(&stored.passkey).ok_or_else(corrupt)?;
                let result = match (purpose, account) {
                    (Purpose::SignIn, None) => {
                        let (handle, _) = match party.identify_discoverable_authentication(&credential) {
                            Ok(found) => found,
                            Err(_) => return Ok(None),
                        };
                        let Some(state) = parse_value::<DiscoverableAuthentication>(state) else { return Ok(None) };
                        if handle.to_string() != stored.handle {
                            return Ok(None);
                        }
                        party.finish_discoverable_authentication_v2(&credential, state, &passkey)
                    }
                    (Purpose::SecondFactor | Purpose::Confirm, Some(id)) if id == stored.account_id => {
                        let Some(state) = parse_value::<PasskeyAuthentication>(state) else { return Ok(None) };
                        party.finish_passkey_authentication(&credential, &state)
                    }
                    _ => return Ok(None),
                };
                let Ok(result) = result else { return Ok(None) };
                passkey.update_credential(&result);
                let kept = serde_json::to_string(&passkey).map_err(|e| Error::Internal(e.to_string()))?;
                sqlx::query("UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE id = $3")
                    .bind(kept)
                    .bind(self.accounts.db().now())
                    .bind(stored.id)
                    .execute(self.accounts.db().pool())
                    .await?;
                Ok(Some((purpose, stored.account_id)))
            })
            .await?;
        Ok(match checked {
            Checked::Right((purpose, id)) => {
                let creds = self.accounts.credentials(who, id).await?;
                self.accounts
                    .record_event(&creds.actor(ip), who.action(Event::PasskeyOk), creds.target(), json!({}))
                    .await?;
                Proven::Account(Box::new(creds), purpose)
            }
            Checked::Wrong => {
                let target = (who.target_type(), aimed_at.into_inner().expect("not poisoned"));
                self.accounts.record_event(&actor, who.action(Event::PasskeyFailed), target, json!({})).await?;
                Proven::Refused
            }
            Checked::Locked => Proven::Locked,
        })
    }

    async fn passkey_by_credential(&self, who: Principal, key: &str) -> Result<Option<Stored>> {
        Ok(sqlx::query_as(
            "SELECT id, account_id, handle, passkey FROM passkeys WHERE principal = $1 AND credential_id = $2",
        )
        .bind(who.target_type().as_str())
        .bind(key)
        .fetch_optional(self.accounts.db().pool())
        .await?)
    }
}

fn parse_value<T: DeserializeOwned>(value: Value) -> Option<T> {
    serde_json::from_value(value).ok()
}

fn corrupt() -> Error {
    Error::Internal("a stored passkey cannot be read".into())
}
