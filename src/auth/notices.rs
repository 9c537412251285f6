//! Security notifications, by mail through the outbox: a sign-in from a new device (unless the
//! person turned it off), a password changed or reset, two-factor turned on or off, the backup
//! code used, the account locked by failed sign-ins. Each carries a single-use "this wasn't me"
//! link: it ends every session of the account, forgets its known devices and its reset links,
//! and — for a user — mails a new reset link, so whoever else got in is out and stays out.
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
}

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
        let now = self.accounts.db().now();
        let token = tokens::mint(TokenKind::NotMe);
        let mut tx = self.accounts.db().begin().await?;
        sqlx::query(
            "INSERT INTO not_me_links (token_hash, principal, account_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token.hash)
        .bind(who.target_type().as_str())
        .bind(id)
        .bind(now)
        .bind(now + NOT_ME_TTL_SECS)
        .execute(&mut *tx)
        .await?;
        let when = humane::local_time(now, humane::zone(&to.timezone, self.site_zone));
        let link = self.link(&format!("not-me/{}", token.raw));
        let body = format!(
            "Hello,\n\n{}\nWhen: {when}\n\nIf this was you, there is nothing to do.\n\n\
             If it was not you, open this link (within 7 days, once): it signs everyone out of your account, \
             forgets the browsers it knows{}.\n\n{link}\n",
            notice.what(),
            match who {
                Principal::User => " and mails you a link to choose a new password",
                Principal::Admin => "; then ask the operator to set you a new password",
            }
        );
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
    /// reset links are forgotten, and a user gets a new reset link. Returns whose account it
    /// was, or `None` for a link that is not live (used, expired, unknown).
    pub async fn not_me(&self, token: &str, ip: &str) -> Result<Option<Principal>> {
        let now = self.accounts.db().now();
        let spent: Option<(String, i64)> = sqlx::query_as(
            "UPDATE not_me_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
             RETURNING principal, account_id",
        )
        .bind(now)
        .bind(tokens::digest(token))
        .fetch_optional(self.accounts.db().pool())
        .await?;
        let Some((principal, id)) = spent else { return Ok(None) };
        let who = if principal == "admin" { Principal::Admin } else { Principal::User };
        let ended = match who {
            Principal::User => self.sessions.end_for_user(id, None).await?,
            Principal::Admin => self.sessions.end_for_admin(id, None).await?,
        };
        let devices = self.devices.revoke_all(who, id).await?;
        let actor = Actor::system("not_me").with_ip(ip);
        let details = json!({"sessions_ended": ended, "devices_forgotten": devices});
        self.accounts.record_event(&actor, AuditAction::SecurityNotMe, (who.target_type(), Some(id)), details).await?;
        if who == Principal::User {
            let mut conn = self.accounts.db().pool().acquire().await?;
            crate::accounts::revoke_reset_links(&mut conn, id).await?;
            drop(conn);
            let user = self.accounts.user(id).await?;
            self.send_reset(&actor, &user).await?;
        }
        Ok(Some(who))
    }
}
