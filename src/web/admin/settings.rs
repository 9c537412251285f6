//! Settings in the admin area, all behind `settings.manage`: banned email domains (with how
//! many sign-ups each blocked), security questions, admins, roles and API tokens.

use axum::extract::{Path, State};
use serde_json::json;

use super::{Staff, StaffForm, done};
use crate::accounts::AdminPermission as P;
use crate::accounts::AuditAction;
use crate::accounts::Target;
use crate::accounts::admins::parse_admin_permissions;
use crate::error::Error;
use crate::web::AppState;
use crate::web::render::{Answer, Page};

/// The sections, as their path and title.
const SECTIONS: &[(&str, &str)] = &[
    ("banned-emails", "Banned email domains"),
    ("security-questions", "Security questions"),
    ("admins", "Admins"),
    ("roles", "Roles"),
    ("tokens", "API tokens"),
];

pub async fn show(State(state): State<AppState>, staff: Staff, Path(section): Path<String>) -> Answer {
    staff.require(&state, P::SettingsManage)?;
    let Some((_, title)) = SECTIONS.iter().find(|(path, _)| *path == section) else {
        return Err(Error::not_found("settings page", &section).into());
    };
    let accounts = &state.accounts;
    let mut page = Page::new("admin/settings.html", title).with("section", &section).with(
        "sections",
        SECTIONS.iter().map(|(path, title)| json!({"path": path, "title": title})).collect::<Vec<_>>(),
    );
    page = match section.as_str() {
        "banned-emails" => page.with("banned", accounts.list_banned_domains().await?),
        "security-questions" => page.with("questions", accounts.list_security_questions().await?),
        "admins" => {
            let mut admins = Vec::new();
            for a in accounts.list_admins().await? {
                let sessions = state.sessions.for_admin(a.id).await?.len();
                admins.push(json!({"admin": a, "sessions": sessions, "is_me": a.id == staff.admin.id}));
            }
            page.with("admins", admins).with("roles", accounts.list_roles().await?)
        }
        "roles" => page
            .with("roles", accounts.list_roles().await?)
            .with("all_permissions", P::ALL.iter().map(|p| p.key()).collect::<Vec<_>>()),
        _ => page.with("tokens", accounts.list_api_tokens(None).await?).with("admins", accounts.list_admins().await?),
    };
    staff.page(&state, page)
}

fn section(name: &str) -> String {
    format!("admin/settings/{name}")
}

