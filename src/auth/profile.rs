//! A user's details: on their own profile, name, language and time zone as they like and the
//! login email only with the current password; by staff, with their permission. Either way the
//! old address is told of a new email, since whoever controls the email controls password resets.

use super::Auth;
use crate::accounts::{Actor, CopyDirection, User, UserUpdate};
use crate::error::{Code, Error, Result};

/// What the profile form sends.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    pub first_name: String,
    pub last_name: String,
    pub language: String,
    pub timezone: String,
    pub email: String,
    /// Needed only when the email changes.
    pub current_password: String,
}

impl Auth {
    pub async fn update_profile(&self, user: &User, change: ProfileChange, from: &super::Visitor) -> Result<User> {
        let ip = from.ip.as_str();
        let actor = Actor::user(user.id, &user.email).with_ip(ip);
        let new_email = change.email.trim();
        let email_changes = !new_email.eq_ignore_ascii_case(&user.email);
        if email_changes {
            self.confirm_password(&user.credentials(), &change.current_password, from)
                .await?
                .or_refused("to change your email address, enter your current password correctly")?;
        }
        let update = UserUpdate {
            email: email_changes.then(|| new_email.to_string()),
            first_name: Some(change.first_name),
            last_name: Some(change.last_name),
            language: Some(change.language),
            timezone: Some(change.timezone),
        };
        let updated = self.accounts.update_user(&actor, user.id, update).await.map_err(|e| match e {
            Error::Refused { code: Code::UserExists, .. } => {
                Error::refused(Code::UserExists, "that email address is already used by another login")
            }
            e => e,
        })?;
        if email_changes {
            self.tell_old_address(user, &updated, "").await?;
        }
        Ok(updated)
    }

    /// Staff change a user's details (the admin area, the API): the same rules as the user's own
    /// profile — a unique email, no banned domain, audited — without the user's password, and the
    /// old address is told when the email changes.
    pub async fn change_user(&self, actor: &Actor, id: i64, update: UserUpdate) -> Result<User> {
        let before = self.accounts.user(id).await?;
        let updated = self.accounts.update_user(actor, id, update).await?;
        if updated.email != before.email {
            self.tell_old_address(&before, &updated, " by the site's staff").await?;
        }
        Ok(updated)
    }

    /// Staff copy details between a user and a client they belong to (`accounts::match_details`);
    /// a login email changed this way tells the old address too.
    pub async fn match_details(&self, actor: &Actor, user_id: i64, client_id: i64, from: CopyDirection) -> Result<()> {
        let before = self.accounts.user(user_id).await?;
        self.accounts.match_details(actor, user_id, client_id, from).await?;
        let after = self.accounts.user(user_id).await?;
        if after.email != before.email {
            self.tell_old_address(&before, &after, " by the site's staff").await?;
        }
        Ok(())
    }

    /// Mails the address a login had before its email changed (`by` says who changed it), with
    /// a "this wasn't me" link that puts it back: whoever controls the new address controls
    /// password resets.
    async fn tell_old_address(&self, before: &User, after: &User, by: &'static str) -> Result<()> {
        let notice = super::Notice::EmailChanged { from: before.email.clone(), to: after.email.clone(), by };
        self.notify(crate::accounts::Principal::User, after.id, notice).await;
        Ok(())
    }
}
