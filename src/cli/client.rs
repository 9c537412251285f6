//! `gatehouse client …`

use clap::{Args, Subcommand};
use serde_json::json;

use super::output::{fields, table, time};
use super::{Context, Output};
use crate::accounts::{Client, ClientStatus, ClientUpdate, EmailPrefs, NewClient, OwnerSpec};
use crate::error::{Error, Result};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Add a client; its owner is a new user made from the client's details, or --owner-user
    Add(AddArgs),
    /// List clients
    List {
        /// Only clients with this status: active, inactive or closed
        #[arg(long)]
        status: Option<String>,
        /// Only clients whose email, name or company contains this text
        #[arg(long)]
        search: Option<String>,
    },
    /// Show a client with its users
    Show { id: i64 },
    /// Change a client's details (only the fields given)
    Update {
        id: i64,
        #[command(flatten)]
        fields: ClientFields,
        /// active, inactive or closed
        #[arg(long)]
        status: Option<String>,
    },
    /// Close a client: kept for the records, but no longer usable to log in
    Close { id: i64 },
    /// Delete a client, its memberships and invites
    Delete {
        id: i64,
        /// Also delete its users that belong to no other client
        #[arg(long)]
        delete_users: bool,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub fields: ClientFields,
    /// Make this existing user (id or email) the owner instead of creating one
    #[arg(long, value_name = "ID")]
    pub owner_user: Option<String>,
    /// Password for the owner user created with the client
    #[command(flatten)]
    pub password: super::password::PasswordArgs,
}

#[derive(Debug, Args, Default)]
pub struct ClientFields {
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub first_name: Option<String>,
    #[arg(long)]
    pub last_name: Option<String>,
    #[arg(long)]
    pub company: Option<String>,
    #[arg(long)]
    pub address1: Option<String>,
    #[arg(long)]
    pub address2: Option<String>,
    #[arg(long)]
    pub city: Option<String>,
    #[arg(long)]
    pub state: Option<String>,
    #[arg(long)]
    pub postcode: Option<String>,
    /// ISO 3166-1 alpha-2 code, such as GB or US
    #[arg(long)]
    pub country: Option<String>,
    #[arg(long)]
    pub phone: Option<String>,
    #[arg(long)]
    pub language: Option<String>,
    #[arg(long)]
    pub tax_id: Option<String>,
    /// Client group name
    #[arg(long)]
    pub group: Option<String>,
    #[arg(long)]
    pub notes: Option<String>,
    /// Email kinds the client receives: general,product,domain,invoice,support,affiliate (or "none")
    #[arg(long, value_name = "KINDS")]
    pub email_prefs: Option<String>,
}

impl ClientFields {
    fn into_update(self, status: Option<String>) -> Result<ClientUpdate> {
        let email_prefs = match self.email_prefs.as_deref() {
            Some("none") => Some(EmailPrefs::parse_list("")?),
            Some(list) => Some(EmailPrefs::parse_list(list)?),
            None => None,
        };
        Ok(ClientUpdate {
            first_name: self.first_name,
            last_name: self.last_name,
            company: self.company,
            email: self.email,
            address1: self.address1,
            address2: self.address2,
            city: self.city,
            state: self.state,
            postcode: self.postcode,
            country: self.country,
            phone: self.phone,
            language: self.language,
            tax_id: self.tax_id,
            status: status.map(|s| s.parse()).transpose()?,
            group: self.group,
            notes: self.notes,
            email_prefs,
        })
    }
}

fn name(c: &Client) -> String {
    format!("{} {}", c.first_name, c.last_name)
}

