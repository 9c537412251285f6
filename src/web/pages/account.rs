//! The user's own security settings: two-factor enrolment and removal, password change,
//! security question, and the list of their sessions with revocation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::extract::{SignedIn, UserForm};
use super::{redirect_with_flash, require_recent, store_failed};
use crate::accounts::AuditAction;
use crate::accounts::Target;
use crate::accounts::{Actor, Principal, User};
use crate::auth::devices::Device;
use crate::auth::sessions::Session;
use crate::auth::{Proof, REAUTH_WINDOW_SECS};
use crate::error::Error;
use crate::mail::humane;
use crate::secrets::totp;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::render::{Answer, Page, message, refusal_status, see_other, sentence};

/// Where a credential change outside the re-authentication window is sent.
pub const CONFIRM: &str = "account/security/confirm";

async fn security_page(state: &AppState, user: &User, session: &Session) -> Page {
    let setup = session.data.totp_setup.as_ref().and_then(|secret| {
        let uri = totp::uri(secret, &user.email).ok()?;
        let qr = totp::qr_svg(&uri).ok()?;
        Some(json!({"secret": totp::grouped(secret), "uri": uri, "qr_svg": qr}))
    });
    let questions = state.accounts.list_security_questions().await.unwrap_or_default();
    Page::new("security.html", "Security")
        .with("user", user)
        .with("twofa", user.twofa_method)
        .with("setup", setup)
        .with("questions", questions)
        .with("has_question", user.security_question_id.is_some())
        .with("duo", state.duo.is_some())
        .with("enrol_required", session.data.enrolling(Principal::User))
        .with("recent", state.auth.recently_authenticated(&session.data))
        .with("questions_on", state.auth.security_questions)
        .with("new_device_notices", state.accounts.new_device_notices((Principal::User, user.id)).await.unwrap_or(true))
        .with("passkey_list", {
            let tz = humane::zone(&user.timezone, state.loaded.config.timezone.zone());
            crate::web::passkeys::rows(state, Principal::User, user.id, tz).await.unwrap_or_default()
        })
}

/// Which security notifications the user gets: new-device sign-ins are theirs to turn off
/// (credential changes are always told). A stolen session must not silence them: recent proof first.
pub async fn notifications(
    State(state): State<AppState>,
    ctx: Ctx,
    UserForm { user, session, form, .. }: UserForm,
) -> Answer {
    require_recent(&state, &session, CONFIRM).await?;
    let on = form.text("new_device") == "on";
    let actor = Actor::user(user.id, &user.email).with_ip(ctx.ip_string());
    state.accounts.set_new_device_notices(&actor, (Principal::User, user.id), on).await?;
    let text = if on {
        "You will be told of sign-ins from new browsers."
    } else {
        "Sign-ins from new browsers are no longer mailed to you."
    };
    Ok(redirect_with_flash(&state, session, text, "account/security").await)
}

/// The security page again, saying why the rules refused what was asked: 422, or 429 when the
/// address's share of the hashing threads was full (`busy`).
async fn refused(state: &AppState, user: &User, session: &Session, e: &Error) -> Response {
    refused_saying(state, user, session, refusal_status(e), sentence(e)).await
}

async fn refused_saying(
    state: &AppState,
    user: &User,
    session: &Session,
    status: StatusCode,
    text: String,
) -> Response {
    security_page(state, user, session).await.with("error", text).status(status).render(state, Some(session))
}

pub async fn security(State(state): State<AppState>, SignedIn { user, session, .. }: SignedIn<true>) -> Response {
    security_page(&state, &user, &session).await.render(&state, Some(&session))
}

/// The re-authentication form: the password, and the second factor where one is enrolled.
fn confirm_page(user: &User) -> Page {
    let second_factor = user.credentials().proves_with_code();
    Page::new("confirm.html", "Confirm it is you")
        .with("layout", "layout.html")
        .with("action", CONFIRM)
        .with("passkey_action", "login/passkey")
        .with("second_factor", second_factor)
        .with("window_minutes", REAUTH_WINDOW_SECS / 60)
}

pub async fn confirm_form(State(state): State<AppState>, SignedIn { user, session, .. }: SignedIn<true>) -> Response {
    confirm_page(&user).render(&state, Some(&session))
}

