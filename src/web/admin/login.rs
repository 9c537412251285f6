//! Admin sign-in: username and password, then the second factor — the TOTP code or the backup
//! code, or Duo's Universal Prompt; under `twofa.force_admins` an admin without one enrols
//! first. The steps are `auth::sign_in`'s, the same as a user's; this face maps them to the
//! admin area's pages. The admin area's own cookie carries the session; logout ends it.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Staff, StaffForm};
use crate::accounts::{Admin, Credentials, Principal};
use crate::auth::sessions::{SecondFactor, Session};
use crate::auth::{CodeProof, Prompt, Proof, REAUTH_WINDOW_SECS, Step};
use crate::error::Error;
use crate::mail::humane;
use crate::secrets::totp;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::pages::account::device_rows;
use crate::web::pages::extract::CheckedForm;
use crate::web::pages::login::{DuoCallback, wrong_code};
use crate::web::pages::{LOGIN_INCORRECT, form_session, redirect_with_flash};
use crate::web::render::{Answer, Page, Stop, refusal_status, see_other, see_other_setting, sentence};

#[derive(Deserialize)]
pub struct LoginQuery {
    expired: Option<String>,
}

/// Signed in: the admin session cookie, and the device token when the browser got a new one.
pub(crate) fn signed_in(state: &AppState, cookie: &str, device: Option<String>) -> Response {
    let device = device.map(|d| state.cookie.device_set(true, &d));
    see_other_setting(state, "admin/", [state.cookie.admin_set(cookie)].into_iter().chain(device))
}

pub(crate) fn login_page(error: Option<&str>) -> Page {
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
    let password = form.get("password").unwrap_or("");
    let step =
        match state.auth.sign_in_with_password(Principal::Admin, username, password, &session, &ctx.visitor()).await {
            // The address's share of the hashing threads is full: the form again, with why.
            Err(busy) if busy.code() == crate::error::Code::Busy => {
                let page = login_page(Some(&sentence(&busy))).with("username", username).status(refusal_status(&busy));
                return Ok(page.render(&state, Some(&session)));
            }
            step => step?,
        };
    Ok(match step {
        Step::Done { cookie, device } => signed_in(&state, &cookie, device),
        Step::Enrol { cookie } => see_other(&state, "admin/security", Some(state.cookie.admin_set(&cookie))),
        Step::SecondFactor { cookie, .. } => {
            see_other(&state, "admin/login/2fa", Some(state.cookie.admin_set(&cookie)))
        }
        _ => login_page(Some(LOGIN_INCORRECT))
            .with("username", username)
            .status(StatusCode::UNAUTHORIZED)
            .render(&state, Some(&session)),
    })
}

/// Where a half-signed-in admin goes next: the second factor, or enrolment.
pub fn continue_sign_in(state: &AppState, session: &Session) -> Response {
    match session.data.pending_for(Principal::Admin).map(|p| p.method) {
        Some(SecondFactor::Enrol) => see_other(state, "admin/security", None),
        Some(_) => see_other(state, "admin/login/2fa", None),
        None => see_other(state, "admin/login", None),
    }
}

pub(crate) fn twofa_page(error: Option<&str>) -> Page {
    Page::new("admin/twofa.html", "Two-factor authentication").with("error", error)
}

fn message(state: &AppState, status: StatusCode, title: &str, text: &str) -> Response {
    Page::new("admin/message.html", title).with("message", text).status(status).render(state, None)
}

pub async fn second_factor_form(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let Some(session) = ctx.session.as_ref() else { return Ok(see_other(&state, "admin/login", None)) };
    if session.data.pending_for(Principal::Admin).is_some_and(|p| p.method.accepts_passkey()) {
        let (offered, only) = crate::web::passkeys::second_factor_offer(&state, session, Principal::Admin).await?;
        let page = twofa_page(None).with("passkey_offered", offered).with("passkey_only", only);
        return Ok(page.render(&state, Some(session)));
    }
    Ok(match state.auth.duo_prompt(session, Principal::Admin, state.duo.as_ref()).await? {
        None => see_other(&state, "admin/login", None),
        Some(Prompt::Redirect(url)) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
        Some(Prompt::NotConfigured) => {
            message(&state, StatusCode::SERVICE_UNAVAILABLE, "Duo unavailable", "Duo is not configured.")
        }
        Some(Prompt::Down(e)) => {
            let text = format!("Two-factor authentication with Duo is not available: {e}");
            message(&state, StatusCode::BAD_GATEWAY, "Duo unavailable", &text)
        }
    })
}

