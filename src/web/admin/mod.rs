//! The admin area: small server-rendered pages over the same services as the admin API, for
//! staff in a browser. Its own session cookie (`Path=/admin`), the client area's CSRF rules,
//! and every page and button guarded by one admin permission of the admin's role: a page the
//! role does not allow answers 403 "Access Denied" naming the permission and the role, and the
//! menu shows only what the role allows. While the license is locked, the pages are read-only.

mod clients;
mod health;
pub(crate) mod login;
mod settings;
mod users;

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;

use super::AppState;
use super::context::Ctx;
use super::pages::Form;
use super::pages::extract::checked_form;
use super::render::{Answer, Page, Stop, see_other, sentence};
use crate::accounts::{Actor, Admin, AdminPermission as P};
use crate::auth::sessions::{Ended, Session};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(|state: axum::extract::State<AppState>| async move { see_other(&state, "admin/", None) }))
        .route("/admin/", get(dashboard))
        .route("/admin/login", get(login::form).post(login::submit))
        .route("/admin/login/2fa", get(login::second_factor_form).post(login::second_factor_submit))
        .route("/admin/login/2fa/duo/callback", get(login::duo_callback))
        .route("/admin/security", get(login::security))
        .route("/admin/security/confirm", get(login::confirm_form).post(login::confirm))
        .route("/admin/security/2fa/setup", post(login::twofa_setup))
        .route("/admin/security/2fa/enable", post(login::twofa_enable))
        .route("/admin/security/devices/{id}/forget", post(login::forget_device))
        .route("/admin/security/notifications", post(login::notifications))
        .route("/admin/logout", post(login::logout))
        .route("/admin/clients", get(clients::list))
        .route("/admin/clients/new", get(clients::new_form).post(clients::create))
        .route("/admin/clients/{id}", get(clients::profile).post(clients::save))
        .route("/admin/clients/{id}/edit", get(clients::edit))
        .route("/admin/clients/{id}/close", post(clients::close))
        .route("/admin/clients/{id}/users/associate", post(clients::associate))
        .route("/admin/clients/{id}/users/invite", post(clients::invite))
        .route("/admin/clients/{id}/users/{user_id}/permissions", post(clients::permissions))
        .route("/admin/clients/{id}/users/{user_id}/owner", post(clients::make_owner))
        .route("/admin/clients/{id}/users/{user_id}/remove", post(clients::remove))
        .route("/admin/clients/{id}/users/{user_id}/match", post(clients::match_details))
        .route("/admin/users", get(users::list))
        .route("/admin/users/new", get(users::new_form).post(users::create))
        .route("/admin/users/{id}", get(users::profile).post(users::save))
        .route("/admin/users/{id}/edit", get(users::edit))
        .route("/admin/users/{id}/password-reset", post(users::password_reset))
        .route("/admin/users/{id}/2fa/disable", post(users::disable_twofa))
        .route("/admin/users/{id}/sessions/end", post(users::end_sessions))
        .route("/admin/users/{id}/unlock", post(users::unlock))
        .route("/admin/users/{id}/impersonate", post(users::impersonate))
        .route("/admin/settings/{section}", get(settings::show))
        .route("/admin/settings/banned-emails/add", post(settings::ban))
        .route("/admin/settings/banned-emails/{domain}/remove", post(settings::unban))
        .route("/admin/settings/security-questions/add", post(settings::add_question))
        .route("/admin/settings/security-questions/{id}/remove", post(settings::remove_question))
        .route("/admin/settings/admins/add", post(settings::add_admin))
        .route("/admin/settings/admins/{id}/role", post(settings::set_role))
        .route("/admin/settings/admins/{id}/sessions/end", post(settings::end_admin_sessions))
        .route("/admin/settings/admins/{id}/disable", post(settings::disable_admin))
        .route("/admin/settings/admins/{id}/enable", post(settings::enable_admin))
        .route("/admin/settings/roles/save", post(settings::save_role))
        .route("/admin/settings/tokens/create", post(settings::create_token))
        .route("/admin/settings/tokens/{id}/revoke", post(settings::revoke_token))
        .route("/admin/health", get(health::show))
        .route("/admin/health/run", post(health::run_now))
        .route("/admin/health/fix/{check}", get(health::confirm).post(health::apply))
}

/// The menu: each entry with the permission it needs; an admin sees only what their role allows.
const MENU: &[(&str, &str, P)] = &[
    ("Clients", "admin/clients", P::ClientsView),
    ("Users", "admin/users", P::UsersView),
    ("Settings", "admin/settings/banned-emails", P::SettingsManage),
    ("System Health", "admin/health", P::HealthView),
];

/// The signed-in admin of a request, with their role's permissions.
pub struct Staff {
    pub admin: Admin,
    pub permissions: BTreeSet<P>,
    pub session: Session,
    pub ip: String,
}

