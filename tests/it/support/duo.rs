//! A fake Duo API host speaking the Universal Prompt (OIDC) protocol: health check, authorize
//! (answers with a redirect to the callback carrying `state` and `duo_code`) and token (an HS512
//! `id_token` with the nonce and username of the authorize request). It verifies the client's
//! HS512 assertions and signed request like Duo does. `legacy` plays an old Auth API
//! application, which Duo refuses with "Integration type does not support frameless access".
#![allow(dead_code, clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "DIXXXXXXXXXXXXXXXXXX";
pub const CLIENT_SECRET: &str = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

#[derive(Clone)]
struct Fake {
    base: String,
    legacy: bool,
    /// duo_code → (nonce, username)
    codes: Arc<Mutex<HashMap<String, (String, String)>>>,
}

pub struct FakeDuo {
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeDuo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `twofa:` configuration block pointing at this fake.
impl FakeDuo {
    pub fn config(&self) -> String {
        format!(
            "twofa:\n  duo:\n    client_id: \"{CLIENT_ID}\"\n    client_secret: \"{CLIENT_SECRET}\"\n    api_hostname: \"{}\"\n",
            self.base
        )
    }
}

pub async fn start(legacy: bool) -> FakeDuo {
    // Duo's side speaks HS512 through the same provider as gatehouse's.
    gatehouse::secrets::jwt::install();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let fake = Fake { base: base.clone(), legacy, codes: Arc::default() };
    let app = axum::Router::new()
        .route("/oauth/v1/health_check", post(health_check))
        .route("/oauth/v1/authorize", get(authorize))
        .route("/oauth/v1/token", post(token))
        .with_state(fake);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    FakeDuo { base, task }
}

fn check_assertion(fake: &Fake, assertion: &str, endpoint: &str) -> Result<(), Response> {
    let mut v = Validation::new(Algorithm::HS512);
    v.set_audience(&[format!("{}/oauth/v1/{endpoint}", fake.base)]);
    v.set_issuer(&[CLIENT_ID]);
    v.sub = Some(CLIENT_ID.into());
    decode::<Value>(assertion, &DecodingKey::from_secret(CLIENT_SECRET.as_bytes()), &v).map(|_| ()).map_err(|e| {
        let body = json!({"stat": "FAIL", "code": 40002, "message": "invalid_client", "message_detail": e.to_string()});
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    })
}

fn frameless() -> Response {
    let body = json!({"stat": "FAIL", "code": 40002, "message": "invalid_client",
                      "message_detail": "Integration type does not support frameless access"});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn health_check(State(fake): State<Fake>, Form(f): Form<HashMap<String, String>>) -> Response {
    if fake.legacy {
        return frameless();
    }
    if f.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return (StatusCode::BAD_REQUEST, Json(json!({"stat": "FAIL", "message": "invalid_client"}))).into_response();
    }
    if let Err(r) = check_assertion(&fake, f.get("client_assertion").map(String::as_str).unwrap_or(""), "health_check")
    {
        return r;
    }
    Json(json!({"stat": "OK", "response": {"timestamp": gatehouse::store::Clock::wall()}})).into_response()
}

async fn authorize(State(fake): State<Fake>, Query(q): Query<HashMap<String, String>>) -> Response {
    if fake.legacy {
        return frameless();
    }
    let mut v = Validation::new(Algorithm::HS512);
    v.set_audience(std::slice::from_ref(&fake.base));
    let request = match decode::<Value>(
        q.get("request").map(String::as_str).unwrap_or(""),
        &DecodingKey::from_secret(CLIENT_SECRET.as_bytes()),
        &v,
    ) {
        Ok(d) => d.claims,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad request JWT: {e}")).into_response(),
    };
    let state = request["state"].as_str().unwrap_or("");
    assert!((16..=1024).contains(&state.len()), "state length");
    assert_eq!(request["scope"], "openid");
    let code = format!("code{}", fake.codes.lock().unwrap().len());
    fake.codes.lock().unwrap().insert(
        code.clone(),
        (request["nonce"].as_str().unwrap().into(), request["duo_uname"].as_str().unwrap().into()),
    );
    let mut target = url::Url::parse(request["redirect_uri"].as_str().unwrap()).unwrap();
    target.query_pairs_mut().append_pair("state", state).append_pair("duo_code", &code);
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

async fn token(State(fake): State<Fake>, Form(f): Form<HashMap<String, String>>) -> Response {
    if let Err(r) = check_assertion(&fake, f.get("client_assertion").map(String::as_str).unwrap_or(""), "token") {
        return r;
    }
    assert_eq!(f.get("grant_type").map(String::as_str), Some("authorization_code"));
    let Some((nonce, username)) = fake.codes.lock().unwrap().remove(f.get("code").map(String::as_str).unwrap_or(""))
    else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant", "error_description": "unknown code"})))
            .into_response();
    };
    let now = gatehouse::store::Clock::wall();
    let claims = json!({"iss": format!("{}/oauth/v1/token", fake.base), "aud": CLIENT_ID, "exp": now + 300,
                        "iat": now, "nonce": nonce, "preferred_username": username});
    let id_token =
        encode(&Header::new(Algorithm::HS512), &claims, &EncodingKey::from_secret(CLIENT_SECRET.as_bytes())).unwrap();
    Json(json!({"id_token": id_token, "access_token": "x", "expires_in": 3600, "token_type": "Bearer"})).into_response()
}