pub async fn ban(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Answer {
    let actor = staff.require(&state, P::SettingsManage)?;
    let result = state.accounts.ban_domain(&actor, form.text("domain")).await;
    done(&state, staff, result.map(|b| format!("Sign-ups from {} are refused.", b.domain)), &section("banned-emails"))
        .await
}

pub async fn unban(
    State(state): State<AppState>,
    Path(domain): Path<String>,
    StaffForm { staff, .. }: StaffForm,
) -> Answer {
    let actor = staff.require(&state, P::SettingsManage)?;
    let result = state.accounts.unban_domain(&actor, &domain).await;
    done(&state, staff, result.map(|()| format!("{domain} is no longer banned.")), &section("banned-emails")).await
}

pub async fn add_question(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Answer {
    let actor = staff.require(&state, P::SettingsManage)?;
    let result = state.accounts.add_security_question(&actor, form.text("question")).await;
    done(&state, staff, result.map(|_| "The question was added.".into()), &section("security-questions")).await
}

pub async fn remove_question(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    StaffForm { staff, .. }: StaffForm,
) -> Answer {
    let actor = staff.require(&state, P::SettingsManage)?;
    let result = state.accounts.remove_security_question(&actor, id).await;
    done(&state, staff, result.map(|()| "The question was removed.".into()), &section("security-questions")).await
}

/// Who may reach the admin area is as weighty as a credential: changing it (an admin added, a
/// role given, a token made, an admin disabled or enabled) asks a fresh proof of identity, so a
/// stolen session alone cannot.
const CONFIRM_FOR_ACCESS: &str = "For your security, confirm it is you before changing who can use the admin area.";

pub async fn add_admin(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Answer {
    let actor = staff.require(&state, P::SettingsManage)?;
    super::login::require_recent(&state, &staff.session, CONFIRM_FOR_ACCESS).await?;
    let password = form.get("password").filter(|p| !p.is_empty());
    let result = state
        .accounts
        .create_admin(&actor, &staff.grantor(), form.text("username"), form.text("email"), form.text("role"), password)
        .await;
    done(&state, staff, result.map(|a| format!("Admin {} was added.", a.username)), &section("admins")).await
}

pub async fn set_role(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    StaffForm { staff, form }: StaffForm,
) -> Answer {
    let actor = staff.require(&state, P::SettingsManage)?;
    super::login::require_recent(&state, &staff.session, CONFIRM_FOR_ACCESS).await?;
    let result = state.accounts.set_admin_role(&actor, &staff.grantor(), id, form.text("role")).await;
    done(
        &state,
        staff,
        result.map(|a| format!("{} now has the role {}.", a.username, a.role_name.unwrap_or_default())),
        &section("admins"),
    )
    .await
}

/// Creates the role, or replaces an existing role's permissions.
pub async fn save_role(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Answer {
    let actor = staff.require(&state, P::SettingsManage)?;
    let accounts = &state.accounts;
    let name = form.text("name");
    let grantor = staff.grantor();
    let result = async {
        let permissions = parse_admin_permissions(&form.all("permissions").join(","))?;
        let role = match accounts.role_by_name(name).await {
            Ok(_) => accounts.set_role_permissions(&actor, &grantor, name, &permissions).await?,
            Err(_) => accounts.create_role(&actor, &grantor, name, &permissions).await?,
        };
        Ok(format!("The role {} is saved.", role.name))
    }
    .await;
    done(&state, staff, result, &section("roles")).await
}

/// A new API token, shown once on the next page.
pub async fn create_token(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Answer {
    let actor = staff.require(&state, P::SettingsManage)?;
    super::login::require_recent(&state, &staff.session, CONFIRM_FOR_ACCESS).await?;
    let admin_id: i64 =
        form.text("admin_id").parse().map_err(|_| Error::invalid("choose the admin the token acts as"))?;
    let result = state.accounts.create_api_token(&actor, &staff.grantor(), admin_id, form.text("name")).await;
    let text =
        result.map(|t| format!("Token {} created. Copy it now, it is shown only once: {}", t.info.name, t.token));
    done(&state, staff, text, &section("tokens")).await
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    StaffForm { staff, .. }: StaffForm,
) -> Answer {
    let actor = staff.require(&state, P::SettingsManage)?;
    let result = state.accounts.revoke_api_token(&actor, &staff.grantor(), id).await;
    done(&state, staff, result.map(|t| format!("Token {} is revoked.", t.name)), &section("tokens")).await
}

/// Disables an admin and ends their sessions.
pub async fn disable_admin(state: State<AppState>, id: Path<i64>, form: StaffForm) -> Answer {
    set_admin_disabled(state, id, form, true).await
}

/// Enables a disabled admin again.
pub async fn enable_admin(state: State<AppState>, id: Path<i64>, form: StaffForm) -> Answer {
    set_admin_disabled(state, id, form, false).await
}

async fn set_admin_disabled(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    StaffForm { staff, .. }: StaffForm,
    disabled: bool,
) -> Answer {
    let actor = staff.require(&state, P::SettingsManage)?;
    super::login::require_recent(&state, &staff.session, CONFIRM_FOR_ACCESS).await?;
    let result = state.auth.set_admin_disabled(&actor, &staff.grantor(), id, disabled).await;
    let said = result.map(|(admin, ended)| match disabled {
        true => format!("{} is disabled; {ended} session(s) ended.", admin.username),
        false => format!("{} is enabled again.", admin.username),
    });
    done(&state, staff, said, &section("admins")).await
}

/// Signs an admin out everywhere (a lost laptop); one's own current session stays.
pub async fn end_admin_sessions(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    StaffForm { staff, .. }: StaffForm,
) -> Answer {
    let actor = staff.require(&state, P::SettingsManage)?;
    let admin = state.accounts.admin(id).await?;
    let what = "ending this admin's sessions";
    if let Err(e) = state.accounts.may_act_on_admin(&actor, &staff.grantor(), &admin, what).await {
        return done(&state, staff, Err(e), &section("admins")).await;
    }
    let ended = state.sessions.end_for_admin(id, Some(&staff.session.key)).await?;
    let details = json!({"ended": ended});
    state.accounts.record_event(&actor, AuditAction::AdminSessionsEnded, (Target::Admin, Some(id)), details).await?;
    done(&state, staff, Ok(format!("{ended} session(s) of {} ended.", admin.username)), &section("admins")).await
}
