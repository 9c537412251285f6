//! `Auth`: the authentication service the web face (and the CLI) drive. Sign-in itself is in
//! `sign_in.rs`; here are password reset by emailed link, password change, invitations and
//! admin impersonation links.

use serde_json::json;

use super::backup_code::BackupSpend;
use super::devices::Devices;
use super::guard::Checked;
use super::one_time::{self, Purpose};
use super::sessions::Sessions;
use super::throttle::{Principal, Scope, Throttle};
use crate::accounts::AuditAction;
use crate::accounts::Target;
use crate::accounts::{Accounts, Actor, Admin, Credentials, Membership, User};
use crate::config::{Config, HttpUrl};
use crate::error::{Code, Error, Result};
use crate::mail;
use crate::secrets::passwords::{self, Requester, verify_any_async};

/// How long an impersonation link lives.
pub const IMPERSONATION_TTL_SECS: i64 = 60;

#[derive(Clone)]
pub struct Auth {
    pub(super) accounts: Accounts,
    pub(super) sessions: Sessions,
    pub(super) throttle: Throttle,
    pub(super) devices: Devices,
    pub(super) passkeys: super::passkeys::Passkeys,
    system_url: HttpUrl,
    reset_ttl_secs: i64,
    pub(super) force_clients: bool,
    pub(super) force_admins: bool,
    /// `security.security_questions`: whether a reset asks the user's question.
    pub security_questions: bool,
    pub(super) duo_configured: bool,
    /// The site's `timezone:`, for times in mails to people who chose none.
    pub(super) site_zone: Option<chrono_tz::Tz>,
    /// `accounts.signup_required`: the contact details a sign-up must give.
    pub signup_required: Vec<crate::config::ContactField>,
}

impl Auth {
    /// Over the accounts and the session store it signs people in to (`Services` builds both).
    pub fn new(config: &Config, accounts: Accounts, sessions: Sessions) -> Self {
        let db = accounts.db().clone();
        Self {
            sessions,
            throttle: Throttle::new(db.clone(), &config.security.lockout),
            devices: Devices::new(db.clone()),
            passkeys: super::passkeys::Passkeys::new(db, config),
            accounts,
            system_url: config.system_url.clone(),
            reset_ttl_secs: config.security.reset_token_ttl.as_secs(),
            force_clients: config.twofa.force_clients,
            security_questions: config.security.security_questions,
            force_admins: config.twofa.force_admins,
            duo_configured: !config.twofa.duo.client_id.is_empty(),
            signup_required: config.accounts.signup_required.clone(),
            site_zone: config.timezone.zone(),
        }
    }

    /// A link under system_url, never under the Host a request arrived with.
    pub fn link(&self, path: &str) -> String {
        let base = self.system_url.to_string();
        let sep = if base.ends_with('/') { "" } else { "/" };
        format!("{base}{sep}{}", path.trim_start_matches('/'))
    }

    /// Turns an account's second factor off for someone else (staff, the API, the console), and
    /// tells its owner: a second factor taken away is news however it happened.
    pub async fn turn_off_second_factor(&self, actor: &Actor, who: Principal, id: i64) -> Result<()> {
        let had = self.accounts.credentials(who, id).await?;
        self.accounts.clear_twofa(actor, (who, id)).await?;
        // A reset second factor is a reset of every one: a person who lost their phone may have
        // lost the passkeys on it too.
        let passkeys = self.passkeys.remove_all(who, id).await?;
        if had.twofa_method.is_some() || had.totp_secret.is_some() || passkeys > 0 {
            self.notify(who, id, super::Notice::SecondFactorOff).await;
        }
        Ok(())
    }

    /// Disables an admin ([`Accounts::set_admin_disabled`]) and ends every session they have,
    /// or enables them again. Returns the admin and how many sessions ended.
    pub async fn set_admin_disabled(
        &self,
        actor: &Actor,
        grantor: &crate::accounts::Grantor,
        admin_id: i64,
        disabled: bool,
    ) -> Result<(Admin, u64)> {
        let admin = self.accounts.set_admin_disabled(actor, grantor, admin_id, disabled).await?;
        let ended = if disabled { self.sessions.end_for_admin(admin_id, None).await? } else { 0 };
        Ok((admin, ended))
    }

    /// Turns the authenticator app (or Duo) off after the user confirms the password; their
    /// passkeys are theirs to remove one by one.
    pub async fn disable_twofa_with_password(&self, creds: &Credentials, password: &str, from: &Visitor) -> Result<()> {
        self.confirm_password(creds, password, from).await?.or_refused("the password is not correct")?;
        self.accounts.clear_twofa(&creds.actor(&from.ip), (creds.who, creds.id)).await?;
        if creds.twofa_method.is_some() || creds.totp_secret.is_some() {
            self.notify(creds.who, creds.id, super::Notice::SecondFactorOff).await;
        }
        Ok(())
    }

