//! Admin sign-in to the admin area: username and password (argon2id, the users' lockout rules
//! under the admin's own scopes), then TOTP or the backup code — or, under
//! `twofa.force_admins`, enrolment first. Every step is audited with the client IP.

use serde_json::json;

use super::guard::Checked;
use super::service::{Auth, TotpEnrolment, Visitor};
use super::sessions::{AdminPending, SecondFactor, Session, SessionData};
use super::throttle::{Principal, Scope};
use crate::accounts::Admin;
use crate::error::Result;
use crate::secrets::passwords::{self, verify_any_async};
use crate::secrets::{backup_codes, totp};

/// What the password step of an admin sign-in decided.
#[derive(Debug)]
pub enum AdminLogin {
    /// Unknown username, wrong password, no password set, disabled or locked out: one answer.
    Refused,
    /// Password accepted; `second_factor` is what is still owed (TOTP, or enrolment), if anything.
    Accepted { admin: Box<Admin>, second_factor: Option<SecondFactor> },
}

impl Auth {
    /// Checks an admin's username and password under the limiter, in the admins' own namespace;
    /// a full or locked budget is refused like a wrong password, after the same work.
    pub async fn admin_login(&self, username: &str, password: &str, ip: &str) -> Result<AdminLogin> {
        let attempt = self.throttle.begin(&Scope::password(Principal::Admin, username, ip)).await?;
        let admin = self.accounts.admin_by_username(username).await.ok().filter(|a| !a.is_disabled());
        let actor = match &admin {
            Some(a) => a.actor(ip),
            None => crate::accounts::Actor::system("admin_login").with_ip(ip),
        };
        let target = ("admin", admin.as_ref().map(|a| a.id));
        let details = json!({"username": username.trim()});
        let Some(attempt) = attempt else {
            verify_any_async(password, passwords::dummy_hash()).await?;
            self.accounts.record_event(&actor, "admin.login_locked", target, details).await?;
            return Ok(AdminLogin::Refused);
        };
        let stored = admin.as_ref().and_then(|a| a.password_hash.clone());
        let verified = verify_any_async(password, stored.as_deref().unwrap_or(passwords::dummy_hash())).await?;
        let (Some(admin), Some(stored), true) = (admin, stored, verified.ok) else {
            for scope in attempt.failed().await? {
                self.accounts.record_event(&actor, "admin.lockout", target, json!({"scope": scope.key()})).await?;
            }
            self.accounts.record_event(&actor, "admin.login_failed", target, details).await?;
            return Ok(AdminLogin::Refused);
        };
        attempt.succeeded().await?;
        if verified.rehash {
            let fresh = passwords::hash_async(password).await?;
            self.accounts.upgrade_admin_password_hash(admin.id, &stored, &fresh).await?;
        }
        let second_factor = if admin.totp_secret.is_some() {
            Some(SecondFactor::Totp)
        } else {
            self.force_admins.then_some(SecondFactor::Enrol)
        };
        let details = json!({"second_factor": second_factor});
        self.accounts.record_event(&actor, "admin.login_password_ok", target, details).await?;
        Ok(AdminLogin::Accepted { admin: Box::new(admin), second_factor })
    }

    /// A new half-signed-in admin session that remembers what is owed. Enrolment signs the
    /// admin in far enough to reach the enrolment page only. Returns the cookie value.
    pub async fn admin_await_second_factor(
        &self,
        old: &Session,
        admin: &Admin,
        method: SecondFactor,
        from: &Visitor,
    ) -> Result<String> {
        let data = SessionData {
            ip: from.ip.clone(),
            user_agent: from.user_agent.clone(),
            admin_pending: Some(AdminPending { admin_id: admin.id, method, wrong_codes: 0 }),
            authenticated_at: (method == SecondFactor::Enrol).then(|| self.proof_time()),
            ..Default::default()
        };
        Ok(self.sessions.rotate(old, data).await?.0)
    }

