//! `POST /oauth/token`: the RFC 6749 client-credentials grant. Credentials
//! come in a JSON or form body, or as HTTP Basic client authentication;
//! extra fields (`audience`, `scope`…) are ignored. Errors use RFC 6749's
//! own shape, not the API envelope, as OAuth clients expect.

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use orghooks_core::credentials;
use orghooks_store::NewToken;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{body_bytes, is_json};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    #[schema(value_type = GrantType)]
    pub grant_type: String,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// The one grant type there is.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only
#[schema(rename_all = "snake_case")]
pub enum GrantType {
    ClientCredentials,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// An RFC 6749 §5.2 error.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client` or `unsupported_grant_type`.
    pub error: &'static str,
    pub error_description: String,
}

fn oauth_error(status: StatusCode, error: &'static str, description: &str) -> Response {
    let mut response = (
        status,
        axum::Json(OAuthError {
            error,
            error_description: description.to_owned(),
        }),
    )
        .into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"orghooks\""),
        );
    }
    response
}

fn invalid_request(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "unknown client, wrong secret, or disabled account",
    )
}

/// Client credentials from an `Authorization: Basic` header, if present.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(B64.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Get an access token with client credentials.
#[utoipa::path(
    post, path = "/oauth/token", tag = "auth",
    request_body(content = TokenRequest, content_type = "application/json",
        description = "Also accepted as application/x-www-form-urlencoded, with the client authenticated by HTTP Basic"),
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, body = OAuthError),
        (status = 401, body = OAuthError),
        (status = 429, description = "Too many failed attempts with this client_id; retry after Retry-After", body = OAuthError),
    )
)]
pub async fn token(State(state): State<AppState>, req: Request) -> Response {
    let basic = basic_credentials(req.headers());
    let json = is_json(req.headers());
    let form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let bytes = match body_bytes(req, &state).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let fields: HashMap<String, serde_json::Value> = if json {
        match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(_) => return invalid_request("the body is not a JSON object"),
        }
    } else if form || bytes.is_empty() {
        match serde_urlencoded::from_bytes::<HashMap<String, String>>(&bytes) {
            Ok(f) => f.into_iter().map(|(k, v)| (k, v.into())).collect(),
            Err(_) => return invalid_request("the form body is malformed"),
        }
    } else {
        return invalid_request(
            "send the request as application/json or application/x-www-form-urlencoded",
        );
    };
    let text = |k: &str| fields.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    // A client authenticated by HTTP Basic with nothing in the body asks
    // for the only grant there is (Ocrolus clients send no body).
    let grant = text("grant_type").or_else(|| {
        (basic.is_some() && fields.is_empty()).then(|| "client_credentials".to_owned())
    });
    match grant.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type: only client_credentials is supported",
            );
        }
        None => return invalid_request("grant_type: is required"),
    }
    let (client_id, client_secret) = match (basic, text("client_id"), text("client_secret")) {
        (Some(basic), _, _) => basic,
        (None, Some(id), Some(secret)) => (id, secret),
        _ => return invalid_request("client_id and client_secret are required"),
    };
    if let Err(wait) = state.sign_in_wait(&client_id) {
        let mut response = oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_client",
            &format!("too many failed attempts with this client_id; retry in {wait} s"),
        );
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(wait));
        return response;
    }
    let ttl = state.config().auth.token_ttl_secs;
    match issue_for(&state, &client_id, &client_secret, ttl).await {
        Ok(Some(token)) => {
            let mut response = axum::Json(token).into_response();
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Ok(None) => {
            state.sign_in_failed(&client_id);
            invalid_client()
        }
        Err(e) => e.into_response(),
    }
}

/// An access token for these client credentials, living `ttl` seconds;
/// `None` for unknown credentials or a disabled account (the API and the
/// dashboard's sign-in).
pub(crate) async fn issue_for(
    state: &AppState,
    client_id: &str,
    client_secret: &str,
    ttl: u64,
) -> Result<Option<TokenResponse>, ApiError> {
    let Some(creds) = state.store().account_by_client_id(client_id).await? else {
        return Ok(None);
    };
    let matches =
        credentials::hashes_equal(&credentials::hash(client_secret), &creds.client_secret_hash);
    if !matches || creds.account.disabled_at.is_some() {
        return Ok(None);
    }
    let token = credentials::new_access_token();
    let now = state.now_ms();
    state
        .store()
        .insert_token(NewToken {
            hash: credentials::hash(&token),
            account_uuid: creds.account.uuid,
            created_at: now,
            expires_at: now + (ttl as i64) * 1000,
        })
        .await?;
    tracing::info!(account_uuid = %creds.account.uuid, "access token issued");
    Ok(Some(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: ttl,
    }))
}
