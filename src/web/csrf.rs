//! CSRF defence for every state-changing request made with a session cookie: the per-session
//! token from the form's `csrf_token` field, compared in constant time, plus an Origin /
//! Sec-Fetch-Site check so a cross-site POST is refused even before the token is looked at.

use axum::http::HeaderMap;

use super::context::Ctx;
use crate::auth::sessions::cookie::CookieSettings;
use crate::auth::tokens::ct_eq;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    CrossSite,
    /// No session to hold a token: the session was never stored, expired, or lives on another host.
    NoSession,
    BadToken,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::CrossSite => "This form was sent from another site and was refused.",
            Refusal::NoSession => {
                "Invalid CSRF token: your session has expired or could not be saved. Please try again."
            }
            Refusal::BadToken => "Invalid CSRF token. Please reload the page and try again.",
        }
    }
}

/// True if the browser says the request came from another origin.
fn cross_site(headers: &HeaderMap, cookie: &CookieSettings) -> bool {
    if let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) {
        return !origin.eq_ignore_ascii_case(&cookie.origin);
    }
    matches!(headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()), Some("cross-site" | "same-site"))
}

pub fn check(ctx: &Ctx, headers: &HeaderMap, cookie: &CookieSettings, token: Option<&str>) -> Result<(), Refusal> {
    if cross_site(headers, cookie) {
        return Err(Refusal::CrossSite);
    }
    let session = ctx.session.as_ref().ok_or(Refusal::NoSession)?;
    match token {
        Some(t) if !t.is_empty() && ct_eq(t, &session.data.csrf_token) => Ok(()),
        _ => Err(Refusal::BadToken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CookieSettings {
        CookieSettings::from_system_url(&"https://portal.example.com/".parse().unwrap())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origin_and_fetch_metadata() {
        let s = settings();
        assert!(!cross_site(&headers(&[]), &s), "no headers: rely on the token");
        assert!(!cross_site(&headers(&[("origin", "https://portal.example.com")]), &s));
        assert!(cross_site(&headers(&[("origin", "https://evil.example")]), &s));
        assert!(cross_site(&headers(&[("origin", "null")]), &s));
        assert!(cross_site(&headers(&[("origin", "http://portal.example.com")]), &s), "scheme matters");
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")]), &s));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "none")]), &s));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")]), &s));
    }
}
