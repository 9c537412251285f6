//! The security headers on every response — pages, the API, the probes, errors — set once, in
//! one layer, so no route can forget them:
//!
//! - `Content-Security-Policy`: pages load nothing but themselves. One script, from this origin
//!   (`/assets/passkeys.js`, the passkey buttons; nothing inline, no `eval`), which may fetch from
//!   this origin only; the one inline style block of each layout is allowed by its SHA-256,
//!   computed from the template at start-up (so editing the CSS never breaks the policy); forms
//!   post only to this origin (and
//!   to Duo, whose Universal Prompt a sign-in is redirected to); no framing. Other responses
//!   (JSON, text) get `default-src 'none'`.
//! - `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` (browsers without
//!   `frame-ancestors`), `Referrer-Policy: same-origin` (reset and invite URLs hold tokens).
//! - `Strict-Transport-Security` when system_url is https.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::AppState;

/// The headers, built once when the state is.
pub struct SecurityHeaders {
    page_policy: HeaderValue,
    hsts: Option<HeaderValue>,
}

const OTHER_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

impl SecurityHeaders {
    /// `https`: system_url's scheme; `form_targets`: other origins a form's redirects may reach.
    pub fn new(https: bool, form_targets: &[&str]) -> Self {
        let styles: Vec<String> =
            super::render::inline_styles().map(|css| format!("'sha256-{}'", sha256(css))).collect();
        let forms: String = form_targets.iter().map(|o| format!(" {o}")).collect();
        let policy = format!(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src {}; img-src 'self'; \
             form-action 'self'{forms}; \
             frame-ancestors 'none'; base-uri 'none'",
            styles.join(" ")
        );
        Self {
            page_policy: HeaderValue::from_str(&policy).expect("the policy is ASCII"),
            hsts: https.then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains")),
        }
    }

    fn apply(&self, headers: &mut HeaderMap) {
        // Room for these at once, rather than the map growing twice on every response.
        headers.reserve(5);
        let is_page = headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
        let policy = if is_page { self.page_policy.clone() } else { HeaderValue::from_static(OTHER_POLICY) };
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        if let Some(hsts) = &self.hsts {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
    }
}

fn sha256(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    state.security_headers.apply(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_allow_their_own_styles_and_only_their_own_script() {
        let headers = SecurityHeaders::new(false, &[]);
        let policy = headers.page_policy.to_str().unwrap();
        assert!(policy.contains("script-src 'self';") && policy.starts_with("default-src 'none'"), "{policy}");
        assert!(policy.contains("connect-src 'self';"), "{policy}");
        assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{policy}");
        assert_eq!(policy.matches("'sha256-").count(), 2, "one hash per layout: {policy}");
        assert!(headers.hsts.is_none());
        assert!(SecurityHeaders::new(true, &[]).hsts.is_some());
    }

    #[test]
    fn forms_may_go_to_duo_when_it_is_configured() {
        let headers = SecurityHeaders::new(true, &["https://api-1234abcd.duosecurity.com"]);
        let policy = headers.page_policy.to_str().unwrap();
        assert!(policy.contains("form-action 'self' https://api-1234abcd.duosecurity.com;"), "{policy}");
    }
}
