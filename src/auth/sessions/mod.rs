//! Sessions: an opaque 256-bit cookie token whose SHA-256 is the key in the configured store
//! (`database` or `files`). Idle and absolute timeouts, optional binding to the client IP, a new
//! key on every privilege change, listing and revocation per user, and batched collection.

pub mod cookie;
mod database;
mod files;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::accounts::{Accounts, Principal, UserWithClients};
use crate::config::{Config, SessionStore as StoreKind};
use crate::error::Result;
use crate::secrets::tokens;
use crate::store::{AnyConnection, Clock, Db};

/// How stale `last_seen_at` may get before a request writes it again. Writing on every request
/// would turn every page view into a database write; a minute of slack on a 30-minute idle
/// timeout is invisible to users.
const TOUCH_AFTER_SECS: i64 = 60;

/// What a session carries besides its timestamps.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SessionData {
    /// The signed-in user; `None` for a pre-login session (it still carries a CSRF token).
    pub user_id: Option<i64>,
    /// The client (account) the user is working in.
    pub client_id: Option<i64>,
    pub csrf_token: String,
    /// The client IP the session was last bound to.
    pub ip: String,
    /// The browser's User-Agent at sign-in, so the sessions page can say which device it is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    /// Password accepted, second factor (or its enrolment) outstanding: a user's in the client
    /// area's session, an admin's in the admin area's.
    pub pending: Option<Pending>,
    /// Set when an admin entered through a one-time impersonation link.
    pub impersonated_by: Option<i64>,
    /// A TOTP secret being enrolled, until it is confirmed with a code.
    pub totp_setup: Option<String>,
    /// A message shown once on the next page (a confirmation).
    pub flash: Option<String>,
    /// A refusal shown once on the next page (the admin area's forms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flash_error: Option<String>,
    /// A new two-factor backup code, shown once on the next page and then forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_code: Option<String>,
    /// The signed-in admin, in an admin-area session (its own cookie, `Path=/admin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_id: Option<i64>,
    /// When the person last proved who they are with every factor they have (a sign-in, or a
    /// re-authentication): credential changes need this to be recent. Never set on a session
    /// opened by an impersonation link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated_at: Option<i64>,
}

impl SessionData {
    /// Someone is signed in (a user or an admin): `ip_check` binds such a session to its IP.
    pub fn is_signed_in(&self) -> bool {
        self.user_id.is_some() || self.admin_id.is_some()
    }

    /// The user this session belongs to: signed in, or half-way (password given, second factor
    /// owed). Listing and ending a user's sessions finds both, so a password change also ends
    /// a sign-in left at the second factor.
    pub fn holder_user(&self) -> Option<i64> {
        self.user_id.or(self.pending_for(Principal::User).map(|p| p.id))
    }

    /// The admin this session belongs to, signed in or half-way.
    pub fn holder_admin(&self) -> Option<i64> {
        self.admin_id.or(self.pending_for(Principal::Admin).map(|p| p.id))
    }

    /// The sign-in of `who` this session is half-way through, if any.
    pub fn pending_for(&self, who: Principal) -> Option<&Pending> {
        self.pending.as_ref().filter(|p| p.who == who)
    }

    /// Whether `who` is signing in here and owes enrolment before anything else.
    pub fn enrolling(&self, who: Principal) -> bool {
        self.pending_for(who).is_some_and(|p| p.method == SecondFactor::Enrol)
    }

    /// The signed-in account of kind `who`.
    pub fn signed_in(&self, who: Principal) -> Option<i64> {
        match who {
            Principal::User => self.user_id,
            Principal::Admin => self.admin_id,
        }
    }

    /// Marks `id` of kind `who` signed in.
    pub fn sign_in(&mut self, who: Principal, id: i64) {
        match who {
            Principal::User => self.user_id = Some(id),
            Principal::Admin => self.admin_id = Some(id),
        }
    }
}

