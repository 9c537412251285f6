//! The audit log's vocabulary: every action it records, with what it means, in one place. Support
//! engineers search the log by these names (`gatehouse audit --action NAME`, and
//! `gatehouse audit --actions` lists them), and README's table is this list (a test holds the two
//! together). Names are kept once written: a renamed action would hide older entries from searches.

use serde::Serialize;

macro_rules! vocabulary {
    ($( $variant:ident = $name:literal : $meaning:literal, )*) => {
        /// An action the audit log records.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum AuditAction { $( $variant, )* }

        impl AuditAction {
            /// Every action, in the order README lists them.
            pub const ALL: &'static [AuditAction] = &[$( AuditAction::$variant, )*];

            /// The name stored in the log.
            pub fn as_str(self) -> &'static str {
                match self { $( AuditAction::$variant => $name, )* }
            }

            /// What it means, for people reading the log.
            pub fn meaning(self) -> &'static str {
                match self { $( AuditAction::$variant => $meaning, )* }
            }
        }
    };
}

vocabulary! {
    LoginPasswordOk = "login.password_ok": "a user's password was right (details: the second factor still owed)",
    LoginFailed = "login.failed": "a user's sign-in was refused: unknown email, wrong password or none set (details: what was typed, when it names an account or is an email address)",
    LoginLocked = "login.locked": "a user's sign-in was refused unseen: a budget was full or locked",
    LoginLockout = "login.lockout": "a user's failed sign-in locked a scope (details: which)",
    LoginSignedIn = "login.signed_in": "a user signed in, every factor proven",
    LoginRefusedClosed = "login.refused_closed": "a user's password was right, but every client they belong to is closed",
    TwofaTotpOk = "twofa.totp_ok": "a user's TOTP code was accepted",
    TwofaTotpFailed = "twofa.totp_failed": "a user's TOTP code was refused",
    TwofaBackupCodeUsed = "twofa.backup_code_used": "a user spent their backup code (a new one was shown)",
    TwofaBackupCodeFailed = "twofa.backup_code_failed": "a user's backup code was refused",
    TwofaLocked = "twofa.locked": "a user's second factor was refused unseen: its budget is locked",
    TwofaLockout = "twofa.lockout": "a wrong second factor locked the user's second-factor scope",
    TwofaDuoOk = "twofa.duo_ok": "Duo confirmed a user's sign-in",
    TwofaDuoFailed = "twofa.duo_failed": "Duo did not confirm a user's sign-in (details: Duo's words)",
    TwofaEnabled = "twofa.enabled": "a user's second factor was turned on (details: the method)",
    TwofaDisabled = "twofa.disabled": "a user's second factor was turned off",
    PasskeyAdded = "passkey.added": "a user added a passkey (details: its name)",
    PasskeyRemoved = "passkey.removed": "a user removed a passkey (details: its name)",
    PasskeyOk = "passkey.ok": "a user's passkey proved who they are: a sign-in, its second factor or a re-authentication",
    PasskeyFailed = "passkey.failed": "a passkey's answer for a user's sign-in was refused (unknown, expired, not theirs, a bad signature)",
    PasswordConfirmFailed = "password.confirm_failed": "a user's current password, asked to confirm a change, was wrong",
    PasswordConfirmLocked = "password.confirm_locked": "a user's current password was refused unseen: a budget is locked",
    PasswordResetRequested = "password.reset_requested": "a reset link was mailed to a user",
    PasswordResetUnknownEmail = "password.reset_unknown_email": "a reset was asked for an address no user has",
    PasswordResetWrongAnswer = "password.reset_wrong_answer": "a reset's security answer was wrong",
    PasswordResetCompleted = "password.reset_completed": "a user chose a new password with a reset link",
    SecurityReauthenticated = "security.reauthenticated": "a user or admin proved who they are again, to change a credential",
    SecurityReauthenticationFailed = "security.reauthentication_failed": "a re-authentication was refused (details: why)",
    SecurityNotMe = "security.not_me": "a \"this wasn't me\" link was used: every session ended, known devices and reset links forgotten",
    NotificationsChanged = "security.notifications": "a person chose which security notifications they get (details: the choice)",
    UserCreate = "user.create": "a user was created",
    UserUpdate = "user.update": "a user's details changed (details: the fields)",
    UserDelete = "user.delete": "a user was deleted",
    UserPasswordChanged = "user.password_changed": "a user changed their password (other sessions ended)",
    UserPasswordSet = "user.password_set": "a user's password was set by staff or the CLI",
    UserPasswordRehashed = "user.password_rehashed": "a user's legacy password hash was replaced by argon2id at sign-in",
    UserSecurityQuestionSet = "user.security_question_set": "a user chose a security question and answer",
    UserUnlock = "user.unlock": "a user's lockout was cleared (details: the scopes)",
    UserImpersonationLink = "user.impersonation_link": "an admin made a one-time link to enter the client area as a user",
    UserImpersonated = "user.impersonated": "an impersonation link was used",
    UserImpersonationRefused = "user.impersonation_refused": "an impersonation link was refused: its admin no longer may",
    SignupEmailTaken = "signup.email_taken": "a sign-up gave an email a user already has",
    ClientCreate = "client.create": "a client was created",
    ClientUpdate = "client.update": "a client's details or status changed",
    ClientDelete = "client.delete": "a client was deleted",
    ClientOwnerChange = "client.owner_change": "another user became a client's owner",
    MatchDetails = "match_details": "details were copied between a client and a user (details: the direction)",
    MembershipCreate = "membership.create": "a user was associated with a client",
    MembershipPermissions = "membership.permissions": "a user's permissions in a client changed",
    MembershipDelete = "membership.delete": "a user was removed from a client",
    InviteCreate = "invite.create": "an invitation was sent",
    InviteAccept = "invite.accept": "an invitation was accepted",
    InviteCancel = "invite.cancel": "an invitation was cancelled",
    InviteEmailTaken = "invite.email_taken": "an invitation was accepted with an email a user already has",
    SessionRevoke = "session.revoke": "a session was ended from the sessions page or by staff",
    SessionRevokeAll = "session.revoke_all": "every session of a user was ended",
    SessionEndEveryone = "session.end_everyone": "everyone's sessions were ended at once (details: how many, and whether the admin area's too)",
    DeviceForget = "device.forget": "a known device of an account was forgotten: its sign-ins count as an unknown device's again",
    LockoutClear = "lockout.clear": "lockouts were cleared by an operator (details: the scopes)",
    BannedEmailAdd = "banned_email.add": "an email domain was banned from sign-ups",
    BannedEmailRemove = "banned_email.remove": "a banned email domain was allowed again",
    SecurityQuestionAdd = "security_question.add": "a security question was added",
    SecurityQuestionRemove = "security_question.remove": "a security question was removed",
    AdminCreate = "admin.create": "an admin was created",
    AdminRole = "admin.role": "an admin's role changed",
    AdminGrantRefused = "admin.grant_refused": "an admin tried to grant what they do not hold, and was refused",
    AdminSessionsEnded = "admin.sessions_ended": "an admin's sessions were ended",
    AdminDisabled = "admin.disabled": "an admin was disabled: they sign in to nothing, their sessions ended and their API tokens refused",
    AdminEnabled = "admin.enabled": "a disabled admin was enabled again",
    AdminPasswordSet = "admin.password_set": "an admin's password was set (the CLI)",
    AdminPasswordRehashed = "admin.password_rehashed": "an admin's legacy password hash was replaced at sign-in",
    AdminLoginPasswordOk = "admin.login_password_ok": "an admin's password was right (details: the second factor still owed)",
    AdminLoginFailed = "admin.login_failed": "an admin's sign-in was refused (details: the username, when it names an admin)",
    AdminLoginLocked = "admin.login_locked": "an admin's sign-in was refused unseen: a budget was full or locked",
    AdminLockout = "admin.lockout": "an admin's failed password or second factor locked a scope (details: which)",
    AdminLogin = "admin.login": "an admin signed in, every factor proven",
    AdminTotpOk = "admin.totp_ok": "an admin's TOTP code was accepted",
    AdminTotpFailed = "admin.totp_failed": "an admin's TOTP code was refused",
    AdminBackupCodeOk = "admin.backup_code_ok": "an admin spent their backup code (a new one was shown)",
    AdminBackupCodeFailed = "admin.backup_code_failed": "an admin's backup code was refused",
    AdminTotpLocked = "admin.totp_locked": "an admin's second factor was refused unseen: its budget is locked",
    AdminDuoOk = "admin.duo_ok": "Duo confirmed an admin's sign-in",
    AdminDuoFailed = "admin.duo_failed": "Duo did not confirm an admin's sign-in (details: Duo's words)",
    AdminTwofaEnabled = "admin.twofa_enabled": "an admin's second factor was turned on (details: the method)",
    AdminTwofaDisabled = "admin.twofa_disabled": "an admin's second factor was turned off",
    AdminPasskeyAdded = "admin.passkey_added": "an admin added a passkey (details: its name)",
    AdminPasskeyRemoved = "admin.passkey_removed": "an admin removed a passkey (details: its name)",
    AdminPasskeyOk = "admin.passkey_ok": "an admin's passkey proved who they are: a sign-in, its second factor or a re-authentication",
    AdminPasskeyFailed = "admin.passkey_failed": "a passkey's answer for an admin's sign-in was refused (unknown, expired, not theirs, a bad signature)",
    AdminPasswordConfirmFailed = "admin.password_confirm_failed": "an admin's current password, asked to confirm a change, was wrong",
    AdminPasswordConfirmLocked = "admin.password_confirm_locked": "an admin's current password was refused unseen: a budget is locked",
    RoleCreate = "role.create": "a role was created",
    RolePermissions = "role.permissions": "a role's permissions changed",
    ApiTokenCreate = "api_token.create": "an API token was made",
    ApiTokenRevoke = "api_token.revoke": "an API token was revoked",
    HealthFixApplied = "health.fix_applied": "a fix was applied from System Health (details: the check, what changed)",
    HealthFixFailed = "health.fix_failed": "a fix from System Health failed (details: why)",
}

impl AuditAction {
    /// The action named `name`, if the vocabulary has it.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == name)
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::AuditAction;

    #[test]
    fn names_are_unique_and_each_has_a_meaning() {
        let names: std::collections::BTreeSet<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), AuditAction::ALL.len(), "two actions share a name");
        assert!(AuditAction::ALL.iter().all(|a| !a.meaning().is_empty() && !a.meaning().ends_with('.')));
        assert_eq!(AuditAction::named("login.failed"), Some(AuditAction::LoginFailed));
        assert_eq!(AuditAction::named("login.nope"), None);
    }

    /// Support engineers read README's table: it lists exactly the vocabulary, in its order.
    #[test]
    fn readme_lists_every_action_with_its_meaning() {
        let readme = include_str!("../../README.md");
        let table: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `") && l.contains("` | ")).collect();
        let listed: Vec<String> = AuditAction::ALL.iter().map(|a| format!("| `{a}` | {} |", a.meaning())).collect();
        let found: Vec<&str> = table.iter().copied().filter(|l| listed.iter().any(|r| r == l)).collect();
        assert_eq!(found, listed, "README's audit table differs from the vocabulary");
    }
}