    /// Signs the admin in on a new session in place of `old`. Returns the cookie value.
    pub async fn admin_sign_in(
        &self,
        old: &Session,
        admin: &Admin,
        from: &Visitor,
        flash: Option<String>,
        backup_code: Option<String>,
    ) -> Result<String> {
        let data = SessionData {
            admin_id: Some(admin.id),
            ip: from.ip.clone(),
            user_agent: from.user_agent.clone(),
            flash,
            backup_code,
            authenticated_at: Some(self.proof_time()),
            ..Default::default()
        };
        self.accounts.record_event(&admin.actor(&from.ip), "admin.login", ("admin", Some(admin.id)), json!({})).await?;
        Ok(self.sessions.rotate(old, data).await?.0)
    }

    /// Runs one check of the admin's second factor under the limiter, and audits it.
    async fn admin_second_factor<T>(
        &self,
        admin: &Admin,
        ip: &str,
        what: &str,
        check: impl std::future::Future<Output = Result<Option<T>>>,
    ) -> Result<Checked<T>> {
        let actor = admin.actor(ip);
        let scopes = Scope::second_factor_attempt(Principal::Admin, &admin.username, ip);
        let target = ("admin", Some(admin.id));
        let checked = self.guarded(Principal::Admin, &scopes, &actor, target, check).await?;
        let outcome = match checked {
            Checked::Right(_) => "ok",
            Checked::Wrong => "failed",
            Checked::Locked => "locked",
        };
        self.accounts.record_event(&actor, &format!("admin.{what}_{outcome}"), target, json!({})).await?;
        Ok(checked)
    }

    /// Checks an admin's TOTP code and records its step, so the same code is refused afterwards.
    pub async fn verify_admin_totp(&self, admin: &Admin, code: &str, ip: &str) -> Result<Checked<()>> {
        self.admin_second_factor(admin, ip, "totp", async {
            let Some(secret) = admin.totp_secret.as_deref() else { return Ok(None) };
            let accepted = match totp::verify(secret, code, self.accounts.db().now(), admin.totp_last_step)? {
                Some(step) => self.accounts.advance_admin_totp_step(admin.id, step).await?,
                None => false,
            };
            Ok(accepted.then_some(()))
        })
        .await
    }

    /// Spends the admin's backup code; on success returns its replacement, to be shown once.
    pub async fn use_admin_backup_code(&self, admin: &Admin, code: &str, ip: &str) -> Result<Checked<String>> {
        self.admin_second_factor(admin, ip, "backup_code", async {
            let Some(stored) = admin.backup_code_hash.clone() else { return Ok(None) };
            if !verify_any_async(&backup_codes::normalize(code), &stored).await?.ok {
                return Ok(None);
            }
            let replacement = backup_codes::generate();
            let fresh = passwords::hash_async(&backup_codes::normalize(&replacement)).await?;
            let spent = self.accounts.replace_admin_backup_code(admin.id, &stored, &fresh).await?;
            Ok(spent.then_some(replacement))
        })
        .await
    }

    /// Checks the admin's current password under the limiter (re-authentication).
    pub async fn confirm_admin_password(&self, admin: &Admin, password: &str, ip: &str) -> Result<Checked<()>> {
        let scopes = Scope::password(Principal::Admin, &admin.username, ip);
        let (actor, target, stored) = (admin.actor(ip), ("admin", Some(admin.id)), admin.password_hash.as_deref());
        self.confirm_stored_password(Principal::Admin, &scopes, &actor, target, stored, password).await
    }

    /// Turns TOTP on for an admin with a prepared enrolment ([`Auth::prepare_totp`]).
    pub async fn enable_admin_totp(&self, admin: &Admin, enrolment: &TotpEnrolment, ip: &str) -> Result<()> {
        let TotpEnrolment { secret, step, backup_hash, .. } = enrolment;
        self.accounts.set_admin_totp(&admin.actor(ip), admin.id, secret, *step, backup_hash).await
    }
}
