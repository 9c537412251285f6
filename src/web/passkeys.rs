//! Passkeys in the browser, for both areas (`Area::Users` under `/`, `Area::Admins` under
//! `/admin/`): the script asks for a ceremony (JSON, behind the CSRF token like every form), the
//! browser answers, and the answer is posted as an ordinary form. Adding and removing a passkey
//! changes how someone signs in, so it needs a recent proof, as every credential change.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::AppState;
use super::context::Ctx;
use super::pages::extract::CheckedForm;
use super::pages::redirect_with_flash;
use super::render::{Answer, Page, message, see_other, sentence};
use crate::accounts::{Credentials, Principal};
use crate::auth::sessions::Session;
use crate::auth::{PasskeyAnswer, Step};
use crate::error::{Error, Result};

/// The script, compiled in: one file, no build step.
const SCRIPT: &str = include_str!("assets/passkeys.js");

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/assets/passkeys.js", get(script))
        .route("/login/passkey/options", post(challenge::<false>))
        .route("/login/passkey", post(answer::<false>))
        .route("/account/passkeys/options", post(registration::<false>))
        .route("/account/passkeys", post(add::<false>))
        .route("/account/passkeys/{id}/remove", post(remove::<false>))
        .route("/admin/login/passkey/options", post(challenge::<true>))
        .route("/admin/login/passkey", post(answer::<true>))
        .route("/admin/security/passkeys/options", post(registration::<true>))
        .route("/admin/security/passkeys", post(add::<true>))
        .route("/admin/security/passkeys/{id}/remove", post(remove::<true>))
}

async fn script() -> Response {
    let cache = HeaderValue::from_static("public, max-age=3600");
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (header::CACHE_CONTROL, cache),
        ],
        SCRIPT,
    )
        .into_response()
}

/// An account's passkeys as its security page lists them, times in `tz`.
pub async fn rows(state: &AppState, who: Principal, id: i64, tz: chrono_tz::Tz) -> Result<Vec<serde_json::Value>> {
    let never = "never".to_string();
    Ok(state
        .auth
        .passkeys_of(who, id)
        .await?
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.name,
                "added": crate::mail::humane::local_time(p.created_at, tz),
                "last_used": p.last_used_at.map_or_else(|| never.clone(), |t| crate::mail::humane::local_time(t, tz)),
            })
        })
        .collect())
}

/// What the second-factor page offers a sign-in of kind `who`: a passkey (its account has one
/// and a code or a passkey is owed), and whether a passkey is all it may give.
pub async fn second_factor_offer(state: &AppState, session: &Session, who: Principal) -> Result<(bool, bool)> {
    let Some(pending) = session.data.pending_for(who) else { return Ok((false, false)) };
    if !state.auth.passkeys_available() || !pending.method.accepts_passkey() {
        return Ok((false, false));
    }
    let has = state.auth.has_passkeys(who, pending.id).await?;
    Ok((has, pending.method == crate::auth::sessions::SecondFactor::Passkey))
}

/// Where each area's pages are, and which cookie carries its session.
#[derive(Clone, Copy)]
struct Area {
    who: Principal,
}

impl Area {
    const fn of<const ADMIN: bool>() -> Self {
        Area { who: if ADMIN { Principal::Admin } else { Principal::User } }
    }
    fn admin(self) -> bool {
        self.who == Principal::Admin
    }
    fn login(self) -> &'static str {
        if self.admin() { "admin/login" } else { "login" }
    }
    fn security(self) -> &'static str {
        if self.admin() { "admin/security" } else { "account/security" }
    }
    fn confirm(self) -> &'static str {
        if self.admin() { "admin/security/confirm" } else { "account/security/confirm" }
    }
    fn session_cookie(self, state: &AppState, value: &str) -> HeaderValue {
        if self.admin() { state.cookie.admin_set(value) } else { state.cookie.set(value) }
    }
}

