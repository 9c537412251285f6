//! Clients in the admin area: the list with search and paging, adding a client (with its
//! owner), the profile (contact details, status, close) and its Users tab — associate an
//! existing user, invite by email, permissions, make owner, remove, match details.

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::json;

use super::{Staff, StaffForm, done};
use crate::accounts::{
    AdminPermission as P, ClientStatus, ClientUpdate, CopyDirection, NewClient, OwnerSpec, Permissions,
};
use crate::error::Error;
use crate::web::AppState;
use crate::web::pages::Form;
use crate::web::render::{Answer, Page, Stop};

/// Rows per page of the lists.
pub const PAGE_SIZE: i64 = 25;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub page: Option<i64>,
}

impl ListQuery {
    pub fn page(&self) -> i64 {
        self.page.unwrap_or(1).max(1)
    }
    pub fn offset(&self) -> i64 {
        (self.page() - 1) * PAGE_SIZE
    }
    /// Previous and next page numbers, where there is one.
    pub fn paging(&self, total: i64) -> serde_json::Value {
        let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
        let page = self.page();
        json!({"page": page, "pages": pages, "total": total, "q": self.q,
               "prev": (page > 1).then(|| page - 1), "next": (page < pages).then(|| page + 1)})
    }
}

pub async fn list(State(state): State<AppState>, staff: Staff, Query(q): Query<ListQuery>) -> Answer {
    staff.require(&state, P::ClientsView)?;
    let listing = state.accounts.clients_page(&q.q, q.offset(), PAGE_SIZE).await?;
    let rows: Vec<_> = listing
        .items
        .iter()
        .map(|c| json!({"id": c.id, "name": c.display_name(), "company": c.company, "email": c.email, "status": c.status.to_string()}))
        .collect();
    let page = Page::new("admin/clients.html", "Clients")
        .with("clients", rows)
        .with("paging", q.paging(listing.total))
        .with("can_create", staff.can(P::ClientsCreate));
    staff.page(&state, page)
}

pub async fn new_form(State(state): State<AppState>, staff: Staff) -> Answer {
    staff.require(&state, P::ClientsCreate)?;
    staff.page(&state, Page::new("admin/client_new.html", "Add a client"))
}