pub async fn second_factor_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    CheckedForm { mut session, form }: CheckedForm,
) -> Answer {
    let backup = form.text("backup_code");
    let proof = if backup.is_empty() { CodeProof::Totp(form.text("code")) } else { CodeProof::Backup(backup) };
    let step = state.auth.sign_in_with_code(&mut session, Principal::Admin, proof, &ctx.visitor()).await?;
    let error = match step {
        Step::Done { cookie, device } => return Ok(signed_in(&state, &cookie, device)),
        Step::WrongCode { backup } => wrong_code(backup),
        Step::Locked => "Too many failed attempts. Please try again later.",
        Step::Restart => {
            // One password buys a few guesses; then the password is asked again.
            let text = "Too many wrong codes for this sign-in. Sign in again to try once more.";
            return Ok(redirect_with_flash(&state, session, text, "admin/login").await);
        }
        _ => return Ok(see_other(&state, "admin/login", None)),
    };
    // The page again, still offering a passkey when it did.
    let (passkey, _) = crate::web::passkeys::second_factor_offer(&state, &session, Principal::Admin).await?;
    let page = twofa_page(Some(error)).with("passkey_offered", passkey);
    Ok(page.status(StatusCode::UNAUTHORIZED).render(&state, Some(&session)))
}

pub async fn duo_callback(State(state): State<AppState>, ctx: Ctx, Query(q): Query<DuoCallback>) -> Answer {
    let Some(session) = ctx.session.as_ref() else { return Ok(see_other(&state, "admin/login", None)) };
    let step =
        state.auth.sign_in_with_duo(session, Principal::Admin, state.duo.as_ref(), q.into(), &ctx.visitor()).await?;
    Ok(match step {
        Step::Done { cookie, device } => signed_in(&state, &cookie, device),
        Step::Failed(text) => message(&state, StatusCode::UNAUTHORIZED, "Duo sign-in failed", &text),
        _ => see_other(&state, "admin/login", None),
    })
}

/// The admin whose security page this is: one enrolling (forced), or one signed in.
async fn security_admin(state: &AppState, ctx: &Ctx) -> Result<Option<(Session, Credentials, bool)>, Error> {
    let Some(session) = ctx.session.clone() else { return Ok(None) };
    if let Some(creds) = state.auth.enrolling(&session, Principal::Admin).await? {
        return Ok(Some((session, creds, true)));
    }
    let Some(id) = session.data.admin_id else { return Ok(None) };
    let admin = state.accounts.admin(id).await?;
    Ok((!admin.is_disabled()).then(|| (session, admin.credentials(), false)))
}

fn security_page(state: &AppState, creds: &Credentials, session: &Session, enrolling: bool) -> Page {
    let setup = session.data.totp_setup.as_ref().and_then(|secret| {
        let uri = totp::uri(secret, &format!("admin:{}", creds.login)).ok()?;
        Some(json!({"secret": totp::grouped(secret), "uri": uri, "qr_svg": totp::qr_svg(&uri).ok()?}))
    });
    Page::new("admin/security.html", "Two-factor authentication")
        .with("enrolling", enrolling)
        .with("twofa", creds.twofa_method)
        .with("setup", setup)
        .with("duo", state.duo.is_some())
}

pub async fn security(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let Some((session, creds, enrolling)) = security_admin(&state, &ctx).await? else {
        return Ok(see_other(&state, "admin/login", None));
    };
    if enrolling {
        return Ok(security_page(&state, &creds, &session, true).render(&state, Some(&session)));
    }
    // A signed-in admin sees it with the menu, their known devices and their notifications.
    let staff = Staff::of(&state, &ctx).await?;
    let (devices, this) = state.auth.known_devices(Principal::Admin, creds.id, ctx.device.as_deref()).await?;
    let devices = device_rows(&devices, this, humane::zone("", state.loaded.config.timezone.zone()));
    let notices = state.accounts.new_device_notices((Principal::Admin, creds.id)).await?;
    let tz = humane::zone("", state.loaded.config.timezone.zone());
    let passkeys = crate::web::passkeys::rows(&state, Principal::Admin, creds.id, tz).await?;
    let page = security_page(&state, &creds, &session, false)
        .with("devices", devices)
        .with("new_device_notices", notices)
        .with("passkey_list", passkeys);
    staff.page(&state, page)
}

/// Forgets one of the admin's known devices (after a recent proof, as every credential change).
pub async fn forget_device(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    StaffForm { staff, .. }: StaffForm,
) -> Answer {
    require_recent(&state, &staff.session, CONFIRM_FOR_OWN).await?;
    let actor = staff.admin.actor(&staff.ip);
    let text = match state.auth.forget_device(&actor, Principal::Admin, staff.admin.id, id).await? {
        true => "That device is forgotten.",
        false => "There is no such device.",
    };
    Ok(redirect_with_flash(&state, staff.session, text, "admin/security").await)
}