/// A JSON answer for the script: the value, or `{"error": …}` with the refusal's status.
fn json_answer(result: Result<serde_json::Value>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => {
            let status = match &e {
                Error::Refused { code, .. } => {
                    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            // A refusal says why; a failure of ours is logged, and the browser told no more.
            let text = if status.is_server_error() {
                tracing::error!(error = %e, "a passkey ceremony could not start");
                "The passkey request failed on our side. Try again in a moment.".to_string()
            } else {
                sentence(&e)
            };
            (status, Json(json!({"error": text}))).into_response()
        }
    }
}

/// The account signed in to `session` in this area, when it may change its own sign-in: not a
/// session an administrator opened as the user, not a disabled admin.
async fn own_account(state: &AppState, area: Area, session: &Session) -> Result<Option<Credentials>> {
    let Some(id) = session.data.signed_in(area.who).filter(|_| session.data.impersonated_by.is_none()) else {
        return Ok(None);
    };
    if area.admin() && state.accounts.admin(id).await?.is_disabled() {
        return Ok(None);
    }
    Ok(Some(state.accounts.credentials(area.who, id).await?))
}

/// `POST …/login/passkey/options`: a ceremony that signs in with a passkey alone, gives a
/// sign-in's second factor, or re-authenticates — as the session stands (`Auth::passkey_challenge`).
async fn challenge<const ADMIN: bool>(
    State(state): State<AppState>,
    ctx: Ctx,
    CheckedForm { session, .. }: CheckedForm,
) -> Response {
    let area = Area::of::<ADMIN>();
    json_answer(state.auth.passkey_challenge(&session, area.who, &ctx.ip_string()).await)
}

/// `POST …/login/passkey`: the browser's answer. Signed in (alone, or after the password), or
/// confirmed for a credential change.
async fn answer<const ADMIN: bool>(
    State(state): State<AppState>,
    ctx: Ctx,
    CheckedForm { session, form }: CheckedForm,
) -> Answer {
    let area = Area::of::<ADMIN>();
    let passkey = PasskeyAnswer { ceremony: form.text("ceremony"), credential: form.get("credential").unwrap_or("") };
    let was_signed_in = session.data.signed_in(area.who).is_some();
    let step = state.auth.sign_in_with_passkey(&session, area.who, passkey, &ctx.visitor()).await?;
    let text = match step {
        Step::Done { cookie, .. } if was_signed_in => {
            return Ok(see_other(&state, area.security(), Some(area.session_cookie(&state, &cookie))));
        }
        Step::Done { cookie, device } => {
            return Ok(match area.who {
                Principal::User => super::pages::login::signed_in(&state, &cookie, device),
                Principal::Admin => super::admin::login::signed_in(&state, &cookie, device),
            });
        }
        Step::ClientsClosed => {
            let text = "The account you belong to is closed. Contact support if you need access to its records.";
            return Ok(message(&state, Some(&session), StatusCode::FORBIDDEN, "Account closed", text));
        }
        Step::Locked => "Too many failed attempts. Please try again later.",
        Step::NotSigningIn => return Ok(see_other(&state, area.login(), None)),
        _ => "That passkey was not accepted. Try again, or sign in another way.",
    };
    refused(&state, area, session, text).await
}

/// The page a refused answer comes back to, saying so: the confirm page for a signed-in
/// session, the second-factor page half-way through a sign-in, else the login page — rendered,
/// not redirected, so a visitor's refusal writes no session (a flood of refusals stores nothing).
async fn refused(state: &AppState, area: Area, session: Session, text: &str) -> Answer {
    if session.data.signed_in(area.who).is_some() {
        return Ok(redirect_with_flash(state, session, text, area.confirm()).await);
    }
    let status = StatusCode::UNAUTHORIZED;
    if session.data.pending_for(area.who).is_some() {
        let (offered, only) = second_factor_offer(state, &session, area.who).await?;
        let page = match area.who {
            Principal::User => Page::new("twofa.html", "Two-factor authentication").with("error", text),
            Principal::Admin => super::admin::login::twofa_page(Some(text)),
        };
        let page = page.with("passkey_offered", offered).with("passkey_only", only);
        return Ok(page.status(status).render(state, Some(&session)));
    }
    let page = match area.who {
        Principal::User => super::pages::login::login(state).with("error", text),
        Principal::Admin => super::admin::login::login_page(Some(text)),
    };
    Ok(page.status(status).render(state, Some(&session)))
}

/// `POST …/passkeys/options`: a ceremony that adds a passkey to the signed-in account.
async fn registration<const ADMIN: bool>(
    State(state): State<AppState>,
    ctx: Ctx,
    CheckedForm { session, .. }: CheckedForm,
) -> Response {
    let area = Area::of::<ADMIN>();
    json_answer(
        async {
            let creds = own_account(&state, area, &session)
                .await?
                .ok_or_else(|| Error::refused(crate::error::Code::Unauthorized, "sign in first"))?;
            if !state.auth.recently_authenticated(&session.data) {
                return Err(Error::refused(
                    crate::error::Code::Forbidden,
                    "confirm it is you first (Security, \"confirm it is you\"), then add the passkey",
                ));
            }
            state.auth.passkey_registration(&session, &creds, &ctx.ip_string()).await
        }
        .await,
    )
}

/// Before a change to how someone signs in: their own account, proven recently.
async fn changing_own(state: &AppState, area: Area, session: &Session) -> std::result::Result<Credentials, Response> {
    let Ok(Some(creds)) = own_account(state, area, session).await else {
        return Err(see_other(state, area.login(), None));
    };
    if !state.auth.recently_authenticated(&session.data) {
        let text = "For your security, confirm it is you before changing how you sign in.";
        return Err(redirect_with_flash(state, session.clone(), text, area.confirm()).await);
    }
    Ok(creds)
}

/// `POST …/passkeys`: the new passkey, named.
async fn add<const ADMIN: bool>(
    State(state): State<AppState>,
    ctx: Ctx,
    CheckedForm { session, form }: CheckedForm,
) -> Answer {
    let area = Area::of::<ADMIN>();
    let creds = changing_own(&state, area, &session).await?;
    let passkey = PasskeyAnswer { ceremony: form.text("ceremony"), credential: form.get("credential").unwrap_or("") };
    let name = form.text("name");
    let text = match state.auth.add_passkey(&session, &creds, passkey, name, &ctx.ip_string()).await {
        Ok(()) => format!("The passkey \"{}\" is added. It signs you in without your password.", name.trim()),
        Err(e @ Error::Refused { .. }) => format!("The passkey was not added: {}", sentence(&e)),
        Err(e) => return Err(e.into()),
    };
    Ok(redirect_with_flash(&state, session, text, area.security()).await)
}

/// `POST …/passkeys/{id}/remove`.
async fn remove<const ADMIN: bool>(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    CheckedForm { session, .. }: CheckedForm,
) -> Answer {
    let area = Area::of::<ADMIN>();
    let creds = changing_own(&state, area, &session).await?;
    let text = match state.auth.remove_passkey(&creds, id, &ctx.ip_string()).await {
        Ok(()) => "The passkey is removed: it no longer signs you in.".to_string(),
        Err(e @ Error::Refused { .. }) => sentence(&e),
        Err(e) => return Err(e.into()),
    };
    Ok(redirect_with_flash(&state, session, text, area.security()).await)
}
