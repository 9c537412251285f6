//! `gatehouse user …` and `gatehouse match-details`.

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{fields, table, time};
use super::{Context, Output};
use crate::accounts::{CopyDirection, NewUser, Permissions, Principal, UserUpdate};
use crate::error::{Error, Result};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (a login identity); associate it with clients afterwards
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        first_name: String,
        #[arg(long)]
        last_name: String,
        #[arg(long, default_value = "")]
        language: String,
        /// Initial password; without one the user cannot log in until a reset
        #[command(flatten)]
        password: super::password::PasswordArgs,
    },
    /// List users
    List {
        /// Only users whose email or name contains this text
        #[arg(long)]
        search: Option<String>,
    },
    /// Show a user (id or email) with the clients it can access
    Show { user: String },
    /// Change a user's details (only the fields given)
    Update {
        user: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
        #[arg(long)]
        language: Option<String>,
    },
    /// Delete a user that belongs to no client
    Delete { user: String },
    /// Give a user access to a client
    Associate {
        #[command(flatten)]
        target: MembershipArgs,
        /// Comma-separated permission keys (see `--help` of `user permissions`)
        #[arg(long, required_unless_present = "all_permissions", conflicts_with = "all_permissions")]
        permissions: Option<String>,
        /// Grant every permission
        #[arg(long)]
        all_permissions: bool,
    },
    /// Remove a user's access to a client (never the owner's)
    Dissociate {
        #[command(flatten)]
        target: MembershipArgs,
    },
    /// Replace a user's permissions on a client. Keys: profile, contacts, products,
    /// manageproducts, productsso, domains, managedomains, invoices, quotes, tickets,
    /// affiliates, emails, orders
    Permissions {
        #[command(flatten)]
        target: MembershipArgs,
        #[arg(long, required_unless_present = "all_permissions", conflicts_with = "all_permissions")]
        permissions: Option<String>,
        #[arg(long)]
        all_permissions: bool,
    },
    /// Make an associated user the owner of a client
    MakeOwner {
        #[command(flatten)]
        target: MembershipArgs,
    },
    /// Set a user's password
    SetPassword {
        user: String,
        #[command(flatten)]
        password: super::password::PasswordArgs,
    },
    /// Email the user a password reset link (built from system_url; delivered by `cron`)
    ResetPassword { user: String },
    /// Turn off a user's two-factor authentication (an admin can never turn it on)
    #[command(name = "disable-2fa")]
    Disable2fa { user: String },
    /// End a user's lockout and forget their failed attempts (password and second factor)
    Unlock { user: String },
    /// Import users from CSV (header: email,first_name,last_name[,language][,password_hash]) or
    /// JSON lines, keeping their existing password hashes: argon2, bcrypt ($2a$/$2b$/$2y$) and
    /// salted MD5 (md5hex:salt) verify once at the next login and are then upgraded to argon2id.
    /// All or nothing: an invalid row is reported with its line and nothing is imported.
    Import {
        /// The file (.csv, or .jsonl / .ndjson)
        file: std::path::PathBuf,
        /// Override the format guessed from the extension
        #[arg(long, value_parser = ["csv", "jsonl"])]
        format: Option<String>,
    },
    /// Set a user's security question and answer
    SecurityAnswer {
        user: String,
        /// Id from `gatehouse security-question list`
        #[arg(long)]
        question: i64,
        #[arg(long)]
        answer: String,
    },
}

#[derive(Debug, Args)]
pub struct MembershipArgs {
    /// User id or email
    #[arg(long)]
    pub user: String,
    /// Client id
    #[arg(long)]
    pub client: i64,
}

#[derive(Debug, Args)]
pub struct MatchDetailsArgs {
    /// User id or email
    #[arg(long)]
    pub user: String,
    #[arg(long)]
    pub client: i64,
    /// Whose details are copied onto the other: user, client, or client_names (the client's name and
    /// language only, keeping the user's login email)
    #[arg(long, value_parser = ["user", "client", "client_names"])]
    pub from: String,
}