pub async fn confirm(
    State(state): State<AppState>,
    ctx: Ctx,
    UserForm { user, session, form, .. }: UserForm<true>,
) -> Answer {
    if session.data.impersonated_by.is_some() {
        let text = "A session opened by an administrator cannot change this user's sign-in settings.";
        return Ok(message(&state, Some(&session), StatusCode::FORBIDDEN, "Not allowed", text));
    }
    // The password exactly as typed (`text` trims, and spaces are part of a password).
    let password = form.get("password").unwrap_or("");
    let proof = Proof { password, code: form.text("code"), backup_code: form.text("backup_code") };
    match state.auth.reauthenticate(&session, &user.credentials(), proof, &ctx.visitor()).await {
        Ok(raw) => Ok(see_other(&state, "account/security", Some(state.cookie.set(&raw)))),
        Err(e @ Error::Refused { .. }) => Ok(confirm_page(&user)
            .with("error", sentence(&e))
            .status(StatusCode::UNPROCESSABLE_ENTITY)
            .render(&state, Some(&session))),
        Err(e) => Err(e.into()),
    }
}

pub async fn twofa_setup(
    State(state): State<AppState>,
    ctx: Ctx,
    UserForm { user, mut session, form, .. }: UserForm<true>,
) -> Answer {
    require_recent(&state, &session, CONFIRM).await?;
    if form.text("method") == "duo" && state.duo.is_some() {
        let text = "Duo is now your second factor.";
        if state.auth.choose_duo(&mut session, &user.credentials(), &ctx.ip_string()).await? {
            let text = format!("{text} Log in again to use it.");
            return Ok(redirect_with_flash(&state, session, text, "login").await);
        }
        return Ok(redirect_with_flash(&state, session, text, "account/security").await);
    }
    session.data.totp_setup = Some(totp::new_secret());
    Ok(match state.sessions.save(&mut session).await {
        Ok(()) => see_other(&state, "account/security", None),
        Err(e) => store_failed(&state, &e),
    })
}

pub async fn twofa_enable(
    State(state): State<AppState>,
    ctx: Ctx,
    UserForm { user, session, form, .. }: UserForm<true>,
) -> Answer {
    require_recent(&state, &session, CONFIRM).await?;
    let from = ctx.visitor();
    Ok(match state.auth.enable_totp(&session, &user.credentials(), form.text("code"), &from).await {
        Ok(Some(cookie)) => see_other(&state, "account/security", Some(state.cookie.set(&cookie))),
        Ok(None) => see_other(&state, "account/security", None),
        Err(e @ Error::Refused { .. }) => refused(&state, &user, &session, &e).await,
        Err(e) => return Err(e.into()),
    })
}

pub async fn twofa_disable(
    State(state): State<AppState>,
    ctx: Ctx,
    UserForm { user, session, form, .. }: UserForm<true>,
) -> Answer {
    require_recent(&state, &session, CONFIRM).await?;
    if state.loaded.config.twofa.force_clients {
        let text = "Two-factor authentication is required on this site and cannot be turned off.";
        return Ok(message(&state, Some(&session), StatusCode::FORBIDDEN, "Not allowed", text));
    }
    Ok(
        match state
            .auth
            .disable_twofa_with_password(&user.credentials(), form.get("password").unwrap_or(""), &ctx.visitor())
            .await
        {
            Ok(()) => {
                redirect_with_flash(&state, session, "Two-factor authentication is off.", "account/security").await
            }
            Err(e @ Error::Refused { .. }) => refused(&state, &user, &session, &e).await,
            Err(e) => return Err(e.into()),
        },
    )
}

pub async fn question(
    State(state): State<AppState>,
    ctx: Ctx,
    UserForm { user, session, form, .. }: UserForm<true>,
) -> Answer {
    require_recent(&state, &session, CONFIRM).await?;
    if !state.auth.security_questions {
        let text = "Security questions are turned off on this site: a reset link alone resets a password.";
        return Ok(message(&state, Some(&session), StatusCode::NOT_FOUND, "Not available", text));
    }
    let actor = Actor::user(user.id, &user.email).with_ip(ctx.ip_string());
    let question_id: i64 = form.text("question_id").parse().unwrap_or(0);
    Ok(match state.accounts.set_security_answer(&actor, user.id, question_id, form.text("answer")).await {
        Ok(()) => redirect_with_flash(&state, session, "Your security question is saved.", "account/security").await,
        Err(e @ Error::Refused { .. }) => refused(&state, &user, &session, &e).await,
        Err(e) => return Err(e.into()),
    })
}