/// Whether the admin is mailed about sign-ins from new browsers.
pub async fn notifications(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Answer {
    require_recent(&state, &staff.session, CONFIRM_FOR_OWN).await?;
    let on = form.text("new_device") == "on";
    state
        .accounts
        .set_new_device_notices(&staff.admin.actor(&staff.ip), (Principal::Admin, staff.admin.id), on)
        .await?;
    Ok(redirect_with_flash(&state, staff.session, "Your notifications are saved.", "admin/security").await)
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
    state.sessions.save(&mut session).await?;
    Err(see_other(state, CONFIRM, None).into())
}

fn confirm_page(admin: &Admin) -> Page {
    Page::new("confirm.html", "Confirm it is you")
        .with("layout", "admin/layout.html")
        .with("action", CONFIRM)
        .with("second_factor", admin.credentials().proves_with_code())
        .with("passkey_action", "admin/login/passkey")
        .with("window_minutes", REAUTH_WINDOW_SECS / 60)
}

pub async fn confirm_form(State(state): State<AppState>, staff: Staff) -> Answer {
    let page = confirm_page(&staff.admin);
    staff.page(&state, page)
}

pub async fn confirm(State(state): State<AppState>, ctx: Ctx, StaffForm { staff, form }: StaffForm) -> Answer {
    // The password exactly as typed (`text` trims, and spaces are part of a password).
    let password = form.get("password").unwrap_or("");
    let proof = Proof { password, code: form.text("code"), backup_code: form.text("backup_code") };
    match state.auth.reauthenticate(&staff.session, &staff.admin.credentials(), proof, &ctx.visitor()).await {
        Ok(raw) => Ok(see_other(&state, "admin/security", Some(state.cookie.admin_set(&raw)))),
        Err(e @ Error::Refused { .. }) => {
            let page = confirm_page(&staff.admin).with("error", sentence(&e)).status(StatusCode::UNPROCESSABLE_ENTITY);
            staff.page(&state, page)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn twofa_setup(State(state): State<AppState>, ctx: Ctx, CheckedForm { form, .. }: CheckedForm) -> Answer {
    let Some((mut session, creds, _)) = security_admin(&state, &ctx).await? else {
        return Ok(see_other(&state, "admin/login", None));
    };
    require_recent(&state, &session, CONFIRM_FOR_OWN).await?;
    if form.text("method") == "duo" && state.duo.is_some() {
        let text = "Duo is now your second factor.";
        if state.auth.choose_duo(&mut session, &creds, &ctx.ip_string()).await? {
            let text = format!("{text} Sign in again to use it.");
            return Ok(redirect_with_flash(&state, session, text, "admin/login").await);
        }
        return Ok(redirect_with_flash(&state, session, text, "admin/security").await);
    }
    session.data.totp_setup = Some(totp::new_secret());
    state.sessions.save(&mut session).await?;
    Ok(see_other(&state, "admin/security", None))
}

/// Confirms the new key with a code; the admin continues signed in on a new session that shows
/// the backup code once (`Auth::enable_totp`).
pub async fn twofa_enable(State(state): State<AppState>, ctx: Ctx, CheckedForm { form, .. }: CheckedForm) -> Answer {
    let Some((session, creds, enrolling)) = security_admin(&state, &ctx).await? else {
        return Ok(see_other(&state, "admin/login", None));
    };
    require_recent(&state, &session, CONFIRM_FOR_OWN).await?;
    match state.auth.enable_totp(&session, &creds, form.text("code"), &ctx.visitor()).await {
        Ok(Some(cookie)) => Ok(see_other(&state, "admin/", Some(state.cookie.admin_set(&cookie)))),
        Ok(None) => Ok(see_other(&state, "admin/security", None)),
        Err(e @ Error::Refused { .. }) => Ok(security_page(&state, &creds, &session, enrolling)
            .with("error", sentence(&e))
            .status(StatusCode::UNPROCESSABLE_ENTITY)
            .render(&state, Some(&session))),
        Err(e) => Err(e.into()),
    }
}

pub async fn logout(State(state): State<AppState>, CheckedForm { session, .. }: CheckedForm) -> Answer {
    if session.is_saved() {
        state.sessions.delete(&session.key).await?;
    }
    Ok(see_other(&state, "admin/login", Some(state.cookie.admin_clear())))
}
