//! Clients: billable accounts. Every client has exactly one owner, a user who holds every
//! permission; the database enforces it (see migrations).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::json;

use super::AuditAction;
use super::Target;
use super::email::Email;
use super::users::{NewUser, require_name};
use super::{Accounts, Actor, Permissions, audit};
use crate::error::{Code, Error, Result};
use crate::store::{composed, placeholders};

/// The columns that hold a client's details: one list for INSERT and UPDATE, bound in this
/// order by [`bind_details`].
const DETAIL_COLUMNS: [&str; 17] = [
    "first_name",
    "last_name",
    "company",
    "email",
    "address1",
    "address2",
    "city",
    "state",
    "postcode",
    "country",
    "phone",
    "language",
    "tax_id",
    "status",
    "client_group",
    "notes",
    "email_prefs",
];

type ClientQuery<'q> = sqlx::query::QueryAs<'q, sqlx::Any, Client, sqlx::any::AnyArguments>;

/// Binds a client's details in the order of [`DETAIL_COLUMNS`].
fn bind_details<'q>(query: ClientQuery<'q>, c: &'q Client) -> ClientQuery<'q> {
    query
        .bind(&c.first_name)
        .bind(&c.last_name)
        .bind(&c.company)
        .bind(&c.email)
        .bind(&c.address1)
        .bind(&c.address2)
        .bind(&c.city)
        .bind(&c.state)
        .bind(&c.postcode)
        .bind(&c.country)
        .bind(&c.phone)
        .bind(&c.language)
        .bind(&c.tax_id)
        .bind(c.status.to_string())
        .bind(&c.group)
        .bind(&c.notes)
        .bind(c.email_prefs.to_stored())
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum ClientStatus {
    #[default]
    Active,
    Inactive,
    Closed,
}

impl FromStr for ClientStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "active" => Ok(Self::Active),
            "inactive" => Ok(Self::Inactive),
            "closed" => Ok(Self::Closed),
            other => {
                Err(Error::invalid(format!("unknown client status `{other}`; expected active, inactive or closed")))
            }
        }
    }
}

impl TryFrom<String> for ClientStatus {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl fmt::Display for ClientStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Closed => "closed",
        })
    }
}

/// The kinds of email a client can opt out of.
pub const EMAIL_KINDS: &[&str] = &["general", "product", "domain", "invoice", "support", "affiliate"];

/// The email kinds a client receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EmailPrefs(Vec<String>);

impl Default for EmailPrefs {
    /// A new client receives every kind of email.
    fn default() -> Self {
        Self::all()
    }
}

impl EmailPrefs {
    pub fn all() -> Self {
        Self(EMAIL_KINDS.iter().map(|s| s.to_string()).collect())
    }
    pub fn parse_list(list: &str) -> Result<Self> {
        let mut kinds = Vec::new();
        for k in super::split_csv(list) {
            let k = k.to_ascii_lowercase();
            if !EMAIL_KINDS.contains(&k.as_str()) {
                return Err(Error::invalid(format!("unknown email kind `{k}`; expected {}", EMAIL_KINDS.join(", "))));
            }
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        kinds.sort_by_key(|k| EMAIL_KINDS.iter().position(|e| e == k));
        Ok(Self(kinds))
    }
    pub fn to_stored(&self) -> String {
        super::join_csv(&self.0)
    }
}

impl TryFrom<String> for EmailPrefs {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse_list(&s)
    }
}

crate::stored_as!(ClientStatus, String);
crate::stored_as!(EmailPrefs, String);

#[derive(Debug, Clone, Default, Serialize, sqlx_macros::FromRow)]
pub struct Client {
    pub id: i64,
    pub owner_user_id: i64,
    pub first_name: String,
    pub last_name: String,
    pub company: String,
    pub email: String,
    pub address1: String,
    pub address2: String,
    pub city: String,
    pub state: String,
    pub postcode: String,
    pub country: String,
    pub phone: String,
    pub language: String,
    pub tax_id: String,
    pub status: ClientStatus,
    #[sqlx(rename = "client_group")]
    pub group: String,
    pub notes: String,
    pub email_prefs: EmailPrefs,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub created_at: i64,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub updated_at: i64,
}

