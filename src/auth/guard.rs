//! Every check of a secret — a password, a TOTP code, a backup code, a security answer — runs
//! through [`Auth::guarded`]: the attempt takes its slots in the limiter first, the secret is
//! looked at only with them, and the outcome ends the attempt. No caller counts failures by hand.

use std::future::Future;

use serde_json::json;

use super::throttle::{Attempt, Principal, Scope};
use super::{Auth, Visitor};
use crate::accounts::{Actor, CredentialEvent, Credentials, Target};
use crate::error::{Code, Error, Result};

/// What a guarded check decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked<T> {
    /// The secret was right; `T` is what the check produced (a replacement backup code, say).
    Right(T),
    Wrong,
    /// A budget was full or locked: the secret was not looked at.
    Locked,
}

impl<T> Checked<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Checked<U> {
        match self {
            Checked::Right(value) => Checked::Right(f(value)),
            Checked::Wrong => Checked::Wrong,
            Checked::Locked => Checked::Locked,
        }
    }

    /// For forms that confirm a credential: a wrong or locked check is a refusal that says which.
    pub fn or_refused(self, wrong: &str) -> Result<T> {
        match self {
            Checked::Right(value) => Ok(value),
            Checked::Wrong => Err(Error::refused(Code::InvalidCredentials, wrong)),
            Checked::Locked => Err(locked_out()),
        }
    }
}

pub fn locked_out() -> Error {
    Error::refused(Code::LockedOut, "too many failed attempts; try again later")
}

impl Auth {
    /// Runs `check` (`Some` = right) only with a slot in every scope; ends the attempt by its
    /// outcome and audits each scope it locked. An error leaves the slots spent.
    pub(super) async fn guarded<T>(
        &self,
        who: Principal,
        scopes: &[Scope],
        actor: &Actor,
        target: (Target, Option<i64>),
        check: impl Future<Output = Result<Option<T>>>,
    ) -> Result<Checked<T>> {
        let checked = self.guarded_open(who, scopes, actor, target, check).await?;
        if let Checked::Right((_, attempt)) = &checked {
            attempt.succeeded().await?;
        }
        Ok(checked.map(|(value, _)| value))
    }

    /// [`Auth::guarded`] for a check that is right only once a transaction writes what it
    /// proved (a backup code spent): a right answer comes back with its attempt still open, for
    /// that transaction to end ([`Attempt::succeeded_in`]) — or, when it finds it too late,
    /// for [`Auth::ended_wrong`] after its rollback.
    pub(super) async fn guarded_open<T>(
        &self,
        who: Principal,
        scopes: &[Scope],
        actor: &Actor,
        target: (Target, Option<i64>),
        check: impl Future<Output = Result<Option<T>>>,
    ) -> Result<Checked<(T, Attempt)>> {
        let Some(attempt) = self.throttle.begin(scopes).await? else { return Ok(Checked::Locked) };
        let (attempt, checked) = attempt.check(check).await?;
        match checked {
            Some(value) => Ok(Checked::Right((value, attempt))),
            None => {
                self.ended_wrong(who, attempt, actor, target).await?;
                Ok(Checked::Wrong)
            }
        }
    }

    /// Ends an attempt whose secret was wrong, and audits each scope it locked.
    pub(super) async fn ended_wrong(
        &self,
        who: Principal,
        attempt: Attempt,
        actor: &Actor,
        target: (Target, Option<i64>),
    ) -> Result<()> {
        for scope in attempt.failed().await? {
            let event = match scope {
                Scope::SecondFactor(..) => CredentialEvent::SecondFactorLockout,
                _ => CredentialEvent::PasswordLockout,
            };
            let details = json!({"scope": scope.key()});
            self.accounts.record_event(actor, who.action(event), target, details).await?;
        }
        Ok(())
    }

    /// Checks the current password of `creds` (none set = never confirms) under the limiter —
    /// re-authentication, the forms that change a credential — and audits a wrong or locked one.
    ///
    /// From a browser that is a known device of the account, the check counts in that device's
    /// budget: an attacker who filled the account's cannot stop its owner changing a password.
    pub async fn confirm_password(&self, creds: &Credentials, password: &str, from: &Visitor) -> Result<Checked<()>> {
        let ip = from.ip.as_str();
        let scopes = match self.devices.recognise(creds.who, creds.id, from.device.as_deref()).await? {
            Some(id) => Scope::known_device(creds.who, id).to_vec(),
            None => Scope::unknown_device(creds.who, &creds.login, ip).to_vec(),
        };
        let actor = creds.actor(ip);
        let checked = self
            .guarded(creds.who, &scopes, &actor, creds.target(), async {
                let Some(hash) = creds.password_hash.as_deref() else { return Ok(None) };
                let requester = crate::secrets::passwords::Requester::Visitor(ip);
                Ok(crate::secrets::passwords::verify_any_async(password, hash, requester).await?.ok.then_some(()))
            })
            .await?;
        let failed = match checked {
            Checked::Right(()) => None,
            Checked::Wrong => Some(CredentialEvent::ConfirmFailed),
            Checked::Locked => Some(CredentialEvent::ConfirmLocked),
        };
        if let Some(event) = failed {
            self.accounts.record_event(&actor, creds.who.action(event), creds.target(), json!({})).await?;
        }
        Ok(checked)
    }
}
