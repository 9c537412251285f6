//! `Auth`: the authentication service the web face (and the CLI) drive. Password login with
//! lockout and legacy-hash upgrade, the second factor (TOTP with replay protection, the backup
//! code), password reset by emailed link, password change, and admin impersonation links.

use serde_json::json;

use super::guard::Checked;
use super::one_time::{self, Purpose};
use super::sessions::{Pending, SecondFactor, Session, SessionData, Sessions};
use super::throttle::{Principal, Scope, Throttle};
use crate::accounts::{Accounts, Actor, Admin, AdminPermission, Membership, TwoFaMethod, User};
use crate::config::{Config, HttpUrl};
use crate::error::{Code, Error, Result};
use crate::mail;
use crate::secrets::passwords::{self, verify_any_async};
use crate::secrets::{backup_codes, totp};

/// How long an impersonation link lives.
pub const IMPERSONATION_TTL_SECS: i64 = 60;

#[derive(Clone)]
pub struct Auth {
    pub accounts: Accounts,
    pub sessions: Sessions,
    pub throttle: Throttle,
    system_url: HttpUrl,
    reset_ttl_secs: i64,
    force_clients: bool,
    pub(super) force_admins: bool,
    /// `security.security_questions`: whether a reset asks the user's question.
    pub security_questions: bool,
    duo_configured: bool,
    /// `accounts.signup_required`: the contact details a sign-up must give.
    pub signup_required: Vec<crate::config::ContactField>,
}

/// What the password step of a login decided.
#[derive(Debug)]
pub enum Login {
    /// Wrong email or password, no password set, or locked out: one answer for all of them.
    Refused,
    /// Every client of the user is closed.
    ClientsClosed,
    /// Password accepted; `second_factor` says what is still owed, if anything.
    Accepted { user: Box<User>, clients: Vec<Membership>, second_factor: Option<SecondFactor> },
}

impl Auth {
    pub fn new(config: &Config, accounts: Accounts) -> Self {
        let db = accounts.db().clone();
        Self {
            sessions: Sessions::from_config(config, &db),
            throttle: Throttle::new(db, &config.security.lockout),
            accounts,
            system_url: config.system_url.clone(),
            reset_ttl_secs: config.security.reset_token_ttl.as_secs(),
            force_clients: config.twofa.force_clients,
            security_questions: config.security.security_questions,
            force_admins: config.twofa.force_admins,
            duo_configured: !config.twofa.duo.client_id.is_empty(),
            signup_required: config.accounts.signup_required.clone(),
        }
    }

    /// A link under system_url, never under the Host a request arrived with.
    pub fn link(&self, path: &str) -> String {
        let base = self.system_url.to_string();
        let sep = if base.ends_with('/') { "" } else { "/" };
        format!("{base}{sep}{}", path.trim_start_matches('/'))
    }

    /// Checks email and password. The attempt takes its slots in the account's and the client
    /// IP's budgets before the password is looked at; a full or locked budget is refused with the
    /// same answer as a wrong password, after the same work.
    pub async fn login(&self, email: &str, password: &str, ip: &str) -> Result<Login> {
        let attempt = self.throttle.begin(&Scope::password(Principal::User, email, ip)).await?;
        let user = self.accounts.user_by_email(email).await?;
        let actor = match &user {
            Some(u) => Actor::user(u.id, &u.email).with_ip(ip),
            None => Actor::system("login").with_ip(ip),
        };
        let target = user.as_ref().map(|u| u.id);
        let Some(attempt) = attempt else {
            verify_any_async(password, passwords::dummy_hash()).await?;
            self.accounts.record_event(&actor, "login.locked", ("user", target), json!({"email": email})).await?;
            return Ok(Login::Refused);
        };
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let verified = verify_any_async(password, stored.as_deref().unwrap_or(passwords::dummy_hash())).await?;
        let user_matched = user.is_some();
        let (Some(user), Some(stored), true) = (user, stored, verified.ok) else {
            for scope in attempt.failed().await? {
                let details = json!({"scope": scope.key()});
                self.accounts.record_event(&actor, "login.lockout", ("user", target), details).await?;
            }
            // What was typed is recorded only when it is an email address: a password typed
            // into the email field must not land in the audit log.
            let typed =
                if user_matched || crate::accounts::looks_like_email(email) { email } else { "(not an email address)" };
            self.accounts.record_event(&actor, "login.failed", ("user", target), json!({"email": typed})).await?;
            return Ok(Login::Refused);
        };
        attempt.succeeded().await?;
        if verified.rehash {
            let fresh = passwords::hash_async(password).await?;
            self.accounts.upgrade_password_hash(&actor, user.id, &stored, &fresh).await?;
        }
        let all_clients = self.accounts.clients_of_user(user.id).await?;
        let had_clients = !all_clients.is_empty();
        let clients = usable(all_clients);
        if clients.is_empty() && had_clients {
            self.accounts.record_event(&actor, "login.refused_closed", ("user", Some(user.id)), json!({})).await?;
            return Ok(Login::ClientsClosed);
        }
        let second_factor = match user.twofa_method {
            Some(TwoFaMethod::Totp) => Some(SecondFactor::Totp),
            Some(TwoFaMethod::Duo) if self.duo_configured => Some(SecondFactor::Duo),
            // Duo is the user's second factor but is not configured here: their TOTP key, if
            // they kept one, or else Duo's page saying it is unavailable — never the password
            // alone (fail closed).
            Some(TwoFaMethod::Duo) if user.totp_secret.is_some() => Some(SecondFactor::Totp),
            Some(TwoFaMethod::Duo) => Some(SecondFactor::Duo),
            _ if self.force_clients => Some(SecondFactor::Enrol),
            _ => None,
        };
        self.accounts
            .record_event(&actor, "login.password_ok", ("user", Some(user.id)), json!({"second_factor": second_factor}))
            .await?;
        Ok(Login::Accepted { user: Box::new(user), clients, second_factor })
    }

