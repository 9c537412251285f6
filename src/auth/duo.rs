//! Duo Universal Prompt (Web SDK v4, OpenID Connect): health check, the authorize redirect
//! with a signed request carrying `state` and `nonce`, and the token exchange whose `id_token`
//! is checked (signature HS512 with the client secret, `aud`, `iss`, `exp`, `nonce`,
//! `preferred_username`). Client authentication is a short-lived HS512 JWT, as Duo requires.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::accounts::Principal;
use crate::config;
use crate::error::{Code, Error, Result};
use crate::secrets::{jwt, tokens};
use crate::store::Clock;

const JWT_LIFETIME_SECS: i64 = 300;

/// The callback paths under system_url: a user's, then an admin's.
pub const CALLBACKS: [&str; 2] = ["login/2fa/duo/callback", "admin/login/2fa/duo/callback"];
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Clone)]
pub struct Duo {
    client_id: String,
    client_secret: String,
    /// `https://api-XXXXXXXX.duosecurity.com` (or the `http://` URL given, for test servers).
    base: String,
    /// Where Duo sends a user back, and an admin (whose session cookie is the admin area's).
    redirect_uris: [String; 2],
    http: reqwest::Client,
}

#[derive(Serialize)]
struct ClientAssertion<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    jti: String,
}

#[derive(Debug, Deserialize)]
struct IdToken {
    nonce: Option<String>,
    preferred_username: Option<String>,
}

/// What the configured credentials look like: Duo's Web SDK application keys are a 20-character
/// client id and a 40-character secret, and the host is `api-XXXXXXXX.duosecurity.com`.
pub fn credential_problems(duo: &config::Duo) -> Vec<String> {
    let mut problems = Vec::new();
    if duo.client_id.len() != 20 {
        problems.push(format!("client_id has {} characters; Duo client IDs have 20", duo.client_id.len()));
    }
    if duo.client_secret.expose().len() != 40 {
        problems.push(format!(
            "client_secret has {} characters; Duo client secrets have 40",
            duo.client_secret.expose().len()
        ));
    }
    let host = duo.api_hostname.trim();
    if !(host.starts_with("http://") || host.starts_with("api-") && host.ends_with(".duosecurity.com")) {
        problems.push(format!("api_hostname `{host}` is not of the form api-XXXXXXXX.duosecurity.com"));
    }
    problems
}

impl Duo {
    /// Where the browser is sent for the Universal Prompt (`https://api-….duosecurity.com`).
    pub fn origin(&self) -> &str {
        &self.base
    }

    /// `None` when Duo is not configured (no client id).
    pub fn from_config(duo: &config::Duo, system_url: &url::Url) -> Result<Option<Self>> {
        if duo.client_id.is_empty() {
            return Ok(None);
        }
        let host = duo.api_hostname.trim().trim_end_matches('/');
        let base = if host.starts_with("http://") || host.starts_with("https://") {
            host.to_string()
        } else {
            format!("https://{host}")
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Internal(format!("HTTP client for Duo: {e}")))?;
        let callback = |path| system_url.join(path).map(String::from).map_err(|e| Error::invalid(e.to_string()));
        let redirect_uris = [callback(CALLBACKS[0])?, callback(CALLBACKS[1])?];
        Ok(Some(Self {
            client_id: duo.client_id.clone(),
            client_secret: duo.client_secret.expose().to_owned(),
            base,
            redirect_uris,
            http,
        }))
    }

    fn redirect_uri(&self, who: Principal) -> &str {
        match who {
            Principal::User => &self.redirect_uris[0],
            Principal::Admin => &self.redirect_uris[1],
        }
    }

    fn endpoint(&self, name: &str) -> String {
        format!("{}/oauth/v1/{name}", self.base)
    }

    fn sign(&self, claims: &impl Serialize) -> Result<String> {
        jwt::sign(claims, self.client_secret.as_bytes())
            .map_err(|e| Error::Internal(format!("signing a Duo request: {e}")))
    }

    fn client_assertion(&self, audience: &str) -> Result<String> {
        // Duo judges these by its own clock: real time, whatever a test did to ours.
        let ts = Clock::wall();
        self.sign(&ClientAssertion {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: audience,
            exp: ts + JWT_LIFETIME_SECS,
            iat: ts,
            jti: tokens::random().raw,
        })
    }

    async fn post(&self, endpoint: &str, form: &[(&str, &str)]) -> Result<Value> {
        let response = self
            .http
            .post(endpoint)
            .form(form)
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("Duo at {}: {e}", self.base)))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| Error::Unavailable(format!("Duo answered {status} with a body that is not JSON: {e}")))?;
        Ok(body)
    }

    /// `POST /oauth/v1/health_check`; an error names Duo's message, e.g. "invalid_client:
    /// Integration type does not support frameless access" for keys of an old Auth API app.
    pub async fn health_check(&self) -> Result<()> {
        let endpoint = self.endpoint("health_check");
        let assertion = self.client_assertion(&endpoint)?;
        let body = self.post(&endpoint, &[("client_id", &self.client_id), ("client_assertion", &assertion)]).await?;
        if body["stat"] == "OK" {
            return Ok(());
        }
        Err(Error::Unavailable(duo_message(&body)))
    }

    /// The Universal Prompt URL to send the browser to.
    pub fn authorize_url(&self, who: Principal, username: &str, state: &str, nonce: &str) -> Result<String> {
        let request = self.sign(&json!({
            "response_type": "code",
            "scope": "openid",
            "exp": Clock::wall() + JWT_LIFETIME_SECS,
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri(who),
            "state": state,
            "duo_uname": username,
            "iss": self.client_id,
            "aud": self.base,
            "nonce": nonce,
            "use_duo_code_attribute": true,
        }))?;
        let mut url = url::Url::parse(&self.endpoint("authorize")).map_err(|e| Error::invalid(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("request", &request)
            .append_pair("redirect_uri", self.redirect_uri(who))
            .append_pair("scope", "openid");
        Ok(url.to_string())
    }

    /// Exchanges the callback's `duo_code` and checks the returned `id_token`.
    pub async fn exchange(&self, who: Principal, code: &str, username: &str, nonce: &str) -> Result<()> {
        let endpoint = self.endpoint("token");
        let assertion = self.client_assertion(&endpoint)?;
        let body = self
            .post(
                &endpoint,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", self.redirect_uri(who)),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &assertion),
                ],
            )
            .await?;
        let Some(id_token) = body["id_token"].as_str() else {
            return Err(Error::Unavailable(duo_message(&body)));
        };
        let mut validation = Validation::new(Algorithm::HS512);
        validation.set_audience(&[&self.client_id]);
        validation.set_issuer(&[&endpoint]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let claims = jwt::verify::<IdToken>(id_token, self.client_secret.as_bytes(), &validation)
            .map_err(|e| Error::refused(Code::InvalidToken, format!("Duo id_token rejected: {e}")))?;
        if !claims.nonce.as_deref().is_some_and(|n| tokens::ct_eq(n, nonce)) {
            return Err(Error::refused(Code::InvalidToken, "Duo id_token nonce does not match"));
        }
        if claims.preferred_username.as_deref() != Some(username) {
            return Err(Error::refused(Code::InvalidToken, "Duo id_token is for another user"));
        }
        Ok(())
    }
}

fn duo_message(body: &Value) -> String {
    let message = body["message"].as_str().or(body["error"].as_str()).unwrap_or("unexpected answer");
    let detail = body["message_detail"].as_str().or(body["error_description"].as_str()).unwrap_or("");
    if detail.is_empty() { message.to_string() } else { format!("{message}: {detail}") }
}
