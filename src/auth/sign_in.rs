//! One sign-in for users and admins. A sign-in is a small state machine kept in the session: the
//! password step, then — when one is owed — the second factor (a TOTP code or the backup code,
//! or Duo's Universal Prompt) or its enrolment, then a new signed-in session. Each step returns
//! a [`Step`]; the client area and the admin area only map steps to their pages. A second factor
//! added here serves both kinds of account by construction.
//!
//! Every secret is checked through [`Auth::guarded`], under the [`Principal`]'s own throttle
//! scopes, and every step is audited under the principal's own names.

use serde_json::json;

use super::Notice;
use super::backup_code::Spent;
use super::duo::Duo;
use super::guard::Checked;
use super::passkeys::{Answer as PasskeyAnswer, Proven, Purpose};
use super::service::{Auth, SignedIn, TotpEnrolment, Visitor};
use super::sessions::{PENDING_TRIES, Pending, SecondFactor, Session, SessionData};
use super::throttle::{Attempt, Scope};
use crate::accounts::{Actor, CredentialEvent as Event, Credentials, Membership, Principal, TwoFaMethod};
use crate::accounts::{AuditAction, admin_shut_out_in, record_in};
use crate::error::{Code, Error, Result};
use crate::secrets::passwords::{self, Requester, verify_any_async};
use crate::secrets::{backup_codes, tokens, totp};
use crate::store::AnyConnection;

/// Where a sign-in stands after a step.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Unknown account, wrong password, none set, disabled, or a full budget: one answer.
    Refused,
    /// Every client of the user is closed.
    ClientsClosed,
    /// The password was right; the new session (its cookie) owes `method` (TOTP or Duo).
    SecondFactor { cookie: String, method: SecondFactor },
    /// Two-factor is required and none is set up: the new session reaches enrolment only.
    Enrol { cookie: String },
    /// Signed in on a new session; `device` is a new device token for the browser to keep.
    Done { cookie: String, device: Option<String> },
    /// A wrong code — or a right backup code another request spent first; the sign-in goes on
    /// while tries remain.
    WrongCode { backup: bool },
    /// Too many wrong codes for one password: the sign-in ended, the password is asked again.
    Restart,
    /// A budget is full: the code was not looked at.
    Locked,
    /// The second factor was not proven (Duo's answer), for the reason given.
    Failed(String),
    /// This session is not half-way through a sign-in of this kind that owes this step.
    NotSigningIn,
}