    /// The user's clients that may be entered (not closed).
    /// Signs `user` in on a new session in place of `old` (a new id and CSRF token), in their
    /// client when they have exactly one. Returns the new session's cookie value.
    pub async fn sign_in(&self, old: &Session, user: &User, from: &Visitor, signed: SignedIn) -> Result<String> {
        let clients = self.usable_clients(user.id).await?;
        let data = SessionData {
            user_id: Some(user.id),
            client_id: only_client(&clients),
            ip: from.ip.clone(),
            user_agent: from.user_agent.clone(),
            flash: signed.flash,
            backup_code: signed.backup_code,
            impersonated_by: signed.impersonated_by,
            authenticated_at: signed.impersonated_by.is_none().then(|| self.proof_time()),
            ..Default::default()
        };
        Ok(self.sessions.rotate(old, data).await?.0)
    }

    /// After the password, when a second factor is owed: a new half-signed-in session that
    /// remembers what is owed. Enrolment (two-factor enforced, none set up) signs the user in
    /// far enough to reach the security page. Returns the new session's cookie value.
    pub async fn await_second_factor(
        &self,
        old: &Session,
        user: &User,
        clients: &[Membership],
        method: SecondFactor,
        from: &Visitor,
    ) -> Result<String> {
        let pending = Pending { user_id: user.id, method, duo_state: None, duo_nonce: None, wrong_codes: 0 };
        let enrol = method == SecondFactor::Enrol;
        let data = SessionData {
            ip: from.ip.clone(),
            user_id: enrol.then_some(user.id),
            client_id: only_client(clients).filter(|_| enrol),
            pending: Some(pending),
            // Enrolment follows the password just given: it may set up the first factor.
            authenticated_at: enrol.then(|| self.proof_time()),
            ..Default::default()
        };
        Ok(self.sessions.rotate(old, data).await?.0)
    }

    async fn usable_clients(&self, user_id: i64) -> Result<Vec<Membership>> {
        Ok(usable(self.accounts.clients_of_user(user_id).await?))
    }

    /// Checks a TOTP code and records its step, so the same code is refused afterwards. The
    /// attempt counts against the account, the client IP and the account's second factor.
    pub async fn verify_totp(&self, user: &User, code: &str, ip: &str) -> Result<Checked<()>> {
        let actor = Actor::user(user.id, &user.email).with_ip(ip);
        let scopes = Scope::second_factor_attempt(Principal::User, &user.email, ip);
        let checked = self
            .guarded(Principal::User, &scopes, &actor, ("user", Some(user.id)), async {
                let Some(secret) = user.totp_secret.as_deref() else { return Ok(None) };
                let accepted = match totp::verify(secret, code, self.accounts.db().now(), user.totp_last_step)? {
                    Some(step) => self.accounts.advance_totp_step(user.id, step).await?,
                    None => false,
                };
                Ok(accepted.then_some(()))
            })
            .await?;
        self.audit_second_factor(&actor, user, &checked, "twofa.totp_ok", "twofa.totp_failed").await?;
        Ok(checked)
    }

