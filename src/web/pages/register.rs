//! Sign-up in the client area (`accounts.registration: open`): a form that creates a client and
//! its owner. What happens is decided in `auth::signup`; this page only asks and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::extract::CheckedForm;
use super::{form_session, redirect_with_flash};
use crate::auth::{SignUp, SignedUp};
use crate::config::Registration;
use crate::error::Error;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::render::{Answer, Page, message, sentence};

fn closed(state: &AppState, ctx: &Ctx) -> Option<Response> {
    (state.loaded.config.accounts.registration == Registration::InviteOnly).then(|| {
        let text = "New accounts are opened by invitation only. If you were invited, open the link in your invitation.";
        message(state, ctx.session.as_ref(), StatusCode::FORBIDDEN, "Registration is by invitation", text)
    })
}

fn form_page(state: &AppState, values: &SignUp) -> Page {
    Page::new("register.html", "Open an account")
        .with(
            "form",
            serde_json::json!({
                "email": values.email, "first_name": values.first_name,
                "last_name": values.last_name, "company": values.company,
            }),
        )
        .with("min_length", state.loaded.config.security.password_min_length)
}

pub async fn form(State(state): State<AppState>, ctx: Ctx) -> Response {
    if let Some(r) = closed(&state, &ctx) {
        return r;
    }
    let (session, cookie) = form_session(&state, &ctx);
    form_page(&state, &SignUp::default()).cookie(cookie).render(&state, Some(&session))
}

pub async fn submit(State(state): State<AppState>, ctx: Ctx, CheckedForm { session, form }: CheckedForm) -> Answer {
    if let Some(r) = closed(&state, &ctx) {
        return Ok(r);
    }
    let values = SignUp {
        email: form.text("email").into(),
        first_name: form.text("first_name").into(),
        last_name: form.text("last_name").into(),
        company: form.text("company").into(),
        password: form.get("password").unwrap_or("").into(),
    };
    let again =
        |error: String| form_page(&state, &values).with("error", error).status(StatusCode::UNPROCESSABLE_ENTITY);
    if values.password != form.get("password_confirm").unwrap_or("") {
        return Ok(again("The two passwords differ.".into()).render(&state, Some(&session)));
    }
    let email = values.email.clone();
    match state.auth.sign_up(values.clone(), &ctx.ip_string()).await {
        // The same answer whether or not the email already had a login (see auth::signup).
        Ok(SignedUp::Created(_) | SignedUp::EmailTaken) => {
            let text = format!(
                "Thank you for registering. We have sent an email to {email}. \
                 Log in with that address and the password you chose."
            );
            Ok(redirect_with_flash(&state, session, text, "login").await)
        }
        Err(e @ Error::Refused { .. }) => Ok(again(sentence(&e)).render(&state, Some(&session))),
        Err(e) => Err(e.into()),
    }
}
