//! The admin JSON API under `/api/v1/`: bearer API tokens, each route guarded by one admin
//! permission of the token's role (a 403 names the missing permission). Errors are
//! `{"error":{"code":…,"message":…}}` with a fitting status. No cookies, so no CSRF surface.

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::context::Ctx;
use crate::accounts::AuditAction;
use crate::accounts::Target;
use crate::accounts::{
    Actor, Admin, AdminPermission as P, ClientStatus, ClientUpdate, NewClient, NewUser, OwnerSpec, Permissions,
    Principal, UserUpdate,
};
use crate::error::{Code, Error};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/clients", get(list_clients).post(create_client))
        .route("/clients/{id}", get(show_client).patch(update_client).delete(delete_client))
        .route("/clients/{id}/users/{user_id}", put(put_membership).delete(delete_membership))
        .route("/clients/{id}/owner", put(put_owner))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(show_user).patch(update_user).delete(delete_user))
        .route("/users/{id}/password-reset", post(password_reset))
        .route("/users/{id}/2fa", delete(disable_twofa))
        .route("/users/{id}/lockout", delete(unlock_user))
        .route("/users/{id}/sessions", get(user_sessions).delete(end_user_sessions))
        .route("/users/{id}/impersonate", post(impersonate))
        .route("/invites", get(list_invites).post(create_invite))
        .route("/invites/{id}", delete(cancel_invite))
        .route("/banned-emails", get(list_banned).post(ban))
        .route("/banned-emails/{domain}", delete(unban))
        .route("/security-questions", get(list_questions).post(add_question))
        .route("/security-questions/{id}", delete(remove_question))
        .route("/health", get(health))
        .fallback(no_such_route)
        .method_not_allowed_fallback(method_not_allowed)
}

/// A JSON body whose rejection (not JSON, a missing or mistyped field) answers in the API's
/// error contract — 422 `invalid_input` naming what is wrong — not with axum's plain text.
struct Body<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(ApiError(Error::invalid(format!("request body: {}", rejection.body_text())))),
        }
    }
}

/// Path parameters, rejected in the API's error contract like [`Body`].
struct Params<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Params(value)),
            Err(rejection) => Err(ApiError(Error::invalid(format!("path: {}", rejection.body_text())))),
        }
    }
}

/// An unknown path under `/api/v1/` answers in the API's error contract, not with an empty 404.
async fn no_such_route(uri: axum::http::Uri) -> ApiError {
    ApiError(Error::refused(Code::NotFound, format!("no API route {}; see README for the routes", uri.path())))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError(Error::refused(Code::MethodNotAllowed, format!("{method} is not allowed on {}", uri.path())))
}

/// The API's error body: `{"error": {"code", "message"}}`, the one shape every refusal has.
pub fn error_body(code: Code, message: impl Into<String>) -> Json<serde_json::Value> {
    Json(json!({"error": {"code": code, "message": message.into()}}))
}

/// An API error as JSON with the status its code calls for.
pub struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self.0, "admin API request failed");
            "internal error; see the server log".to_string()
        } else {
            self.0.to_string()
        };
        let mut response = (status, error_body(code, message)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
        }
        if code == crate::error::Code::DatabaseUnavailable {
            response.headers_mut().insert(header::RETRY_AFTER, "5".parse().expect("static"));
            response.extensions_mut().insert(super::breaker::DatabaseDown);
        }
        response
    }
}

type ApiResult = Result<Response, ApiError>;

fn ok(value: impl serde::Serialize) -> ApiResult {
    Ok(Json(value).into_response())
}