/// What is still owed after the password. Stored in session data as `totp`, `duo`, `passkey` or
/// `enrol`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SecondFactor {
    /// A TOTP code, or the backup code (or one of the account's passkeys).
    Totp,
    /// Duo's Universal Prompt.
    Duo,
    /// One of the account's passkeys: its only second factor.
    Passkey,
    /// Two-factor is enforced and none is set up yet: enrolment first.
    Enrol,
}

impl SecondFactor {
    /// A passkey stands in for a code. Not for Duo: a Duo sign-in is Duo's policy to finish.
    pub fn accepts_passkey(self) -> bool {
        matches!(self, SecondFactor::Totp | SecondFactor::Passkey)
    }
}

/// The second factor a half-signed-in session still owes, and whose it is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pending {
    /// Sessions written before admins shared this field had users' only.
    #[serde(default)]
    pub who: Principal,
    /// The user's or admin's id (`user_id` in sessions written before).
    #[serde(alias = "user_id")]
    pub id: i64,
    pub method: SecondFactor,
    pub duo_state: Option<String>,
    pub duo_nonce: Option<String>,
    /// Wrong codes sent in this half-signed-in state; at [`PENDING_TRIES`] it ends.
    #[serde(default)]
    pub wrong_codes: u32,
    /// The known device the password came from (`auth::devices`): the second factor counts
    /// in its budget too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<i64>,
}

/// Wrong second-factor codes one password login allows before the password is asked again.
pub const PENDING_TRIES: u32 = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// SHA-256 of the cookie token: the only form in which it is stored.
    pub key: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub data: SessionData,
}

impl Session {
    /// A session that exists only for this request (a visitor's form), with `csrf_token`.
    pub fn unsaved(csrf_token: &str) -> Self {
        let data = SessionData { csrf_token: csrf_token.to_string(), ..Default::default() };
        Session { key: String::new(), created_at: 0, last_seen_at: 0, data }
    }

    /// False for a session that was never stored.
    pub fn is_saved(&self) -> bool {
        !self.key.is_empty()
    }

    /// A short, non-secret handle for listings and revocation (a prefix of the key's hash).
    pub fn handle(&self) -> &str {
        &self.key[..16]
    }

    /// What listings show of a session (never its key): handle, IP, client, times.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.handle(),
            "ip": self.data.ip,
            "client_id": self.data.client_id,
            "impersonated_by": self.data.impersonated_by,
            "created_at": crate::store::rfc3339(self.created_at),
            "last_seen_at": crate::store::rfc3339(self.last_seen_at),
        })
    }
}

/// Whose sessions: a user's (client area) or an admin's (admin area).
#[derive(Debug, Clone, Copy)]
enum Holder {
    User(i64),
    Admin(i64),
}

impl Holder {
    fn holds(self, data: &SessionData) -> bool {
        match self {
            Holder::User(id) => data.holder_user() == Some(id),
            Holder::Admin(id) => data.holder_admin() == Some(id),
        }
    }
}

/// Where sessions live.
#[derive(Debug, Clone)]
pub enum Store {
    Database(Db),
    /// One JSON file per session, mode 0600, named by the key.
    Files(PathBuf),
}

/// Why a presented session is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Unknown,
    IdleTimeout,
    AbsoluteTimeout,
    IpChanged,
}

#[derive(Debug, Clone)]
pub struct Sessions {
    store: Store,
    clock: Clock,
    idle_secs: i64,
    absolute_secs: i64,
    ip_check: bool,
}