    /// Spends the backup code. On success returns the replacement, to be shown once.
    pub async fn use_backup_code(&self, user: &User, code: &str, ip: &str) -> Result<Checked<String>> {
        let actor = Actor::user(user.id, &user.email).with_ip(ip);
        let scopes = Scope::second_factor_attempt(Principal::User, &user.email, ip);
        let checked = self
            .guarded(Principal::User, &scopes, &actor, ("user", Some(user.id)), async {
                let Some(stored) = user.backup_code_hash.clone() else { return Ok(None) };
                if !passwords::verify_any_async(&backup_codes::normalize(code), &stored).await?.ok {
                    return Ok(None);
                }
                let replacement = backup_codes::generate();
                let fresh = passwords::hash_async(&backup_codes::normalize(&replacement)).await?;
                let spent = self.accounts.replace_backup_code(user.id, &stored, &fresh).await?;
                Ok(spent.then_some(replacement))
            })
            .await?;
        self.audit_second_factor(&actor, user, &checked, "twofa.backup_code_used", "twofa.backup_code_failed").await?;
        Ok(checked)
    }

    async fn audit_second_factor<T>(
        &self,
        actor: &Actor,
        user: &User,
        checked: &Checked<T>,
        ok: &str,
        failed: &str,
    ) -> Result<()> {
        let action = match checked {
            Checked::Right(_) => ok,
            Checked::Wrong => failed,
            Checked::Locked => "twofa.locked",
        };
        self.accounts.record_event(actor, action, ("user", Some(user.id)), json!({})).await
    }

    /// Checks the user's current password under the limiter (re-authentication, the forms that
    /// change a credential). A user without a password never confirms.
    pub async fn confirm_password(&self, user: &User, password: &str, ip: &str) -> Result<Checked<()>> {
        let actor = Actor::user(user.id, &user.email).with_ip(ip);
        let scopes = Scope::password(Principal::User, &user.email, ip);
        let (target, stored) = (("user", Some(user.id)), user.password_hash.as_deref());
        self.confirm_stored_password(Principal::User, &scopes, &actor, target, stored, password).await
    }

    /// Checks the first code of a TOTP key being enrolled and makes the backup code that goes
    /// with it. Nothing is stored yet: the caller first makes sure the backup code can be shown
    /// (saves it in the session), then calls [`Auth::enable_totp`] — so two-factor is never on
    /// with a backup code the user did not see.
    pub async fn prepare_totp(&self, secret: &str, code: &str) -> Result<TotpEnrolment> {
        let Some(step) = totp::verify(secret, code, self.accounts.db().now(), None)? else {
            return Err(Error::refused(
                Code::InvalidCode,
                "that code is not valid for the new key; try the current one",
            ));
        };
        let backup_code = backup_codes::generate();
        let backup_hash = passwords::hash_async(&backup_codes::normalize(&backup_code)).await?;
        Ok(TotpEnrolment { secret: secret.to_owned(), step, backup_code, backup_hash })
    }

    /// Turns TOTP on with a prepared enrolment.
    pub async fn enable_totp(&self, user: &User, enrolment: &TotpEnrolment, ip: &str) -> Result<()> {
        let actor = Actor::user(user.id, &user.email).with_ip(ip);
        let TotpEnrolment { secret, step, backup_hash, .. } = enrolment;
        self.accounts.set_totp(&actor, user.id, secret, *step, backup_hash).await
    }

    /// Turns two-factor off after the user confirms the password.
    pub async fn disable_twofa_with_password(&self, user: &User, password: &str, ip: &str) -> Result<()> {
        self.confirm_password(user, password, ip).await?.or_refused("the password is not correct")?;
        self.accounts.clear_twofa(&Actor::user(user.id, &user.email).with_ip(ip), user.id).await
    }

    /// Changes the password after checking the current one; ends every other session of the
    /// user and every reset link still out.
    pub async fn change_password(
        &self,
        user: &User,
        current: &str,
        new: &str,
        keep_session: &str,
        ip: &str,
    ) -> Result<u64> {
        self.confirm_password(user, current, ip).await?.or_refused("the current password is not correct")?;
        let hash = passwords::hash_new_password_async(new, self.accounts.policy().password_min_length).await?;
        self.accounts.store_password_hash(&Actor::user(user.id, &user.email).with_ip(ip), user.id, &hash).await?;
        self.sessions.end_for_user(user.id, Some(keep_session)).await
    }

