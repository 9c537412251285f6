//! "Your profile" (the user's own name, language, time zone and login email) and "Account
//! details" (the current client's contact details: edited with the `profile` permission, read
//! with `contacts`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::extract::{CheckedForm, SignedIn, UserForm};
use super::{redirect_with_flash, signed_in};
use crate::accounts::{Actor, Membership, Permission, User};
use crate::auth::ProfileChange;
use crate::auth::sessions::Session;
use crate::error::Error;
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::render::{Answer, Page, Stop, message, see_other, sentence};

/// Languages offered on the profile page: a BCP 47 tag and the language's own name.
const LANGUAGES: &[(&str, &str)] = &[
    ("", "The site's default"),
    ("en", "English"),
    ("de", "Deutsch"),
    ("es", "Español"),
    ("fr", "Français"),
    ("it", "Italiano"),
    ("nl", "Nederlands"),
    ("pt", "Português"),
];

/// `page` with the languages and time zones a user's details offer (`languages`, `zones`): the
/// user's own profile and the admin area's user form choose from the same lists.
pub(crate) fn with_choices(page: Page) -> Page {
    let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    let languages: Vec<_> = LANGUAGES.iter().map(|(tag, name)| json!({"tag": tag, "name": name})).collect();
    page.with("languages", languages).with("zones", zones)
}

fn profile_page(user: &User, values: &User) -> Page {
    with_choices(Page::new("profile.html", "Your profile").with("user", user).with("form", values))
}

pub async fn profile(State(state): State<AppState>, _ctx: Ctx, SignedIn { user, session, .. }: SignedIn) -> Response {
    profile_page(&user, &user).render(&state, Some(&session))
}

pub async fn save_profile(
    State(state): State<AppState>,
    ctx: Ctx,
    UserForm { user, session, form, .. }: UserForm,
) -> Answer {
    let change = ProfileChange {
        first_name: form.text("first_name").into(),
        last_name: form.text("last_name").into(),
        language: form.text("language").into(),
        timezone: form.text("timezone").into(),
        email: form.text("email").into(),
        current_password: form.get("current_password").unwrap_or("").into(),
    };
    if !change.email.trim().eq_ignore_ascii_case(&user.email) {
        // Whoever controls the login email controls password resets: a credential change.
        super::require_recent(&state, &session, super::account::CONFIRM).await?;
    }
    let typed = User {
        first_name: change.first_name.clone(),
        last_name: change.last_name.clone(),
        language: change.language.clone(),
        timezone: change.timezone.clone(),
        email: change.email.clone(),
        ..user.clone()
    };
    Ok(match state.auth.update_profile(&user, change, &ctx.visitor()).await {
        Ok(_) => redirect_with_flash(&state, session, "Your profile is saved.", "account/profile").await,
        Err(e @ Error::Refused { .. }) => profile_page(&user, &typed)
            .with("error", sentence(&e))
            .status(StatusCode::UNPROCESSABLE_ENTITY)
            .render(&state, Some(&session)),
        Err(e) => return Err(e.into()),
    })
}

/// The current client's membership and whether it lets the user edit (`profile`) or only read
/// (`contacts`) the client's details.
async fn client_access(state: &AppState, ctx: &Ctx) -> Result<(User, Session, Membership, bool), Stop> {
    let (user, session) = signed_in(state, ctx, false)?;
    let Some(member) = session.data.client_id.and_then(|id| ctx.membership(id)) else {
        return Err(see_other(state, "clientarea", None).into());
    };
    let (edit, read) =
        (member.permissions.contains(Permission::Profile), member.permissions.contains(Permission::Contacts));
    if !edit && !read {
        let text = "Your access to this account does not include its contact details. The account owner can grant it.";
        return Err(message(state, Some(&session), StatusCode::FORBIDDEN, "Access denied", text).into());
    }
    Ok((user, session, member, edit))
}

async fn client_page(state: &AppState, member: &Membership, editable: bool) -> crate::Result<Page> {
    let client = state.accounts.client(member.client_id).await?;
    Ok(Page::new("client.html", "Account details")
        .with("client", &client)
        .with("client_name", client.display_name())
        .with("editable", editable))
}

pub async fn client(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let (user, session, member, editable) = client_access(&state, &ctx).await?;
    Ok(client_page(&state, &member, editable).await?.with("user", &user).render(&state, Some(&session)))
}

pub async fn save_client(State(state): State<AppState>, ctx: Ctx, CheckedForm { form, .. }: CheckedForm) -> Answer {
    let (user, session, member, editable) = client_access(&state, &ctx).await?;
    if !editable {
        let text =
            "You may read this account's contact details but not change them; that needs the profile permission.";
        return Ok(message(&state, Some(&session), StatusCode::FORBIDDEN, "Access denied", text));
    }
    let update = form.contact_details();
    let actor = Actor::user(user.id, &user.email).with_ip(ctx.ip_string());
    Ok(match state.accounts.update_client(&actor, member.client_id, update).await {
        Ok(_) => redirect_with_flash(&state, session, "The account details are saved.", "account/client").await,
        Err(e @ Error::Refused { .. }) => client_page(&state, &member, editable)
            .await?
            .with("user", &user)
            .with("error", sentence(&e))
            .status(StatusCode::UNPROCESSABLE_ENTITY)
            .render(&state, Some(&session)),
        Err(e) => return Err(e.into()),
    })
}