impl Sessions {
    pub fn from_config(config: &Config, db: &Db) -> Self {
        let store = match config.sessions.store {
            StoreKind::Database => Store::Database(db.clone()),
            StoreKind::Files => Store::Files(PathBuf::from(&config.sessions.dir)),
        };
        Self {
            store,
            clock: db.clock().clone(),
            idle_secs: config.sessions.idle_timeout.as_secs(),
            absolute_secs: config.sessions.absolute_timeout.as_secs(),
            ip_check: config.sessions.ip_check,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A new pre-login session bound to `ip`. Returns the cookie token and the session.
    pub async fn start(&self, ip: &str) -> Result<(String, Session)> {
        self.create(SessionData { ip: ip.to_string(), ..Default::default() }).await
    }

    /// Stores a new session holding `data` (with a fresh CSRF token). Returns the cookie token.
    pub async fn create(&self, mut data: SessionData) -> Result<(String, Session)> {
        data.csrf_token = tokens::random().raw;
        self.insert(data).await
    }

    async fn insert(&self, data: SessionData) -> Result<(String, Session)> {
        let (raw, session) = self.minted(data);
        self.write(&session).await?;
        Ok((raw, session))
    }

    /// A new session holding `data` under a new key, not stored yet. Returns its cookie token.
    fn minted(&self, data: SessionData) -> (String, Session) {
        let token = tokens::mint(tokens::TokenKind::Session);
        let ts = self.clock.now();
        (token.raw, Session { key: token.hash, created_at: ts, last_seen_at: ts, data })
    }

    /// The session a cookie token names, if it is still valid for a request from `ip` (an
    /// expired session, or one whose IP changed under `ip_check`, is deleted and reported), with
    /// its signed-in user and their clients (`None` for a session no user holds, or whose user is
    /// gone). On the database store it is one query.
    pub async fn resolve(
        &self,
        raw: &str,
        ip: &str,
        accounts: &Accounts,
    ) -> Result<std::result::Result<(Session, Option<UserWithClients>), Ended>> {
        let key = tokens::digest(raw);
        let found = match &self.store {
            Store::Database(db) => database::read_with_user(db, &key).await?,
            Store::Files(dir) => match files::read(dir, &key).await? {
                Some(session) => {
                    let user = match session.data.user_id {
                        Some(id) => accounts.user_with_clients(id).await?,
                        None => None,
                    };
                    Some((session, user))
                }
                None => None,
            },
        };
        let Some((session, user)) = found else { return Ok(Err(Ended::Unknown)) };
        // A session opened by an impersonation link lasts only while its admin may still open
        // one: an admin disabled since, or whose role lost the permission, takes with them the
        // sessions they opened.
        if let Some(admin_id) = session.data.impersonated_by
            && !accounts.may_impersonate(admin_id).await?
        {
            self.delete(&session.key).await?;
            return Ok(Err(Ended::Unknown));
        }
        Ok(self.judge(session, ip).await?.map(|session| (session, user)))
    }

    /// Ends a session that expired or changed IP against the rules; otherwise keeps its
    /// last-seen time and address current (writing at most once a minute).
    async fn judge(&self, mut session: Session, ip: &str) -> Result<std::result::Result<Session, Ended>> {
        let ts = self.clock.now();
        let ended = if ts - session.created_at >= self.absolute_secs {
            Some(Ended::AbsoluteTimeout)
        } else if ts - session.last_seen_at >= self.idle_secs {
            Some(Ended::IdleTimeout)
        } else if self.ip_check && session.data.is_signed_in() && session.data.ip != ip {
            Some(Ended::IpChanged)
        } else {
            None
        };
        if let Some(reason) = ended {
            self.delete(&session.key).await?;
            return Ok(Err(reason));
        }
        if session.data.ip != ip {
            // Without ip_check the session follows the client; remember the latest address.
            session.data.ip = ip.to_string();
            session.last_seen_at = ts;
            self.update(&session).await?;
        } else if ts - session.last_seen_at >= TOUCH_AFTER_SECS.min(self.idle_secs / 10).max(1) {
            session.last_seen_at = ts;
            self.touch(&session).await?;
        }
        Ok(Ok(session))
    }

    /// Stores changed session data (same key).
    /// Stores what changed in a session that still exists. A session ended meanwhile (signed
    /// out, revoked, ended by a password change or reset) stays ended: a request that was in
    /// flight never brings it back.
    pub async fn save(&self, session: &mut Session) -> Result<()> {
        session.last_seen_at = self.clock.now();
        if !self.update(session).await? {
            tracing::debug!("a session ended while its request ran was not saved again");
        }
        Ok(())
    }

    /// Replaces the session by one with a new key and a new CSRF token and the given data:
    /// used on login, after the second factor and on password change, so a token planted
    /// before the privilege change is worth nothing after it.
    pub async fn rotate(&self, old: &Session, mut data: SessionData) -> Result<(String, Session)> {
        data.csrf_token = tokens::random().raw;
        let created = self.insert(data).await?;
        if old.is_saved() {
            self.delete(&old.key).await?;
        }
        Ok(created)
    }

    /// [`Sessions::rotate`] in the caller's transaction, so the new session exists iff the rest
    /// of the sign-in was recorded. The files store is not transactional: it writes at once.
    pub async fn rotate_in(
        &self,
        conn: &mut AnyConnection,
        old: &Session,
        mut data: SessionData,
    ) -> Result<(String, Session)> {
        let Store::Database(_) = &self.store else { return self.rotate(old, data).await };
        data.csrf_token = tokens::random().raw;
        let (raw, session) = self.minted(data);
        database::insert(&mut *conn, &session).await?;
        if old.is_saved() {
            database::delete(conn, &old.key).await?;
        }
        Ok((raw, session))
    }

    /// Writes, reads back and deletes a throw-away session: proves the store persists sessions.
    pub async fn probe(&self, probe: &Session) -> Result<()> {
        self.write(probe).await?;
        let read = self.read(&probe.key).await?;
        self.delete(&probe.key).await?;
        match read {
            Some(s) if s == *probe => Ok(()),
            Some(_) => Err(crate::Error::SessionStore("session store returned different data than written".into())),
            None => Err(crate::Error::SessionStore("session store lost a session it just stored".into())),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        match &self.store {
            Store::Database(db) => database::delete(db.pool(), key).await,
            Store::Files(dir) => files::delete(dir, key).await,
        }
    }

    /// The user's signed-in sessions, most recently used first.
    pub async fn for_user(&self, user_id: i64) -> Result<Vec<Session>> {
        self.of(Holder::User(user_id)).await
    }

    /// The admin's signed-in admin-area sessions, most recently used first.
    pub async fn for_admin(&self, admin_id: i64) -> Result<Vec<Session>> {
        self.of(Holder::Admin(admin_id)).await
    }

    /// Ends every session of the user except `keep` (a key). Returns how many ended.
    pub async fn end_for_user(&self, user_id: i64, keep: Option<&str>) -> Result<u64> {
        self.end(Holder::User(user_id), keep).await
    }

    /// Ends every admin-area session of the admin except `keep` (a key). Returns how many ended.
    pub async fn end_for_admin(&self, admin_id: i64, keep: Option<&str>) -> Result<u64> {
        self.end(Holder::Admin(admin_id), keep).await
    }

    async fn of(&self, holder: Holder) -> Result<Vec<Session>> {
        let mut list = match &self.store {
            Store::Database(db) => database::of(db, holder).await?,
            Store::Files(dir) => files::all(dir).await?.into_iter().filter(|s| holder.holds(&s.data)).collect(),
        };
        list.sort_by_key(|s| std::cmp::Reverse(s.last_seen_at));
        Ok(list)
    }

    async fn end(&self, holder: Holder, keep: Option<&str>) -> Result<u64> {
        let mut ended = 0;
        for s in self.of(holder).await? {
            if Some(s.key.as_str()) != keep {
                self.delete(&s.key).await?;
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Ends every session but the admin area's — signed in, half-way through a sign-in, or a
    /// visitor's — and with `admins` the admin area's too: everyone signs in again (session
    /// cookies thought stolen). Sessions begun after it started are kept. On the database in
    /// batches, resting between them as [`Sessions::collect_all`] does, so sign-ins never wait
    /// long behind it. Returns how many ended. A session an admin-area sign-in left half-way
    /// counts as the admin area's.
    pub async fn end_everyone(&self, admins: bool, batch: i64) -> Result<u64> {
        // Sessions begun after this started are sign-ins that came later: kept, so the run
        // ends however fast people sign in again.
        let begun_by = self.clock.now();
        let batch = batch.max(1);
        let mut ended = 0;
        match &self.store {
            Store::Database(db) => loop {
                let started = std::time::Instant::now();
                let n = database::end_batch(db, admins, begun_by, batch).await?;
                ended += n;
                if n < batch as u64 {
                    return Ok(ended);
                }
                tokio::time::sleep(started.elapsed()).await;
            },
            // Listed once: each file is read once, whatever the number of sessions (and no
            // database lock is held, so nothing needs a rest).
            Store::Files(dir) => {
                for s in files::all(dir).await? {
                    if s.created_at <= begun_by && (admins || s.data.holder_admin().is_none()) {
                        files::delete(dir, &s.key).await?;
                        ended += 1;
                    }
                }
                Ok(ended)
            }
        }
    }

    /// Ends the user's session whose handle is `handle`; false if there is none.
    pub async fn revoke(&self, user_id: i64, handle: &str) -> Result<bool> {
        match self.for_user(user_id).await?.into_iter().find(|s| s.handle() == handle) {
            Some(s) => self.delete(&s.key).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// Deletes up to `batch` expired sessions; call until it returns less than `batch`.
    /// Small batches keep each write transaction short, so logins never wait long behind GC.
    pub async fn collect_batch(&self, batch: i64) -> Result<u64> {
        let (idle_before, absolute_before) = self.cutoffs();
        match &self.store {
            Store::Database(db) => database::collect(db, idle_before, absolute_before, batch).await,
            Store::Files(dir) => files::collect(dir, idle_before, absolute_before, batch).await,
        }
    }

    /// Deletes every expired session, `batch` per statement, resting between batches as long
    /// as the last one took. Returns how many were removed. The rest matters on SQLite: a login
    /// that finds the database locked retries on a growing back-off (1, 2, 5, 10, … ms), and
    /// batches back to back would keep it waiting past 100 ms.
    pub async fn collect_all(&self, batch: i64) -> Result<u64> {
        let mut removed = 0;
        loop {
            let started = std::time::Instant::now();
            let n = self.collect_batch(batch).await?;
            removed += n;
            if n < batch as u64 {
                return Ok(removed);
            }
            tokio::time::sleep(started.elapsed()).await;
        }
    }

    /// Expired sessions not yet collected: how many, and the oldest `last_seen_at`.
    pub async fn expired(&self) -> Result<(i64, Option<i64>)> {
        let (idle_before, absolute_before) = self.cutoffs();
        match &self.store {
            Store::Database(db) => database::expired(db, idle_before, absolute_before).await,
            Store::Files(dir) => {
                let expired: Vec<i64> = files::all(dir)
                    .await?
                    .into_iter()
                    .filter(|s| s.last_seen_at < idle_before || s.created_at < absolute_before)
                    .map(|s| s.last_seen_at)
                    .collect();
                Ok((expired.len() as i64, expired.iter().min().copied()))
            }
        }
    }

    fn cutoffs(&self) -> (i64, i64) {
        let ts = self.clock.now();
        (ts - self.idle_secs, ts - self.absolute_secs)
    }

    async fn read(&self, key: &str) -> Result<Option<Session>> {
        match &self.store {
            Store::Database(db) => database::read(db, key).await,
            Store::Files(dir) => files::read(dir, key).await,
        }
    }

    async fn write(&self, session: &Session) -> Result<()> {
        match &self.store {
            Store::Database(db) => database::insert(db.pool(), session).await,
            Store::Files(dir) => files::write(dir, session).await,
        }
    }

    /// Writes a session that still exists; false when it is gone.
    async fn update(&self, session: &Session) -> Result<bool> {
        match &self.store {
            Store::Database(db) => database::update(db, session).await,
            Store::Files(dir) => files::update(dir, session).await,
        }
    }

    async fn touch(&self, session: &Session) -> Result<()> {
        match &self.store {
            Store::Database(db) => database::touch(db, &session.key, session.last_seen_at).await,
            // Never re-creates a session ended meanwhile (logged out, revoked, ended for all).
            Store::Files(dir) => files::update(dir, session).await.map(drop),
        }
    }
}