fn permission_set(list: Option<String>, all: bool) -> Result<Permissions> {
    match (all, list) {
        (true, _) => Ok(Permissions::all()),
        (false, Some(list)) => Permissions::parse_list(&list),
        (false, None) => Err(Error::Usage("give --permissions KEY,… or --all-permissions".into())),
    }
}

pub async fn run(command: UserCommand, ctx: &Context, out: &Output) -> Result<()> {
    if !matches!(command, UserCommand::List { .. } | UserCommand::Show { .. }) {
        ctx.admin_write_allowed()?;
    }
    let accounts = &ctx.accounts;
    let actor = &ctx.actor;
    match command {
        UserCommand::Add { email, first_name, last_name, language, password } => {
            let user = accounts
                .create_user(actor, NewUser { email, first_name, last_name, language, password: password.read(false)? })
                .await?;
            out.emit(&user, || format!("Created user {} ({})", user.id, user.email))
        }
        UserCommand::List { search } => {
            let users = accounts.list_users(search.as_deref()).await?;
            out.emit(&users, || {
                table(
                    &["ID", "EMAIL", "NAME", "PASSWORD"],
                    users
                        .iter()
                        .map(|u| {
                            vec![
                                u.id.to_string(),
                                u.email.clone(),
                                format!("{} {}", u.first_name, u.last_name),
                                if u.has_password() { "set" } else { "not set" }.into(),
                            ]
                        })
                        .collect(),
                )
            })
        }
        UserCommand::Show { user } => {
            let user = accounts.user(ctx.user_id(&user).await?).await?;
            let clients = accounts.clients_of_user(user.id).await?;
            let mut value = serde_json::to_value(&user).map_err(|e| Error::Internal(e.to_string()))?;
            value["clients"] = json!(clients);
            out.emit(&value, || {
                let mut text = fields(&[
                    ("id", user.id.to_string()),
                    ("email", user.email.clone()),
                    ("name", format!("{} {}", user.first_name, user.last_name)),
                    ("language", user.language.clone()),
                    ("password", if user.has_password() { "set" } else { "not set" }.into()),
                    (
                        "security question",
                        user.security_question_id.map(|q| q.to_string()).unwrap_or_else(|| "-".into()),
                    ),
                    ("created", time(user.created_at)),
                ]);
                text += "\nclients:\n";
                text += &table(
                    &["CLIENT", "NAME", "STATUS", "ROLE", "PERMISSIONS"],
                    clients
                        .iter()
                        .map(|m| {
                            let perms: Vec<&str> = m.permissions.iter().map(|p| p.key()).collect();
                            vec![
                                m.client_id.to_string(),
                                m.client_name.clone(),
                                m.client_status.to_string(),
                                if m.is_owner { "owner" } else { "user" }.into(),
                                if m.is_owner { "all".into() } else { perms.join(",") },
                            ]
                        })
                        .collect(),
                );
                text
            })
        }
        UserCommand::Update { user, email, first_name, last_name, language } => {
            let id = ctx.user_id(&user).await?;
            // Through the same rule as every face: a new login email tells the old address.
            let update = UserUpdate { email, first_name, last_name, language, timezone: None };
            let user = ctx.auth.change_user(actor, id, update).await?;
            out.emit(&user, || format!("Updated user {}", user.id))
        }
        UserCommand::Delete { user } => {
            let id = ctx.user_id(&user).await?;
            accounts.delete_user(actor, id).await?;
            out.emit(&json!({"id": id, "deleted": true}), || format!("Deleted user {id}"))
        }
        UserCommand::Associate { target, permissions, all_permissions } => {
            let perms = permission_set(permissions, all_permissions)?;
            let user_id = ctx.user_id(&target.user).await?;
            let m = accounts.associate(actor, user_id, target.client, &perms).await?;
            out.emit(&m, || format!("Associated user {} with client {}", m.user_id, m.client_id))
        }
        UserCommand::Dissociate { target } => {
            let user_id = ctx.user_id(&target.user).await?;
            accounts.dissociate(actor, user_id, target.client).await?;
            out.emit(&json!({"user_id": user_id, "client_id": target.client, "associated": false}), || {
                format!("Removed user {user_id} from client {}", target.client)
            })
        }
        UserCommand::Permissions { target, permissions, all_permissions } => {
            let perms = permission_set(permissions, all_permissions)?;
            let user_id = ctx.user_id(&target.user).await?;
            let m = accounts.set_permissions(actor, user_id, target.client, &perms).await?;
            out.emit(&m, || format!("Set permissions of user {} on client {}", m.user_id, m.client_id))
        }
        UserCommand::MakeOwner { target } => {
            let user_id = ctx.user_id(&target.user).await?;
            let m = accounts.make_owner(actor, user_id, target.client).await?;
            out.emit(&m, || format!("User {} now owns client {}", m.user_id, m.client_id))
        }
        UserCommand::SetPassword { user, password } => {
            let id = ctx.user_id(&user).await?;
            accounts.set_password(actor, (Principal::User, id), &password.require()?).await?;
            // A new password ends every session of the user, as a change or a reset does.
            let ended = ctx.sessions.end_for_user(id, None).await?;
            let forgotten = ctx.auth.forget_devices(Principal::User, id).await?;
            let summary =
                json!({"id": id, "has_password": true, "sessions_ended": ended, "devices_forgotten": forgotten});
            out.emit(&summary, || {
                format!(
                    "Set the password of user {id}; {ended} session(s) ended, {forgotten} known device(s) forgotten"
                )
            })
        }
        UserCommand::ResetPassword { user } => {
            let id = ctx.user_id(&user).await?;
            let user = accounts.user(id).await?;
            ctx.auth.send_reset(actor, &user).await?;
            out.emit(&json!({"id": id, "email": user.email, "queued": true}), || {
                format!("Queued a password reset email to {}; `gatehouse cron` delivers it.", user.email)
            })
        }
        UserCommand::Disable2fa { user } => {
            let id = ctx.user_id(&user).await?;
            ctx.auth.turn_off_second_factor(actor, Principal::User, id).await?;
            out.emit(&json!({"id": id, "twofa_method": null}), || {
                format!("Two-factor authentication of user {id} is off.")
            })
        }
        UserCommand::Unlock { user } => {
            let id = ctx.user_id(&user).await?;
            let user = accounts.user(id).await?;
            let removed = ctx.auth.unlock_user(actor, &user).await?;
            out.emit(&json!({"id": id, "removed": removed}), || match removed.len() {
                0 => format!("{} had no failed attempts counted and was not locked.", user.email),
                n => format!("Unlocked {}: cleared {n} counter(s).", user.email),
            })
        }
        UserCommand::Import { file, format } => {
            let rows = super::import::read(&file, format.as_deref())?;
            let count = rows.len();
            let users = accounts.import_users(actor, rows).await.map_err(|e| {
                let line = super::import::line_of(&file, format.as_deref(), e.row);
                Error::Refused { code: e.error.code(), message: format!("{}:{line}: {}", file.display(), e.error) }
            })?;
            out.emit(&users, || format!("Imported {count} user(s) from {}.", file.display()))
        }
        UserCommand::SecurityAnswer { user, question, answer } => {
            let id = ctx.user_id(&user).await?;
            accounts.set_security_answer(actor, id, question, &answer).await?;
            out.emit(&json!({"id": id, "security_question_id": question}), || {
                format!("Set the security question of user {id}")
            })
        }
    }
}

pub async fn match_details(args: MatchDetailsArgs, ctx: &Context, out: &Output) -> Result<()> {
    let user_id = ctx.user_id(&args.user).await?;
    let direction: CopyDirection = args.from.parse()?;
    ctx.auth.match_details(&ctx.actor, user_id, args.client, direction).await?;
    let (from, to, what) = match direction {
        CopyDirection::UserToClient => ("user", "client", "name, email and language"),
        CopyDirection::ClientToUser => ("client", "user", "name, email and language"),
        CopyDirection::ClientNamesToUser => ("client_names", "user", "name and language"),
    };
    out.emit(&json!({"user_id": user_id, "client_id": args.client, "from": from}), || {
        format!("Copied {what} from the {} onto the {to}", from.trim_end_matches("_names"))
    })
}
