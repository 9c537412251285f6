//! Re-authentication ("sudo mode"): a stolen session cookie must not be enough to change who
//! can sign in. Changing a password, an email address, a second factor or a security answer
//! needs proof, at most [`REAUTH_WINDOW_SECS`] old, of every factor the person has — a full
//! sign-in, or the re-authentication form (the current password, then the current TOTP code or
//! the backup code). Each check runs through the limiter like a login.
//!
//! A session opened by an impersonation link is never recent: the admin behind it did not prove
//! to be the user, so they cannot change the user's credentials.
//!
//! Duo users re-authenticate with their password only: a Duo round trip for re-authentication
//! is not built yet (their sign-in itself goes through Duo).

use serde_json::json;

use super::Auth;
use super::guard::Checked;
use super::sessions::SessionData;
use crate::accounts::{Actor, Admin, User};
use crate::error::{Error, Result};

/// How long a proof of identity lets credentials be changed.
pub const REAUTH_WINDOW_SECS: i64 = 5 * 60;

/// What the re-authentication form sends.
#[derive(Debug, Default)]
pub struct Proof<'a> {
    pub password: &'a str,
    /// The current TOTP code, where one is enrolled…
    pub code: &'a str,
    /// …or the backup code instead.
    pub backup_code: &'a str,
}

impl Auth {
    /// True while the session's last proof of identity is recent enough to change credentials.
    pub fn recently_authenticated(&self, data: &SessionData) -> bool {
        let now = self.accounts.db().now();
        data.impersonated_by.is_none()
            && data.authenticated_at.is_some_and(|at| at <= now && now - at <= REAUTH_WINDOW_SECS)
    }

    /// The time to record as a fresh proof of identity.
    pub fn proof_time(&self) -> i64 {
        self.accounts.db().now()
    }

    /// Re-authenticates a user. On success returns the replacement backup code when the backup
    /// code was spent (to be shown once).
    pub async fn reauthenticate(&self, user: &User, proof: Proof<'_>, ip: &str) -> Result<Option<String>> {
        let actor = Actor::user(user.id, &user.email).with_ip(ip);
        let target = ("user", Some(user.id));
        let outcome = async {
            self.confirm_password(user, proof.password, ip).await?.or_refused("the password is not correct")?;
            if user.totp_secret.is_none() || user.twofa_method == Some(crate::accounts::TwoFaMethod::Duo) {
                return Ok(None);
            }
            if !proof.backup_code.trim().is_empty() {
                return self.use_backup_code(user, proof.backup_code, ip).await?.map(Some).or_refused(WRONG_BACKUP);
            }
            self.verify_totp(user, proof.code, ip).await?.map(|()| None).or_refused(WRONG_CODE)
        }
        .await;
        self.audit_reauthentication(&actor, target, &outcome).await?;
        outcome
    }

    /// Re-authenticates an admin, as [`Auth::reauthenticate`] does a user.
    pub async fn reauthenticate_admin(&self, admin: &Admin, proof: Proof<'_>, ip: &str) -> Result<Option<String>> {
        let actor = admin.actor(ip);
        let target = ("admin", Some(admin.id));
        let outcome = async {
            self.confirm_admin_password(admin, proof.password, ip).await?.or_refused("the password is not correct")?;
            if admin.totp_secret.is_none() {
                return Ok(None);
            }
            if !proof.backup_code.trim().is_empty() {
                let checked: Checked<String> = self.use_admin_backup_code(admin, proof.backup_code, ip).await?;
                return checked.map(Some).or_refused(WRONG_BACKUP);
            }
            self.verify_admin_totp(admin, proof.code, ip).await?.map(|()| None).or_refused(WRONG_CODE)
        }
        .await;
        self.audit_reauthentication(&actor, target, &outcome).await?;
        outcome
    }

    async fn audit_reauthentication(
        &self,
        actor: &Actor,
        target: (&str, Option<i64>),
        outcome: &Result<Option<String>>,
    ) -> Result<()> {
        let (action, details) = match outcome {
            Ok(_) => ("security.reauthenticated", json!({})),
            Err(Error::Refused { code, .. }) => ("security.reauthentication_failed", json!({"code": code.as_str()})),
            Err(_) => return Ok(()),
        };
        self.accounts.record_event(actor, action, target, details).await
    }
}

const WRONG_CODE: &str = "that code is not valid, or was already used; wait for the next code and try again";
const WRONG_BACKUP: &str = "that backup code is not valid";