fn created(value: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

fn no_content() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The admin behind the bearer token, with their permissions and client IP.
pub struct Caller {
    admin: Admin,
    permissions: std::collections::BTreeSet<P>,
    ip: String,
    /// Where a refusal is counted for the doctor (`admin.roles`).
    state: AppState,
}

impl Caller {
    fn require(&self, p: P) -> Result<Actor, ApiError> {
        if !self.permissions.contains(&p) {
            let role = self.admin.role_name.as_deref().unwrap_or("(no role)");
            self.state.encounters.count(crate::net::encounters::Kind::AccessDenied, &format!("{role}: {p}"));
            return Err(Error::refused(
                Code::Forbidden,
                format!(
                    "admin {} lacks the permission `{p}` (role permissions are set with `gatehouse admin role`)",
                    self.admin.username
                ),
            )
            .into());
        }
        Ok(Actor::admin(self.admin.id, &self.admin.username).with_ip(&self.ip))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |m: &str| ApiError(Error::refused(Code::Unauthorized, m));
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("send an API token as `Authorization: Bearer <token>`"))?;
        let admin = match state.accounts.authenticate_api_token(token.trim()).await {
            Ok(admin) => admin,
            Err(Error::Refused { .. }) => return Err(unauthorized("the API token is invalid or revoked")),
            // The token may be perfectly good: say what is really wrong.
            Err(e) => {
                tracing::warn!(error = %e, "cannot check an API token");
                return Err(ApiError(Error::Unavailable(
                    "the database is unavailable; the request was not carried out, try again later".into(),
                )));
            }
        };
        // A license that is not valid locks admin writes; reading, and the client area, go on.
        if !parts.method.is_safe() {
            state.license.require_unlocked()?;
        }
        let permissions = state.accounts.admin_permissions(&admin).await?;
        let ip = parts.extensions.get::<Ctx>().map(|c| c.ip_string()).unwrap_or_default();
        Ok(Caller { admin, permissions, ip, state: state.clone() })
    }
}

#[derive(Deserialize)]
struct Search {
    search: Option<String>,
    status: Option<String>,
    client_id: Option<i64>,
    delete_users: Option<bool>,
}

async fn list_clients(State(s): State<AppState>, c: Caller, Query(q): Query<Search>) -> ApiResult {
    c.require(P::ClientsView)?;
    let status = q.status.as_deref().map(str::parse::<ClientStatus>).transpose()?;
    ok(s.accounts.list_clients(status, q.search.as_deref()).await?)
}

async fn show_client(State(s): State<AppState>, c: Caller, Params(id): Params<i64>) -> ApiResult {
    c.require(P::ClientsView)?;
    ok(s.accounts.client(id).await?)
}

/// A new client: its fields, and its owner — an existing user, or a new one made from the
/// client's details (with an optional password).
async fn create_client(
    State(s): State<AppState>,
    c: Caller,
    Body(mut body): Body<serde_json::Map<String, Value>>,
) -> ApiResult {
    let actor = c.require(P::ClientsCreate)?;
    let owner_user_id = body.remove("owner_user_id");
    let password = body.remove("password");
    let owner = match owner_user_id.as_ref().and_then(Value::as_i64) {
        // Making an existing user the owner of a client changes that user's access: users.manage.
        Some(id) => {
            c.require(P::UsersManage)?;
            OwnerSpec::Existing(id)
        }
        None => OwnerSpec::NewUser { password: password.as_ref().and_then(Value::as_str).map(str::to_string) },
    };
    let fields = client_fields(Value::Object(body))?;
    created(s.accounts.create_client(&actor, NewClient { fields, owner }).await?)
}

/// The client fields of a body, refused in the API's contract when a field is unknown or of
/// the wrong type.
fn client_fields(body: Value) -> Result<ClientUpdate, Error> {
    serde_json::from_value(body).map_err(|e| Error::invalid(format!("request body: {e}")))
}

async fn update_client(
    State(s): State<AppState>,
    c: Caller,
    Params(id): Params<i64>,
    Body(fields): Body<ClientUpdate>,
) -> ApiResult {
    let actor = c.require(P::ClientsManage)?;
    ok(s.accounts.update_client(&actor, id, fields).await?)
}

