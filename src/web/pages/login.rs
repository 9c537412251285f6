//! Login: email + password, then the second factor when the user has one (TOTP or backup code,
//! or Duo's Universal Prompt), then the client area. Logout. Impersonation links.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::extract::CheckedForm;
use super::extract::{IMPERSONATION, LinkToken};
use super::{Form, check_csrf, form_session, redirect_with_flash, store_failed};
use crate::accounts::User;
use crate::auth::sessions::{PENDING_TRIES, Pending, SecondFactor, Session};
use crate::auth::{Checked, Login, SignedIn, Visitor};
use crate::secrets::tokens;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::metrics::LoginOutcome;
use crate::web::render::{Answer, Page, message, see_other, sentence};

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
fn login(state: &AppState) -> Page {
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
    let outcome = state.auth.login(email, form.get("password").unwrap_or(""), &ctx.ip_string()).await?;
    Ok(match outcome {
        Login::Refused => {
            state.metrics.login(LoginOutcome::refused);
            login_page(&state, Some(&session), email, StatusCode::UNAUTHORIZED, LOGIN_INCORRECT)
        }
        Login::ClientsClosed => {
            state.metrics.login(LoginOutcome::closed);
            let text = "The account you belong to is closed. Contact support if you need access to its records.";
            message(&state, Some(&session), StatusCode::FORBIDDEN, "Account closed", text)
        }
        Login::Accepted { user, clients, second_factor } => {
            state.metrics.login(LoginOutcome::ok);
            let Some(method) = second_factor else {
                return Ok(finish(&state, &session, &user, &ctx, SignedIn::default()).await);
            };
            match state.auth.await_second_factor(&session, &user, &clients, method, &visitor(&ctx)).await {
                Ok(raw) => {
                    let next = if method == SecondFactor::Enrol { "account/security" } else { "login/2fa" };
                    see_other(&state, next, Some(state.cookie.set(&raw)))
                }
                Err(e) => store_failed(&state, &e),
            }
        }
    })
}

fn visitor(ctx: &Ctx) -> Visitor {
    Visitor { ip: ctx.ip_string(), user_agent: ctx.user_agent.clone() }
}

/// Signs the user in (a new session) and opens the client area.
async fn finish(state: &AppState, old: &Session, user: &User, ctx: &Ctx, signed: SignedIn) -> Response {
    match state.auth.sign_in(old, user, &visitor(ctx), signed).await {
        Ok(raw) => see_other(state, "clientarea", Some(state.cookie.set(&raw))),
        Err(e) => store_failed(state, &e),
    }
}

fn pending_of(ctx: &Ctx) -> Option<(Session, Pending)> {
    let s = ctx.session.clone()?;
    let p = s.data.pending.clone().filter(|p| p.method != SecondFactor::Enrol)?;
    Some((s, p))
}

pub async fn second_factor_form(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let Some((mut session, pending)) = pending_of(&ctx) else { return Ok(see_other(&state, "login", None)) };
    if pending.method == SecondFactor::Totp {
        return Ok(Page::new("twofa.html", "Two-factor authentication").render(&state, Some(&session)));
    }
    // Duo: remember state and nonce server-side, then send the browser to the Universal Prompt.
    let Some(duo) = &state.duo else {
        let text = "Duo is not configured.";
        return Ok(message(&state, Some(&session), StatusCode::SERVICE_UNAVAILABLE, "Duo unavailable", text));
    };
    let Ok(user) = state.auth.accounts.user(pending.user_id).await else {
        return Ok(see_other(&state, "login", None));
    };
    if let Err(e) = duo.health_check().await {
        tracing::warn!(error = %e, "Duo health check failed");
        let text = format!("Two-factor authentication with Duo is not available: {e}");
        return Ok(message(&state, Some(&session), StatusCode::BAD_GATEWAY, "Duo unavailable", &text));
    }
    let (duo_state, nonce) = (tokens::random().raw, tokens::random().raw);
    let url = duo.authorize_url(&user.email, &duo_state, &nonce)?;
    session.data.pending = Some(Pending { duo_state: Some(duo_state), duo_nonce: Some(nonce), ..pending });
    if let Err(e) = state.auth.sessions.save(&mut session).await {
        return Ok(store_failed(&state, &e));
    }
    Ok((StatusCode::SEE_OTHER, [(axum::http::header::LOCATION, url)]).into_response())
}

