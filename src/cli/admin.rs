//! `gatehouse admin …`: admin users, roles and API tokens.

use clap::Subcommand;

use super::output::{opt_time, table};
use super::{Context, Output};
use crate::accounts::admins::parse_admin_permissions;
use crate::accounts::{Grantor, Principal};
use crate::error::Result;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Add an admin user with a role
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// Role name (see `admin role list`)
        #[arg(long)]
        role: String,
        #[command(flatten)]
        password: super::password::PasswordArgs,
    },
    /// List admin users
    List,
    /// Set an admin's password for the admin area (/admin/login) and end their admin sessions —
    /// for a first sign-in, or for the admin who is locked out
    SetPassword {
        /// Username or id (see `admin list`)
        admin: String,
        #[command(flatten)]
        password: super::password::PasswordArgs,
    },
    /// Turn off an admin's two-factor authentication (they lost the device and the backup code);
    /// with `twofa.force_admins` they enrol again at their next sign-in
    #[command(name = "disable-2fa")]
    Disable2fa {
        /// Username or id (see `admin list`)
        admin: String,
    },
    /// Disable an admin (staff who left, an account you suspect was taken over): they sign in
    /// to nothing, their sessions end now and their API tokens are refused; their role, tokens
    /// and second factor are kept for `admin enable`
    Disable {
        /// Username or id (see `admin list`)
        admin: String,
    },
    /// Enable a disabled admin again, with the role, tokens and second factor they had
    Enable {
        /// Username or id (see `admin list`)
        admin: String,
    },
    /// Roles: named sets of admin permissions
    #[command(subcommand)]
    Role(RoleCommand),
    /// API tokens for the admin JSON API
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Create a role. Permissions: clients.view, clients.create, clients.manage, users.view,
    /// users.create, users.manage, users.impersonate, sessions.manage, settings.manage,
    /// health.view (or "all")
    Add {
        name: String,
        #[arg(long)]
        permissions: String,
    },
    /// List roles
    List,
    /// Replace a role's permissions
    Set {
        name: String,
        #[arg(long)]
        permissions: String,
    },
    /// Give an admin a role
    Assign {
        #[arg(long)]
        admin: i64,
        #[arg(long)]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for an admin; it is printed once
    Create {
        #[arg(long)]
        admin: i64,
        #[arg(long)]
        name: String,
    },
    /// List tokens (never their secrets)
    List {
        #[arg(long)]
        admin: Option<i64>,
    },
    /// Revoke a token
    Revoke { id: i64 },
}

fn keys<'a>(perms: impl Iterator<Item = &'a crate::accounts::AdminPermission>) -> String {
    perms.map(|p| p.key()).collect::<Vec<_>>().join(",")
}

