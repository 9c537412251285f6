//! Admin sign-in: username and password, then the TOTP code or the backup code; under
//! `twofa.force_admins` an admin without a second factor enrols first. The admin area's own
//! cookie carries the session; logout ends it.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::{Staff, StaffForm};
use crate::accounts::Admin;
use crate::auth::sessions::{AdminPending, PENDING_TRIES, SecondFactor, Session, SessionData};
use crate::auth::{AdminLogin, Checked, Proof, REAUTH_WINDOW_SECS, Visitor};
use crate::error::Error;
use crate::secrets::totp;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::pages::extract::CheckedForm;
use crate::web::pages::{LOGIN_INCORRECT, form_session};
use crate::web::render::{Answer, Page, Stop, see_other, sentence};

#[derive(Deserialize)]
pub struct LoginQuery {
    expired: Option<String>,
}

fn visitor(ctx: &Ctx) -> Visitor {
    Visitor { ip: ctx.ip_string(), user_agent: ctx.user_agent.clone() }
}

fn login_page(error: Option<&str>) -> Page {
    Page::new("admin/login.html", "Admin sign-in").with("error", error)
}

pub async fn form(State(state): State<AppState>, ctx: Ctx, Query(q): Query<LoginQuery>) -> Response {
    if ctx.session.as_ref().is_some_and(|s| s.data.admin_id.is_some()) {
        return see_other(&state, "admin/", None);
    }
    let (session, cookie) = form_session(&state, &ctx);
    let error = q.expired.map(|_| "Your admin session has ended. Please sign in again.");
    login_page(error).cookie(cookie).render(&state, Some(&session))
}

pub async fn submit(State(state): State<AppState>, ctx: Ctx, CheckedForm { session, form }: CheckedForm) -> Answer {
    let username = form.text("username");
    let outcome = state.auth.admin_login(username, form.get("password").unwrap_or(""), &ctx.ip_string()).await?;
    let AdminLogin::Accepted { admin, second_factor } = outcome else {
        return Ok(login_page(Some(LOGIN_INCORRECT))
            .with("username", username)
            .status(StatusCode::UNAUTHORIZED)
            .render(&state, Some(&session)));
    };
    let raw = match second_factor {
        Some(method) => state.auth.admin_await_second_factor(&session, &admin, method, &visitor(&ctx)).await?,
        None => state.auth.admin_sign_in(&session, &admin, &visitor(&ctx), None, None).await?,
    };
    let next = match second_factor {
        Some(SecondFactor::Enrol) => "admin/security",
        Some(_) => "admin/login/2fa",
        None => "admin/",
    };
    Ok(see_other(&state, next, Some(state.cookie.admin_set(&raw))))
}

/// Where a half-signed-in admin goes next: the code, or enrolment.
pub fn continue_sign_in(state: &AppState, session: &Session) -> Response {
    match session.data.admin_pending.as_ref().map(|p| p.method) {
        Some(SecondFactor::Enrol) => see_other(state, "admin/security", None),
        Some(_) => see_other(state, "admin/login/2fa", None),
        None => see_other(state, "admin/login", None),
    }
}

/// The admin a half-signed-in session is for, when it owes `method`.
async fn pending(
    state: &AppState,
    ctx: &Ctx,
    method: SecondFactor,
) -> Result<Option<(Session, AdminPending, Admin)>, Error> {
    let Some(session) = ctx.session.clone() else { return Ok(None) };
    let Some(pending) = session.data.admin_pending.clone().filter(|p| p.method == method) else { return Ok(None) };
    let admin = state.auth.accounts.admin(pending.admin_id).await?;
    Ok(Some((session, pending, admin)))
}

fn twofa_page(error: Option<&str>) -> Page {
    Page::new("admin/twofa.html", "Two-factor authentication").with("error", error)
}

pub async fn second_factor_form(State(state): State<AppState>, ctx: Ctx) -> Answer {
    match pending(&state, &ctx, SecondFactor::Totp).await? {
        Some((session, ..)) => Ok(twofa_page(None).render(&state, Some(&session))),
        None => Ok(see_other(&state, "admin/login", None)),
    }
}

