//! The backup code, the second factor of last resort: one code, spent when used and replaced
//! by a new one shown once. A code is checked first ([`Auth::check_backup_code_from`], under
//! the limiter), then spent in the transaction that hands its replacement to its owner — the
//! new session that shows it ([`BackupSpend::spend_in`]). So a failure on the way (the database
//! refusing the session, a busy timeout, the process ending) leaves the old code valid: a
//! code is never spent with its replacement lost, which would leave a person who lost their
//! authenticator no way back in.

use serde_json::json;

use super::guard::Checked;
use super::service::Auth;
use crate::accounts::{CredentialEvent as Event, Credentials, record_in, replace_backup_code_in};
use crate::error::Result;
use crate::secrets::backup_codes;
use crate::secrets::passwords::{self, Requester, verify_any_async};
use crate::store::AnyConnection;

/// A backup code proven right, with the code that replaces it, not yet spent.
pub struct BackupSpend {
    /// The stored hash the code matched: the spend happens only while it is still stored.
    matched: String,
    /// The replacement, to be shown once, and its hash.
    replacement: String,
    replacement_hash: String,
}

impl std::fmt::Debug for BackupSpend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupSpend(..)")
    }
}

impl BackupSpend {
    /// Spends the code in the caller's transaction and audits it there. Returns the
    /// replacement to show, or `None` when another request spent the code first (the caller
    /// rolls back and answers as to a wrong code: the code is no longer valid).
    pub(super) async fn spend_in(
        self,
        conn: &mut AnyConnection,
        creds: &Credentials,
        ip: &str,
        now: i64,
    ) -> Result<Option<String>> {
        let account = (creds.who, creds.id);
        if !replace_backup_code_in(conn, account, &self.matched, &self.replacement_hash).await? {
            return Ok(None);
        }
        let action = creds.who.action(Event::BackupCodeUsed);
        record_in(conn, now, &creds.actor(ip), action, creds.target(), json!({})).await?;
        Ok(Some(self.replacement))
    }
}

impl Auth {
    /// Checks a backup code under the limiter, counted as [`Auth::check_totp_from`] counts a
    /// code, and audits a wrong or locked one. A right one comes back with its replacement made
    /// and hashed, to be spent by [`BackupSpend::spend_in`].
    pub(super) async fn check_backup_code_from(
        &self,
        creds: &Credentials,
        code: &str,
        ip: &str,
        device: Option<i64>,
    ) -> Result<Checked<BackupSpend>> {
        let checked = self
            .second_factor(creds, ip, device, async {
                let Some(stored) = creds.backup_code_hash.clone() else { return Ok(None) };
                if !verify_any_async(&backup_codes::normalize(code), &stored, Requester::Visitor(ip)).await?.ok {
                    return Ok(None);
                }
                let replacement = backup_codes::generate();
                // After a right code, which the lockout bounds: not refused for the address's
                // busy share, which would give back the slot of a code that was checked.
                let replacement_hash =
                    passwords::hash_async(&backup_codes::normalize(&replacement), Requester::Operator).await?;
                Ok(Some(BackupSpend { matched: stored, replacement, replacement_hash }))
            })
            .await?;
        if !matches!(checked, Checked::Right(_)) {
            self.audit_second_factor(creds, ip, &checked, Event::BackupCodeUsed, Event::BackupCodeFailed).await?;
        }
        Ok(checked)
    }

    /// A right code another request spent first: audited as the wrong code it now is.
    pub(super) async fn backup_code_spent_meanwhile(&self, creds: &Credentials, ip: &str) -> Result<()> {
        self.audit_second_factor(creds, ip, &Checked::<()>::Wrong, Event::BackupCodeUsed, Event::BackupCodeFailed).await
    }
}
