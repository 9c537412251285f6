//! Login: email + password, then the second factor when the user has one (TOTP or backup code,
//! or Duo's Universal Prompt), then the client area. Logout. Impersonation links.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::extract::CheckedForm;
use super::extract::{IMPERSONATION, LinkToken};
use super::{Form, check_csrf, form_session, redirect_with_flash, store_failed};
use crate::accounts::Principal;
use crate::auth::sessions::Session;
use crate::auth::{CodeProof, DuoAnswer, Prompt, SignedIn, Step};
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::metrics::LoginOutcome;
use crate::web::render::{Answer, Page, message, refusal_status, see_other, see_other_setting, sentence};

/// One answer for an unknown email, a wrong password, a user without a password and a lockout.
pub const LOGIN_INCORRECT: &str = "Login details incorrect. Please try again.";

#[derive(Deserialize)]
pub struct LoginQuery {
    expired: Option<String>,
}

pub async fn form(State(state): State<AppState>, ctx: Ctx, Query(q): Query<LoginQuery>) -> Response {
    if ctx.session.as_ref().is_some_and(|s| s.data.user_id.is_some()) {
        return see_other(&state, "clientarea", None);
    }
    let (session, cookie) = form_session(&state, &ctx);
    let error = q.expired.map(|_| "Your session has ended. Please log in again.");
    login(&state).with("error", error).cookie(cookie).render(&state, Some(&session))
}

/// The login page, which links to sign-up when registration is open.
pub(crate) fn login(state: &AppState) -> Page {
    let open = state.loaded.config.accounts.registration == crate::config::Registration::Open;
    Page::new("login.html", "Log in").with("registration_open", open)
}

fn login_page(state: &AppState, session: Option<&Session>, email: &str, status: StatusCode, error: &str) -> Response {
    login(state).with("email", email).with("error", error).status(status).render(state, session)
}

pub async fn submit(State(state): State<AppState>, ctx: Ctx, headers: HeaderMap, form: Form) -> Answer {
    let email = form.text("email");
    if !ctx.host_ok {
        // The browser holds no session for this host (the cookie belongs to system_url's host),
        // so the login cannot stick: answer as the seed describes — before the CSRF check, which
        // would refuse it for the missing cookie — and let the observation sample show the
        // doctor where requests arrive.
        tracing::info!(ip = %ctx.ip, "login attempt on a host other than system_url's");
        return Ok(login_page(&state, None, email, StatusCode::UNAUTHORIZED, LOGIN_INCORRECT));
    }
    let session = check_csrf(&state, &ctx, &headers, &form)?;
    let password = form.get("password").unwrap_or("");
    let step = match state.auth.sign_in_with_password(Principal::User, email, password, &session, &ctx.visitor()).await
    {
        // The address's share of the hashing threads is full: the form again, with why.
        Err(busy) if busy.code() == crate::error::Code::Busy => {
            state.metrics.login(LoginOutcome::busy);
            return Ok(login_page(&state, Some(&session), email, refusal_status(&busy), &sentence(&busy)));
        }
        step => step?,
    };
    state.metrics.login(match step {
        Step::Refused => LoginOutcome::refused,
        Step::ClientsClosed => LoginOutcome::closed,
        _ => LoginOutcome::ok,
    });
    Ok(match step {
        Step::ClientsClosed => {
            let text = "The account you belong to is closed. Contact support if you need access to its records.";
            message(&state, Some(&session), StatusCode::FORBIDDEN, "Account closed", text)
        }
        Step::Done { cookie, device } => signed_in(&state, &cookie, device),
        Step::Enrol { cookie } => see_other(&state, "account/security", Some(state.cookie.set(&cookie))),
        Step::SecondFactor { cookie, .. } => see_other(&state, "login/2fa", Some(state.cookie.set(&cookie))),
        _ => login_page(&state, Some(&session), email, StatusCode::UNAUTHORIZED, LOGIN_INCORRECT),
    })
}

/// Signed in: the session cookie, and the device token when the browser got a new one.
pub(crate) fn signed_in(state: &AppState, cookie: &str, device: Option<String>) -> Response {
    let device = device.map(|d| state.cookie.device_set(false, &d));
    see_other_setting(state, "clientarea", [state.cookie.set(cookie)].into_iter().chain(device))
}