    /// Starts a password reset. The caller answers the same whether or not the email is known;
    /// the work for a known email runs in the background so the answer takes the same time.
    pub async fn request_reset(&self, email: &str, ip: &str) -> Result<()> {
        let user = self.accounts.user_by_email(email).await?;
        let Some(user) = user else {
            let actor = Actor::system("password_reset").with_ip(ip);
            return self.accounts.record_event(&actor, "password.reset_unknown_email", ("user", None), json!({})).await;
        };
        let this = self.clone();
        let actor = Actor::user(user.id, &user.email).with_ip(ip);
        tokio::spawn(async move {
            if let Err(e) = this.send_reset(&actor, &user).await {
                tracing::error!(user_id = user.id, error = %e, "could not queue the password reset email");
            }
        });
        Ok(())
    }

    /// Queues a reset email for the user (also used by admins). The link is built from system_url.
    pub async fn send_reset(&self, actor: &Actor, user: &User) -> Result<()> {
        let mut tx = self.accounts.db().begin().await?;
        let token = one_time::issue(
            &mut tx,
            self.accounts.db().now(),
            Purpose::PasswordReset,
            user.id,
            None,
            self.reset_ttl_secs,
        )
        .await?;
        let link = self.link(&format!("password/reset/{token}"));
        let minutes = self.reset_ttl_secs / 60;
        let body = format!(
            "Hello {},\n\nSomeone (hopefully you) asked to reset the password of your account.\n\
             Open this link within {minutes} minutes to choose a new password:\n\n{link}\n\n\
             If you did not ask for this, ignore this message; your password stays as it is.\n",
            user.first_name
        );
        mail::enqueue(&mut tx, self.accounts.db().now(), &user.email, "Reset your password", &body).await?;
        crate::accounts::record_in(
            &mut tx,
            self.accounts.db().now(),
            actor,
            "password.reset_requested",
            ("user", Some(user.id)),
            json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user a reset link belongs to, if the link is still valid.
    pub async fn reset_user(&self, token: &str) -> Result<Option<User>> {
        match one_time::peek(self.accounts.db(), Purpose::PasswordReset, token).await? {
            Some(owner) => Ok(Some(self.accounts.user(owner.user_id).await?)),
            None => Ok(None),
        }
    }

    /// Completes a reset: the security answer (where set) first, then the new password. The
    /// link is spent and every session of the user ends. The user then signs in normally, so a
    /// reset never bypasses two-factor.
    pub async fn complete_reset(&self, token: &str, answer: Option<&str>, password: &str, ip: &str) -> Result<User> {
        let invalid =
            || Error::refused(Code::InvalidToken, "this reset link is invalid or has expired; ask for a new one");
        let user = self.reset_user(token).await?.ok_or_else(invalid)?;
        let actor = Actor::user(user.id, &user.email).with_ip(ip);
        if let Some(hash) = user.security_answer_hash.as_ref().filter(|_| self.security_questions) {
            let given = passwords::normalize_answer(answer.unwrap_or(""));
            let scopes = Scope::password(Principal::User, &user.email, ip);
            let checked = self
                .guarded(Principal::User, &scopes, &actor, ("user", Some(user.id)), async {
                    Ok(verify_any_async(&given, hash).await?.ok.then_some(()))
                })
                .await?;
            if checked == Checked::Wrong {
                self.accounts
                    .record_event(&actor, "password.reset_wrong_answer", ("user", Some(user.id)), json!({}))
                    .await?;
            }
            checked.or_refused("the answer to the security question is not correct")?;
        }
        let hash = passwords::hash_new_password_async(password, self.accounts.policy().password_min_length).await?;
        let mut tx = self.accounts.db().begin().await?;
        one_time::consume(&mut tx, Purpose::PasswordReset, token, self.accounts.db().now())
            .await?
            .ok_or_else(invalid)?;
        crate::accounts::store_password_hash_in(
            &mut tx,
            self.accounts.db().now(),
            &actor,
            user.id,
            &hash,
            "password.reset_completed",
        )
        .await?;
        tx.commit().await?;
        self.sessions.end_for_user(user.id, None).await?;
        Ok(user)
    }

    /// Invites `email` to work in the client with `permissions` and queues the email with the
    /// one-time link; `inviter` is who the message says sent it (the owner, or "The support team").
    pub async fn invite(
        &self,
        actor: &Actor,
        client_id: i64,
        email: &str,
        permissions: &crate::accounts::Permissions,
        invited_by_user_id: Option<i64>,
        inviter: &str,
    ) -> Result<crate::accounts::Invite> {
        let client = self.accounts.client(client_id).await?;
        let created = self.accounts.create_invite(actor, client_id, email, permissions, invited_by_user_id).await?;
        let link = self.link(&format!("invite/{}", created.token));
        let name = client.display_name();
        let body = format!(
            "Hello,\n\n{inviter} invited you to work in the account {name}.\nOpen this link to accept (valid for 7 days, once):\n\n{link}\n"
        );
        let mut conn = self.accounts.db().pool().acquire().await?;
        mail::enqueue(
            &mut conn,
            self.accounts.db().now(),
            &created.invite.email,
            &format!("Invitation to {name}"),
            &body,
        )
        .await?;
        Ok(created.invite)
    }

    /// A one-time login URL for an admin to enter the client area as the user, valid 60 s.
    pub async fn impersonation_link(&self, admin: &Admin, user_id: i64, ip: Option<&str>) -> Result<String> {
        let user = self.accounts.user(user_id).await?;
        let mut actor = Actor::admin(admin.id, &admin.username);
        actor.ip = ip.map(str::to_string);
        let mut tx = self.accounts.db().begin().await?;
        let token = one_time::issue(
            &mut tx,
            self.accounts.db().now(),
            Purpose::Impersonation,
            user.id,
            Some(admin.id),
            IMPERSONATION_TTL_SECS,
        )
        .await?;
        crate::accounts::record_in(
            &mut tx,
            self.accounts.db().now(),
            &actor,
            "user.impersonation_link",
            ("user", Some(user.id)),
            json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(self.link(&format!("login/as/{token}")))
    }

    /// True while an impersonation link can still be used (the GET that shows its button).
    pub async fn impersonation_is_live(&self, token: &str) -> Result<bool> {
        Ok(one_time::peek(self.accounts.db(), Purpose::Impersonation, token).await?.is_some())
    }

    /// Spends an impersonation link; returns the user and the admin who created it. The link
    /// acts for its admin at the moment it is used: an admin since removed, disabled or no longer
    /// holding `users.impersonate` has a dead link (spent all the same, and the refusal audited).
    pub async fn consume_impersonation(&self, token: &str, ip: &str) -> Result<(User, i64)> {
        let invalid = || Error::refused(Code::InvalidToken, "this login link is invalid, used or expired");
        let mut tx = self.accounts.db().begin().await?;
        let owner = one_time::consume(&mut tx, Purpose::Impersonation, token, self.accounts.db().now())
            .await?
            .ok_or_else(invalid)?;
        let admin_id = owner.admin_id.ok_or_else(|| Error::Internal("impersonation token without admin".into()))?;
        let actor =
            Actor { kind: "admin", id: Some(admin_id), label: format!("admin:{admin_id}"), ip: Some(ip.into()) };
        let allowed = match self.accounts.admin(admin_id).await {
            Ok(admin) => self.accounts.admin_permissions(&admin).await?.contains(&AdminPermission::UsersImpersonate),
            Err(Error::Refused { code: Code::NotFound, .. }) => false,
            Err(e) => return Err(e),
        };
        let action = if allowed { "user.impersonated" } else { "user.impersonation_refused" };
        crate::accounts::record_in(
            &mut tx,
            self.accounts.db().now(),
            &actor,
            action,
            ("user", Some(owner.user_id)),
            json!({}),
        )
        .await?;
        tx.commit().await?;
        if !allowed {
            return Err(invalid());
        }
        Ok((self.accounts.user(owner.user_id).await?, admin_id))
    }
}

/// The memberships whose client may be entered (not closed).
fn usable(mut clients: Vec<Membership>) -> Vec<Membership> {
    clients.retain(Membership::is_usable);
    clients
}

/// A TOTP key whose first code checked out, with its backup code, not yet stored.
pub struct TotpEnrolment {
    pub(super) secret: String,
    pub(super) step: i64,
    /// Shown to the user once; only its hash is stored.
    pub backup_code: String,
    pub(super) backup_hash: String,
}

/// The client a new session starts in: the user's only one, if they have exactly one.
fn only_client(clients: &[Membership]) -> Option<i64> {
    match clients {
        [only] => Some(only.client_id),
        _ => None,
    }
}

/// Where a login comes from, as the session keeps it.
pub struct Visitor {
    pub ip: String,
    pub user_agent: String,
}

/// What a new signed-in session starts with besides the user.
#[derive(Default)]
pub struct SignedIn {
    /// A message for the first page.
    pub flash: Option<String>,
    /// A new backup code (the old one was just used), shown once.
    pub backup_code: Option<String>,
    /// The admin who opened this session with an impersonation link.
    pub impersonated_by: Option<i64>,
}
