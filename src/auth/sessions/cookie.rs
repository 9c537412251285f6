//! The session cookie, whose every attribute derives from system_url: Secure iff https, Path =
//! its path, no Domain attribute (host-only), HttpOnly, SameSite=Lax (the Duo callback is a
//! top-level GET). `serve` sets it; the doctor's `sessions.cookie` check judges traffic against it.

use axum::http::HeaderValue;
use cookie::{Cookie, SameSite};

pub const COOKIE_NAME: &str = "gatehouse_session";
/// The admin area's session cookie, with `Path={system_url path}admin`: the browser never sends
/// it to the client area, and a client-area session never opens the admin area.
pub const ADMIN_COOKIE_NAME: &str = "gatehouse_admin";

/// A browser's device token for the client area (`auth::devices`), and for the admin area
/// (`Path={system_url path}admin`, like its session).
pub const DEVICE_COOKIE_NAME: &str = "gatehouse_device";
pub const ADMIN_DEVICE_COOKIE_NAME: &str = "gatehouse_admin_device";

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

    /// `Set-Cookie` for an admin-area session token.
    pub fn admin_set(&self, token: &str) -> HeaderValue {
        self.build(ADMIN_COOKIE_NAME, token, self.admin_path())
    }

    /// `Set-Cookie` for a device token, kept by the browser as long as the server keeps the
    /// device (`auth::devices::DEVICE_TTL_SECS`).
    pub fn device_set(&self, admin_area: bool, token: &str) -> HeaderValue {
        let (name, path) = if admin_area {
            (ADMIN_DEVICE_COOKIE_NAME, self.admin_path())
        } else {
            (DEVICE_COOKIE_NAME, self.path.clone())
        };
        let mut cookie = self.build_cookie(name, token, path);
        cookie.set_max_age(cookie::time::Duration::seconds(crate::auth::devices::DEVICE_TTL_SECS));
        HeaderValue::from_str(&cookie.to_string()).expect("cookie is ASCII")
    }

    /// `Set-Cookie` that removes the admin-area session cookie.
    pub fn admin_clear(&self) -> HeaderValue {
        Self::removal(self.build_cookie(ADMIN_COOKIE_NAME, "", self.admin_path()))
    }

    /// The admin area's path as the browser sees it.
    pub fn admin_path(&self) -> String {
        format!("{}admin", self.path)
    }

    /// `Set-Cookie` for the nonce of a visitor's form tokens: the same attributes as the session
    /// cookie, so it reaches exactly the requests the session cookie would.
    pub fn form_nonce(&self, name: &'static str, nonce: &str) -> HeaderValue {
        self.named(name, nonce)
    }

    fn named(&self, name: &'static str, value: &str) -> HeaderValue {
        self.build(name, value, self.path.clone())
    }

    fn build_cookie(&self, name: &'static str, value: &str, path: String) -> Cookie<'static> {
        Cookie::build((name, value.to_string()))
            .path(path)
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .build()
    }

    fn build(&self, name: &'static str, value: &str, path: String) -> HeaderValue {
        HeaderValue::from_str(&self.build_cookie(name, value, path).to_string()).expect("cookie is ASCII")
    }

    fn removal(mut c: Cookie<'static>) -> HeaderValue {
        c.make_removal();
        HeaderValue::from_str(&c.to_string()).expect("cookie is ASCII")
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn clear(&self) -> HeaderValue {
        Self::removal(self.build_cookie(COOKIE_NAME, "", self.path.clone()))
    }
}