/// A code offered for the second factor.
#[derive(Debug, Clone, Copy)]
pub enum CodeProof<'a> {
    Totp(&'a str),
    Backup(&'a str),
}

/// What opening Duo's Universal Prompt came to.
#[derive(Debug)]
pub enum Prompt {
    /// Send the browser here.
    Redirect(String),
    NotConfigured,
    /// Duo's health check failed, for this reason.
    Down(String),
}

/// What Duo sent back to the callback.
#[derive(Debug, Default)]
pub struct DuoAnswer {
    pub state: Option<String>,
    pub duo_code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

const BACKUP_USED: &str = "You signed in with your backup code, which is now used up. Your new one is below.";

impl Auth {
    /// The password step. The attempt takes its slots in the account's and the client IP's
    /// budgets before the password is looked at; a full budget is refused like a wrong password,
    /// after the same work. On success the old session is replaced by one that is signed in, or
    /// that owes the second factor or its enrolment.
    pub async fn sign_in_with_password(
        &self,
        who: Principal,
        login: &str,
        password: &str,
        old: &Session,
        from: &Visitor,
    ) -> Result<Step> {
        let ip = from.ip.as_str();
        // The clients are read with the account, before the hash: one closed while it runs is
        // still refused by every page, which reads them again (`Ctx::membership`).
        let (creds, clients) = match self.account_by_login(who, login).await? {
            Some((creds, clients)) => (Some(creds), clients),
            None => (None, Vec::new()),
        };
        // A browser that signed in to this account before counts in its own budget; any other
        // shares the account's, the address's and the ceiling of consecutive failures.
        let device = match &creds {
            Some(c) => self.devices.recognise(who, c.id, from.device.as_deref()).await?,
            None => None,
        };
        let scopes = match (device, &creds) {
            (Some(id), _) => Scope::known_device(who, id).to_vec(),
            (None, Some(_)) => Scope::unknown_device(who, login, ip).to_vec(),
            // No such account: no ceiling row for a name nobody has.
            (None, None) => Scope::password(who, login, ip).to_vec(),
        };
        let attempt = self.throttle.begin(&scopes).await?;
        let actor = match &creds {
            Some(c) => c.actor(ip),
            None => Actor::system(match who {
                Principal::User => "login",
                Principal::Admin => "admin_login",
            })
            .with_ip(ip),
        };
        let target = (who.target_type(), creds.as_ref().map(|c| c.id));
        let typed = json!({ login_field(who): typed_login(who, login, creds.is_some()) });
        let Some(attempt) = attempt else {
            verify_any_async(password, passwords::DUMMY_HASH, Requester::Visitor(ip)).await?;
            self.accounts.record_event(&actor, who.action(Event::LoginLocked), target, typed).await?;
            return Ok(Step::Refused);
        };
        let stored = creds.as_ref().and_then(|c| c.password_hash.clone());
        let hash = stored.as_deref().unwrap_or(passwords::DUMMY_HASH);
        let (attempt, verified) = attempt.check(verify_any_async(password, hash, Requester::Visitor(ip))).await?;
        let (Some(creds), Some(stored), true) = (creds, stored, verified.ok) else {
            for scope in attempt.failed().await? {
                let details = json!({"scope": scope.key()});
                self.accounts.record_event(&actor, who.action(Event::PasswordLockout), target, details).await?;
                if let (Scope::Account(..), Some(id)) = (&scope, target.1) {
                    self.notify(who, id, Notice::Locked { minutes: self.throttle.lock_minutes() }).await;
                }
            }
            self.accounts.record_event(&actor, who.action(Event::LoginFailed), target, typed).await?;
            return Ok(Step::Refused);
        };
        let closed = who == Principal::User && every_client_closed(&clients);
        let owed = if closed { None } else { self.owed(&creds).await? };
        // What the right password leads to is one transaction: the lockout's counters, the
        // audit rows, the device and the new session are written together or not at all (and
        // SQLite commits once, not once a statement).
        let mut tx = self.accounts.db().begin().await?;
        // An admin disabled during the hash: refused as a disabled admin is at the door.
        if who == Principal::Admin && admin_shut_out_in(&mut tx, creds.id).await? {
            return Ok(Step::Refused);
        }
        let now = self.accounts.db().now();
        let (step, notices) = if closed {
            attempt.succeeded_in(&mut tx, &[]).await?;
            record_in(&mut tx, now, &actor, AuditAction::LoginRefusedClosed, creds.target(), json!({})).await?;
            (Step::ClientsClosed, Vec::new())
        } else {
            let details = json!({"second_factor": owed});
            record_in(&mut tx, now, &actor, who.action(Event::PasswordOk), creds.target(), details).await?;
            match owed {
                None => {
                    self.end_failures_in(&mut tx, Some(&attempt), &creds, device).await?;
                    let signed = SignedIn { device, clients: Some(clients), ..Default::default() };
                    let (step, notice) = self.record_sign_in(&mut tx, old, &creds, from, signed, None).await?;
                    (step, Vec::from_iter(notice))
                }
                Some(method) => {
                    attempt.succeeded_in(&mut tx, &[]).await?;
                    let pending =
                        Pending { who, id: creds.id, method, duo_state: None, duo_nonce: None, wrong_codes: 0, device };
                    let cookie = self.await_second_factor(&mut tx, old, pending, &clients, from).await?;
                    let step = match method {
                        SecondFactor::Enrol => Step::Enrol { cookie },
                        method => Step::SecondFactor { cookie, method },
                    };
                    (step, Vec::new())
                }
            }
        };
        tx.commit().await?;
        self.tell(&creds, notices).await;
        if verified.rehash {
            self.upgrade_hash(&actor, &creds, &stored, password).await;
        }
        Ok(step)
    }

    /// Stores a right password again under today's policy (its stored hash is of another).
    /// After the sign-in's transaction, which never waits on a hash; a failure leaves the old
    /// hash, which still verifies, and is logged. Not refused for the address's busy share: it
    /// follows a right password, which the lockout bounds.
    async fn upgrade_hash(&self, actor: &Actor, creds: &Credentials, stored: &str, password: &str) {
        let upgraded = match passwords::hash_async(password, Requester::Operator).await {
            Ok(fresh) => self.accounts.upgrade_password_hash(actor, creds, stored, &fresh).await,
            Err(e) => Err(e),
        };
        if let Err(e) = upgraded {
            tracing::warn!(error = %e, who = ?creds.who, id = creds.id, "a password hash could not be upgraded");
        }
    }

    /// The account `login` names, when it may sign in at all (a disabled admin may not), with
    /// a user's clients, read in the same query (an admin has none).
    async fn account_by_login(&self, who: Principal, login: &str) -> Result<Option<(Credentials, Vec<Membership>)>> {
        Ok(match who {
            Principal::User => {
                self.accounts.user_with_clients_by_email(login).await?.map(|u| (u.user.credentials(), u.memberships))
            }
            Principal::Admin => match self.accounts.admin_by_username(login).await {
                Ok(admin) => (!admin.is_disabled()).then(|| (admin.credentials(), Vec::new())),
                Err(Error::Refused { code: Code::NotFound, .. }) => None,
                Err(e) => return Err(e),
            },
        })
    }

    /// What a correct password still owes.
    async fn owed(&self, creds: &Credentials) -> Result<Option<SecondFactor>> {
        let forced = match creds.who {
            Principal::User => self.force_clients,
            Principal::Admin => self.force_admins,
        };
        // Passkeys are looked for only where no other second factor decides.
        let passkeys = match (creds.twofa_method, &creds.totp_secret) {
            (None, None) => self.passkeys.count(creds.who, creds.id).await?,
            _ => 0,
        };
        Ok(match creds.twofa_method {
            Some(TwoFaMethod::Totp) => Some(SecondFactor::Totp),
            Some(TwoFaMethod::Duo) if self.duo_configured => Some(SecondFactor::Duo),
            // Duo is the second factor but is not configured here: the TOTP key, if one was
            // kept, or else Duo's page saying it is unavailable — never the password alone.
            Some(TwoFaMethod::Duo) if creds.totp_secret.is_some() => Some(SecondFactor::Totp),
            Some(TwoFaMethod::Duo) => Some(SecondFactor::Duo),
            // A key without its method (a row written by an older version): the key is owed.
            None if creds.totp_secret.is_some() => Some(SecondFactor::Totp),
            None if passkeys > 0 => Some(SecondFactor::Passkey),
            None if forced => Some(SecondFactor::Enrol),
            None => None,
        })
    }

    /// A new half-signed-in session in place of `old` that remembers what is owed (`pending`),
    /// in the password step's transaction. Returns its cookie value.
    async fn await_second_factor(
        &self,
        conn: &mut AnyConnection,
        old: &Session,
        pending: Pending,
        clients: &[Membership],
        from: &Visitor,
    ) -> Result<String> {
        let (enrol, who, id) = (pending.method == SecondFactor::Enrol, pending.who, pending.id);
        let mut data = SessionData {
            ip: from.ip.clone(),
            user_agent: from.user_agent.clone(),
            pending: Some(pending),
            // Enrolment follows the password just given: it may set up the first factor.
            authenticated_at: enrol.then(|| self.proof_time()),
            ..Default::default()
        };
        if enrol && who == Principal::User {
            // The client area's enrolment page is a signed-in page that allows nothing else
            // (`pages::signed_in`); the admin area's reads the pending sign-in itself.
            data.sign_in(Principal::User, id);
            data.client_id = only_client(clients);
        }
        Ok(self.sessions.rotate_in(conn, old, data).await?.0)
    }

    /// Signs `creds` in on a new session in place of `old` (a new id and CSRF token); a user
    /// starts in their client when they have exactly one. The browser is a known device of the
    /// account from now on (not when an admin entered by an impersonation link). Returns
    /// [`Step::Done`] with the cookie values to set — or, when `signed` spends a backup code
    /// another request spent first, [`Step::WrongCode`]: the transaction rolled back, the
    /// attempt ends as a wrong code's does.
    ///
    /// One transaction, its rows taken in one order — the counters (by key), the user's (the
    /// backup code spent, the new session's foreign key), the old session, the devices — the
    /// order in which deleting a user takes its own, so neither waits on the other in a cycle
    /// on PostgreSQL.
    pub async fn complete_sign_in(
        &self,
        old: &Session,
        creds: &Credentials,
        from: &Visitor,
        mut signed: SignedIn,
    ) -> Result<Step> {
        if creds.who == Principal::User && signed.clients.is_none() {
            signed.clients = Some(self.accounts.clients_of_user(creds.id).await?);
        }
        let mut tx = self.accounts.db().begin().await?;
        // An admin disabled while this sign-in was under way: it ends here, with nothing written.
        if creds.who == Principal::Admin && admin_shut_out_in(&mut tx, creds.id).await? {
            return Ok(Step::NotSigningIn);
        }
        let (mut notices, mut shown) = (Vec::new(), None);
        match signed.backup.take() {
            // The code's own attempt ends with the sign-in's scopes, only if the code is spent.
            Some(backup) => {
                let ended = Scope::ended_by_sign_in(creds.who, &creds.login, signed.device);
                match self.spend_backup_code_in(&mut tx, backup, creds, &from.ip, &ended).await? {
                    Spent::Replaced(replacement) => {
                        signed.flash = Some(BACKUP_USED.into());
                        shown = Some(replacement);
                        notices.push(Notice::BackupCodeUsed);
                    }
                    Spent::Meanwhile(attempt) => {
                        tx.rollback().await?;
                        self.backup_code_spent_meanwhile(creds, &from.ip, attempt).await?;
                        return Ok(Step::WrongCode { backup: true });
                    }
                }
            }
            // An admin who entered by an impersonation link proved nothing of the account's.
            None if signed.impersonated_by.is_some() => {}
            None => self.end_failures_in(&mut tx, None, creds, signed.device).await?,
        }
        let (step, notice) = self.record_sign_in(&mut tx, old, creds, from, signed, shown).await?;
        tx.commit().await?;
        notices.extend(notice);
        self.tell(creds, notices).await;
        Ok(step)
    }

    /// Every factor proven: a run of consecutive failures ends, wherever it came from (and the
    /// password's `attempt`, when the sign-in completes at the password), in the sign-in's
    /// transaction.
    async fn end_failures_in(
        &self,
        conn: &mut AnyConnection,
        attempt: Option<&Attempt>,
        creds: &Credentials,
        device: Option<i64>,
    ) -> Result<()> {
        let ended = Scope::ended_by_sign_in(creds.who, &creds.login, device);
        match attempt {
            Some(attempt) => attempt.succeeded_in(conn, &ended).await,
            None => self.throttle.clear_in(conn, &ended).await,
        }
    }

    /// The rest of a full sign-in's writes, in the caller's transaction, after the failures
    /// ended ([`Auth::end_failures_in`]): its audit row, the new session (which shows
    /// `backup_code` once, the replacement of one just spent) and the device. Returns the
    /// step, and the notice to send once the transaction committed (a browser the account did
    /// not know, when it knew others).
    async fn record_sign_in(
        &self,
        conn: &mut AnyConnection,
        old: &Session,
        creds: &Credentials,
        from: &Visitor,
        signed: SignedIn,
        backup_code: Option<String>,
    ) -> Result<(Step, Option<Notice>)> {
        let mut data = SessionData {
            ip: from.ip.clone(),
            user_agent: from.user_agent.clone(),
            flash: signed.flash,
            backup_code,
            impersonated_by: signed.impersonated_by,
            authenticated_at: signed.impersonated_by.is_none().then(|| self.proof_time()),
            ..Default::default()
        };
        data.sign_in(creds.who, creds.id);
        if creds.who == Principal::User {
            data.client_id = only_client(signed.clients.as_deref().unwrap_or_default());
        }
        let proven = signed.impersonated_by.is_none();
        if proven {
            let (actor, now) = (creds.actor(&from.ip), self.accounts.db().now());
            record_in(conn, now, &actor, creds.who.action(Event::SignedIn), creds.target(), json!({})).await?;
        }
        let cookie = self.sessions.rotate_in(conn, old, data).await?.0;
        let (mut device, mut notice) = (None, None);
        if proven {
            let new =
                self.devices.signed_in(conn, creds.who, creds.id, signed.device, &from.user_agent, &from.ip).await?;
            if new.as_ref().is_some_and(|d| d.account_knew_others) {
                notice = Some(Notice::NewDevice { user_agent: from.user_agent.clone(), ip: from.ip.clone() });
            }
            device = new.map(|d| d.token);
        }
        Ok((Step::Done { cookie, device }, notice))
    }

    /// Sends what a committed sign-in has to tell the account's owner.
    async fn tell(&self, creds: &Credentials, notices: Vec<Notice>) {
        for notice in notices {
            self.notify(creds.who, creds.id, notice).await;
        }
    }

    /// The half-way sign-in of kind `who` in `session` that owes `method`, with its account.
    async fn pending(
        &self,
        session: &Session,
        who: Principal,
        method: SecondFactor,
    ) -> Result<Option<(Pending, Credentials)>> {
        let Some(pending) = session.data.pending_for(who).filter(|p| p.method == method).cloned() else {
            return Ok(None);
        };
        // An admin disabled since their password was checked signs in to nothing.
        let found = match who {
            Principal::Admin => {
                self.accounts.admin(pending.id).await.map(|a| (!a.is_disabled()).then(|| a.credentials()))
            }
            Principal::User => self.accounts.credentials(who, pending.id).await.map(Some),
        };
        match found {
            Ok(Some(creds)) => Ok(Some((pending, creds))),
            Ok(None) => Ok(None),
            Err(Error::Refused { code: Code::NotFound, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The account a half-way sign-in is enrolling, if `session` is one.
    pub async fn enrolling(&self, session: &Session, who: Principal) -> Result<Option<Credentials>> {
        Ok(self.pending(session, who, SecondFactor::Enrol).await?.map(|(_, creds)| creds))
    }

    /// The second-factor step with a code. Codes are taken only where a code is what is owed: a
    /// Duo sign-in is not finished with a TOTP key or backup code kept from before (that would
    /// step around Duo's policy). One password buys [`PENDING_TRIES`] wrong codes.
    ///
    /// A wrong code is counted in `session`, saved, so the caller holds what was stored: after
    /// [`Step::Restart`] it is a visitor's session.
    pub async fn sign_in_with_code(
        &self,
        session: &mut Session,
        who: Principal,
        proof: CodeProof<'_>,
        from: &Visitor,
    ) -> Result<Step> {
        let Some((pending, creds)) = self.pending(session, who, SecondFactor::Totp).await? else {
            return Ok(Step::NotSigningIn);
        };
        // What is owed now, not only at the password: an account switched to Duo meanwhile is
        // not finished with a code it kept.
        if self.owed(&creds).await? != Some(SecondFactor::Totp) {
            return Ok(Step::NotSigningIn);
        }
        let (ip, device) = (from.ip.as_str(), pending.device);
        let checked = match proof {
            CodeProof::Totp(code) => self.check_totp_from(&creds, code, ip, device).await?.map(|()| None),
            CodeProof::Backup(code) => self.check_backup_code_from(&creds, code, ip, device).await?.map(Some),
        };
        let step = match checked {
            Checked::Right(backup) => {
                let signed = SignedIn { backup, device, ..Default::default() };
                self.complete_sign_in(session, &creds, from, signed).await?
            }
            Checked::Locked => Step::Locked,
            Checked::Wrong => Step::WrongCode { backup: matches!(proof, CodeProof::Backup(_)) },
        };
        let Step::WrongCode { .. } = step else { return Ok(step) };
        let tries = pending.wrong_codes + 1;
        let restart = tries >= PENDING_TRIES;
        session.data.pending = (!restart).then_some(Pending { wrong_codes: tries, ..pending });
        self.sessions.save(session).await?;
        Ok(if restart { Step::Restart } else { step })
    }

    /// Checks a TOTP code and records its step, so the same code is refused afterwards. From a
    /// known `device` the attempt counts in its budget and the account's second factor; from any
    /// other, against the account, the client IP and the account's second factor.
    pub(super) async fn check_totp_from(
        &self,
        creds: &Credentials,
        code: &str,
        ip: &str,
        device: Option<i64>,
    ) -> Result<Checked<()>> {
        let checked = self
            .second_factor(creds, ip, device, async {
                let Some(secret) = creds.totp_secret.as_deref() else { return Ok(None) };
                let accepted = match totp::verify(secret, code, self.accounts.db().now(), creds.totp_last_step)? {
                    Some(step) => self.accounts.advance_totp_step((creds.who, creds.id), step).await?,
                    None => false,
                };
                Ok(accepted.then_some(()))
            })
            .await?;
        self.audit_second_factor(creds, ip, &checked, Event::TotpOk, Event::TotpFailed).await?;
        Ok(checked)
    }

    /// Runs a second-factor check under the limiter: from a known device in its budget and the
    /// account's second factor; from any other in the account's, the IP's and the second factor's.
    async fn second_factor<T>(
        &self,
        creds: &Credentials,
        ip: &str,
        device: Option<i64>,
        check: impl std::future::Future<Output = Result<Option<T>>>,
    ) -> Result<Checked<T>> {
        let scopes = second_factor_scopes(creds, ip, device);
        self.guarded(creds.who, &scopes, &creds.actor(ip), creds.target(), check).await
    }

    pub(super) async fn audit_second_factor<T>(
        &self,
        creds: &Credentials,
        ip: &str,
        checked: &Checked<T>,
        right: Event,
        wrong: Event,
    ) -> Result<()> {
        let event = match checked {
            Checked::Right(_) => right,
            Checked::Wrong => wrong,
            Checked::Locked => Event::SecondFactorLocked,
        };
        self.accounts.record_event(&creds.actor(ip), creds.who.action(event), creds.target(), json!({})).await
    }

    /// A passkey's answer (see [`Auth::passkey_challenge`]): alone it signs in — it proves both
    /// factors, and the account it names; after a password it is the second factor where a code
    /// or a passkey is owed; in a signed-in session it re-authenticates. The ceremony says which.
    pub async fn sign_in_with_passkey(
        &self,
        session: &Session,
        who: Principal,
        answer: PasskeyAnswer<'_>,
        from: &Visitor,
    ) -> Result<Step> {
        let (creds, purpose) = match self.check_passkey(session, who, answer, &from.ip).await? {
            Proven::Account(creds, purpose) => (*creds, purpose),
            Proven::Refused => return Ok(Step::Refused),
            Proven::Locked => return Ok(Step::Locked),
        };
        let data = &session.data;
        match purpose {
            Purpose::SignIn => {
                let clients = match self.may_sign_in(&creds, &from.ip).await? {
                    Ok(clients) => clients,
                    Err(refusal) => return Ok(refusal),
                };
                // Duo's policy decides every sign-in of a Duo account (a passkey added before
                // Duo was chosen does not step around it).
                if self.owed(&creds).await? == Some(SecondFactor::Duo) {
                    return Ok(Step::Refused);
                }
                let device = self.devices.recognise(who, creds.id, from.device.as_deref()).await?;
                let signed = SignedIn { device, clients: Some(clients), ..Default::default() };
                self.complete_sign_in(session, &creds, from, signed).await
            }
            Purpose::SecondFactor => {
                let Some(pending) = data.pending_for(who).filter(|p| p.id == creds.id).cloned() else {
                    return Ok(Step::NotSigningIn);
                };
                // What is owed now: an account switched to Duo meanwhile is Duo's to finish.
                if !self.owed(&creds).await?.is_some_and(SecondFactor::accepts_passkey) {
                    return Ok(Step::NotSigningIn);
                }
                let signed = SignedIn { device: pending.device, ..Default::default() };
                self.complete_sign_in(session, &creds, from, signed).await
            }
            Purpose::Confirm if data.signed_in(who) == Some(creds.id) && data.impersonated_by.is_none() => {
                let details = json!({"with": "passkey"});
                let cookie =
                    self.confirmed(session, &creds, from, None, "Confirmed with your passkey.", details).await?;
                Ok(Step::Done { cookie, device: None })
            }
            Purpose::Confirm | Purpose::Register => Ok(Step::NotSigningIn),
        }
    }

    /// Whether an account a passkey named may sign in, as the password step would say: a
    /// disabled admin is refused, a user whose clients are all closed is told so. When it may,
    /// the user's clients, read with the account (an admin has none), for the new session.
    async fn may_sign_in(&self, creds: &Credentials, ip: &str) -> Result<std::result::Result<Vec<Membership>, Step>> {
        let clients = match self.account_by_login(creds.who, &creds.login).await? {
            Some((found, clients)) if found.id == creds.id => clients,
            _ => return Ok(Err(Step::Refused)),
        };
        if creds.who == Principal::User && every_client_closed(&clients) {
            let actor = creds.actor(ip);
            self.accounts.record_event(&actor, AuditAction::LoginRefusedClosed, creds.target(), json!({})).await?;
            return Ok(Err(Step::ClientsClosed));
        }
        Ok(Ok(clients))
    }

    /// Opens Duo's Universal Prompt for a sign-in that owes Duo: state and nonce are kept in
    /// the session, server-side, and the browser is sent to Duo.
    pub async fn duo_prompt(&self, session: &Session, who: Principal, duo: Option<&Duo>) -> Result<Option<Prompt>> {
        let Some((pending, creds)) = self.pending(session, who, SecondFactor::Duo).await? else { return Ok(None) };
        let Some(duo) = duo else { return Ok(Some(Prompt::NotConfigured)) };
        if let Err(why) = duo_name(&creds) {
            return Ok(Some(Prompt::Down(why.into())));
        }
        if let Err(e) = duo.health_check().await {
            tracing::warn!(error = %e, "Duo health check failed");
            return Ok(Some(Prompt::Down(e.to_string())));
        }
        let (duo_state, nonce) = (tokens::random().raw, tokens::random().raw);
        let url = duo.authorize_url(who, &creds.login, &duo_state, &nonce)?;
        let mut session = session.clone();
        session.data.pending = Some(Pending { duo_state: Some(duo_state), duo_nonce: Some(nonce), ..pending });
        self.sessions.save(&mut session).await?;
        Ok(Some(Prompt::Redirect(url)))
    }

    /// Duo's answer at the callback: the state must be this session's, and the code Duo gives
    /// must be exchanged for a token naming this account and this sign-in's nonce.
    pub async fn sign_in_with_duo(
        &self,
        session: &Session,
        who: Principal,
        duo: Option<&Duo>,
        answer: DuoAnswer,
        from: &Visitor,
    ) -> Result<Step> {
        let Some((pending, creds)) = self.pending(session, who, SecondFactor::Duo).await? else {
            return Ok(Step::NotSigningIn);
        };
        if let Some(error) = answer.error {
            let description = answer.error_description.unwrap_or_default();
            return Ok(Step::Failed(format!("Duo answered: {error}: {description}")));
        }
        let (Some(expected), Some(nonce)) = (&pending.duo_state, &pending.duo_nonce) else {
            return Ok(Step::Failed("The Duo sign-in was not started from this session.".into()));
        };
        if !answer.state.as_deref().is_some_and(|s| tokens::ct_eq(s, expected)) {
            return Ok(Step::Failed("The Duo answer does not belong to this sign-in (state mismatch).".into()));
        }
        let (Some(duo), Some(code)) = (duo, answer.duo_code) else {
            return Ok(Step::Failed("No Duo code was returned.".into()));
        };
        let actor = creds.actor(&from.ip);
        match duo.exchange(who, &code, &creds.login, nonce).await {
            Ok(()) => {
                self.accounts.record_event(&actor, who.action(Event::DuoOk), creds.target(), json!({})).await?;
                let signed = SignedIn { device: pending.device, ..Default::default() };
                self.complete_sign_in(session, &creds, from, signed).await
            }
            Err(e) => {
                let details = json!({"error": e.to_string()});
                self.accounts.record_event(&actor, who.action(Event::DuoFailed), creds.target(), details).await?;
                Ok(Step::Failed(format!("Duo could not confirm the sign-in: {e}")))
            }
        }
    }

    /// Makes Duo the second factor of `creds`. Duo is proven only at Duo's prompt, so a sign-in
    /// half-way through enrolment ends here: `session` becomes a visitor's (to be saved by the
    /// caller with its message), and true says the person signs in again — through Duo.
    pub async fn choose_duo(&self, session: &mut Session, creds: &Credentials, ip: &str) -> Result<bool> {
        duo_name(creds).map_err(|why| Error::refused(Code::InvalidInput, why))?;
        self.accounts.set_duo(&creds.actor(ip), (creds.who, creds.id)).await?;
        self.notify(creds.who, creds.id, Notice::SecondFactorOn).await;
        if !session.data.enrolling(creds.who) {
            return Ok(false);
        }
        let data = &session.data;
        session.data = SessionData {
            csrf_token: data.csrf_token.clone(),
            ip: data.ip.clone(),
            user_agent: data.user_agent.clone(),
            ..Default::default()
        };
        Ok(true)
    }

    /// Checks the first code of a TOTP key being enrolled and makes the backup code that goes
    /// with it. Nothing is stored yet.
    pub async fn prepare_totp(&self, secret: &str, code: &str, from: &Visitor) -> Result<TotpEnrolment> {
        let Some(step) = totp::verify(secret, code, self.accounts.db().now(), None)? else {
            return Err(Error::refused(
                Code::InvalidCode,
                "that code is not valid for the new key; try the current one",
            ));
        };
        let backup_code = backup_codes::generate();
        let backup_hash =
            passwords::hash_async(&backup_codes::normalize(&backup_code), Requester::Visitor(&from.ip)).await?;
        Ok(TotpEnrolment { secret: secret.to_owned(), step, backup_code, backup_hash })
    }

    /// Turns TOTP on with the key being set up in `session` (`totp_setup`) once `code` proves
    /// it, for the account signed in there or enrolling there. Two-factor changes the account's
    /// privilege, so it continues on a new session that carries the backup code to the next
    /// page, shown there once. That session is written before two-factor is turned on, so it is
    /// never on with a backup code nobody saw; if turning it on then fails, the new session
    /// says so instead of showing a code that belongs to nothing — and an enrolling sign-in
    /// stays unfinished: only a key actually stored completes it.
    ///
    /// Returns the new cookie value, or `None` when no key is being set up. A wrong code is a
    /// refusal (`invalid_code`) and changes nothing.
    pub async fn enable_totp(
        &self,
        session: &Session,
        creds: &Credentials,
        code: &str,
        from: &Visitor,
    ) -> Result<Option<String>> {
        let Some(secret) = session.data.totp_setup.as_deref() else { return Ok(None) };
        let enrolment = self.prepare_totp(secret, code, from).await?;
        let enrolling = session.data.enrolling(creds.who);
        let data = SessionData {
            totp_setup: None,
            csrf_token: String::new(),
            ip: from.ip.clone(),
            user_agent: from.user_agent.clone(),
            flash: Some("Two-factor authentication is on.".into()),
            backup_code: Some(enrolment.backup_code.clone()),
            ..session.data.clone()
        };
        let (cookie, mut rotated) = self.sessions.rotate(session, data).await?;
        let TotpEnrolment { secret, step, backup_hash, .. } = &enrolment;
        let actor = creds.actor(&from.ip);
        match self.accounts.set_totp(&actor, (creds.who, creds.id), secret, *step, backup_hash).await {
            // An enrolment that was all a sign-in still owed completes it, only now.
            Ok(()) if enrolling => {
                self.notify(creds.who, creds.id, Notice::SecondFactorOn).await;
                rotated.data.pending = None;
                rotated.data.sign_in(creds.who, creds.id);
                self.accounts
                    .record_event(&actor, creds.who.action(Event::SignedIn), creds.target(), json!({}))
                    .await?;
                self.sessions.save(&mut rotated).await?;
            }
            Ok(()) => self.notify(creds.who, creds.id, Notice::SecondFactorOn).await,
            Err(e) => {
                tracing::error!(error = %e, "turning two-factor on failed after its backup code was saved for display");
                rotated.data.backup_code = None;
                rotated.data.flash =
                    Some("Two-factor authentication could not be turned on; nothing changed. Try again.".into());
                // Best effort: if even this cannot be saved, the code shown belongs to nothing.
                let _ = self.sessions.save(&mut rotated).await;
            }
        }
        Ok(Some(cookie))
    }
}

/// Where a second-factor check counts: from a known device in its budget and the account's
/// second factor; from any other in the account's, the IP's and the second factor's.
pub(super) fn second_factor_scopes(creds: &Credentials, ip: &str, device: Option<i64>) -> Vec<Scope> {
    match device {
        Some(id) => {
            let mut scopes = Scope::known_device(creds.who, id).to_vec();
            scopes.push(Scope::second_factor(creds.who, &creds.login));
            scopes
        }
        None => Scope::second_factor_attempt(creds.who, &creds.login, ip).to_vec(),
    }
}

/// A user who belongs to clients, all of them closed, has nothing to sign in to.
fn every_client_closed(clients: &[Membership]) -> bool {
    !clients.is_empty() && !clients.iter().any(Membership::is_usable)
}

/// The client a user's new session starts in: their only usable one, if they have one.
fn only_client(clients: &[Membership]) -> Option<i64> {
    let mut usable = clients.iter().filter(|m| m.is_usable());
    match (usable.next(), usable.next()) {
        (Some(only), None) => Some(only.client_id),
        _ => None,
    }
}

/// The name Duo knows the account by: a user's email, an admin's username. One Duo application
/// serves both areas and knows only names, so an admin username shaped like an email address
/// could be a client-area user's Duo identity (one who signed up with that address) — refused.
fn duo_name(creds: &Credentials) -> std::result::Result<&str, &'static str> {
    match creds.who {
        Principal::Admin if creds.login.contains('@') => Err("an admin whose username contains @ could share a Duo \
             identity with the client-area user of that email address; use a username without @ to use Duo"),
        _ => Ok(&creds.login),
    }
}

/// What the audit log calls the name a person signs in with.
fn login_field(who: Principal) -> &'static str {
    match who {
        Principal::User => "email",
        Principal::Admin => "username",
    }
}

/// What was typed as the login, as the audit log may keep it: only a name that matched an
/// account, or (for users) has the shape of an email address — a password typed into the
/// login field must not land in the log.
fn typed_login(who: Principal, login: &str, matched: bool) -> &str {
    match who {
        _ if matched => login.trim(),
        Principal::User if crate::accounts::looks_like_email(login) => login.trim(),
        Principal::User => "(not an email address)",
        Principal::Admin => "(no such admin)",
    }
}
