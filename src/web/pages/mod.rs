//! The client area: server-rendered pages and their forms. Every POST is CSRF-checked; every
//! successful POST answers 303 with the next page.

pub(crate) mod account;
mod clientarea;
pub mod extract;
pub(crate) mod login;
mod not_me;
mod password;
pub(crate) mod profile;
mod register;
mod users;

use crate::net::encounters::Kind;
use axum::Router;
use axum::extract::State;
use axum::extract::{FromRequest, RawForm, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::AppState;
use super::context::Ctx;
use super::csrf;
use super::form_token::{self, FormKey};
use super::render::{Page, message, see_other};
use crate::accounts::User;
use crate::auth::sessions::{Ended, Session};
use crate::secrets::tokens;

pub use login::LOGIN_INCORRECT;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|state: axum::extract::State<AppState>| async move { see_other(&state, "clientarea", None) }))
        .route("/login", get(login::form).post(login::submit))
        .route("/login/2fa", get(login::second_factor_form).post(login::second_factor_submit))
        .route("/login/2fa/duo/callback", get(login::duo_callback))
        .route("/login/as/{token}", get(login::impersonation_form).post(login::impersonation_submit))
        .route("/not-me/{token}", get(not_me::form).post(not_me::submit))
        .route("/logout", post(login::logout))
        .route("/clientarea", get(clientarea::show))
        .route("/clientarea/switch", post(clientarea::switch))
        .route("/register", get(register::form).post(register::submit))
        .route("/password/forgot", get(password::forgot_form).post(password::forgot_submit))
        .route("/password/reset/{token}", get(password::reset_form).post(password::reset_submit))
        .route("/invite/{token}", get(users::invite_form).post(users::invite_submit))
        .route("/account/security", get(account::security))
        .route("/account/security/confirm", get(account::confirm_form).post(account::confirm))
        .route("/account/security/2fa/setup", post(account::twofa_setup))
        .route("/account/security/2fa/enable", post(account::twofa_enable))
        .route("/account/security/2fa/disable", post(account::twofa_disable))
        .route("/account/security/question", post(account::question))
        .route("/account/security/password", post(account::password))
        .route("/account/profile", get(profile::profile).post(profile::save_profile))
        .route("/account/client", get(profile::client).post(profile::save_client))
        .route("/account/sessions", get(account::sessions))
        .route("/account/sessions/{id}/revoke", post(account::revoke_session))
        .route("/account/devices/{id}/forget", post(account::forget_device))
        .route("/account/security/notifications", post(account::notifications))
        .route("/account/users", get(users::list))
        .route("/account/users/invite", post(users::invite))
        .route("/account/users/{id}/permissions", post(users::permissions))
        .route("/account/users/{id}/remove", post(users::remove))
        .route("/account/users/invites/{id}/cancel", post(users::cancel_invite))
}

/// 404 in the site's layout (JSON under `/api/`, whose own fallback answers there).
pub async fn not_found(State(state): State<AppState>, ctx: Ctx, uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        let body = crate::web::api::error_body(crate::error::Code::NotFound, format!("no API route {}", uri.path()));
        return (StatusCode::NOT_FOUND, body).into_response();
    }
    let text = "There is no page at this address. It may have moved, or the link may be mistyped.";
    dead_end(&state, &ctx, StatusCode::NOT_FOUND, "Page not found", text)
}

/// A page for a request that leads nowhere, with the way back to the client area.
fn dead_end(state: &AppState, ctx: &Ctx, status: StatusCode, title: &str, text: &str) -> Response {
    Page::new("message.html", title)
        .with("message", text)
        .with("link", format!("{}clientarea", state.cookie.path))
        .with("link_text", "Go to the client area")
        .status(status)
        .render(state, ctx.session.as_ref())
}

/// 405 in the site's layout, e.g. `GET /logout`: logging out is a button, so a link cannot do it.
pub async fn method_not_allowed(
    State(state): State<AppState>,
    ctx: Ctx,
    method: Method,
    uri: axum::http::Uri,
) -> Response {
    let text = if uri.path().ends_with("/logout") {
        "Logging out is done with the Log out button, so that another site cannot log you out with a link.".to_string()
    } else {
        format!("This address does not accept a {method} request. Go back and use the page's buttons and forms.")
    };
    dead_end(&state, &ctx, StatusCode::METHOD_NOT_ALLOWED, "Not allowed", &text)
}

