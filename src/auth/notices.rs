//! Security notifications, by mail through the outbox: a sign-in from a new device (unless the
//! person turned it off), a password changed or reset, two-factor turned on or off, the backup
//! code used, the account locked by failed sign-ins. Each but the last carries a single-use
//! "this wasn't me" link: it ends every session of the account, forgets its known devices and
//! reset links and passkeys, makes the password unusable, undoes a second factor the notice was about, puts
//! back the address the notice went to if it was changed since, and — for a user — mails that
//! address a new reset link. Whoever else got in is out, and cannot come back with what they knew.
//!
//! A lock gets no link: it is what an attacker who only knows the address can bring about, and
//! the owner's browsers are not affected by it — forgetting them would help the attacker.
//!
//! A notice never stops what it reports: a mail that cannot be queued is logged, and the change
//! stands. None can be sent at an attacker's pace: each follows something only the account's
//! password (or a lock, at most once per window) brings about.

use serde_json::json;

use super::Auth;
use crate::accounts::{Actor, AuditAction, Principal};
use crate::error::Result;
use crate::mail::{self, humane};
use crate::secrets::tokens::{self, TokenKind};

/// How long a "this wasn't me" link can be used.
pub const NOT_ME_TTL_SECS: i64 = 7 * 86_400;

/// What a notification tells.
#[derive(Debug, Clone)]
pub enum Notice {
    /// A full sign-in from a browser the account did not know.
    NewDevice {
        user_agent: String,
        ip: String,
    },
    PasswordChanged,
    /// A password reset by emailed link was completed.
    PasswordReset,
    SecondFactorOn,
    SecondFactorOff,
    BackupCodeUsed,
    /// Failed sign-ins locked the account for a while.
    Locked {
        minutes: i64,
    },
    PasskeyAdded {
        name: String,
    },
    PasskeyRemoved {
        name: String,
    },
    /// The login email changed; told to the old address (`by`: " by the site's staff", or "").
    EmailChanged {
        from: String,
        to: String,
        by: &'static str,
    },
}

impl Notice {
    fn subject(&self) -> &'static str {
        match self {
            Notice::NewDevice { .. } => "New sign-in to your account",
            Notice::PasswordChanged => "Your password was changed",
            Notice::PasswordReset => "Your password was reset",
            Notice::SecondFactorOn => "Two-factor authentication was turned on",
            Notice::SecondFactorOff => "Two-factor authentication was turned off",
            Notice::BackupCodeUsed => "Your backup code was used",
            Notice::Locked { .. } => "Sign-ins to your account were locked",
            Notice::EmailChanged { .. } => "Your login email was changed",
            Notice::PasskeyAdded { .. } => "A passkey was added to your account",
            Notice::PasskeyRemoved { .. } => "A passkey was removed from your account",
        }
    }

    fn what(&self) -> String {
        match self {
            Notice::NewDevice { user_agent, ip } => format!(
                "Someone signed in to your account from a browser it had not seen before:\n{} at {ip}.",
                humane::device(user_agent)
            ),
            Notice::PasswordChanged => "The password of your account was changed.".into(),
            Notice::PasswordReset => "The password of your account was reset with an emailed link.".into(),
            Notice::SecondFactorOn => "Two-factor authentication was turned on for your account.".into(),
            Notice::SecondFactorOff => "Two-factor authentication was turned off for your account.".into(),
            Notice::BackupCodeUsed => {
                "Your two-factor backup code was used to sign in or to confirm a change; a new one was shown.".into()
            }
            Notice::EmailChanged { from, to, by } => {
                format!("The email address of your login was changed{by} from {from} to {to}.")
            }
            Notice::PasskeyAdded { name } => {
                format!("A passkey named \"{name}\" was added to your account: it can sign in without your password.")
            }
            Notice::PasskeyRemoved { name } => format!("The passkey named \"{name}\" was removed from your account."),
            Notice::Locked { minutes } => format!(
                "Too many wrong passwords were typed for your account, so sign-ins from browsers it does not know \
                 are refused for {minutes} minutes. Browsers you signed in with before are not affected."
            ),
        }
    }

    /// The optional kind: everything else is always sent.
    fn optional(&self) -> bool {
        matches!(self, Notice::NewDevice { .. })
    }

    /// What the link records: a "this wasn't me" after a second factor was turned on undoes it.
    fn kind(&self) -> &'static str {
        match self {
            Notice::NewDevice { .. } => "new_device",
            Notice::PasswordChanged => "password_changed",
            Notice::PasswordReset => "password_reset",
            Notice::SecondFactorOn => "second_factor_on",
            Notice::SecondFactorOff => "second_factor_off",
            Notice::BackupCodeUsed => "backup_code_used",
            Notice::Locked { .. } => "locked",
            Notice::EmailChanged { .. } => "email_changed",
            Notice::PasskeyAdded { .. } => "passkey_added",
            Notice::PasskeyRemoved { .. } => "passkey_removed",
        }
    }

    fn carries_link(&self) -> bool {
        !matches!(self, Notice::Locked { .. })
    }
}

