//! Sign-up in the client area (`accounts.registration: open`): a form that creates a client and
//! its owner. What happens is decided in `auth::signup`; this page only asks and answers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::extract::CheckedForm;
use super::{form_session, redirect_with_flash};
use crate::auth::{SignUp, SignedUp};
use crate::config::{ContactField, Registration};
use crate::error::Error;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::render::{Answer, Page, message, refusal_status, sentence};

fn closed(state: &AppState, ctx: &Ctx) -> Option<Response> {
    (state.loaded.config.accounts.registration == Registration::InviteOnly).then(|| {
        let text = "New accounts are opened by invitation only. If you were invited, open the link in your invitation.";
        message(state, ctx.session.as_ref(), StatusCode::FORBIDDEN, "Registration is by invitation", text)
    })
}

/// The form, with what was typed: name, email, password, then every contact detail — those
/// `accounts.signup_required` names marked required, the rest optional — and the countries.
fn form_page(state: &AppState, values: &SignUp) -> Page {
    let required = &state.loaded.config.accounts.signup_required;
    let details: Vec<_> = ContactField::ALL
        .iter()
        .map(|f| {
            json!({"key": f.key(), "label": f.label(), "required": required.contains(f), "value": values.detail(*f),
                   "autocomplete": autocomplete(*f)})
        })
        .collect();
    let countries: Vec<_> =
        crate::accounts::countries().into_iter().map(|(code, name)| json!({"code": code, "name": name})).collect();
    Page::new("register.html", "Open an account")
        .with("form", json!({"email": values.email, "first_name": values.first_name, "last_name": values.last_name}))
        .with("details", details)
        .with("countries", countries)
        .with("min_length", state.loaded.config.security.password_min_length)
}

/// What browsers fill a contact detail from (HTML's autocomplete tokens).
fn autocomplete(field: ContactField) -> &'static str {
    match field {
        ContactField::Company => "organization",
        ContactField::Address1 => "address-line1",
        ContactField::Address2 => "address-line2",
        ContactField::City => "address-level2",
        ContactField::State => "address-level1",
        ContactField::Postcode => "postal-code",
        ContactField::Country => "country",
        ContactField::Phone => "tel",
        ContactField::TaxId => "off",
    }
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
        password: form.get("password").unwrap_or("").into(),
        details: ContactField::ALL.iter().map(|f| (*f, form.text(f.key()).to_string())).collect(),
    };
    let again = |error: String, status| form_page(&state, &values).with("error", error).status(status);
    if values.password != form.get("password_confirm").unwrap_or("") {
        let differ = again("The two passwords differ.".into(), StatusCode::UNPROCESSABLE_ENTITY);
        return Ok(differ.render(&state, Some(&session)));
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
        Err(e @ Error::Refused { .. }) => Ok(again(sentence(&e), refusal_status(&e)).render(&state, Some(&session))),
        Err(e) => Err(e.into()),
    }
}