/// Who owns a new client.
#[derive(Debug, Clone)]
pub enum OwnerSpec {
    /// An existing user becomes the owner.
    Existing(i64),
    /// A new user is created from the client's email and names, with an optional password.
    NewUser { password: Option<String> },
}

/// The contact and account fields of a client, all optional in an update. Deserialized from
/// the admin API's JSON bodies as it is: an unknown field is refused, not ignored.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientUpdate {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    pub email: Option<String>,
    pub address1: Option<String>,
    pub address2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postcode: Option<String>,
    pub country: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    pub tax_id: Option<String>,
    pub status: Option<ClientStatus>,
    pub group: Option<String>,
    pub notes: Option<String>,
    #[serde(skip)]
    pub email_prefs: Option<EmailPrefs>,
}

#[derive(Debug, Clone)]
pub struct NewClient {
    pub fields: ClientUpdate,
    pub owner: OwnerSpec,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeletedClient {
    pub id: i64,
    pub deleted_users: Vec<i64>,
    pub kept_users: Vec<i64>,
}

/// An ISO 3166-1 alpha-2 code (the `celes` crate's list), upper-cased; empty stays empty.
fn country_code(raw: &str) -> Result<String> {
    let code = raw.trim().to_ascii_uppercase();
    if code.is_empty() || (code.len() == 2 && celes::Country::from_alpha2(&code).is_ok()) {
        Ok(code)
    } else {
        Err(Error::invalid(format!("`{}` is not an ISO 3166-1 alpha-2 country code such as GB or US", raw.trim())))
    }
}

/// Every country a client may be in, as (alpha-2 code, name), by name: what a form offers.
pub fn countries() -> Vec<(&'static str, &'static str)> {
    let mut all: Vec<(&str, &str)> = celes::Country::get_countries().iter().map(|c| (c.alpha2, c.long_name)).collect();
    all.sort_by_key(|(_, name)| name.trim_start_matches("The ").to_lowercase());
    all
}

/// A phone number is kept as typed (`+44 (0)20 7946 0958 ext. 12`), only checked loosely: the
/// characters people write numbers with, at least five digits, at most 40 characters.
fn phone_number(raw: &str) -> Result<String> {
    let phone = raw.trim();
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = |c: char| c.is_ascii_digit() || " +-().,/#*".contains(c) || "extEXT".contains(c);
    if phone.is_empty() || (digits >= 5 && phone.chars().count() <= 40 && phone.chars().all(allowed)) {
        Ok(phone.to_string())
    } else {
        Err(Error::invalid(format!("`{phone}` does not look like a phone number (digits, spaces and + - ( ) . only)")))
    }
}

impl ClientUpdate {
    /// Sets the contact detail `field` to `value`.
    pub fn set(&mut self, field: crate::config::ContactField, value: String) {
        use crate::config::ContactField as F;
        let slot = match field {
            F::Company => &mut self.company,
            F::Address1 => &mut self.address1,
            F::Address2 => &mut self.address2,
            F::City => &mut self.city,
            F::State => &mut self.state,
            F::Postcode => &mut self.postcode,
            F::Country => &mut self.country,
            F::Phone => &mut self.phone,
            F::TaxId => &mut self.tax_id,
        };
        *slot = Some(value);
    }
}

impl Client {
    /// How the client area names the account: the company, else the contact's name (the same
    /// rule as `client_name` in membership listings).
    pub fn display_name(&self) -> String {
        if self.company.is_empty() { format!("{} {}", self.first_name, self.last_name) } else { self.company.clone() }
    }