async fn delete_client(
    State(s): State<AppState>,
    c: Caller,
    Params(id): Params<i64>,
    Query(q): Query<Search>,
) -> ApiResult {
    let actor = c.require(P::ClientsManage)?;
    ok(s.accounts.delete_client(&actor, id, q.delete_users.unwrap_or(false)).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembershipBody {
    #[serde(default)]
    permissions: Vec<String>,
}

async fn put_membership(
    State(s): State<AppState>,
    c: Caller,
    Params((client_id, user_id)): Params<(i64, i64)>,
    Body(body): Body<MembershipBody>,
) -> ApiResult {
    let actor = c.require(P::UsersManage)?;
    let permissions = Permissions::parse_list(&body.permissions.join(","))?;
    let accounts = &s.accounts;
    let m = match accounts.membership(user_id, client_id).await? {
        Some(_) => accounts.set_permissions(&actor, user_id, client_id, &permissions).await?,
        None => accounts.associate(&actor, user_id, client_id, &permissions).await?,
    };
    ok(m)
}

async fn delete_membership(
    State(s): State<AppState>,
    c: Caller,
    Params((client_id, user_id)): Params<(i64, i64)>,
) -> ApiResult {
    let actor = c.require(P::UsersManage)?;
    s.accounts.dissociate(&actor, user_id, client_id).await?;
    no_content()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnerBody {
    user_id: i64,
}

async fn put_owner(
    State(s): State<AppState>,
    c: Caller,
    Params(id): Params<i64>,
    Body(body): Body<OwnerBody>,
) -> ApiResult {
    let actor = c.require(P::UsersManage)?;
    ok(s.accounts.make_owner(&actor, body.user_id, id).await?)
}

async fn list_users(State(s): State<AppState>, c: Caller, Query(q): Query<Search>) -> ApiResult {
    c.require(P::UsersView)?;
    ok(s.accounts.list_users(q.search.as_deref()).await?)
}

async fn show_user(State(s): State<AppState>, c: Caller, Params(id): Params<i64>) -> ApiResult {
    c.require(P::UsersView)?;
    let user = s.accounts.user(id).await?;
    let clients = s.accounts.clients_of_user(id).await?;
    let mut v = serde_json::to_value(user).unwrap_or_default();
    v["clients"] = serde_json::to_value(clients).unwrap_or_default();
    ok(v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    email: String,
    first_name: String,
    last_name: String,
    #[serde(default)]
    language: String,
    password: Option<String>,
}

async fn create_user(State(s): State<AppState>, c: Caller, Body(b): Body<UserBody>) -> ApiResult {
    let actor = c.require(P::UsersCreate)?;
    let new = NewUser {
        email: b.email,
        first_name: b.first_name,
        last_name: b.last_name,
        language: b.language,
        password: b.password,
    };
    created(s.accounts.create_user(&actor, new).await?)
}

/// What `PATCH /users/{id}` may change; a field left out stays as it is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    language: Option<String>,
    timezone: Option<String>,
}

async fn update_user(
    State(s): State<AppState>,
    c: Caller,
    Params(id): Params<i64>,
    Body(b): Body<UserPatch>,
) -> ApiResult {
    let actor = c.require(P::UsersManage)?;
    let update = UserUpdate {
        email: b.email,
        first_name: b.first_name,
        last_name: b.last_name,
        language: b.language,
        timezone: b.timezone,
    };
    ok(s.auth.change_user(&actor, id, update).await?)
}

async fn delete_user(State(s): State<AppState>, c: Caller, Params(id): Params<i64>) -> ApiResult {
    let actor = c.require(P::UsersManage)?;
    s.accounts.delete_user(&actor, id).await?;
    no_content()
}

async fn password_reset(State(s): State<AppState>, c: Caller, Params(id): Params<i64>) -> ApiResult {
    let actor = c.require(P::UsersManage)?;
    let user = s.accounts.user(id).await?;
    s.auth.send_reset(&actor, &user).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"queued": true, "email": user.email}))).into_response())
}

async fn unlock_user(State(s): State<AppState>, c: Caller, Params(id): Params<i64>) -> ApiResult {
    let actor = c.require(P::UsersManage)?;
    let user = s.accounts.user(id).await?;
    ok(json!({"id": id, "removed": s.auth.unlock_user(&actor, &user).await?}))
}

async fn disable_twofa(State(s): State<AppState>, c: Caller, Params(id): Params<i64>) -> ApiResult {
    let actor = c.require(P::UsersManage)?;
    s.auth.turn_off_second_factor(&actor, Principal::User, id).await?;
    no_content()
}

