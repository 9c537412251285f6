//! Sign-up: a visitor creates a client and becomes its owner, in one transaction with the
//! welcome mail. An email that already has a login is refused without saying so — the visitor
//! sees what a new registration sees, and the address's owner gets a mail instead — so the form
//! cannot be used to find out who has an account. Attempts are throttled per client IP.

use serde_json::json;

use super::Auth;
use super::throttle::Scope;
use crate::accounts::AuditAction;
use crate::accounts::Target;
use crate::accounts::{Acceptance, Actor, ClientUpdate, Membership, NewClient, OwnerSpec};
use crate::config::ContactField;
use crate::error::{Code, Error, Result};
use crate::mail;

/// What accepting an invitation did; the two cases of a new login look the same to the visitor.
#[derive(Debug)]
pub enum Joined {
    Member(Membership),
    /// The email typed for the new login already has one; its owner was told by mail.
    EmailTaken {
        client_name: String,
    },
}

impl Joined {
    pub fn client_name(&self) -> &str {
        match self {
            Joined::Member(m) => &m.client_name,
            Joined::EmailTaken { client_name } => client_name,
        }
    }
}

/// What the sign-up form sends.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct SignUp {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password: String,
    /// The contact details typed (company, address, country, phone…).
    #[serde(skip)]
    pub details: Vec<(ContactField, String)>,
}

impl SignUp {
    /// What was typed for `field` ('' when nothing).
    pub fn detail(&self, field: ContactField) -> &str {
        self.details.iter().find(|(f, _)| *f == field).map_or("", |(_, v)| v.trim())
    }
}

/// The outcome, which the visitor must not be able to tell apart.
#[derive(Debug, PartialEq, Eq)]
pub enum SignedUp {
    /// A new client (its id) and its owner.
    Created(i64),
    /// The email already has a login; its owner was told by mail.
    EmailTaken,
}

impl Auth {
    pub async fn sign_up(&self, form: SignUp, ip: &str) -> Result<SignedUp> {
        // Every attempt spends its slot, whatever its outcome: sign-ups are few, scripted ones
        // are many. The slot is taken before anything is looked at, so a burst gets no further.
        let Some(attempt) = self.throttle.begin(&[Scope::sign_up(ip)]).await? else {
            return Err(Error::refused(
                Code::LockedOut,
                "too many sign-ups came from your network just now; please try again in a few minutes",
            ));
        };
        attempt.failed().await?;

        let actor = Actor::system("sign-up").with_ip(ip);
        // What the configuration requires (`accounts.signup_required`); the rest is optional.
        if let Some(missing) = self.signup_required.iter().find(|f| form.detail(**f).is_empty()) {
            return Err(Error::invalid(format!("{} is required", missing.label().to_lowercase())));
        }
        let mut fields = ClientUpdate {
            email: Some(form.email.trim().into()),
            first_name: Some(form.first_name.trim().into()),
            last_name: Some(form.last_name.trim().into()),
            ..Default::default()
        };
        for field in ContactField::ALL {
            fields.set(field, form.detail(field).to_string());
        }
        let new = NewClient { fields, owner: OwnerSpec::NewUser { password: Some(form.password) } };
        let welcome = format!(
            "Hello {},\n\nyour account is ready. Log in with this email address and the password you chose:\n\n{}\n",
            form.first_name.trim(),
            self.link("login"),
        );
        match self.accounts.create_client_notifying(&actor, new, Some(("Your new account", &welcome))).await {
            Ok(client) => Ok(SignedUp::Created(client.id)),
            Err(Error::Refused { code: Code::UserExists, .. }) => {
                self.tell_existing_owner(&actor, form.email.trim()).await?;
                Ok(SignedUp::EmailTaken)
            }
            Err(e) => Err(e),
        }
    }

    /// Accepts an invitation. A new login whose email already has one is answered as a new one
    /// is — the invite spent, the address's owner told by mail — as `/register` does.
    pub async fn accept_invite(&self, actor: &Actor, token: &str, acceptance: Acceptance) -> Result<Joined> {
        let email = match &acceptance {
            Acceptance::NewUser(new) => Some(new.email.trim().to_string()),
            Acceptance::ExistingUser(_) => None,
        };
        let invite = self.accounts.invite_by_token(token).await?;
        match self.accounts.accept_invite(actor, token, acceptance).await {
            Ok(membership) => Ok(Joined::Member(membership)),
            Err(Error::Refused { code: Code::UserExists, .. }) if email.is_some() => {
                self.tell_existing_owner(actor, email.as_deref().unwrap_or_default()).await?;
                let client_name = self.accounts.client(invite.client_id).await?.display_name();
                Ok(Joined::EmailTaken { client_name })
            }
            Err(e) => Err(e),
        }
    }

    async fn tell_existing_owner(&self, actor: &Actor, email: &str) -> Result<()> {
        let Some(user) = self.accounts.user_by_email(email).await? else { return Ok(()) };
        let body = format!(
            "Hello,\n\nsomeone tried to register a new account with this email address, which already has a login.\n\
             If it was you, log in here:\n\n{}\n\nIf you forgot your password, ask for a new one here:\n\n{}\n\n\
             If it was not you, you can ignore this message; nothing was changed.\n",
            self.link("login"),
            self.link("password/forgot"),
        );
        let mut conn = self.accounts.db().pool().acquire().await?;
        mail::enqueue(
            &mut conn,
            self.accounts.db().now(),
            &user.email,
            "Someone tried to register with your email address",
            &body,
        )
        .await?;
        self.accounts.record_event(actor, AuditAction::SignupEmailTaken, (Target::User, Some(user.id)), json!({})).await
    }
}