    /// Changes the password after checking the current one; ends every other session of the
    /// user, every reset link still out, and every known device but the browser's own.
    pub async fn change_password(
        &self,
        user: &User,
        current: &str,
        new: &str,
        keep_session: &str,
        from: &Visitor,
    ) -> Result<u64> {
        let (creds, ip, keep_device) = (user.credentials(), from.ip.as_str(), from.device.as_deref());
        self.confirm_password(&creds, current, from).await?.or_refused("the current password is not correct")?;
        let min_length = self.accounts.policy().password_min_length;
        let hash = passwords::hash_new_password_async(new, min_length, Requester::Visitor(ip)).await?;
        let actor = creds.actor(ip);
        self.accounts
            .store_password_hash(&actor, (Principal::User, user.id), &hash, AuditAction::UserPasswordChanged)
            .await?;
        self.devices.revoke_all_but(Principal::User, user.id, keep_device).await?;
        self.notify(Principal::User, user.id, super::Notice::PasswordChanged).await;
        self.sessions.end_for_user(user.id, Some(keep_session)).await
    }

    /// Starts a password reset. The caller answers the same whether or not the email is known;
    /// the work for a known email runs in the background so the answer takes the same time.
    pub async fn request_reset(&self, email: &str, ip: &str) -> Result<()> {
        let user = self.accounts.user_by_email(email).await?;
        let Some(user) = user else {
            let actor = Actor::system("password_reset").with_ip(ip);
            return self
                .accounts
                .record_event(&actor, AuditAction::PasswordResetUnknownEmail, (Target::User, None), json!({}))
                .await;
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
            AuditAction::PasswordResetRequested,
            (Target::User, Some(user.id)),
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
            let scopes = Scope::unknown_device(Principal::User, &user.email, ip);
            let checked = self
                .guarded(Principal::User, &scopes, &actor, (Target::User, Some(user.id)), async {
                    Ok(verify_any_async(&given, hash, Requester::Visitor(ip)).await?.ok.then_some(()))
                })
                .await?;
            if checked == Checked::Wrong {
                self.accounts
                    .record_event(
                        &actor,
                        AuditAction::PasswordResetWrongAnswer,
                        (Target::User, Some(user.id)),
                        json!({}),
                    )
                    .await?;
            }
            checked.or_refused("the answer to the security question is not correct")?;
        }
        let min_length = self.accounts.policy().password_min_length;
        let hash = passwords::hash_new_password_async(password, min_length, Requester::Visitor(ip)).await?;
        let mut tx = self.accounts.db().begin().await?;
        one_time::consume(&mut tx, Purpose::PasswordReset, token, self.accounts.db().now())
            .await?
            .ok_or_else(invalid)?;
        crate::accounts::store_password_hash_in(
            &mut tx,
            self.accounts.db().now(),
            &actor,
            (Principal::User, user.id),
            &hash,
            AuditAction::PasswordResetCompleted,
        )
        .await?;
        tx.commit().await?;
        self.sessions.end_for_user(user.id, None).await?;
        // Whoever completed the reset controls the mailbox: the account's budget and the ceiling
        // an attacker filled start again (the second factor's stays as it is), and every known
        // device is forgotten — one may be the reason for the reset.
        let (who, email) = (Principal::User, user.email.as_str());
        self.throttle.clear(&[Scope::account(who, email), Scope::ceiling(who, email)]).await?;
        self.devices.revoke_all(who, user.id).await?;
        self.notify(who, user.id, super::Notice::PasswordReset).await;
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
            AuditAction::UserImpersonationLink,
            (Target::User, Some(user.id)),
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
        let actor = Actor::admin(admin_id, &format!("admin:{admin_id}")).with_ip(ip);
        let allowed = self.accounts.may_impersonate(admin_id).await?;
        let action = if allowed { AuditAction::UserImpersonated } else { AuditAction::UserImpersonationRefused };
        crate::accounts::record_in(
            &mut tx,
            self.accounts.db().now(),
            &actor,
            action,
            (Target::User, Some(owner.user_id)),
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

/// A TOTP key whose first code checked out, with its backup code, not yet stored.
pub struct TotpEnrolment {
    pub(super) secret: String,
    pub(super) step: i64,
    /// Shown to the user once; only its hash is stored.
    pub backup_code: String,
    pub(super) backup_hash: String,
}

/// Where a login comes from, as the session keeps it.
#[derive(Clone, Default)]
pub struct Visitor {
    pub ip: String,
    pub user_agent: String,
    /// The device token the browser holds for this area (`auth::devices`), if any.
    pub device: Option<String>,
}

/// Says whether a device token came, never what it is.
impl std::fmt::Debug for Visitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let device = if self.device.is_some() { "presented" } else { "none" };
        f.debug_struct("Visitor")
            .field("ip", &self.ip)
            .field("user_agent", &self.user_agent)
            .field("device", &device)
            .finish()
    }
}

/// What a new signed-in session starts with besides the user.
#[derive(Default)]
pub struct SignedIn {
    /// A message for the first page.
    pub flash: Option<String>,
    /// The backup code this sign-in spends (proven right, spent with the sign-in): its
    /// replacement is shown once.
    pub backup: Option<BackupSpend>,
    /// The admin who opened this session with an impersonation link.
    pub impersonated_by: Option<i64>,
    /// The known device (`auth::devices`) the sign-in came from, recognised at its password step.
    pub device: Option<i64>,
    /// A user's clients, when the step before read them with the account: not read again.
    pub clients: Option<Vec<Membership>>,
}
