//! CSRF defence for every state-changing request made with a session cookie. The per-session
//! token from the form's `csrf_token` field, compared in constant time, is the real defence;
//! before it, the browser's own word on where the form came from refuses a cross-site POST
//! early, the way browsers mean their headers:
//!
//! 1. `Sec-Fetch-Site` (Chromium, Firefox ≥ 90, Safari ≥ 16.4): `same-origin` and `none` pass to
//!    the token; `same-site` and `cross-site` are another origin and are refused.
//! 2. Without it, `Origin` compared with system_url's origin. `Origin: null` is *not* a proof of
//!    another site: browsers send it for same-origin forms under a `no-referrer` policy, from
//!    privacy extensions and after some redirects, so it passes to the token.
//! 3. With neither (old browsers, scripts), the token alone decides.

use axum::http::HeaderMap;

use super::context::Ctx;
use super::form_token::FormKey;
use crate::auth::sessions::cookie::CookieSettings;
use crate::secrets::tokens::ct_eq;

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

impl Refusal {
    /// Why, in the words the doctor counts them by (`encounters`, kind `form_refused`): which
    /// cookie did not come back, and where, tells a store that cannot keep sessions from a
    /// visitor on the wrong host or a session that simply ended.
    pub fn cause(self, ctx: &Ctx) -> &'static str {
        match self {
            Refusal::CrossSite => "sent from another site",
            Refusal::BadToken => "token does not match the session",
            Refusal::NoSession if !ctx.host_ok => "sent to another host than system_url",
            Refusal::NoSession if ctx.ended.is_some() => "session ended before the form was sent",
            Refusal::NoSession => "no session cookie came back",
        }
    }
}

/// True if the browser says the request came from another origin (see the module doc).
fn cross_site(headers: &HeaderMap, cookie: &CookieSettings) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    match header("sec-fetch-site").map(str::to_ascii_lowercase).as_deref() {
        Some("same-origin" | "none") => return false,
        Some("same-site" | "cross-site") => return true,
        // An unknown value (a future one, or a proxy's rewrite): decide by Origin.
        _ => {}
    }
    match header("origin") {
        None => false,
        Some(origin) if origin.eq_ignore_ascii_case("null") => false,
        Some(origin) => !origin.eq_ignore_ascii_case(&cookie.origin),
    }
}

/// Checks a form: the browser's word on its origin, then the token — the session's, or for a
/// visitor without one, the stateless token of their form-nonce cookie (`web::form_token`).
pub fn check(
    ctx: &Ctx,
    headers: &HeaderMap,
    cookie: &CookieSettings,
    form_key: &FormKey,
    token: Option<&str>,
) -> Result<(), Refusal> {
    if cross_site(headers, cookie) {
        return Err(Refusal::CrossSite);
    }
    let token = token.filter(|t| !t.is_empty());
    match (&ctx.session, &ctx.form_nonce) {
        (Some(session), _) => match token {
            Some(t) if ct_eq(t, &session.data.csrf_token) => Ok(()),
            _ => Err(Refusal::BadToken),
        },
        (None, Some(nonce)) => match token {
            Some(t) if form_key.verify(nonce, t) => Ok(()),
            _ => Err(Refusal::BadToken),
        },
        // Neither cookie came back: never set, dropped (a Secure cookie over plain http), or
        // sent to another host than system_url's.
        (None, None) => Err(Refusal::NoSession),
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

    /// What real browsers send on a form POST, and whether it counts as another site.
    #[test]
    fn header_combinations_real_browsers_send() {
        let s = settings();
        let own = "https://portal.example.com";
        type Sent<'a> = &'a [(&'static str, &'a str)];
        let cases: &[(&str, Sent, bool)] = &[
            // Same-origin forms.
            (
                "Chromium, same-origin, Referrer-Policy: same-origin",
                &[("sec-fetch-site", "same-origin"), ("origin", own)],
                false,
            ),
            (
                "Chromium, same-origin, Referrer-Policy: no-referrer",
                &[("sec-fetch-site", "same-origin"), ("origin", "null")],
                false,
            ),
            ("Firefox ≥ 90, same-origin", &[("sec-fetch-site", "same-origin"), ("origin", own)], false),
            ("Firefox, no-referrer (Origin: null, no Sec-Fetch)", &[("origin", "null")], false),
            ("Safari < 16.4 (no Sec-Fetch), same-origin", &[("origin", own)], false),
            ("Safari, Origin differs only in case", &[("origin", "HTTPS://Portal.Example.com")], false),
            ("an old browser or a script: no headers", &[], false),
            ("a bookmark or typed URL", &[("sec-fetch-site", "none")], false),
            // Another site.
            ("Chromium, cross-site", &[("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")], true),
            (
                "Chromium, sibling subdomain",
                &[("sec-fetch-site", "same-site"), ("origin", "https://shop.example.com")],
                true,
            ),
            ("sandboxed iframe on another site", &[("sec-fetch-site", "cross-site"), ("origin", "null")], true),
            ("Safari < 16.4, cross-site", &[("origin", "https://evil.example")], true),
            ("same host over plain http", &[("origin", "http://portal.example.com")], true),
            ("another port", &[("origin", "https://portal.example.com:8443")], true),
            (
                "unknown Sec-Fetch-Site value, foreign Origin",
                &[("sec-fetch-site", "weird"), ("origin", "https://evil.example")],
                true,
            ),
        ];
        for (browser, sent, expected) in cases {
            assert_eq!(cross_site(&headers(sent), &s), *expected, "{browser}: {sent:?}");
        }
    }
}
