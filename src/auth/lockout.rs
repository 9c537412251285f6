//! What operators do about lockouts: see the counters, unlock one user, clear an address. Each
//! release is audited with what it removed.

use serde_json::json;

use super::Auth;
use super::throttle::{Counter, Principal, Scope, ip_key};
use crate::accounts::{Actor, AuditAction, Target, User};
use crate::error::Result;

impl Auth {
    /// The known devices of an account (`auth::devices`), most recently used first, and which
    /// of them `raw` (the browser's own token) is.
    pub async fn known_devices(
        &self,
        who: Principal,
        account_id: i64,
        raw: Option<&str>,
    ) -> Result<(Vec<crate::auth::devices::Device>, Option<i64>)> {
        let this = self.devices.recognise(who, account_id, raw).await?;
        Ok((self.devices.list(who, account_id).await?, this))
    }

    /// Forgets one known device of an account: its next sign-in counts as an unknown device's.
    /// False when the account has no such device.
    pub async fn forget_device(&self, actor: &Actor, who: Principal, account_id: i64, device_id: i64) -> Result<bool> {
        let forgotten = self.devices.revoke(who, account_id, device_id).await?;
        if forgotten {
            let details = json!({"device": device_id});
            self.accounts
                .record_event(actor, AuditAction::DeviceForget, (who.target_type(), Some(account_id)), details)
                .await?;
        }
        Ok(forgotten)
    }

    /// Forgets every known device of an account (a password set for it from outside: whoever
    /// knew the old one may hold one). Returns how many.
    pub async fn forget_devices(&self, who: Principal, account_id: i64) -> Result<u64> {
        self.devices.revoke_all(who, account_id).await
    }

    /// Removes known devices unused for their lifetime (cron).
    pub async fn purge_devices(&self) -> Result<u64> {
        self.devices.purge().await
    }

    /// Removes lockout counters whose window and lock have both passed (cron).
    pub async fn purge_lockouts(&self) -> Result<u64> {
        self.throttle.purge().await
    }

    /// Every lockout counter, locked ones first.
    pub async fn lockouts(&self) -> Result<Vec<Counter>> {
        self.throttle.counters().await
    }

    /// Ends the user's locks and forgets their failures (the account, the account at each IP,
    /// the second factor). Returns the scopes removed.
    pub async fn unlock_user(&self, actor: &Actor, user: &User) -> Result<Vec<String>> {
        let email = user.email_norm.as_str();
        let removed = self.throttle.release(|s| s.account_name() == Some((Principal::User, email))).await?;
        self.accounts
            .record_event(actor, AuditAction::UserUnlock, (Target::User, Some(user.id)), json!({"scopes": removed}))
            .await?;
        Ok(removed)
    }

    /// Ends every lock and counter, or those of one client IP. Returns the scopes removed.
    pub async fn clear_lockouts(&self, actor: &Actor, ip: Option<&str>) -> Result<Vec<String>> {
        let key = ip.map(ip_key);
        let removed = self.throttle.release(|s: &Scope| key.is_none() || s.client_ip() == key.as_deref()).await?;
        self.accounts
            .record_event(
                actor,
                AuditAction::LockoutClear,
                (Target::Lockout, None),
                json!({"ip": ip, "scopes": removed}),
            )
            .await?;
        Ok(removed)
    }
}
