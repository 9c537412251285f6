//! "This wasn't me": the link in every security notification. Its page asks first (a mail
//! scanner that follows links must not sign anyone out); the button ends every session of the
//! account, forgets its known devices and reset links, and mails a user a new reset link.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::extract::{CheckedForm, LinkToken, NOT_ME};
use super::form_session;
use crate::accounts::Principal;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::render::{Answer, Page, message};

const NOT_LIVE: &str = "This link was used already, or is more than 7 days old. If someone else is in your \
    account, ask for a password reset from the login page.";

pub async fn form(State(state): State<AppState>, ctx: Ctx, LinkToken(token): LinkToken<{ NOT_ME }>) -> Answer {
    let (session, cookie) = form_session(&state, &ctx);
    if !state.auth.not_me_is_live(&token).await? {
        return Ok(message(&state, Some(&session), StatusCode::NOT_FOUND, "Link not valid", NOT_LIVE));
    }
    Ok(Page::new("message.html", "This wasn't me")
        .with(
            "message",
            "Continue to sign everyone out of this account — every browser, including any you use — and forget \
             the browsers it knows. You then choose a new password.",
        )
        .with("confirm_action", format!("not-me/{token}"))
        .cookie(cookie)
        .render(&state, Some(&session)))
}

pub async fn submit(
    State(state): State<AppState>,
    ctx: Ctx,
    LinkToken(token): LinkToken<{ NOT_ME }>,
    CheckedForm { session, .. }: CheckedForm,
) -> Answer {
    let text = match state.auth.not_me(&token, &ctx.ip_string()).await? {
        None => return Ok(message(&state, Some(&session), StatusCode::NOT_FOUND, "Link not valid", NOT_LIVE)),
        Some(Principal::User) => {
            "Everyone is signed out of your account. We mailed you a link to choose a new password: use it before \
             you sign in again."
        }
        Some(Principal::Admin) => {
            "Everyone is signed out of your admin account. Ask the operator to set you a new password \
             (gatehouse admin set-password)."
        }
    };
    Ok(signed_out(&state, text))
}

/// The answer, with this browser's own session cookie removed too.
fn signed_out(state: &AppState, text: &str) -> Response {
    let mut response = message(state, None, StatusCode::OK, "Signed out everywhere", text);
    response.headers_mut().append(axum::http::header::SET_COOKIE, state.cookie.clear());
    response
}