/// A submitted form, with repeated fields (checkbox lists) kept.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("").trim()
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// A client's contact details as a client-details form sends them (the client area's and
    /// the admin area's); a field the form does not carry stays as it is.
    pub fn contact_details(&self) -> crate::accounts::ClientUpdate {
        let field = |name: &str| self.get(name).map(|v| v.trim().to_string());
        crate::accounts::ClientUpdate {
            first_name: field("first_name"),
            last_name: field("last_name"),
            company: field("company"),
            email: field("email"),
            address1: field("address1"),
            address2: field("address2"),
            city: field("city"),
            state: field("state"),
            postcode: field("postcode"),
            country: field("country"),
            phone: field("phone"),
            tax_id: field("tax_id"),
            ..Default::default()
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawForm(bytes) = RawForm::from_request(req, state).await.map_err(|rejection| {
            // A body that stopped arriving (`server.body_timeout`) is a timeout, not a bad request.
            if is_body_timeout(&rejection) {
                return (StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time\n").into_response();
            }
            rejection.into_response()
        })?;
        let form: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
        // No field of any form holds a NUL byte; PostgreSQL could not store one anyway.
        if form.iter().any(|(k, v)| k.contains('\0') || v.contains('\0')) {
            return Err((StatusCode::UNPROCESSABLE_ENTITY, "a form field holds a NUL byte\n").into_response());
        }
        Ok(Form(form))
    }
}

fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The checks every state-changing form passes first. A refusal is a 403 page saying why.
pub fn check_csrf(state: &AppState, ctx: &Ctx, headers: &HeaderMap, form: &Form) -> Result<Session, Response> {
    match csrf::check(ctx, headers, &state.cookie, &state.form_key, form.get("csrf_token")) {
        Ok(()) => {
            state.encounters.count(Kind::FormAccepted, "");
            Ok(ctx.session.clone().unwrap_or_else(|| Session::unsaved(form.get("csrf_token").unwrap_or(""))))
        }
        Err(refusal) => {
            tracing::info!(ip = %ctx.ip, ?refusal, "form refused by the CSRF check");
            state.encounters.count(Kind::FormRefused, refusal.cause(ctx));
            if let (csrf::Refusal::NoSession, Some((host, path))) = (refusal, &ctx.off_host) {
                // Not a token problem: the browser keeps this site's session on system_url's
                // host only. Say where the page lives, and link to the same page there.
                let text = format!(
                    "This page was opened at {host}, but this site lives at {}: your browser keeps your session \
                     only there. Open the same page there and try again.",
                    state.cookie.origin
                );
                return Err(Page::new("message.html", "Wrong address")
                    .with("message", text)
                    .with("link", format!("{}{path}", state.cookie.origin))
                    .with("link_text", format!("Open it at {}", state.cookie.origin))
                    .status(StatusCode::FORBIDDEN)
                    .render(state, None));
            }
            Err(message(state, ctx.session.as_ref(), StatusCode::FORBIDDEN, "Request refused", refusal.message()))
        }
    }
}

/// The session whose CSRF token a form carries: the request's, or for a visitor without one an
/// unsaved session holding the stateless token of their form-nonce cookie (set here when new).
/// Nothing is stored: a session row comes only with something to keep (see `web::form_token`).
pub fn form_session(state: &AppState, ctx: &Ctx) -> (Session, Option<HeaderValue>) {
    if let Some(s) = &ctx.session {
        return (s.clone(), None);
    }
    if !ctx.host_ok {
        // No cookie for this host would come back: a token no form can pass.
        return (Session::unsaved(&tokens::random().raw), None);
    }
    match &ctx.form_nonce {
        Some(nonce) => (Session::unsaved(&state.form_key.token(nonce)), None),
        None => {
            let nonce = FormKey::nonce();
            let cookie = state.cookie.form_nonce(form_token::COOKIE_NAME, &nonce);
            (Session::unsaved(&state.form_key.token(&nonce)), Some(cookie))
        }
    }
}

/// The signed-in user and session, or the response to send instead: a redirect to the login
/// page, or to two-factor enrolment when it is required and not done yet. The middleware read
/// the user with the session, so this asks the database nothing.
pub fn signed_in(state: &AppState, ctx: &Ctx, enrolment_page: bool) -> Result<(User, Session), Response> {
    let to_login = || {
        let target = if ctx.ended.is_some_and(|e| e != Ended::Unknown) { "login?expired=1" } else { "login" };
        see_other(state, target, None)
    };
    let Some(session) = ctx.session.clone() else { return Err(to_login()) };
    // A session whose user is gone has no user beside it.
    let Some(user) = ctx.user.as_ref().filter(|_| session.data.user_id.is_some()) else { return Err(to_login()) };
    let enrolling = session.data.enrolling(crate::accounts::Principal::User);
    if enrolling && !enrolment_page {
        return Err(see_other(state, "account/security", None));
    }
    Ok((user.user.clone(), session))
}

/// Saves a one-time message in the session and answers 303 with the page that shows it, so a
/// reload of that page never sends the form again. A visitor without a session gets one now:
/// the message is something to keep.
/// Credential changes need a recent proof of identity (`auth::reauth`): outside that window
/// the person is sent to `confirm` (the re-authentication form) first, and the change is not made.
pub async fn require_recent(state: &AppState, session: &Session, confirm: &str) -> Result<(), Response> {
    if state.auth.recently_authenticated(&session.data) {
        return Ok(());
    }
    let text = "For your security, confirm it is you before changing how you sign in.";
    Err(redirect_with_flash(state, session.clone(), text, confirm).await)
}

pub async fn redirect_with_flash(
    state: &AppState,
    mut session: Session,
    text: impl Into<String>,
    next: &str,
) -> Response {
    session.data.flash = Some(text.into());
    if !session.is_saved() {
        return match state.sessions.create(session.data).await {
            Ok((raw, _)) => see_other(state, next, Some(state.cookie.set(&raw))),
            Err(e) => store_failed(state, &e),
        };
    }
    match state.sessions.save(&mut session).await {
        Ok(()) => see_other(state, next, None),
        Err(e) => store_failed(state, &e),
    }
}

/// A 503 page for when the session store refuses a write at a point where continuing would
/// lose the user's work (login, two-factor).
pub fn store_failed(state: &AppState, e: &crate::Error) -> Response {
    tracing::error!(error = %e, "session store write failed");
    message(
        state,
        None,
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Your session could not be saved. Please try again in a moment; if it persists, tell the site's administrator.",
    )
}