/// New-device notices for one account at most this often: a password holder signing in from
/// fresh browsers again and again sends one, not hundreds.
const NEW_DEVICE_QUIET_SECS: i64 = 10 * 60;

/// Who a notice goes to: their address, zone and choice.
#[derive(sqlx_macros::FromRow)]
struct Recipient {
    email: String,
    timezone: String,
    notify_new_device: i64,
}

impl Auth {
    /// Queues `notice` for the account, with its "this wasn't me" link. Never fails the caller.
    pub async fn notify(&self, who: Principal, id: i64, notice: Notice) {
        if let Err(e) = self.try_notify(who, id, &notice).await {
            tracing::warn!(error = %e, ?who, id, "a security notification could not be queued");
        }
    }

    async fn try_notify(&self, who: Principal, id: i64, notice: &Notice) -> Result<()> {
        let timezone = match who {
            Principal::User => "timezone",
            Principal::Admin => "''",
        };
        let sql = format!("SELECT email, {timezone} AS timezone, notify_new_device FROM {} WHERE id = $1", who.table());
        let Some(to) = sqlx::query_as::<_, Recipient>(crate::store::composed(sql))
            .bind(id)
            .fetch_optional(self.accounts.db().pool())
            .await?
        else {
            return Ok(());
        };
        if notice.optional() && to.notify_new_device == 0 {
            return Ok(());
        }
        // An email change is told to the address it was taken from: the owner's, perhaps.
        let to = match notice {
            Notice::EmailChanged { from, .. } => Recipient { email: from.clone(), ..to },
            _ => to,
        };
        let now = self.accounts.db().now();
        let pool = self.accounts.db().pool();
        if notice.optional() {
            let recent: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM outbox WHERE to_addr = $1 AND subject = $2 AND created_at > $3",
            )
            .bind(&to.email)
            .bind(notice.subject())
            .bind(now - NEW_DEVICE_QUIET_SECS)
            .fetch_one(pool)
            .await?;
            if recent > 0 {
                return Ok(());
            }
        }
        let when = humane::local_time(now, humane::zone(&to.timezone, self.site_zone));
        let mut tx = self.accounts.db().begin().await?;
        let advice = if notice.carries_link() {
            let token = tokens::mint(TokenKind::NotMe);
            sqlx::query(
                "INSERT INTO not_me_links (token_hash, principal, account_id, kind, sent_to, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&token.hash)
            .bind(who.target_type().as_str())
            .bind(id)
            .bind(notice.kind())
            .bind(&to.email)
            .bind(now)
            .bind(now + NOT_ME_TTL_SECS)
            .execute(&mut *tx)
            .await?;
            let link = self.link(&format!("not-me/{}", token.raw));
            let then = match who {
                Principal::User => "mails you a link to choose a new one",
                Principal::Admin => "then ask the operator to set you a new one",
            };
            format!(
                "If this was you, there is nothing to do.\n\nIf it was not you, open this link (within 7 days, once): it \
                 signs everyone out of your account, forgets the browsers it knows, stops the password from working \
                 and {then}.\n\n{link}\n"
            )
        } else {
            "If you are typing your password and it is refused, wait, or ask for a password reset.\n".to_string()
        };
        let body = format!("Hello,\n\n{}\nWhen: {when}\n\n{advice}", notice.what());
        mail::enqueue(&mut tx, now, &to.email, notice.subject(), &body).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether a "this wasn't me" link is live (the page that shows its button).
    pub async fn not_me_is_live(&self, token: &str) -> Result<bool> {
        let live: Option<i64> = sqlx::query_scalar(
            "SELECT account_id FROM not_me_links WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(tokens::digest(token))
        .bind(self.accounts.db().now())
        .fetch_optional(self.accounts.db().pool())
        .await?;
        Ok(live.is_some())
    }

    /// Spends a "this wasn't me" link: every session of the account ends, its known devices and
    /// reset links are forgotten, its password stops working, a second factor turned on by the
    /// notice's event is turned off, the address the notice went to is put back if it was
    /// changed since, and a user gets a new reset link there. Returns whose account it was, or
    /// `None` for a link that is not live (used, expired, unknown, its account gone).
    pub async fn not_me(&self, token: &str, ip: &str) -> Result<Option<Principal>> {
        let now = self.accounts.db().now();
        let mut tx = self.accounts.db().begin().await?;
        let spent: Option<(String, i64, String, String)> = sqlx::query_as(
            "UPDATE not_me_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
             RETURNING principal, account_id, kind, sent_to",
        )
        .bind(now)
        .bind(tokens::digest(token))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((principal, id, kind, sent_to)) = spent else { return Ok(None) };
        let who = if principal == "admin" { Principal::Admin } else { Principal::User };
        let table = who.table();
        // The password stops working: whoever knew it cannot come back with it.
        let sql = format!("UPDATE {table} SET password_hash = NULL, updated_at = $1 WHERE id = $2");
        if sqlx::query(crate::store::composed(sql)).bind(now).bind(id).execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(None);
        }
        if kind == "second_factor_on" {
            let sql = format!(
                "UPDATE {table} SET twofa_method = NULL, totp_secret = NULL, totp_last_step = NULL, \
                 backup_code_hash = NULL WHERE id = $1"
            );
            sqlx::query(crate::store::composed(sql)).bind(id).execute(&mut *tx).await?;
        }
        // Passkeys sign in without the password: whoever got in may have added one. The owner
        // adds theirs again after the reset.
        for sql in [
            "DELETE FROM passkeys WHERE principal = $1 AND account_id = $2",
            "DELETE FROM passkey_ceremonies WHERE principal = $1 AND account_id = $2",
        ] {
            sqlx::query(sql).bind(&principal).bind(id).execute(&mut *tx).await?;
        }
        let mut restored = false;
        if who == Principal::User {
            // The address the notice reached is the owner's: put it back unless another login has it.
            let norm = sent_to.trim().to_lowercase();
            restored = sqlx::query(
                "UPDATE users SET email = $1, email_norm = $2 WHERE id = $3 AND email_norm <> $2 \
                 AND NOT EXISTS (SELECT 1 FROM users other WHERE other.email_norm = $2 AND other.id <> $3)",
            )
            .bind(&sent_to)
            .bind(&norm)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            crate::accounts::revoke_reset_links(&mut tx, id).await?;
        }
        let actor = Actor::system("not_me").with_ip(ip);
        let details = json!({"after": kind, "address_restored": restored});
        crate::accounts::record_in(
            &mut tx,
            now,
            &actor,
            AuditAction::SecurityNotMe,
            (who.target_type(), Some(id)),
            details,
        )
        .await?;
        tx.commit().await?;
        match who {
            Principal::User => self.sessions.end_for_user(id, None).await?,
            Principal::Admin => self.sessions.end_for_admin(id, None).await?,
        };
        self.devices.revoke_all(who, id).await?;
        if who == Principal::User {
            let user = self.accounts.user(id).await?;
            self.send_reset(&actor, &user).await?;
        }
        Ok(Some(who))
    }

    /// Removes "this wasn't me" links used or expired (cron).
    pub async fn purge_not_me_links(&self) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM not_me_links WHERE used_at IS NOT NULL OR expires_at <= $1")
            .bind(self.accounts.db().now())
            .execute(self.accounts.db().pool())
            .await?
            .rows_affected())
    }
}
