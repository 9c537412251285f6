//! The backup code, the second factor of last resort: one code, spent when used and replaced
//! by a new one shown once. A code is checked first ([`Auth::check_backup_code_from`], under
//! the limiter, its attempt left open), then spent in the transaction that hands its
//! replacement to its owner — the new session that shows it — where its attempt ends too
//! ([`Auth::spend_backup_code_in`]). A failure before that commit (the database refusing the
//! session, a busy timeout, the request dropped) leaves the old code valid and the attempt
//! unended: a code is not spent with its replacement lost to a failed write, which would leave
//! someone who lost their authenticator no way back in. (A response lost after the commit
//! still loses what it carried, as any response does.)

use serde_json::json;

use super::guard::Checked;
use super::service::Auth;
use super::sign_in::second_factor_scopes;
use super::throttle::{Attempt, Scope};
use crate::accounts::{CredentialEvent as Event, Credentials, record_in, replace_backup_code_in};
use crate::error::Result;
use crate::secrets::backup_codes;
use crate::secrets::passwords::{self, Requester, verify_any_async};
use crate::store::AnyConnection;

/// A backup code proven right, with the code that replaces it and the check's attempt, neither
/// spent nor ended yet.
pub struct BackupSpend {
    attempt: Attempt,
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

/// What spending a checked code came to.
pub(super) enum Spent {
    /// The code is spent (when the transaction commits); its replacement, to show once.
    Replaced(String),
    /// Another request spent it first: roll back, and end the attempt as a wrong code's
    /// ([`Auth::backup_code_spent_meanwhile`]).
    Meanwhile(Attempt),
}

impl Auth {
    /// Checks a backup code under the limiter, in the scopes a TOTP code counts in, and audits
    /// a wrong or locked one. Unlike a TOTP code, which is used up by its check, a right
    /// backup code comes back unspent, its replacement made and hashed and its attempt open,
    /// for [`Auth::spend_backup_code_in`].
    pub(super) async fn check_backup_code_from(
        &self,
        creds: &Credentials,
        code: &str,
        ip: &str,
        device: Option<i64>,
    ) -> Result<Checked<BackupSpend>> {
        let scopes = second_factor_scopes(creds, ip, device);
        let checked = self
            .guarded_open(creds.who, &scopes, &creds.actor(ip), creds.target(), async {
                let Some(stored) = creds.backup_code_hash.clone() else { return Ok(None) };
                if !verify_any_async(&backup_codes::normalize(code), &stored, Requester::Visitor(ip)).await?.ok {
                    return Ok(None);
                }
                let replacement = backup_codes::generate();
                // After a right code, which the lockout bounds: not refused for the address's
                // busy share, which would give back the slot of a code that was checked.
                let replacement_hash =
                    passwords::hash_async(&backup_codes::normalize(&replacement), Requester::Operator).await?;
                Ok(Some((stored, replacement, replacement_hash)))
            })
            .await?;
        if !matches!(checked, Checked::Right(_)) {
            self.audit_second_factor(creds, ip, &checked, Event::BackupCodeUsed, Event::BackupCodeFailed).await?;
        }
        Ok(checked.map(|((matched, replacement, replacement_hash), attempt)| BackupSpend {
            attempt,
            matched,
            replacement,
            replacement_hash,
        }))
    }

    /// In the caller's transaction: ends the check's attempt (with the scopes a completed
    /// sign-in `ended`, in one key order — the counters' rows before the account's), spends
    /// the code while it is still the stored one, and audits it.
    pub(super) async fn spend_backup_code_in(
        &self,
        conn: &mut AnyConnection,
        spend: BackupSpend,
        creds: &Credentials,
        ip: &str,
        ended: &[Scope],
    ) -> Result<Spent> {
        let BackupSpend { attempt, matched, replacement, replacement_hash } = spend;
        attempt.succeeded_in(conn, ended).await?;
        if !replace_backup_code_in(conn, (creds.who, creds.id), &matched, &replacement_hash).await? {
            return Ok(Spent::Meanwhile(attempt));
        }
        let action = creds.who.action(Event::BackupCodeUsed);
        record_in(conn, self.accounts.db().now(), &creds.actor(ip), action, creds.target(), json!({})).await?;
        Ok(Spent::Replaced(replacement))
    }

    /// A right code another request spent first (its transaction rolled back): its attempt
    /// ends, and it is audited, as the wrong code it now is.
    pub(super) async fn backup_code_spent_meanwhile(
        &self,
        creds: &Credentials,
        ip: &str,
        attempt: Attempt,
    ) -> Result<()> {
        self.ended_wrong(creds.who, attempt, &creds.actor(ip), creds.target()).await?;
        self.audit_second_factor(creds, ip, &Checked::<()>::Wrong, Event::BackupCodeUsed, Event::BackupCodeFailed).await
    }
}