pub async fn second_factor_form(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let Some(session) = ctx.session.as_ref() else { return Ok(see_other(&state, "login", None)) };
    if session.data.pending_for(Principal::User).is_some_and(|p| p.method.accepts_passkey()) {
        let (offered, only) = crate::web::passkeys::second_factor_offer(&state, session, Principal::User).await?;
        let page = Page::new("twofa.html", "Two-factor authentication")
            .with("passkey_offered", offered)
            .with("passkey_only", only);
        return Ok(page.render(&state, Some(session)));
    }
    Ok(match state.auth.duo_prompt(session, Principal::User, state.duo.as_ref()).await? {
        None => see_other(&state, "login", None),
        Some(Prompt::Redirect(url)) => (StatusCode::SEE_OTHER, [(axum::http::header::LOCATION, url)]).into_response(),
        Some(Prompt::NotConfigured) => {
            message(&state, Some(session), StatusCode::SERVICE_UNAVAILABLE, "Duo unavailable", "Duo is not configured.")
        }
        Some(Prompt::Down(e)) => {
            let text = format!("Two-factor authentication with Duo is not available: {e}");
            message(&state, Some(session), StatusCode::BAD_GATEWAY, "Duo unavailable", &text)
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
    let step = state.auth.sign_in_with_code(&mut session, Principal::User, proof, &ctx.visitor()).await?;
    Ok(match step {
        Step::Done { cookie, device } => signed_in(&state, &cookie, device),
        Step::WrongCode { backup } => second_factor_again(&state, &session, wrong_code(backup)).await?,
        Step::Locked => {
            second_factor_again(&state, &session, "Too many failed attempts. Please try again later.").await?
        }
        Step::Restart => {
            let text = "Too many wrong codes for this sign-in. Log in again to try once more.";
            redirect_with_flash(&state, session, text, "login").await
        }
        _ => see_other(&state, "login", None),
    })
}

/// What a wrong code is told.
pub fn wrong_code(backup: bool) -> &'static str {
    if backup {
        "That backup code is not valid."
    } else {
        "That code is not valid, or was already used. Wait for the next code and try again."
    }
}

/// The second-factor page again, saying what went wrong (still offering a passkey, when it did).
async fn second_factor_again(state: &AppState, session: &Session, error: &str) -> crate::Result<Response> {
    let (passkey, _) = crate::web::passkeys::second_factor_offer(state, session, Principal::User).await?;
    Ok(Page::new("twofa.html", "Two-factor authentication")
        .with("error", error)
        .with("passkey_offered", passkey)
        .status(StatusCode::UNAUTHORIZED)
        .render(state, Some(session)))
}

#[derive(Deserialize)]
pub struct DuoCallback {
    state: Option<String>,
    duo_code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl From<DuoCallback> for DuoAnswer {
    fn from(q: DuoCallback) -> Self {
        DuoAnswer { state: q.state, duo_code: q.duo_code, error: q.error, error_description: q.error_description }
    }
}

pub async fn duo_callback(State(state): State<AppState>, ctx: Ctx, Query(q): Query<DuoCallback>) -> Answer {
    let Some(session) = ctx.session.as_ref() else { return Ok(see_other(&state, "login", None)) };
    let step =
        state.auth.sign_in_with_duo(session, Principal::User, state.duo.as_ref(), q.into(), &ctx.visitor()).await?;
    Ok(match step {
        Step::Done { cookie, device } => signed_in(&state, &cookie, device),
        Step::Failed(text) => message(&state, Some(session), StatusCode::UNAUTHORIZED, "Duo sign-in failed", &text),
        _ => see_other(&state, "login", None),
    })
}

pub async fn logout(State(state): State<AppState>, CheckedForm { session, .. }: CheckedForm) -> Response {
    if let Err(e) = state.sessions.delete(&session.key).await {
        tracing::error!(error = %e, "could not delete the session at logout");
    }
    see_other(&state, "login", Some(state.cookie.clear()))
}

pub async fn impersonation_form(
    State(state): State<AppState>,
    ctx: Ctx,
    LinkToken(token): LinkToken<{ IMPERSONATION }>,
) -> Answer {
    let (session, cookie) = form_session(&state, &ctx);
    if !state.auth.impersonation_is_live(&token).await? {
        let text = "This login link is invalid, used or expired.";
        return Ok(message(&state, Some(&session), StatusCode::NOT_FOUND, "Link not valid", text));
    }
    Ok(Page::new("message.html", "Sign in as a client")
        .with("message", "An administrator link: continue to open the client area as this user.")
        .with("confirm_action", format!("login/as/{token}"))
        .cookie(cookie)
        .render(&state, Some(&session)))
}

pub async fn impersonation_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    LinkToken(token): LinkToken<{ IMPERSONATION }>,
    CheckedForm { session, .. }: CheckedForm,
) -> Response {
    let ip = ctx.ip_string();
    let (user, admin_id) = match state.auth.consume_impersonation(&token, &ip).await {
        Ok(found) => found,
        Err(e) => return message(&state, Some(&session), StatusCode::NOT_FOUND, "Link not valid", &sentence(&e)),
    };
    let signed = SignedIn { impersonated_by: Some(admin_id), ..Default::default() };
    match state.auth.complete_sign_in(&session, &user.credentials(), &ctx.visitor(), signed).await {
        Ok(Step::Done { cookie, device }) => signed_in(&state, &cookie, device),
        Ok(_) => see_other(&state, "login", None),
        Err(e) => store_failed(&state, &e),
    }
}