    /// Applies an update in memory, validating each field; returns what changed (for the audit).
    fn apply(&mut self, u: &ClientUpdate) -> Result<serde_json::Map<String, serde_json::Value>> {
        let mut changed = serde_json::Map::new();
        let mut set = |name: &str, slot: &mut String, value: String| {
            if *slot != value {
                changed.insert(name.into(), json!({"from": slot, "to": value}));
                *slot = value;
            }
        };
        if let Some(v) = &u.first_name {
            set("first_name", &mut self.first_name, require_name("first name", v)?);
        }
        if let Some(v) = &u.last_name {
            set("last_name", &mut self.last_name, require_name("last name", v)?);
        }
        if let Some(v) = &u.email {
            set("email", &mut self.email, Email::parse(v)?.display);
        }
        if let Some(v) = &u.country {
            set("country", &mut self.country, country_code(v)?);
        }
        if let Some(v) = &u.phone {
            set("phone", &mut self.phone, phone_number(v)?);
        }
        for (name, value, slot) in [
            ("company", &u.company, &mut self.company),
            ("address1", &u.address1, &mut self.address1),
            ("address2", &u.address2, &mut self.address2),
            ("city", &u.city, &mut self.city),
            ("state", &u.state, &mut self.state),
            ("postcode", &u.postcode, &mut self.postcode),
            ("language", &u.language, &mut self.language),
            ("tax_id", &u.tax_id, &mut self.tax_id),
            ("group", &u.group, &mut self.group),
            ("notes", &u.notes, &mut self.notes),
        ] {
            if let Some(v) = value {
                // Shown on pages, in mails and on terminals: no control characters, but for
                // the line breaks of the notes.
                if v.chars().any(|c| c.is_control() && !(name == "notes" && matches!(c, '\n' | '\r' | '\t'))) {
                    return Err(Error::invalid(format!("{name} must not contain control characters")));
                }
                set(name, slot, v.trim().to_string());
            }
        }
        if let Some(s) = u.status.filter(|s| *s != self.status) {
            changed.insert("status".into(), json!({"from": self.status, "to": s}));
            self.status = s;
        }
        if let Some(p) = u.email_prefs.as_ref().filter(|p| **p != self.email_prefs) {
            changed.insert("email_prefs".into(), json!({"from": self.email_prefs, "to": p}));
            self.email_prefs = p.clone();
        }
        Ok(changed)
    }
}

impl Accounts {
    pub async fn create_client(&self, actor: &Actor, new: NewClient) -> Result<Client> {
        self.create_client_notifying(actor, new, None).await
    }