/// A new client and its owner: a new user made from the client's details (who sets a password
/// by the reset link an admin can send), or an existing user given by email.
pub async fn create(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Answer {
    let actor = staff.require(&state, P::ClientsCreate)?;
    let owner = match form.text("owner_email") {
        "" => OwnerSpec::NewUser { password: None },
        email => match state.accounts.user_by_email(email).await? {
            // An existing user made owner: their access changes, which is users.manage's.
            Some(user) => {
                staff.require(&state, P::UsersManage)?;
                OwnerSpec::Existing(user.id)
            }
            None => {
                let e = Error::invalid(format!("there is no user with the email {email} to own the client"));
                return done(&state, staff, Err(e), "admin/clients/new").await;
            }
        },
    };
    match state.accounts.create_client(&actor, NewClient { fields: form.contact_details(), owner }).await {
        Ok(client) => {
            let next = format!("admin/clients/{}", client.id);
            done(&state, staff, Ok(format!("Client {} was added.", client.display_name())), &next).await
        }
        Err(e) => done(&state, staff, Err(e), "admin/clients/new").await,
    }
}

/// Which of the user's and the client's contact details differ (shown first) and agree.
fn comparison(user: &crate::accounts::User, client: &crate::accounts::Client) -> Vec<serde_json::Value> {
    let mut rows: Vec<_> = [
        ("First name", &user.first_name, &client.first_name),
        ("Last name", &user.last_name, &client.last_name),
        ("Email", &user.email, &client.email),
        ("Language", &user.language, &client.language),
    ]
    .into_iter()
    .map(|(field, u, c)| json!({"field": field, "user": u, "client": c, "differs": !u.eq_ignore_ascii_case(c)}))
    .collect();
    rows.sort_by_key(|r| !r["differs"].as_bool().unwrap_or(false));
    rows
}

pub async fn profile(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Answer {
    staff.require(&state, P::ClientsView)?;
    client_profile(&state, staff, id, false).await
}

/// The profile with its contact details open for editing.
pub async fn edit(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Answer {
    staff.require(&state, P::ClientsManage)?;
    client_profile(&state, staff, id, true).await
}

async fn client_profile(state: &AppState, staff: Staff, id: i64, editing: bool) -> Answer {
    let accounts = &state.accounts;
    let client = accounts.client(id).await?;
    let mut members = Vec::new();
    for m in accounts.members_of_client(id).await? {
        let user = accounts.user(m.user_id).await?;
        let keys: Vec<&str> = m.permissions.iter().map(|p| p.key()).collect();
        members.push(json!({"membership": m, "permission_keys": keys, "details": comparison(&user, &client)}));
    }
    let invites: Vec<_> = accounts
        .list_invites(Some(id))
        .await?
        .into_iter()
        .filter(|i| i.status == crate::accounts::InviteStatus::Pending)
        .collect();
    let page = Page::new("admin/client.html", &client.display_name())
        .with("client", &client)
        .with("name", client.display_name())
        .with("closed", client.status == ClientStatus::Closed)
        .with("members", members)
        .with("invites", invites)
        .with(
            "all_permissions",
            Permissions::all().iter().map(|p| json!({"key": p.key(), "label": p.label()})).collect::<Vec<_>>(),
        )
        .with("editing", editing)
        .with("statuses", ["active", "inactive", "closed"])
        .with("can_manage", staff.can(P::ClientsManage))
        .with("can_manage_users", staff.can(P::UsersManage));
    staff.page(state, page)
}

fn client_page(id: i64) -> String {
    format!("admin/clients/{id}")
}

pub async fn save(State(state): State<AppState>, Path(id): Path<i64>, StaffForm { staff, form }: StaffForm) -> Answer {
    let actor = staff.require(&state, P::ClientsManage)?;
    let result = async {
        // The status beside the contact details: what only staff may change.
        let status = match form.text("status") {
            "" => None,
            given => Some(given.parse::<ClientStatus>()?),
        };
        let update = ClientUpdate { status, ..form.contact_details() };
        state.accounts.update_client(&actor, id, update).await?;
        Ok("The client's details are saved.".to_string())
    };
    done(&state, staff, result.await, &client_page(id)).await
}

pub async fn close(State(state): State<AppState>, Path(id): Path<i64>, StaffForm { staff, .. }: StaffForm) -> Answer {
    let actor = staff.require(&state, P::ClientsManage)?;
    let result = state.accounts.close_client(&actor, id).await;
    let text = "The client is closed: its users can no longer sign in to it; its records stay.";
    done(&state, staff, result.map(|_| text.into()), &client_page(id)).await
}

/// The Users tab's forms need `users.manage`.
fn users_manager(state: &AppState, staff: &Staff) -> Result<crate::accounts::Actor, Stop> {
    staff.require(state, P::UsersManage)
}

fn permissions_of(form: &Form) -> crate::Result<Permissions> {
    Permissions::parse_list(&form.all("permissions").join(","))
}

pub async fn associate(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    StaffForm { staff, form }: StaffForm,
) -> Answer {
    let actor = users_manager(&state, &staff)?;
    let accounts = &state.accounts;
    let email = form.text("email");
    let result = async {
        let user = accounts
            .user_by_email(email)
            .await?
            .ok_or_else(|| Error::invalid(format!("there is no user with the email {email}; invite them instead")))?;
        accounts.associate(&actor, user.id, id, &permissions_of(&form)?).await?;
        Ok(format!("{} can now work in this client.", user.email))
    }
    .await;
    done(&state, staff, result, &client_page(id)).await
}

pub async fn invite(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    StaffForm { staff, form }: StaffForm,
) -> Answer {
    let actor = users_manager(&state, &staff)?;
    let result = async {
        let permissions = permissions_of(&form)?;
        let invite = state.auth.invite(&actor, id, form.text("email"), &permissions, None, "The support team").await?;
        Ok(format!("An invitation was sent to {}.", invite.email))
    }
    .await;
    done(&state, staff, result, &client_page(id)).await
}

pub async fn permissions(
    State(state): State<AppState>,
    Path((id, user_id)): Path<(i64, i64)>,
    StaffForm { staff, form }: StaffForm,
) -> Answer {
    let actor = users_manager(&state, &staff)?;
    let result = async {
        let m = state.accounts.set_permissions(&actor, user_id, id, &permissions_of(&form)?).await?;
        Ok(format!("The permissions of {} are saved.", m.user_email))
    }
    .await;
    done(&state, staff, result, &client_page(id)).await
}

pub async fn make_owner(
    State(state): State<AppState>,
    Path((id, user_id)): Path<(i64, i64)>,
    StaffForm { staff, .. }: StaffForm,
) -> Answer {
    let actor = users_manager(&state, &staff)?;
    let result = state.accounts.make_owner(&actor, user_id, id).await;
    done(&state, staff, result.map(|m| format!("{} now owns this client.", m.user_email)), &client_page(id)).await
}

pub async fn remove(
    State(state): State<AppState>,
    Path((id, user_id)): Path<(i64, i64)>,
    StaffForm { staff, .. }: StaffForm,
) -> Answer {
    let actor = users_manager(&state, &staff)?;
    let result = state.accounts.dissociate(&actor, user_id, id).await;
    done(&state, staff, result.map(|()| "The user no longer works in this client.".into()), &client_page(id)).await
}

pub async fn match_details(
    State(state): State<AppState>,
    Path((id, user_id)): Path<(i64, i64)>,
    StaffForm { staff, form }: StaffForm,
) -> Answer {
    let actor = staff.require(&state, P::ClientsManage)?;
    let from: CopyDirection = form.text("from").parse()?;
    let accounts = &state.accounts;
    let before = accounts.user(user_id).await?;
    if from != CopyDirection::UserToClient {
        // Copying onto the user changes a login — its email decides where password resets go:
        // a user change, not a client one.
        staff.require(&state, P::UsersManage)?;
    }
    if from == CopyDirection::ClientToUser {
        let email = accounts.client(id).await?.email;
        if !email.eq_ignore_ascii_case(&before.email) {
            if let Some(other) = accounts.user_by_email(&email).await?.filter(|u| u.id != user_id) {
                let e = crate::Error::invalid(format!(
                    "the client's email {email} is the login of another user ({} {}): it cannot become this \
                     user's too. Copy the client's name and language only, or change the client's email first",
                    other.first_name, other.last_name
                ));
                return done(&state, staff, Err(e), &client_page(id)).await;
            }
            // As when staff edit the email: only with a recent proof that it is the admin.
            let why = "Copying the client's email to the user changes their login, and where its password resets \
                       go: confirm it is you, then copy again.";
            super::login::require_recent(&state, &staff.session, why).await?;
        }
    }
    let result = async {
        state.auth.match_details(&actor, user_id, id, from).await?;
        Ok(match from {
            CopyDirection::UserToClient => "The user's details were copied to the client.".to_string(),
            CopyDirection::ClientToUser => "The client's details were copied to the user.".to_string(),
            CopyDirection::ClientNamesToUser => "The client's name and language were copied to the user.".to_string(),
        })
    }
    .await;
    done(&state, staff, result, &client_page(id)).await
}
