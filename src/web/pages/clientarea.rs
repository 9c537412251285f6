//! The client area home: the current client (account) and the switcher, or the account chooser
//! when the user belongs to several clients and has not picked one.

use axum::extract::State;
use axum::http::StatusCode;

use super::extract::{SignedIn, UserForm};
use crate::accounts::Membership;
use crate::web::AppState;
use crate::web::render::{Answer, Page, message, see_other};

/// What the page shows of a client the user belongs to: the page is every signed-in user's first,
/// so it hands the template these three fields, not each membership's permissions and dates.
#[derive(serde::Serialize)]
struct Client<'a> {
    client_id: i64,
    client_name: &'a str,
    is_owner: bool,
}

/// What the page shows of the user.
#[derive(serde::Serialize)]
struct SignedInAs<'a> {
    email: &'a str,
}

impl<'a> From<&'a Membership> for Client<'a> {
    fn from(m: &'a Membership) -> Self {
        Client { client_id: m.client_id, client_name: &m.client_name, is_owner: m.is_owner }
    }
}

pub async fn show(State(state): State<AppState>, SignedIn { user, session, memberships }: SignedIn) -> Answer {
    let current = session.data.client_id.and_then(|id| Membership::usable_in(&memberships, id));
    // What the user may do here, in the words the users page uses (never the internal keys).
    let permissions: Vec<&str> = current.iter().flat_map(|m| m.permissions.iter().map(|p| p.label())).collect();
    let clients: Vec<Client> = memberships.iter().filter(|m| m.is_usable()).map(Client::from).collect();
    Ok(Page::new("clientarea.html", "Client area")
        .with("user", SignedInAs { email: &user.email })
        .with("clients", &clients)
        .with("current", current.map(Client::from))
        .with("permissions", permissions)
        .render(&state, Some(&session)))
}

pub async fn switch(
    State(state): State<AppState>,
    UserForm { mut session, form, memberships, .. }: UserForm,
) -> Answer {
    let wanted = form.text("client_id").parse().ok().and_then(|id| Membership::usable_in(&memberships, id));
    let Some(target) = wanted else {
        let text = "You cannot enter that account: it is closed, or you are not one of its users.";
        return Ok(message(&state, Some(&session), StatusCode::FORBIDDEN, "Access denied", text));
    };
    session.data.client_id = Some(target.client_id);
    match state.sessions.save(&mut session).await {
        Ok(()) => Ok(see_other(&state, "clientarea", None)),
        Err(e) => Ok(super::store_failed(&state, &e)),
    }
}
