//! Users of the current client: the owner invites by email with permissions, changes
//! permissions and removes users; invitees accept as an existing user or by registering.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::extract::{CheckedForm, Member, OwnerForm};
use super::extract::{INVITE, LinkToken};
use super::{form_session, redirect_with_flash, signed_in, store_failed};
use crate::accounts::{Acceptance, Actor, InviteStatus, NewUser, Permissions};
use crate::auth::Joined;
use crate::auth::sessions::Session;
use crate::error::Error;
use crate::mail::humane;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::render::{Answer, Page, message, see_other, sentence};

/// The 13 permissions as the page shows them: the key a form sends, the label a person reads.
fn all_permissions() -> Vec<serde_json::Value> {
    Permissions::all().iter().map(|p| serde_json::json!({"key": p.key(), "label": p.label()})).collect()
}

pub async fn list(
    State(state): State<AppState>,
    _ctx: Ctx,
    Member { user, session, membership: me }: Member,
) -> Answer {
    let members = state.accounts.members_of_client(me.client_id).await?;
    let tz = humane::zone(&user.timezone, state.loaded.config.timezone.zone());
    let invites: Vec<_> = state
        .accounts
        .list_invites(Some(me.client_id))
        .await?
        .into_iter()
        .filter(|i| i.status == InviteStatus::Pending)
        .map(|i| serde_json::json!({"id": i.id, "email": i.email, "valid_until": humane::local_time(i.expires_at, tz)}))
        .collect();
    Ok(Page::new("users.html", "Users")
        .with("user", &user)
        .with("client_name", &me.client_name)
        .with("is_owner", me.is_owner)
        .with("members", members)
        .with("invites", if me.is_owner { invites } else { Vec::new() })
        .with("all_permissions", all_permissions())
        .render(&state, Some(&session)))
}

/// After an owner's form: the users page with what was done, or the rule's refusal on a page.
async fn done(state: &AppState, session: Session, result: crate::Result<String>) -> Answer {
    match result {
        Ok(text) => Ok(redirect_with_flash(state, session, text, "account/users").await),
        Err(e @ Error::Refused { .. }) => {
            Ok(message(state, Some(&session), StatusCode::UNPROCESSABLE_ENTITY, "Not done", &sentence(&e)))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn invite(
    State(state): State<AppState>,
    ctx: Ctx,
    OwnerForm { user, session, membership: me, form }: OwnerForm,
) -> Answer {
    let actor = Actor::user(user.id, &user.email).with_ip(ctx.ip_string());
    let result = async {
        let permissions = Permissions::parse_list(&form.all("permissions").join(","))?;
        let email = form.text("email");
        let invite = state.auth.invite(&actor, me.client_id, email, &permissions, Some(user.id), &user.email).await?;
        Ok(format!("An invitation was sent to {}.", invite.email))
    };
    done(&state, session, result.await).await
}

pub async fn cancel_invite(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    OwnerForm { user, session, membership: me, form: _ }: OwnerForm,
) -> Answer {
    let id = member_id(&id);
    // Only an invite to this client: another client's invite ids are not the owner's to cancel.
    let ours = state.accounts.list_invites(Some(me.client_id)).await?.into_iter().any(|i| i.id == id);
    if !ours {
        let text = "There is no such invitation.";
        return Ok(message(&state, Some(&session), StatusCode::NOT_FOUND, "Not found", text));
    }
    let actor = Actor::user(user.id, &user.email).with_ip(ctx.ip_string());
    let result = state.accounts.cancel_invite(&actor, id).await;
    done(&state, session, result.map(|invite| format!("The invitation to {} is cancelled.", invite.email))).await
}

fn member_id(id: &str) -> i64 {
    id.parse().unwrap_or(0)
}

pub async fn permissions(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    OwnerForm { user, session, membership: me, form }: OwnerForm,
) -> Answer {
    let actor = Actor::user(user.id, &user.email).with_ip(ctx.ip_string());
    let result = async {
        let permissions = Permissions::parse_list(&form.all("permissions").join(","))?;
        state.accounts.set_permissions(&actor, member_id(&id), me.client_id, &permissions).await?;
        Ok("Permissions saved.".to_string())
    };
    done(&state, session, result.await).await
}

pub async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    OwnerForm { user, session, membership: me, form: _ }: OwnerForm,
) -> Answer {
    let actor = Actor::user(user.id, &user.email).with_ip(ctx.ip_string());
    let result = state.accounts.dissociate(&actor, member_id(&id), me.client_id).await;
    done(&state, session, result.map(|()| "The user no longer has access to this account.".to_string())).await
}

pub async fn invite_form(State(state): State<AppState>, ctx: Ctx, LinkToken(token): LinkToken<{ INVITE }>) -> Answer {
    let invite = match state.accounts.invite_by_token(&token).await {
        Ok(i) => i,
        Err(e @ Error::Refused { .. }) => {
            let text = sentence(&e);
            return Ok(message(&state, ctx.session.as_ref(), StatusCode::NOT_FOUND, "Invite not valid", &text));
        }
        Err(e) => return Err(e.into()),
    };
    let client = state.accounts.client(invite.client_id).await?;
    let signed = signed_in(&state, &ctx, false).ok().map(|(u, _)| u);
    let (session, cookie) = form_session(&state, &ctx);
    Ok(Page::new("invite.html", "Invitation")
        .with("client_name", client.display_name())
        .with("token", &token)
        .with("email", &invite.email)
        .with("user", signed)
        .with("min_length", state.loaded.config.security.password_min_length)
        .cookie(cookie)
        .render(&state, Some(&session)))
}

pub async fn invite_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    LinkToken(token): LinkToken<{ INVITE }>,
    CheckedForm { session, form }: CheckedForm,
) -> Answer {
    let ip = ctx.ip_string();
    let signed = signed_in(&state, &ctx, false).ok();
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
    Ok(match state.auth.accept_invite(&actor, &token, acceptance).await {
        Ok(Joined::Member(m)) if signed.is_some() => {
            let Some((_, mut s)) = signed else { unreachable!("matched on is_some") };
            s.data.client_id = Some(m.client_id);
            s.data.flash = Some(format!("You joined {}.", m.client_name));
            match state.sessions.save(&mut s).await {
                Ok(()) => see_other(&state, "clientarea", None),
                Err(e) => store_failed(&state, &e),
            }
        }
        Ok(joined) => {
            let text = format!("Your login is ready and you joined {}. Log in to continue.", joined.client_name());
            redirect_with_flash(&state, session, text, "login").await
        }
        Err(e @ Error::Refused { .. }) => {
            message(&state, Some(&session), StatusCode::UNPROCESSABLE_ENTITY, "Not done", &sentence(&e))
        }
        Err(e) => return Err(e.into()),
    })
}
