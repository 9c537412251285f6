//! Users in the admin area: list and search, the profile with the clients they belong to and
//! their sessions, and the support actions — send a password reset, turn two-factor off, end
//! sessions, unlock, and log in as the client (a one-time link opened in a new tab).

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::clients::{ListQuery, PAGE_SIZE};
use super::{Staff, StaffForm, done};
use crate::accounts::AdminPermission as P;
use crate::web::AppState;
use crate::web::humane;
use crate::web::render::{Answer, Page};

pub async fn list(State(state): State<AppState>, staff: Staff, Query(q): Query<ListQuery>) -> Answer {
    staff.require(&state, P::UsersView)?;
    let listing = state.auth.accounts.users_page(&q.q, q.offset(), PAGE_SIZE).await?;
    let rows: Vec<_> = listing
        .items
        .iter()
        .map(|u| json!({"id": u.id, "name": format!("{} {}", u.first_name, u.last_name), "email": u.email, "twofa": u.twofa_method}))
        .collect();
    staff.page(
        &state,
        Page::new("admin/users.html", "Users").with("users", rows).with("paging", q.paging(listing.total)),
    )
}

pub async fn profile(State(state): State<AppState>, staff: Staff, Path(id): Path<i64>) -> Answer {
    staff.require(&state, P::UsersView)?;
    let user = state.auth.accounts.user(id).await?;
    let clients = state.auth.accounts.clients_of_user(id).await?;
    let tz = humane::zone("", state.loaded.config.timezone.zone());
    let sessions: Vec<_> = if staff.can(P::SessionsManage) {
        state
            .auth
            .sessions
            .for_user(id)
            .await?
            .iter()
            .map(|s| json!({"ip": s.data.ip, "device": humane::device(&s.data.user_agent), "last_seen": humane::local_time(s.last_seen_at, tz)}))
            .collect()
    } else {
        Vec::new()
    };
    let page = Page::new("admin/user.html", &user.email)
        .with("user", &user)
        .with("has_password", user.password_hash.is_some())
        .with("clients", clients)
        .with("sessions", sessions)
        .with("can_manage", staff.can(P::UsersManage))
        .with("can_sessions", staff.can(P::SessionsManage))
        .with("can_impersonate", staff.can(P::UsersImpersonate));
    staff.page(&state, page)
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
    let user = state.auth.accounts.user(id).await?;
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
    let result = state.auth.accounts.clear_twofa(&actor, id).await;
    done(&state, staff, result.map(|()| "Two-factor authentication is off for this user.".into()), &user_page(id)).await
}

pub async fn end_sessions(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    StaffForm { staff, .. }: StaffForm,
) -> Answer {
    let actor = staff.require(&state, P::SessionsManage)?;
    state.auth.accounts.user(id).await?;
    let ended = state.auth.sessions.end_for_user(id, None).await?;
    state.auth.accounts.record_event(&actor, "session.revoke_all", ("user", Some(id)), json!({"ended": ended})).await?;
    done(&state, staff, Ok(format!("{ended} session(s) ended.")), &user_page(id)).await
}

pub async fn unlock(State(state): State<AppState>, Path(id): Path<i64>, StaffForm { staff, .. }: StaffForm) -> Answer {
    let actor = staff.require(&state, P::UsersManage)?;
    let user = state.auth.accounts.user(id).await?;
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