pub async fn password(
    State(state): State<AppState>,
    ctx: Ctx,
    UserForm { user, session, form, .. }: UserForm<true>,
) -> Answer {
    require_recent(&state, &session, CONFIRM).await?;
    let new = form.get("password").unwrap_or("");
    if new != form.get("password_confirm").unwrap_or("") {
        let differ = "The two new passwords differ.".into();
        return Ok(refused_saying(&state, &user, &session, StatusCode::UNPROCESSABLE_ENTITY, differ).await);
    }
    let current = form.get("current_password").unwrap_or("");
    Ok(match state.auth.change_password(&user, current, new, &session.key, &ctx.visitor()).await {
        Ok(ended) => {
            let mut data = session.data.clone();
            data.flash = Some(format!("Your password is changed. {ended} other session(s) were signed out."));
            match state.sessions.rotate(&session, data).await {
                Ok((raw, _)) => see_other(&state, "account/security", Some(state.cookie.set(&raw))),
                Err(e) => store_failed(&state, &e),
            }
        }
        Err(e @ Error::Refused { .. }) => refused(&state, &user, &session, &e).await,
        Err(e) => return Err(e.into()),
    })
}

pub async fn sessions(State(state): State<AppState>, ctx: Ctx, SignedIn { user, session, .. }: SignedIn) -> Answer {
    let list = state.sessions.for_user(user.id).await?;
    let tz = humane::zone(&user.timezone, state.loaded.config.timezone.zone());
    let rows: Vec<_> = list
        .iter()
        .map(|s| {
            json!({
                "id": s.handle(),
                "ip": s.data.ip,
                "device": humane::device(&s.data.user_agent),
                "started": humane::local_time(s.created_at, tz),
                "last_seen": humane::local_time(s.last_seen_at, tz),
                "current": s.key == session.key,
            })
        })
        .collect();
    let (devices, this) = state.auth.known_devices(Principal::User, user.id, ctx.device.as_deref()).await?;
    let devices = device_rows(&devices, this, tz);
    Ok(Page::new("sessions.html", "Sessions")
        .with("user", &user)
        .with("sessions", rows)
        .with("devices", devices)
        .render(&state, Some(&session)))
}

/// Known devices as the sessions pages list them (users' and admins'), `this` marked.
pub(crate) fn device_rows(devices: &[Device], this: Option<i64>, tz: chrono_tz::Tz) -> Vec<serde_json::Value> {
    devices
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "ip": d.ip,
                "device": humane::device(&d.user_agent),
                "first": humane::local_time(d.created_at, tz),
                "last": humane::local_time(d.last_used_at, tz),
                "current": Some(d.id) == this,
            })
        })
        .collect()
}

/// Forgets a known device: its next sign-in counts against the account's budget again. A
/// stolen session must not strip the owner's devices of their protection: recent proof first.
pub async fn forget_device(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    UserForm { user, session, .. }: UserForm,
) -> Answer {
    require_recent(&state, &session, CONFIRM).await?;
    let actor = Actor::user(user.id, &user.email).with_ip(ctx.ip_string());
    Ok(match state.auth.forget_device(&actor, Principal::User, user.id, id).await? {
        true => redirect_with_flash(&state, session, "That device is forgotten.", "account/sessions").await,
        false => message(&state, Some(&session), StatusCode::NOT_FOUND, "Not found", "There is no such device."),
    })
}

pub async fn revoke_session(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    UserForm { user, session, form: _, .. }: UserForm<true>,
) -> Answer {
    Ok(match state.sessions.revoke(user.id, &id).await {
        Ok(true) => {
            let actor = Actor::user(user.id, &user.email).with_ip(ctx.ip_string());
            let _ = state
                .accounts
                .record_event(&actor, AuditAction::SessionRevoke, (Target::User, Some(user.id)), json!({"session": id}))
                .await;
            redirect_with_flash(&state, session, "The session has ended.", "account/sessions").await
        }
        Ok(false) => message(&state, Some(&session), StatusCode::NOT_FOUND, "Not found", "There is no such session."),
        Err(e) => return Err(e.into()),
    })
}
