//! The session cookie, whose every attribute derives from system_url: Secure iff https, Path =
//! its path, no Domain attribute (host-only), HttpOnly, SameSite=Lax (the Duo callback is a
//! top-level GET). `serve` sets it; the doctor's `sessions.cookie` check judges traffic against it.

use axum::http::HeaderValue;
use cookie::{Cookie, SameSite};

pub const COOKIE_NAME: &str = "gatehouse_session";

/// The cookie's attributes for one system_url.
#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub secure: bool,
    pub path: String,
    /// `host[:port]` as the browser sends it in `Host` for system_url.
    pub authority: String,
    pub origin: String,
}

impl CookieSettings {
    pub fn from_system_url(url: &url::Url) -> Self {
        let u = url;
        let host = u.host_str().unwrap_or("localhost").to_ascii_lowercase();
        let authority = match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        Self {
            secure: u.scheme() == "https",
            path: u.path().to_string(),
            origin: format!("{}://{authority}", u.scheme()),
            authority,
        }
    }

    /// `Set-Cookie` for a session token.
    pub fn set(&self, token: &str) -> HeaderValue {
        self.named(COOKIE_NAME, token)
    }

    /// `Set-Cookie` for the nonce of a visitor's form tokens: the same attributes as the session
    /// cookie, so it reaches exactly the requests the session cookie would.
    pub fn form_nonce(&self, name: &'static str, nonce: &str) -> HeaderValue {
        self.named(name, nonce)
    }

    fn named(&self, name: &'static str, value: &str) -> HeaderValue {
        let c = Cookie::build((name, value.to_string()))
            .path(self.path.clone())
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .build();
        HeaderValue::from_str(&c.to_string()).expect("cookie is ASCII")
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn clear(&self) -> HeaderValue {
        let mut c =
            Cookie::build((COOKIE_NAME, "")).path(self.path.clone()).http_only(true).secure(self.secure).build();
        c.make_removal();
        HeaderValue::from_str(&c.to_string()).expect("cookie is ASCII")
    }
}
