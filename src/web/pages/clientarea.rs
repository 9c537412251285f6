//! The client area home: the current client (account) and the switcher, or the account chooser
//! when the user belongs to several clients and has not picked one.

use axum::extract::State;
use axum::http::StatusCode;

use super::extract::{SignedIn, UserForm};
use crate::accounts::Membership;
use crate::web::AppState;
use crate::web::render::{Answer, Page, message, see_other};

pub async fn show(State(state): State<AppState>, SignedIn { user, session, memberships }: SignedIn) -> Answer {
    let clients: Vec<_> = memberships.into_iter().filter(Membership::is_usable).collect();
    let current = session.data.client_id.and_then(|id| clients.iter().find(|m| m.client_id == id).cloned());
    // What the user may do here, in the words the users page uses (never the internal keys).
    let permissions: Vec<String> = current.iter().flat_map(|m| m.permissions.iter().map(|p| p.label())).collect();
    Ok(Page::new("clientarea.html", "Client area")
        .with("user", &user)
        .with("clients", &clients)
        .with("current", &current)
        .with("permissions", permissions)
        .render(&state, Some(&session)))
}

pub async fn switch(
    State(state): State<AppState>,
    UserForm { mut session, form, memberships, .. }: UserForm,
) -> Answer {
    let wanted: Option<i64> = form.text("client_id").parse().ok();
    let Some(target) = memberships.iter().find(|m| m.is_usable() && Some(m.client_id) == wanted) else {
        let text = "You cannot enter that account: it is closed, or you are not one of its users.";
        return Ok(message(&state, Some(&session), StatusCode::FORBIDDEN, "Access denied", text));
    };
    session.data.client_id = Some(target.client_id);
    match state.sessions.save(&mut session).await {
        Ok(()) => Ok(see_other(&state, "clientarea", None)),
        Err(e) => Ok(super::store_failed(&state, &e)),
    }
}