pub async fn second_factor_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    CheckedForm { form, .. }: CheckedForm,
) -> Answer {
    let Some((mut session, pending, admin)) = pending(&state, &ctx, SecondFactor::Totp).await? else {
        return Ok(see_other(&state, "admin/login", None));
    };
    let ip = ctx.ip_string();
    let again = |session: &Session, error: &str| {
        twofa_page(Some(error)).status(StatusCode::UNAUTHORIZED).render(&state, Some(session))
    };
    let backup = form.text("backup_code");
    let checked = if backup.is_empty() {
        state.auth.verify_admin_totp(&admin, form.text("code"), &ip).await?.map(|()| None)
    } else {
        state.auth.use_admin_backup_code(&admin, backup, &ip).await?.map(Some)
    };
    let (accepted, flash, next_code) = match checked {
        Checked::Locked => return Ok(again(&session, "Too many failed attempts. Please try again later.")),
        Checked::Wrong => (false, None, None),
        Checked::Right(None) => (true, None, None),
        Checked::Right(Some(next)) => {
            let flash = "You signed in with your backup code, which is now used up. Your new one is below.";
            (true, Some(flash.to_string()), Some(next))
        }
    };
    if accepted {
        let raw = state.auth.admin_sign_in(&session, &admin, &visitor(&ctx), flash, next_code).await?;
        return Ok(see_other(&state, "admin/", Some(state.cookie.admin_set(&raw))));
    }
    let tries = pending.wrong_codes + 1;
    if tries >= PENDING_TRIES {
        // One password buys a few guesses; then the password is asked again.
        state.auth.sessions.delete(&session.key).await?;
        let page = login_page(Some("Too many wrong codes for this sign-in. Sign in again to try once more."));
        let (visitor_session, cookie) = form_session(&state, &Ctx { session: None, ..ctx });
        return Ok(page.cookie(cookie).cookie(Some(state.cookie.admin_clear())).render(&state, Some(&visitor_session)));
    }
    session.data.admin_pending = Some(AdminPending { wrong_codes: tries, ..pending });
    state.auth.sessions.save(&mut session).await?;
    let error = if backup.is_empty() {
        "That code is not valid, or was already used. Wait for the next code and try again."
    } else {
        "That backup code is not valid."
    };
    Ok(again(&session, error))
}

/// The admin whose security page this is: one enrolling (forced), or one signed in.
async fn security_admin(state: &AppState, ctx: &Ctx) -> Result<Option<(Session, Admin, bool)>, Error> {
    if let Some((session, _, admin)) = pending(state, ctx, SecondFactor::Enrol).await? {
        return Ok(Some((session, admin, true)));
    }
    let Some(session) = ctx.session.clone() else { return Ok(None) };
    let Some(id) = session.data.admin_id else { return Ok(None) };
    Ok(Some((session, state.auth.accounts.admin(id).await?, false)))
}

fn security_page(admin: &Admin, session: &Session, enrolling: bool) -> Page {
    let setup = session.data.totp_setup.as_ref().and_then(|secret| {
        let uri = totp::uri(secret, &format!("admin:{}", admin.username)).ok()?;
        Some(json!({"secret": totp::grouped(secret), "uri": uri, "qr_svg": totp::qr_svg(&uri).ok()?}))
    });
    Page::new("admin/security.html", "Two-factor authentication")
        .with("enrolling", enrolling)
        .with("has_2fa", admin.totp_secret.is_some())
        .with("setup", setup)
}

pub async fn security(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let Some((session, admin, enrolling)) = security_admin(&state, &ctx).await? else {
        return Ok(see_other(&state, "admin/login", None));
    };
    if enrolling {
        return Ok(security_page(&admin, &session, true).render(&state, Some(&session)));
    }
    // A signed-in admin sees it with the menu.
    Staff::of(&state, &ctx).await?.page(&state, security_page(&admin, &session, false))
}

/// Where an admin's credential change outside the re-authentication window is sent.
const CONFIRM: &str = "admin/security/confirm";

/// What an admin is told when sent to confirm before changing how they sign in.
const CONFIRM_FOR_OWN: &str = "For your security, confirm it is you before changing how you sign in.";

/// Outside the re-authentication window, the admin confirms first (`auth::reauth`), told `why`.
pub(super) async fn require_recent(state: &AppState, session: &Session, why: &str) -> Result<(), Stop> {
    if state.auth.recently_authenticated(&session.data) {
        return Ok(());
    }
    let mut session = session.clone();
    session.data.flash = Some(why.into());
    state.auth.sessions.save(&mut session).await?;
    Err(see_other(state, CONFIRM, None).into())
}