pub async fn second_factor_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    CheckedForm { session, form }: CheckedForm,
) -> Answer {
    // Codes are taken only when the code is what is owed: a Duo sign-in is not finished with a
    // TOTP key or backup code the user kept from before (that would step around Duo's policy).
    let Some((_, pending)) = pending_of(&ctx).filter(|(_, p)| p.method == SecondFactor::Totp) else {
        return Ok(see_other(&state, "login", None));
    };
    let ip = ctx.ip_string();
    let Ok(user) = state.auth.accounts.user(pending.user_id).await else {
        return Ok(see_other(&state, "login", None));
    };
    let locked = || {
        let text = "Too many failed attempts. Please try again later.";
        Ok(second_factor_again(&state, &session, text))
    };
    let wrong = |error| wrong_code(&state, session.clone(), &pending, error);
    let backup = form.text("backup_code");
    if !backup.is_empty() {
        return match state.auth.use_backup_code(&user, backup, &ip).await? {
            Checked::Right(next) => {
                let flash = "You signed in with your backup code, which is now used up.".to_string();
                let signed = SignedIn { flash: Some(flash), backup_code: Some(next), ..Default::default() };
                Ok(finish(&state, &session, &user, &ctx, signed).await)
            }
            Checked::Wrong => Ok(wrong("That backup code is not valid.").await),
            Checked::Locked => locked(),
        };
    }
    match state.auth.verify_totp(&user, form.text("code"), &ip).await? {
        Checked::Right(()) => Ok(finish(&state, &session, &user, &ctx, SignedIn::default()).await),
        Checked::Wrong => {
            Ok(wrong("That code is not valid, or was already used. Wait for the next code and try again.").await)
        }
        Checked::Locked => locked(),
    }
}

/// The second-factor page again, saying what went wrong.
fn second_factor_again(state: &AppState, session: &Session, error: &str) -> Response {
    Page::new("twofa.html", "Two-factor authentication")
        .with("error", error)
        .status(StatusCode::UNAUTHORIZED)
        .render(state, Some(session))
}

/// A wrong code: counted in the half-signed-in session; after [`PENDING_TRIES`] the password is
/// asked again, so one password login buys only a few guesses.
async fn wrong_code(state: &AppState, mut session: Session, pending: &Pending, error: &str) -> Response {
    let tries = pending.wrong_codes + 1;
    if tries < PENDING_TRIES {
        session.data.pending = Some(Pending { wrong_codes: tries, ..pending.clone() });
        return match state.auth.sessions.save(&mut session).await {
            Ok(()) => second_factor_again(state, &session, error),
            Err(e) => store_failed(state, &e),
        };
    }
    session.data.pending = None;
    let text = "Too many wrong codes for this sign-in. Log in again to try once more.";
    redirect_with_flash(state, session, text, "login").await
}

#[derive(Deserialize)]
pub struct DuoCallback {
    state: Option<String>,
    duo_code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub async fn duo_callback(State(state): State<AppState>, ctx: Ctx, Query(q): Query<DuoCallback>) -> Response {
    let Some((session, pending)) = pending_of(&ctx).filter(|(_, p)| p.method == SecondFactor::Duo) else {
        return see_other(&state, "login", None);
    };
    let fail = |text: String| message(&state, Some(&session), StatusCode::UNAUTHORIZED, "Duo sign-in failed", &text);
    if let Some(error) = q.error {
        return fail(format!("Duo answered: {error}: {}", q.error_description.unwrap_or_default()));
    }
    let (Some(expected), Some(nonce)) = (&pending.duo_state, &pending.duo_nonce) else {
        return fail("The Duo sign-in was not started from this session.".into());
    };
    if !q.state.as_deref().is_some_and(|s| tokens::ct_eq(s, expected)) {
        return fail("The Duo answer does not belong to this sign-in (state mismatch).".into());
    }
    let (Some(duo), Some(code)) = (&state.duo, q.duo_code) else { return fail("No Duo code was returned.".into()) };
    let user = match state.auth.accounts.user(pending.user_id).await {
        Ok(u) => u,
        Err(_) => return see_other(&state, "login", None),
    };
    let ip = ctx.ip_string();
    let actor = crate::accounts::Actor::user(user.id, &user.email).with_ip(&ip);
    match duo.exchange(&code, &user.email, nonce).await {
        Ok(()) => {
            let _ = state
                .auth
                .accounts
                .record_event(&actor, "twofa.duo_ok", ("user", Some(user.id)), serde_json::json!({}))
                .await;
            finish(&state, &session, &user, &ctx, SignedIn::default()).await
        }
        Err(e) => {
            let details = serde_json::json!({"error": e.to_string()});
            let _ =
                state.auth.accounts.record_event(&actor, "twofa.duo_failed", ("user", Some(user.id)), details).await;
            fail(format!("Duo could not confirm the sign-in: {e}"))
        }
    }
}

pub async fn logout(State(state): State<AppState>, CheckedForm { session, .. }: CheckedForm) -> Response {
    if let Err(e) = state.auth.sessions.delete(&session.key).await {
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
    match state.auth.consume_impersonation(&token, &ip).await {
        Ok((user, admin_id)) => {
            finish(&state, &session, &user, &ctx, SignedIn { impersonated_by: Some(admin_id), ..Default::default() })
                .await
        }
        Err(e) => message(&state, Some(&session), StatusCode::NOT_FOUND, "Link not valid", &sentence(&e)),
    }
}