impl Staff {
    async fn of(state: &AppState, ctx: &Ctx) -> Result<Self, Stop> {
        let to_login = || {
            let target =
                if ctx.ended.is_some_and(|e| e != Ended::Unknown) { "admin/login?expired=1" } else { "admin/login" };
            Stop::from(see_other(state, target, None))
        };
        let Some(session) = ctx.session.clone() else { return Err(to_login()) };
        if session.data.pending_for(crate::accounts::Principal::Admin).is_some() {
            // Password given, second factor (or its enrolment) outstanding.
            return Err(login::continue_sign_in(state, &session).into());
        }
        let Some(admin_id) = session.data.admin_id else { return Err(to_login()) };
        let admin = state.accounts.admin(admin_id).await?;
        if admin.is_disabled() {
            // A session made by a sign-in that was under way when the admin was disabled: ended
            // here, so it neither waits for them to be enabled again nor loops between pages.
            state.sessions.delete(&session.key).await?;
            return Err(to_login());
        }
        let permissions = state.accounts.admin_permissions(&admin).await?;
        Ok(Self { admin, permissions, session, ip: ctx.ip_string() })
    }

    /// What this admin may hand out: what their role holds.
    pub fn grantor(&self) -> crate::accounts::Grantor {
        crate::accounts::Grantor::Admin { id: self.admin.id, holds: self.permissions.clone() }
    }

    pub fn can(&self, p: P) -> bool {
        self.permissions.contains(&p)
    }

    /// The admin as the audit log's actor, when their role has `p`; else the "Access Denied"
    /// page naming `p` and the role.
    pub fn require(&self, state: &AppState, p: P) -> Result<Actor, Stop> {
        if self.can(p) {
            return Ok(self.admin.actor(&self.ip));
        }
        let role = self.admin.role_name.as_deref().unwrap_or("(no role)");
        tracing::info!(admin = %self.admin.username, permission = %p, "admin page refused: permission missing");
        state.encounters.count(crate::net::encounters::Kind::AccessDenied, &format!("{role}: {p}"));
        let text = format!(
            "There is a problem with your administrator role: this needs the permission {p}, which the role \
             “{role}” does not have. An administrator with settings.manage can add it under Settings → Roles."
        );
        let page = Page::new("admin/message.html", "Oops! Access Denied").with("message", text);
        Err(Stop::Show(Box::new(self.page(state, page.status(StatusCode::FORBIDDEN))?)))
    }

    /// Renders an admin page with the menu this admin may use and the license banner.
    pub fn page(&self, state: &AppState, page: Page) -> Answer {
        let menu: Vec<_> = MENU
            .iter()
            .filter(|(_, _, p)| self.can(*p))
            .map(|(label, path, _)| json!({"label": label, "path": path}))
            .collect();
        let lock = state.license.require_unlocked().err().map(|e| sentence(&e));
        Ok(page
            .with("admin", json!({"username": self.admin.username, "role": self.admin.role_name}))
            .with("menu", menu)
            .with("license_lock", lock)
            .render(state, Some(&self.session)))
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = Stop;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Stop> {
        let ctx = Ctx::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        Staff::of(state, &ctx).await
    }
}

/// A signed-in admin's form, after the CSRF check. While the license locks admin writes the
/// form is refused with the reason: the admin area is read-only then.
pub struct StaffForm {
    pub staff: Staff,
    pub form: Form,
}

impl FromRequest<AppState> for StaffForm {
    type Rejection = Stop;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Stop> {
        let (ctx, _, form) = checked_form(request, state).await?;
        let staff = Staff::of(state, &ctx).await?;
        state.license.require_unlocked()?;
        Ok(Self { staff, form })
    }
}

/// After a form: the next page with a message — what was done, or the domain's refusal.
pub async fn done(state: &AppState, staff: Staff, result: crate::Result<String>, next: &str) -> Answer {
    let mut session = staff.session;
    match result {
        Ok(text) => session.data.flash = Some(text),
        Err(e @ crate::Error::Refused { .. }) => session.data.flash_error = Some(sentence(&e)),
        Err(e) => return Err(e.into()),
    }
    state.sessions.save(&mut session).await?;
    Ok(see_other(state, next, None))
}

/// The dashboard: what this admin can reach, and the deployment's health at a glance.
async fn dashboard(axum::extract::State(state): axum::extract::State<AppState>, staff: Staff) -> Answer {
    let accounts = &state.accounts;
    let clients = match staff.can(P::ClientsView) {
        true => Some(accounts.clients_page("", 0, 0).await?.total),
        false => None,
    };
    let users = match staff.can(P::UsersView) {
        true => Some(accounts.users_page("", 0, 0).await?.total),
        false => None,
    };
    let page = Page::new("admin/dashboard.html", "Dashboard")
        .with("license", license_line(&state.license.standing()))
        .with("clients", clients)
        .with("users", users)
        .with("health", staff.can(P::HealthView));
    staff.page(&state, page)
}

/// The license's standing in a sentence, for the dashboard.
fn license_line(standing: &crate::license::Standing) -> String {
    use crate::license::Standing;
    match standing {
        Standing::Unlicensed => "No license key is configured: nothing is verified, and nothing locks.".into(),
        Standing::Active { due_at, .. } => format!("Active; the next verification is due {due_at}."),
        Standing::Grace { locks_at, hours_left, .. } => format!(
            "Not verified since it was due: admin functions lock at {locks_at} ({hours_left} h left) unless the licensing server answers."
        ),
        Standing::FirstVerification { locks_at, hours_left, .. } => format!(
            "Not verified yet: admin functions lock at {locks_at} ({hours_left} h left) unless the licensing server answers."
        ),
        Standing::Locked { reason, .. } => format!("Locked: {reason}. The admin area is read-only."),
    }
}
