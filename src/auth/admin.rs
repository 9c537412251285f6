//! Admin sign-in to the admin area: username and password (argon2id, the users' lockout rules
//! under the admin's own scopes), then TOTP or the backup code — or, under
//! `twofa.force_admins`, enrolment first. Every step is audited with the client IP.

use serde_json::json;

use super::service::{Auth, TotpEnrolment, Visitor};
use super::sessions::{AdminPending, SecondFactor, Session, SessionData};
use super::throttle::Scope;
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

/// The throttle key of an admin: usernames and user emails live in different namespaces.
fn key(username: &str) -> String {
    format!("admin:{}", username.trim().to_lowercase())
}

fn second_factor_scopes(admin: &Admin, ip: &str) -> [Scope; 3] {
    let key = key(&admin.username);
    [Scope::account(&key), Scope::ip(ip), Scope::second_factor(&key)]
}

impl Auth {
    /// Checks an admin's username and password; failures count per admin and per client IP,
    /// and a locked admin or IP is refused like a wrong password, after the same work.
    pub async fn admin_login(&self, username: &str, password: &str, ip: &str) -> Result<AdminLogin> {
        let scopes = Scope::password(&key(username), ip);
        let locked = self.throttle.is_locked(&scopes).await?;
        let admin = self.accounts.admin_by_username(username).await.ok().filter(|a| !a.is_disabled());
        let stored = admin.as_ref().and_then(|a| a.password_hash.clone());
        let verified = verify_any_async(password, stored.as_deref().unwrap_or(passwords::dummy_hash())).await?;
        let actor = match &admin {
            Some(a) => a.actor(ip),
            None => crate::accounts::Actor::system("admin_login").with_ip(ip),
        };
        let target = ("admin", admin.as_ref().map(|a| a.id));
        let details = json!({"username": username.trim()});
        if locked {
            self.accounts.record_event(&actor, "admin.login_locked", target, details).await?;
            return Ok(AdminLogin::Refused);
        }
        let (Some(admin), Some(stored), true) = (admin, stored, verified.ok) else {
            for scope in self.throttle.record_failure(&scopes).await? {
                self.accounts.record_event(&actor, "admin.lockout", target, json!({"scope": scope.key()})).await?;
            }
            self.accounts.record_event(&actor, "admin.login_failed", target, details).await?;
            return Ok(AdminLogin::Refused);
        };
        if verified.rehash {
            let fresh = passwords::hash_async(password).await?;
            self.accounts.upgrade_admin_password_hash(admin.id, &stored, &fresh).await?;
        }
        self.throttle.clear(&scopes[0]).await?;
        self.throttle.clear(&scopes[1]).await?;
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
            ..Default::default()
        };
        self.accounts.record_event(&admin.actor(&from.ip), "admin.login", ("admin", Some(admin.id)), json!({})).await?;
        Ok(self.sessions.rotate(old, data).await?.0)
    }

    /// True while the admin's second factor may not be tried (admin, IP or second factor locked).
    pub async fn admin_second_factor_locked(&self, admin: &Admin, ip: &str) -> Result<bool> {
        self.throttle.is_locked(&second_factor_scopes(admin, ip)).await
    }

    async fn admin_second_factor_outcome(&self, admin: &Admin, ip: &str, ok: bool, what: &str) -> Result<()> {
        let actor = admin.actor(ip);
        let action = format!("admin.{what}_{}", if ok { "ok" } else { "failed" });
        self.accounts.record_event(&actor, &action, ("admin", Some(admin.id)), json!({})).await?;
        let scopes = second_factor_scopes(admin, ip);
        if ok {
            self.throttle.clear(&scopes[2]).await?;
            return self.throttle.clear(&scopes[0]).await;
        }
        for scope in self.throttle.record_failure(&scopes).await? {
            self.accounts
                .record_event(&actor, "admin.lockout", ("admin", Some(admin.id)), json!({"scope": scope.key()}))
                .await?;
        }
        Ok(())
    }

    /// Checks an admin's TOTP code and records its step, so the same code is refused afterwards.
    pub async fn verify_admin_totp(&self, admin: &Admin, code: &str, ip: &str) -> Result<bool> {
        let Some(secret) = admin.totp_secret.as_deref() else { return Ok(false) };
        let accepted = match totp::verify(secret, code, self.accounts.db().now(), admin.totp_last_step)? {
            Some(step) => self.accounts.advance_admin_totp_step(admin.id, step).await?,
            None => false,
        };
        self.admin_second_factor_outcome(admin, ip, accepted, "totp").await?;
        Ok(accepted)
    }

    /// Spends the admin's backup code; on success returns its replacement, to be shown once.
    pub async fn use_admin_backup_code(&self, admin: &Admin, code: &str, ip: &str) -> Result<Option<String>> {
        let Some(stored) = admin.backup_code_hash.clone() else { return Ok(None) };
        let ok = verify_any_async(&backup_codes::normalize(code), &stored).await?.ok;
        let replacement = backup_codes::generate();
        let spent = ok && {
            let fresh = passwords::hash_async(&backup_codes::normalize(&replacement)).await?;
            self.accounts.replace_admin_backup_code(admin.id, &stored, &fresh).await?
        };
        self.admin_second_factor_outcome(admin, ip, spent, "backup_code").await?;
        Ok(spent.then_some(replacement))
    }

    /// Turns TOTP on for an admin with a prepared enrolment ([`Auth::prepare_totp`]).
    pub async fn enable_admin_totp(&self, admin: &Admin, enrolment: &TotpEnrolment, ip: &str) -> Result<()> {
        let TotpEnrolment { secret, step, backup_hash, .. } = enrolment;
        self.accounts.set_admin_totp(&admin.actor(ip), admin.id, secret, *step, backup_hash).await
    }
}
