//! HTML rendering: minijinja templates embedded in the binary, autoescaped, and the responses
//! the pages answer with (a page, a 303 to the next page, an error page).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Environment, Value};

use super::AppState;
use crate::auth::sessions::Session;

const LAYOUT: &str = include_str!("templates/layout.html");
const ADMIN_LAYOUT: &str = include_str!("templates/admin/layout.html");

/// The contents of the layouts' `<style>` blocks, as the browser hashes them for the
/// Content-Security-Policy (`web::headers`).
pub fn inline_styles() -> impl Iterator<Item = &'static str> {
    [LAYOUT, ADMIN_LAYOUT]
        .into_iter()
        .filter_map(|t| t.split_once("<style>")?.1.split_once("</style>").map(|(css, _)| css))
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("layout.html", LAYOUT),
            ("login.html", include_str!("templates/login.html")),
            ("twofa.html", include_str!("templates/twofa.html")),
            ("clientarea.html", include_str!("templates/clientarea.html")),
            ("forgot.html", include_str!("templates/forgot.html")),
            ("reset.html", include_str!("templates/reset.html")),
            ("message.html", include_str!("templates/message.html")),
            ("invite.html", include_str!("templates/invite.html")),
            ("security.html", include_str!("templates/security.html")),
            ("confirm.html", include_str!("templates/confirm.html")),
            ("passkeys.html", include_str!("templates/passkeys.html")),
            ("passkey_form.html", include_str!("templates/passkey_form.html")),
            ("users.html", include_str!("templates/users.html")),
            ("sessions.html", include_str!("templates/sessions.html")),
            ("register.html", include_str!("templates/register.html")),
            ("profile.html", include_str!("templates/profile.html")),
            ("client.html", include_str!("templates/client.html")),
            ("admin/layout.html", ADMIN_LAYOUT),
            ("admin/message.html", include_str!("templates/admin/message.html")),
            ("admin/login.html", include_str!("templates/admin/login.html")),
            ("admin/twofa.html", include_str!("templates/admin/twofa.html")),
            ("admin/security.html", include_str!("templates/admin/security.html")),
            ("admin/dashboard.html", include_str!("templates/admin/dashboard.html")),
            ("admin/clients.html", include_str!("templates/admin/clients.html")),
            ("admin/client.html", include_str!("templates/admin/client.html")),
            ("admin/client_new.html", include_str!("templates/admin/client_new.html")),
            ("admin/users.html", include_str!("templates/admin/users.html")),
            ("admin/user.html", include_str!("templates/admin/user.html")),
            ("admin/user_new.html", include_str!("templates/admin/user_new.html")),
            ("admin/settings.html", include_str!("templates/admin/settings.html")),
            ("admin/health.html", include_str!("templates/admin/health.html")),
        ] {
            env.add_template(name, source).expect("templates are valid");
        }
        env
    })
}

/// A page to render: template, status, values, and cookies to set. The values are the
/// template engine's own, serialised once from what a handler gives (through JSON first, a
/// page view spent a fifth of its instructions converting).
pub struct Page {
    pub template: &'static str,
    pub status: StatusCode,
    pub values: BTreeMap<&'static str, Value>,
    pub cookies: Vec<HeaderValue>,
}

/// A template value of anything serialisable.
fn value(v: impl serde::Serialize) -> Value {
    Value::from(minijinja::value::Serde(v))
}

impl Page {
    pub fn new(template: &'static str, title: &str) -> Self {
        let values = BTreeMap::from([("title", Value::from(title))]);
        Self { template, status: StatusCode::OK, values, cookies: Vec::new() }
    }