pub async fn run(command: AdminCommand, ctx: &Context, out: &Output) -> Result<()> {
    // Reading, getting a locked-out admin back in and shutting one out stay open while the
    // license locks writes: without them nobody could sign in to see the lock's reason.
    let open = matches!(
        command,
        AdminCommand::List
            | AdminCommand::SetPassword { .. }
            | AdminCommand::Disable2fa { .. }
            // Taking an admin's access away is a security response, never held up by a licence.
            | AdminCommand::Disable { .. }
            | AdminCommand::Enable { .. }
            | AdminCommand::Role(RoleCommand::List)
            | AdminCommand::Token(TokenCommand::List { .. })
    );
    if !open {
        ctx.admin_write_allowed()?;
    }
    let accounts = &ctx.accounts;
    let actor = &ctx.actor;
    match command {
        AdminCommand::Add { username, email, role, password } => {
            let password = password.read(false)?;
            let admin =
                accounts.create_admin(actor, &Grantor::Operator, &username, &email, &role, password.as_deref()).await?;
            out.emit(&admin, || format!("Created admin {} ({})", admin.id, admin.username))
        }
        AdminCommand::List => {
            let admins = accounts.list_admins().await?;
            out.emit(&admins, || {
                table(
                    &["ID", "USERNAME", "EMAIL", "ROLE", "DISABLED"],
                    admins
                        .iter()
                        .map(|a| {
                            vec![
                                a.id.to_string(),
                                a.username.clone(),
                                a.email.clone(),
                                a.role_name.clone().unwrap_or_else(|| "(none)".into()),
                                if a.disabled != 0 { "yes" } else { "no" }.into(),
                            ]
                        })
                        .collect(),
                )
            })
        }
        AdminCommand::SetPassword { admin, password } => {
            let admin = admin_ref(ctx, &admin).await?;
            accounts.set_password(actor, (Principal::Admin, admin.id), &password.require()?).await?;
            let ended = ctx.sessions.end_for_admin(admin.id, None).await?;
            let forgotten = ctx.auth.forget_devices(Principal::Admin, admin.id).await?;
            let summary = serde_json::json!({
                "admin_id": admin.id, "username": admin.username, "sessions_ended": ended, "devices_forgotten": forgotten
            });
            out.emit(&summary, || {
                format!(
                    "Set the password of admin {}; {ended} admin session(s) ended. Sign in at /admin/login.",
                    admin.username
                )
            })
        }
        AdminCommand::Disable2fa { admin } => {
            let admin = admin_ref(ctx, &admin).await?;
            ctx.auth.turn_off_second_factor(actor, Principal::Admin, admin.id).await?;
            let summary = serde_json::json!({"admin_id": admin.id, "username": admin.username, "twofa": false});
            out.emit(&summary, || format!("Two-factor authentication is off for admin {}", admin.username))
        }
        AdminCommand::Disable { admin } => set_disabled(ctx, out, &admin, true).await,
        AdminCommand::Enable { admin } => set_disabled(ctx, out, &admin, false).await,
        AdminCommand::Role(RoleCommand::Add { name, permissions }) => {
            let role =
                accounts.create_role(actor, &Grantor::Operator, &name, &parse_admin_permissions(&permissions)?).await?;
            out.emit(&role, || format!("Created role {} ({})", role.name, keys(role.permissions.iter())))
        }
        AdminCommand::Role(RoleCommand::List) => {
            let roles = accounts.list_roles().await?;
            out.emit(&roles, || {
                table(
                    &["ID", "NAME", "PERMISSIONS"],
                    roles.iter().map(|r| vec![r.id.to_string(), r.name.clone(), keys(r.permissions.iter())]).collect(),
                )
            })
        }
        AdminCommand::Role(RoleCommand::Set { name, permissions }) => {
            let role = accounts
                .set_role_permissions(actor, &Grantor::Operator, &name, &parse_admin_permissions(&permissions)?)
                .await?;
            out.emit(&role, || format!("Role {} now has: {}", role.name, keys(role.permissions.iter())))
        }
        AdminCommand::Role(RoleCommand::Assign { admin, role }) => {
            let admin = accounts.set_admin_role(actor, &Grantor::Operator, admin, &role).await?;
            out.emit(&admin, || format!("Admin {} now has role {role}", admin.username))
        }
        AdminCommand::Token(TokenCommand::Create { admin, name }) => {
            let created = accounts.create_api_token(actor, &Grantor::Operator, admin, &name).await?;
            out.emit(&created, || {
                format!(
                    "Created API token {} for admin {admin}\nToken (shown once): {}",
                    created.info.id, created.token
                )
            })
        }
        AdminCommand::Token(TokenCommand::List { admin }) => {
            let tokens = accounts.list_api_tokens(admin).await?;
            out.emit(&tokens, || {
                table(
                    &["ID", "ADMIN", "NAME", "CREATED", "LAST USED", "REVOKED"],
                    tokens
                        .iter()
                        .map(|t| {
                            vec![
                                t.id.to_string(),
                                t.admin_id.to_string(),
                                t.name.clone(),
                                opt_time(Some(t.created_at)),
                                opt_time(t.last_used_at),
                                opt_time(t.revoked_at),
                            ]
                        })
                        .collect(),
                )
            })
        }
        AdminCommand::Token(TokenCommand::Revoke { id }) => {
            let token = accounts.revoke_api_token(actor, &Grantor::Operator, id).await?;
            out.emit(&token, || format!("Revoked API token {id}"))
        }
    }
}

/// An admin named by id or username.
async fn admin_ref(ctx: &Context, reference: &str) -> Result<crate::accounts::Admin> {
    match reference.trim().parse::<i64>() {
        Ok(id) => ctx.accounts.admin(id).await,
        Err(_) => ctx.accounts.admin_by_username(reference).await,
    }
}

async fn set_disabled(ctx: &Context, out: &Output, reference: &str, disabled: bool) -> Result<()> {
    let admin = admin_ref(ctx, reference).await?;
    let (admin, ended) = ctx.auth.set_admin_disabled(&ctx.actor, &Grantor::Operator, admin.id, disabled).await?;
    let summary = serde_json::json!({
        "admin_id": admin.id, "username": admin.username, "disabled": admin.is_disabled(), "sessions_ended": ended
    });
    out.emit(&summary, || match disabled {
        true => format!("Disabled admin {}; {ended} admin session(s) ended.", admin.username),
        false => format!("Enabled admin {}; they can sign in at /admin/login again.", admin.username),
    })
}