pub async fn run(command: ClientCommand, ctx: &Context, out: &Output) -> Result<()> {
    if !matches!(command, ClientCommand::List { .. } | ClientCommand::Show { .. }) {
        ctx.admin_write_allowed()?;
    }
    let accounts = &ctx.accounts;
    match command {
        ClientCommand::Add(args) => {
            let owner = match &args.owner_user {
                Some(_) if args.password.password.is_some() || args.password.password_stdin => {
                    return Err(crate::Error::Usage(
                        "--owner-user makes an existing user the owner, whose password stays theirs: \
                         drop --password / --password-stdin"
                            .into(),
                    ));
                }
                Some(r) => OwnerSpec::Existing(ctx.user_id(r).await?),
                None => OwnerSpec::NewUser { password: args.password.read(false)? },
            };
            let client =
                accounts.create_client(&ctx.actor, NewClient { fields: args.fields.into_update(None)?, owner }).await?;
            out.emit(&client, || {
                format!("Created client {} ({}), owned by user {}", client.id, name(&client), client.owner_user_id)
            })
        }
        ClientCommand::List { status, search } => {
            let status: Option<ClientStatus> = status.map(|s| s.parse()).transpose()?;
            let clients = accounts.list_clients(status, search.as_deref()).await?;
            out.emit(&clients, || {
                table(
                    &["ID", "NAME", "COMPANY", "EMAIL", "STATUS", "OWNER"],
                    clients
                        .iter()
                        .map(|c| {
                            vec![
                                c.id.to_string(),
                                name(c),
                                c.company.clone(),
                                c.email.clone(),
                                c.status.to_string(),
                                c.owner_user_id.to_string(),
                            ]
                        })
                        .collect(),
                )
            })
        }
        ClientCommand::Show { id } => {
            let client = accounts.client(id).await?;
            let members = accounts.members_of_client(id).await?;
            let mut value = serde_json::to_value(&client).map_err(|e| Error::Internal(e.to_string()))?;
            value["users"] = json!(members);
            out.emit(&value, || {
                let c = &client;
                let address = [&c.address1, &c.address2, &c.city, &c.state, &c.postcode, &c.country]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut text = fields(&[
                    ("id", c.id.to_string()),
                    ("name", name(c)),
                    ("company", c.company.clone()),
                    ("email", c.email.clone()),
                    ("address", address),
                    ("phone", c.phone.clone()),
                    ("language", c.language.clone()),
                    ("tax id", c.tax_id.clone()),
                    ("status", c.status.to_string()),
                    ("group", c.group.clone()),
                    ("email prefs", c.email_prefs.to_stored()),
                    ("notes", c.notes.clone()),
                    ("created", time(c.created_at)),
                ]);
                text += "\nusers:\n";
                text += &table(
                    &["USER", "EMAIL", "ROLE", "PERMISSIONS"],
                    members
                        .iter()
                        .map(|m| {
                            let perms: Vec<&str> = m.permissions.iter().map(|p| p.key()).collect();
                            vec![
                                m.user_id.to_string(),
                                m.user_email.clone(),
                                if m.is_owner { "owner" } else { "user" }.into(),
                                if m.is_owner { "all".into() } else { perms.join(",") },
                            ]
                        })
                        .collect(),
                );
                text
            })
        }
        ClientCommand::Update { id, fields: f, status } => {
            let client = accounts.update_client(&ctx.actor, id, f.into_update(status)?).await?;
            out.emit(&client, || format!("Updated client {}", client.id))
        }
        ClientCommand::Close { id } => {
            let client = accounts.close_client(&ctx.actor, id).await?;
            out.emit(&client, || format!("Closed client {}", client.id))
        }
        ClientCommand::Delete { id, delete_users } => {
            let deleted = accounts.delete_client(&ctx.actor, id, delete_users).await?;
            out.emit(&deleted, || {
                let mut s = format!("Deleted client {}", deleted.id);
                if !deleted.deleted_users.is_empty() {
                    s += &format!("; deleted users {:?}", deleted.deleted_users);
                }
                if delete_users && !deleted.kept_users.is_empty() {
                    s += &format!("; kept users {:?} (they belong to other clients)", deleted.kept_users);
                }
                s
            })
        }
    }
}
