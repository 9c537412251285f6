//! Password reset by emailed link. The request page answers the same for every email; the link
//! (built from system_url) asks the security question first where the user set one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use axum::extract::Query;
use serde::Deserialize;

use super::extract::CheckedForm;
use super::extract::{LinkToken, RESET};
use super::{form_session, redirect_with_flash};
use crate::error::Code;
use crate::error::Error;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::render::{Answer, Page, refusal_status, see_other, sentence};

fn ttl_minutes(state: &AppState) -> i64 {
    state.loaded.config.security.reset_token_ttl.as_secs() / 60
}

#[derive(Deserialize)]
pub struct ForgotQuery {
    sent: Option<String>,
}

/// The request form, or (`?sent=1`, where the form's 303 leads) what happens next: the same
/// words whether or not the email belongs to anyone.
pub async fn forgot_form(State(state): State<AppState>, ctx: Ctx, Query(q): Query<ForgotQuery>) -> Response {
    let (session, cookie) = form_session(&state, &ctx);
    Page::new("forgot.html", "Reset your password")
        .with("sent", q.sent.is_some())
        .with("ttl_minutes", ttl_minutes(&state))
        .cookie(cookie)
        .render(&state, Some(&session))
}

pub async fn forgot_submit(State(state): State<AppState>, ctx: Ctx, CheckedForm { form, .. }: CheckedForm) -> Answer {
    state.auth.request_reset(form.text("email"), &ctx.ip_string()).await?;
    Ok(see_other(&state, "password/forgot?sent=1", None))
}

fn invalid_link(state: &AppState, ctx: &Ctx) -> Response {
    let text = "This password reset link is invalid or has expired. Links work once and only for a limited time.";
    Page::new("message.html", "Invalid reset link")
        .with("message", text)
        .with("link", format!("{}password/forgot", state.cookie.path))
        .with("link_text", "Ask for a new link")
        .status(StatusCode::NOT_FOUND)
        .render(state, ctx.session.as_ref())
}

async fn reset_page(state: &AppState, ctx: &Ctx, token: &str, error: Option<&str>, status: StatusCode) -> Answer {
    let Some(user) = state.auth.reset_user(token).await? else { return Ok(invalid_link(state, ctx)) };
    let question = match user.security_question_id.filter(|_| state.auth.security_questions) {
        Some(id) => state.accounts.security_question(id).await.ok().map(|q| q.question),
        None => None,
    };
    let (session, cookie) = form_session(state, ctx);
    Ok(Page::new("reset.html", "Choose a new password")
        .with("token", token)
        .with("question", question)
        .with("min_length", state.loaded.config.security.password_min_length)
        .with("error", error)
        .status(status)
        .cookie(cookie)
        .render(state, Some(&session)))
}

pub async fn reset_form(State(state): State<AppState>, ctx: Ctx, LinkToken(token): LinkToken<{ RESET }>) -> Answer {
    reset_page(&state, &ctx, &token, None, StatusCode::OK).await
}

pub async fn reset_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    LinkToken(token): LinkToken<{ RESET }>,
    CheckedForm { session, form }: CheckedForm,
) -> Answer {
    let password = form.get("password").unwrap_or("");
    if password != form.get("password_confirm").unwrap_or("") {
        return reset_page(&state, &ctx, &token, Some("The two passwords differ."), StatusCode::UNPROCESSABLE_ENTITY)
            .await;
    }
    let answer = form.get("security_answer");
    match state.auth.complete_reset(&token, answer, password, &ctx.ip_string()).await {
        Ok(_) => {
            let text = "Your password has been changed and every session of your account has ended. \
                        Log in with the new password.";
            Ok(redirect_with_flash(&state, session, text, "login").await)
        }
        Err(Error::Refused { code: Code::InvalidToken, .. }) => Ok(invalid_link(&state, &ctx)),
        Err(e @ Error::Refused { .. }) => {
            reset_page(&state, &ctx, &token, Some(&sentence(&e)), refusal_status(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}