fn confirm_page(admin: &Admin) -> Page {
    Page::new("confirm.html", "Confirm it is you")
        .with("layout", "admin/layout.html")
        .with("action", CONFIRM)
        .with("second_factor", admin.totp_secret.is_some())
        .with("window_minutes", REAUTH_WINDOW_SECS / 60)
}

pub async fn confirm_form(State(state): State<AppState>, staff: Staff) -> Answer {
    let page = confirm_page(&staff.admin);
    staff.page(&state, page)
}

pub async fn confirm(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Answer {
    // The password exactly as typed (`text` trims, and spaces are part of a password).
    let password = form.get("password").unwrap_or("");
    let proof = Proof { password, code: form.text("code"), backup_code: form.text("backup_code") };
    match state.auth.reauthenticate_admin(&staff.admin, proof, &staff.ip).await {
        Ok(replacement) => {
            // A new session id with the proof, as at sign-in.
            let mut data = staff.session.data.clone();
            data.authenticated_at = Some(state.auth.proof_time());
            data.backup_code = replacement.or(data.backup_code);
            data.flash =
                Some(format!("Confirmed. For {} minutes you can change how you sign in.", REAUTH_WINDOW_SECS / 60));
            let (raw, _) = state.auth.sessions.rotate(&staff.session, data).await?;
            Ok(see_other(&state, "admin/security", Some(state.cookie.admin_set(&raw))))
        }
        Err(e @ Error::Refused { .. }) => {
            let page = confirm_page(&staff.admin).with("error", sentence(&e)).status(StatusCode::UNPROCESSABLE_ENTITY);
            staff.page(&state, page)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn twofa_setup(State(state): State<AppState>, ctx: Ctx, _: CheckedForm) -> Answer {
    let Some((mut session, ..)) = security_admin(&state, &ctx).await? else {
        return Ok(see_other(&state, "admin/login", None));
    };
    require_recent(&state, &session, CONFIRM_FOR_OWN).await?;
    session.data.totp_setup = Some(totp::new_secret());
    state.auth.sessions.save(&mut session).await?;
    Ok(see_other(&state, "admin/security", None))
}

/// Confirms the new key with a code and signs the admin in on a new session that shows the
/// backup code once; that session is written before two-factor is turned on, so it is never
/// on with a backup code nobody saw.
pub async fn twofa_enable(State(state): State<AppState>, ctx: Ctx, CheckedForm { form, .. }: CheckedForm) -> Answer {
    let Some((session, admin, enrolling)) = security_admin(&state, &ctx).await? else {
        return Ok(see_other(&state, "admin/login", None));
    };
    require_recent(&state, &session, CONFIRM_FOR_OWN).await?;
    let Some(secret) = session.data.totp_setup.clone() else { return Ok(see_other(&state, "admin/security", None)) };
    let enrolment = match state.auth.prepare_totp(&secret, form.text("code")).await {
        Ok(enrolment) => enrolment,
        Err(e @ Error::Refused { .. }) => {
            return Ok(security_page(&admin, &session, enrolling)
                .with("error", sentence(&e))
                .status(StatusCode::UNPROCESSABLE_ENTITY)
                .render(&state, Some(&session)));
        }
        Err(e) => return Err(e.into()),
    };
    let data = SessionData {
        admin_id: Some(admin.id),
        ip: ctx.ip_string(),
        user_agent: ctx.user_agent.clone(),
        flash: Some("Two-factor authentication is on.".into()),
        backup_code: Some(enrolment.backup_code.clone()),
        authenticated_at: session.data.authenticated_at,
        ..Default::default()
    };
    let (raw, _) = state.auth.sessions.rotate(&session, data).await?;
    state.auth.enable_admin_totp(&admin, &enrolment, &ctx.ip_string()).await?;
    Ok(see_other(&state, "admin/", Some(state.cookie.admin_set(&raw))))
}

pub async fn logout(State(state): State<AppState>, CheckedForm { session, .. }: CheckedForm) -> Answer {
    if session.is_saved() {
        state.auth.sessions.delete(&session.key).await?;
    }
    Ok(see_other(&state, "admin/login", Some(state.cookie.admin_clear())))
}