    /// As [`Accounts::create_client`], with a message to the client's email queued in the same
    /// transaction (a sign-up's welcome mail): both happen, or neither.
    pub async fn create_client_notifying(
        &self,
        actor: &Actor,
        new: NewClient,
        notice: Option<(&str, &str)>,
    ) -> Result<Client> {
        let f = &new.fields;
        let mut client = Client::default();
        let (Some(first), Some(last), Some(email)) = (&f.first_name, &f.last_name, &f.email) else {
            return Err(Error::invalid("a client needs an email, a first name and a last name"));
        };
        client.apply(f)?;
        let email = Email::parse(email)?;
        self.refuse_banned(&email).await?;
        let new_owner = match &new.owner {
            OwnerSpec::Existing(id) => {
                self.user(*id).await?;
                None
            }
            OwnerSpec::NewUser { password } => {
                let owner = NewUser {
                    email: email.display.clone(),
                    first_name: first.clone(),
                    last_name: last.clone(),
                    language: f.language.clone().unwrap_or_default(),
                    password: password.clone(),
                };
                let prepared = self.prepare_user(actor, &owner).await?;
                Some((owner, prepared))
            }
        };

        let mut tx = self.db.begin().await?;
        let owner_id = match (new_owner, &new.owner) {
            (Some((owner, (email, hash))), _) => {
                Self::insert_user(&mut tx, self.db.now(), actor, &owner, &email, hash).await?.id
            }
            (None, OwnerSpec::Existing(id)) => *id,
            (None, OwnerSpec::NewUser { .. }) => unreachable!("prepared above"),
        };
        let ts = self.db.now();
        let n = DETAIL_COLUMNS.len();
        let sql = format!(
            "INSERT INTO clients ({}, owner_user_id, created_at, updated_at) VALUES ({}, ${}, ${}, ${}) RETURNING *",
            DETAIL_COLUMNS.join(", "),
            placeholders(1..=n),
            n + 1,
            n + 2,
            n + 2
        );
        let created: Client =
            bind_details(sqlx::query_as(composed(sql)), &client).bind(owner_id).bind(ts).fetch_one(&mut *tx).await?;
        sqlx::query("INSERT INTO memberships (client_id, user_id, permissions, created_at) VALUES ($1, $2, $3, $4)")
            .bind(created.id)
            .bind(owner_id)
            .bind(Permissions::all().to_stored())
            .bind(ts)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::ClientCreate,
            (Target::Client, Some(created.id)),
            json!({"email": created.email, "owner_user_id": owner_id}),
        )
        .await?;
        if let Some((subject, body)) = notice {
            crate::mail::enqueue(&mut tx, self.db.now(), &created.email, subject, body).await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    pub async fn client(&self, id: i64) -> Result<Client> {
        sqlx::query_as("SELECT * FROM clients WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| Error::not_found("client", id))
    }

    /// A client that can still gain users: refuses a closed one.
    pub(crate) async fn open_client(&self, id: i64) -> Result<Client> {
        let client = self.client(id).await?;
        if client.status == ClientStatus::Closed {
            return Err(Error::refused(Code::ClientClosed, format!("client {id} is closed")));
        }
        Ok(client)
    }

    /// Clients, by id, optionally only those with a status or matching a search term
    /// (email, name or company, case-insensitive).
    pub async fn list_clients(&self, status: Option<ClientStatus>, search: Option<&str>) -> Result<Vec<Client>> {
        let pattern = format!("%{}%", search.unwrap_or("").trim().to_lowercase());
        Ok(sqlx::query_as(
            "SELECT * FROM clients WHERE ($1 = '' OR status = $1) \
             AND (LOWER(email) LIKE $2 OR LOWER(first_name || ' ' || last_name) LIKE $2 OR LOWER(company) LIKE $2) \
             ORDER BY id",
        )
        .bind(status.map(|s| s.to_string()).unwrap_or_default())
        .bind(pattern)
        .fetch_all(self.db.pool())
        .await?)
    }

    pub async fn update_client(&self, actor: &Actor, id: i64, update: ClientUpdate) -> Result<Client> {
        let mut client = self.client(id).await?;
        let old_email = client.email.to_lowercase();
        let changed = client.apply(&update)?;
        if changed.is_empty() {
            return Ok(client);
        }
        if client.email.to_lowercase() != old_email {
            self.refuse_banned(&Email::parse(&client.email)?).await?;
        }
        let mut tx = self.db.begin().await?;
        let n = DETAIL_COLUMNS.len();
        let assignments: Vec<String> =
            DETAIL_COLUMNS.iter().enumerate().map(|(i, column)| format!("{column} = ${}", i + 1)).collect();
        let sql = format!(
            "UPDATE clients SET {}, updated_at = ${} WHERE id = ${} RETURNING *",
            assignments.join(", "),
            n + 1,
            n + 2
        );
        let updated: Client = bind_details(sqlx::query_as(composed(sql)), &client)
            .bind(self.db.now())
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::ClientUpdate,
            (Target::Client, Some(id)),
            changed.into(),
        )
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Closes a client: it is kept for the records but can no longer be used to log in.
    pub async fn close_client(&self, actor: &Actor, id: i64) -> Result<Client> {
        self.update_client(actor, id, ClientUpdate { status: Some(ClientStatus::Closed), ..Default::default() }).await
    }

    /// Deletes a client with its memberships and invites. With `delete_users`, its users are
    /// deleted too — but only those left without any other client.
    pub async fn delete_client(&self, actor: &Actor, id: i64, delete_users: bool) -> Result<DeletedClient> {
        let client = self.client(id).await?;
        let mut tx = self.db.begin().await?;
        let members: Vec<i64> =
            sqlx::query_scalar("SELECT user_id FROM memberships WHERE client_id = $1 ORDER BY user_id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM clients WHERE id = $1").bind(id).execute(&mut *tx).await?;
        let (mut deleted_users, mut kept_users) = (Vec::new(), Vec::new());
        for user_id in members {
            let others: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
            if delete_users && others == 0 {
                sqlx::query("DELETE FROM users WHERE id = $1").bind(user_id).execute(&mut *tx).await?;
                super::users::forget_traces(&mut tx, user_id).await?;
                audit::record(
                    &mut tx,
                    self.db.now(),
                    actor,
                    AuditAction::UserDelete,
                    (Target::User, Some(user_id)),
                    json!({"with_client": id}),
                )
                .await?;
                deleted_users.push(user_id);
            } else {
                kept_users.push(user_id);
            }
        }
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::ClientDelete,
            (Target::Client, Some(id)),
            json!({"email": client.email, "deleted_users": deleted_users}),
        )
        .await?;
        tx.commit().await?;
        Ok(DeletedClient { id, deleted_users, kept_users })
    }
}