async fn user_sessions(State(s): State<AppState>, c: Caller, Params(id): Params<i64>) -> ApiResult {
    c.require(P::SessionsManage)?;
    s.accounts.user(id).await?;
    let list: Vec<Value> = s.sessions.for_user(id).await?.iter().map(|x| x.summary()).collect();
    ok(list)
}

async fn end_user_sessions(State(s): State<AppState>, c: Caller, Params(id): Params<i64>) -> ApiResult {
    let actor = c.require(P::SessionsManage)?;
    s.accounts.user(id).await?;
    let ended = s.sessions.end_for_user(id, None).await?;
    s.accounts
        .record_event(&actor, AuditAction::SessionRevokeAll, (Target::User, Some(id)), json!({"ended": ended}))
        .await?;
    ok(json!({"ended": ended}))
}

async fn impersonate(State(s): State<AppState>, c: Caller, Params(id): Params<i64>) -> ApiResult {
    c.require(P::UsersImpersonate)?;
    let url = s.auth.impersonation_link(&c.admin, id, Some(&c.ip)).await?;
    created(json!({"url": url, "expires_in": crate::auth::IMPERSONATION_TTL_SECS}))
}

async fn list_invites(State(s): State<AppState>, c: Caller, Query(q): Query<Search>) -> ApiResult {
    c.require(P::UsersView)?;
    ok(s.accounts.list_invites(q.client_id).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    client_id: i64,
    email: String,
    #[serde(default)]
    permissions: Vec<String>,
}

async fn create_invite(State(s): State<AppState>, c: Caller, Body(b): Body<InviteBody>) -> ApiResult {
    let actor = c.require(P::UsersManage)?;
    let permissions = Permissions::parse_list(&b.permissions.join(","))?;
    let invite = s.accounts.create_invite(&actor, b.client_id, &b.email, &permissions, None).await?;
    let url = s.auth.link(&format!("invite/{}", invite.token));
    let mut v = serde_json::to_value(&invite.invite).unwrap_or_default();
    v["url"] = json!(url);
    created(v)
}

async fn cancel_invite(State(s): State<AppState>, c: Caller, Params(id): Params<i64>) -> ApiResult {
    let actor = c.require(P::UsersManage)?;
    ok(s.accounts.cancel_invite(&actor, id).await?)
}

async fn list_banned(State(s): State<AppState>, c: Caller) -> ApiResult {
    c.require(P::SettingsManage)?;
    ok(s.accounts.list_banned_domains().await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainBody {
    domain: String,
}

async fn ban(State(s): State<AppState>, c: Caller, Body(b): Body<DomainBody>) -> ApiResult {
    let actor = c.require(P::SettingsManage)?;
    created(s.accounts.ban_domain(&actor, &b.domain).await?)
}

async fn unban(State(s): State<AppState>, c: Caller, Params(domain): Params<String>) -> ApiResult {
    let actor = c.require(P::SettingsManage)?;
    s.accounts.unban_domain(&actor, &domain).await?;
    no_content()
}

async fn list_questions(State(s): State<AppState>, c: Caller) -> ApiResult {
    c.require(P::SettingsManage)?;
    ok(s.accounts.list_security_questions().await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionBody {
    question: String,
}

async fn add_question(State(s): State<AppState>, c: Caller, Body(b): Body<QuestionBody>) -> ApiResult {
    let actor = c.require(P::SettingsManage)?;
    created(s.accounts.add_security_question(&actor, &b.question).await?)
}

async fn remove_question(State(s): State<AppState>, c: Caller, Params(id): Params<i64>) -> ApiResult {
    let actor = c.require(P::SettingsManage)?;
    s.accounts.remove_security_question(&actor, id).await?;
    no_content()
}

/// The doctor's JSON report, from the server's single-flight cache (`web::health`).
async fn health(State(s): State<AppState>, c: Caller) -> ApiResult {
    c.require(P::HealthView)?;
    ok(s.health(false).await.as_ref())
}
