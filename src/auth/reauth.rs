//! Re-authentication ("sudo mode"): a stolen session cookie must not be enough to change who
//! can sign in. Changing a password, an email address, a second factor or a security answer
//! needs proof, at most [`REAUTH_WINDOW_SECS`] old, of every factor the person has — a full
//! sign-in, or the re-authentication form (the current password, then the current TOTP code or
//! the backup code). Each check runs through the limiter like a login.
//!
//! A session opened by an impersonation link is never recent: the admin behind it did not prove
//! to be the user, so they cannot change the user's credentials.
//!
//! A passkey re-authenticates alone (`Auth::sign_in_with_passkey` in a signed-in session): it
//! proves both factors, as at sign-in.
//!
//! Duo users (and admins) re-authenticate with their password only: a Duo round trip for
//! re-authentication is not built yet (their sign-in itself goes through Duo).

use serde_json::json;

use super::backup_code::{BackupSpend, Spent};
use super::sessions::{Session, SessionData};
use super::{Auth, Notice, Visitor};
use crate::accounts::{AuditAction, Credentials, record_in};
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

    /// Re-authenticates a user or an admin: on success the session continues under a new id
    /// with the fresh proof (as at sign-in), and a backup code given as proof is spent with
    /// that session, which shows its replacement once. Returns the new session's cookie value.
    pub async fn reauthenticate(
        &self,
        session: &Session,
        creds: &Credentials,
        proof: Proof<'_>,
        from: &Visitor,
    ) -> Result<String> {
        let ip = from.ip.as_str();
        let proven = async {
            // A passkey as the only second factor is proven only by a passkey: the password
            // alone would be less than a sign-in asks.
            if creds.twofa_method.is_none()
                && !creds.proves_with_code()
                && self.passkeys.count(creds.who, creds.id).await? > 0
            {
                return Err(Error::refused(
                    crate::error::Code::InvalidCredentials,
                    "your second factor is a passkey: confirm with it (\"Confirm with a passkey\")",
                ));
            }
            self.confirm_password(creds, proof.password, from).await?.or_refused("the password is not correct")?;
            if !creds.proves_with_code() {
                return Ok(None);
            }
            // From a known device, the codes count in its budget too, as at sign-in.
            let device = self.devices.recognise(creds.who, creds.id, from.device.as_deref()).await?;
            if !proof.backup_code.trim().is_empty() {
                let checked = self.check_backup_code_from(creds, proof.backup_code, ip, device).await?;
                return checked.map(Some).or_refused(WRONG_BACKUP);
            }
            self.check_totp_from(creds, proof.code, ip, device).await?.map(|()| None).or_refused(WRONG_CODE)
        }
        .await;
        let outcome = match proven {
            Ok(backup) => self.confirmed(session, creds, from, backup, "Confirmed.", json!({})).await,
            Err(e) => Err(e),
        };
        if let Err(Error::Refused { code, .. }) = &outcome {
            let details = json!({"code": code.as_str()});
            self.accounts
                .record_event(&creds.actor(ip), AuditAction::SecurityReauthenticationFailed, creds.target(), details)
                .await?;
        }
        outcome
    }

    /// Continues `session` under a new id with a fresh proof of identity and `said` on the next
    /// page, and audits the proof (with `details`), in one transaction. A `backup` code is
    /// spent in it, the new session showing its replacement once: if the session cannot be
    /// written, the code stays valid. Returns the new session's cookie value.
    pub(super) async fn confirmed(
        &self,
        session: &Session,
        creds: &Credentials,
        from: &Visitor,
        backup: Option<BackupSpend>,
        said: &str,
        details: serde_json::Value,
    ) -> Result<String> {
        let mut data = session.data.clone();
        data.authenticated_at = Some(self.proof_time());
        data.flash = Some(format!("{said} For {} minutes you can change how you sign in.", REAUTH_WINDOW_SECS / 60));
        let mut tx = self.accounts.db().begin().await?;
        let spent = backup.is_some();
        if let Some(backup) = backup {
            match self.spend_backup_code_in(&mut tx, backup, creds, &from.ip, &[]).await? {
                Spent::Replaced(replacement) => data.backup_code = Some(replacement),
                Spent::Meanwhile(attempt) => {
                    tx.rollback().await?;
                    self.backup_code_spent_meanwhile(creds, &from.ip, attempt).await?;
                    return Err(Error::refused(crate::error::Code::InvalidCredentials, WRONG_BACKUP));
                }
            }
        }
        let (actor, now) = (creds.actor(&from.ip), self.accounts.db().now());
        record_in(&mut tx, now, &actor, AuditAction::SecurityReauthenticated, creds.target(), details).await?;
        let (cookie, _) = self.sessions.rotate_in(&mut tx, session, data).await?;
        tx.commit().await?;
        if spent {
            self.notify(creds.who, creds.id, Notice::BackupCodeUsed).await;
        }
        Ok(cookie)
    }
}

const WRONG_CODE: &str = "that code is not valid, or was already used; wait for the next code and try again";
const WRONG_BACKUP: &str = "that backup code is not valid";