    pub fn with(mut self, key: &'static str, v: impl serde::Serialize) -> Self {
        self.values.insert(key, value(v));
        self
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn cookie(mut self, cookie: Option<HeaderValue>) -> Self {
        self.cookies.extend(cookie);
        self
    }

    /// Fills the values every page uses from the session and renders. A page that shows the
    /// session's one-time message or backup code is marked [`ShownOnce`], so the request
    /// middleware forgets them once the page is on its way.
    pub fn render(mut self, state: &AppState, session: Option<&Session>) -> Response {
        let v = &mut self.values;
        v.insert("base", Value::from(state.cookie.path.as_str()));
        v.insert("passkeys", Value::from(state.auth.passkeys_available()));
        let mut shown = None;
        if let Some(s) = session {
            v.entry("csrf").or_insert_with(|| Value::from(s.data.csrf_token.as_str()));
            v.insert("impersonated", Value::from(s.data.impersonated_by.is_some()));
            if s.data.flash.is_some() || s.data.flash_error.is_some() || s.data.backup_code.is_some() {
                v.entry("flash").or_insert_with(|| value(&s.data.flash));
                v.entry("error").or_insert_with(|| value(&s.data.flash_error));
                v.insert("backup_code", value(&s.data.backup_code));
                shown = Some(ShownOnce(s.clone()));
            }
        }
        let mut response = self.into_html();
        if let Some(shown) = shown {
            response.extensions_mut().insert(shown);
        }
        response
    }

    /// The page as an HTML response with the headers every page carries.
    fn into_html(self) -> Response {
        let html = env().get_template(self.template).and_then(|t| t.render(Value::from_pairs(self.values)));
        let mut response = match html {
            Ok(html) => (self.status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
            Err(e) => {
                tracing::error!(template = self.template, error = %e, "template failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        };
        let headers = response.headers_mut();
        // The security headers are the `headers` layer's, on every response.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for c in self.cookies {
            headers.append(header::SET_COOKIE, c);
        }
        response
    }
}

/// The session whose one-time message and backup code a response showed.
#[derive(Clone)]
pub struct ShownOnce(pub Session);

impl ShownOnce {
    /// Forgets what was shown, so a reload or the next page does not show it again.
    pub async fn forget(self, state: &AppState) {
        let mut session = self.0;
        session.data.flash = None;
        session.data.flash_error = None;
        session.data.backup_code = None;
        if let Err(e) = state.sessions.save(&mut session).await {
            tracing::warn!(error = %e, "could not clear a shown message from the session");
        }
    }
}

/// `303 See Other` to a path under system_url's path, optionally setting a cookie.
pub fn see_other(state: &AppState, path: &str, cookie: Option<HeaderValue>) -> Response {
    let location = format!("{}{}", state.cookie.path, path.trim_start_matches('/'));
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// 303 to `path` setting every cookie given (a session and a device token, say).
pub fn see_other_setting(state: &AppState, path: &str, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    let mut response = see_other(state, path, None);
    for c in cookies {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// A plain message page (errors, confirmations).
pub fn message(state: &AppState, session: Option<&Session>, status: StatusCode, title: &str, text: &str) -> Response {
    Page::new("message.html", title).with("message", text).status(status).render(state, session)
}

/// The status of a form shown again with a refusal: 429 when the address's share of the
/// password-hashing threads was full (`busy`: try again in a moment), else 422.
pub fn refusal_status(e: &crate::Error) -> StatusCode {
    match e.code() {
        crate::error::Code::Busy => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// A refusal as a sentence on a page: the domain's words ("choose a password of at least 12
/// characters"), capitalised and closed, never the machine code the API and CLI add.
pub fn sentence(e: &crate::Error) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// The 500 page for a handler that panicked: no state to render with, so the layout alone, and
/// nothing of the panic shown (it is logged).
pub fn panicked(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = err.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| err.downcast_ref::<String>().cloned());
    tracing::error!(panic = what.as_deref().unwrap_or("(no message)"), "a request handler panicked");
    let page = Page::new("message.html", "Something went wrong")
        .with(
            "message",
            "The request could not be completed. Please try again; if it persists, tell the site's administrator.",
        )
        .with("base", "/")
        .status(StatusCode::INTERNAL_SERVER_ERROR);
    page.into_html()
}

/// 503 with `Retry-After` while the database cannot answer, in the area's layout.
pub fn unavailable(state: &AppState, admin_area: bool) -> Response {
    let text = "The site is temporarily unavailable. Please try again in a few minutes; you are still signed in.";
    let template = if admin_area { "admin/message.html" } else { "message.html" };
    let mut response = Page::new(template, "Temporarily unavailable")
        .with("message", text)
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .render(state, None);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// A page handler's failure, so handlers can use `?` on the domain's errors. The response only
/// carries the error; the request middleware, which has the state, renders it as a page: a
/// refusal in the domain's words with its status, anything else as the 500 page (and the log).
#[derive(Clone)]
pub struct Failed(std::sync::Arc<crate::Error>);

impl From<crate::Error> for Failed {
    fn from(e: crate::Error) -> Self {
        Failed(std::sync::Arc::new(e))
    }
}

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl Failed {
    /// The database could not answer (down, full): the site is unavailable, not broken.
    pub fn is_unavailability(&self) -> bool {
        let store = matches!(*self.0, crate::Error::SessionStore(_));
        self.0.code() == crate::error::Code::DatabaseUnavailable && !store
    }

    /// The page for this failure, in the admin area's layout when it happened there.
    pub fn page(&self, state: &AppState, admin_area: bool) -> Response {
        let e = self.0.as_ref();
        let status = StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let crate::Error::SessionStore(_) = e {
            return crate::web::pages::store_failed(state, e);
        }
        if self.is_unavailability() {
            tracing::error!(error = %e, "database unavailable");
            return unavailable(state, admin_area);
        }
        if status.is_server_error() {
            return internal(state, e);
        }
        let title = match status {
            _ if e.code() == crate::error::Code::LicenseInvalid => "Read-only while the license is not valid",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Access Denied",
            _ => "Request refused",
        };
        let template = if admin_area { "admin/message.html" } else { "message.html" };
        Page::new(template, title).with("message", sentence(e)).status(status).render(state, None)
    }
}

/// What a page handler answers: the page, or why it stopped.
pub type Answer = Result<Response, Stop>;

/// Why a page handler stopped early: a failure the middleware renders (`?` on the domain's
/// errors), or a page to show instead (a redirect to the login page, "Access Denied").
pub enum Stop {
    Failed(Failed),
    /// Boxed: a `Response` is large, and this travels in every handler's `Result`.
    Show(Box<Response>),
}

impl From<crate::Error> for Stop {
    fn from(e: crate::Error) -> Self {
        Stop::Failed(e.into())
    }
}

impl From<Response> for Stop {
    fn from(r: Response) -> Self {
        Stop::Show(Box::new(r))
    }
}

impl IntoResponse for Stop {
    fn into_response(self) -> Response {
        match self {
            Stop::Failed(f) => f.into_response(),
            Stop::Show(r) => *r,
        }
    }
}

/// A 500 page for an unexpected failure; the details go to the log, not to the visitor.
fn internal(state: &AppState, e: &crate::Error) -> Response {
    tracing::error!(error = %e, "request failed");
    let text = "The request could not be completed. Please try again; if it persists, tell the site's administrator.";
    message(state, None, StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_answers_with_the_500_page_and_keeps_its_message_to_the_log() {
        let response = panicked(Box::new("index out of bounds: secret detail"));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("<title>Something went wrong · gatehouse</title>"), "in the site's layout: {body}");
        assert!(!body.contains("secret detail"));
    }

    #[test]
    fn refusals_read_as_sentences() {
        let e = crate::Error::refused(
            crate::error::Code::WeakPassword,
            "choose a password of at least 12 characters (this one has 5)",
        );
        assert_eq!(sentence(&e), "Choose a password of at least 12 characters (this one has 5).");
    }
}
