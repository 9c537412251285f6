//! Users in the admin area: list and search, add one, the profile with the clients they belong to
//! and their sessions, their details edited, and the support actions — send a password reset,
//! turn two-factor off, end sessions, unlock, and log in as the client (a one-time link opened
//! in a new tab).

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::clients::{ListQuery, PAGE_SIZE};
use super::{Staff, StaffForm, done};
use crate::accounts::AuditAction;
use crate::accounts::Target;
use crate::accounts::{AdminPermission as P, NewUser, Principal, UserUpdate};
use crate::mail::humane;
use crate::web::AppState;
use crate::web::pages::profile::with_choices;
use crate::web::render::{Answer, Page};

pub async fn list(State(state): State<AppState>, staff: Staff, Query(q): Query<ListQuery>) -> Answer {
    staff.require(&state, P::UsersView)?;
    let listing = state.accounts.users_page(&q.q, q.offset(), PAGE_SIZE).await?;
    let rows: Vec<_> = listing
        .items
        .iter()
        .map(|u| json!({"id": u.id, "name": format!("{} {}", u.first_name, u.last_name), "email": u.email, "twofa": u.twofa_method}))
        .collect();
    let page = Page::new("admin/users.html", "Users")
        .with("users", rows)
        .with("paging", q.paging(listing.total))
        .with("can_create", staff.can(P::UsersCreate));
    staff.page(&state, page)
}

pub async fn new_form(State(state): State<AppState>, staff: Staff) -> Answer {
    staff.require(&state, P::UsersCreate)?;
    staff.page(&state, with_choices(Page::new("admin/user_new.html", "Add a user")))
}

/// A new user, without a password: they set one through the reset link sent at once (unless
/// the admin unticks it), so no admin ever knows it.
pub async fn create(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Answer {
    let actor = staff.require(&state, P::UsersCreate)?;
    let new = NewUser {
        email: form.text("email").into(),
        first_name: form.text("first_name").into(),
        last_name: form.text("last_name").into(),
        language: form.text("language").into(),
        password: None,
    };
    let user = match state.accounts.create_user(&actor, new).await {
        Ok(user) => user,
        Err(e) => return done(&state, staff, Err(e), "admin/users/new").await,
    };
    let mut text = format!("User {} was added.", user.email);
    if form.get("send_reset").is_some() {
        state.auth.send_reset(&actor, &user).await?;
        text.push_str(" A link to set their password was sent to them.");
    }
    done(&state, staff, Ok(text), &user_page(user.id)).await
}

pub async fn edit(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Answer {
    staff.require(&state, P::UsersManage)?;
    user_profile(&state, staff, id, true).await
}

/// The edited details: the same rules as everywhere (a unique email, no banned domain), and the
/// old address is told when the email changes.
pub async fn save(State(state): State<AppState>, Path(id): Path<i64>, StaffForm { staff, form }: StaffForm) -> Answer {
    let actor = staff.require(&state, P::UsersManage)?;
    // A login's email decides where its password resets go: changing it is taking the account
    // over, for whoever holds this admin session. Only with a recent proof that it is the admin.
    let user = state.accounts.user(id).await?;
    if !form.text("email").eq_ignore_ascii_case(&user.email) {
        let why = "Changing a user's login email hands its password resets to the new address: confirm it is you, \
                   then save the new email again.";
        super::login::require_recent(&state, &staff.session, why).await?;
    }
    let update = UserUpdate {
        email: Some(form.text("email").into()),
        first_name: Some(form.text("first_name").into()),
        last_name: Some(form.text("last_name").into()),
        language: Some(form.text("language").into()),
        timezone: Some(form.text("timezone").into()),
    };
    let result = state.auth.change_user(&actor, id, update).await.map(|u| format!("{}'s details are saved.", u.email));
    let back = if result.is_ok() { user_page(id) } else { format!("{}/edit", user_page(id)) };
    done(&state, staff, result, &back).await
}

pub async fn profile(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Answer {
    user_profile(&state, staff, id, false).await
}

async fn user_profile(state: &AppState, staff: Staff, id: i64, editing: bool) -> Answer {
    staff.require(state, P::UsersView)?;
    let user = state.accounts.user(id).await?;
    let clients = state.accounts.clients_of_user(id).await?;
    let tz = humane::zone("", state.loaded.config.timezone.zone());
    let sessions: Vec<_> = if staff.can(P::SessionsManage) {
        state
            .sessions
            .for_user(id)
            .await?
            .iter()
            .map(|s| json!({"ip": s.data.ip, "device": humane::device(&s.data.user_agent), "last_seen": humane::local_time(s.last_seen_at, tz)}))
            .collect()
    } else {
        Vec::new()
    };
    let page = with_choices(Page::new("admin/user.html", &user.email))
        .with("user", &user)
        .with("has_password", user.password_hash.is_some())
        .with("clients", clients)
        .with("sessions", sessions)
        .with("can_manage", staff.can(P::UsersManage))
        .with("can_sessions", staff.can(P::SessionsManage))
        .with("can_impersonate", staff.can(P::UsersImpersonate))
        .with("editing", editing);
    staff.page(state, page)
}

fn user_page(id: i64) -> String {
    format!("admin/users/{id}")
}

pub async fn password_reset(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    StaffForm { staff, .. }: StaffForm,
) -> Answer {
    let actor = staff.require(&state, P::UsersManage)?;
    let user = state.accounts.user(id).await?;
    let result = state.auth.send_reset(&actor, &user).await;
    done(&state, staff, result.map(|()| format!("A password reset link was sent to {}.", user.email)), &user_page(id))
        .await
}

pub async fn disable_twofa(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    StaffForm { staff, .. }: StaffForm,
) -> Answer {
    let actor = staff.require(&state, P::UsersManage)?;
    let result = state.auth.turn_off_second_factor(&actor, Principal::User, id).await;
    done(&state, staff, result.map(|()| "Two-factor authentication is off for this user.".into()), &user_page(id)).await
}

pub async fn end_sessions(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    StaffForm { staff, .. }: StaffForm,
) -> Answer {
    let actor = staff.require(&state, P::SessionsManage)?;
    state.accounts.user(id).await?;
    let ended = state.sessions.end_for_user(id, None).await?;
    state
        .accounts
        .record_event(&actor, AuditAction::SessionRevokeAll, (Target::User, Some(id)), json!({"ended": ended}))
        .await?;
    done(&state, staff, Ok(format!("{ended} session(s) ended.")), &user_page(id)).await
}

pub async fn unlock(State(state): State<AppState>, Path(id): Path<i64>, StaffForm { staff, .. }: StaffForm) -> Answer {
    let actor = staff.require(&state, P::UsersManage)?;
    let user = state.accounts.user(id).await?;
    let removed = state.auth.unlock_user(&actor, &user).await?;
    let text = match removed.len() {
        0 => "The user was not locked out.".to_string(),
        n => format!("The user is unlocked ({n} lock(s) removed)."),
    };
    done(&state, staff, Ok(text), &user_page(id)).await
}

/// "Log in as client": the form opens in a new tab, which follows this answer to the one-time
/// link (valid 60 seconds, audited); the client area shows a banner while it lasts.
pub async fn impersonate(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    StaffForm { staff, .. }: StaffForm,
) -> Answer {
    staff.require(&state, P::UsersImpersonate)?;
    let url = state.auth.impersonation_link(&staff.admin, id, Some(&staff.ip)).await?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response())
}
