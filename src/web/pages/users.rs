//! Users of the current client: the owner invites by email with permissions, changes
//! permissions and removes users; invitees accept as an existing user or by registering.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::extract::{CheckedForm, Member, OwnerForm};
use super::{form_session, redirect_with_flash, signed_in, store_failed};
use crate::accounts::{Acceptance, Actor, InviteStatus, NewUser, Permissions};
use crate::auth::sessions::Session;
use crate::error::Error;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::humane;
use crate::web::render::{Page, internal, message, see_other, sentence};

/// The 13 permissions as the page shows them: the key a form sends, the label a person reads.
fn all_permissions() -> Vec<serde_json::Value> {
    Permissions::all().iter().map(|p| serde_json::json!({"key": p.key(), "label": p.label()})).collect()
}

pub async fn list(
    State(state): State<AppState>,
    _ctx: Ctx,
    Member { user, session, membership: me }: Member,
) -> Response {
    let members = match state.auth.accounts.members_of_client(me.client_id).await {
        Ok(m) => m,
        Err(e) => return internal(&state, &e),
    };
    let tz = humane::zone(&user.timezone, state.loaded.config.timezone.zone());
    let invites: Vec<_> = match state.auth.accounts.list_invites(Some(me.client_id)).await {
        Ok(all) => all
            .into_iter()
            .filter(|i| i.status == InviteStatus::Pending)
            .map(|i| serde_json::json!({"id": i.id, "email": i.email, "valid_until": humane::local_time(i.expires_at, tz)}))
            .collect(),
        Err(e) => return internal(&state, &e),
    };
    Page::new("users.html", "Users")
        .with("user", &user)
        .with("client_name", &me.client_name)
        .with("is_owner", me.is_owner)
        .with("members", members)
        .with("invites", if me.is_owner { invites } else { Vec::new() })
        .with("all_permissions", all_permissions())
        .render(&state, Some(&session))
}

async fn refused(state: &AppState, session: Session, e: Error) -> Response {
    match e {
        Error::Refused { .. } => {
            message(state, Some(&session), StatusCode::UNPROCESSABLE_ENTITY, "Not done", &sentence(&e))
        }
        e => internal(state, &e),
    }
}

async fn flash(state: &AppState, session: Session, text: String) -> Response {
    redirect_with_flash(state, session, text, "account/users").await
}

pub async fn invite(
    State(state): State<AppState>,
    ctx: Ctx,
    OwnerForm { user, session, membership: me, form }: OwnerForm,
) -> Response {
    let permissions = match Permissions::parse_list(&form.all("permissions").join(",")) {
        Ok(p) => p,
        Err(e) => return refused(&state, session, e).await,
    };
    let actor = Actor::user(user.id, &user.email).with_ip(ctx.ip_string());
    let email = form.text("email");
    let invited = state.auth.invite(&actor, me.client_id, email, &permissions, Some(user.id), &user.email).await;
    match invited {
        Ok(invite) => flash(&state, session, format!("An invitation was sent to {}.", invite.email)).await,
        Err(e) => refused(&state, session, e).await,
    }
}

pub async fn cancel_invite(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    OwnerForm { user, session, membership: me, form: _ }: OwnerForm,
) -> Response {
    let id = member_id(&id);
    // Only an invite to this client: another client's invite ids are not the owner's to cancel.
    let ours = match state.auth.accounts.list_invites(Some(me.client_id)).await {
        Ok(all) => all.into_iter().any(|i| i.id == id),
        Err(e) => return internal(&state, &e),
    };
    if !ours {
        return message(&state, Some(&session), StatusCode::NOT_FOUND, "Not found", "There is no such invitation.");
    }
    let actor = Actor::user(user.id, &user.email).with_ip(ctx.ip_string());
    match state.auth.accounts.cancel_invite(&actor, id).await {
        Ok(invite) => flash(&state, session, format!("The invitation to {} is cancelled.", invite.email)).await,
        Err(e) => refused(&state, session, e).await,
    }
}

fn member_id(id: &str) -> i64 {
    id.parse().unwrap_or(0)
}

pub async fn permissions(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    OwnerForm { user, session, membership: me, form }: OwnerForm,
) -> Response {
    let actor = Actor::user(user.id, &user.email).with_ip(ctx.ip_string());
    let result = match Permissions::parse_list(&form.all("permissions").join(",")) {
        Ok(p) => state.auth.accounts.set_permissions(&actor, member_id(&id), me.client_id, &p).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => flash(&state, session, "Permissions saved.".into()).await,
        Err(e) => refused(&state, session, e).await,
    }
}

pub async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    OwnerForm { user, session, membership: me, form: _ }: OwnerForm,
) -> Response {
    let actor = Actor::user(user.id, &user.email).with_ip(ctx.ip_string());
    match state.auth.accounts.dissociate(&actor, member_id(&id), me.client_id).await {
        Ok(()) => flash(&state, session, "The user no longer has access to this account.".into()).await,
        Err(e) => refused(&state, session, e).await,
    }
}

pub async fn invite_form(State(state): State<AppState>, ctx: Ctx, Path(token): Path<String>) -> Response {
    let invite = match state.auth.accounts.invite_by_token(&token).await {
        Ok(i) => i,
        Err(e @ Error::Refused { .. }) => {
            return message(&state, ctx.session.as_ref(), StatusCode::NOT_FOUND, "Invite not valid", &sentence(&e));
        }
        Err(e) => return internal(&state, &e),
    };
    let client = match state.auth.accounts.client(invite.client_id).await {
        Ok(c) => c,
        Err(e) => return internal(&state, &e),
    };
    let signed = signed_in(&state, &ctx, false).await.ok().map(|(u, _)| u);
    let (session, cookie) = form_session(&state, &ctx);
    Page::new("invite.html", "Invitation")
        .with("client_name", client.display_name())
        .with("token", &token)
        .with("email", &invite.email)
        .with("user", signed)
        .with("min_length", state.loaded.config.security.password_min_length)
        .cookie(cookie)
        .render(&state, Some(&session))
}

pub async fn invite_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(token): Path<String>,
    CheckedForm { session, form }: CheckedForm,
) -> Response {
    let ip = ctx.ip_string();
    let signed = signed_in(&state, &ctx, false).await.ok();
    let (actor, acceptance) = match &signed {
        Some((user, _)) => (Actor::user(user.id, &user.email).with_ip(&ip), Acceptance::ExistingUser(user.id)),
        None => (
            Actor::system("invite").with_ip(&ip),
            Acceptance::NewUser(NewUser {
                email: form.text("email").into(),
                first_name: form.text("first_name").into(),
                last_name: form.text("last_name").into(),
                language: String::new(),
                password: Some(form.get("password").unwrap_or("").into()),
            }),
        ),
    };
    match state.auth.accounts.accept_invite(&actor, &token, acceptance).await {
        Ok(m) => match signed {
            Some((_, mut s)) => {
                s.data.client_id = Some(m.client_id);
                s.data.flash = Some(format!("You joined {}.", m.client_name));
                match state.auth.sessions.save(&mut s).await {
                    Ok(()) => see_other(&state, "clientarea", None),
                    Err(e) => store_failed(&state, &e),
                }
            }
            None => {
                let text = format!("Your login is ready and you joined {}. Log in to continue.", m.client_name);
                redirect_with_flash(&state, session, text, "login").await
            }
        },
        Err(e @ Error::Refused { .. }) => {
            message(&state, Some(&session), StatusCode::UNPROCESSABLE_ENTITY, "Not done", &sentence(&e))
        }
        Err(e) => internal(&state, &e),
    }
}
